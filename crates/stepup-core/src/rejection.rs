//! The HTTP answer to a request that is not authenticated well enough (RFC 6750 and RFC 9470).

use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::TokenError;
use crate::acr::{ChallengeDialect, StepUpChallenge};

/// Why a request was refused before reaching its handler: a `401`, except a step-up answered in a
/// provider dialect that has none (`403`) and a token that cannot be judged because no key set of
/// its issuer could be loaded ([`TokenError::KeysUnavailable`], `503`: fail closed).
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
}

impl AuthRejection {
    /// The status code: `401 Unauthorized`; `403 Forbidden` for a step-up the caller's provider
    /// cannot be asked for; `503 Service Unavailable` when the token's keys cannot be loaded.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidToken(TokenError::KeysUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
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
        }
    }

    /// The human-readable description.
    pub fn description(&self) -> &'static str {
        match self {
            Self::MissingToken => "a bearer access token is required",
            Self::InvalidToken(error) => error.description(),
            Self::StepUpRequired(challenge) => challenge.reason.description(),
        }
    }

    /// The `WWW-Authenticate` header value (empty for the `403` and `503` answers, which carry
    /// none).
    pub fn www_authenticate(&self) -> String {
        match self {
            Self::MissingToken => "Bearer".to_owned(),
            Self::InvalidToken(TokenError::KeysUnavailable) => String::new(),
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
                value
            }
        }
    }

    /// The JSON body: `{"error", "error_description"}`, plus `acr_values` and `max_age` for a step-up.
    pub fn body(&self) -> String {
        let mut body = crate::error_body::error_object(self.error_code(), self.description());
        if let Self::StepUpRequired(challenge) = self {
            body.insert("acr_values".into(), challenge.acr_values.clone().into());
            if let Some(max_age) = challenge.max_age {
                body.insert("max_age".into(), max_age.into());
            }
            if let Some(claims) = &challenge.claims_challenge {
                body.insert("claims".into(), claims.claims.clone().into());
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
}
