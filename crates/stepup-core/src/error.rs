//! Errors of configuration and of token verification.

/// A configuration or token-issuing error: a bad key, a missing setting, a failed signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key could not be loaded or is unfit for its algorithm.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A required setting is missing or contradictory.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// Signing a token failed.
    #[error("could not sign the token: {0}")]
    Signing(String),
}

/// Why a bearer token was refused. Every variant maps to `401` with `error="invalid_token"`;
/// descriptions are fixed strings and never echo the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The `Authorization` header or the token is not well-formed.
    #[error("the bearer token is malformed")]
    Malformed,
    /// The header is longer than the configured limit.
    #[error("the bearer token is too large")]
    TooLarge,
    /// The token's `alg` is not allowed for the selected key.
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// No configured key matches the token's `kid`.
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    InvalidSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `auth_time` is in the future (beyond the leeway): the token claims an authentication that
    /// has not happened yet, so it cannot vouch for any freshness.
    #[error("the token's authentication time is in the future")]
    AuthTimeInFuture,
    /// `iss` is not the expected issuer.
    #[error("the token's issuer is not accepted")]
    InvalidIssuer,
    /// `aud` does not name this service.
    #[error("the token's audience is not accepted")]
    InvalidAudience,
    /// A required claim (`sub`, `exp`, `iss`, `aud`) is missing or has the wrong type.
    #[error("the token lacks a required claim")]
    InvalidClaims,
    /// The token was issued before its user's revocation mark (account deletion, recovery, a
    /// factor reset).
    #[error("the token has been revoked")]
    Revoked,
    /// The token cannot be judged: no key set of its issuer was ever loaded, or the last one
    /// outlived its allowed staleness while the provider was unreachable. Answered `503`, never
    /// `401`: the token may well be good (fail closed).
    #[error("the token's signing keys cannot be loaded now")]
    KeysUnavailable,
    /// The token is bound to a DPoP key (`cnf.jkt`, RFC 9449) and was presented as a bearer
    /// token: whoever sends it that way does not prove the key, so it is refused.
    #[error("a DPoP-bound access token must be presented with a DPoP proof")]
    DpopBound,
}

impl TokenError {
    /// The client-safe description (the `Display` text, as a static string).
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the bearer token is malformed",
            Self::TooLarge => "the bearer token is too large",
            Self::AlgorithmNotAllowed => "the token's signing algorithm is not accepted",
            Self::UnknownKey => "the token's signing key is unknown",
            Self::InvalidSignature => "the token's signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::AuthTimeInFuture => "the token's authentication time is in the future",
            Self::InvalidIssuer => "the token's issuer is not accepted",
            Self::InvalidAudience => "the token's audience is not accepted",
            Self::InvalidClaims => "the token lacks a required claim",
            Self::Revoked => "the token has been revoked",
            Self::KeysUnavailable => "the token's signing keys cannot be loaded now",
            Self::DpopBound => "a DPoP-bound access token must be presented with a DPoP proof",
        }
    }
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match error.kind() {
            ErrorKind::InvalidSignature => Self::InvalidSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                Self::AlgorithmNotAllowed
            }
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::InvalidIssuer,
            ErrorKind::InvalidAudience => Self::InvalidAudience,
            // The header was parsed before `decode` runs, so a JSON error here is in the claims.
            ErrorKind::MissingRequiredClaim(_)
            | ErrorKind::InvalidClaimFormat(_)
            | ErrorKind::Json(_) => Self::InvalidClaims,
            _ => Self::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenError;

    #[test]
    fn descriptions_are_the_display_text() {
        for error in [
            TokenError::Malformed,
            TokenError::TooLarge,
            TokenError::AlgorithmNotAllowed,
            TokenError::UnknownKey,
            TokenError::InvalidSignature,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::AuthTimeInFuture,
            TokenError::InvalidIssuer,
            TokenError::InvalidAudience,
            TokenError::InvalidClaims,
            TokenError::Revoked,
            TokenError::KeysUnavailable,
            TokenError::DpopBound,
        ] {
            assert_eq!(error.description(), error.to_string(), "{error:?}");
        }
    }
}
