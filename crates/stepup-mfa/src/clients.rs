//! The OAuth clients of the authorization server, from three sources, all public clients (no
//! secret: PKCE S256 protects their codes, RFC 7636; rotation protects their refresh tokens):
//!
//! - **configured** ([`OAuthClient`], [`Mfa::with_client`]): first-party clients, trusted to be
//!   answered at once by a live sign-in session;
//! - **registered** by RFC 7591 dynamic registration ([`Mfa::register_client`], enabled with
//!   [`Mfa::with_dynamic_registration`]): `token_endpoint_auth_method` `none` only, redirect URIs
//!   `https` or loopback `http` only, limited per client address by the engine's one address
//!   grouping, stored durably ([`GrantStore`](stepup_store::GrantStore)), listed and revocable;
//! - **Client ID Metadata Documents** (feature `client-metadata`, enabled with
//!   [`Mfa::with_client_metadata_documents`]): a `client_id` that is an `https` URL names a JSON
//!   document the engine fetches with a bounded client, validates (its `client_id` is the URL,
//!   its redirect URIs as above) and caches.
//!
//! Registered and metadata-document clients are third parties: a live session never answers
//! them without the user confirming on the sign-in page (no confused deputy).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stepup_core::tokens;
use stepup_store::ClientRecord;
use url::{Host, Url};

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::error::{InvalidClientMetadata, InvalidRedirectUri, MfaError, RegistrationDisabled};
use crate::factor::ClientInfo;

/// The longest redirect URI looked at.
const MAX_URI: usize = 2048;
/// The most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 10;
/// The longest `client_name` kept.
const MAX_NAME: usize = 200;

/// A client configured by the application: its id and the redirect URIs it may use, matched
/// exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) refresh_tokens: bool,
}

impl OAuthClient {
    /// A public client (no secret: PKCE protects its codes) that gets refresh tokens.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
            redirect_uris: Vec::new(),
            refresh_tokens: true,
        }
    }

    /// Allows `uri` as a redirect URI (compared byte for byte).
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// The name the sign-in page shows.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Issues no refresh token to this client.
    pub fn without_refresh_tokens(mut self) -> Self {
        self.refresh_tokens = false;
        self
    }

    /// The client id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Where a client comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    /// Configured by the application: first-party.
    Configured,
    /// Registered dynamically (RFC 7591).
    Registered,
    /// A Client ID Metadata Document.
    MetadataDocument,
}

/// A client as the engine knows it, whatever its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The `client_id`.
    pub id: String,
    /// Its name, if it gave one.
    pub name: Option<String>,
    /// The redirect URIs it may use, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Where it comes from.
    pub source: ClientSource,
    /// Whether it gets refresh tokens.
    pub refresh_tokens: bool,
}

impl Client {
    /// Whether a live session may answer this client without the user confirming: only for
    /// the application's own (configured) clients.
    pub fn is_first_party(&self) -> bool {
        self.source == ClientSource::Configured
    }

    /// Whether `uri` is one of its redirect URIs, byte for byte.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|allowed| allowed == uri)
    }
}

/// The rules of RFC 7591 dynamic registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationPolicy {
    /// Registrations allowed per client address (grouped by the engine's one rule) per window
    /// (default 10).
    pub max_per_address: u64,
    /// The window (default 1 hour).
    pub window: Duration,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        Self {
            max_per_address: 10,
            window: Duration::from_secs(60 * 60),
        }
    }
}

/// The rules of Client ID Metadata Documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataDocumentPolicy {
    /// How long a fetched document is trusted (default 10 minutes).
    pub cache_for: Duration,
    /// Whether `http` URLs of loopback addresses are accepted as client ids, for development
    /// (default `false`: `https` only, and never an address that is not globally routable).
    pub allow_loopback_http: bool,
    /// The whole fetch, connection included, at most (default 5 seconds).
    pub timeout: Duration,
    /// The largest document read (default 16 KiB).
    pub max_bytes: usize,
}

impl Default for MetadataDocumentPolicy {
    fn default() -> Self {
        Self {
            cache_for: Duration::from_secs(10 * 60),
            allow_loopback_http: false,
            timeout: Duration::from_secs(5),
            max_bytes: 16 * 1024,
        }
    }
}

impl MetadataDocumentPolicy {
    /// The development policy: loopback `http` client ids accepted.
    pub fn development() -> Self {
        Self {
            allow_loopback_http: true,
            ..Self::default()
        }
    }
}

/// What the engine knows of clients.
#[derive(Clone, Default)]
pub(crate) struct ClientSettings {
    pub(crate) configured: Vec<OAuthClient>,
    pub(crate) registration: Option<RegistrationPolicy>,
    #[cfg(feature = "client-metadata")]
    pub(crate) documents: Option<crate::client_metadata::Documents>,
}

/// A client's answer to a successful registration (RFC 7591 §3.2.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredClient {
    /// The issued `client_id`.
    pub client_id: String,
    /// When it was issued (Unix seconds).
    pub client_id_issued_at: u64,
    /// The metadata as registered (`redirect_uris`, `client_name`, `grant_types`,
    /// `response_types`, `token_endpoint_auth_method` `none`, `scope`).
    #[serde(flatten)]
    pub metadata: Map<String, Value>,
}

/// The metadata this server keeps of a registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredMetadata {
    pub(crate) redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_name: Option<String>,
    pub(crate) grant_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
}

impl StoredMetadata {
    /// The metadata a client is told it registered with.
    fn answer(&self) -> Map<String, Value> {
        let mut answer = Map::new();
        answer.insert("redirect_uris".into(), json!(self.redirect_uris));
        if let Some(name) = &self.client_name {
            answer.insert("client_name".into(), json!(name));
        }
        answer.insert("grant_types".into(), json!(self.grant_types));
        answer.insert("response_types".into(), json!(["code"]));
        answer.insert("token_endpoint_auth_method".into(), json!("none"));
        if let Some(scope) = &self.scope {
            answer.insert("scope".into(), json!(scope));
        }
        answer
    }

    pub(crate) fn client(&self, id: String, source: ClientSource) -> Client {
        Client {
            id,
            name: self.client_name.clone(),
            redirect_uris: self.redirect_uris.clone(),
            source,
            refresh_tokens: self
                .grant_types
                .iter()
                .any(|grant| grant == "refresh_token"),
        }
    }
}

/// Checks client metadata (a registration's, or a metadata document's) by RFC 7591's rules for a
/// public client of this server: `redirect_uris` `https` or loopback `http`; `token_endpoint_auth_method`
/// `none`; grant types among `authorization_code` and `refresh_token` (both when absent: the
/// answer says so, as §3.2.1 allows); response type `code`.
pub(crate) fn check_metadata(metadata: &Value) -> Result<StoredMetadata, MfaError> {
    let Some(object) = metadata.as_object() else {
        return Err(InvalidClientMetadata::new("the client metadata must be a JSON object").into());
    };
    let uris = match object.get("redirect_uris") {
        Some(Value::Array(uris)) if !uris.is_empty() => uris,
        _ => {
            return Err(InvalidRedirectUri.into());
        }
    };
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(InvalidClientMetadata::new("at most 10 redirect_uris").into());
    }
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for uri in uris {
        let uri = uri.as_str().ok_or(InvalidRedirectUri)?;
        if !is_allowed_redirect_uri(uri) {
            return Err(InvalidRedirectUri.into());
        }
        redirect_uris.push(uri.to_owned());
    }
    match object.get("token_endpoint_auth_method") {
        None => {}
        Some(Value::String(method)) if method == "none" => {}
        Some(_) => {
            return Err(InvalidClientMetadata::new(
                "token_endpoint_auth_method must be none: only public clients register here",
            )
            .into());
        }
    }
    let grant_types = match object.get("grant_types") {
        None => vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        Some(Value::Array(grants)) => {
            let mut kept = Vec::new();
            for grant in grants {
                match grant.as_str() {
                    Some(grant @ ("authorization_code" | "refresh_token")) => {
                        if !kept.iter().any(|known| known == grant) {
                            kept.push(grant.to_owned());
                        }
                    }
                    _ => {
                        return Err(InvalidClientMetadata::new(
                            "grant_types may hold authorization_code and refresh_token only",
                        )
                        .into());
                    }
                }
            }
            if !kept.iter().any(|grant| grant == "authorization_code") {
                return Err(InvalidClientMetadata::new(
                    "grant_types must include authorization_code",
                )
                .into());
            }
            kept
        }
        Some(_) => {
            return Err(InvalidClientMetadata::new("grant_types must be an array").into());
        }
    };
    match object.get("response_types") {
        None => {}
        Some(Value::Array(types)) if types.iter().all(|kind| kind == "code") => {}
        Some(_) => {
            return Err(InvalidClientMetadata::new("response_types may hold code only").into());
        }
    }
    let client_name = match object.get("client_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name))
            if !name.trim().is_empty()
                && name.chars().count() <= MAX_NAME
                && !name.chars().any(char::is_control) =>
        {
            Some(name.trim().to_owned())
        }
        Some(_) => {
            return Err(InvalidClientMetadata::new(
                "client_name must be a text of 1 to 200 characters without control characters",
            )
            .into());
        }
    };
    let scope = match object.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(scope)) if scope.len() <= 1024 && is_scope_syntax(scope) => {
            Some(scope.clone())
        }
        Some(_) => {
            return Err(
                InvalidClientMetadata::new("scope must be space-separated scope tokens").into(),
            );
        }
    };
    Ok(StoredMetadata {
        redirect_uris,
        client_name,
        grant_types,
        scope,
    })
}

/// RFC 6749 §3.3 scope syntax: space-separated tokens of printable ASCII without `"` and `\`.
pub(crate) fn is_scope_syntax(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        })
}

/// A redirect URI a client may register: an absolute `https` URL, or an `http` URL of a
/// loopback address (RFC 8252 §7.3: `127.0.0.1`, `[::1]`, `localhost`), without a fragment or
/// user information.
pub fn is_allowed_redirect_uri(uri: &str) -> bool {
    if uri.len() > MAX_URI {
        return false;
    }
    let Ok(url) = Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback_host(url.host()),
        _ => false,
    }
}

pub(crate) fn is_loopback_host(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The audit trail's subject for a client.
fn client_subject(client_id: &str) -> String {
    format!("client:{client_id}")
}

impl Mfa {
    /// Configures a client (first-party: a live session answers it at once).
    pub fn with_client(self, client: OAuthClient) -> Self {
        self.map(|inner| inner.clients.configured.push(client))
    }

    /// Enables RFC 7591 dynamic registration of public clients under `policy`.
    pub fn with_dynamic_registration(self, policy: RegistrationPolicy) -> Self {
        self.map(|inner| inner.clients.registration = Some(policy))
    }

    /// Whether dynamic registration is enabled.
    pub fn dynamic_registration(&self) -> bool {
        self.inner.clients.registration.is_some()
    }

    /// Whether Client ID Metadata Documents are accepted as client ids.
    pub fn client_metadata_documents(&self) -> bool {
        #[cfg(feature = "client-metadata")]
        {
            self.inner.clients.documents.is_some()
        }
        #[cfg(not(feature = "client-metadata"))]
        {
            false
        }
    }

    /// The client `client_id` names: configured, registered (and not revoked), or a metadata
    /// document fetched (or cached) now. `None` when no such client is known.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, MfaError> {
        if client_id.is_empty() || client_id.len() > MAX_URI {
            return Ok(None);
        }
        if let Some(client) = self
            .inner
            .clients
            .configured
            .iter()
            .find(|client| client.id == client_id)
        {
            return Ok(Some(Client {
                id: client.id.clone(),
                name: client.name.clone(),
                redirect_uris: client.redirect_uris.clone(),
                source: ClientSource::Configured,
                refresh_tokens: client.refresh_tokens,
            }));
        }
        #[cfg(feature = "client-metadata")]
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return match &self.inner.clients.documents {
                Some(documents) => documents.client(client_id).await,
                None => Ok(None),
            };
        }
        let Some(record) = self.grants().client(client_id).await? else {
            return Ok(None);
        };
        if record.revoked {
            return Ok(None);
        }
        let metadata: StoredMetadata =
            serde_json::from_str(&record.metadata).map_err(MfaError::internal)?;
        Ok(Some(metadata.client(record.id, ClientSource::Registered)))
    }

    /// Registers a public client (RFC 7591): checks its metadata, limits registrations per
    /// client address, stores it and answers its `client_id` (audited under `client:{id}`).
    pub async fn register_client(
        &self,
        metadata: &Value,
        client: &ClientInfo,
    ) -> Result<RegisteredClient, MfaError> {
        let policy = self
            .inner
            .clients
            .registration
            .ok_or(RegistrationDisabled)?;
        let checked = check_metadata(metadata)?;
        // Counted whatever the outcome below: a registration is cheap, but the table is not
        // ours to fill.
        let key = format!("client_registrations:{}", self.address_key(client.address));
        let count = self.ephemeral().increment(&key, policy.window).await?;
        if count > policy.max_per_address {
            return Err(MfaError::rate_limited(policy.window));
        }
        let now = self.now();
        let stored = serde_json::to_string(&checked).map_err(MfaError::internal)?;
        let id = tokens::random_token();
        let record = ClientRecord {
            id: id.clone(),
            metadata: stored,
            created_at: now,
            registered_by: client.address.map(|address| address.to_string()),
            revoked: false,
        };
        if !self.grants().insert_client(record).await? {
            return Err(MfaError::internal("client id collision"));
        }
        self.audit()
            .record(
                &client_subject(&id),
                AuditEvent::ClientRegistered {
                    client_id: id.clone(),
                },
            )
            .await;
        Ok(RegisteredClient {
            client_id: id,
            client_id_issued_at: now,
            metadata: checked.answer(),
        })
    }

    /// The most recent `limit` dynamically registered clients, newest first, revoked ones
    /// included.
    pub async fn registered_clients(&self, limit: usize) -> Result<Vec<ClientRecord>, MfaError> {
        Ok(self.grants().clients(limit).await?)
    }

    /// Revokes a dynamic registration (audited): the client is refused from now on, its codes
    /// and refresh tokens with it. `false` when no live registration has this id.
    pub async fn revoke_client(&self, client_id: &str) -> Result<bool, MfaError> {
        let revoked = self.grants().revoke_client(client_id).await?;
        if revoked {
            self.audit()
                .record(
                    &client_subject(client_id),
                    AuditEvent::ClientRevoked {
                        client_id: client_id.to_owned(),
                    },
                )
                .await;
        }
        Ok(revoked)
    }
}
