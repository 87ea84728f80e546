//! The end of an account's authentication state: deletion forgets everything that logs the user
//! in and voids every token issued so far.

use crate::audit::AuditEvent;
use crate::{Mfa, MfaError};

impl Mfa {
    /// Removes everything that logs the user in (factors, backup codes, failure streaks,
    /// remembered devices) and voids every token issued until now, for account deletion. The
    /// audit trail stays: it is the record of what happened.
    pub async fn delete_user(&self, user: &str) -> Result<(), MfaError> {
        self.revoke_tokens(user).await?;
        self.factors().delete_user_factors(user).await?;
        self.revoke_devices(user).await?;
        self.audit()
            .record(user, AuditEvent::AccountDeleted {})
            .await;
        Ok(())
    }

    /// Voids every token issued to the user up to this second.
    pub async fn revoke_tokens(&self, user: &str) -> Result<(), MfaError> {
        let now = self.now();
        Ok(self
            .factors()
            .revoke_tokens_before(user, now.saturating_add(1))
            .await?)
    }

    /// Whether a token issued to `user` at `issued_at` (Unix seconds) has been voided (by
    /// account deletion, recovery or a factor reset).
    pub async fn is_token_revoked(&self, user: &str, issued_at: u64) -> Result<bool, MfaError> {
        Ok(self
            .factors()
            .tokens_revoked_before(user)
            .await?
            .is_some_and(|mark| issued_at < mark))
    }
}
