//! [`GrantStore`]: what the authorization server keeps durably — the OAuth clients registered
//! dynamically (RFC 7591) and the refresh-token families it issued.
//!
//! A refresh-token family is one authentication carried forward: the first refresh token is
//! issued with the authorization code's tokens, and every refresh swaps it for a new one
//! (rotation). The family keeps the hash of its current token and of every earlier one, so that
//! an earlier token presented again (a reuse: it was stolen, or the client is confused) revokes
//! the whole family ([`GrantStore::rotate_refresh_token`], one atomic call). Tokens are never
//! stored, only their SHA-256.

use crate::{StoreResult, async_trait};

/// An OAuth client registered dynamically (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The `client_id` issued (random).
    pub id: String,
    /// The client's metadata as registered, the text of a JSON object.
    pub metadata: String,
    /// When it was registered (Unix seconds).
    pub created_at: u64,
    /// The client address it was registered from, if known.
    pub registered_by: Option<String>,
    /// Whether the registration was revoked: a revoked client is refused everywhere.
    pub revoked: bool,
}

/// A family of rotated refresh tokens: one authentication, carried forward by each refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// Random id of the family.
    pub id: String,
    /// The user.
    pub user: String,
    /// The client the tokens were issued to.
    pub client_id: String,
    /// The level of the authentication the family carries (`pwd`, `mfa`, `phr`).
    pub acr: String,
    /// The methods of that authentication (RFC 8176).
    pub amr: Vec<String>,
    /// When that authentication happened (Unix seconds); `None` when no authentication event
    /// vouches for a time (a remembered device).
    pub auth_time: Option<u64>,
    /// The user's generation when the family was made: a reset since voids it.
    pub generation: u64,
    /// The scope granted, space-separated.
    pub scope: Option<String>,
    /// The resource (RFC 8707) the tokens are for: the access tokens' `aud`.
    pub resource: Option<String>,
    /// SHA-256 (hex) of the current refresh token; never the token.
    pub token_hash: String,
    /// When the family was made (Unix seconds).
    pub created_at: u64,
    /// When the family stops being usable (Unix seconds); live while strictly after now.
    pub expires_at: u64,
    /// Whether the family was revoked (a reuse, a revocation, a reset).
    pub revoked: bool,
    /// The RFC 7638 thumbprint of the DPoP key the family's refresh tokens are bound to
    /// (RFC 9449 §5): each refresh must come with a proof signed by that key. `None`: unbound.
    pub dpop_jkt: Option<String>,
}

/// What presenting a refresh token did ([`GrantStore::rotate_refresh_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the live family's current one: the new hash replaced it. The family as it is
    /// now (its `token_hash` the new one).
    Rotated(RefreshFamily),
    /// The token was an earlier one of a live family (a reuse): the whole family is revoked now.
    /// The family as it is now (`revoked`).
    Reused(RefreshFamily),
    /// The token is of a family already revoked or expired: nothing changed.
    Revoked,
    /// No family ever held this token.
    Unknown,
}

/// Durable state of the authorization server: dynamically registered clients and refresh-token
/// families.
///
/// Liveness of a family is judged by the store's clock: one whose `expires_at` is at or before the
/// clock's current second counts as revoked for [`rotate_refresh_token`](Self::rotate_refresh_token)
/// and is not listed.
#[async_trait]
pub trait GrantStore: Send + Sync + 'static {
    /// Stores a newly registered client; `false`, changing nothing, when its id is taken.
    async fn insert_client(&self, client: ClientRecord) -> StoreResult<bool>;

    /// The client with this id, revoked or not.
    async fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>>;

    /// The most recently registered `limit` clients, newest first (ties by id).
    async fn clients(&self, limit: usize) -> StoreResult<Vec<ClientRecord>>;

    /// Revokes a client's registration; `true` if a registration was live and is now revoked.
    async fn revoke_client(&self, id: &str) -> StoreResult<bool>;

    /// Stores a new family with its first token (`family.token_hash`). A taken family id or token
    /// hash is refused with an error, changing nothing.
    async fn insert_family(&self, family: RefreshFamily) -> StoreResult<()>;

    /// Presents the refresh token whose hash is `presented`, to be replaced by `replacement`
    /// (a fresh random token's hash), in ONE atomic step:
    ///
    /// - the current token of a live family: `replacement` becomes its current token
    ///   ([`Rotation::Rotated`]); `presented` stays known as an earlier one;
    /// - an earlier token of a live family: the family is revoked ([`Rotation::Reused`]);
    /// - a token of a revoked or expired family: [`Rotation::Revoked`], nothing changes;
    /// - a token no family ever held: [`Rotation::Unknown`].
    ///
    /// Of concurrent presentations of one token exactly one is `Rotated`; every other one then
    /// presents an earlier token, so exactly one of them is `Reused` and the rest `Revoked`.
    /// A `replacement` already held by a family fails with an error, changing nothing.
    async fn rotate_refresh_token(
        &self,
        presented: &str,
        replacement: &str,
    ) -> StoreResult<Rotation>;

    /// The family that holds (or held) the token whose hash is `token_hash`, revoked, expired or
    /// live.
    async fn family_by_token(&self, token_hash: &str) -> StoreResult<Option<RefreshFamily>>;

    /// Revokes a family; `true` if it was live.
    async fn revoke_family(&self, id: &str) -> StoreResult<bool>;

    /// Revokes every family of the user (a reset); returns how many were live.
    async fn revoke_user_families(&self, user: &str) -> StoreResult<usize>;

    /// The user's live families, newest first (ties by id).
    async fn families(&self, user: &str) -> StoreResult<Vec<RefreshFamily>>;
}
