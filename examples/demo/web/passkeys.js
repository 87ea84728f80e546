// passkeys.js: WebAuthn ceremonies with the JSON stepup speaks. The server's `{publicKey}` options
// are what `PublicKeyCredential.parse…OptionsFromJSON` reads, and it takes the credential as
// `PublicKeyCredential.toJSON()` returns it. Browsers without those methods get the same
// conversion done here (base64url <-> ArrayBuffer).

const fromBase64url = (text) => {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(bytes, (c) => c.charCodeAt(0)).buffer;
};

const toBase64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

const withIds = (list) => (list ?? []).map((entry) => ({ ...entry, id: fromBase64url(entry.id) }));

function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: withIds(json.excludeCredentials),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    allowCredentials: withIds(json.allowCredentials),
  };
}

function credentialJSON(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const response = {};
  for (const name of ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"]) {
    if (credential.response[name]) response[name] = toBase64url(credential.response[name]);
  }
  if (credential.response.getTransports) response.transports = credential.response.getTransports();
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response,
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

/** Whether this browser can do WebAuthn at all. */
export const supported = () => typeof window.PublicKeyCredential === "function";

/** Creates a credential from the server's `{publicKey}` creation options; its JSON form. */
export async function create(options) {
  const credential = await navigator.credentials.create({ publicKey: creationOptions(options.publicKey) });
  return credentialJSON(credential);
}

/** Signs the server's `{publicKey}` request options with a credential; its JSON form. */
export async function get(options) {
  const credential = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
  return credentialJSON(credential);
}
