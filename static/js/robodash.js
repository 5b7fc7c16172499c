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
