//! Who authenticated ([`Authentication`]) and the OAuth 2.1 authorization code that can carry it
//! to a client (RFC 6749 §4.1, PKCE S256 per RFC 7636): single-use, stored under its SHA-256 only,
//! bound to its client, redirect URI and code challenge, live [`CODE_TTL`].

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stepup_core::tokens;
use subtle::ConstantTimeEq;

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::error::{InvalidGrant, MfaError};
use crate::factor::ClientInfo;

/// How long an authorization code lives.
pub const CODE_TTL: Duration = Duration::from_secs(60);

/// Who authenticated, how and when: what a token or a code carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// The user.
    pub subject: String,
    /// The level reached (`pwd`, `mfa`, `phr`).
    pub acr: String,
    /// The methods really used (RFC 8176).
    pub amr: Vec<String>,
    /// When the user authenticated; `None` for a remembered-device login, where no
    /// authentication event vouches for now.
    pub auth_time: Option<u64>,
    /// The user's generation the authentication was made under: a token or code for it is void
    /// once a reset moves the generation on.
    #[serde(default)]
    pub generation: u64,
}

/// The validated OAuth parameters of an authorization request, waiting for the user's
/// authentication (possibly across the MFA step).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI the code goes to.
    pub redirect_uri: String,
    /// The client's `state`, returned as is.
    pub state: Option<String>,
    /// The S256 code challenge.
    pub code_challenge: String,
    /// The scope asked for and granted (space-separated), if any.
    #[serde(default)]
    pub scope: Option<String>,
    /// The resource (RFC 8707) the tokens will be for (their `aud`), if one was named.
    #[serde(default)]
    pub resource: Option<String>,
    /// Whether the sign-in page carries this request: the code's redirect is answered in the
    /// body (`{redirect_to}`) for the page to follow, not as a `302` to a script.
    #[serde(default)]
    pub from_page: bool,
}

impl PendingAuthorization {
    /// Where the client's browser goes with `code`: the redirect URI with `code`, `state` and
    /// `iss` (RFC 6749 §4.1.2, RFC 9207), `iss` being `issuer`.
    pub fn code_location(&self, code: &str, issuer: &str) -> String {
        let mut query = vec![("code", code)];
        if let Some(state) = self.state.as_deref() {
            query.push(("state", state));
        }
        query.push(("iss", issuer));
        with_query(&self.redirect_uri, &query)
    }
}

/// `uri` with `query` appended (after its own query, if any).
pub(crate) fn with_query(uri: &str, query: &[(&str, &str)]) -> String {
    let encoded = serde_urlencoded::to_string(query).unwrap_or_default();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{encoded}")
}

/// What an authorization code stands for, in the ephemeral store under the code's hash.
#[derive(Serialize, Deserialize)]
struct CodeGrant {
    authentication: Authentication,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    resource: Option<String>,
}

/// A redeemed authorization code: who authenticated, for which client, scope and resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedCode {
    /// Who, how and when.
    pub authentication: Authentication,
    /// The client.
    pub client_id: String,
    /// The scope granted.
    pub scope: Option<String>,
    /// The resource the tokens are for.
    pub resource: Option<String>,
}

impl Mfa {
    /// Issues a single-use authorization code carrying `authentication` to the client of
    /// `pending` (audited).
    pub async fn issue_authorization_code(
        &self,
        authentication: Authentication,
        pending: &PendingAuthorization,
    ) -> Result<String, MfaError> {
        let code = tokens::random_token();
        let subject = authentication.subject.clone();
        let grant = CodeGrant {
            authentication,
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            scope: pending.scope.clone(),
            resource: pending.resource.clone(),
        };
        let grant = serde_json::to_vec(&grant).map_err(MfaError::internal)?;
        if !self
            .ephemeral()
            .insert_if_absent(&code_key(&code), &grant, CODE_TTL)
            .await?
        {
            return Err(MfaError::internal("authorization code collision"));
        }
        let event = AuditEvent::AuthorizationCodeIssued {
            client_id: pending.client_id.clone(),
        };
        self.audit().record(&subject, event).await;
        Ok(code)
    }

    /// Redeems an authorization code. It is consumed on first presentation, right or wrong: a
    /// code is never tried twice. The client, the redirect URI and the PKCE verifier must match
    /// ([`InvalidGrant`] otherwise, audited), and the code must be of the user's current
    /// generation: a code issued before a recovery, a reset or the account's deletion is refused
    /// ([`InvalidGrant`], audited). Counted against the client address's failure budget when it
    /// fails.
    pub async fn redeem_authorization_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: &str,
        client: &ClientInfo,
    ) -> Result<Authentication, MfaError> {
        Ok(self
            .redeem_code(code, client_id, redirect_uri, code_verifier, client)
            .await?
            .authentication)
    }

    /// [`redeem_authorization_code`](Self::redeem_authorization_code), with the scope and
    /// resource the code carries.
    pub async fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: &str,
        client: &ClientInfo,
    ) -> Result<RedeemedCode, MfaError> {
        self.limited_by_address(client, async {
            if code.is_empty() || code.len() > 128 {
                return Err(InvalidGrant.into());
            }
            let grant = self
                .ephemeral()
                .take(&code_key(code))
                .await?
                .ok_or(InvalidGrant)?;
            let grant: CodeGrant = serde_json::from_slice(&grant).map_err(MfaError::internal)?;
            let subject = &grant.authentication.subject;
            let verifier_ok = verifier_matches(code_verifier, &grant.code_challenge);
            let current = self.current_generation(subject).await?.value;
            if grant.client_id != client_id
                || grant.redirect_uri != redirect_uri
                || !verifier_ok
                || grant.authentication.generation != current
            {
                self.audit()
                    .record(subject, AuditEvent::AuthorizationCodeRefused {})
                    .await;
                return Err(InvalidGrant.into());
            }
            Ok(RedeemedCode {
                authentication: grant.authentication,
                client_id: grant.client_id,
                scope: grant.scope,
                resource: grant.resource,
            })
        })
        .await
    }
}

/// RFC 7636 §4.1 verifier format, then S256, compared in constant time.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// Codes live under their SHA-256 only.
fn code_key(code: &str) -> String {
    format!("authz_code:{}", tokens::digest(code))
}
