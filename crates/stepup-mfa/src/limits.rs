//! Limits on guessing (one place for all of them):
//!
//! - **per user**: a fixed window of failed verifications, then a lockout that doubles with every
//!   burst within a day. Each attempt is counted before its code is checked, by one atomic
//!   `increment`, so concurrent guesses can never get past the limit; a success clears the count.
//! - **per factor**: after [`AttemptPolicy::lock_after`] consecutive failures (100 by default, as
//!   NIST SP 800-63B asks) the factor is locked until a recovery or an administrator's reset. The
//!   streak lives in the durable store, so every instance shares it; a success ends it.
//! - **per account, for passwords**: failed passwords for one username are limited however
//!   many addresses they come from ([`AttemptPolicy::passwords`]: 10 per 15 minutes, then a
//!   lockout growing to at most an hour, so an attacker cannot lock the owner out for long; a
//!   remembered device of the owner still signs in during it).
//! - **per claimed credential**: a sign-in that names its credential before proving anything (a
//!   passkey's assertion) counts its failures per credential, never against the user it names:
//!   a stranger cannot spend the owner's budget.
//! - **per client address**: failed logins (wrong passwords, wrong codes, bad `mfa_token`s) are
//!   limited per window ([`AddressPolicy`]). An attempt is counted before it is checked and given
//!   back when it succeeds, so successful logins never use up an office's shared address.
//!   Addresses are grouped by the engine's one
//!   [`AddressGrouping`](stepup_core::client::AddressGrouping) (IPv6 by prefix), like every
//!   per-address limit.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::SharedClock;
use stepup_store::EphemeralStore;

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::error::{FactorLocked, MfaError};
use crate::factor::ClientInfo;

/// How many failed verifications a user gets, and how long the lockouts last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    /// Failed attempts allowed per window (default 5).
    pub max_failures: u64,
    /// The window (default 5 minutes).
    pub window: Duration,
    /// The first lockout (default 5 minutes); each further burst within a day doubles it.
    pub first_lockout: Duration,
    /// The longest lockout (default 24 hours).
    pub max_lockout: Duration,
    /// Consecutive failures of one factor that lock it until recovery or reset (default 100).
    pub lock_after: u64,
}

impl Default for AttemptPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(5 * 60),
            first_lockout: Duration::from_secs(5 * 60),
            max_lockout: Duration::from_secs(24 * 60 * 60),
            lock_after: 100,
        }
    }
}

impl AttemptPolicy {
    /// The default per-account limit on failed passwords: 10 per 15 minutes, then 15 minutes
    /// locked, doubling with each burst up to one hour. `lock_after` does not apply.
    pub fn passwords() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(15 * 60),
            first_lockout: Duration::from_secs(15 * 60),
            max_lockout: Duration::from_secs(60 * 60),
            lock_after: u64::MAX,
        }
    }
}

/// How many failed logins one client address gets per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Failures allowed per window (default 30).
    pub max_failures: u64,
    /// The window (default 5 minutes).
    pub window: Duration,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        Self {
            max_failures: 30,
            window: Duration::from_secs(5 * 60),
        }
    }
}

/// How long bursts are remembered for the doubling.
const BURST_MEMORY: Duration = Duration::from_secs(24 * 60 * 60);

/// Why an attempt was not admitted.
struct Refused {
    error: MfaError,
    lockout_started: bool,
}

impl Refused {
    fn limited(retry_after: Duration, lockout_started: bool) -> Self {
        Self {
            error: MfaError::rate_limited(retry_after),
            lockout_started,
        }
    }
}

impl From<MfaError> for Refused {
    fn from(error: MfaError) -> Self {
        Self {
            error,
            lockout_started: false,
        }
    }
}

impl From<stepup_store::StoreError> for Refused {
    fn from(error: stepup_store::StoreError) -> Self {
        MfaError::from(error).into()
    }
}

#[derive(Clone)]
struct AttemptLimiter {
    ephemeral: Arc<dyn EphemeralStore>,
    clock: SharedClock,
    policy: AttemptPolicy,
}

impl AttemptLimiter {
    /// Counts an attempt for `user`, or refuses it with the time to wait; `lockout_started` tells
    /// whether this very attempt started a lockout (so that it is audited once).
    async fn admit(&self, user: &str) -> Result<(), Refused> {
        if let Some(retry_after) = self.locked_for(user).await? {
            return Err(Refused::limited(retry_after, false));
        }
        let attempts = self
            .ephemeral
            .increment(&format!("attempts:{user}"), self.policy.window)
            .await?;
        if attempts <= self.policy.max_failures {
            return Ok(());
        }
        let starts_lockout = attempts == self.policy.max_failures + 1;
        if starts_lockout {
            self.start_lockout(user).await?;
        }
        let retry_after = self.locked_for(user).await?.unwrap_or(self.policy.window);
        Err(Refused::limited(retry_after, starts_lockout))
    }

    /// A success: the failures so far no longer count.
    async fn forgive(&self, user: &str) -> Result<(), MfaError> {
        Ok(self.ephemeral.remove(&format!("attempts:{user}")).await?)
    }

    async fn start_lockout(&self, user: &str) -> Result<(), MfaError> {
        let bursts = self
            .ephemeral
            .increment(&format!("bursts:{user}"), BURST_MEMORY)
            .await?;
        let doublings = u32::try_from(bursts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(16);
        let lockout = self
            .policy
            .first_lockout
            .saturating_mul(1 << doublings)
            .min(self.policy.max_lockout);
        let until = self.clock.unix_seconds().saturating_add(lockout.as_secs());
        self.ephemeral
            .insert_if_absent(&format!("locked:{user}"), &until.to_be_bytes(), lockout)
            .await?;
        Ok(())
    }

    async fn locked_for(&self, user: &str) -> Result<Option<Duration>, MfaError> {
        let Some(until) = self.ephemeral.get(&format!("locked:{user}")).await? else {
            return Ok(None);
        };
        let until = <[u8; 8]>::try_from(until.as_slice())
            .map(u64::from_be_bytes)
            .unwrap_or(u64::MAX);
        let remaining = until.saturating_sub(self.clock.unix_seconds()).max(1);
        Ok(Some(Duration::from_secs(remaining)))
    }
}

impl Mfa {
    /// Runs one verification under every limit: refused while the factor is locked or the user
    /// is locked out; counted before it runs; on success the user's count and the factor's streak
    /// are cleared; a wrong code is audited and lengthens the streak, locking the factor at
    /// [`AttemptPolicy::lock_after`]. `kind` is `None` for a factor not yet enrolled (its
    /// failures count per user, not toward a lock).
    pub(crate) async fn limited<T>(
        &self,
        user: &str,
        kind: Option<&str>,
        audit_name: &str,
        verification: impl Future<Output = Result<T, MfaError>>,
    ) -> Result<T, MfaError> {
        let policy = self.inner.attempts;
        let streak = match kind {
            Some(kind) => self.factors().failures(user, kind).await?,
            None => 0,
        };
        if let Some(kind) = kind
            && streak >= policy.lock_after
        {
            return Err(FactorLocked {
                kind: kind.to_owned(),
            }
            .into());
        }
        let limiter = self.limiter(policy);
        if let Err(refused) = limiter.admit(user).await {
            if refused.lockout_started
                && let Some(retry_after) = refused.error.retry_after()
            {
                let seconds = retry_after.as_secs();
                self.audit()
                    .record(user, AuditEvent::Lockout { seconds })
                    .await;
            }
            return Err(refused.error);
        }
        let outcome = verification.await;
        match &outcome {
            Ok(_) => {
                limiter.forgive(user).await?;
                // Only a streak that exists needs ending: a success usually writes nothing more.
                if let Some(kind) = kind
                    && streak > 0
                {
                    self.factors().clear_failures(user, kind).await?;
                }
            }
            Err(MfaError::InvalidCode(_)) => {
                let event = AuditEvent::MfaFailed {
                    method: audit_name.to_owned(),
                };
                self.audit().record(user, event).await;
                if let Some(kind) = kind {
                    let failures = self.factors().record_failure(user, kind).await?;
                    if failures == policy.lock_after {
                        let event = AuditEvent::FactorLocked {
                            method: kind.to_owned(),
                            failures,
                        };
                        self.audit().record(user, event).await;
                    }
                }
            }
            Err(_) => {}
        }
        outcome
    }

    /// Runs a sign-in attempt that names a credential before anything proves who is there
    /// (`claimed`, e.g. a passkey's id): failures count per claimed credential under the user
    /// attempt policy, never against the user it names, so a stranger cannot spend the owner's
    /// budget or lock the owner's factors.
    pub(crate) async fn limited_claim<T>(
        &self,
        claimed: &str,
        attempt: impl Future<Output = Result<T, MfaError>>,
    ) -> Result<T, MfaError> {
        let limiter = self.limiter(self.inner.attempts);
        let key = format!("claim:{}", stepup_core::tokens::digest(claimed));
        limiter.admit(&key).await.map_err(|refused| refused.error)?;
        let outcome = attempt.await;
        if outcome.is_ok() {
            limiter.forgive(&key).await?;
        }
        outcome
    }

    /// Refuses with [`FactorLocked`] while factor `kind` of `user` is locked.
    pub(crate) async fn refuse_locked(&self, user: &str, kind: &str) -> Result<(), MfaError> {
        if self.is_locked(user, kind).await? {
            return Err(FactorLocked {
                kind: kind.to_owned(),
            }
            .into());
        }
        Ok(())
    }

    /// Runs a login step under the client address's failure budget: refused with `429` once it
    /// is used up; a wrong guess ([`MfaError::is_failed_guess`]) stays counted, anything else is
    /// given back, so successful logins never use up an office's shared address.
    pub(crate) async fn limited_by_address<T>(
        &self,
        client: &ClientInfo,
        step: impl Future<Output = Result<T, MfaError>>,
    ) -> Result<T, MfaError> {
        let policy = self.inner.addresses;
        let key = format!("address_failures:{}", self.address_key(client.address));
        let count = self.ephemeral().increment(&key, policy.window).await?;
        if count > policy.max_failures {
            // A refused attempt is not a failure of its own.
            self.ephemeral().decrement(&key).await?;
            return Err(MfaError::rate_limited(policy.window));
        }
        let outcome = step.await;
        let failed = outcome
            .as_ref()
            .err()
            .is_some_and(MfaError::is_failed_guess);
        if !failed {
            self.ephemeral().decrement(&key).await?;
        }
        outcome
    }

    /// Counts a password attempt for `username` (case-insensitive) before it is checked;
    /// refused with [`MfaError::RateLimited`] while the account is locked out.
    pub(crate) async fn admit_password(&self, username: &str) -> Result<(), MfaError> {
        match self
            .limiter(self.inner.passwords)
            .admit(&password_key(username))
            .await
        {
            Ok(()) => Ok(()),
            Err(refused) => {
                if refused.lockout_started {
                    tracing::warn!(target: "stepup::audit", "an account's password attempts are locked out");
                }
                Err(refused.error)
            }
        }
    }

    /// The password of `username` was right: its failures no longer count.
    pub(crate) async fn password_succeeded(&self, username: &str) -> Result<(), MfaError> {
        self.limiter(self.inner.passwords)
            .forgive(&password_key(username))
            .await
    }

    /// Lifts the user's lockout and forgets the failures of the window (an admin reset).
    pub(crate) async fn clear_user_lockout(&self, user: &str) -> Result<(), MfaError> {
        self.ephemeral().remove(&format!("attempts:{user}")).await?;
        self.ephemeral().remove(&format!("locked:{user}")).await?;
        Ok(())
    }

    /// Whether factor `kind` of `user` is locked by consecutive failures.
    pub async fn is_locked(&self, user: &str, kind: &str) -> Result<bool, MfaError> {
        let failures = self.factors().failures(user, kind).await?;
        Ok(failures >= self.inner.attempts.lock_after)
    }

    fn limiter(&self, policy: AttemptPolicy) -> AttemptLimiter {
        AttemptLimiter {
            ephemeral: self.inner.stores.ephemeral.clone(),
            clock: self.inner.clock.clone(),
            policy,
        }
    }
}

/// The limiter key of a username: a digest, so the store holds no address or name.
fn password_key(username: &str) -> String {
    let normalised = username.trim().to_lowercase();
    format!("password:{}", stepup_core::tokens::digest(&normalised))
}
