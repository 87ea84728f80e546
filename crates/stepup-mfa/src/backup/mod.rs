//! The backup-code factor: ten single-use codes given with a user's first factor, kept as a code
//! set (a keyed lookup digest and an argon2id hash each), consumed atomically. It is registered
//! on every engine; it is never enrolled on its own and never counts as a factor by itself: the
//! engine offers it while the user has another factor and codes are left, and removes the codes
//! with the last factor.
//!
//! The set belongs to the user's generation: a set written by an enrollment that raced a reset
//! is not the set of the user's current generation, and is never read.

mod codes;

pub use codes::{BackupCodes, CODE_COUNT};

use serde::Deserialize;
use serde_json::Value;
use stepup_core::acr::amr;
use stepup_store::{CodeHash, CodeSet, Credential};

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::error::{InvalidCode, MfaError, NotEnrolled};
use crate::factor::{Factor, FactorContext, Verified, async_trait, parse_input};

/// The kind of the backup-code factor (and of its failure streak).
pub const KIND: &str = "backup_code";

/// The backup-code factor, registered on every engine.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BackupCodesFactor;

/// A backup code, as `code` or (the earlier shape) `backup_code`.
#[derive(Deserialize)]
struct Proof {
    #[serde(alias = "backup_code")]
    code: String,
}

#[async_trait]
impl Factor for BackupCodesFactor {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn amr(&self) -> &'static str {
        amr::OTP
    }

    fn noun(&self) -> &'static str {
        "a set of backup codes"
    }

    fn is_enrollable(&self) -> bool {
        false
    }

    async fn is_offered(
        &self,
        cx: &FactorContext<'_>,
        _credentials: &[Credential],
    ) -> Result<bool, MfaError> {
        Ok(cx.mfa.remaining_backup_codes(cx.user()).await? > 0)
    }

    fn check_proof(&self, proof: &Value) -> Result<(), MfaError> {
        parse_input::<Proof>(proof).map(drop)
    }

    /// One hash check, single-use; the answer tells the codes left (`remaining_codes`).
    async fn verify(
        &self,
        cx: &FactorContext<'_>,
        _credentials: &[Credential],
        proof: &Value,
    ) -> Result<Verified, MfaError> {
        let Proof { code } = parse_input(proof)?;
        let mfa = cx.mfa;
        let user = cx.user();
        let normalised = BackupCodes::normalise(&code).ok_or(InvalidCode)?;
        let lookup = mfa.inner.backup.lookup(&normalised);
        let kind = mfa.backup_code_kind(user).await?;
        let hash = mfa
            .factors()
            .code_hash(user, &kind, &lookup)
            .await?
            .ok_or(InvalidCode)?;
        let matches = mfa.kdf().verify(normalised.as_bytes(), &hash).await?;
        if !matches || !mfa.factors().consume_code(user, &kind, &lookup).await? {
            return Err(InvalidCode.into());
        }
        let remaining = mfa.factors().count_codes(user, &kind).await?;
        mfa.audit()
            .record(user, AuditEvent::BackupCodeUsed { remaining })
            .await;
        Ok(Verified::mfa().with_answer("remaining_codes", remaining))
    }
}

impl Mfa {
    /// Unused backup codes of the user.
    pub async fn remaining_backup_codes(&self, user: &str) -> Result<usize, MfaError> {
        let kind = self.backup_code_kind(user).await?;
        Ok(self.factors().count_codes(user, &kind).await?)
    }

    /// Replaces the whole set of backup codes; returns the new codes, shown this once.
    pub async fn regenerate_backup_codes(&self, user: &str) -> Result<Vec<String>, MfaError> {
        if !self.is_enrolled(user).await? {
            return Err(NotEnrolled.into());
        }
        let generation = self.current_generation(user).await?.value;
        let (codes, set) = self.new_backup_codes(generation).await?;
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
        let generation = self.current_generation(user).await?.value;
        let (codes, set) = self.new_backup_codes(generation).await?;
        Ok((codes, Some(set)))
    }

    /// Removes the user's backup codes (with their last factor).
    pub(crate) async fn clear_backup_codes(&self, user: &str) -> Result<(), MfaError> {
        let none = CodeSet {
            kind: self.backup_code_kind(user).await?,
            codes: Vec::new(),
        };
        Ok(self.factors().replace_codes(user, none).await?)
    }

    /// The code-set kind of the user's current generation.
    pub(crate) async fn backup_code_kind(&self, user: &str) -> Result<String, MfaError> {
        Ok(code_kind(self.current_generation(user).await?.value))
    }

    async fn new_backup_codes(&self, generation: u64) -> Result<(Vec<String>, CodeSet), MfaError> {
        let codes = BackupCodes::generate();
        let normalised = codes
            .iter()
            .map(|code| BackupCodes::normalise(code))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| MfaError::internal("could not hash the backup codes"))?;
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
                kind: code_kind(generation),
                codes: hashes,
            },
        ))
    }
}

/// The code-set kind of generation `generation`: `backup_code` for a user never reset (the kind
/// stored before generations existed), `backup_code@3` after.
fn code_kind(generation: u64) -> String {
    if generation == 0 {
        KIND.to_owned()
    } else {
        format!("{KIND}@{generation}")
    }
}
