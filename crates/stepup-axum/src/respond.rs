//! How a login ends on the wire: the token response (with the answer fields the factor added and
//! the remembered-device cookie), a `302` to the client's redirect URI with a code, or the grant
//! of an approved operation.

use axum::Json;
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use stepup_mfa::{Conclusion, Login, PendingAuthorization};

use crate::error::ApiError;
use crate::session::session_cookie;
use crate::stepup::StepUp;

/// Concludes `login` (a code for a waiting client, else a token) and answers it.
pub(crate) async fn conclude(stepup: &StepUp, login: Login) -> Result<Response, ApiError> {
    conclude_with_session(stepup, login, None, None).await
}

/// [`conclude`]; a login for the sign-in page also starts the browser's sign-in session
/// (replacing `old_session`) and answers `{redirect_to}` for the page to follow. A token
/// answered directly is bound to the DPoP key `dpop_jkt` names, when given.
pub(crate) async fn conclude_with_session(
    stepup: &StepUp,
    login: Login,
    old_session: Option<&str>,
    dpop_jkt: Option<&str>,
) -> Result<Response, ApiError> {
    let session = match &login.pending {
        Some(pending) if pending.from_page => {
            let mfa = stepup.mfa();
            let token = mfa.start_session(&login.authentication).await?;
            if let Some(old) = old_session {
                mfa.end_session(old).await?;
            }
            Some(
                session_cookie(&token, mfa.session_lifetime())
                    .ok_or_else(ApiError::server_error)?,
            )
        }
        _ => None,
    };
    let cookie = match &login.device {
        Some(device) => {
            let max_age = std::time::Duration::from_secs(
                device
                    .record
                    .expires_at
                    .saturating_sub(device.record.created_at),
            );
            Some(
                stepup_tower::device_cookie(&device.token, max_age)
                    .ok_or_else(ApiError::server_error)?,
            )
        }
        None => None,
    };
    let mut response = match stepup.mfa().conclude_bound(login, dpop_jkt).await? {
        Conclusion::Code { pending, code } if pending.from_page => {
            let location = pending.code_location(&code, &stepup.issuer_id());
            no_store(Json(json!({ "redirect_to": location })).into_response())
        }
        Conclusion::Code { pending, code } => redirect_with_code(stepup, &pending, &code)?,
        Conclusion::Token { token, answer } => {
            let mut body = serde_json::to_value(token).map_err(|_| ApiError::server_error())?;
            if let Some(object) = body.as_object_mut() {
                object.extend(answer);
            }
            no_store(Json(body).into_response())
        }
        Conclusion::Approved(grant) => no_store(Json(grant).into_response()),
        _ => return Err(ApiError::server_error()),
    };
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    if let Some(cookie) = session {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The `302` to the client's redirect URI with `code`, the client's `state` and `iss`
/// (RFC 9207).
pub(crate) fn redirect_with_code(
    stepup: &StepUp,
    pending: &PendingAuthorization,
    code: &str,
) -> Result<Response, ApiError> {
    redirect_to(&pending.code_location(code, &stepup.issuer_id()))
}

/// A `302` to `location`, never cached.
pub(crate) fn redirect_to(location: &str) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(location)
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

/// Marks a response that carries a secret, a token or a challenge as never to be cached.
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON answer never to be cached.
pub(crate) fn secret_json(value: serde_json::Value) -> Response {
    no_store(Json(value).into_response())
}
