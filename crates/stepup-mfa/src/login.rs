//! The login protocol, whatever carries it (the axum routes, a tonic service, a hyper handler):
//! the password step, the device that vouches, the recovery that falls due, the MFA step, the
//! passwordless login, the level each reaches, and how a login ends (a token, or an authorization
//! code for a waiting client). An adapter parses, calls these, and answers.
//!
//! The rules, in one place:
//!
//! - an enrolled user gets nothing but the MFA challenge from a password, unless a remembered
//!   device of that same user (and generation) vouches; a device's login has no `auth_time`, so
//!   it never meets a route's `max_age`;
//! - failed passwords are limited per account, and every login step under the client address's
//!   failure budget (a wrong guess stays counted, a success is given back);
//! - a signed-in user's step-up needs the full MFA step; its `amr` keeps only the password the
//!   token vouched for, plus the factor used now: one channel never counts as two factors;
//! - the level reached: `pwd` for a password alone, `mfa` for a second factor, `phr` for a
//!   phishing-resistant one (the factor says);
//! - every token carries the user's generation (a reset voids it at once, and a token minted
//!   after a reset is valid at once).

use std::time::Duration;

use serde_json::{Map, Value};
use stepup_core::AuthContext;
use stepup_core::acr::{amr, level};
use stepup_core::policy::TrustedDevice;
use stepup_core::token::{Grant, IssuedToken, JwtIssuer};
use stepup_store::{CredentialRef, CredentialStatus};

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::authorization::{Authentication, PendingAuthorization};
use crate::challenge::MfaChallenge;
use crate::devices::RememberedDevice;
use crate::error::{InvalidCode, InvalidCredentials, MfaError, MfaNotEnrolled, UnknownFactor};
use crate::factor::{ClientInfo, FactorContext};

/// Default: a first factor is enrolled within 10 minutes of the password.
pub const DEFAULT_ENROLLMENT_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Default: sensitive factor changes need a second factor from the last 5 minutes.
pub const DEFAULT_FRESH_MFA: Duration = Duration::from_secs(5 * 60);
/// Default: a remembered device is trusted for 30 days.
pub const DEFAULT_REMEMBER_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The longest username and password looked at.
const MAX_USERNAME: usize = 320;
const MAX_PASSWORD: usize = 1024;

/// How logins end: the issuer of tokens, and the windows of the login rules.
#[derive(Clone)]
pub(crate) struct LoginSettings {
    pub(crate) issuer: Option<JwtIssuer>,
    pub(crate) fresh_mfa: Duration,
    pub(crate) enrollment_max_age: Duration,
    pub(crate) remember_for: Duration,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            issuer: None,
            fresh_mfa: DEFAULT_FRESH_MFA,
            enrollment_max_age: DEFAULT_ENROLLMENT_MAX_AGE,
            remember_for: DEFAULT_REMEMBER_FOR,
        }
    }
}

/// A password login, as a client sent it.
#[derive(Debug, Clone)]
pub struct PasswordLogin<'a> {
    /// The username.
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
    /// The remembered device the request presented (vouched for by
    /// [`DeviceVouching`](stepup_core::policy::DeviceVouching)), if any.
    pub device: Option<&'a TrustedDevice>,
    /// The authorization request waiting for this login, if any.
    pub pending: Option<PendingAuthorization>,
}

/// Where a login step stands.
#[derive(Debug)]
#[non_exhaustive]
// Made once per login and matched at once: boxing the login would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum LoginStep {
    /// Authenticated: end it with [`Mfa::conclude`].
    Authenticated(Login),
    /// A second factor is needed: send the challenge.
    MfaRequired(MfaChallenge),
}

/// An authenticated login, waiting to be concluded ([`Mfa::conclude`]).
#[derive(Debug)]
pub struct Login {
    /// Who, how and when.
    pub authentication: Authentication,
    /// The authorization request waiting for it, if any.
    pub pending: Option<PendingAuthorization>,
    /// Fields for the client's answer (e.g. `remaining_codes` after a backup code).
    pub answer: Map<String, Value>,
    /// A device remembered by this login (its cookie is the adapter's to set).
    pub device: Option<RememberedDevice>,
    /// How it came: `direct`, `recovery`.
    pub via: &'static str,
    /// For the approval of one operation (its canonical JSON): the login ends in a transaction
    /// grant, never a token (see [`crate::transactions`]).
    pub transaction: Option<String>,
}

/// How a login ends.
#[derive(Debug)]
#[non_exhaustive]
pub enum Conclusion {
    /// The token response: the token, plus the login's answer fields.
    Token {
        /// The token.
        token: IssuedToken,
        /// Fields to add to the answer.
        answer: Map<String, Value>,
    },
    /// One operation approved: the single-use grant the retried request carries.
    Approved(crate::transactions::TransactionGrant),
    /// An authorization code for the waiting client: redirect to its `redirect_uri`.
    Code {
        /// The request it answers.
        pending: PendingAuthorization,
        /// The single-use code.
        code: String,
    },
}

impl Mfa {
    /// Mints stepup's tokens with `issuer` (its clock replaced by the engine's).
    pub fn with_issuer(self, issuer: JwtIssuer) -> Self {
        self.map(|inner| {
            inner.login.issuer = Some(issuer.with_clock(inner.clock.clone()));
        })
    }

    /// How recent a second factor must be for sensitive factor changes (default 5 minutes).
    pub fn with_fresh_mfa_max_age(self, max_age: Duration) -> Self {
        self.map(|inner| inner.login.fresh_mfa = max_age)
    }

    /// How recent the password must be to enroll a first factor (default 10 minutes).
    pub fn with_enrollment_max_age(self, max_age: Duration) -> Self {
        self.map(|inner| inner.login.enrollment_max_age = max_age)
    }

    /// How long a remembered device stays trusted (default 30 days).
    pub fn with_remember_device_for(self, duration: Duration) -> Self {
        self.map(|inner| inner.login.remember_for = duration)
    }

    /// The token issuer, if one is set.
    pub fn issuer(&self) -> Option<&JwtIssuer> {
        self.inner.login.issuer.as_ref()
    }

    /// How recent a second factor must be for sensitive factor changes.
    pub fn fresh_mfa_max_age(&self) -> Duration {
        self.inner.login.fresh_mfa
    }

    /// How long a remembered device stays trusted.
    pub fn remember_device_for(&self) -> Duration {
        self.inner.login.remember_for
    }

    /// The password step. An enrolled user gets the MFA challenge, unless a remembered device
    /// of theirs vouches; a user without a factor is authenticated at `pwd`; a recovery whose
    /// delay is over takes effect now. A wrong password is [`InvalidCredentials`].
    pub async fn sign_in(
        &self,
        login: PasswordLogin<'_>,
        client: &ClientInfo,
    ) -> Result<LoginStep, MfaError> {
        if login.username.len() > MAX_USERNAME || login.password.len() > MAX_PASSWORD {
            return Err(MfaError::invalid_input("username or password too long"));
        }
        self.limited_by_address(client, self.password_step(login, client))
            .await
    }

    async fn password_step(
        &self,
        login: PasswordLogin<'_>,
        client: &ClientInfo,
    ) -> Result<LoginStep, MfaError> {
        let PasswordLogin {
            username,
            password,
            device,
            pending,
        } = login;
        // Failed passwords are limited per account. A remembered device of the owner still signs
        // in while the account is locked out; for anyone else the answer, right or wrong, waits
        // for the lockout to end.
        if device.is_none() {
            self.admit_password(username).await?;
        }
        let checked = self.accounts().check(username, password).await?;
        let vouching = device.filter(|device| checked.as_deref() == Some(device.user.as_str()));
        if device.is_some() && vouching.is_none() {
            self.admit_password(username).await?;
        }
        if checked.as_deref().is_some_and(Self::is_external_key) {
            // Such an id would share an external user's factors and tokens: see `external`.
            return Err(MfaError::internal(
                "the application's user id has the form reserved for external users",
            ));
        }
        let Some(user) = checked else {
            if let Some(user) = self.accounts().user_of(username).await? {
                self.audit()
                    .record(&user, AuditEvent::PasswordFailed {})
                    .await;
            }
            return Err(InvalidCredentials.into());
        };
        self.password_succeeded(username).await?;
        // A recovery whose delay is over takes effect now (see `recovery`).
        if let Some(generation) = self.apply_due_recovery(&user).await? {
            return Ok(LoginStep::Authenticated(
                self.password_only(user, generation, pending, "recovery"),
            ));
        }
        let generation = self.current_generation(&user).await?.value;
        if !self.is_enrolled(&user).await? {
            return Ok(LoginStep::Authenticated(
                self.password_only(user, generation, pending, "direct"),
            ));
        }
        // A device vouches only while it is of the user's generation: one checked before a reset
        // that landed since (and a new factor enrolled) vouches for nothing.
        let vouching = match vouching {
            Some(device)
                if self
                    .device_of_generation(&user, &device.id, generation)
                    .await? =>
            {
                Some(device)
            }
            _ => None,
        };
        if let Some(device) = vouching {
            // No MFA step: the device vouches for a second factor verified when it was
            // remembered, not now, so the login has no `auth_time` (it never meets a `max_age`).
            self.device_used(&user, &device.id, client).await?;
            return Ok(LoginStep::Authenticated(Login {
                authentication: Authentication {
                    subject: user,
                    acr: level::MFA.to_owned(),
                    amr: vec![amr::PWD.to_owned()],
                    auth_time: None,
                    generation,
                },
                pending,
                answer: Map::new(),
                device: None,
                via: "direct",
                transaction: None,
            }));
        }
        let challenge = self.start_challenge(&user, &[amr::PWD], pending).await?;
        Ok(LoginStep::MfaRequired(challenge))
    }

    pub(crate) fn password_only(
        &self,
        user: String,
        generation: u64,
        pending: Option<PendingAuthorization>,
        via: &'static str,
    ) -> Login {
        Login {
            authentication: Authentication {
                subject: user,
                acr: level::PWD.to_owned(),
                amr: vec![amr::PWD.to_owned()],
                auth_time: Some(self.now()),
                generation,
            },
            pending,
            answer: Map::new(),
            device: None,
            via,
            transaction: None,
        }
    }

    /// Step-up of a signed-in user: the current token stands for the first factor, and only
    /// the password it vouches for is carried into the new `amr` (the MFA step adds the factor
    /// used now). Refused with [`MfaNotEnrolled`] when the user has no factor.
    pub async fn start_step_up(
        &self,
        caller: &AuthContext,
        pending: Option<PendingAuthorization>,
    ) -> Result<MfaChallenge, MfaError> {
        self.check_caller(caller).await?;
        let user = self.user_of(caller);
        if !self.is_enrolled(&user).await? {
            return Err(MfaNotEnrolled.into());
        }
        let first: Vec<&str> = caller
            .amr()
            .iter()
            .map(String::as_str)
            .filter(|method| *method == amr::PWD)
            .collect();
        self.start_challenge(&user, &first, pending).await
    }

    /// The MFA step's second factor ([`finish_challenge`](Self::finish_challenge)): an
    /// authenticated login at the level the factor reached, with a remembered device when
    /// `remember_device`.
    pub async fn finish_mfa(
        &self,
        mfa_token: &str,
        kind: &str,
        proof: &Value,
        remember_device: bool,
        client: &ClientInfo,
    ) -> Result<Login, MfaError> {
        let completed = self
            .finish_challenge(mfa_token, kind, proof, client)
            .await?;
        // Approving one operation remembers no browser: it is not a login.
        let device = if remember_device && completed.transaction.is_none() {
            let remember_for = self.inner.login.remember_for;
            Some(
                self.remember_device(
                    &completed.subject,
                    completed.generation,
                    remember_for,
                    client,
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Login {
            authentication: Authentication {
                subject: completed.subject,
                acr: completed.acr.to_owned(),
                amr: completed.amr,
                auth_time: Some(self.now()),
                generation: completed.generation,
            },
            pending: completed.pending,
            answer: completed.answer,
            device,
            via: "direct",
            transaction: completed.transaction,
        })
    }

    /// Starts a login with one factor alone (a discoverable passkey): the factor's challenge.
    pub async fn start_sign_in(&self, kind: &str, client: &ClientInfo) -> Result<Value, MfaError> {
        let factor = self.inner.factors.get(kind)?.clone();
        if !factor.is_available() {
            return Err(UnknownFactor.into());
        }
        let cx = FactorContext::new(self, factor.kind(), "", 0, client);
        factor.start_sign_in(&cx).await
    }

    /// Finishes a login with one factor alone: the user the credential names, at the level the
    /// factor reached, `amr` just that factor. Until the proof verifies, failures count per
    /// claimed credential and client address, never against the user the credential names.
    pub async fn finish_sign_in(
        &self,
        kind: &str,
        proof: &Value,
        pending: Option<PendingAuthorization>,
        client: &ClientInfo,
    ) -> Result<Login, MfaError> {
        let factor = self.inner.factors.get(kind)?.clone();
        if !factor.is_available() {
            return Err(UnknownFactor.into());
        }
        // A malformed proof is a `400` naming the field, before anything is claimed or counted.
        factor.check_proof(proof)?;
        self.limited_by_address(client, async {
            let claimed = factor.claimed_credential(proof).ok_or(InvalidCode)?;
            let cx = FactorContext::new(self, factor.kind(), "", 0, client);
            let signed_in = self
                .limited_claim(&claimed, factor.finish_sign_in(&cx, proof))
                .await?;
            let user = signed_in.user;
            // Verified: from here the user's own rules.
            self.refuse_locked(&user, factor.kind()).await?;
            if !self.accounts().account_exists(&user).await? {
                return Err(InvalidCode.into());
            }
            // The login carries the generation of the credential that answered, and only while
            // it is still the user's: a reset landing while the proof was checked voids it.
            let generation = self.current_generation(&user).await?.value;
            let id = signed_in
                .verified
                .credential_id
                .as_deref()
                .ok_or(InvalidCode)?;
            let key = CredentialRef {
                user: &user,
                kind: factor.kind(),
                id,
            };
            let answered = self.factors().credential(key).await?;
            if !answered.is_some_and(|credential| {
                credential.generation == generation && credential.status == CredentialStatus::Active
            }) {
                return Err(InvalidCode.into());
            }
            if self.factors().failures(&user, factor.kind()).await? > 0 {
                self.factors().clear_failures(&user, factor.kind()).await?;
            }
            let event = AuditEvent::MfaSucceeded {
                method: factor.kind().to_owned(),
            };
            self.audit().record(&user, event).await;
            self.factor_login_succeeded(&user).await?;
            Ok(Login {
                authentication: Authentication {
                    subject: user,
                    acr: signed_in.verified.acr.to_owned(),
                    amr: vec![factor.amr().to_owned()],
                    auth_time: Some(self.now()),
                    generation,
                },
                pending,
                answer: signed_in.verified.answer,
                device: None,
                via: "direct",
                transaction: None,
            })
        })
        .await
    }

    /// Ends an authenticated login: an authorization code for a waiting client, else a token.
    pub async fn conclude(&self, login: Login) -> Result<Conclusion, MfaError> {
        self.conclude_bound(login, None).await
    }

    /// [`conclude`](Self::conclude); a token answered directly is bound to the DPoP key whose
    /// RFC 7638 thumbprint is `dpop_jkt` (`cnf.jkt`, `token_type: "DPoP"`), when given. A code
    /// for a waiting client is bound when it is exchanged, by the proof sent then.
    pub async fn conclude_bound(
        &self,
        login: Login,
        dpop_jkt: Option<&str>,
    ) -> Result<Conclusion, MfaError> {
        if let Some(operation) = login.transaction {
            let grant = self
                .approve_transaction(&login.authentication, &operation)
                .await?;
            return Ok(Conclusion::Approved(grant));
        }
        match login.pending {
            Some(pending) => {
                let code = self
                    .issue_authorization_code(login.authentication, &pending)
                    .await?;
                Ok(Conclusion::Code { pending, code })
            }
            None => {
                let token = self
                    .issue_token_with(&login.authentication, login.via, |grant| {
                        bind(grant, dpop_jkt)
                    })
                    .await?;
                Ok(Conclusion::Token {
                    token,
                    answer: login.answer,
                })
            }
        }
    }

    /// Signs a token for `authentication` (with its generation, claim `gen`), audited as issued
    /// `via` (`direct`, `authorization_code`, `recovery`).
    pub async fn issue_token(
        &self,
        authentication: &Authentication,
        via: &'static str,
    ) -> Result<IssuedToken, MfaError> {
        self.issue_token_with(authentication, via, |grant| grant)
            .await
    }

    /// [`issue_token`](Self::issue_token), the grant completed by `complete` (a scope, an
    /// audience).
    pub(crate) async fn issue_token_with(
        &self,
        authentication: &Authentication,
        via: &'static str,
        complete: impl FnOnce(Grant) -> Grant,
    ) -> Result<IssuedToken, MfaError> {
        let issuer = self
            .issuer()
            .ok_or_else(|| MfaError::internal("no token issuer is configured"))?;
        // An external provider's user: the token is for its `sub`, naming the provider.
        let grant = match self.external_identity(&authentication.subject) {
            Some((provider, subject)) => Grant::new(subject).exchanged_from(provider),
            None => Grant::new(authentication.subject.clone()),
        };
        let grant = grant
            .acr(authentication.acr.clone())
            .amr(authentication.amr.iter().cloned())
            .generation(authentication.generation);
        let grant = match authentication.auth_time {
            Some(time) => grant.auth_time(time),
            None => grant.without_auth_time(),
        };
        let grant = complete(grant);
        let token = issuer.issue(&grant).map_err(MfaError::internal)?;
        let event = AuditEvent::TokenIssued {
            acr: authentication.acr.clone(),
            amr: authentication.amr.clone(),
            via,
        };
        self.audit().record(&authentication.subject, event).await;
        Ok(token)
    }
}

/// `grant`, bound to the DPoP key with thumbprint `dpop_jkt` when given.
pub(crate) fn bind(grant: Grant, dpop_jkt: Option<&str>) -> Grant {
    match dpop_jkt {
        Some(jkt) => grant.dpop_bound(jkt),
        None => grant,
    }
}
