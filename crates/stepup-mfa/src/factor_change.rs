//! Changes to a user's factors: one at a time, and what follows a removal.
//!
//! Activating or removing a factor checks the user's other factors first (SMS never left alone,
//! backup codes given with the first factor and taken with the last); those checks hold only if
//! no other change runs between the check and the write. Each such change holds a per-user lease
//! in the ephemeral store, shared by every instance; a second change meanwhile is refused
//! ([`MfaError::FactorChangeInProgress`], `409`) rather than queued, and the client tries again.
//! The lease expires by itself if its holder dies, so it never locks a user out for longer than
//! [`FACTOR_CHANGE_LEASE`]. A change is a handful of store calls, each bounded by the store's
//! timeouts; only one stalled past the lease (a store hung mid-statement) would let a second
//! change run beside it, and release that one's lease when it ends.

use std::future::Future;
use std::time::Duration;

use stepup_store::CodeSet;

use crate::{Mfa, MfaError};

/// The longest a factor change can keep others out, should its process die holding the lease.
pub const FACTOR_CHANGE_LEASE: Duration = Duration::from_secs(30);

impl Mfa {
    /// Runs `change` holding `user`'s factor-change lease.
    pub(crate) async fn one_factor_change<T>(
        &self,
        user: &str,
        change: impl Future<Output = Result<T, MfaError>>,
    ) -> Result<T, MfaError> {
        let lease = format!("factor_change:{user}");
        if !self
            .ephemeral()
            .insert_if_absent(&lease, b"1", FACTOR_CHANGE_LEASE)
            .await?
        {
            return Err(MfaError::FactorChangeInProgress);
        }
        let outcome = change.await;
        // The change is done (or refused) whatever the release does: a lease that could not be
        // released only delays the user's next change until it expires.
        if let Err(error) = self.ephemeral().remove(&lease).await {
            tracing::warn!(%error, "a factor-change lease could not be released; it will expire");
        }
        outcome
    }

    /// What follows the removal of any factor: the backup codes go when no factor remains, and
    /// devices remembered on the strength of a factor are revoked.
    pub(crate) async fn after_factor_removed(&self, user: &str) -> Result<(), MfaError> {
        if !self.is_enrolled(user).await? {
            let no_codes = CodeSet {
                kind: crate::backup::KIND.to_owned(),
                codes: Vec::new(),
            };
            self.factors().replace_codes(user, no_codes).await?;
        }
        self.revoke_devices(user).await?;
        Ok(())
    }
}
