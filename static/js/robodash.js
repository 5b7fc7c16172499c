// robodash's only script of its own. A strict CSP allows no inline script and no eval, so htmx
// trigger filters such as `every 10s [expr]` are unavailable: what they would do is here.

// A region that refreshes itself (data-pause-while-focused) skips a refresh while the person
// is typing inside it, so a half-typed note is not replaced under their fingers, and while a
// question in it waits for an answer (changing a decision). (A focused button does not pause
// it: the refresh keeps the focus on the same row, below.) The region's own requests are its
// polls; the buttons and forms inside it send theirs from themselves.
document.addEventListener("htmx:beforeRequest", function (event) {
  var region = event.detail.elt;
  var active = document.activeElement;
  if (!region.hasAttribute("data-pause-while-focused")) {
    return;
  }
  var typing =
    region.contains(active) &&
    active.matches("input:not([type=hidden]):not([type=submit]), textarea, select");
  if (typing || region.querySelector(".decision-question")) {
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

// The phone menu (base.html): the button is revealed and the menu closed only here, so a page
// without JavaScript keeps its menu open. The CSS hides a menu whose button says it is closed.
(function () {
  var button = document.querySelector(".menu-button");
  if (!button) {
    return;
  }
  button.setAttribute("aria-expanded", "false");
  button.hidden = false;
  button.addEventListener("click", function () {
    var open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", open ? "false" : "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });
})();

// A refusal to an htmx request (403) comes back as the page's message area, retargeted by the
// server (robodash.middleware.HtmxSignInAndRefusalMiddleware): swap it in although it is an
// error, so the person sees why nothing happened. Any other failed request gets a message too.
document.addEventListener("htmx:beforeSwap", function (event) {
  var xhr = event.detail.xhr;
  if (xhr.status === 403 && xhr.getResponseHeader("HX-Retarget") === "#messages") {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

function showRequestFailed() {
  var messages = document.getElementById("messages");
  if (!messages) {
    return;
  }
  var flash = document.createElement("p");
  flash.className = "flash flash-error";
  flash.setAttribute("role", "alert");
  flash.textContent = document.body.getAttribute("data-request-failed");
  messages.replaceChildren(flash);
}

document.addEventListener("htmx:responseError", function (event) {
  if (event.detail.xhr.status !== 403) {
    showRequestFailed();
  }
});
document.addEventListener("htmx:sendError", showRequestFailed);

// After a row's own action (Claim, Release, Decide…) replaces the row, or a refresh replaces
// the list around it, keyboard focus would fall to <body>: put it back in the same row (the
// nearest element with an id that is still there), on the control that was pressed if it is
// still there (same label and name), else on the row's first button or control.
var focusBeforeSwap = null;
document.addEventListener("htmx:beforeSwap", function (event) {
  var target = event.detail.target;
  var active = document.activeElement;
  focusBeforeSwap = null;
  if (!target || !active || active === document.body || !target.contains(active)) {
    return;
  }
  var ids = [];
  for (var node = active; node && node !== target.parentElement; node = node.parentElement) {
    if (node.id) {
      ids.push(node.id);
    }
  }
  focusBeforeSwap = { ids: ids, label: active.textContent.trim(), name: active.name };
});

function focusableIn(element) {
  return Array.prototype.filter.call(
    element.querySelectorAll("button, input:not([type=hidden]), select, textarea, a[href]"),
    function (control) {
      return !control.disabled && control.getClientRects().length > 0;
    }
  );
}

document.addEventListener("htmx:afterSettle", function () {
  var remembered = focusBeforeSwap;
  focusBeforeSwap = null;
  var active = document.activeElement;
  if (!remembered || (active && active !== document.body && document.contains(active))) {
    return;
  }
  var row = null;
  for (var i = 0; i < remembered.ids.length && !row; i++) {
    row = document.getElementById(remembered.ids[i]);
  }
  if (!row) {
    return;
  }
  var controls = focusableIn(row);
  var same = controls.filter(function (control) {
    return control.textContent.trim() === remembered.label && control.name === remembered.name;
  })[0];
  var buttons = controls.filter(function (control) {
    return control.tagName === "BUTTON";
  });
  var next = same || buttons[0] || controls[0];
  if (next) {
    next.focus();
  } else {
    row.setAttribute("tabindex", "-1");
    row.focus();
  }
});
