//! How an authentication ends: the token response, or for a pending authorization a `302` to the
//! client's redirect URI with a code.

use axum::Json;
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
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
    let mut query = vec![("code", code.as_str())];
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
    let grant = Grant::new(authentication.subject.clone())
        .acr(authentication.acr.clone())
        .amr(authentication.amr.iter().cloned());
    let grant = match authentication.auth_time {
        Some(time) => grant.auth_time(time),
        None => grant.without_auth_time(),
    };
    let token = stepup
        .issuer()
        .issue(&grant)
        .map_err(|_| ApiError::server_error())?;
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
