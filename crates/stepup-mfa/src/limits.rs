//! Per-user limits on code verification: a fixed window of attempts, then a lockout that doubles
//! with every burst within a day (SPEC §3 invariant 3).
//!
//! Each attempt is counted before its code is checked, by one atomic `increment`, so concurrent
//! guesses can never get past the limit; a success clears the count, so only failures add up.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::SharedClock;
use stepup_store::EphemeralStore;

use crate::MfaError;

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
}

impl Default for AttemptPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(5 * 60),
            first_lockout: Duration::from_secs(5 * 60),
            max_lockout: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// How long bursts are remembered for the doubling.
const BURST_MEMORY: Duration = Duration::from_secs(24 * 60 * 60);

/// Why an attempt was not admitted.
pub(crate) struct Refused {
    pub(crate) error: MfaError,
    pub(crate) lockout_started: bool,
}

impl Refused {
    fn limited(retry_after: Duration, lockout_started: bool) -> Self {
        Self {
            error: MfaError::RateLimited { retry_after },
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
pub(crate) struct AttemptLimiter {
    pub(crate) ephemeral: Arc<dyn EphemeralStore>,
    pub(crate) clock: SharedClock,
    pub(crate) policy: AttemptPolicy,
}

impl AttemptLimiter {
    /// Counts an attempt for `user`, or refuses it with the time to wait; `lockout_started` tells
    /// whether this very attempt started a lockout (so that it is audited once).
    pub(crate) async fn admit(&self, user: &str) -> Result<(), Refused> {
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
    pub(crate) async fn forgive(&self, user: &str) -> Result<(), MfaError> {
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
