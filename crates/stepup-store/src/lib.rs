//! Storage for stepup: the traits every backend implements, [`MemoryStore`], and one
//! conformance suite per trait.
//!
//! Separate traits, because a deployment may keep them in different places (PostgreSQL for the
//! durable part, Redis for the expiring part):
//!
//! - [`FactorStore`]: durable per-user factor state, the same shape for every factor: credentials
//!   keyed by (user, kind, id) with an opaque payload, single-use code sets, failure streaks and
//!   each user's generation (moved forward by every reset).
//! - [`EphemeralStore`]: short-lived state with expiry: `mfa_token`s, authorization codes,
//!   challenges, attempt counters.
//! - [`DeviceStore`]: remembered devices (durable, with expiry).
//! - [`AuditStore`]: the append-only audit trail.
//! - [`GrantStore`]: the authorization server's registered clients and refresh-token families.
//!
//! [`Store`] is all five, as [`MemoryStore`] and the SQLite and PostgreSQL backends
//! (`stepup-store-sqlite`, `stepup-store-postgres`) are.
//!
//! Every single-use or check-and-update operation is ONE atomic call of the trait
//! (consume-if-present, compare-and-set, insert-if-absent); callers never read-then-write. A backend
//! is proven by passing the [`conformance`] suite of each trait it implements (feature
//! `conformance`), which races many tasks on each of those calls.
//!
//! Expiry is judged by the store's injected [`Clock`](stepup_core::clock::Clock).

pub use async_trait::async_trait;

mod audit;
#[cfg(feature = "conformance")]
pub mod conformance;
mod devices;
mod ephemeral;
mod factors;
mod grants;
mod memory;
#[cfg(feature = "sql")]
pub mod sql;

pub use audit::{AuditRecord, AuditStore};
pub use devices::{DeviceRecord, DeviceStore};
pub use ephemeral::EphemeralStore;
pub use factors::{
    CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus, Enrollment, FactorStore,
    Generation, GenerationChange,
};
pub use grants::{ClientRecord, GrantStore, RefreshFamily, Rotation};
pub use memory::{MemoryStore, expiry_after};

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

/// A store holding every kind of state.
pub trait Store: FactorStore + EphemeralStore + DeviceStore + AuditStore + GrantStore {}

impl<T: FactorStore + EphemeralStore + DeviceStore + AuditStore + GrantStore> Store for T {}
