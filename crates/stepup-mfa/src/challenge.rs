//! The MFA step of a login: an `mfa_token` stands for a user who proved a first factor, and is
//! completed once by a second one. The token is stored only as its SHA-256, in the ephemeral
//! store, with what it stands for (the user, the first factors, the waiting authorization request,
//! the user's generation); it is consumed on success and dies after [`MAX_CODE_ATTEMPTS`] wrong
//! proofs, counted before each is checked.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use stepup_core::tokens;

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::authorization::PendingAuthorization;
use crate::error::{InvalidMfaToken, MfaError, NotEnrolled, UnknownFactor};
use crate::factor::{ClientInfo, FactorContext};

/// How long an `mfa_token` lives.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// Proofs checked on one `mfa_token` at most, however many race: it survives four wrong ones and
/// the fifth kills it.
pub const MAX_CODE_ATTEMPTS: u64 = 5;
/// The longest `mfa_token` looked at.
const MAX_TOKEN_LEN: usize = 128;

/// A started MFA step: the token the client sends back with the second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Opaque, single-use, 5 minutes.
    pub mfa_token: String,
    /// The kinds this user can complete it with.
    pub methods: Vec<String>,
}

/// A completed MFA step.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedChallenge {
    /// The user.
    pub subject: String,
    /// The methods really used, each once (RFC 8176), e.g. `["pwd", "otp"]`.
    pub amr: Vec<String>,
    /// The kind of the second factor used.
    pub method: String,
    /// The level reached: `mfa`, or `phr` for a phishing-resistant proof.
    pub acr: &'static str,
    /// What the factor adds to the answer (e.g. `remaining_codes`).
    pub answer: Map<String, Value>,
    /// The authorization request waiting for this login, if any.
    pub pending: Option<PendingAuthorization>,
    /// The user's generation the step was started under.
    pub generation: u64,
    /// The operation this step approves (its canonical JSON), for a transaction step-up.
    pub transaction: Option<String>,
}

/// What an `mfa_token` stands for. A ticket that does not parse is an error, never a
/// different grant.
#[derive(Serialize, Deserialize)]
pub(crate) struct Ticket {
    pub(crate) sub: String,
    amr: Vec<String>,
    pending: Option<PendingAuthorization>,
    /// The user's generation when the step started: a reset since voids it.
    #[serde(default)]
    pub(crate) generation: u64,
    /// The operation the step approves, for a transaction step-up: it ends in a grant for
    /// that operation, never a token.
    #[serde(default)]
    pub(crate) transaction: Option<String>,
}

impl Mfa {
    /// Starts an MFA step for `user`, who has proven `first_factors` (e.g. `["pwd"]`);
    /// `pending` travels with it and comes back in [`CompletedChallenge::pending`]. Refused with
    /// [`NotEnrolled`] when the user has no usable factor.
    pub async fn start_challenge(
        &self,
        user: &str,
        first_factors: &[&str],
        pending: Option<PendingAuthorization>,
    ) -> Result<MfaChallenge, MfaError> {
        self.start_challenge_for(user, first_factors, pending, None)
            .await
    }

    /// [`start_challenge`](Self::start_challenge), approving `transaction` (an operation's
    /// canonical JSON) when given.
    pub(crate) async fn start_challenge_for(
        &self,
        user: &str,
        first_factors: &[&str],
        pending: Option<PendingAuthorization>,
        transaction: Option<String>,
    ) -> Result<MfaChallenge, MfaError> {
        // The generation first, then what it offers: a step started while a reset lands carries
        // the generation its methods came from (void once the reset is done), never a later one.
        let generation = self.current_generation(user).await?.value;
        let methods = self.methods(user).await?;
        if methods.is_empty() {
            return Err(NotEnrolled.into());
        }
        let token = tokens::random_token();
        let ticket = Ticket {
            sub: user.to_owned(),
            amr: first_factors.iter().map(|m| (*m).to_owned()).collect(),
            pending,
            generation,
            transaction,
        };
        let ticket = serde_json::to_vec(&ticket).map_err(MfaError::internal)?;
        if !self
            .ephemeral()
            .insert_if_absent(&challenge_key(&token), &ticket, CHALLENGE_TTL)
            .await?
        {
            return Err(MfaError::internal("mfa_token collision"));
        }
        Ok(MfaChallenge {
            mfa_required: true,
            mfa_token: token,
            methods,
        })
    }

    /// Prepares the MFA step's challenge for `kind` (an SMS or email code sent, WebAuthn request
    /// options made), bound to this step; the `mfa_token` stays live. Counted against the client
    /// address's failure budget when the token is wrong.
    pub async fn prepare_challenge(
        &self,
        mfa_token: &str,
        kind: &str,
        client: &ClientInfo,
    ) -> Result<Value, MfaError> {
        self.limited_by_address(client, async {
            let ticket = self.ticket(mfa_token).await?;
            let user = ticket.sub.as_str();
            let factor = self.inner.factors.get(kind)?.clone();
            if !factor.is_available() {
                return Err(UnknownFactor.into());
            }
            self.refuse_locked(user, factor.kind()).await?;
            let credentials = self.credentials_of(user, factor.kind()).await?;
            if factor.is_enrollable() && credentials.is_empty() {
                return Err(NotEnrolled.into());
            }
            let cx = FactorContext::new(self, factor.kind(), user, ticket.generation, client)
                .for_challenge(tokens::digest(mfa_token))
                .for_transaction(ticket.transaction.clone());
            factor.prepare(&cx, &credentials).await
        })
        .await
    }

    /// Completes an MFA step with a proof of `kind` (the factor's JSON: `{"code": …}`,
    /// `{"credential": …}`). The token is consumed on success and dies after
    /// [`MAX_CODE_ATTEMPTS`] wrong proofs; until then a wrong proof leaves it usable. Every
    /// limit applies: the client address's failure budget, the user's, the factor's lock.
    pub async fn finish_challenge(
        &self,
        mfa_token: &str,
        kind: &str,
        proof: &Value,
        client: &ClientInfo,
    ) -> Result<CompletedChallenge, MfaError> {
        self.limited_by_address(
            client,
            self.finish_challenge_now(mfa_token, kind, proof, client),
        )
        .await
    }

    async fn finish_challenge_now(
        &self,
        mfa_token: &str,
        kind: &str,
        proof: &Value,
        client: &ClientInfo,
    ) -> Result<CompletedChallenge, MfaError> {
        let factor = self.inner.factors.get(kind)?.clone();
        if !factor.is_available() {
            return Err(UnknownFactor.into());
        }
        factor.check_proof(proof)?;
        let ticket = self.ticket(mfa_token).await?;
        // The attempt is counted before the proof is checked, so that racing requests cannot
        // have more than MAX_CODE_ATTEMPTS proofs checked on one token between them.
        let attempts_key = attempts_key(mfa_token);
        let attempt = self
            .ephemeral()
            .increment(&attempts_key, CHALLENGE_TTL)
            .await?;
        if attempt > MAX_CODE_ATTEMPTS {
            self.kill_challenge(mfa_token).await?;
            return Err(InvalidMfaToken.into());
        }
        let user = ticket.sub.as_str();
        let outcome = async {
            let credentials = self.credentials_of(user, factor.kind()).await?;
            if factor.is_enrollable() && credentials.is_empty() {
                return Err(NotEnrolled.into());
            }
            let cx = FactorContext::new(self, factor.kind(), user, ticket.generation, client)
                .for_challenge(tokens::digest(mfa_token));
            self.limited(
                user,
                Some(factor.kind()),
                factor.kind(),
                factor.verify(&cx, &credentials, proof),
            )
            .await
        }
        .await;
        let verified = match outcome {
            Ok(verified) => verified,
            Err(error @ MfaError::InvalidCode(_)) => {
                if attempt >= MAX_CODE_ATTEMPTS {
                    self.kill_challenge(mfa_token).await?;
                }
                return Err(error);
            }
            Err(other) => {
                // Not a wrong proof (a factor not enrolled, bad input, a store down): the attempt
                // is given back.
                self.ephemeral().decrement(&attempts_key).await?;
                return Err(other);
            }
        };
        let Some(taken) = self.ephemeral().take(&challenge_key(mfa_token)).await? else {
            return Err(InvalidMfaToken.into());
        };
        let ticket: Ticket = serde_json::from_slice(&taken).map_err(MfaError::internal)?;
        let mut amr = ticket.amr;
        let used = factor.amr();
        if !amr.iter().any(|known| known == used) {
            amr.push(used.to_owned());
        }
        let event = AuditEvent::MfaSucceeded {
            method: factor.kind().to_owned(),
        };
        self.audit().record(&ticket.sub, event).await;
        self.factor_login_succeeded(&ticket.sub).await?;
        Ok(CompletedChallenge {
            subject: ticket.sub,
            amr,
            method: factor.kind().to_owned(),
            acr: verified.acr,
            answer: verified.answer,
            pending: ticket.pending,
            generation: ticket.generation,
            transaction: ticket.transaction,
        })
    }

    /// Refuses every later use of `mfa_token`: its wrong proofs are spent.
    async fn kill_challenge(&self, mfa_token: &str) -> Result<(), MfaError> {
        self.ephemeral()
            .insert_if_absent(&dead_key(mfa_token), b"1", CHALLENGE_TTL)
            .await?;
        Ok(())
    }

    /// What a live `mfa_token` stands for, without using it up: refused when unknown, expired,
    /// dead, or of an older generation than the user's (a reset since).
    pub(crate) async fn ticket(&self, mfa_token: &str) -> Result<Ticket, MfaError> {
        if mfa_token.is_empty() || mfa_token.len() > MAX_TOKEN_LEN {
            return Err(InvalidMfaToken.into());
        }
        let ticket = self
            .ephemeral()
            .get(&challenge_key(mfa_token))
            .await?
            .ok_or(InvalidMfaToken)?;
        if self.ephemeral().get(&dead_key(mfa_token)).await?.is_some() {
            return Err(InvalidMfaToken.into());
        }
        let ticket: Ticket = serde_json::from_slice(&ticket).map_err(MfaError::internal)?;
        if self.current_generation(&ticket.sub).await?.value != ticket.generation {
            return Err(InvalidMfaToken.into());
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

/// Set when an `mfa_token` has had its last wrong proof. The token is marked dead rather than
/// removed, so that a request already holding the right proof still consumes it exactly once
/// while wrong ones race it (removing it would refuse that request too).
fn dead_key(token: &str) -> String {
    format!("{}:dead", challenge_key(token))
}
