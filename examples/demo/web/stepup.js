// stepup.js: the client side of RFC 9470 step-up, for a page that calls an API protected by
// stepup's `RequireMfa` / `RequireAcr`. Plain ES module, no dependencies, no build step: copy it.
//
//   import { createClient } from "./stepup.js";
//   const api = createClient({
//     getToken: () => accessToken,              // the token you hold, in memory
//     stepUp: async (required) => {             // {acrValues, maxAge, description}
//       // Ask the user for the right factor (see requestStepUp), keep the new token...
//       return newAccessToken;
//     },
//   });
//   const response = await api("/api/account", { method: "DELETE" });
//
// On a `401` whose `WWW-Authenticate` says `error="insufficient_user_authentication"`, the client
// reads `acr_values` and `max_age`, calls `stepUp`, and retries the original request once with
// the token it returns. A challenge that names a `transaction_id` (stepup's approval of one
// operation, `RequireTransaction`) goes to `approve` instead ({transactionId, operation}), whose
// grant the retry carries in `Stepup-Transaction`. Any other answer is handed back untouched.

/**
 * The parameters of a `Bearer` challenge (`WWW-Authenticate: Bearer error="…", acr_values="…"`),
 * names lower-cased; `null` when the header is absent or not a Bearer challenge.
 */
export function parseChallenge(header) {
  const bearer = /^\s*Bearer(?:\s+(.*))?$/is.exec(header ?? "");
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
 * A `fetch` that sends `Authorization: Bearer <getToken()>` and answers a step-up challenge by
 * awaiting `stepUp(required)` for a fresh token, then retrying once. `stepUp` may throw (the user
 * cancelled): the error reaches the caller and the request is not retried.
 */
export function createClient({ getToken, stepUp, approve, fetch: send = (...args) => globalThis.fetch(...args) }) {
  const withToken = (init, token, grant) => {
    const headers = new Headers(init.headers ?? {});
    if (token) headers.set("Authorization", `Bearer ${token}`);
    if (grant) headers.set("Stepup-Transaction", grant);
    return { ...init, headers };
  };
  return async function fetchWithStepUp(url, init = {}) {
    const response = await send(url, withToken(init, getToken()));
    const required = stepUpRequired(response);
    if (!required) return response;
    if (required.transactionId && approve) {
      const body = await response.json().catch(() => ({}));
      const operation = (body.authorization_details ?? [])[0] ?? {};
      const grant = await approve({ ...required, operation });
      return send(url, withToken(init, getToken(), grant));
    }
    const token = await stepUp(required);
    return send(url, withToken(init, token));
  };
}

/**
 * Starts the approval of one operation at stepup's `POST /oauth/authorize` (bearer token and the
 * challenge's `transaction_id`): resolves to `{mfa_token, methods, authorization_details}`; the
 * second-factor step then answers `{transaction_grant}`.
 */
export async function requestApproval(token, transactionId, { authorizeUrl = "/oauth/authorize" } = {}) {
  const response = await fetch(authorizeUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ transaction_id: transactionId }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.mfa_token) {
    throw new Error(body.error_description ?? `approval refused (${response.status})`);
  }
  return body;
}

/**
 * Starts the step-up of a signed-in user at stepup's `POST /oauth/authorize` (bearer token and
 * `acr_values`, no password): resolves to `{mfa_token, methods}` for the second-factor step, or
 * rejects with the API's `error_description`.
 */
export async function requestStepUp(token, required, { authorizeUrl = "/oauth/authorize" } = {}) {
  const acrValues = required.acrValues.length ? required.acrValues.join(" ") : "mfa";
  const response = await fetch(authorizeUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ acr_values: acrValues }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.mfa_token) {
    throw new Error(body.error_description ?? `step-up refused (${response.status})`);
  }
  return body;
}
