//! How a login ends on the wire: the token response (with the answer fields the factor added and
//! the remembered-device cookie), or a `302` to the client's redirect URI with a code.

use axum::Json;
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use stepup_mfa::{Conclusion, Login, PendingAuthorization};

use crate::error::ApiError;
use crate::stepup::StepUp;

/// Concludes `login` (a code for a waiting client, else a token) and answers it.
pub(crate) async fn conclude(stepup: &StepUp, login: Login) -> Result<Response, ApiError> {
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
    let mut response = match stepup.mfa().conclude(login).await? {
        Conclusion::Code { pending, code } => redirect_with_code(&pending, &code)?,
        Conclusion::Token { token, answer } => {
            let mut body = serde_json::to_value(token).map_err(|_| ApiError::server_error())?;
            if let Some(object) = body.as_object_mut() {
                object.extend(answer);
            }
            no_store(Json(body).into_response())
        }
        _ => return Err(ApiError::server_error()),
    };
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
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
