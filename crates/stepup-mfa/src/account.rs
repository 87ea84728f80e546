//! Resets and the generation: what voids everything a user's past sessions hold.
//!
//! A user's **generation** ([`Generation`]) moves forward at every reset — a recovery taking
//! effect, an administrator's reset, the account's deletion — before anything is deleted.
//! Everything that can log the user in carries the generation it was made under: access tokens
//! (claim `gen`), `mfa_token`s, authorization codes, credentials, remembered devices, backup-code
//! sets. Whatever carries an older generation than the user's current one is void, whenever it was
//! written: a passkey registration or a remembered-device login that raced a reset and landed
//! after its deletes proves nothing. So a reset cannot be outraced, and a token minted after a
//! reset is valid at once, whatever second it was minted in (a token of another issuer, which
//! carries no generation, is void when issued at or before the reset's second).

use std::time::Duration;

use stepup_core::AuthContext;
use stepup_store::Generation;

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::error::{FactorChangeInProgress, MfaError, TokenRevoked};

/// How long a reset waits for a factor change in flight to end before it goes ahead (the
/// generation voids what that change writes anyway).
const RESET_WAITS_FOR_CHANGES: Duration = Duration::from_secs(2);

impl Mfa {
    /// Whether a verified token of `caller` still stands: issued under the user's current
    /// generation (or, without a `gen` claim, after the user's last reset). Answered from this
    /// process's copy of the generations, with no I/O, while it is fresh
    /// ([`replica`](crate::replica)); from the store when the copy is stale or behind the token.
    /// Fails closed when neither can answer.
    pub async fn check_token(&self, caller: &AuthContext) -> Result<bool, MfaError> {
        if let Some(stands) = self.check_token_now(caller) {
            return Ok(stands);
        }
        let generation = self.current_generation(&self.user_of(caller)).await?;
        Ok(token_stands(caller, generation))
    }

    /// [`check_token`](Self::check_token) from the in-memory copy alone: `None` when the copy
    /// is stale, or the token was minted after a reset the copy has not seen yet (then only the
    /// store can tell).
    pub fn check_token_now(&self, caller: &AuthContext) -> Option<bool> {
        let replica = &self.inner.replica;
        replica.start(&self.inner.stores.factors);
        let copied = replica.generation(&self.user_of(caller)).ok()?;
        // The store's generation is the copy's or later: a token of an older one is void, of
        // the same one stands (a newer reset reaches the copy within the bound).
        let known = caller
            .generation()
            .is_none_or(|issued| issued <= copied.value);
        known.then(|| token_stands(caller, copied))
    }

    /// [`check_token`](Self::check_token), and the account still exists (the application says;
    /// an [external](crate::external) user's account is its provider's): stepup's own routes
    /// never enroll or mint for a deleted account. [`TokenRevoked`] otherwise.
    pub async fn check_caller(&self, caller: &AuthContext) -> Result<(), MfaError> {
        let user = self.user_of(caller);
        let exists = self.external_identity(&user).is_some()
            || self.accounts().account_exists(&user).await?;
        if !self.check_token(caller).await? || !exists {
            return Err(TokenRevoked.into());
        }
        Ok(())
    }

    /// Whether the application still has the account `user`.
    pub async fn account_exists(&self, user: &str) -> Result<bool, MfaError> {
        Ok(self.accounts().account_exists(user).await?)
    }

    /// The user's current generation (the `gen` claim of tokens issued now).
    pub async fn generation(&self, user: &str) -> Result<Generation, MfaError> {
        self.current_generation(user).await
    }

    /// Removes everything that logs the user in (factors, backup codes, failure streaks,
    /// remembered devices) and voids every token issued until now, for account deletion. The
    /// audit trail stays: it is the record of what happened.
    pub async fn delete_user(&self, user: &str) -> Result<(), MfaError> {
        self.reset_user(user).await?;
        self.audit()
            .record(user, AuditEvent::AccountDeleted {})
            .await;
        Ok(())
    }

    /// Moves the user's generation on (voiding every token, `mfa_token`, code, credential and
    /// device made until now), then deletes every credential, code, failure streak and device.
    /// Waits briefly for a factor change in flight, holding the factor-change lease while it
    /// deletes when it can; the generation makes the reset hold even when it cannot.
    pub(crate) async fn reset_user(&self, user: &str) -> Result<Generation, MfaError> {
        let generation = self.factors().advance_generation(user, self.now()).await?;
        // This process enforces the reset at once; the others within the replica's bound.
        self.inner.replica.learn(user, generation);
        self.inner.replica.wake();
        let deadline = std::time::Instant::now() + RESET_WAITS_FOR_CHANGES;
        loop {
            match self
                .one_factor_change(user, self.delete_everything(user))
                .await
            {
                Err(MfaError::FactorChangeInProgress(FactorChangeInProgress))
                    if std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(MfaError::FactorChangeInProgress(_)) => {
                    self.delete_everything(user).await?;
                    break;
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        Ok(generation)
    }

    async fn delete_everything(&self, user: &str) -> Result<(), MfaError> {
        let mut kinds: Vec<String> = self.kinds().map(str::to_owned).collect();
        for credential in self.factors().credentials(user).await? {
            if !kinds.contains(&credential.kind) {
                kinds.push(credential.kind);
            }
        }
        self.factors().delete_user_factors(user).await?;
        for kind in &kinds {
            self.factors().clear_failures(user, kind).await?;
        }
        self.revoke_devices(user).await?;
        // Already void by the generation; revoked too, so that nothing lists them.
        let families = self.grants().revoke_user_families(user).await?;
        if families > 0 {
            tracing::info!(target: "stepup::audit", user, families, "refresh-token families revoked by a reset");
        }
        Ok(())
    }
}

/// The rule: a token of a generation stands while it is the user's; one without stands while it
/// was issued after the user's last reset (its second included in the reset, failing closed).
pub(crate) fn token_stands(caller: &AuthContext, current: Generation) -> bool {
    match caller.generation() {
        Some(generation) => generation == current.value,
        None => match current.changed_at {
            None => true,
            Some(changed_at) => caller.issued_at().is_some_and(|iat| iat > changed_at),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(value: u64, changed_at: Option<u64>) -> Generation {
        Generation { value, changed_at }
    }

    #[test]
    fn a_token_stands_while_its_generation_is_the_users() {
        let token = AuthContext::builder("u")
            .generation(3)
            .issued_at(100)
            .build();
        assert!(token_stands(&token, generation(3, Some(100))));
        assert!(!token_stands(&token, generation(4, Some(99))));
        assert!(
            !token_stands(&token, generation(2, Some(50))),
            "not from a later one either"
        );
    }

    #[test]
    fn a_token_without_generation_is_judged_by_its_second() {
        let token = AuthContext::builder("u").issued_at(100).build();
        assert!(token_stands(&token, generation(0, None)));
        assert!(token_stands(&token, generation(1, Some(99))));
        assert!(
            !token_stands(&token, generation(1, Some(100))),
            "the reset's own second"
        );
        let no_iat = AuthContext::builder("u").build();
        assert!(!token_stands(&no_iat, generation(1, Some(5))));
        assert!(token_stands(&no_iat, generation(0, None)));
    }
}
