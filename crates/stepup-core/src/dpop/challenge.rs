//! The answers of a DPoP resource server (RFC 9449 §7.1, §9): `WWW-Authenticate: DPoP` with
//! `algs`, every Bearer challenge of a DPoP caller (RFC 9470 step-up, missing scope) restated
//! under the `DPoP` scheme, and the `DPoP` challenge offered beside `Bearer` where both are
//! accepted.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

use super::{ALGS, DpopError};
use crate::ResourceMetadataUrl;
use crate::grpc::{GrpcCode, GrpcStatus, is_grpc_request};
use crate::www_authenticate::first_challenge;

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub static DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// A refused DPoP presentation, as HTTP (or gRPC) answers it.
///
/// ```
/// use stepup_core::dpop::{DpopError, DpopRejection};
///
/// let rejection = DpopRejection::new(DpopError::UrlMismatch);
/// assert_eq!(
///     rejection.www_authenticate(),
///     "DPoP error=\"invalid_dpop_proof\", \
///      error_description=\"the DPoP proof was made for another URL\", \
///      algs=\"ES256 EdDSA PS256\""
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopRejection {
    error: DpopError,
    nonce: Option<String>,
}

impl DpopRejection {
    /// The answer to `error`.
    pub fn new(error: DpopError) -> Self {
        Self { error, nonce: None }
    }

    /// Hands the client a nonce in `DPoP-Nonce` (with [`DpopError::NonceRequired`]).
    pub fn with_nonce(mut self, nonce: Option<String>) -> Self {
        self.nonce = nonce;
        self
    }

    /// The refusal.
    pub fn error(&self) -> DpopError {
        self.error
    }

    /// The `WWW-Authenticate` value: a `DPoP` challenge with `error`, `error_description` and
    /// `algs` (empty for a `503`, which carries none).
    pub fn www_authenticate(&self) -> String {
        if self.error.status() == StatusCode::SERVICE_UNAVAILABLE {
            return String::new();
        }
        format!(
            "DPoP error=\"{}\", error_description=\"{}\", algs=\"{ALGS}\"",
            self.error.error_code(),
            self.error.description()
        )
    }

    /// The JSON body `{"error", "error_description"}`.
    pub fn body(&self) -> String {
        Value::Object(crate::error_body::error_object(
            self.error.error_code(),
            self.error.description(),
        ))
        .to_string()
    }

    /// The HTTP answer: `401` (`503` when the token's keys or the replay memory cannot be
    /// reached), the JSON body, the challenge, `Cache-Control: no-store` and any `DPoP-Nonce`.
    pub fn to_response(&self) -> Response<String> {
        let mut response = Response::new(self.body());
        *response.status_mut() = self.error.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.add_headers(headers);
        response
    }

    /// The same refusal as a gRPC status: `UNAUTHENTICATED`, or `UNAVAILABLE` for a `503`.
    pub fn to_grpc_response(&self) -> Response<String> {
        let code = if self.error.status() == StatusCode::SERVICE_UNAVAILABLE {
            GrpcCode::Unavailable
        } else {
            GrpcCode::Unauthenticated
        };
        let mut response = GrpcStatus::new(code, self.error.description())
            .with_reason(self.error.error_code().to_ascii_uppercase())
            .with_metadata("error", self.error.error_code())
            .to_response();
        self.add_headers(response.headers_mut());
        response
    }

    /// [`to_grpc_response`](Self::to_grpc_response) for a gRPC call, else
    /// [`to_response`](Self::to_response).
    pub fn to_response_for(&self, request_headers: &HeaderMap) -> Response<String> {
        if is_grpc_request(request_headers) {
            self.to_grpc_response()
        } else {
            self.to_response()
        }
    }

    fn add_headers(&self, headers: &mut HeaderMap) {
        let challenge = self.www_authenticate();
        if let Ok(value) = HeaderValue::from_str(&challenge)
            && !challenge.is_empty()
        {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        if let Some(nonce) = self
            .nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert(DPOP_NONCE.clone(), nonce);
        }
    }
}

/// `challenge` restated under the `DPoP` scheme when its first challenge is `Bearer`: the same
/// parameters (`error="insufficient_user_authentication"`, `acr_values`, `max_age`, `scope`, …)
/// followed by `algs` and, when given, `resource_metadata`. `None` for any other challenge.
///
/// ```
/// use stepup_core::dpop::to_dpop_challenge;
///
/// assert_eq!(
///     to_dpop_challenge(
///         "Bearer error=\"insufficient_user_authentication\", acr_values=\"mfa\"",
///         None,
///     )
///     .unwrap(),
///     "DPoP error=\"insufficient_user_authentication\", acr_values=\"mfa\", \
///      algs=\"ES256 EdDSA PS256\""
/// );
/// assert_eq!(to_dpop_challenge("Bearer", None).unwrap(), "DPoP algs=\"ES256 EdDSA PS256\"");
/// assert_eq!(to_dpop_challenge("Basic realm=\"x\"", None), None);
/// ```
pub fn to_dpop_challenge(
    challenge: &str,
    resource_metadata: Option<&ResourceMetadataUrl>,
) -> Option<String> {
    let found = first_challenge(challenge, "bearer", None)?;
    let parameters = challenge[found.scheme_end..found.end].trim_start_matches([' ', '\t']);
    let tail = &challenge[found.end..];
    let mut out = String::from("DPoP ");
    if found.has_parameters {
        out.push_str(parameters);
        out.push_str(", ");
    }
    out.push_str(&format!("algs=\"{ALGS}\""));
    let with_metadata = resource_metadata.and_then(|url| url.add_to_dpop_challenge(&out));
    let mut out = with_metadata.unwrap_or(out);
    out.push_str(tail);
    Some(out)
}

/// Restates every Bearer challenge in `headers` under the `DPoP` scheme
/// ([`to_dpop_challenge`]), and names `resource_metadata` in every `DPoP` challenge that lacks
/// it: the answer to a caller who presented DPoP, or to anyone when DPoP is required.
pub fn to_dpop_challenges(
    headers: &mut HeaderMap,
    resource_metadata: Option<&ResourceMetadataUrl>,
) {
    rewrite(headers, |text| {
        to_dpop_challenge(text, resource_metadata)
            .or_else(|| resource_metadata.and_then(|url| url.add_to_dpop_challenge(text)))
    });
}

/// Adds `WWW-Authenticate: DPoP algs="…"` (with `resource_metadata` when given) beside the
/// Bearer challenge of a `401`, where a resource accepts both schemes (RFC 9449 §7.2); other
/// answers, and a `401` with no Bearer challenge or a `DPoP` one already, stay as they are.
pub fn offer_dpop(
    status: StatusCode,
    headers: &mut HeaderMap,
    resource_metadata: Option<&ResourceMetadataUrl>,
) {
    if status != StatusCode::UNAUTHORIZED {
        return;
    }
    let values = headers.get_all(WWW_AUTHENTICATE);
    let scheme_is = |scheme: &str| {
        values.iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|text| first_challenge(text, scheme, None).is_some())
        })
    };
    if !scheme_is("bearer") || scheme_is("dpop") {
        return;
    }
    let offer = format!("DPoP algs=\"{ALGS}\"");
    let offer = resource_metadata
        .and_then(|url| url.add_to_dpop_challenge(&offer))
        .unwrap_or(offer);
    if let Ok(value) = HeaderValue::from_str(&offer) {
        headers.append(WWW_AUTHENTICATE, value);
    }
}

fn rewrite(headers: &mut HeaderMap, change: impl Fn(&str) -> Option<String>) {
    if !headers.contains_key(WWW_AUTHENTICATE) {
        return;
    }
    let values: Vec<HeaderValue> = headers.get_all(WWW_AUTHENTICATE).iter().cloned().collect();
    let mut changed = false;
    let values: Vec<HeaderValue> = values
        .into_iter()
        .map(|value| {
            let new = value
                .to_str()
                .ok()
                .and_then(&change)
                .and_then(|text| HeaderValue::from_str(&text).ok());
            changed |= new.is_some();
            new.unwrap_or(value)
        })
        .collect();
    if !changed {
        return;
    }
    headers.remove(WWW_AUTHENTICATE);
    for value in values {
        headers.append(WWW_AUTHENTICATE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://api.example.com/.well-known/oauth-protected-resource";

    #[test]
    fn bearer_challenges_are_restated_under_dpop_with_their_parameters() {
        let url = ResourceMetadataUrl::new(URL).unwrap();
        let step_up = "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"a stronger authentication level is required\", \
             acr_values=\"mfa\", max_age=300";
        assert_eq!(
            to_dpop_challenge(step_up, Some(&url)).unwrap(),
            format!(
                "DPoP error=\"insufficient_user_authentication\", \
                 error_description=\"a stronger authentication level is required\", \
                 acr_values=\"mfa\", max_age=300, algs=\"{ALGS}\", resource_metadata=\"{URL}\""
            )
        );
        let mut headers = HeaderMap::new();
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"x\""),
        );
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_str(step_up).unwrap());
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("DPoP error=\"invalid_dpop_proof\", algs=\"ES256\""),
        );
        to_dpop_challenges(&mut headers, Some(&url));
        let values: Vec<&str> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        assert_eq!(values[0], "Basic realm=\"x\"");
        assert!(values[1].starts_with("DPoP error=\"insufficient_user_authentication\""));
        assert_eq!(
            values[2],
            format!(
                "DPoP error=\"invalid_dpop_proof\", algs=\"ES256\", resource_metadata=\"{URL}\""
            )
        );
    }

    #[test]
    fn dpop_is_offered_beside_bearer_on_a_401_only() {
        let mut headers = HeaderMap::new();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        offer_dpop(StatusCode::FORBIDDEN, &mut headers, None);
        assert_eq!(headers.get_all(WWW_AUTHENTICATE).iter().count(), 1);
        offer_dpop(StatusCode::UNAUTHORIZED, &mut headers, None);
        offer_dpop(StatusCode::UNAUTHORIZED, &mut headers, None);
        let values: Vec<&str> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        assert_eq!(values, ["Bearer", &format!("DPoP algs=\"{ALGS}\"")]);
    }
}
