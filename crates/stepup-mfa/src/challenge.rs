//! The MFA step of a login: an `mfa_token` stands for a user who proved a first factor, and is
//! completed once by a second one ([`Proof`]). The token is stored only as its SHA-256, in the
//! ephemeral store, with what it stands for; it is consumed on success and dies after
//! [`MAX_CODE_ATTEMPTS`] wrong codes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stepup_core::tokens;
use stepup_store::CredentialStatus;

use crate::audit::AuditEvent;
use crate::authorization::PendingAuthorization;
use crate::{Method, Mfa, MfaError, Proof};

/// How long an `mfa_token` lives.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// Proofs checked on one `mfa_token` at most, however many race: it survives four wrong ones and
/// the fifth kills it.
pub const MAX_CODE_ATTEMPTS: u64 = 5;

/// A started MFA login: the token the client sends back with the second factor.
#[derive(Debug, Clone, Serialize)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Opaque, single-use, 5 minutes.
    pub mfa_token: String,
    /// The methods this user can complete it with.
    pub methods: Vec<Method>,
}

/// A completed MFA step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedChallenge {
    /// The user.
    pub subject: String,
    /// The methods really used, each once (RFC 8176), e.g. `["pwd", "otp"]`.
    pub amr: Vec<String>,
    /// The second factor used.
    pub method: Method,
    /// Whether the factor was phishing-resistant: a WebAuthn assertion with user verification
    /// (`acr` `phr`); `false` for codes and for assertions without user verification (`mfa`).
    pub phishing_resistant: bool,
    /// Unused backup codes left, when one was used.
    pub remaining_backup_codes: Option<usize>,
    /// The authorization request waiting for this login, if any.
    pub pending: Option<PendingAuthorization>,
}

/// What an `mfa_token` stands for. A ticket that does not parse is an error, never a
/// different grant.
#[derive(Serialize, Deserialize)]
pub(crate) struct Ticket {
    pub(crate) sub: String,
    amr: Vec<String>,
    pending: Option<PendingAuthorization>,
    /// When it was made: a token made before the user's revocation mark (a recovery, a reset)
    /// is dead.
    #[serde(default)]
    issued_at: u64,
}

/// A user's factors, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactorSummary {
    /// Every credential, pending or active.
    pub factors: Vec<FactorInfo>,
    /// Unused backup codes.
    pub backup_codes_remaining: usize,
}

/// One credential, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactorInfo {
    /// The factor.
    pub method: Method,
    /// The credential's id.
    pub id: String,
    /// A name the user chose.
    pub label: Option<String>,
    /// Confirmed by a first proof.
    pub active: bool,
    /// Locked by consecutive failures until recovery or reset.
    pub locked: bool,
    /// When it was made (Unix seconds).
    pub created_at: u64,
    /// When it last completed a login (Unix seconds).
    pub last_used_at: Option<u64>,
    /// A NIST SP 800-63B *restricted* authenticator (SMS): offered beside another factor.
    pub restricted: bool,
    /// The phone number, masked (`+1*****6789`), for SMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl Mfa {
    /// The second factors the user can use now: each kind of active credential this engine can
    /// check (SMS only with a provider, passkeys only with a relying party), then backup codes
    /// while some are left and the user has any active factor.
    pub async fn methods(&self, user: &str) -> Result<Vec<Method>, MfaError> {
        let mut methods = Vec::new();
        let mut enrolled = false;
        for credential in self.factors().credentials(user).await? {
            if credential.status != CredentialStatus::Active {
                continue;
            }
            let Some(method) = Method::from_credential_kind(&credential.kind) else {
                continue;
            };
            enrolled = true;
            let usable = match method {
                Method::Sms => self.sms_enabled(),
                Method::Webauthn => self.relying_party().is_some(),
                _ => true,
            };
            if usable && !methods.contains(&method) {
                methods.push(method);
            }
        }
        if enrolled && self.remaining_backup_codes(user).await? > 0 {
            methods.push(Method::BackupCode);
        }
        Ok(methods)
    }

    /// Whether the user has an active second factor.
    pub async fn is_enrolled(&self, user: &str) -> Result<bool, MfaError> {
        Ok(self.factors().credentials(user).await?.iter().any(|c| {
            c.status == CredentialStatus::Active && Method::from_credential_kind(&c.kind).is_some()
        }))
    }

    /// The user's factors, without secrets.
    pub async fn factor_summary(&self, user: &str) -> Result<FactorSummary, MfaError> {
        let mut factors = Vec::new();
        for credential in self.factors().credentials(user).await? {
            let Some(method) = Method::from_credential_kind(&credential.kind) else {
                continue;
            };
            let phone = match method {
                Method::Sms => self.sms_phone(user).await?,
                _ => None,
            };
            factors.push(FactorInfo {
                restricted: method.is_restricted(),
                phone,
                method,
                locked: self.is_locked(user, method).await?,
                id: credential.id,
                label: credential.label,
                active: credential.status == CredentialStatus::Active,
                created_at: credential.created_at,
                last_used_at: credential.last_used_at,
            });
        }
        Ok(FactorSummary {
            factors,
            backup_codes_remaining: self.remaining_backup_codes(user).await?,
        })
    }

    /// Starts an MFA step for `user`, who has proven `first_factors` (e.g. `["pwd"]`);
    /// `pending` travels with it and comes back in [`CompletedChallenge::pending`].
    pub async fn start_challenge(
        &self,
        user: &str,
        first_factors: &[&str],
        pending: Option<PendingAuthorization>,
    ) -> Result<MfaChallenge, MfaError> {
        let methods = self.methods(user).await?;
        if methods.is_empty() {
            return Err(MfaError::NotEnrolled);
        }
        let token = tokens::random_token();
        let ticket = Ticket {
            sub: user.to_owned(),
            amr: first_factors.iter().map(|m| (*m).to_owned()).collect(),
            pending,
            issued_at: self.now(),
        };
        let ticket = serde_json::to_vec(&ticket)
            .map_err(|_| MfaError::Internal("could not encode a challenge"))?;
        if !self
            .ephemeral()
            .insert_if_absent(&challenge_key(&token), &ticket, CHALLENGE_TTL)
            .await?
        {
            return Err(MfaError::Internal("mfa_token collision"));
        }
        Ok(MfaChallenge {
            mfa_required: true,
            mfa_token: token,
            methods,
        })
    }

    /// Completes an MFA step. The token is consumed on success and dies after
    /// [`MAX_CODE_ATTEMPTS`] wrong codes; until then a wrong code leaves it usable.
    pub async fn complete_challenge(
        &self,
        mfa_token: &str,
        proof: Proof<'_>,
    ) -> Result<CompletedChallenge, MfaError> {
        if mfa_token.is_empty() || mfa_token.len() > 128 {
            return Err(MfaError::InvalidMfaToken);
        }
        let key = challenge_key(mfa_token);
        let ticket = self.challenge_subject(mfa_token).await?;
        // The attempt is counted before the proof is checked, so that racing requests cannot
        // have more than MAX_CODE_ATTEMPTS proofs checked on one token between them.
        let attempts_key = attempts_key(mfa_token);
        let attempt = self
            .ephemeral()
            .increment(&attempts_key, CHALLENGE_TTL)
            .await?;
        if attempt > MAX_CODE_ATTEMPTS {
            self.kill_challenge(mfa_token).await?;
            return Err(MfaError::InvalidMfaToken);
        }

        let method = proof.method();
        let outcome = match proof {
            Proof::Totp(code) => self
                .verify_totp(&ticket.sub, code)
                .await
                .map(|()| (None, false)),
            Proof::BackupCode(code) => self
                .redeem_backup_code(&ticket.sub, code)
                .await
                .map(|remaining| (Some(remaining), false)),
            Proof::Webauthn(credential) => self
                .verify_webauthn(mfa_token, &ticket.sub, credential)
                .await
                .map(|user_verified| (None, user_verified)),
            Proof::Sms(code) => self
                .verify_sms(mfa_token, &ticket.sub, code)
                .await
                .map(|()| (None, false)),
        };
        let (remaining_backup_codes, phishing_resistant) = match outcome {
            Ok(reached) => reached,
            Err(MfaError::InvalidCode) => {
                if attempt >= MAX_CODE_ATTEMPTS {
                    self.kill_challenge(mfa_token).await?;
                }
                return Err(MfaError::InvalidCode);
            }
            Err(other) => {
                // Not a wrong code (a factor not enrolled, a store down): the attempt is given back.
                self.ephemeral().decrement(&attempts_key).await?;
                return Err(other);
            }
        };
        if self.ephemeral().take(&key).await?.is_none() {
            return Err(MfaError::InvalidMfaToken);
        }
        let mut amr = ticket.amr;
        if !amr.iter().any(|used| used == method.amr()) {
            amr.push(method.amr().to_owned());
        }
        self.audit()
            .record(&ticket.sub, AuditEvent::MfaSucceeded { method })
            .await;
        self.factor_login_succeeded(&ticket.sub).await?;
        Ok(CompletedChallenge {
            subject: ticket.sub,
            amr,
            method,
            phishing_resistant,
            remaining_backup_codes,
            pending: ticket.pending,
        })
    }

    /// Refuses every later use of `mfa_token`: its wrong codes are spent.
    async fn kill_challenge(&self, mfa_token: &str) -> Result<(), MfaError> {
        self.ephemeral()
            .insert_if_absent(&dead_key(mfa_token), b"1", CHALLENGE_TTL)
            .await?;
        Ok(())
    }

    /// The user a live `mfa_token` stands for, without using it up.
    pub(crate) async fn challenge_subject(&self, mfa_token: &str) -> Result<Ticket, MfaError> {
        if mfa_token.is_empty() || mfa_token.len() > 128 {
            return Err(MfaError::InvalidMfaToken);
        }
        let ticket = self
            .ephemeral()
            .get(&challenge_key(mfa_token))
            .await?
            .ok_or(MfaError::InvalidMfaToken)?;
        if self.ephemeral().get(&dead_key(mfa_token)).await?.is_some() {
            return Err(MfaError::InvalidMfaToken);
        }
        let ticket: Ticket = serde_json::from_slice(&ticket)
            .map_err(|_| MfaError::Internal("a stored challenge is corrupt"))?;
        if self.is_token_revoked(&ticket.sub, ticket.issued_at).await? {
            return Err(MfaError::InvalidMfaToken);
        }
        Ok(ticket)
    }
}

/// Where an `mfa_token` lives: only its SHA-256, so the store never holds the token itself.
fn challenge_key(token: &str) -> String {
    format!("mfa_token:{}", tokens::digest(token))
}

/// The count of proofs tried on an `mfa_token`.
fn attempts_key(token: &str) -> String {
    format!("{}:attempts", challenge_key(token))
}

/// Set when an `mfa_token` has had its last wrong code. The token is marked dead rather than
/// removed, so that a request already holding the right proof still consumes it exactly once
/// while wrong ones race it (removing it would refuse that request too).
fn dead_key(token: &str) -> String {
    format!("{}:dead", challenge_key(token))
}
