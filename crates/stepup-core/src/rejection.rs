//! The HTTP answer to a request that is not authenticated well enough (RFC 6750, RFC 9470), the
//! `resource_metadata` parameter of RFC 9728 every challenge can carry, and the same refusals as
//! gRPC statuses.

use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::TokenError;
use crate::acr::{ChallengeDialect, StepUpChallenge};
use crate::grpc::{GrpcCode, GrpcStatus, is_grpc_request};

/// Why a request was refused before reaching its handler: a `401`, except a missing scope
/// (`403 insufficient_scope`), a step-up answered in a provider dialect that has none (`403`) and
/// a token that cannot be judged because no key set of its issuer could be loaded
/// ([`TokenError::KeysUnavailable`], `503`: fail closed).
///
/// ```
/// use stepup_core::{AuthRejection, StepUpChallenge, StepUpReason};
///
/// let rejection = AuthRejection::StepUpRequired(StepUpChallenge::new(
///     "mfa",
///     Some(300),
///     StepUpReason::LevelTooLow,
/// ));
/// assert_eq!(
///     rejection.www_authenticate(),
///     "Bearer error=\"insufficient_user_authentication\", \
///      error_description=\"a stronger authentication level is required\", \
///      acr_values=\"mfa\", max_age=300"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No bearer token was presented: `WWW-Authenticate: Bearer`.
    MissingToken,
    /// The bearer token was refused: `error="invalid_token"`.
    InvalidToken(TokenError),
    /// The caller must authenticate again, more strongly or more recently:
    /// `error="insufficient_user_authentication"` with `acr_values` and `max_age`.
    StepUpRequired(StepUpChallenge),
    /// The token does not grant a scope the request needs (RFC 6750 §3.1): `403`,
    /// `error="insufficient_scope"` with `scope`.
    InsufficientScope(ScopeChallenge),
    /// The token does not authorize this operation (RFC 9396 `authorization_details`, answered
    /// as draft-zehavi-oauth-rar-metadata does): `403`,
    /// `error="insufficient_authorization_details"`, the required details in the body.
    InsufficientAuthorizationDetails(DetailsChallenge),
}

/// The content of an `insufficient_authorization_details` refusal: the `authorization_details`
/// (RFC 9396) a token must carry for the request — one entry, the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DetailsChallenge {
    /// The required `authorization_details`: a JSON array.
    pub authorization_details: Value,
}

impl DetailsChallenge {
    /// A refusal asking for `authorization_details` (a JSON array of RFC 9396 entries).
    pub fn new(authorization_details: Value) -> Self {
        Self {
            authorization_details,
        }
    }
}

/// The content of an `insufficient_scope` refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeChallenge {
    /// Every scope the request needs, space-separated (not only the missing ones: a client asks
    /// for this set when it authorizes again).
    pub scope: String,
}

impl ScopeChallenge {
    /// A refusal naming the space-separated `scope` the request needs.
    pub fn new(scope: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
        }
    }
}

impl AuthRejection {
    /// The status code: `401 Unauthorized`; `403 Forbidden` for a missing scope and for a step-up
    /// the caller's provider cannot be asked for; `503 Service Unavailable` when the token's keys
    /// cannot be loaded.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidToken(TokenError::KeysUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientScope(_) | Self::InsufficientAuthorizationDetails(_) => {
                StatusCode::FORBIDDEN
            }
            Self::StepUpRequired(challenge) if challenge.dialect == ChallengeDialect::Forbidden => {
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The OAuth error code of the JSON body.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::MissingToken => "unauthorized",
            Self::InvalidToken(TokenError::KeysUnavailable) => "temporarily_unavailable",
            Self::InvalidToken(_) => "invalid_token",
            Self::StepUpRequired(StepUpChallenge {
                dialect: ChallengeDialect::EntraClaims,
                ..
            }) => "insufficient_claims",
            Self::StepUpRequired(_) => "insufficient_user_authentication",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::InsufficientAuthorizationDetails(_) => "insufficient_authorization_details",
        }
    }

    /// The human-readable description.
    pub fn description(&self) -> &'static str {
        match self {
            Self::MissingToken => "a bearer access token is required",
            Self::InvalidToken(error) => error.description(),
            Self::StepUpRequired(challenge) => challenge.reason.description(),
            Self::InsufficientScope(_) => {
                "the access token does not grant a scope this request needs"
            }
            Self::InsufficientAuthorizationDetails(_) => {
                "the access token does not authorize this operation"
            }
        }
    }

    /// The `WWW-Authenticate` header value (empty for the plain `403` of a provider without a
    /// challenge and for the `503`, which carry none).
    pub fn www_authenticate(&self) -> String {
        match self {
            Self::MissingToken => "Bearer".to_owned(),
            Self::InsufficientScope(challenge) => format!(
                "Bearer error=\"{}\", error_description=\"{}\", scope=\"{}\"",
                self.error_code(),
                self.description(),
                quoted_string_content(&challenge.scope)
            ),
            Self::InvalidToken(TokenError::KeysUnavailable) => String::new(),
            Self::InsufficientAuthorizationDetails(_) => format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.error_code(),
                self.description()
            ),
            Self::StepUpRequired(StepUpChallenge {
                dialect: ChallengeDialect::Forbidden,
                ..
            }) => String::new(),
            Self::StepUpRequired(StepUpChallenge {
                dialect: ChallengeDialect::EntraClaims,
                claims_challenge,
                ..
            }) => {
                let (uri, claims) = claims_challenge.as_deref().map_or(("", ""), |challenge| {
                    (&challenge.authorization_uri[..], &challenge.claims[..])
                });
                format!(
                    "Bearer realm=\"\", authorization_uri=\"{}\", error=\"insufficient_claims\", claims=\"{}\"",
                    quoted_string_content(uri),
                    quoted_string_content(claims)
                )
            }
            Self::InvalidToken(_) => format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.error_code(),
                self.description()
            ),
            Self::StepUpRequired(challenge) => {
                let mut value = format!(
                    "Bearer error=\"{}\", error_description=\"{}\", acr_values=\"{}\"",
                    self.error_code(),
                    self.description(),
                    quoted_string_content(&challenge.acr_values)
                );
                if let Some(max_age) = challenge.max_age {
                    value.push_str(&format!(", max_age={max_age}"));
                }
                if let Some(transaction) = &challenge.transaction {
                    value.push_str(&format!(
                        ", transaction_id=\"{}\"",
                        quoted_string_content(&transaction.id)
                    ));
                }
                value
            }
        }
    }

    /// The JSON body: `{"error", "error_description"}`, plus `acr_values` and `max_age` for a
    /// step-up, `scope` for a missing scope, `authorization_details` for an operation the token
    /// does not authorize.
    pub fn body(&self) -> String {
        let mut body = crate::error_body::error_object(self.error_code(), self.description());
        if let Self::InsufficientScope(challenge) = self {
            body.insert("scope".into(), challenge.scope.clone().into());
        }
        if let Self::InsufficientAuthorizationDetails(challenge) = self {
            body.insert(
                "authorization_details".into(),
                challenge.authorization_details.clone(),
            );
        }
        if let Self::StepUpRequired(challenge) = self {
            body.insert("acr_values".into(), challenge.acr_values.clone().into());
            if let Some(max_age) = challenge.max_age {
                body.insert("max_age".into(), max_age.into());
            }
            if let Some(claims) = &challenge.claims_challenge {
                body.insert("claims".into(), claims.claims.clone().into());
            }
            if let Some(transaction) = &challenge.transaction {
                body.insert("transaction_id".into(), transaction.id.clone().into());
                body.insert(
                    "authorization_details".into(),
                    transaction.authorization_details.clone(),
                );
            }
        }
        Value::Object(body).to_string()
    }

    /// The whole response.
    pub fn to_response(&self) -> Response<String> {
        let mut response = Response::new(self.body());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let challenge = self.www_authenticate();
        if !challenge.is_empty() {
            // The value is built from fixed text and sanitised configuration, so it is always
            // valid; should that ever fail, the bare scheme still tells the client what to do.
            let challenge = HeaderValue::from_str(&challenge)
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }

    /// The answer to a request with these headers: [`to_grpc_response`](Self::to_grpc_response)
    /// for a gRPC call ([`is_grpc_request`]), else [`to_response`](Self::to_response).
    pub fn to_response_for(&self, request_headers: &HeaderMap) -> Response<String> {
        if is_grpc_request(request_headers) {
            self.to_grpc_response()
        } else {
            self.to_response()
        }
    }

    /// The same refusal as a gRPC status (see [`crate::grpc`]): `UNAUTHENTICATED` (16) where
    /// HTTP says `401`, `PERMISSION_DENIED` (7) for `403`, `UNAVAILABLE` (14) for `503`; the
    /// message is the description followed by the challenge's parameters (`acr_values`,
    /// `max_age`, `scope`), the details a `google.rpc.ErrorInfo` whose reason is the error code
    /// in capitals and whose metadata holds the same parameters.
    pub fn grpc_status(&self) -> GrpcStatus {
        let code = match self.status() {
            StatusCode::FORBIDDEN => GrpcCode::PermissionDenied,
            StatusCode::SERVICE_UNAVAILABLE => GrpcCode::Unavailable,
            _ => GrpcCode::Unauthenticated,
        };
        let mut parameters: Vec<(&str, String)> = Vec::new();
        match self {
            Self::StepUpRequired(challenge) => {
                parameters.push(("acr_values", challenge.acr_values.clone()));
                if let Some(max_age) = challenge.max_age {
                    parameters.push(("max_age", max_age.to_string()));
                }
                if let Some(claims) = &challenge.claims_challenge {
                    parameters.push(("claims", claims.claims.clone()));
                }
                if let Some(transaction) = &challenge.transaction {
                    parameters.push(("transaction_id", transaction.id.clone()));
                }
            }
            Self::InsufficientScope(challenge) => {
                parameters.push(("scope", challenge.scope.clone()));
            }
            Self::InsufficientAuthorizationDetails(challenge) => {
                let details = challenge.authorization_details.to_string();
                parameters.push(("authorization_details", details));
            }
            _ => {}
        }
        let mut message = self.description().to_owned();
        for (index, (key, value)) in parameters.iter().enumerate() {
            message.push_str(if index == 0 { ": " } else { ", " });
            message.push_str(&format!("{key}=\"{}\"", quoted_string_content(value)));
        }
        let mut status = GrpcStatus::new(code, message)
            .with_reason(self.error_code().to_ascii_uppercase())
            .with_metadata("error", self.error_code());
        for (key, value) in parameters {
            status = status.with_metadata(key, value);
        }
        status
    }

    /// The gRPC answer: [`grpc_status`](Self::grpc_status) as a trailers-only response, with
    /// the same `WWW-Authenticate` as over HTTP.
    pub fn to_grpc_response(&self) -> Response<String> {
        let mut response = self.grpc_status().to_response();
        let challenge = self.www_authenticate();
        if !challenge.is_empty() {
            let challenge = HeaderValue::from_str(&challenge)
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for AuthRejection {}

/// Keeps configured text (an `acr` value) inside an RFC 9110 quoted-string: escapes `"` and `\`,
/// replaces anything that is not visible ASCII or a space.
fn quoted_string_content(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            ' '..='~' => out.push(ch),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResourceMetadataUrl;
    use crate::StepUpReason;

    #[test]
    fn configured_acr_values_cannot_break_out_of_the_quoted_string() {
        let rejection = AuthRejection::StepUpRequired(StepUpChallenge::new(
            "a\"b\\c\nd",
            None,
            StepUpReason::LevelTooLow,
        ));
        assert!(
            rejection
                .www_authenticate()
                .ends_with(r#"acr_values="a\"b\\c?d""#)
        );
        assert!(
            rejection.to_response().headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("insufficient_user_authentication")
        );
    }

    const URL: &str = "https://api.example.com/.well-known/oauth-protected-resource";

    fn url() -> ResourceMetadataUrl {
        ResourceMetadataUrl::new(URL).unwrap()
    }

    #[test]
    fn resource_metadata_joins_the_bearer_challenge_wherever_it_ends() {
        let parameter = format!("resource_metadata=\"{URL}\"");
        for (challenge, expected) in [
            ("Bearer".to_owned(), format!("Bearer {parameter}")),
            ("bearer  ".to_owned(), format!("bearer {parameter}  ")),
            (
                r#"Bearer error="invalid_token", error_description="the token has expired""#
                    .to_owned(),
                format!(
                    r#"Bearer error="invalid_token", error_description="the token has expired", {parameter}"#
                ),
            ),
            (
                r#"Bearer realm=api, error="a\"b,c""#.to_owned(),
                format!(r#"Bearer realm=api, error="a\"b,c", {parameter}"#),
            ),
            (
                r#"Bearer error="x", DPoP algs="ES256""#.to_owned(),
                format!(r#"Bearer error="x", {parameter}, DPoP algs="ES256""#),
            ),
            (
                r#"Bearer, DPoP algs="ES256""#.to_owned(),
                format!(r#"Bearer {parameter}, DPoP algs="ES256""#),
            ),
        ] {
            assert_eq!(
                url().add_to_challenge(&challenge).as_deref(),
                Some(expected.as_str()),
                "{challenge}"
            );
        }
        for untouched in [
            "Basic realm=\"x\"",
            "DPoP algs=\"ES256\", Bearer",
            "Bearerx",
            "Bearer abc==",
            "Bearer error=\"unterminated",
            "Bearer resource_metadata=\"https://elsewhere.example\"",
            "Bearer error=\"x\", Resource_Metadata=\"https://elsewhere.example\"",
            "",
        ] {
            assert_eq!(url().add_to_challenge(untouched), None, "{untouched}");
        }
    }

    #[test]
    fn every_bearer_header_value_gets_the_parameter_once() {
        let mut headers = HeaderMap::new();
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"x\""),
        );
        headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        url().add_to_headers(&mut headers);
        url().add_to_headers(&mut headers);
        let values: Vec<&str> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        let expected = format!("Bearer resource_metadata=\"{URL}\"");
        assert_eq!(values, ["Basic realm=\"x\"", expected.as_str()]);
    }

    #[test]
    fn a_missing_scope_is_a_403_naming_every_scope_needed() {
        let rejection =
            AuthRejection::InsufficientScope(ScopeChallenge::new("vault:read vault:write"));
        assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            rejection.www_authenticate(),
            "Bearer error=\"insufficient_scope\", \
             error_description=\"the access token does not grant a scope this request needs\", \
             scope=\"vault:read vault:write\""
        );
        assert_eq!(
            serde_json::from_str::<Value>(&rejection.body()).unwrap(),
            serde_json::json!({
                "error": "insufficient_scope",
                "error_description": "the access token does not grant a scope this request needs",
                "scope": "vault:read vault:write",
            })
        );
    }

    #[test]
    fn a_grpc_refusal_is_a_trailers_only_status_with_the_same_challenge() {
        let rejection = AuthRejection::StepUpRequired(StepUpChallenge::new(
            "mfa",
            Some(300),
            StepUpReason::LevelTooLow,
        ));
        let mut request = HeaderMap::new();
        request.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        let response = rejection.to_response_for(&request);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), "");
        let headers = response.headers();
        assert_eq!(headers[CONTENT_TYPE], "application/grpc");
        assert_eq!(headers["grpc-status"], "16");
        assert_eq!(
            headers["grpc-message"],
            "a%20stronger%20authentication%20level%20is%20required:%20acr_values=\"mfa\",%20max_age=\"300\""
        );
        assert_eq!(headers[WWW_AUTHENTICATE], rejection.www_authenticate());
        assert!(headers.contains_key("grpc-status-details-bin"));

        let scope = AuthRejection::InsufficientScope(ScopeChallenge::new("a"));
        assert_eq!(scope.grpc_status().code(), GrpcCode::PermissionDenied);
        let keys = AuthRejection::InvalidToken(TokenError::KeysUnavailable);
        assert_eq!(keys.grpc_status().code(), GrpcCode::Unavailable);
        assert!(
            !keys
                .to_grpc_response()
                .headers()
                .contains_key(WWW_AUTHENTICATE)
        );
        assert_eq!(
            AuthRejection::MissingToken
                .to_response_for(&HeaderMap::new())
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
