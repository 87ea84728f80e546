//! [`FactorStore`]: durable per-user factor state, the same shape for every kind of factor.
//!
//! The store never interprets a factor: a credential is a row keyed by (user, kind, id) with an
//! opaque payload (the engine seals secrets before they get here), and three atomic shapes serve
//! every factor:
//!
//! - **activate**: pending → active, replacing a code set in the same step where asked
//!   ([`FactorStore::activate`]);
//! - **advance a counter**: a monotonic compare-and-set (the TOTP time step, the WebAuthn
//!   signature counter) ([`FactorStore::advance_counter`]);
//! - **consume a code**: single-use hashed codes (backup codes, SMS and recovery codes)
//!   ([`FactorStore::consume_code`]).
//!
//! A kind enrolled with [`Enrollment::Many`] keeps each id with one user, so a credential is also
//! found by its id alone ([`FactorStore::credential_by_id`]), as a passwordless login needs.
//!
//! Adding a factor adds a kind name, never a method.

use crate::{StoreResult, async_trait};

/// Whether a credential is waiting for its first proof, in use, or no longer trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialStatus {
    /// Made, not yet confirmed: it proves nothing.
    Pending,
    /// Confirmed: it can complete a login.
    Active,
    /// No longer trusted (a suspected clone): listed so its owner sees it, never accepted, until
    /// it is removed and enrolled again.
    Disabled,
}

impl CredentialStatus {
    /// The stored name: `pending`, `active` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    /// The status a stored name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A user's generation: a number every reset of the user (a recovery, an administrator's reset,
/// the account's deletion) moves forward. Whatever carries an older generation than the user's
/// current one (a credential, a remembered device, a token) is void, whenever it was written:
/// a write that raced a reset and landed after it is void all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Generation {
    /// 0 for a user never reset.
    pub value: u64,
    /// When it last moved (Unix seconds); `None` for a user never reset. A token that carries no
    /// generation (one from another issuer) is void when issued at or before this second.
    pub changed_at: Option<u64>,
}

/// One move of a user's generation, in the order the store made them: the feed an instance
/// replays to keep its copy of every user's generation current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationChange {
    /// The position of this change in the store's feed: strictly increasing, and a change becomes
    /// visible only after every change of a lower position (readers may resume after the last
    /// position they saw).
    pub seq: u64,
    /// The user.
    pub user: String,
    /// The user's generation after the change.
    pub generation: Generation,
}

/// One credential of one factor of one user (an authenticator app, a passkey, a phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user.
    pub user: String,
    /// The factor kind, a short stable name (`totp`, `webauthn`, `sms`); opaque to the store.
    pub kind: String,
    /// Unique among the user's credentials of this kind; for a kind enrolled with
    /// [`Enrollment::Many`], held by no other user either.
    pub id: String,
    /// Pending until confirmed.
    pub status: CredentialStatus,
    /// A name the user chose, if any.
    pub label: Option<String>,
    /// The factor's own data, sealed where it holds a secret; opaque to the store.
    pub payload: String,
    /// A monotonic counter: the last accepted TOTP step, the WebAuthn signature count.
    pub counter: u64,
    /// When it was made (Unix seconds).
    pub created_at: u64,
    /// When it last proved a login (Unix seconds).
    pub last_used_at: Option<u64>,
    /// The user's [`Generation::value`] when it was made: once the user's generation has moved
    /// on, the credential is stale and proves nothing.
    pub generation: u64,
}

impl Credential {
    /// Which credential this is.
    pub fn key(&self) -> CredentialRef<'_> {
        CredentialRef {
            user: &self.user,
            kind: &self.kind,
            id: &self.id,
        }
    }
}

/// Names one credential: (user, kind, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialRef<'a> {
    /// The user.
    pub user: &'a str,
    /// The factor kind.
    pub kind: &'a str,
    /// The credential id.
    pub id: &'a str,
}

/// How many credentials of a kind a user may hold, for [`FactorStore::put_pending`].
///
/// A factor enrolls every credential of its kind under one rule: only then is each id of a
/// [`Many`](Self::Many) kind held by one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrollment {
    /// At most one per user (an authenticator app): the call is refused while the user has an
    /// active credential of the kind of the same [`generation`](Credential::generation), or a
    /// credential of the kind (of any status) of a newer generation: a write made before a reset
    /// and landing after it never replaces what was enrolled since. Every other credential of the
    /// user and kind (pending ones, and those of an older generation) is replaced. Other users
    /// are not looked at: every user may hold the same id (TOTP's is `totp`).
    OnePerUser,
    /// Any number per user (passkeys), each id held by one user only: refused when a credential
    /// of the kind with this id is already stored, pending or active, for ANY user (the caller's
    /// included). The check and the insert are one atomic step, so of concurrent calls with the
    /// same kind and id at most one succeeds, whichever users make them: this is what binds a
    /// credential id to one account, and what makes [`FactorStore::credential_by_id`] name it.
    Many,
}

/// One single-use code as stored: never the code itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeHash {
    /// Keyed digest of the normalised code, the lookup key: one attempt finds at most one row.
    pub lookup: String,
    /// A slow hash (argon2id PHC string) of the code, checked once the row is found; empty where
    /// the lookup digest alone decides (codes with enough entropy and a short life).
    pub hash: String,
    /// When the code stops being accepted (Unix seconds, live while strictly after now), if ever.
    pub expires_at: Option<u64>,
}

/// A whole set of codes of one kind, written in one step (e.g. the backup codes given at
/// activation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSet {
    /// The code kind (`backup_code`, …).
    pub kind: String,
    /// The codes; the set replaces every earlier code of the kind.
    pub codes: Vec<CodeHash>,
}

/// Durable per-user factor state.
///
/// Every single-use or check-and-update call is ONE atomic operation: concurrent callers, in this
/// process or another sharing the backend, cannot both win. Code liveness is judged by the
/// store's injected clock.
#[async_trait]
pub trait FactorStore: Send + Sync + 'static {
    /// Stores `credential` (its `status` is ignored: it is stored pending) under `rule`. Returns
    /// `false`, changing nothing, when the rule refuses it: [`Enrollment::OnePerUser`] while the
    /// user has an active credential of the kind and generation or any credential of the kind of
    /// a newer generation, [`Enrollment::Many`] while any user holds a credential of the kind
    /// with this id. The check and the write are one atomic step.
    async fn put_pending(&self, credential: Credential, rule: Enrollment) -> StoreResult<bool>;

    /// Turns the pending credential active with `counter` as its counter and, in the same atomic
    /// step, replaces the user's codes of `codes.kind` when `codes` is given. Returns `false`,
    /// changing nothing, when the credential is absent or already active: exactly one concurrent
    /// caller wins, and a failure leaves no half-enrolled user.
    async fn activate(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        codes: Option<CodeSet>,
    ) -> StoreResult<bool>;

    /// One credential, pending or active.
    async fn credential(&self, key: CredentialRef<'_>) -> StoreResult<Option<Credential>>;

    /// Every credential of the user, of every kind and status, oldest first (ties by kind, id).
    async fn credentials(&self, user: &str) -> StoreResult<Vec<Credential>>;

    /// Every credential of `kind`, of every user (for re-sealing under a new key).
    async fn credentials_of_kind(&self, kind: &str) -> StoreResult<Vec<Credential>>;

    /// The credential of `kind` with this `id`, pending or active, whoever's it is (a
    /// passwordless login names a credential, not a user); `None` when no user holds one.
    ///
    /// For a kind enrolled with [`Enrollment::Many`] the id names at most one credential (see
    /// [`put_pending`](Self::put_pending)). If several users hold the same (kind, id) (every user
    /// of an [`Enrollment::OnePerUser`] kind may, and so may rows written before the store
    /// refused taken ids), the call returns the oldest, pending or active: the least
    /// `created_at`, ties broken by the least user id in byte order. One lookup by (kind, id),
    /// never a scan of the kind.
    async fn credential_by_id(&self, kind: &str, id: &str) -> StoreResult<Option<Credential>>;

    /// Compare-and-set: if the credential is active and `counter` is greater than its counter,
    /// stores `counter`, `used_at` as `last_used_at` and, when given, `payload`. Exactly one
    /// concurrent caller with the same counter gets `true`.
    async fn advance_counter(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        payload: Option<&str>,
        used_at: u64,
    ) -> StoreResult<bool>;

    /// Compare-and-set of the payload, pending or active: if the credential's payload is still
    /// `old`, stores `new` as its payload and, when `used_at` is given, `used_at` as its
    /// `last_used_at`, in the same atomic step (`None` leaves `last_used_at` as stored; the
    /// status and counter are never changed). Returns `false`, changing nothing, when the
    /// credential is absent or its payload is not `old`. Exactly one concurrent caller with the
    /// same `old` gets `true` when every `new` differs from `old`.
    ///
    /// `used_at` records a login by an authenticator whose counter never advances (a synced
    /// passkey, whose signature counter stays 0), which [`advance_counter`](Self::advance_counter)
    /// cannot record; `old` may equal `new` to record only the use.
    async fn replace_payload(
        &self,
        key: CredentialRef<'_>,
        old: &str,
        new: &str,
        used_at: Option<u64>,
    ) -> StoreResult<bool>;

    /// Active → [`CredentialStatus::Disabled`]; `false`, changing nothing, when the credential is
    /// absent or not active.
    async fn disable_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool>;

    /// Sets (or with `None` clears) the label; `false` if there is no such credential.
    async fn set_label(&self, key: CredentialRef<'_>, label: Option<&str>) -> StoreResult<bool>;

    /// Removes one credential; `true` if there was one.
    async fn delete_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool>;

    /// Replaces the user's whole set of codes of `set.kind` in one step.
    async fn replace_codes(&self, user: &str, set: CodeSet) -> StoreResult<()>;

    /// The slow hash stored under `lookup`, if that code exists, is unused and live.
    async fn code_hash(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<Option<String>>;

    /// Consume-if-present: removes the live code; `true` for exactly one concurrent caller.
    async fn consume_code(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<bool>;

    /// How many live, unused codes of `kind` the user has.
    async fn count_codes(&self, user: &str, kind: &str) -> StoreResult<usize>;

    /// Adds one to the user's streak of consecutive failures of factor `kind` and returns the
    /// new streak (atomic: 100 concurrent calls from 0 end at 100).
    async fn record_failure(&self, user: &str, kind: &str) -> StoreResult<u64>;

    /// The current streak of consecutive failures of factor `kind`.
    async fn failures(&self, user: &str, kind: &str) -> StoreResult<u64>;

    /// Ends the streak (a success, a recovery, an admin unlock).
    async fn clear_failures(&self, user: &str, kind: &str) -> StoreResult<()>;

    /// The user's current generation (`value` 0, `changed_at` `None` for a user never reset).
    async fn generation(&self, user: &str) -> StoreResult<Generation>;

    /// Moves the user's generation forward by one, `changed_at` = `at`, and appends the change to
    /// the feed ([`generation_changes`](Self::generation_changes)); returns the new generation.
    /// Atomic: 100 concurrent calls from 0 end at 100, each with its own value and feed position.
    async fn advance_generation(&self, user: &str, at: u64) -> StoreResult<Generation>;

    /// The changes of every user's generation after feed position `after` (0: from the start),
    /// oldest first, at most `limit`. A user whose generation moved several times may appear once,
    /// with the latest: only the latest generation of each user matters.
    async fn generation_changes(
        &self,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<GenerationChange>>;

    /// Removes every credential, code and failure streak of the user (account deletion,
    /// recovery). The generation stays: it must outlive the factors it protects.
    async fn delete_user_factors(&self, user: &str) -> StoreResult<()>;

    /// Whether the store answers and accepts writes (readiness).
    async fn ping(&self) -> StoreResult<()>;
}
