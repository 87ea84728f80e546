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

use crate::audit::AuditEvent;
use crate::{Mfa, MfaError};

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
}

/// The validated OAuth parameters of an authorization request, waiting for the user's
/// authentication (possibly across the MFA step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI the code goes to.
    pub redirect_uri: String,
    /// The client's `state`, returned as is.
    pub state: Option<String>,
    /// The S256 code challenge.
    pub code_challenge: String,
}

/// What an authorization code stands for, in the ephemeral store under the code's hash.
#[derive(Serialize, Deserialize)]
struct CodeGrant {
    authentication: Authentication,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    /// When the code was issued: a code issued before the user's revocation mark (a recovery,
    /// a reset, account deletion) is refused like any token of that time. A stored code without
    /// it (from an older version) counts as issued at 0, so before any mark.
    #[serde(default)]
    issued_at: u64,
}

impl Mfa {
    /// Issues a single-use authorization code carrying `authentication` to the client of
    /// `pending` (audited).
    pub async fn issue_authorization_code(
        &self,
        authentication: Authentication,
        pending: &PendingAuthorization,
    ) -> Result<String, MfaError> {
        self.issue_code_dated(authentication, pending, self.now())
            .await
    }

    /// Issues the code of a login that a reset of this user (a recovery taking effect) has just
    /// ended. The reset's revocation mark voids everything of its second, so this code is dated
    /// the next second, as the token of such a login is.
    pub async fn issue_authorization_code_after_reset(
        &self,
        authentication: Authentication,
        pending: &PendingAuthorization,
    ) -> Result<String, MfaError> {
        let issued_at = self.now().saturating_add(1);
        self.issue_code_dated(authentication, pending, issued_at)
            .await
    }

    async fn issue_code_dated(
        &self,
        authentication: Authentication,
        pending: &PendingAuthorization,
        issued_at: u64,
    ) -> Result<String, MfaError> {
        let code = tokens::random_token();
        let subject = authentication.subject.clone();
        let grant = CodeGrant {
            authentication,
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            issued_at,
        };
        let grant = serde_json::to_vec(&grant)
            .map_err(|_| MfaError::Internal("could not encode an authorization code"))?;
        if !self
            .ephemeral()
            .insert_if_absent(&code_key(&code), &grant, CODE_TTL)
            .await?
        {
            return Err(MfaError::Internal("authorization code collision"));
        }
        let event = AuditEvent::AuthorizationCodeIssued {
            client_id: pending.client_id.clone(),
        };
        self.audit().record(&subject, event).await;
        Ok(code)
    }

    /// Redeems an authorization code. It is consumed on first presentation, right or wrong: a
    /// code is never tried twice. The client, the redirect URI and the PKCE verifier must match
    /// ([`MfaError::InvalidGrant`] otherwise, audited), and the code must postdate the user's
    /// revocation mark: a code issued before a recovery, a reset or the account's deletion is
    /// refused ([`MfaError::InvalidGrant`], audited).
    pub async fn redeem_authorization_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<Authentication, MfaError> {
        let (authentication, _) = self
            .redeem_authorization_code_dated(code, client_id, redirect_uri, code_verifier)
            .await?;
        Ok(authentication)
    }

    /// [`redeem_authorization_code`](Self::redeem_authorization_code), with when the code was
    /// issued (Unix seconds): a token minted for it is dated no earlier, so that a code issued
    /// just after a reset, in the reset's own second, gives a token the reset does not void.
    pub async fn redeem_authorization_code_dated(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<(Authentication, u64), MfaError> {
        if code.is_empty() || code.len() > 128 {
            return Err(MfaError::InvalidGrant);
        }
        let grant = self
            .ephemeral()
            .take(&code_key(code))
            .await?
            .ok_or(MfaError::InvalidGrant)?;
        let grant: CodeGrant = serde_json::from_slice(&grant)
            .map_err(|_| MfaError::Internal("a stored authorization code is corrupt"))?;
        let verifier_ok = verifier_matches(code_verifier, &grant.code_challenge);
        if grant.client_id != client_id || grant.redirect_uri != redirect_uri || !verifier_ok {
            self.audit()
                .record(
                    &grant.authentication.subject,
                    AuditEvent::AuthorizationCodeRefused {},
                )
                .await;
            return Err(MfaError::InvalidGrant);
        }
        let subject = &grant.authentication.subject;
        if self.is_token_revoked(subject, grant.issued_at).await? {
            self.audit()
                .record(subject, AuditEvent::AuthorizationCodeRefused {})
                .await;
            return Err(MfaError::InvalidGrant);
        }
        Ok((grant.authentication, grant.issued_at))
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
