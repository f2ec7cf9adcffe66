// Cairn dashboard behaviour that htmx does not cover: copy buttons, confirmations,
// dismissing a shown secret. Loaded as a file (no inline scripts), so the
// Content-Security-Policy can forbid them.

// say announces text to screen readers through one polite live region.
function say(text) {
  var box = document.getElementById("live-status");
  if (!box) {
    box = document.createElement("div");
    box.id = "live-status";
    box.className = "sr-only";
    box.setAttribute("role", "status");
    document.body.appendChild(box);
  }
  box.textContent = "";
  setTimeout(function () { box.textContent = text; }, 30);
}

// A [data-copy=ID] button copies the value (or text) of #ID, says so on the button
// for a moment, and announces it.
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("[data-copy]");
  if (!btn) return;
  var src = document.getElementById(btn.getAttribute("data-copy"));
  if (!src) return;
  var text = src.value !== undefined ? src.value : src.textContent;
  var done = function () {
    if (!btn.hasAttribute("data-label")) btn.setAttribute("data-label", btn.innerHTML);
    btn.textContent = "Copied";
    btn.classList.add("is-done");
    btn.setAttribute("data-copied", "true");
    say("Copied to the clipboard.");
    clearTimeout(btn._copyTimer);
    btn._copyTimer = setTimeout(function () { btn.innerHTML = btn.getAttribute("data-label"); btn.classList.remove("is-done"); }, 1600);
  };
  var fallback = function () {
    if (src.select) {
      src.select();
      if (document.execCommand("copy")) { done(); return; }
    }
    say("Select the text and copy it with your keyboard.");
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});

// A [data-dismiss=ID] link hides #ID (a secret shown once) and puts the focus on
// the page's heading. Without JavaScript it is a link to the page without it.
document.addEventListener("click", function (ev) {
  var a = ev.target.closest("[data-dismiss]");
  if (!a) return;
  var box = document.getElementById(a.getAttribute("data-dismiss"));
  if (!box) return;
  ev.preventDefault();
  box.remove();
  var main = document.getElementById("main");
  if (main) main.focus();
});

// form[data-confirm] asks in the page before it is sent: a modal <dialog> (focus
// stays inside it, Escape cancels) with the question, Cancel and the action
// (data-confirm-action, else the form's button); Cancel has the focus. Without
// JavaScript the form is sent at once, as a plain form.
(function () {
  var dialog, message, ok, pending;
  function finish(confirmed) {
    var p = pending;
    pending = null;
    if (dialog.open) dialog.close();
    if (!p) return;
    if (confirmed) {
      p.form.setAttribute("data-confirmed", "true");
      if (p.form.requestSubmit) p.form.requestSubmit(p.submitter || undefined);
      else p.form.submit();
    } else if (p.submitter) {
      p.submitter.focus();
    }
  }
  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm";
    dialog.setAttribute("aria-labelledby", "confirm-message");
    dialog.setAttribute("data-testid", "confirm-dialog");
    message = document.createElement("p");
    message.id = "confirm-message";
    var row = document.createElement("div");
    row.className = "row";
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "btn secondary";
    cancel.textContent = "Cancel";
    cancel.setAttribute("data-testid", "confirm-cancel");
    cancel.addEventListener("click", function () { finish(false); });
    ok = document.createElement("button");
    ok.type = "button";
    ok.className = "btn danger";
    ok.setAttribute("data-testid", "confirm-ok");
    ok.addEventListener("click", function () { finish(true); });
    row.appendChild(cancel);
    row.appendChild(ok);
    dialog.appendChild(message);
    dialog.appendChild(row);
    // Escape cancels. The outcome is handled here and in the buttons, at once,
    // not in the "close" event, which comes later: a form confirmed right after
    // another was cancelled must not be taken for the cancelled one.
    dialog.addEventListener("cancel", function (ev) { ev.preventDefault(); finish(false); });
    document.body.appendChild(dialog);
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form.getAttribute("data-confirm");
    if (!msg) return;
    if (form.getAttribute("data-confirmed") === "true") {
      form.removeAttribute("data-confirmed");
      return;
    }
    if (typeof HTMLDialogElement === "undefined") {
      if (!window.confirm(msg)) ev.preventDefault();
      return;
    }
    ev.preventDefault();
    if (!dialog) build();
    var submitter = ev.submitter || form.querySelector("button[type=submit]");
    pending = { form: form, submitter: submitter };
    message.textContent = msg;
    ok.textContent = form.getAttribute("data-confirm-action") || (submitter ? submitter.textContent.trim() : "Confirm");
    dialog.showModal();
    // Cancel takes the focus: a second Enter must not do what cannot be undone.
    dialog.querySelector("[data-testid=confirm-cancel]").focus();
  });
})();

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

// A table or code block wider than its box scrolls inside it; such a box takes
// keyboard focus (tabindex=0) so it can be scrolled without a mouse, and only
// while it actually scrolls, so it is no needless stop otherwise.
(function () {
  function update(el) {
    if (el.scrollWidth > el.clientWidth + 1) {
      el.setAttribute("tabindex", "0");
      if (!el.hasAttribute("aria-label") && el.classList.contains("table-wrap")) {
        el.setAttribute("role", "region");
        var cap = el.querySelector("caption, th");
        el.setAttribute("aria-label", "Scrollable table" + (cap ? ": " + cap.textContent.trim() : ""));
      }
    } else if (el.getAttribute("tabindex") === "0" && !el.hasAttribute("data-always-focusable")) {
      el.removeAttribute("tabindex");
    }
  }
  // One observer for the page: observing an element it already watches does nothing,
  // so content htmx swaps in is added without piling up observers.
  var ro = window.ResizeObserver && new ResizeObserver(function (entries) { entries.forEach(function (e) { update(e.target); }); });
  function watch() {
    var els = document.querySelectorAll(".table-wrap, pre");
    if (!ro) {
      els.forEach(function (el) { el.setAttribute("tabindex", "0"); });
      return;
    }
    els.forEach(function (el) { update(el); ro.observe(el); });
  }
  watch();
  document.addEventListener("htmx:afterSettle", watch);
})();

// Ask: a form[data-stream="ID"] is posted with fetch and its answer, sent as
// server-sent events (delta, citations, done, error), is written into #ID as it
// arrives. Everything is written as text, never as markup. Without fetch streams
// the form posts as usual and the server renders the answer with the page.
(function () {
  if (!window.fetch || !window.ReadableStream || !window.TextDecoder) return;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function safeURL(u) { return /^https?:\/\//i.test(u || "") ? u : ""; }
  function spans(parent, list) {
    (list || []).forEach(function (s) { parent.appendChild(s.mark ? el("mark", "", s.text) : document.createTextNode(s.text)); });
  }
  function problem(box, msg) {
    var div = el("div", "alert error");
    div.setAttribute("role", "alert");
    div.setAttribute("data-testid", "notice-error");
    div.appendChild(document.createTextNode(msg.text || "Something went wrong. Please try again."));
    if (msg.href && msg.action) {
      div.appendChild(document.createTextNode(" "));
      var a = el("a", "alert-action", msg.action);
      a.href = msg.href;
      div.appendChild(a);
    }
    box.appendChild(div);
  }
  function citations(box, list) {
    if (!list || !list.length) return;
    box.appendChild(el("h3", "small", "Sources"));
    var ol = el("ol", "citations");
    ol.setAttribute("data-testid", "citations");
    list.forEach(function (c) {
      var li = el("li");
      li.value = c.n;
      var title = c.title || c.document_id;
      if (safeURL(c.url)) {
        var a = el("a", "", title);
        a.href = c.url; a.rel = "noopener noreferrer"; a.target = "_blank";
        li.appendChild(a);
      } else {
        li.appendChild(el("strong", "", title));
      }
      var p = el("p", "snippet small");
      spans(p, c.snippet);
      li.appendChild(p);
      ol.appendChild(li);
    });
    box.appendChild(ol);
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var id = form.getAttribute && form.getAttribute("data-stream");
    if (!id || ev.defaultPrevented) return;
    var box = document.getElementById(id);
    if (!box) return;
    ev.preventDefault();
    var button = form.querySelector("button[type=submit]");
    box.replaceChildren();
    box.setAttribute("aria-busy", "true");
    var status = el("p", "busy muted small", "Looking through your documents…");
    status.setAttribute("role", "status");
    box.appendChild(status);
    var text = el("div", "answer-text");
    text.setAttribute("data-testid", "answer-text");
    if (button) button.disabled = true;

    var done = function () {
      box.removeAttribute("aria-busy");
      if (status.parentNode) status.remove();
      if (button) button.disabled = false;
    };
    var handle = function (name, data) {
      if (name === "delta") {
        if (!text.parentNode) { status.textContent = "Answering…"; box.appendChild(text); }
        text.textContent += data.text;
      } else if (name === "citations") {
        citations(box, data.citations);
      } else if (name === "done") {
        if (data.extractive) {
          var note = el("p", "muted small", "Made of the best-matching sentences of your documents; no language model wrote it.");
          note.setAttribute("data-testid", "answer-mode");
          box.insertBefore(note, text.nextSibling);
        }
        done();
      } else if (name === "error") {
        problem(box, data);
        done();
      }
    };

    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "Accept": "text/event-stream" },
      credentials: "same-origin",
    }).then(function (resp) {
      var type = resp.headers.get("Content-Type") || "";
      if (!resp.ok || type.indexOf("text/event-stream") !== 0 || !resp.body) {
        return resp.text().then(function (body) {
          var alert = new DOMParser().parseFromString(body, "text/html").querySelector(".alert");
          problem(box, { text: alert ? alert.textContent.trim() : "The question could not be asked (" + resp.status + "). Please reload the page and try again." });
          done();
        });
      }
      var reader = resp.body.getReader();
      var decoder = new TextDecoder();
      var buf = "";
      var pump = function () {
        return reader.read().then(function (r) {
          buf += decoder.decode(r.value || new Uint8Array(), { stream: !r.done });
          var i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            var block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            var name = "message", data = "";
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event: ") === 0) name = line.slice(7);
              else if (line.indexOf("data: ") === 0) data += line.slice(6);
            });
            try { handle(name, JSON.parse(data)); } catch (e) { /* a malformed event is skipped */ }
          }
          if (r.done) { done(); return; }
          return pump();
        });
      };
      return pump();
    }).catch(function () {
      problem(box, { text: "The server could not be reached. Check your connection and try again." });
      done();
    });
  });
})();
