// authorize.js: the sign-in page of stepup's authorization endpoint (GET /oauth/authorize).
// No inline script (the page's Content-Security-Policy allows this file only). The page carries
// the authorization request's id; every step is a JSON call to stepup's own endpoints, and the
// last one answers `{redirect_to}`: the client's redirect URI with the code, state and iss.

const root = document.getElementById("stepup-authorize");
const requestId = root.dataset.request;
const $ = (id) => document.getElementById(id);
const show = (id, visible) => { $(id).hidden = !visible; };
const say = (text) => { $("message").textContent = text || ""; };

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  let answer = {};
  try { answer = await response.json(); } catch (_) { /* an empty body */ }
  if (!response.ok) {
    const error = new Error(answer.error_description || answer.error || `HTTP ${response.status}`);
    error.code = answer.error;
    throw error;
  }
  return answer;
}

// ---- WebAuthn: the JSON stepup speaks <-> the browser's ArrayBuffers.
const fromB64 = (text) => {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(bytes, (c) => c.charCodeAt(0)).buffer;
};
const toB64 = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  return { ...json, challenge: fromB64(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: fromB64(c.id) })) };
}
function credentialJSON(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const response = {};
  for (const name of ["clientDataJSON", "authenticatorData", "signature", "userHandle"]) {
    if (credential.response[name]) response[name] = toB64(credential.response[name]);
  }
  return { id: credential.id, rawId: toB64(credential.rawId), type: credential.type, response,
    clientExtensionResults: credential.getClientExtensionResults() };
}
async function sign(options) {
  const credential = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
  return credentialJSON(credential);
}

// ---- The steps.
let mfaToken = null;
let method = null;

function finish(answer) {
  if (answer.redirect_to) {
    say("Signed in. Returning to the application…");
    window.location.assign(answer.redirect_to);
  } else if (answer.mfa_required) {
    factorStep(answer);
  } else if (answer.sign_in) {
    passwordStep();
  } else {
    say("Unexpected answer; start again from the application.");
  }
}

function passwordStep() {
  show("password-step", true);
  show("factor-step", false);
  show("consent-step", false);
  show("passkey", typeof window.PublicKeyCredential === "function");
}

const labels = { totp: "Authenticator app", backup_code: "Backup code", sms: "Text message",
  email: "Email code", webauthn: "Passkey or security key" };

function factorStep(challenge) {
  mfaToken = challenge.mfa_token;
  show("password-step", false);
  show("consent-step", false);
  show("factor-step", true);
  const methods = $("methods");
  methods.replaceChildren();
  for (const kind of challenge.methods) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.method = kind;
    button.textContent = labels[kind] || kind;
    button.addEventListener("click", () => choose(kind).catch((error) => say(error.message)));
    methods.append(button);
  }
  const first = challenge.methods.find((kind) => kind !== "backup_code") || challenge.methods[0];
  if (first && first !== "webauthn") choose(first).catch((error) => say(error.message));
}

async function choose(kind) {
  method = kind;
  say("");
  if (kind === "webauthn") {
    show("code-form", false);
    const options = await post(`/oauth/authorize/mfa/${kind}/prepare`, { mfa_token: mfaToken });
    const credential = await sign(options);
    finish(await post("/oauth/authorize/mfa", { mfa_token: mfaToken, method: kind, credential,
      remember_device: $("remember").checked }));
    return;
  }
  if (kind === "sms" || kind === "email") {
    const sent = await post(`/oauth/authorize/mfa/${kind}/prepare`, { mfa_token: mfaToken });
    say(sent.message || "Code sent.");
  }
  $("code-label").textContent = labels[kind] || kind;
  show("code-form", true);
  $("code").value = "";
  $("code").focus();
}

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("");
  try {
    finish(await post("/oauth/authorize", { request_id: requestId,
      username: $("username").value, password: $("password").value }));
  } catch (error) { say(error.message); }
});

$("code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("");
  try {
    finish(await post("/oauth/authorize/mfa", { mfa_token: mfaToken, method, code: $("code").value.trim(),
      remember_device: $("remember").checked }));
  } catch (error) {
    say(error.message);
    if (error.code === "invalid_mfa_token") passwordStep();
  }
});

$("passkey").addEventListener("click", async () => {
  say("");
  try {
    const options = await post("/oauth/authorize/passkey/start", {});
    const credential = await sign(options);
    finish(await post("/oauth/authorize/passkey", { request_id: requestId,
      passkey_token: options.passkey_token, credential }));
  } catch (error) { say(error.message); }
});

$("continue").addEventListener("click", async () => {
  try { finish(await post("/oauth/authorize/session", { request_id: requestId })); }
  catch (error) { say(error.message); passwordStep(); }
});

$("other-account").addEventListener("click", () => passwordStep());

// Where the page starts.
const step = root.dataset.step;
if (step === "factor") {
  post("/oauth/authorize/session", { request_id: requestId }).then(finish)
    .catch((error) => { say(error.message); passwordStep(); });
} else if (step === "consent") {
  show("password-step", false);
  show("consent-step", true);
} else {
  passwordStep();
}
