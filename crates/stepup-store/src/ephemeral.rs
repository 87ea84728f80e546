//! [`EphemeralStore`]: short-lived ceremony state (`mfa_token`s, authorization codes, WebAuthn
//! challenges) and counters, each with an expiry judged by the store's clock.

use std::time::Duration;

use crate::{StoreResult, async_trait};

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

    /// Subtracts one from the live counter under `key` and returns the new count, never going
    /// below zero; its expiry is kept, and an absent or expired counter stays absent (returns 0).
    /// Used to give back an attempt that was counted before it was checked and then succeeded.
    async fn decrement(&self, key: &str) -> StoreResult<u64>;

    /// Compare-and-set: stores `new` under `key` for `ttl` if the live value is `expected`
    /// (`None`: no live value; an expired value counts as none). `true` if stored; exactly one of
    /// concurrent callers expecting the same value wins, provided none of them stores that value
    /// back (a `new` equal to `expected` leaves the comparison true for the next caller).
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> StoreResult<bool>;

    /// Removes `key` (a value or a counter).
    async fn remove(&self, key: &str) -> StoreResult<()>;
}
