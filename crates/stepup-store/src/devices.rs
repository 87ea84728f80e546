//! [`DeviceStore`]: remembered devices ("remember this device").

use crate::{StoreResult, async_trait};

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
    /// The user's generation when the device was remembered: once it has moved on (a reset), the
    /// device vouches for nothing.
    pub generation: u64,
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
