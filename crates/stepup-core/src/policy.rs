//! The questions stepup's tower layers ask, as small traits: the layers know nothing of storage,
//! and whoever keeps the state answers them (stepup's engine implements all four; a test or an
//! application may answer them itself).
//!
//! - [`RevocationCheck`]: does this verified token still stand (its user not deleted, recovered
//!   or reset since)?
//! - [`RequestCeiling`]: may this client make one more request to this group of routes?
//! - [`DeviceVouching`]: which user, if any, does this remembered-device cookie vouch for?
//! - [`ProofReplay`]: is this the first use of this DPoP proof, across every instance?
//!
//! Each answer is either a verdict or [`Unavailable`]: the layers then fail closed (`503`).
//!
//! ```
//! use stepup_core::AuthContext;
//! use stepup_core::policy::{Revoked, RevocationCheck, Unavailable};
//!
//! /// Refuses every token of one user, as if that account had been deleted.
//! struct Banned(&'static str);
//!
//! #[stepup_core::policy::async_trait]
//! impl RevocationCheck for Banned {
//!     async fn check(&self, caller: &AuthContext) -> Result<(), Revoked> {
//!         if caller.subject() == self.0 { Err(Revoked::Revoked) } else { Ok(()) }
//!     }
//! }
//! # let _ = Unavailable;
//! ```

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

pub use async_trait::async_trait;

use crate::AuthContext;

/// The state behind a policy could not be reached: the layer answers `503` rather than guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the service cannot verify this now")
    }
}

impl std::error::Error for Unavailable {}

/// Why a verified token does not stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// Its user was deleted, recovered or reset after it was issued: `401 invalid_token`.
    Revoked,
    /// The check could not run: `503`.
    Unavailable,
}

impl From<Unavailable> for Revoked {
    fn from(_: Unavailable) -> Self {
        Self::Unavailable
    }
}

/// Whether a verified token still stands.
#[async_trait]
pub trait RevocationCheck: Send + Sync + 'static {
    /// `Ok` when `caller`'s token still stands.
    async fn check(&self, caller: &AuthContext) -> Result<(), Revoked>;

    /// The same verdict without waiting, when the policy holds it in memory (stepup's engine
    /// keeps a copy of every user's generation); `None` when only [`check`](Self::check) can
    /// tell. The layer asks this first: a verdict here costs the request no allocation and no
    /// await. It must never say `Ok` where `check` would refuse.
    fn check_now(&self, caller: &AuthContext) -> Option<Result<(), Revoked>> {
        let _ = caller;
        None
    }
}

/// The verdict on one request under a ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the ceiling.
    Allowed,
    /// Over it: `429` with this `Retry-After`.
    Limited {
        /// How long to wait.
        retry_after: Duration,
    },
}

/// Counts requests per client against a ceiling shared by every instance.
#[async_trait]
pub trait RequestCeiling: Send + Sync + 'static {
    /// Counts one request of `client` (its address, `None` when unknown) to the routes named
    /// `name`, at most `max` per fixed `window`. The policy decides how addresses are grouped
    /// (e.g. IPv6 by prefix) and where unknown clients are counted.
    async fn admit(
        &self,
        name: &str,
        client: Option<IpAddr>,
        max: u64,
        window: Duration,
    ) -> Result<Admission, Unavailable>;
}

/// A remembered device presented by a request, as its [`DeviceVouching`] policy vouches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    /// The device's id.
    pub id: String,
    /// The user it belongs to: it vouches for nobody else.
    pub user: String,
    /// When the second factor that remembered it was verified (Unix seconds).
    pub mfa_at: u64,
}

/// Which user, if any, a remembered-device token vouches for.
#[async_trait]
pub trait DeviceVouching: Send + Sync + 'static {
    /// The live device whose cookie holds `token`, if any.
    async fn device(&self, token: &str) -> Result<Option<TrustedDevice>, Unavailable>;
}

/// stepup's own transaction step-up, for `RequireTransaction`: an operation the caller's token
/// does not approve is recorded and named in a `transaction_id` challenge; the MFA step for it
/// returns a single-use grant, redeemed by the retried request. Answered by the engine.
#[async_trait]
pub trait TransactionApprovals: Send + Sync + 'static {
    /// Records `operation` (its canonical JSON) as awaiting `caller`'s approval; its id.
    async fn request_approval(
        &self,
        caller: &AuthContext,
        operation: &str,
    ) -> Result<String, Unavailable>;

    /// Spends `grant` (single use, whatever the answer): whether it approves exactly
    /// `operation` for `caller`.
    async fn redeem_approval(
        &self,
        caller: &AuthContext,
        grant: &str,
        operation: &str,
    ) -> Result<bool, Unavailable>;
}

/// Remembers single-use values (the `jti` of each DPoP proof, keyed with its key's thumbprint) for
/// a while, so that a proof is accepted once across every instance sharing the answer.
///
/// stepup's engine answers through its ephemeral store (`insert_if_absent`: memory, SQLite,
/// PostgreSQL or Redis); [`dpop::InProcessReplay`](crate::dpop::InProcessReplay) answers within
/// one process, for a verify-only service running a single instance.
#[async_trait]
pub trait ProofReplay: Send + Sync + 'static {
    /// Records `key` for `ttl`: `Ok(true)` when it was not live yet (the first use), `Ok(false)`
    /// when it was (a replay). Exactly one of concurrent callers with the same key gets `true`.
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, Unavailable>;
}

#[async_trait]
impl<T: ProofReplay + ?Sized> ProofReplay for std::sync::Arc<T> {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, Unavailable> {
        (**self).first_use(key, ttl).await
    }
}
