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
