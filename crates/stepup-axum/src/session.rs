//! The authorization server's sign-in session cookie: `__Host-stepup-session`, `Secure`,
//! `HttpOnly`, `SameSite=Lax` (a client's top-level navigation to the authorization endpoint
//! carries it; no cross-site request does), `Path=/`, no `Domain`. Its value is random; the
//! engine keeps only its SHA-256 ([`Mfa::start_session`](stepup_mfa::Mfa::start_session)).

use std::time::Duration;

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};

/// The cookie's name.
pub const SESSION_COOKIE: &str = "__Host-stepup-session";

/// The `Set-Cookie` value of a session `token` living `max_age`.
pub(crate) fn session_cookie(token: &str, max_age: Duration) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Lax",
        max_age.as_secs()
    ))
    .ok()
}

/// The session token the request's `Cookie` headers carry, if any.
pub(crate) fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_host_only_secure_http_only_and_lax() {
        let cookie = session_cookie("abc", Duration::from_secs(60)).unwrap();
        assert_eq!(
            cookie,
            "__Host-stepup-session=abc; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax"
        );
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-stepup-session=tok"),
        );
        assert_eq!(session_of(&headers).as_deref(), Some("tok"));
        assert_eq!(session_of(&HeaderMap::new()), None);
    }
}
