//! The backup-code factor: ten single-use codes given with a user's first factor, kept as a code
//! set of kind [`KIND`] (a keyed lookup digest and an argon2id hash each), consumed atomically.

mod codes;

pub use codes::{BackupCodes, CODE_COUNT};

use stepup_store::{CodeHash, CodeSet};

use crate::audit::AuditEvent;
use crate::{Method, Mfa, MfaError};

/// The store kind of backup codes.
pub const KIND: &str = "backup_code";

impl Mfa {
    /// Redeems a backup code: one hash check, single-use. Returns the codes left. Counts against
    /// the user's attempt limit and the factor's failure streak.
    pub async fn redeem_backup_code(&self, user: &str, code: &str) -> Result<usize, MfaError> {
        self.limited(
            user,
            Some(Method::BackupCode),
            "backup_code",
            self.check_backup_code(user, code),
        )
        .await
    }

    async fn check_backup_code(&self, user: &str, code: &str) -> Result<usize, MfaError> {
        let normalised = BackupCodes::normalise(code).ok_or(MfaError::InvalidCode)?;
        let lookup = self.inner.backup.lookup(&normalised);
        let hash = self
            .factors()
            .code_hash(user, KIND, &lookup)
            .await?
            .ok_or(MfaError::InvalidCode)?;
        let matches = self.kdf().verify(normalised.as_bytes(), &hash).await?;
        if !matches || !self.factors().consume_code(user, KIND, &lookup).await? {
            return Err(MfaError::InvalidCode);
        }
        let remaining = self.remaining_backup_codes(user).await?;
        self.audit()
            .record(user, AuditEvent::BackupCodeUsed { remaining })
            .await;
        Ok(remaining)
    }

    /// Unused backup codes of the user.
    pub async fn remaining_backup_codes(&self, user: &str) -> Result<usize, MfaError> {
        Ok(self.factors().count_codes(user, KIND).await?)
    }

    /// Replaces the whole set of backup codes; returns the new codes, shown this once.
    pub async fn regenerate_backup_codes(&self, user: &str) -> Result<Vec<String>, MfaError> {
        if !self.is_enrolled(user).await? {
            return Err(MfaError::NotEnrolled);
        }
        let (codes, set) = self.new_backup_codes().await?;
        self.factors().replace_codes(user, set).await?;
        let event = AuditEvent::BackupCodesRegenerated { count: codes.len() };
        self.audit().record(user, event).await;
        Ok(codes)
    }

    /// The backup codes a factor being activated brings: a new set for a user with no active
    /// factor yet (stored with the activation, in the same step), none for one who has.
    pub(crate) async fn first_factor_backup_codes(
        &self,
        user: &str,
    ) -> Result<(Vec<String>, Option<CodeSet>), MfaError> {
        if self.is_enrolled(user).await? {
            return Ok((Vec::new(), None));
        }
        let (codes, set) = self.new_backup_codes().await?;
        Ok((codes, Some(set)))
    }

    async fn new_backup_codes(&self) -> Result<(Vec<String>, CodeSet), MfaError> {
        let codes = BackupCodes::generate();
        let normalised = codes
            .iter()
            .map(|code| BackupCodes::normalise(code))
            .collect::<Option<Vec<_>>>()
            .ok_or(MfaError::Internal("could not hash the backup codes"))?;
        // The ten hashes run across the pool's slots at once.
        let hashes = self.kdf().hash_many(&normalised).await?;
        let hashes = normalised
            .iter()
            .zip(hashes)
            .map(|(normalised, hash)| CodeHash {
                lookup: self.inner.backup.lookup(normalised),
                hash,
                expires_at: None,
            })
            .collect();
        Ok((
            codes,
            CodeSet {
                kind: KIND.to_owned(),
                codes: hashes,
            },
        ))
    }
}
