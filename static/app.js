// Cairn dashboard behaviour that htmx does not cover: copy buttons and confirmations.
// Loaded as a file (no inline scripts), so the Content-Security-Policy can forbid them.
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("[data-copy]");
  if (!btn) return;
  var src = document.getElementById(btn.getAttribute("data-copy"));
  if (!src) return;
  var text = src.value !== undefined ? src.value : src.textContent;
  var done = function () {
    var old = btn.textContent;
    btn.textContent = "Copied";
    btn.classList.add("is-done");
    setTimeout(function () { btn.textContent = old; btn.classList.remove("is-done"); }, 1600);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { src.select && src.select(); });
  } else if (src.select) {
    src.select();
    document.execCommand("copy");
    done();
  }
});

document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) ev.preventDefault();
});

// htmx requests carry the CSRF token from the page's meta tag.
document.addEventListener("htmx:configRequest", function (ev) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) ev.detail.headers["X-CSRF-Token"] = meta.content;
});

// Disclosure buttons ([data-disclosure] with aria-controls) show and hide a block
// that CSS collapses on narrow screens once this script runs (html.js): the
// dashboard's navigation, the API reference's contents. Without JavaScript the
// block simply stays open.
document.documentElement.classList.add("js");
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("[data-disclosure]");
  if (!btn) return;
  var target = document.getElementById(btn.getAttribute("aria-controls"));
  if (!target) return;
  var open = btn.getAttribute("aria-expanded") !== "true";
  btn.setAttribute("aria-expanded", open ? "true" : "false");
  target.classList.toggle("open", open);
});

// An htmx request that fails shows why above the page: the server answers such
// requests with a short alert (views.ErrorFragment); anything else (a proxy's page,
// no answer at all) gets a plain sentence. Text only, never the response's markup.
function showPageError(text) {
  var box = document.getElementById("page-messages");
  if (!box) return;
  var div = document.createElement("div");
  div.className = "alert error";
  div.setAttribute("role", "alert");
  div.textContent = text;
  box.replaceChildren(div);
}
document.addEventListener("htmx:responseError", function (ev) {
  var alert = new DOMParser().parseFromString(ev.detail.xhr.responseText || "", "text/html").querySelector(".alert");
  showPageError(alert ? alert.textContent.trim() : "Something went wrong (" + ev.detail.xhr.status + "). Please try again.");
});
document.addEventListener("htmx:sendError", function () {
  showPageError("The server could not be reached. Check your connection and try again.");
});
