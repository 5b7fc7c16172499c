// robodash's only script of its own. A strict CSP allows no inline script and no eval, so htmx
// trigger filters such as `every 10s [expr]` are unavailable: what they would do is here.

// A region that refreshes itself (data-pause-while-focused) skips a refresh while the person
// is working inside it, so a half-typed note is not replaced under their fingers. The region's
// own requests are its polls; the buttons and forms inside it send theirs from themselves.
document.addEventListener("htmx:beforeRequest", function (event) {
  var region = event.detail.elt;
  if (region.hasAttribute("data-pause-while-focused") && region.contains(document.activeElement)) {
    event.preventDefault();
  }
});

// A Copy button (data-copy="<id of the field>") puts that field's value on the clipboard, then
// says so in the page's language (data-copied, translated by the template).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) {
    return;
  }
  var field = document.getElementById(button.getAttribute("data-copy"));
  field.select();
  var done = function () {
    button.textContent = button.getAttribute("data-copied") || "Copied";
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done);
  } else if (document.execCommand("copy")) {
    done();
  }
});
