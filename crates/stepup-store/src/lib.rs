//! Storage for stepup.
//!
//! Separate traits, because a deployment may keep them in different places (PostgreSQL for the
//! durable part, Redis for the expiring part):
//!
//! - [`FactorStore`]: durable state: each user's TOTP enrollment and backup-code hashes.
//! - [`EphemeralStore`]: short-lived state with expiry: `mfa_token`s, authorization codes,
//!   challenges, attempt counters.
//! - [`DeviceStore`]: remembered devices (durable, with expiry).
//! - [`AuditStore`]: the append-only audit trail.
//!
//! [`Store`] is all four, as [`MemoryStore`] and `SqliteStore` are.
//!
//! Every single-use or check-and-update operation is ONE atomic call of the trait
//! (consume-if-present, compare-and-set, insert-if-absent); callers never read-then-write. A backend
//! is proven by passing [`conformance`] (feature `conformance`), which races many tasks on each of
//! those calls.
//!
//! Backends: [`MemoryStore`] (one process; moka for expiring values, sharded maps for counters) and, with the `sqlite`
//! feature, `SqliteStore`. Expiry is judged by the store's injected [`Clock`](stepup_core::clock::Clock).

use std::time::Duration;

pub use async_trait::async_trait;

#[cfg(feature = "conformance")]
pub mod conformance;
mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// A storage failure. Callers fail closed on it: verification answers `503`, never success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or refused the operation.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A user's TOTP enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The secret, sealed by the keyring (opaque to the store).
    pub sealed_secret: String,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    /// 6 or 8.
    pub digits: u8,
    /// Seconds per step.
    pub period: u64,
    /// Pending until the first valid code confirms it.
    pub active: bool,
    /// The last time step accepted for this user; a step at or below it is never accepted again.
    pub last_used_step: Option<u64>,
    /// When the enrollment was made (Unix seconds).
    pub created_at: u64,
}

/// One backup code as stored: never the code itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCodeHash {
    /// Keyed digest of the normalised code (hex), the lookup key: one attempt finds at most one row.
    pub lookup: String,
    /// argon2id hash (PHC string) of the normalised code, checked once the row is found.
    pub hash: String,
}

/// Durable per-user factor state.
#[async_trait]
pub trait FactorStore: Send + Sync + 'static {
    /// The user's TOTP enrollment, pending or active.
    async fn totp(&self, user: &str) -> StoreResult<Option<TotpRecord>>;

    /// Stores a pending enrollment, replacing an earlier pending one. Returns `false`, changing
    /// nothing, when the user already has an active enrollment.
    async fn put_pending_totp(&self, user: &str, record: TotpRecord) -> StoreResult<bool>;

    /// Turns the pending enrollment active, records `step` as used and, in the same atomic step,
    /// replaces the user's backup codes with `backup_codes`. Returns `false`, changing nothing,
    /// when there is no pending enrollment (none, or already active): exactly one concurrent
    /// caller wins, and a failure leaves no half-enrolled user.
    async fn activate_totp(
        &self,
        user: &str,
        step: u64,
        backup_codes: Vec<BackupCodeHash>,
    ) -> StoreResult<bool>;

    /// Compare-and-set: records `step` as the last accepted step if the enrollment is active and
    /// `step` is greater than the last accepted one. Exactly one concurrent caller with the same
    /// step gets `true`.
    async fn accept_totp_step(&self, user: &str, step: u64) -> StoreResult<bool>;

    /// Removes the TOTP enrollment; `true` if there was one.
    async fn delete_totp(&self, user: &str) -> StoreResult<bool>;

    /// Every stored TOTP secret as `(user, sealed_secret)`, for key rotation.
    async fn totp_secrets(&self) -> StoreResult<Vec<(String, String)>>;

    /// Compare-and-set of a sealed secret: replaces `old` by `new` only if `old` is still stored.
    async fn replace_totp_secret(&self, user: &str, old: &str, new: &str) -> StoreResult<bool>;

    /// Replaces the user's whole set of backup codes in one step.
    async fn replace_backup_codes(&self, user: &str, codes: Vec<BackupCodeHash>)
    -> StoreResult<()>;

    /// The argon2id hash stored under `lookup`, if that code exists and is unused.
    async fn backup_code_hash(&self, user: &str, lookup: &str) -> StoreResult<Option<String>>;

    /// Consume-if-present: removes the code; `true` for exactly one concurrent caller.
    async fn consume_backup_code(&self, user: &str, lookup: &str) -> StoreResult<bool>;

    /// How many unused backup codes the user has.
    async fn remaining_backup_codes(&self, user: &str) -> StoreResult<usize>;

    /// Removes every factor of the user (account deletion, recovery).
    async fn delete_factors(&self, user: &str) -> StoreResult<()>;

    /// Whether the store answers (readiness).
    async fn ping(&self) -> StoreResult<()>;
}

/// Short-lived state with expiry, judged by the store's clock.
#[async_trait]
pub trait EphemeralStore: Send + Sync + 'static {
    /// Inserts `value` under `key` for `ttl`, unless a live entry exists; `true` if inserted.
    async fn insert_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool>;

    /// The live value under `key`.
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Consume-if-present: removes and returns the live value; exactly one concurrent caller gets it.
    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Adds one to the counter under `key` and returns the new count. An absent or expired counter
    /// starts at 1 and lives `ttl` from now (a fixed window); later increments keep its expiry.
    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<u64>;

    /// Removes `key`.
    async fn remove(&self, key: &str) -> StoreResult<()>;
}

/// A browser remembered after a successful second factor ("remember this device").
///
/// The browser holds a random token in a cookie; the store keeps only its digest, so a leaked
/// database cannot be replayed as cookies. A device is live while `expires_at` is after the store's
/// clock; an expired one is never returned and is eventually deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Random id shown to the user, used to revoke the device.
    pub id: String,
    /// The user who remembered the device.
    pub user: String,
    /// SHA-256 (hex) of the cookie token; never the token itself.
    pub token_hash: String,
    /// When the device was remembered (Unix seconds).
    pub created_at: u64,
    /// When the device was last used (Unix seconds).
    pub last_used_at: u64,
    /// When the device stops being remembered (Unix seconds); live while strictly after now.
    pub expires_at: u64,
    /// When the second factor that remembered the device was verified (Unix seconds).
    pub mfa_at: u64,
    /// The client address of the last use, if known.
    pub address: Option<String>,
    /// The `User-Agent` of the last use, if known.
    pub user_agent: Option<String>,
}

/// Remembered devices (durable).
///
/// Liveness is judged by the store's clock: a device whose `expires_at` is at or before the
/// clock's current second counts as absent for every call.
#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    /// Stores a newly remembered device.
    ///
    /// `id` and `token_hash` are fresh random values. A device whose `id` or `token_hash` is
    /// already stored is refused with an error, changing nothing, so a colliding token can never
    /// take over another device. Expired devices of the same user may be deleted in the same step.
    async fn insert_device(&self, device: DeviceRecord) -> StoreResult<()>;

    /// The live device (`expires_at` after now, by the store's clock) with this token hash.
    async fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceRecord>>;

    /// Records a use: sets `last_used_at`, `address` and `user_agent` (a `None` clears the stored
    /// value). Returns `false`, changing nothing, if no live device has this id.
    async fn touch_device(
        &self,
        id: &str,
        last_used_at: u64,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<bool>;

    /// The user's live devices, most recently used first (ties: most recently created first,
    /// then by id).
    async fn devices(&self, user: &str) -> StoreResult<Vec<DeviceRecord>>;

    /// Revokes one of the user's devices; another user's id does nothing. Returns `true` if a live
    /// device was revoked (an expired one is deleted too, but counts as absent).
    async fn delete_device(&self, user: &str, id: &str) -> StoreResult<bool>;

    /// Revokes all the user's devices; returns how many live ones there were (expired ones are
    /// deleted too, uncounted).
    async fn delete_devices(&self, user: &str) -> StoreResult<usize>;
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Unique id of the event, chosen by the caller (random).
    pub id: String,
    /// The user the event is about.
    pub user: String,
    /// What happened, e.g. `totp_enrolled`, `mfa_failed`.
    pub kind: String,
    /// When it happened (Unix seconds).
    pub at: u64,
    /// Details as the text of a JSON object; never secrets.
    pub detail: String,
}

/// The audit trail (durable, append-only).
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an event. Appending an `id` already stored changes nothing, so a retried append is
    /// stored once.
    async fn append_audit(&self, record: AuditRecord) -> StoreResult<()>;

    /// The user's most recent `limit` events (by `at`), oldest first; events with the same `at`
    /// keep the order they were appended in.
    async fn audit_events(&self, user: &str, limit: usize) -> StoreResult<Vec<AuditRecord>>;
}

/// A store holding every kind of state.
pub trait Store: FactorStore + EphemeralStore + DeviceStore + AuditStore {}

impl<T: FactorStore + EphemeralStore + DeviceStore + AuditStore> Store for T {}
