// The demo page: every flow of stepup, on the demo's own API. The access token lives in this
// module's memory only (never localStorage): a reload signs out, a remembered device stays.
// Tokens are bound (DPoP) to a key this page makes and WebCrypto will not export: a script that
// reads the token cannot use it elsewhere.
import { createClient, DpopKey, fetchBound, requestApproval, requestStepUp } from "./stepup.js";
import * as passkeys from "./passkeys.js";

const $ = (id) => document.getElementById(id);
/** The token answer (`{access_token, token_type, …}`) of the signed-in user. */
let accessToken = null;
/** Where WebCrypto is missing (a page not served over https or from localhost), bearer tokens. */
const dpop = globalThis.crypto?.subtle ? await DpopKey.generate().catch(() => null) : null;

// ---- talking to the API ---------------------------------------------------------------------

/** An error the API answered: its `error_description` is what the person sees. */
class ApiError extends Error {
  constructor(status, body) {
    super(body.error_description ?? body.error ?? `request failed (${status})`);
    this.status = status;
    this.body = body;
  }
}

async function bodyOf(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const json = (method, value) => ({
  method,
  headers: { "Content-Type": "application/json" },
  body: value === undefined ? undefined : JSON.stringify(value),
});

/** Calls the API as the signed-in user, meeting step-up challenges with the factor prompt. */
const api = createClient({
  getToken: () => accessToken,
  dpop,
  stepUp: async (required) => {
    const challenge = await requestStepUp(accessToken, required, { dpop });
    const why = required.acrValues.includes("phr")
      ? "This needs a passkey: confirm with yours."
      : "Confirm it is you with a second factor.";
    const signedIn = await secondFactor(challenge, why, required.acrValues.includes("phr"));
    accessToken = signedIn;
    show("signed-in");
    await showSession();
    return accessToken;
  },
  // One operation (a transfer): the factor approves this amount and payee, and nothing else.
  approve: async ({ transactionId, operation }) => {
    const challenge = await requestApproval(accessToken, transactionId, { dpop });
    const approved = await secondFactor(challenge, `Approve ${describe(operation)}`);
    show("signed-in");
    return approved.transaction_grant;
  },
});

/** "125.00 EUR to ACME Ltd", from a payment's canonical fields. */
function describe(payment) {
  const amount = Number(payment.amount);
  const shown = Number.isFinite(amount) ? amount.toFixed(2) : payment.amount;
  return `${shown} ${payment.currency} to ${payment.payee}`;
}

const call = async (url, init = {}) => bodyOf(await api(url, init));
const open = async (url, init = {}) => bodyOf(await fetch(url, init));
/** A request that answers a token: bound to the page's DPoP key. */
const obtain = async (url, init) => bodyOf(await fetchBound(dpop, url, init));

// ---- messages -------------------------------------------------------------------------------

function notice(text) {
  $("error").textContent = "";
  $("notice").textContent = text;
}

function failure(error) {
  $("notice").textContent = "";
  $("error").textContent = error instanceof Error ? error.message : String(error);
}

/** Runs a handler, showing what went wrong instead of throwing. */
const guarded = (handler) => async (event) => {
  event?.preventDefault?.();
  try {
    await handler(event);
  } catch (error) {
    failure(error);
  }
};

const on = (id, type, handler) => $(id).addEventListener(type, guarded(handler));

function show(view) {
  for (const id of ["signed-out", "mfa-step", "signed-in"]) $(id).hidden = id !== view;
  $("sign-out").hidden = view !== "signed-in";
}

function fill(list, items, render) {
  list.replaceChildren(...items.map(render));
  if (!items.length) list.replaceChildren(element("li", { className: "empty" }, "none"));
}

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

const when = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : "never");

// ---- signing in -----------------------------------------------------------------------------

async function signedIn(answer) {
  accessToken = answer;
  $("sign-in-password").value = "";
  notice("Signed in.");
  show("signed-in");
  await refresh();
}

/** A login answer: a token, or the second-factor step first. */
async function loginAnswered(answer) {
  if (answer.mfa_required) {
    await signedIn(await secondFactor(answer, "Enter your second factor."));
  } else {
    await signedIn(answer);
  }
}

on("sign-in-form", "submit", async () => {
  const answer = await obtain(
    "/oauth/authorize",
    json("POST", { username: $("sign-in-email").value, password: $("sign-in-password").value }),
  );
  await loginAnswered(answer);
});

on("passkey-sign-in", "click", async () => {
  const started = await open("/oauth/authorize/passkey/start", json("POST"));
  const credential = await passkeys.get(started);
  const answer = await obtain(
    "/oauth/authorize/passkey",
    json("POST", { passkey_token: started.passkey_token, credential }),
  );
  await signedIn(answer);
  notice("Signed in with a passkey.");
});

on("register-form", "submit", async () => {
  const email = $("register-email").value;
  await open("/api/register", json("POST", { email, password: $("register-password").value }));
  $("register-password").value = "";
  $("sign-in-email").value = email;
  notice("Account created: sign in below.");
});

/** Forgets the token (the only copy) and shows the signed-out page. */
function signedOut(message) {
  accessToken = null;
  $("whoami").textContent = "";
  show("signed-out");
  notice(message);
}

on("sign-out", "click", async () => signedOut("Signed out."));

// ---- the second-factor step (login and step-up) ----------------------------------------------

let pendingStep = null;

/**
 * Shows the factor prompt for `challenge` ({mfa_token, methods}) and resolves to the token
 * answer once a factor succeeds; rejects when the person cancels.
 */
function secondFactor(challenge, reason, passkeyOnly = false) {
  pendingStep?.reject(new Error("replaced by a newer prompt"));
  const methods = passkeyOnly ? challenge.methods.filter((m) => m === "webauthn") : challenge.methods;
  $("mfa-reason").textContent = reason;
  $("mfa-totp-form").hidden = !methods.includes("totp");
  $("mfa-sms-form").hidden = !methods.includes("sms");
  $("mfa-webauthn").hidden = !methods.includes("webauthn");
  $("mfa-backup-form").hidden = !methods.includes("backup_code");
  $("mfa-none").hidden = methods.length > 0;
  $("mfa-remember").checked = false;
  notice("");
  const back = $("signed-in").hidden ? "signed-out" : "signed-in";
  show("mfa-step");
  return new Promise((resolve, reject) => {
    pendingStep = {
      token: challenge.mfa_token,
      resolve: (answer) => {
        pendingStep = null;
        resolve(answer);
      },
      reject: (error) => {
        pendingStep = null;
        show(back);
        reject(error);
      },
    };
    (methods.includes("totp") ? $("mfa-totp-code") : $("mfa-cancel")).focus();
  });
}

async function completeStep(proof) {
  const answer = await obtain(
    "/oauth/authorize/mfa",
    json("POST", { mfa_token: pendingStep.token, remember_device: $("mfa-remember").checked, ...proof }),
  );
  for (const id of ["mfa-totp-code", "mfa-sms-code", "mfa-backup-code"]) $(id).value = "";
  if (answer.remaining_codes !== undefined) notice(`Backup code used: ${answer.remaining_codes} left.`);
  pendingStep.resolve(answer);
}

on("mfa-totp-form", "submit", () => completeStep({ method: "totp", code: $("mfa-totp-code").value }));
on("mfa-sms-form", "submit", () => completeStep({ method: "sms", code: $("mfa-sms-code").value }));
on("mfa-backup-form", "submit", () =>
  completeStep({ method: "backup_code", backup_code: $("mfa-backup-code").value }),
);
on("mfa-sms-send", "click", async () => {
  const sent = await open("/oauth/authorize/mfa/sms/send", json("POST", { mfa_token: pendingStep.token }));
  notice(sent.message);
  $("mfa-sms-code").focus();
});
on("mfa-passkey", "click", async () => {
  const options = await open("/oauth/authorize/mfa/webauthn/start", json("POST", { mfa_token: pendingStep.token }));
  const credential = await passkeys.get(options);
  await completeStep({ method: "webauthn", credential });
});
on("mfa-cancel", "click", async () => {
  pendingStep?.reject(new Error("Cancelled."));
});

// ---- the signed-in page ---------------------------------------------------------------------

async function showSession() {
  const me = await call("/api/me");
  $("whoami").textContent = `Signed in: ${me.sub}`;
  $("session-acr").textContent = me.acr;
  $("session-amr").textContent = (me.amr ?? []).join(", ") || "none";
  $("session-auth-time").textContent = when(me.auth_time);
  $("session-token").textContent =
    accessToken?.token_type === "DPoP"
      ? `DPoP-bound to a key this page cannot export (extractable: ${dpop.extractable})`
      : "bearer";
}

async function showFactors() {
  const summary = await call("/api/mfa/factors");
  const active = summary.factors.filter((factor) => factor.active);
  fill($("factor-list"), active, (factor) => {
    const name = { totp: "Authenticator app", webauthn: "Passkey", sms: "Phone (SMS)" }[factor.method] ?? factor.method;
    const detail = [factor.label, factor.phone, factor.locked ? "locked" : null, factor.restricted ? "restricted" : null]
      .filter(Boolean)
      .join(" · ");
    return element("li", {}, element("strong", {}, name), detail ? ` ${detail}` : "", ` (last used: ${when(factor.last_used_at)})`);
  });
  $("backup-remaining").textContent = `${summary.backup_codes_remaining} backup codes left.`;
  const has = (method) => active.some((factor) => factor.method === method);
  $("totp-setup").hidden = has("totp");
  $("totp-remove").hidden = !has("totp");
  $("sms-enroll-form").hidden = has("sms");
  $("sms-remove").hidden = !has("sms");
  $("backup-regenerate").hidden = active.length === 0;
}

async function showPasskeys() {
  const { credentials } = await call("/api/mfa/webauthn/credentials");
  fill($("passkey-list"), credentials, (passkey) => {
    const rename = element("button", { type: "button", textContent: "Rename" });
    rename.addEventListener("click", guarded(async () => {
      const label = prompt("A name for this passkey", passkey.label ?? "");
      if (label === null) return;
      await call(`/api/mfa/webauthn/credentials/${encodeURIComponent(passkey.id)}`, json("PATCH", { label }));
      await refresh();
    }));
    const remove = element("button", { type: "button", textContent: "Remove", className: "danger" });
    remove.addEventListener("click", guarded(async () => {
      await call(`/api/mfa/webauthn/credentials/${encodeURIComponent(passkey.id)}`, { method: "DELETE" });
      notice("Passkey removed.");
      await refresh();
    }));
    const synced = passkey.backup_eligible ? " · synced passkey" : "";
    return element("li", {}, element("strong", {}, passkey.label ?? "Passkey"), `${synced} (last used: ${when(passkey.last_used_at)}) `, rename, remove);
  });
}

async function showDevices() {
  const { devices } = await call("/api/mfa/devices");
  fill($("device-list"), devices, (device) => {
    const revoke = element("button", { type: "button", textContent: "Forget" });
    revoke.addEventListener("click", guarded(async () => {
      await call(`/api/mfa/devices/${encodeURIComponent(device.id)}`, { method: "DELETE" });
      await refresh();
    }));
    const name = device.user_agent ? device.user_agent.slice(0, 60) : "A browser";
    return element("li", {}, `${name}${device.current ? " (this one)" : ""}, until ${when(device.expires_at)} `, revoke);
  });
}

async function showEvents() {
  const { events } = await call("/api/mfa/events");
  fill($("event-list"), events.slice().reverse(), (event) =>
    element("li", {}, element("code", {}, event.kind), ` ${when(event.at)}`),
  );
}

async function refresh() {
  await showSession();
  await showFactors();
  await showPasskeys();
  await showDevices();
  await showEvents();
}

function showBackupCodes(codes) {
  if (!codes?.length) return;
  fill($("backup-code-list"), codes, (code) => element("li", {}, element("code", {}, code)));
  const file = new Blob([`stepup demo backup codes\n\n${codes.join("\n")}\n`], { type: "text/plain" });
  $("backup-download").href = URL.createObjectURL(file);
  $("backup-codes").hidden = false;
  $("backup-codes").dataset.codes = codes.join("\n");
}

on("totp-setup", "click", async () => {
  const setup = await call("/api/mfa/setup", { method: "POST" });
  $("totp-qr").src = setup.qr_code;
  $("totp-secret").textContent = setup.secret;
  $("totp-enroll").hidden = false;
  $("totp-confirm-code").focus();
});

on("totp-confirm-form", "submit", async () => {
  const done = await call("/api/mfa/verify-setup", json("POST", { code: $("totp-confirm-code").value }));
  $("totp-confirm-code").value = "";
  $("totp-enroll").hidden = true;
  showBackupCodes(done.backup_codes);
  notice("Authenticator app enabled.");
  await refresh();
});

on("totp-remove", "click", async () => {
  await call("/api/mfa/totp", { method: "DELETE" });
  notice("Authenticator app removed.");
  await refresh();
});

on("backup-regenerate", "click", async () => {
  const fresh = await call("/api/mfa/backup-codes/regenerate", { method: "POST" });
  showBackupCodes(fresh.backup_codes);
  notice("New backup codes: the old ones no longer work.");
  await refresh();
});

on("backup-copy", "click", async () => {
  await navigator.clipboard.writeText($("backup-codes").dataset.codes ?? "");
  notice("Backup codes copied.");
});

on("backup-hide", "click", async () => {
  $("backup-codes").hidden = true;
  $("backup-code-list").replaceChildren();
  delete $("backup-codes").dataset.codes;
});

on("passkey-add-form", "submit", async () => {
  const started = await call("/api/mfa/webauthn/register/start", { method: "POST" });
  const credential = await passkeys.create(started);
  const label = $("passkey-label").value.trim() || undefined;
  const done = await call(
    "/api/mfa/webauthn/register/finish",
    json("POST", { registration_token: started.registration_token, credential, label }),
  );
  $("passkey-label").value = "";
  showBackupCodes(done.backup_codes);
  notice("Passkey added.");
  await refresh();
});

on("sms-enroll-form", "submit", async () => {
  const sent = await call("/api/mfa/sms/enroll", json("POST", { phone: $("sms-phone").value }));
  $("sms-verify-form").hidden = false;
  $("sms-code").focus();
  notice(sent.message ?? "Code sent.");
});

on("sms-verify-form", "submit", async () => {
  const done = await call("/api/mfa/sms/verify", json("POST", { code: $("sms-code").value }));
  $("sms-code").value = "";
  $("sms-verify-form").hidden = true;
  showBackupCodes(done.backup_codes);
  notice("Phone verified.");
  await refresh();
});

on("sms-remove", "click", async () => {
  await call("/api/mfa/sms", { method: "DELETE" });
  notice("Phone removed.");
  await refresh();
});

on("devices-revoke-all", "click", async () => {
  await call("/api/mfa/devices", { method: "DELETE" });
  notice("Every remembered device forgotten.");
  await refresh();
});

on("open-vault", "click", async () => {
  const vault = await call("/api/vault");
  $("vault").textContent = vault.secret;
});

on("transfer-form", "submit", async () => {
  const payment = {
    amount: $("transfer-amount").value.trim(),
    currency: $("transfer-currency").value.trim(),
    payee: $("transfer-payee").value.trim(),
  };
  const sent = await call("/api/transfers", json("POST", payment));
  notice(`Sent ${describe(sent.transferred)}.`);
});

on("delete-account", "click", async () => {
  if (!confirm("Delete the account and every factor? This cannot be undone.")) return;
  await call("/api/account", { method: "DELETE" });
  signedOut("Account deleted.");
});

// ---- recovery -------------------------------------------------------------------------------

on("recovery-request-form", "submit", async () => {
  await open("/api/mfa/recovery/request", json("POST", { email: $("recovery-email").value }));
  $("recovery-confirm-form").hidden = false;
  notice("If the address has an account, a recovery code is on its way.");
});

on("recovery-confirm-form", "submit", async () => {
  const answer = await open(
    "/api/mfa/recovery/confirm",
    json("POST", { token: $("recovery-code").value.trim(), password: $("recovery-password").value }),
  );
  $("recovery-password").value = "";
  if (answer.access_token) {
    await signedIn(answer);
    notice("Account recovered: every factor was removed. Enroll a new one.");
  } else {
    notice(answer.message ?? "Recovery requested.");
  }
});

// ---- the development outbox -----------------------------------------------------------------

async function showOutbox() {
  const response = await fetch("/dev/outbox");
  if (response.status === 404) {
    $("dev-panel").hidden = true;
    return;
  }
  const outbox = await bodyOf(response);
  $("dev-panel").hidden = false;
  fill($("sms-outbox"), outbox.sms, (sms) => element("li", {}, element("strong", {}, sms.to), ` ${sms.body}`));
  fill($("mail-outbox"), outbox.mail, (mail) =>
    element("li", {}, element("strong", {}, `${mail.to}: ${mail.subject}`), element("pre", {}, mail.body)),
  );
}

on("outbox-refresh", "click", showOutbox);

show("signed-out");
if (!passkeys.supported()) {
  for (const id of ["passkey-sign-in", "passkey-add-form"]) $(id).hidden = true;
}
guarded(showOutbox)();
document.body.dataset.ready = "true";
