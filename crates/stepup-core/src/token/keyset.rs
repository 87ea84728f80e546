//! A snapshot of one issuer's verifying keys, and the choice of key for a token.
//!
//! Each key sits in an `Arc<KeyEntry>` that the verified-token cache also holds: when a refresh
//! drops a key from its issuer's set, the entry is marked withdrawn, and every cached token it
//! verified stops being served at its next presentation. A key kept across refreshes (same `kid`,
//! algorithm and material) keeps its entry, so its cached tokens stay valid.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::VerifyingKey;
use crate::TokenError;

/// How long a remote key set may still be used (shared by its keys). Static keys have none.
#[derive(Debug)]
pub(super) struct Freshness {
    /// Unix milliseconds (injected clock) until which the set is usable; 0 before any load.
    usable_until_ms: AtomicU64,
}

#[cfg_attr(not(feature = "jwks"), allow(dead_code))]
impl Freshness {
    pub(super) fn new() -> Self {
        Self {
            usable_until_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn usable_at(&self, now_ms: u64) -> bool {
        now_ms < self.usable_until_ms.load(Ordering::Acquire)
    }

    pub(super) fn extend_to(&self, until_ms: u64) {
        self.usable_until_ms.store(until_ms, Ordering::Release);
    }

    pub(super) fn usable_until_ms(&self) -> u64 {
        self.usable_until_ms.load(Ordering::Acquire)
    }
}

/// One verifying key, as held by a key set and by the cache entries it verified.
pub(super) struct KeyEntry {
    pub(super) key: VerifyingKey,
    /// What identifies the key across refreshes: `kid`, algorithm and public material.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(super) fingerprint: String,
    withdrawn: AtomicBool,
    freshness: Option<Arc<Freshness>>,
}

impl KeyEntry {
    pub(super) fn new(
        key: VerifyingKey,
        fingerprint: String,
        freshness: Option<Arc<Freshness>>,
    ) -> Self {
        Self {
            key,
            fingerprint,
            withdrawn: AtomicBool::new(false),
            freshness,
        }
    }

    /// Whether tokens verified by this key may still be served at `now_ms`: not withdrawn by a
    /// refresh, and its set not past its allowed staleness.
    pub(super) fn usable_at(&self, now_ms: u64) -> bool {
        !self.withdrawn.load(Ordering::Acquire)
            && self
                .freshness
                .as_ref()
                .is_none_or(|freshness| freshness.usable_at(now_ms))
    }

    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(super) fn withdraw(&self) {
        self.withdrawn.store(true, Ordering::Release);
    }
}

/// The keys of one issuer at one moment.
pub(super) struct KeySet {
    pub(super) keys: Vec<Arc<KeyEntry>>,
}

/// Why no key was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NoKey {
    /// A refusal that stands whatever the key set (bad header, algorithm not accepted, …).
    Refused(TokenError),
    /// The token names a `kid` the set does not hold (a refresh might bring it).
    UnknownKid(String),
}

impl KeySet {
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(super) fn empty() -> Self {
        Self { keys: Vec::new() }
    }

    /// The key to check `token` with. With one key and `read_header` false there is nothing to
    /// choose (the verifier refuses another `alg` and another `kid` after decoding). Otherwise a
    /// `kid` names exactly one key, and without a `kid` the token's `alg` must match exactly one.
    pub(super) fn select(&self, token: &str, read_header: bool) -> Result<&Arc<KeyEntry>, NoKey> {
        if let ([only], false) = (self.keys.as_slice(), read_header) {
            return Ok(only);
        }
        let hint = KeyHint::read(token).map_err(NoKey::Refused)?;
        let entry = match &hint.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|entry| entry.key.kid.as_deref() == Some(kid.as_ref()))
                .ok_or_else(|| NoKey::UnknownKid(kid.clone().into_owned()))?,
            None => {
                let mut candidates = self
                    .keys
                    .iter()
                    .filter(|entry| entry.key.algorithm == hint.alg);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => only,
                    (None, _) => return Err(NoKey::Refused(TokenError::AlgorithmNotAllowed)),
                    (Some(_), Some(_)) => return Err(NoKey::Refused(TokenError::UnknownKey)),
                }
            }
        };
        if entry.key.algorithm != hint.alg {
            return Err(NoKey::Refused(TokenError::AlgorithmNotAllowed));
        }
        Ok(entry)
    }
}

/// The two header fields that select a key among several, read without
/// `jsonwebtoken::decode_header`, which parses every header field into a flattened map and would
/// add a third full header parse to each request. Only the choice of key rests on this:
/// `jsonwebtoken::decode` then parses the header itself and refuses an `alg` other than the
/// chosen key's (and any `crit` it does not understand).
#[derive(Deserialize)]
struct KeyHint<'a> {
    alg: Algorithm,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
}

impl KeyHint<'_> {
    fn read(token: &str) -> Result<KeyHint<'static>, TokenError> {
        let (encoded_header, _) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let header_json = URL_SAFE_NO_PAD
            .decode(encoded_header)
            .map_err(|_| TokenError::Malformed)?;
        let hint: KeyHint<'_> =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        Ok(KeyHint {
            alg: hint.alg,
            kid: hint.kid.map(|kid| Cow::Owned(kid.into_owned())),
        })
    }
}

/// The `iss` of a token, read from its payload before any signature check, only to choose among
/// several trusted issuers (the chosen issuer's own validation checks `iss` again).
pub(super) fn peek_issuer(token: &str) -> Result<String, TokenError> {
    #[derive(Deserialize)]
    struct Issuer<'a> {
        #[serde(borrow)]
        iss: Option<Cow<'a, str>>,
    }
    let mut parts = token.splitn(3, '.');
    let (Some(_), Some(payload), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let issuer: Issuer<'_> =
        serde_json::from_slice(&json).map_err(|_| TokenError::InvalidClaims)?;
    issuer
        .iss
        .map(Cow::into_owned)
        .ok_or(TokenError::InvalidClaims)
}
