//! How an authentication ends: the token response, or for a pending authorization a `302` to the
//! client's redirect URI with a code.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use stepup_core::clock::{Clock, SharedClock};
use stepup_core::token::Grant;
use stepup_mfa::{AuditEvent, Authentication, PendingAuthorization};

use crate::error::ApiError;
use crate::stepup::StepUp;

/// Ends an authentication: a `302` with a code for a pending authorization, else the token.
pub(crate) async fn finish(
    stepup: &StepUp,
    pending: Option<PendingAuthorization>,
    authentication: Authentication,
    remaining_codes: Option<usize>,
) -> Result<Response, ApiError> {
    let Some(pending) = pending else {
        return token_response(stepup, &authentication, "direct", remaining_codes).await;
    };
    let code = stepup
        .mfa()
        .issue_authorization_code(authentication, &pending)
        .await?;
    redirect_with_code(&pending, &code)
}

/// The `302` to the client's redirect URI with `code` (and the client's `state`).
pub(crate) fn redirect_with_code(
    pending: &PendingAuthorization,
    code: &str,
) -> Result<Response, ApiError> {
    let mut query = vec![("code", code)];
    if let Some(state) = pending.state.as_deref() {
        query.push(("state", state));
    }
    let query = serde_urlencoded::to_string(query).map_err(|_| ApiError::server_error())?;
    let separator = if pending.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{separator}{query}", pending.redirect_uri);
    let location = HeaderValue::from_str(&location)
        .map_err(|_| ApiError::invalid_request("redirect_uri is not a valid header value"))?;
    Ok((
        StatusCode::FOUND,
        [
            (LOCATION, location),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Signs a token for `authentication` and answers it as the OAuth token response (audited).
pub(crate) async fn token_response(
    stepup: &StepUp,
    authentication: &Authentication,
    via: &'static str,
    remaining_codes: Option<usize>,
) -> Result<Response, ApiError> {
    token_response_dated(stepup, authentication, via, remaining_codes, None).await
}

/// [`token_response`], the token dated no earlier than `not_before` (Unix seconds): the token of
/// a code issued after a reset in the reset's own second, whose revocation mark voids that
/// second, is dated as its code.
pub(crate) async fn token_response_dated(
    stepup: &StepUp,
    authentication: &Authentication,
    via: &'static str,
    remaining_codes: Option<usize>,
    not_before: Option<u64>,
) -> Result<Response, ApiError> {
    let grant = Grant::new(authentication.subject.clone())
        .acr(authentication.acr.clone())
        .amr(authentication.amr.iter().cloned());
    let grant = match authentication.auth_time {
        Some(time) => grant.auth_time(time),
        None => grant.without_auth_time(),
    };
    let issuer = match not_before {
        Some(at) if at > stepup.now() => stepup.issuer().clone().with_clock(Arc::new(AtLeast {
            clock: stepup.inner.clock.clone(),
            at: UNIX_EPOCH + Duration::from_secs(at),
        })),
        _ => stepup.issuer().clone(),
    };
    let token = issuer.issue(&grant).map_err(|_| ApiError::server_error())?;
    let event = AuditEvent::TokenIssued {
        acr: authentication.acr.clone(),
        amr: authentication.amr.clone(),
        via,
    };
    stepup
        .mfa()
        .audit()
        .record(&authentication.subject, event)
        .await;
    let mut body = serde_json::to_value(token).map_err(|_| ApiError::server_error())?;
    if let Some(remaining) = remaining_codes {
        body["remaining_codes"] = remaining.into();
    }
    Ok(no_store(Json(body).into_response()))
}

/// Marks a response that carries a secret, a token or a challenge as never to be cached.
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A clock that never reads earlier than `at`.
#[derive(Debug)]
struct AtLeast {
    clock: SharedClock,
    at: SystemTime,
}

impl Clock for AtLeast {
    fn now(&self) -> SystemTime {
        self.clock.now().max(self.at)
    }
}
