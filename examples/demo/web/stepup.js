// stepup.js: the client side of RFC 9470 step-up, for a page that calls an API protected by
// stepup's `RequireMfa` / `RequireAcr`. Plain ES module, no dependencies, no build step: copy it.
//
//   import { createClient, DpopKey } from "./stepup.js";
//   const dpop = await DpopKey.generate();      // optional: sender-constrained tokens (DPoP)
//   const api = createClient({
//     getToken: () => tokenAnswer,              // the token answer you hold, in memory
//     dpop,
//     stepUp: async (required) => {             // {acrValues, maxAge, description}
//       // Ask the user for the right factor (see requestStepUp), keep the new answer...
//       return newTokenAnswer;
//     },
//   });
//   const response = await api("/api/account", { method: "DELETE" });
//
// On a `401` whose `WWW-Authenticate` says `error="insufficient_user_authentication"`, the client
// reads `acr_values` and `max_age`, calls `stepUp`, and retries the original request once with
// the token it returns. A challenge that names a `transaction_id` (stepup's approval of one
// operation, `RequireTransaction`) goes to `approve` instead ({transactionId, operation}), whose
// grant the retry carries in `Stepup-Transaction`. Any other answer is handed back untouched.
//
// A token is the answer of a token endpoint (`{access_token, token_type}`) or a plain string (a
// bearer token). An answer with `token_type: "DPoP"` is bound to `dpop`'s key (RFC 9449): every
// request carrying it gets `Authorization: DPoP <token>` and a fresh proof signed by that key,
// which WebCrypto will not export, so a script that reads the token cannot take the key along.

/**
 * A DPoP key (RFC 9449): an ECDSA P-256 pair made by WebCrypto with a non-extractable private
 * half, and the proofs it signs. Proofs are dated by the server's clock as its `Date` header
 * last told it (a device's clock can be minutes off; the server accepts a minute).
 */
export class DpopKey {
  #privateKey;
  #jwk;
  #skew = 0;

  constructor(privateKey, jwk) {
    this.#privateKey = privateKey;
    this.#jwk = jwk;
  }

  /** A new key pair; the private key cannot be exported (`extractable: false`). */
  static async generate() {
    const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
    return new DpopKey(pair.privateKey, { kty, crv, x, y });
  }

  /** Whether the private key can leave WebCrypto (never, for a generated key). */
  get extractable() {
    return this.#privateKey.extractable;
  }

  /**
   * A proof for `method` on `url` (query and fragment left out, as RFC 9449 says), with `ath`,
   * the hash of `accessToken`, when one is sent with it.
   */
  async proof(method, url, accessToken) {
    const target = new URL(url, globalThis.location?.href);
    target.search = "";
    target.hash = "";
    const claims = {
      jti: crypto.randomUUID(),
      htm: method.toUpperCase(),
      htu: target.href,
      iat: Math.floor(Date.now() / 1000 + this.#skew),
    };
    if (accessToken) claims.ath = base64url(await crypto.subtle.digest("SHA-256", utf8(accessToken)));
    const header = { typ: "dpop+jwt", alg: "ES256", jwk: this.#jwk };
    const input = `${base64url(utf8(JSON.stringify(header)))}.${base64url(utf8(JSON.stringify(claims)))}`;
    // WebCrypto's ECDSA signature is r || s, the JWS form (RFC 7518 §3.4).
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, this.#privateKey, utf8(input));
    return `${input}.${base64url(signature)}`;
  }

  /**
   * Reads the server's clock off `response`'s `Date`; whether the estimate moved by more than
   * the few seconds a proof may run ahead (then a proof it refused is worth one more try).
   */
  learnClock(response) {
    const date = Date.parse(response.headers.get("Date") ?? "");
    if (!Number.isFinite(date)) return false;
    const skew = (date - Date.now()) / 1000;
    const moved = Math.abs(skew - this.#skew) > 3;
    if (moved) this.#skew = skew;
    return moved;
  }
}

const utf8 = (text) => new TextEncoder().encode(text);

function base64url(bytes) {
  const binary = String.fromCharCode(...new Uint8Array(bytes));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Whether `response` refuses a DPoP proof (`400` or `401` with `invalid_dpop_proof`). */
async function refusesProof(response) {
  if (response.status === 401) {
    return /invalid_dpop_proof/.test(response.headers.get("WWW-Authenticate") ?? "");
  }
  if (response.status !== 400) return false;
  const body = await response.clone().json().catch(() => ({}));
  return body.error === "invalid_dpop_proof";
}

/**
 * Sends a request with a proof made by `makeProof` (when there is a key), then once more with a
 * new proof if the server refused the first for its time and its `Date` set the key's clock
 * right. A refused proof changes nothing on the server, so the retry is safe.
 */
async function sendWithProof(send, dpop, url, init, withHeaders) {
  const attempt = async () => send(url, { ...init, headers: await withHeaders() });
  const response = await attempt();
  if (!dpop || !dpop.learnClock(response) || !(await refusesProof(response))) return response;
  return attempt();
}

/**
 * `fetch` for a request that obtains a token (a login, the MFA step, `POST /oauth/token`): with
 * a `DPoP` proof of `dpop`, so that the token answered is bound to it (`token_type: "DPoP"`).
 */
export function fetchBound(dpop, url, init = {}, send = (...args) => globalThis.fetch(...args)) {
  return sendWithProof(send, dpop, url, init, async () => {
    const headers = new Headers(init.headers ?? {});
    if (dpop) headers.set("DPoP", await dpop.proof(init.method ?? "GET", url));
    return headers;
  });
}

/** `{value, bound}` of a token answer or a bearer token string; `null` without one. */
function tokenOf(token) {
  if (!token) return null;
  if (typeof token === "string") return { value: token, bound: false };
  return { value: token.access_token, bound: token.token_type === "DPoP" };
}

/**
 * `init`'s headers with `token` in `Authorization`: `DPoP <token>` and a proof of `dpop` for
 * `method` on `url` when the token is bound to it, else `Bearer <token>`.
 */
async function withToken(init, token, dpop, url) {
  const headers = new Headers(init.headers ?? {});
  const held = tokenOf(token);
  if (held?.bound) {
    if (!dpop) throw new Error("this token is bound to a DPoP key: pass the key");
    headers.set("Authorization", `DPoP ${held.value}`);
    headers.set("DPoP", await dpop.proof(init.method ?? "GET", url, held.value));
  } else if (held) {
    headers.set("Authorization", `Bearer ${held.value}`);
  }
  return headers;
}

/** `fetch` as the holder of `token` (see [`withToken`]), retried once on the server's clock. */
function fetchAs(send, token, dpop, url, init) {
  return sendWithProof(send, dpop, url, init, () => withToken(init, token, dpop, url));
}

/**
 * The parameters of a `Bearer` or `DPoP` challenge (`WWW-Authenticate: Bearer error="…",
 * acr_values="…"`), names lower-cased; `null` when the header is absent or another scheme's.
 */
export function parseChallenge(header) {
  const bearer = /^\s*(?:Bearer|DPoP)(?:\s+(.*))?$/is.exec(header ?? "");
  if (!bearer) return null;
  const params = {};
  const param = /([A-Za-z0-9_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))/g;
  for (const [, name, quoted, token] of (bearer[1] ?? "").matchAll(param)) {
    params[name.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : token;
  }
  return params;
}

/**
 * What a response asks for when it is an RFC 9470 step-up challenge:
 * `{acrValues: ["mfa"], maxAge: 300 | null, description}`; `null` for anything else.
 */
export function stepUpRequired(response) {
  if (response.status !== 401) return null;
  const challenge = parseChallenge(response.headers.get("WWW-Authenticate"));
  if (challenge?.error !== "insufficient_user_authentication") return null;
  const maxAge = Number.parseInt(challenge.max_age ?? "", 10);
  return {
    acrValues: (challenge.acr_values ?? "").split(" ").filter(Boolean),
    maxAge: Number.isFinite(maxAge) ? maxAge : null,
    description: challenge.error_description ?? "",
    transactionId: challenge.transaction_id ?? null,
  };
}

/**
 * A `fetch` that sends `getToken()`'s token (see the top of this file) and answers a step-up
 * challenge by awaiting `stepUp(required)` for a fresh token, then retrying once. `stepUp` may
 * throw (the user cancelled): the error reaches the caller and the request is not retried.
 */
export function createClient({ getToken, dpop, stepUp, approve, fetch: send = (...args) => globalThis.fetch(...args) }) {
  const request = (url, init, token, grant) => {
    const headers = new Headers(init.headers ?? {});
    if (grant) headers.set("Stepup-Transaction", grant);
    return fetchAs(send, token, dpop, url, { ...init, headers });
  };
  return async function fetchWithStepUp(url, init = {}) {
    const response = await request(url, init, getToken());
    const required = stepUpRequired(response);
    if (!required) return response;
    if (required.transactionId && approve) {
      const body = await response.json().catch(() => ({}));
      const operation = (body.authorization_details ?? [])[0] ?? {};
      const grant = await approve({ ...required, operation });
      return request(url, init, getToken(), grant);
    }
    const token = await stepUp(required);
    return request(url, init, token);
  };
}

/** `POST` of `body` to stepup's `/oauth/authorize` as the holder of `token`; the MFA step. */
async function authorizeAs(token, body, { authorizeUrl = "/oauth/authorize", dpop } = {}, refused) {
  const init = {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetchAs((...args) => globalThis.fetch(...args), token, dpop, authorizeUrl, init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.mfa_token) {
    throw new Error(answer.error_description ?? `${refused} (${response.status})`);
  }
  return answer;
}

/**
 * Starts the approval of one operation at stepup's `POST /oauth/authorize` (the token and the
 * challenge's `transaction_id`): resolves to `{mfa_token, methods, authorization_details}`; the
 * second-factor step then answers `{transaction_grant}`. Options: `authorizeUrl`, `dpop`.
 */
export function requestApproval(token, transactionId, options) {
  return authorizeAs(token, { transaction_id: transactionId }, options, "approval refused");
}

/**
 * Starts the step-up of a signed-in user at stepup's `POST /oauth/authorize` (the token and
 * `acr_values`, no password): resolves to `{mfa_token, methods}` for the second-factor step, or
 * rejects with the API's `error_description`. Options: `authorizeUrl`, `dpop`.
 */
export function requestStepUp(token, required, options) {
  const acrValues = required.acrValues.length ? required.acrValues.join(" ") : "mfa";
  return authorizeAs(token, { acr_values: acrValues }, options, "step-up refused");
}
