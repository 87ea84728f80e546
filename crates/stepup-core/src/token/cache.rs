//! A bounded cache of verified tokens, so a token presented again skips the signature check and
//! the claims parse.
//!
//! Keyed by the SHA-256 of the whole token string (header, payload and signature): a token that
//! differs in any byte, a forged signature over the same claims included, has another digest and
//! takes the full verification. The value is the verified claims; the verifier still judges `exp`,
//! `nbf` and `auth_time` against its clock on every hit, exactly as on a miss. An entry is dropped
//! once the clock reaches the token's `exp`, so a cached token is never served past its expiry (a
//! token inside the leeway after `exp` is re-verified in full and not cached again).
//!
//! Memory is bounded by entry count: the map is split into shards (a read lock on a hit), each
//! holding at most its share of the capacity. A full shard is brought down to three quarters:
//! its expired entries first, then arbitrary ones (the keys are uniform digests); an evicted token
//! costs one full verification when it comes back. Only successful verifications are inserted, and each
//! verifier owns its cache, so cached claims are always those verified under that verifier's keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};

use super::AccessTokenClaims;

/// Capacities from this size up are split into [`SHARDS`] shards; smaller ones use one.
const SHARDED_FROM: usize = 256;
/// The number of shards of a large cache (a power of two).
const SHARDS: usize = 16;

/// The SHA-256 digest of a token string: the cache key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub(super) fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Bytes 0..8 of a uniform digest: already a good hash, and not choosable by a caller (that
    /// would take a SHA-256 preimage), so no keyed hasher is needed against flooding.
    fn hash_bits(&self) -> u64 {
        let mut bits = [0; 8];
        bits.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(bits)
    }

    /// Bytes 8..16 pick the shard, independently of the bits the shard's map hashes by.
    fn shard_bits(&self) -> usize {
        usize::from(self.0[8]) | (usize::from(self.0[9]) << 8)
    }
}

impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_bits());
    }
}

/// Passes the digest's own bits through as the hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, bits: u64) {
        self.0 = bits;
    }

    // Only `write_u64` is ever called (see `TokenDigest::hash`); a generic fallback all the same.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type Shard = HashMap<TokenDigest, Arc<AccessTokenClaims>, BuildHasherDefault<DigestHasher>>;

/// Verified claims by token digest, at most `capacity` entries in all.
pub(super) struct VerifiedCache {
    shards: Box<[RwLock<Shard>]>,
    per_shard: usize,
}

impl VerifiedCache {
    /// A cache of at most `capacity` entries; `None` for a capacity of 0 (no cache).
    pub(super) fn new(capacity: usize) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        let shard_count = if capacity >= SHARDED_FROM { SHARDS } else { 1 };
        let per_shard = capacity / shard_count;
        let shards = (0..shard_count)
            .map(|_| RwLock::new(Shard::default()))
            .collect();
        Some(Self { shards, per_shard })
    }

    /// The most entries the cache holds at once.
    pub(super) fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    fn shard(&self, digest: &TokenDigest) -> &RwLock<Shard> {
        &self.shards[digest.shard_bits() & (self.shards.len() - 1)]
    }

    /// The claims of a token verified earlier, unless its `exp` has been reached at `now` (then
    /// the entry is dropped and the token must be verified again).
    pub(super) fn get(&self, digest: &TokenDigest, now: u64) -> Option<Arc<AccessTokenClaims>> {
        let shard = self.shard(digest);
        {
            let entries = shard.read().unwrap_or_else(PoisonError::into_inner);
            let claims = entries.get(digest)?;
            if now < claims.exp {
                return Some(Arc::clone(claims));
            }
        }
        let mut entries = shard.write().unwrap_or_else(PoisonError::into_inner);
        entries.remove(digest);
        None
    }

    /// Remembers the claims of a token that has just passed every check at `now`. A token whose
    /// `exp` is already reached (accepted only by the leeway) is not kept.
    pub(super) fn insert(&self, digest: TokenDigest, claims: Arc<AccessTokenClaims>, now: u64) {
        if now >= claims.exp {
            return;
        }
        let mut entries = self
            .shard(&digest)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.per_shard && !entries.contains_key(&digest) {
            // Down to three quarters, expired entries first: the next full shard is a quarter of
            // a shard's inserts away, so the scan stays amortised O(1) per insert.
            let keep = self.per_shard - self.per_shard.div_ceil(4);
            entries.retain(|_, kept| now < kept.exp);
            if entries.len() > keep {
                let excess = entries.len() - keep;
                let evicted: Vec<TokenDigest> = entries.keys().take(excess).copied().collect();
                for digest in &evicted {
                    entries.remove(digest);
                }
            }
        }
        entries.insert(digest, claims);
    }

    /// The number of entries held now (expired ones not yet dropped included).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, exp: u64) -> Arc<AccessTokenClaims> {
        Arc::new(AccessTokenClaims {
            sub: sub.into(),
            exp,
            nbf: None,
            iat: None,
            jti: None,
            acr: None,
            amr: Vec::new(),
            auth_time: None,
            scope: None,
        })
    }

    #[test]
    fn a_zero_capacity_is_no_cache() {
        assert!(VerifiedCache::new(0).is_none());
    }

    #[test]
    fn the_capacity_is_never_exceeded_small_or_sharded() {
        for capacity in [1, 2, 3, 10, 255, 256, 1_000, 10_000] {
            let cache = VerifiedCache::new(capacity).unwrap();
            assert!(cache.capacity() <= capacity);
            assert!(cache.capacity() > capacity * 9 / 10 || capacity < 32);
            for n in 0..capacity * 5 {
                let token = format!("token-{n}");
                cache.insert(TokenDigest::of(&token), claims(&token, 2_000), 1_000);
                assert!(
                    cache.len() <= cache.capacity(),
                    "{capacity}: {}",
                    cache.len()
                );
            }
            // The newest entry survives its own insertion.
            let last = format!("token-{}", capacity * 5 - 1);
            assert!(cache.get(&TokenDigest::of(&last), 1_000).is_some());
        }
    }

    #[test]
    fn a_full_shard_drops_its_expired_entries_first() {
        let cache = VerifiedCache::new(4).unwrap();
        for n in 0..3 {
            cache.insert(
                TokenDigest::of(&format!("old-{n}")),
                claims("old", 1_010),
                1_000,
            );
        }
        cache.insert(TokenDigest::of("live"), claims("live", 5_000), 1_000);
        cache.insert(TokenDigest::of("new"), claims("new", 5_000), 1_020);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&TokenDigest::of("live"), 1_020).is_some());
        assert!(cache.get(&TokenDigest::of("new"), 1_020).is_some());
    }

    #[test]
    fn an_entry_ends_at_its_exp_and_is_dropped() {
        let cache = VerifiedCache::new(10).unwrap();
        let digest = TokenDigest::of("t");
        cache.insert(digest, claims("t", 1_100), 1_000);
        assert!(cache.get(&digest, 1_099).is_some());
        assert!(cache.get(&digest, 1_100).is_none());
        assert_eq!(cache.len(), 0);
        // Accepted only by the leeway: not kept.
        cache.insert(digest, claims("t", 1_100), 1_100);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn one_byte_of_difference_is_another_key() {
        let cache = VerifiedCache::new(10).unwrap();
        cache.insert(TokenDigest::of("a.b.c"), claims("x", 2_000), 1_000);
        assert!(cache.get(&TokenDigest::of("a.b.d"), 1_000).is_none());
        assert!(cache.get(&TokenDigest::of("a.b.c"), 1_000).is_some());
    }
}
