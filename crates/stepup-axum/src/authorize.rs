//! The browser's authorization endpoint: `GET /oauth/authorize` (RFC 6749 §4.1.1 with PKCE,
//! `resource`, `acr_values`, `max_age`, `prompt`), its sign-in page and the page's assets, and
//! `POST /oauth/authorize/session` (what the browser's sign-in session answers for the page).
//!
//! - A request the engine refuses unredirectably (unknown client, redirect URI not registered)
//!   gets an error page (`400`, HTML, or JSON to a client asking for JSON); any other refused
//!   request is redirected to the client with `error`, `state` and `iss` (RFC 6749 §4.1.2.1).
//! - A live session satisfying the request answers the code at once (`302` to
//!   `redirect_uri?code&state&iss`) for the application's own clients; a third-party client gets
//!   the page, where the user confirms. A session lacking a factor, or too old for `max_age`,
//!   opens the page at the second factor only; `prompt=login` at the password.
//! - The page (no inline script: `/oauth/assets/authorize.js`) signs in through the JSON login
//!   routes with the page's request id, and follows the `{redirect_to}` they answer.

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stepup_mfa::{
    AuthorizationError, AuthorizationParams, AuthorizationRequest, ErrorRedirect, Login,
    SessionDecision,
};

use crate::error::ApiError;
use crate::json::JsonBody;
use crate::respond::{conclude_with_session, no_store, redirect_to, secret_json};
use crate::session::session_of;
use crate::stepup::StepUp;

/// The page's policy: its own script and style only, requests to this origin only, never framed.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

const SCRIPT: &str = include_str!("assets/authorize.js");
const STYLE: &str = include_str!("assets/authorize.css");

/// `GET /oauth/authorize`.
pub(crate) async fn authorize(
    State(stepup): State<StepUp>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query)
        .map_err(|_| ApiError::invalid_request("the query string is not valid"))?;
    let params =
        AuthorizationParams::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mfa = stepup.mfa();
    let request = match mfa.authorization_request(&params).await {
        Ok(request) => request,
        Err(AuthorizationError::Redirect(redirect)) => {
            return error_redirect(&stepup, &redirect);
        }
        Err(AuthorizationError::Unredirectable(error)) => {
            return Ok(error_page(&headers, ApiError::from(error)));
        }
    };
    let session = session_of(&headers);
    let decision = mfa.session_decision(session.as_deref(), &request).await?;
    let step = match decision {
        SessionDecision::Satisfied(authentication) if request.client.is_first_party() => {
            let login = session_login(authentication, &request);
            return conclude_with_session(&stepup, login, None, None).await;
        }
        SessionDecision::Satisfied(_) => "consent",
        SessionDecision::StepUp { .. } => "factor",
        SessionDecision::SignIn => "sign-in",
        SessionDecision::LoginRequired => {
            let redirect = ErrorRedirect {
                redirect_uri: request.pending.redirect_uri.clone(),
                state: request.pending.state.clone(),
                error: if request.client.is_first_party() {
                    "login_required"
                } else {
                    "consent_required"
                },
                description: "prompt=none, and the user must sign in or confirm",
            };
            return error_redirect(&stepup, &redirect);
        }
    };
    let id = mfa.save_authorization_request(&request).await?;
    Ok(page(&request, &id, step))
}

/// A login from the session, for `request` (a code at once, redirected, not for the page).
fn session_login(
    authentication: stepup_mfa::Authentication,
    request: &AuthorizationRequest,
) -> Login {
    Login {
        authentication,
        pending: Some(request.pending.clone()),
        answer: serde_json::Map::new(),
        device: None,
        via: "session",
        transaction: None,
    }
}

#[derive(Deserialize)]
pub(crate) struct SessionStep {
    request_id: String,
}

/// `POST /oauth/authorize/session` `{request_id}`: what the browser's session answers for the
/// page's request: `{redirect_to}` (the user confirmed a third-party client, or nothing was
/// missing), the MFA challenge of the missing factor, or `{sign_in: true}`.
pub(crate) async fn session_step(
    State(stepup): State<StepUp>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SessionStep>,
) -> Result<Response, ApiError> {
    let mfa = stepup.mfa();
    let request = mfa.saved_authorization_request(&body.request_id).await?;
    let session = session_of(&headers);
    match mfa.session_decision(session.as_deref(), &request).await? {
        SessionDecision::Satisfied(authentication) => {
            let mut login = session_login(authentication, &request);
            login.pending = Some(request.pending.clone());
            conclude_with_session(&stepup, login, session.as_deref(), None).await
        }
        SessionDecision::StepUp {
            user,
            first_factors,
        } => {
            let challenge = mfa
                .start_session_step_up(&user, &first_factors, request.pending.clone())
                .await?;
            Ok(secret_json(
                serde_json::to_value(challenge).map_err(|_| ApiError::server_error())?,
            ))
        }
        _ => Ok(secret_json(json!({ "sign_in": true }))),
    }
}

/// `GET /oauth/assets/{name}`: the page's script and style.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "authorize.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "authorize.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return ApiError::not_found("no such asset").into_response(),
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

fn error_redirect(stepup: &StepUp, redirect: &ErrorRedirect) -> Result<Response, ApiError> {
    redirect_to(&redirect.location(&stepup.issuer_id()))
}

/// The error told to the user (never redirected): `400`, JSON to a client asking for JSON (the
/// error's own status), else an HTML page.
fn error_page(headers: &HeaderMap, error: ApiError) -> Response {
    let wants_json = headers
        .get(ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"));
    if wants_json {
        return error.into_response();
    }
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign-in error</title><link rel=\"stylesheet\" href=\"/oauth/assets/authorize.css\">\
         </head><body><main><h1>This sign-in link is not valid</h1>\
         <p class=\"client\" id=\"error\" data-error=\"{code}\">{description}</p>\
         <p>Go back to the application and start again.</p></main></body></html>",
        code = escape(&error.code),
        description = escape(&error.description),
    );
    with_page_headers((StatusCode::BAD_REQUEST, body).into_response())
}

/// The sign-in page for `request`, carrying its id, opening at `step`.
fn page(request: &AuthorizationRequest, id: &str, step: &str) -> Response {
    let client = request
        .client
        .name
        .clone()
        .unwrap_or_else(|| request.client.id.clone());
    let destination = url::Url::parse(&request.pending.redirect_uri)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<link rel="stylesheet" href="/oauth/assets/authorize.css">
<script type="module" src="/oauth/assets/authorize.js"></script>
</head>
<body>
<main id="stepup-authorize" data-request="{id}" data-step="{step}" data-client="{client_id}">
<h1>Sign in</h1>
<p class="client">to continue to <strong id="client-name">{client}</strong> ({destination})</p>
<section id="password-step" hidden>
<form id="password-form">
<label for="username">Email</label>
<input id="username" name="username" type="email" autocomplete="username webauthn" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Continue</button>
</form>
<button id="passkey" type="button" class="secondary" hidden>Sign in with a passkey</button>
</section>
<section id="factor-step" hidden>
<p>Confirm it is you with your second factor.</p>
<div id="methods"></div>
<form id="code-form" hidden>
<label id="code-label" for="code">Code</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code">
<button type="submit">Verify</button>
</form>
<label class="remember"><input id="remember" type="checkbox"> Remember this device</label>
</section>
<section id="consent-step" hidden>
<p>You are signed in. Continue to {client}?</p>
<button id="continue" type="button">Continue</button>
<button id="other-account" type="button" class="secondary">Use another account</button>
</section>
<p id="message" role="alert"></p>
</main>
</body>
</html>
"#,
        id = escape(id),
        step = escape(step),
        client_id = escape(&request.client.id),
        client = escape(&client),
        destination = escape(&destination),
    );
    with_page_headers(
        (
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
    )
}

/// The page's security headers: its own policy, never cached, framed or sniffed.
fn with_page_headers(response: Response) -> Response {
    let mut response = no_store(response);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    response
}

/// `text` safe inside HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_is_escaped() {
        assert_eq!(
            super::escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}
