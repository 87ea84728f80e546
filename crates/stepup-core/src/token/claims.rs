use serde::{Deserialize, Serialize};

/// The claims stepup reads from, and writes into, an access token.
///
/// `iss` and `aud` are checked by the verifier and not kept here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessTokenClaims {
    /// Subject: the user.
    pub sub: String,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Not before (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Authentication context class reference (`pwd`, `mfa`, `phr`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication method references (RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Time of the last active authentication (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The user's generation when the token was issued (stepup's own tokens): once a reset has
    /// moved the user's generation on, the token is void, whatever second it was issued in.
    #[serde(default, rename = "gen", skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// For a token issued by a token exchange (RFC 8693 §4.1): the identity it was exchanged
    /// from, the subject token's issuer and subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The operations the token authorizes (RFC 9396): an array of objects, each with a `type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
    /// Confirmation (RFC 7800): for a DPoP-bound token, `{"jkt": <thumbprint>}` (RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `act` claim of an exchanged token (RFC 8693 §4.1): the issuer and subject of the token
/// it was exchanged for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Actor {
    /// The subject token's issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The subject token's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

/// The `cnf` claim of a sender-constrained token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint (base64url) of the client's DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

impl Confirmation {
    /// A confirmation naming the DPoP key with thumbprint `jkt`.
    pub fn jkt(jkt: impl Into<String>) -> Self {
        Self {
            jkt: Some(jkt.into()),
        }
    }
}
