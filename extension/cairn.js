// cairn.js: the Cairn API client and the state the popup, the options page and
// the background worker share. Plain JavaScript for Chromium and Firefox (MV3):
// `browser` where it exists, `chrome` otherwise; both return promises.
(function (g) {
  "use strict";
  const ext = g.browser ?? g.chrome;

  // The most the API takes per document (shared/API.md): larger pages go as text.
  const MAX_HTML = 5 * 1024 * 1024;
  // Saves kept for a retry at most; the oldest go first when it is full.
  const MAX_QUEUE = 100;

  /** Why a call failed, in words a person can act on, with what to do next. */
  class CairnError extends Error {
    constructor(kind, message, extra = {}) {
      super(message);
      this.kind = kind; // offline, unauthorized, quota, rate_limited, scope, forbidden, invalid, unavailable
      Object.assign(this, extra);
    }
    /** Transient failures are queued and retried; the others need a person. */
    get retryable() {
      return this.kind === "offline" || this.kind === "unavailable" || this.kind === "rate_limited";
    }
  }

  async function settings() {
    const s = await ext.storage.local.get(["backend", "apiKey", "account"]);
    return {
      backend: s.backend || g.CAIRN_DEFAULT_BACKEND,
      apiKey: s.apiKey || "",
      account: s.account || null,
    };
  }

  /** normalizeBackend returns an http(s) origin-and-path without a trailing slash, or throws. */
  function normalizeBackend(input) {
    let u;
    try {
      u = new URL(String(input).trim());
    } catch {
      throw new CairnError("invalid", "The backend URL must be an address like https://cairn.example.com.");
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") {
      throw new CairnError("invalid", "The backend URL must start with https:// (or http:// for a local server).");
    }
    return (u.origin + u.pathname).replace(/\/+$/, "");
  }

  async function setBackend(input) {
    const backend = normalizeBackend(input);
    const s = await settings();
    if (backend !== s.backend) {
      // A key belongs to one deployment.
      await ext.storage.local.remove(["apiKey", "account"]);
    }
    await ext.storage.local.set({ backend });
    return backend;
  }

  /** call sends one API request and returns its JSON, or throws a CairnError. */
  async function call(method, path, body, opts = {}) {
    const s = await settings();
    const backend = opts.backend ?? s.backend;
    const key = opts.key ?? s.apiKey;
    const headers = {};
    if (key) headers["Authorization"] = "Bearer " + key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(backend + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit", // the API takes a key, never cookies
        cache: "no-store",
      });
    } catch (e) {
      throw new CairnError("offline", `Cannot reach Cairn at ${backend}: you may be offline, or the server is down.`);
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (resp.ok) return data;
    if (opts.raw) return { status: resp.status, data };
    const retryAfter = parseInt(resp.headers.get("Retry-After") || "0", 10) || 0;
    const code = data?.error?.code ?? "";
    const message = data?.error?.message ?? `Cairn answered ${resp.status}.`;
    switch (true) {
      case resp.status === 429 && code === "quota_exceeded":
        throw new CairnError("quota", message, {
          retryAfter,
          resetsAt: new Date(Date.now() + retryAfter * 1000),
          upgradeURL: backend + "/dashboard/billing",
        });
      case resp.status === 429:
        throw new CairnError("rate_limited", message, { retryAfter: Math.max(retryAfter, 1) });
      case resp.status === 401:
        throw new CairnError("unauthorized", message);
      case resp.status === 403 && code === "insufficient_scope":
        throw new CairnError("scope", message);
      case resp.status === 403:
        throw new CairnError("forbidden", message, { upgradeURL: backend + "/dashboard/billing" });
      case resp.status >= 500:
        throw new CairnError("unavailable", message, { retryAfter: Math.max(retryAfter, 5) });
      default:
        throw new CairnError("invalid", message);
    }
  }

  /** clientName names this browser for the key a sign-in makes. */
  function clientName() {
    const ua = g.navigator?.userAgent ?? "";
    const browserName = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrome\//.test(ua) ? "Chrome" : "a browser";
    const os = /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /CrOS/.test(ua) ? "ChromeOS" : /Android/.test(ua) ? "Android" : /Linux/.test(ua) ? "Linux" : "";
    return `Cairn for ${browserName}${os ? " on " + os : ""}`;
  }

  /** startSignIn asks the backend for device sign-in codes (RFC 8628). */
  async function startSignIn(backend) {
    return call("POST", "/v1/device/code", { client_name: clientName() }, { backend, key: "" });
  }

  /**
   * pollSignIn asks once whether the person approved. It resolves to
   * {state: "pending"|"slow_down"|"denied"|"expired"|"approved", interval?, error?}
   * and, once approved, stores the key and the account it belongs to.
   */
  async function pollSignIn(backend, deviceCode) {
    const r = await call("POST", "/v1/device/token", { device_code: deviceCode }, { backend, key: "", raw: true });
    if (r.api_key) {
      await useKey(r.api_key, backend);
      return { state: "approved" };
    }
    const err = r.data?.error;
    switch (err) {
      case "authorization_pending":
        return { state: "pending" };
      case "slow_down":
        return { state: "slow_down", interval: r.data.interval };
      case "access_denied":
        return { state: "denied", error: r.data.error_description };
      case "expired_token":
      case "invalid_grant":
        return { state: "expired", error: r.data.error_description };
    }
    throw new CairnError(r.status === 429 ? "rate_limited" : "invalid", r.data?.error?.message ?? `Cairn answered ${r.status}.`);
  }

  /** useKey checks a key with GET /v1/me and keeps it with its account. */
  async function useKey(key, backend) {
    key = String(key).trim();
    if (!/^ck_live_[0-9A-Za-z]{38}$/.test(key)) {
      throw new CairnError("invalid", "That is not a Cairn API key: keys look like ck_live_ followed by 38 letters and digits.");
    }
    const me = await call("GET", "/v1/me", undefined, { backend, key });
    const account = { workspace: me.workspace.name, plan: me.workspace.plan, keyName: me.key.name, keyPrefix: me.key.prefix };
    await ext.storage.local.set({ apiKey: key, account, ...(backend ? { backend } : {}) });
    return account;
  }

  async function signOut() {
    await ext.storage.local.remove(["apiKey", "account"]);
  }

  // ---- saving, with a queue for saves that could not be sent ----

  /** pageDocument turns a captured page into a document for POST /v1/documents. */
  function pageDocument(page) {
    const doc = { url: page.url, metadata: { source: "extension" } };
    if (page.html && page.html.length <= MAX_HTML) {
      doc.html = page.html;
    } else {
      doc.text = page.text || page.title || page.url;
      doc.title = page.title;
    }
    return doc;
  }

  /** selectionDocument is a selection saved on its own, beside (not replacing) its page. */
  async function selectionDocument(text, url, title) {
    const digest = await g.crypto.subtle.digest("SHA-256", new TextEncoder().encode(url + "\n" + text));
    const hex = Array.from(new Uint8Array(digest).slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
    const quote = text.replace(/\s+/g, " ").trim();
    return {
      id: "sel_" + hex,
      text,
      url,
      title: (quote.length > 60 ? quote.slice(0, 59) + "…" : quote) + (title ? " — " + title : ""),
      metadata: { source: "extension", kind: "selection" },
    };
  }

  /**
   * save stores documents. A save that fails for a passing reason (offline, the
   * server down, the rate limit) is queued and retried later; it resolves to
   * {documents} or {queued: true, error}. Other failures throw.
   */
  async function save(docs) {
    try {
      const r = await call("POST", "/v1/documents", { documents: docs });
      return { documents: r.documents };
    } catch (e) {
      if (e instanceof CairnError && e.retryable) {
        await enqueue(docs, e);
        return { queued: true, error: e };
      }
      throw e;
    }
  }

  async function queue() {
    return (await ext.storage.local.get("queue")).queue ?? [];
  }

  async function enqueue(docs, err) {
    const q = await queue();
    const wait = (err.retryAfter ?? 60) * 1000;
    q.push({ docs, queuedAt: Date.now(), attempts: 1, nextAt: Date.now() + wait, kind: err.kind, lastError: err.message });
    await ext.storage.local.set({ queue: q.slice(-MAX_QUEUE) });
  }

  /**
   * flushQueue sends the queued saves that are due; with force (a person opened
   * the popup, or pressed "Retry now"), every one but those still inside a rate
   * limit's wait. Each one that fails again waits longer: the server's
   * Retry-After, or twice as long as before, up to an hour. It resolves to
   * {sent, left, error}.
   */
  async function flushQueue(force = false) {
    const q = await queue();
    const left = [];
    let sent = 0;
    let lastError = null;
    for (const item of q) {
      if ((!force || item.kind === "rate_limited") && item.nextAt > Date.now()) {
        left.push(item);
        continue;
      }
      try {
        await call("POST", "/v1/documents", { documents: item.docs });
        sent++;
      } catch (e) {
        lastError = e;
        if (e instanceof CairnError && (e.retryable || e.kind === "quota")) {
          const backoff = Math.min(60 * 60 * 1000, 60 * 1000 * 2 ** item.attempts);
          const wait = e.retryAfter ? e.retryAfter * 1000 : backoff;
          left.push({ ...item, attempts: item.attempts + 1, nextAt: Date.now() + wait, kind: e.kind, lastError: e.message });
        }
        // Anything else (a refused document, a revoked key) cannot succeed later: dropped, and reported.
      }
    }
    // Saves queued meanwhile by another part of the extension are kept.
    const now = await queue();
    const added = now.filter((x) => !q.some((y) => y.queuedAt === x.queuedAt));
    await ext.storage.local.set({ queue: left.concat(added) });
    return { sent, left: left.length + added.length, error: lastError };
  }

  // ---- citations ----

  /**
   * textFragmentURL links to url scrolled to passage, with a URL text fragment
   * (#:~:text=): the passage's first words, up to the end of its first sentence,
   * which a browser finds on the page and highlights.
   */
  function textFragmentURL(url, passage) {
    if (!url) return "";
    const clean = String(passage ?? "").replace(/\s+/g, " ").trim();
    const sentence = clean.split(/(?<=[.!?])\s/)[0] ?? "";
    const words = sentence.split(" ").filter(Boolean).slice(0, 8).join(" ");
    const base = url.split("#")[0];
    if (!words) return base;
    const enc = (s) => encodeURIComponent(s).replace(/-/g, "%2D").replace(/,/g, "%2C").replace(/&/g, "%26");
    return `${base}#:~:text=${enc(words)}`;
  }

  /** describe says what went wrong and what to do, for the popup and the options page. */
  function describe(e) {
    if (!(e instanceof CairnError)) return { text: String(e?.message ?? e) };
    switch (e.kind) {
      case "quota": {
        const day = e.resetsAt.toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
        return { text: `This month's requests are used up. The quota resets on ${day}.`, link: { href: e.upgradeURL, label: "Upgrade your plan" }, resetsAt: e.resetsAt };
      }
      case "rate_limited":
        return { text: `Too many requests just now: wait ${e.retryAfter} second${e.retryAfter === 1 ? "" : "s"} and try again.` };
      case "unauthorized":
        return { text: "This browser's key no longer works (revoked, expired or rolled). Sign in again.", signIn: true };
      default:
        return { text: e.message, link: e.upgradeURL && e.kind === "forbidden" ? { href: e.upgradeURL, label: "See plans" } : undefined };
    }
  }

  g.Cairn = {
    ext, CairnError, settings, setBackend, normalizeBackend, call, clientName, startSignIn, pollSignIn, useKey, signOut,
    pageDocument, selectionDocument, save, queue, flushQueue, textFragmentURL, describe,
  };
})(globalThis);
