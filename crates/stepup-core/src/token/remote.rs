//! Keys fetched from an identity provider: a JWKS URL, or OIDC discovery of an issuer (the `jwks`
//! feature).
//!
//! - **The warm path never waits.** The keys live in a snapshot swapped whole (`arc-swap`); a
//!   request reads it without a lock and never awaits the network.
//! - **Unknown `kid`**: one refresh, started in the background, at most once per cooldown
//!   (default 30 s) whatever the number or variety of unknown `kid`s, and a `kid` found missing
//!   from a fresh set is remembered as missing for a short while (negative cache, 30 s).
//! - **Background refresh** at the interval of the response's `Cache-Control: max-age`, clamped
//!   to 5 minutes–24 hours (1 hour without one), by one task per source; a request that finds the
//!   refresh due wakes it and goes on with the current keys.
//! - **Outage**: a failed refresh keeps the last good key set and retries (30 s, doubling, at most
//!   the refresh interval); the set stays usable for [`RefreshPolicy::max_stale`] (default 6 h)
//!   past its due refresh, then every token of that issuer is answered `503` until the provider
//!   answers again. Each failure, and the expiry, is logged.
//! - **Never loaded**: `503` ([`TokenError::KeysUnavailable`](crate::TokenError::KeysUnavailable)),
//!   never `401`.
//! - **Removed key**: a key missing from a refreshed set stops verifying at once, cached tokens
//!   included.
//! - **Bounded HTTP**: connect timeout 5 s, whole request 10 s, bodies up to 512 KiB, at most 3
//!   redirects, `https` only (plain `http` to a loopback address is allowed, for tests and local
//!   development); a client of your own may be supplied.
//!
//! Time (cooldowns, ages, staleness) is read from the verifier's injected clock; the background
//! task's sleeps use tokio's timer.
//!
//! ```no_run
//! use stepup_core::token::{JwtVerifier, RefreshPolicy};
//! use stepup_core::profile::IdpProfile;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = JwtVerifier::builder()
//!     .discover("https://idp.example.com/realms/main")
//!     .audience("https://api.example.com")
//!     .profile(IdpProfile::keycloak())
//!     .refresh_policy(RefreshPolicy::default())
//!     .build()?;
//! // Optional: wait for the first key set before serving (until then tokens are answered 503).
//! verifier.refresh_keys().await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use serde::Deserialize;

use super::VerifyingKey;
use super::keyset::{Freshness, KeyEntry, KeySet};
use crate::clock::SharedClock;

/// How often and how patiently a remote key source is refreshed. Start from
/// [`RefreshPolicy::default`] and change what you need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// At most one refresh for unknown `kid`s per this long (default 30 s).
    pub unknown_kid_cooldown: Duration,
    /// How long a `kid` found missing from a set fetched within the cooldown is refused without
    /// even trying the cooldown again (default 30 s).
    pub negative_cache: Duration,
    /// The shortest refresh interval, whatever `max-age` says (default 5 minutes).
    pub min_interval: Duration,
    /// The longest refresh interval, whatever `max-age` says (default 24 hours).
    pub max_interval: Duration,
    /// The interval when the response has no `max-age` (default 1 hour).
    pub default_interval: Duration,
    /// The first retry after a failed refresh; doubled each time, up to the interval (default
    /// 30 s).
    pub retry: Duration,
    /// How long the last good key set stays usable past its due refresh while the provider cannot
    /// be reached (default 6 hours); then the issuer's tokens are answered `503`.
    pub max_stale: Duration,
    /// TCP connect timeout of the built-in client (default 5 s).
    pub connect_timeout: Duration,
    /// Timeout of a whole request, body included (default 10 s; also applied around a supplied
    /// client).
    pub timeout: Duration,
    /// The largest discovery document or key set accepted (default 512 KiB).
    pub max_body: usize,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            unknown_kid_cooldown: Duration::from_secs(30),
            negative_cache: Duration::from_secs(30),
            min_interval: Duration::from_secs(5 * 60),
            max_interval: Duration::from_secs(24 * 3600),
            default_interval: Duration::from_secs(3600),
            retry: Duration::from_secs(30),
            max_stale: Duration::from_secs(6 * 3600),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_body: 512 * 1024,
        }
    }
}

impl RefreshPolicy {
    /// The refresh interval for a response's `max-age` (clamped), or the default without one.
    pub fn interval_for(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.default_interval)
            .clamp(self.min_interval, self.max_interval.max(self.min_interval))
    }
}

/// Why a key source could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySourceError {
    /// The URL is not `https` (plain `http` is allowed only to loopback addresses) or not a URL.
    #[error("refused key source URL: {0}")]
    InsecureUrl(String),
    /// The request failed (connection, TLS, timeout).
    #[error("key source request failed: {0}")]
    Http(String),
    /// The provider answered with an error status.
    #[error("key source answered HTTP {0}")]
    Status(u16),
    /// The document exceeds [`RefreshPolicy::max_body`].
    #[error("key source document too large")]
    TooLarge,
    /// The document is not the JSON expected.
    #[error("key source document malformed: {0}")]
    Malformed(String),
    /// The discovery document names another issuer than the one configured (OpenID Connect
    /// Discovery §4.3).
    #[error("discovered issuer {found:?} is not the configured {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The discovery document's `issuer`.
        found: String,
    },
    /// The key set holds no key stepup can use (RS256, ES256 or EdDSA signing keys).
    #[error("the key set holds no usable signing key")]
    NoUsableKeys,
    /// The verifier was built outside a tokio runtime and none is running now.
    #[error("no tokio runtime to fetch keys on")]
    NoRuntime,
}

/// Where the keys come from.
#[derive(Debug, Clone)]
pub(super) enum Location {
    /// A JWKS document at this URL.
    Jwks(String),
    /// OIDC discovery of this issuer: its `jwks_uri`.
    Discovery(String),
}

/// A remote key source as configured, before the verifier is built.
#[derive(Debug, Clone)]
pub(super) struct RemoteSpec {
    pub(super) location: Location,
}

/// What a verifier holds of one remote source; dropping it stops the background task.
pub(super) struct RemoteKeys {
    pub(super) shared: Arc<Shared>,
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

/// The state shared by the verifier and the source's background task.
pub(super) struct Shared {
    location: Location,
    client: reqwest::Client,
    policy: RefreshPolicy,
    clock: SharedClock,
    pub(super) current: ArcSwap<KeySet>,
    pub(super) freshness: Arc<Freshness>,
    /// Unix ms at which the next refresh is due (0: now).
    due_ms: AtomicU64,
    /// Unix ms of the last unknown-`kid` refresh started (the cooldown).
    kicked_ms: AtomicU64,
    /// Unix ms at which the last fetch started (`u64::MAX`: never).
    last_attempt_ms: AtomicU64,
    failures: AtomicU64,
    negative: Mutex<HashMap<Box<str>, u64>>,
    wake: tokio::sync::Notify,
    /// The number of fetches finished (success or failure), for waiters.
    finished: tokio::sync::watch::Sender<u64>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    last_error: Mutex<Option<KeySourceError>>,
    jwks_uri: Mutex<Option<String>>,
    started: AtomicBool,
    closed: AtomicBool,
    expiry_logged: AtomicBool,
}

/// The most `kid`s remembered as missing.
const NEGATIVE_CAPACITY: usize = 1024;

impl RemoteKeys {
    pub(super) fn new(
        spec: &RemoteSpec,
        client: Option<reqwest::Client>,
        policy: RefreshPolicy,
        clock: SharedClock,
    ) -> Result<Self, crate::Error> {
        let url = match &spec.location {
            Location::Jwks(url) => url.clone(),
            Location::Discovery(issuer) => discovery_url(issuer),
        };
        check_url(&url).map_err(|_| {
            crate::Error::Config(
                "a key source URL must be https (plain http only to a loopback address)",
            )
        })?;
        let client = match client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .connect_timeout(policy.connect_timeout)
                .timeout(policy.timeout)
                .redirect(reqwest::redirect::Policy::limited(3))
                .https_only(!is_loopback_http(&url))
                .build()
                .map_err(|_| crate::Error::Config("the key source HTTP client cannot be built"))?,
        };
        let (finished, _) = tokio::sync::watch::channel(0);
        let remote = Self {
            shared: Arc::new(Shared {
                location: spec.location.clone(),
                client,
                policy,
                clock,
                current: ArcSwap::from_pointee(KeySet::empty()),
                freshness: Arc::new(Freshness::new()),
                due_ms: AtomicU64::new(0),
                kicked_ms: AtomicU64::new(0),
                last_attempt_ms: AtomicU64::new(u64::MAX),
                failures: AtomicU64::new(0),
                negative: Mutex::new(HashMap::new()),
                wake: tokio::sync::Notify::new(),
                finished,
                fetching: tokio::sync::Mutex::new(()),
                last_error: Mutex::new(None),
                jwks_uri: Mutex::new(None),
                started: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                expiry_logged: AtomicBool::new(false),
            }),
        };
        remote.ensure_running();
        Ok(remote)
    }

    /// Starts the background task if it is not running and a tokio runtime is at hand.
    pub(super) fn ensure_running(&self) {
        if self.shared.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .shared
            .started
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            runtime.spawn(run(Arc::clone(&self.shared)));
        }
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            })
    }

    /// Wakes the background task when a refresh is due at `now_ms` (one atomic read otherwise):
    /// called on every request of this issuer, cached or not, and never waits.
    pub(super) fn wake_if_due(&self, now_ms: u64) {
        if now_ms >= self.due_ms.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }

    /// The keys to verify with now, or `None` when no usable set is held (never loaded, or past
    /// its staleness): fail closed. Wakes the refresher when a refresh is due.
    pub(super) fn snapshot(&self) -> Option<arc_swap::Guard<Arc<KeySet>>> {
        let now = self.now_ms();
        self.wake_if_due(now);
        if !self.freshness.usable_at(now) {
            if self.freshness.usable_until_ms() > 0
                && !self.expiry_logged.swap(true, Ordering::AcqRel)
            {
                tracing::error!(
                    source = %self.describe(),
                    "the last good key set is older than its allowed staleness; tokens of this \
                     issuer are refused with 503 until the provider answers"
                );
            }
            return None;
        }
        Some(self.current.load())
    }

    /// A token named `kid`, which the current set lacks: refresh, unless that `kid` was found
    /// missing a moment ago or a refresh for an unknown `kid` ran within the cooldown. Returns
    /// whether a refresh was started.
    pub(super) fn unknown_kid(&self, kid: &str) -> bool {
        let now = self.now_ms();
        {
            let negative = self.negative.lock().unwrap_or_else(PoisonError::into_inner);
            if negative.get(kid).is_some_and(|&until| now < until) {
                return false;
            }
        }
        let cooldown = millis(self.policy.unknown_kid_cooldown);
        let last_attempt = self.last_attempt_ms.load(Ordering::Acquire);
        if last_attempt != u64::MAX && now < last_attempt.saturating_add(cooldown) {
            self.remember_missing(kid, now);
            return false;
        }
        let kicked = self.kicked_ms.load(Ordering::Acquire);
        if kicked != 0 && now < kicked.saturating_add(cooldown) {
            return false;
        }
        // One request wins the kick; the others within the cooldown do not.
        if self
            .kicked_ms
            .compare_exchange(kicked, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.due_ms.store(0, Ordering::Release);
        self.wake.notify_one();
        true
    }

    fn remember_missing(&self, kid: &str, now: u64) {
        let mut negative = self.negative.lock().unwrap_or_else(PoisonError::into_inner);
        if negative.len() >= NEGATIVE_CAPACITY {
            negative.retain(|_, until| now < *until);
            if negative.len() >= NEGATIVE_CAPACITY {
                negative.clear();
            }
        }
        negative.insert(
            kid.into(),
            now.saturating_add(millis(self.policy.negative_cache)),
        );
    }

    /// The number of fetches finished so far.
    pub(super) fn finished(&self) -> u64 {
        *self.finished.borrow()
    }

    /// Waits until more than `seen` fetches have finished, at most one request's timeout.
    pub(super) async fn wait_past(&self, seen: u64) {
        let mut finished = self.finished.subscribe();
        let wait = finished.wait_for(|&count| count > seen);
        let _ = tokio::time::timeout(self.policy.timeout + Duration::from_secs(1), wait).await;
    }

    /// Fetches now (or joins a fetch in flight) and reports its outcome.
    pub(super) async fn refresh(&self) -> Result<(), KeySourceError> {
        let seen = self.finished();
        let _guard = self.fetching.lock().await;
        if self.finished() > seen {
            // A fetch finished while this one waited its turn: that is the answer.
            return match self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
            {
                None => Ok(()),
                Some(error) => Err(error),
            };
        }
        self.fetch_and_install().await
    }

    /// One fetch, with the fetch lock held by the caller.
    async fn fetch_and_install(&self) -> Result<(), KeySourceError> {
        let started = self.now_ms();
        self.last_attempt_ms.store(started, Ordering::Release);
        let outcome = self.fetch().await;
        let now = self.now_ms();
        let result = match outcome {
            Ok((keys, max_age)) => {
                let interval = self.policy.interval_for(max_age);
                self.install(keys, now, interval);
                self.failures.store(0, Ordering::Release);
                self.due_ms
                    .store(now.saturating_add(millis(interval)), Ordering::Release);
                Ok(())
            }
            Err(error) => {
                let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                let held = self.current.load().keys.len();
                tracing::warn!(
                    source = %self.describe(),
                    %error,
                    failures,
                    keys_kept = held,
                    usable_for_s = self.freshness.usable_until_ms().saturating_sub(now) / 1000,
                    "key set refresh failed; keeping the last good key set"
                );
                let backoff = self
                    .policy
                    .retry
                    .saturating_mul(1 << failures.saturating_sub(1).min(16))
                    .min(self.policy.interval_for(None));
                self.due_ms
                    .store(now.saturating_add(millis(backoff)), Ordering::Release);
                if matches!(self.location, Location::Discovery(_)) {
                    // The provider may have moved its keys: discover again next time.
                    *self.jwks_uri.lock().unwrap_or_else(PoisonError::into_inner) = None;
                }
                Err(error)
            }
        };
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = result.clone().err();
        self.finished.send_modify(|count| *count += 1);
        result
    }

    /// Replaces the key set: keys kept (same fingerprint) keep their entries, keys gone are
    /// withdrawn (their cached tokens stop being served), new keys are added.
    fn install(&self, keys: Vec<(VerifyingKey, String)>, now: u64, interval: Duration) {
        let old = self.current.load_full();
        let mut added = Vec::new();
        let entries: Vec<Arc<KeyEntry>> = keys
            .into_iter()
            .map(|(key, fingerprint)| {
                old.keys
                    .iter()
                    .find(|entry| entry.fingerprint == fingerprint)
                    .cloned()
                    .unwrap_or_else(|| {
                        added.push(key.kid.clone().unwrap_or_default());
                        Arc::new(KeyEntry::new(
                            key,
                            fingerprint,
                            Some(Arc::clone(&self.freshness)),
                        ))
                    })
            })
            .collect();
        let mut removed = Vec::new();
        for entry in &old.keys {
            if !entries
                .iter()
                .any(|kept| kept.fingerprint == entry.fingerprint)
            {
                entry.withdraw();
                removed.push(entry.key.kid.clone().unwrap_or_default());
            }
        }
        let usable_until = now
            .saturating_add(millis(interval))
            .saturating_add(millis(self.policy.max_stale));
        self.current.store(Arc::new(KeySet { keys: entries }));
        self.freshness.extend_to(usable_until);
        self.expiry_logged.store(false, Ordering::Release);
        self.negative
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        if !added.is_empty() || !removed.is_empty() {
            tracing::info!(
                source = %self.describe(),
                ?added,
                ?removed,
                "key set changed"
            );
        }
    }

    async fn fetch(
        &self,
    ) -> Result<(Vec<(VerifyingKey, String)>, Option<Duration>), KeySourceError> {
        let url = match &self.location {
            Location::Jwks(url) => url.clone(),
            Location::Discovery(issuer) => {
                let known = self
                    .jwks_uri
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                match known {
                    Some(url) => url,
                    None => {
                        let url = self.discover(issuer).await?;
                        *self.jwks_uri.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(url.clone());
                        url
                    }
                }
            }
        };
        let (body, max_age) = self.get(&url).await?;
        Ok((parse_jwks(&body)?, max_age))
    }

    async fn discover(&self, issuer: &str) -> Result<String, KeySourceError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let (body, _) = self.get(&discovery_url(issuer)).await?;
        let document: Discovery = serde_json::from_slice(&body)
            .map_err(|error| KeySourceError::Malformed(error.to_string()))?;
        if document.issuer != issuer {
            return Err(KeySourceError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: document.issuer,
            });
        }
        check_url(&document.jwks_uri)?;
        Ok(document.jwks_uri)
    }

    /// One bounded GET: the body (at most `max_body`) and the response's `max-age`.
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), KeySourceError> {
        check_url(url)?;
        let request = async {
            let mut response = self
                .client
                .get(url)
                .header(http::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|error| KeySourceError::Http(error.without_url().to_string()))?;
            if !response.status().is_success() {
                return Err(KeySourceError::Status(response.status().as_u16()));
            }
            let max_age = response
                .headers()
                .get(http::header::CACHE_CONTROL)
                .and_then(|value| value.to_str().ok())
                .and_then(max_age);
            if response
                .content_length()
                .is_some_and(|length| length > self.policy.max_body as u64)
            {
                return Err(KeySourceError::TooLarge);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|error| KeySourceError::Http(error.without_url().to_string()))?
            {
                if body.len() + chunk.len() > self.policy.max_body {
                    return Err(KeySourceError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok((body, max_age))
        };
        tokio::time::timeout(self.policy.timeout, request)
            .await
            .map_err(|_| KeySourceError::Http("timed out".into()))?
    }

    fn describe(&self) -> &str {
        match &self.location {
            Location::Jwks(url) | Location::Discovery(url) => url,
        }
    }
}

/// The background task of one source: fetch when due (by the injected clock), when woken by a
/// request (an unknown `kid`, a refresh found due), and stop when the verifier is gone.
async fn run(shared: Arc<Shared>) {
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let now = shared.now_ms();
        let due = shared.due_ms.load(Ordering::Acquire);
        if now >= due {
            let _guard = shared.fetching.lock().await;
            // Re-read under the lock: an explicit refresh may just have run.
            if shared.now_ms() >= shared.due_ms.load(Ordering::Acquire) {
                let _ = shared.fetch_and_install().await;
            }
            continue;
        }
        // Sleep until due, at most a minute at a time (the injected clock may jump).
        let wait = Duration::from_millis(due - now).min(Duration::from_secs(60));
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The usable signing keys of a JWKS document, each with its fingerprint. Keys stepup cannot use
/// (encryption keys, other algorithms or curves, symmetric keys, RSA under 2048 bits) are
/// skipped, not fatal; a set with none left is an error (the last good set is kept).
pub(super) fn parse_jwks(body: &[u8]) -> Result<Vec<(VerifyingKey, String)>, KeySourceError> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body)
        .map_err(|error| KeySourceError::Malformed(error.to_string()))?;
    let mut keys: Vec<(VerifyingKey, String)> = Vec::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|usage| *usage != PublicKeyUse::Signature)
        {
            continue;
        }
        let Ok(key) = VerifyingKey::from_jwk(&jwk) else {
            continue;
        };
        if key.kid.is_some() && keys.iter().any(|(kept, _)| kept.kid == key.kid) {
            // Two keys under one `kid`: the first is kept, as a `kid` must name one key.
            continue;
        }
        let material = serde_json::to_string(&jwk.algorithm).unwrap_or_default();
        let fingerprint = format!(
            "{}|{:?}|{material}",
            key.kid.as_deref().unwrap_or_default(),
            key.algorithm
        );
        keys.push((key, fingerprint));
    }
    if keys.is_empty() {
        return Err(KeySourceError::NoUsableKeys);
    }
    Ok(keys)
}

/// `max-age` of a `Cache-Control` value (`no-cache`/`no-store` count as 0, clamped up later).
fn max_age(cache_control: &str) -> Option<Duration> {
    let mut found = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            found = seconds
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

/// OIDC Discovery §4: the issuer without its trailing `/`, then
/// `/.well-known/openid-configuration`.
fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

fn check_url(url: &str) -> Result<(), KeySourceError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| KeySourceError::InsecureUrl(url.to_owned()))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_http(url) => Ok(()),
        _ => Err(KeySourceError::InsecureUrl(url.to_owned())),
    }
}

fn is_loopback_http(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    parsed.scheme() == "http"
        && match parsed.host() {
            Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("location", &self.shared.location)
            .field("keys", &self.shared.current.load().keys.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_and_clamped() {
        let policy = RefreshPolicy::default();
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(
            policy.interval_for(Some(Duration::from_secs(600))),
            Duration::from_secs(600)
        );
        assert_eq!(
            policy.interval_for(Some(Duration::from_secs(1))),
            Duration::from_secs(300)
        );
        assert_eq!(
            policy.interval_for(Some(Duration::from_secs(10 * 24 * 3600))),
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(policy.interval_for(None), Duration::from_secs(3600));
    }

    #[test]
    fn only_https_or_loopback_http_is_fetched() {
        for good in [
            "https://idp.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/jwks",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://127.0.0.1/jwks",
            "not a url",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            discovery_url("https://idp.example.com/realms/main/"),
            "https://idp.example.com/realms/main/.well-known/openid-configuration"
        );
    }

    #[test]
    fn unusable_keys_are_skipped_and_an_empty_set_refused() {
        let jwks = include_str!("../../../../tests/keys/jwks.json");
        let keys = parse_jwks(jwks.as_bytes()).unwrap();
        assert!(!keys.is_empty());
        let mixed = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "sym"},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
            {"kty": "weird"},
            "not even an object"
        ]});
        assert_eq!(
            parse_jwks(mixed.to_string().as_bytes()).unwrap_err(),
            KeySourceError::NoUsableKeys
        );
        assert!(matches!(
            parse_jwks(b"{\"nokeys\": []}").unwrap_err(),
            KeySourceError::Malformed(_)
        ));
    }
}
