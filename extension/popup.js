// popup.js: save the page, search, ask. Every failure is shown, never swallowed.
"use strict";
const { ext } = Cairn;
const $ = (id) => document.getElementById(id);

/** show puts a message (and a link, when there is something to do) at the top. */
function show(kind, text, link) {
  const n = $("notice");
  n.className = "notice" + (kind === "ok" ? "" : " " + kind);
  n.replaceChildren(document.createTextNode(text));
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.target = "_blank";
    a.rel = "noopener";
    a.textContent = link.label;
    a.dataset.testid = "notice-link";
    n.append(" ", a);
  }
}

function clearNotice() {
  $("notice").className = "notice hidden";
}

function fail(e) {
  const d = Cairn.describe(e);
  show(e.kind === "rate_limited" || e.kind === "offline" ? "warn" : "error", d.text, d.link);
  if (d.signIn) setSignedIn(false);
  if (e.kind === "quota") $("usage").textContent = "Quota used up";
  return d;
}

function setSignedIn(on, account) {
  $("signed-in").classList.toggle("hidden", !on);
  $("signed-out").classList.toggle("hidden", on);
  $("who").textContent = on && account ? `${account.workspace} · ${account.plan}` : "";
}

async function refreshUsage() {
  try {
    const u = await Cairn.call("GET", "/v1/usage");
    const reset = new Date(u.period.end).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
    $("usage").textContent = u.requests.limit === null
      ? `${u.requests.used} requests this month`
      : `${u.requests.used} of ${u.requests.limit} requests · resets ${reset}`;
  } catch (e) {
    if (e.kind !== "scope") fail(e);
  }
}

async function refreshQueue() {
  const q = await Cairn.queue();
  $("queue").textContent = q.length ? `${q.length} save${q.length === 1 ? "" : "s"} waiting to be retried` : "";
}

/**
 * pageTab is the page to save: the active tab of the window the popup belongs to,
 * or, when the popup is open as a tab of its own, the web page used last (the
 * one the person was reading).
 */
async function pageTab() {
  const [active] = await ext.tabs.query({ active: true, lastFocusedWindow: true });
  if (active && /^https?:/.test(active.url ?? "")) return active;
  const web = (await ext.tabs.query({})).filter((t) => /^https?:/.test(t.url ?? ""));
  web.sort((a, b) => (b.lastAccessed ?? 0) - (a.lastAccessed ?? 0));
  return web[0];
}

function capturePage() {
  return {
    url: location.href,
    title: document.title,
    html: document.documentElement.outerHTML,
    text: document.body ? document.body.innerText : "",
    selection: String(getSelection() ?? ""),
  };
}

async function savePage() {
  const btn = $("save");
  btn.disabled = true;
  clearNotice();
  $("save-result").textContent = "Saving…";
  try {
    const tab = await pageTab();
    if (!tab) throw new Error("There is no web page to save in this window.");
    let page;
    try {
      [{ result: page }] = await ext.scripting.executeScript({ target: { tabId: tab.id }, func: capturePage });
    } catch (e) {
      throw new Error("This page cannot be read by extensions (a browser page, or the web store): " + (e.message ?? e));
    }
    const r = await Cairn.save([Cairn.pageDocument(page)]);
    if (r.queued) {
      fail(r.error);
      $("save-result").textContent = "Not sent yet: queued, and retried automatically.";
    } else {
      const d = r.documents[0];
      if (d.status === "failed") {
        show("warn", "Saved, but not searchable: " + d.reason);
        $("save-result").textContent = "";
      } else {
        $("save-result").textContent = d.unchanged
          ? `Already saved, unchanged: “${page.title}”.`
          : `Saved “${page.title}” (${d.chunks} passage${d.chunks === 1 ? "" : "s"}).`;
      }
    }
  } catch (e) {
    $("save-result").textContent = "";
    fail(e);
  } finally {
    btn.disabled = false;
    refreshQueue();
    refreshUsage();
  }
}

function linkTo(url, text, label) {
  const a = document.createElement("a");
  a.href = Cairn.textFragmentURL(url, text);
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.textContent = label;
  return a;
}

async function search(ev) {
  ev.preventDefault();
  clearNotice();
  const list = $("results");
  list.replaceChildren();
  try {
    const r = await Cairn.call("POST", "/v1/search", { query: $("search-q").value, top_k: 5 });
    if (r.results.length === 0) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "Nothing you saved matches.";
      list.append(li);
    }
    for (const res of r.results) {
      const li = document.createElement("li");
      const title = res.title || res.url || res.document_id;
      li.append(res.url ? linkTo(res.url, res.text, title) : document.createTextNode(title));
      const s = document.createElement("span");
      s.className = "snippet";
      s.textContent = res.text.length > 220 ? res.text.slice(0, 219) + "…" : res.text;
      li.append(s);
      list.append(li);
    }
  } catch (e) {
    fail(e);
  }
  refreshUsage();
}

/**
 * citedSentences maps each citation number in the answer to the sentence that
 * cites it ("… lost its reds along the way. [1]" → 1: "… lost its reds along the way.").
 */
function citedSentences(answer) {
  const parts = answer.split(/\[(\d+)\]/);
  const out = {};
  let last = "";
  for (let i = 0; i < parts.length; i++) {
    if (i % 2 === 0) {
      const sentences = parts[i].trim().split(/(?<=[.!?])\s+/).filter(Boolean);
      if (sentences.length) last = sentences[sentences.length - 1];
    } else if (!(parts[i] in out)) {
      out[parts[i]] = last;
    }
  }
  return out;
}

/** passageFor is what a citation's link scrolls to: the cited sentence when the passage holds it. */
function passageFor(citationText, sentence) {
  const norm = (s) => s.replace(/\s+/g, " ").trim();
  return sentence && norm(citationText).includes(norm(sentence)) ? sentence : citationText;
}

async function ask(ev) {
  ev.preventDefault();
  clearNotice();
  $("answer").textContent = "Thinking…";
  $("citations").replaceChildren();
  try {
    const r = await Cairn.call("POST", "/v1/answer", { question: $("ask-q").value });
    $("answer").textContent = r.answer;
    const cited = citedSentences(r.answer);
    r.citations.forEach((c, i) => {
      const li = document.createElement("li");
      li.dataset.n = String(i + 1);
      const label = `[${i + 1}] ${c.title || c.url || c.document_id}`;
      li.append(c.url ? linkTo(c.url, passageFor(c.text, cited[i + 1]), label) : document.createTextNode(label));
      const s = document.createElement("span");
      s.className = "snippet";
      s.textContent = c.text.length > 160 ? c.text.slice(0, 159) + "…" : c.text;
      li.append(s);
      $("citations").append(li);
    });
  } catch (e) {
    $("answer").textContent = "";
    fail(e);
  }
  refreshUsage();
}

async function init() {
  $("settings").addEventListener("click", (e) => {
    e.preventDefault();
    ext.runtime.openOptionsPage();
  });
  $("open-options").addEventListener("click", () => ext.runtime.openOptionsPage());
  $("save").addEventListener("click", savePage);
  $("search-form").addEventListener("submit", search);
  $("ask-form").addEventListener("submit", ask);

  const s = await Cairn.settings();
  setSignedIn(Boolean(s.apiKey), s.account);
  const { lastEvent } = await ext.storage.local.get("lastEvent");
  if (lastEvent && Date.now() - lastEvent.at < 60_000) show(lastEvent.ok ? "ok" : "error", lastEvent.text);
  if (!s.apiKey) return;
  refreshQueue();
  refreshUsage();
  // Queued saves go out whenever the popup opens, not only on the background's schedule.
  if ((await Cairn.queue()).length) {
    const r = await Cairn.flushQueue(true);
    if (r.sent) show("ok", `${r.sent} queued save${r.sent === 1 ? "" : "s"} sent.`);
    refreshQueue();
  }
}

init();
