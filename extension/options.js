// options.js: the backend URL and signing in, by the device flow or a pasted key.
"use strict";
const { ext } = Cairn;
const $ = (id) => document.getElementById(id);
let polling = null; // the sign-in being waited for

function show(kind, text) {
  const n = $("notice");
  n.className = "notice" + (kind === "ok" ? "" : " " + kind);
  n.textContent = text;
}

async function render() {
  const s = await Cairn.settings();
  // What the person is typing is not overwritten.
  if (document.activeElement !== $("backend")) $("backend").value = s.backend;
  const signedIn = Boolean(s.apiKey);
  $("signin-box").classList.toggle("hidden", signedIn);
  $("signout").classList.toggle("hidden", !signedIn);
  $("account").textContent = signedIn && s.account
    ? `Signed in to “${s.account.workspace}” (${s.account.plan} plan) with the key “${s.account.keyName}” (${s.account.keyPrefix}…).`
    : "Not signed in.";
  const q = await Cairn.queue();
  $("queue").textContent = q.length
    ? `${q.length} save${q.length === 1 ? "" : "s"} could not be sent yet and will be retried (last error: ${q[q.length - 1].lastError})`
    : "No saves are waiting.";
}

async function signIn() {
  if (polling) polling.cancelled = true;
  const backend = (await Cairn.settings()).backend;
  let codes;
  try {
    codes = await Cairn.startSignIn(backend);
  } catch (e) {
    show("error", Cairn.describe(e).text);
    return;
  }
  $("device").classList.remove("hidden");
  const link = $("verify-link");
  link.href = codes.verification_uri_complete;
  link.textContent = codes.verification_uri;
  $("user-code").textContent = codes.user_code;
  $("device-status").textContent = "Waiting for you to approve…";
  const job = { cancelled: false };
  polling = job;
  let interval = codes.interval;
  const deadline = Date.now() + codes.expires_in * 1000;
  while (!job.cancelled && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, interval * 1000));
    if (job.cancelled) return;
    let r;
    try {
      r = await Cairn.pollSignIn(backend, codes.device_code);
    } catch (e) {
      // Offline for a moment: keep waiting until the codes expire.
      $("device-status").textContent = Cairn.describe(e).text + " Still waiting…";
      continue;
    }
    switch (r.state) {
      case "pending":
        continue;
      case "slow_down":
        interval = r.interval ?? interval + 5;
        continue;
      case "approved":
        $("device").classList.add("hidden");
        show("ok", "Signed in. You can close this tab.");
        await render();
        return;
      case "denied":
        $("device").classList.add("hidden");
        show("error", "The sign-in was denied. Start again if that was a mistake.");
        return;
      case "expired":
        $("device").classList.add("hidden");
        show("error", "The code expired before it was approved. Start again.");
        return;
    }
  }
  if (!job.cancelled) {
    $("device").classList.add("hidden");
    show("error", "The code expired before it was approved. Start again.");
  }
}

$("backend-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const b = await Cairn.setBackend($("backend").value);
    show("ok", `Saving to ${b}.`);
  } catch (e) {
    show("error", Cairn.describe(e).text);
  }
  render();
});

$("signin").addEventListener("click", signIn);

$("key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const a = await Cairn.useKey($("key").value);
    $("key").value = "";
    show("ok", `Signed in to “${a.workspace}”.`);
  } catch (e) {
    show("error", Cairn.describe(e).text);
  }
  render();
});

$("signout").addEventListener("click", async () => {
  await Cairn.signOut();
  const b = (await Cairn.settings()).backend;
  show("ok", `Signed out. The key still exists: revoke it on ${b}/dashboard/keys if this browser should not have it.`);
  render();
});

$("retry").addEventListener("click", async () => {
  const r = await Cairn.flushQueue(true);
  show(r.error && r.left ? "warn" : "ok", `${r.sent} sent, ${r.left} still waiting.` + (r.error ? " " + Cairn.describe(r.error).text : ""));
  render();
});

render();
