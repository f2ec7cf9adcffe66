// background.js: the context-menu saves and the retries of queued saves. In
// Chromium it is the service worker and loads its libraries itself; Firefox loads
// them first as background scripts (see manifest.json).
if (typeof importScripts === "function" && typeof Cairn === "undefined") {
  importScripts("config.js", "cairn.js");
}

const ext = Cairn.ext;
const RETRY_ALARM = "cairn-retry";

async function setUp() {
  await ext.contextMenus.removeAll();
  ext.contextMenus.create({ id: "cairn-save-selection", title: "Save selection to Cairn", contexts: ["selection"] });
  ext.contextMenus.create({ id: "cairn-save-page", title: "Save page to Cairn", contexts: ["page"] });
  ext.alarms.create(RETRY_ALARM, { periodInMinutes: 1 });
}
ext.runtime.onInstalled.addListener(setUp);
ext.runtime.onStartup.addListener(setUp);

// The page's text, html and selection, read in the tab (the menu click grants
// the extension this tab, as activeTab).
function capturePage() {
  return {
    url: location.href,
    title: document.title,
    html: document.documentElement.outerHTML,
    text: document.body ? document.body.innerText : "",
    selection: String(getSelection() ?? ""),
  };
}

async function capture(tabId) {
  const [res] = await ext.scripting.executeScript({ target: { tabId }, func: capturePage });
  return res.result;
}

/** report shows the outcome on the toolbar button and keeps it for the popup. */
async function report(ok, text) {
  await ext.storage.local.set({ lastEvent: { ok, text, at: Date.now() } });
  await ext.action.setBadgeBackgroundColor({ color: ok ? "#0f766e" : "#b91c1c" });
  await ext.action.setBadgeText({ text: ok ? "✓" : "!" });
  setTimeout(() => ext.action.setBadgeText({ text: "" }), 4000);
}

/**
 * saveFromMenu saves what a context-menu item names: the selection (whole, read
 * in the tab when the extension may, else the menu's text) or the page.
 */
async function saveFromMenu(info, tab) {
  try {
    let docs;
    if (info.menuItemId === "cairn-save-selection") {
      let text = info.selectionText ?? "";
      let title = tab?.title ?? "";
      try {
        // The menu's selectionText can be cut short; the page has it whole.
        const page = await capture(tab.id);
        if (page.selection.trim()) text = page.selection;
        title = page.title || title;
      } catch {
        // A page the extension may not script (the browser's own pages): keep the menu's text.
      }
      docs = [await Cairn.selectionDocument(text, info.pageUrl ?? tab?.url ?? "", title)];
    } else {
      docs = [Cairn.pageDocument(await capture(tab.id))];
    }
    const r = await Cairn.save(docs);
    if (r.queued) {
      await report(false, Cairn.describe(r.error).text + " The save is queued and will be retried.");
    } else if (r.documents[0].status === "failed") {
      await report(false, "Saved, but not searchable: " + r.documents[0].reason);
    } else {
      await report(true, info.menuItemId === "cairn-save-selection" ? "Selection saved." : "Page saved.");
    }
  } catch (e) {
    await report(false, Cairn.describe(e).text);
  }
}
ext.contextMenus.onClicked.addListener(saveFromMenu);

ext.alarms.onAlarm.addListener(async (alarm) => {
  if (alarm.name !== RETRY_ALARM) return;
  const r = await Cairn.flushQueue();
  if (r.sent > 0) await report(true, `${r.sent} queued save${r.sent === 1 ? "" : "s"} sent.`);
});

ext.runtime.onMessage.addListener((msg, _sender, sendResponse) => {
  if (msg?.type === "flush") {
    Cairn.flushQueue(Boolean(msg.force)).then(sendResponse, (e) => sendResponse({ error: String(e) }));
    return true;
  }
  return false;
});
