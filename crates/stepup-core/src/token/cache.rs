//! A bounded cache of verified tokens, so a token presented again skips the signature check and
//! the claims parse.
//!
//! Keyed by the token's **signature segment**, not by a hash of the whole token: sixteen base64url
//! characters from the middle of the signature (96 bits of it) are mixed with a per-cache random
//! seed into the map key, so a lookup reads 16 bytes of the token whatever its length. A hit then
//! compares the **whole token** with the one stored, byte for byte: a token that differs anywhere
//! (a forged signature over the same claims, other claims under a copied signature) is a miss and
//! takes the full verification. A forged token therefore costs a 16-byte mix, one probe and at most
//! one failed comparison before its signature fails, never a digest of the whole token.
//!
//! Only tokens that passed every check are inserted, so the keys in the map are signatures made by
//! trusted keys: uniformly distributed, and not choosable by a client (one who could choose them
//! holds a signing key). The value is the verified claims; the verifier still judges `exp`, `nbf`
//! and `auth_time` against its clock on every hit, exactly as on a miss. An entry is dropped once
//! the clock reaches the token's `exp`, so a cached token is never served past its expiry (a token
//! inside the leeway after `exp` is re-verified in full and not cached again).
//!
//! Memory is bounded by entry count: the map is split into shards (a read lock on a hit), each
//! holding at most its share of the capacity. A full shard is brought down to three quarters: its
//! expired entries first, then arbitrary ones; the scan is amortised over a quarter of a shard's
//! inserts. A token is admitted on its **second** verification (a doorkeeper: two bits per key
//! in a 128 Ki-bit set, cleared after every 16 Ki first sightings), so a flood of distinct valid
//! tokens, each presented once, costs each request one atomic bit and no copy, no lock and no
//! eviction, and does not push the tokens in use out of the cache. Each verifier owns its cache,
//! so cached claims are always those verified under that verifier's keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Capacities from this size up are split into [`SHARDS`] shards; smaller ones use one.
const SHARDED_FROM: usize = 256;
/// The number of shards of a large cache (a power of two).
const SHARDS: usize = 16;
/// How many characters of the signature segment make the key (16 base64url characters: 96 bits).
const WINDOW: usize = 16;
/// Bits of the doorkeeper (128 Ki bits, 16 KiB).
const DOORKEEPER_BITS: usize = 1 << 17;
/// First sightings after which the doorkeeper forgets them all: at most a quarter of its bits set
/// (two per key), so a new token passes for a known one at most once in 16.
const DOORKEEPER_EPOCH: usize = DOORKEEPER_BITS / 8;

/// What the cache needs to know of a value: when it stops being servable.
pub(super) trait Expiring {
    /// The token's `exp` (Unix seconds).
    fn exp(&self) -> u64;
}

/// The cache key of a token: 64 bits mixed from its signature segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct SignatureKey(u64);

impl SignatureKey {
    /// The bits the shard is chosen by (independent of the low bits the map indexes by).
    fn shard_bits(self) -> usize {
        (self.0 >> 48) as usize
    }
}

/// Passes the key's own (already mixed) bits through as the hash.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, bits: u64) {
        self.0 = bits;
    }

    // Only `write_u64` is ever called (the map is keyed by `u64`); a generic fallback all the same.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A cached token: the whole token (compared on every hit) and what its verification produced.
struct Entry<V> {
    token: Box<str>,
    value: Arc<V>,
}

type Shard<V> = HashMap<u64, Entry<V>, BuildHasherDefault<PassThrough>>;

/// Verified values by token, at most `capacity` entries in all.
pub(super) struct VerifiedCache<V> {
    shards: Box<[RwLock<Shard<V>>]>,
    per_shard: usize,
    seed: u64,
    /// Keys seen once since the last clearing: a token is cached when seen again.
    doorkeeper: Box<[AtomicU64]>,
    first_sightings: AtomicUsize,
}

impl<V: Expiring> VerifiedCache<V> {
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
        Some(Self {
            shards,
            per_shard,
            seed: rand::random::<u64>() | 1,
            doorkeeper: (0..DOORKEEPER_BITS / 64)
                .map(|_| AtomicU64::new(0))
                .collect(),
            first_sightings: AtomicUsize::new(0),
        })
    }

    /// The most entries the cache holds at once.
    pub(super) fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// The key of `token`, from 16 characters in the middle of its signature segment; `None` when
    /// it has no signature segment that long (such a token is never cached, and never valid).
    pub(super) fn key_of(&self, token: &str) -> Option<SignatureKey> {
        let (_, signature) = token.rsplit_once('.')?;
        let signature = signature.as_bytes();
        if signature.len() < WINDOW {
            return None;
        }
        let start = (signature.len() - WINDOW) / 2;
        let window = &signature[start..start + WINDOW];
        let mut low = [0; 8];
        let mut high = [0; 8];
        low.copy_from_slice(&window[..8]);
        high.copy_from_slice(&window[8..]);
        // A multiply-fold mix: every output bit depends on every input bit and the seed.
        let mixed = (u64::from_le_bytes(low) ^ self.seed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29)
            ^ u64::from_le_bytes(high).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        let folded = u128::from(mixed) * u128::from(self.seed ^ 0x2545_f491_4f6c_dd1d);
        Some(SignatureKey((folded as u64) ^ ((folded >> 64) as u64)))
    }

    fn shard(&self, key: SignatureKey) -> &RwLock<Shard<V>> {
        &self.shards[key.shard_bits() & (self.shards.len() - 1)]
    }

    /// The value of `token` verified earlier (the whole token compared), unless its `exp` has been
    /// reached at `now` (then the entry is dropped and the token must be verified again).
    pub(super) fn get(&self, key: SignatureKey, token: &str, now: u64) -> Option<Arc<V>> {
        let shard = self.shard(key);
        {
            let entries = shard.read().unwrap_or_else(PoisonError::into_inner);
            let entry = entries.get(&key.0)?;
            if *entry.token != *token {
                return None;
            }
            if now < entry.value.exp() {
                return Some(Arc::clone(&entry.value));
            }
        }
        let mut entries = shard.write().unwrap_or_else(PoisonError::into_inner);
        if entries
            .get(&key.0)
            .is_some_and(|entry| *entry.token == *token)
        {
            entries.remove(&key.0);
        }
        None
    }

    /// Forgets `token` (a hit whose key has since been withdrawn).
    pub(super) fn remove(&self, key: SignatureKey, token: &str) {
        let mut entries = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if entries
            .get(&key.0)
            .is_some_and(|entry| *entry.token == *token)
        {
            entries.remove(&key.0);
        }
    }

    /// Whether a token with `key`, just verified, should be cached: on its second sighting.
    fn admit(&self, key: SignatureKey) -> bool {
        if self.remember(key) {
            return true;
        }
        if self.first_sightings.fetch_add(1, Ordering::Relaxed) + 1 >= DOORKEEPER_EPOCH {
            self.first_sightings.store(0, Ordering::Relaxed);
            for word in &*self.doorkeeper {
                word.store(0, Ordering::Relaxed);
            }
            // The key that ended the epoch opens the next one: its next sighting is its second.
            self.remember(key);
        }
        false
    }

    /// Sets the doorkeeper's two bits of `key`; whether both were set already.
    fn remember(&self, key: SignatureKey) -> bool {
        let mut seen = true;
        for bit in [(key.0 >> 8) as usize, (key.0 >> 32) as usize] {
            let bit = bit % DOORKEEPER_BITS;
            let mask = 1u64 << (bit % 64);
            let before = self.doorkeeper[bit / 64].fetch_or(mask, Ordering::Relaxed);
            seen &= before & mask != 0;
        }
        seen
    }

    /// Remembers the value of a token that has just passed every check at `now`, from its second
    /// verification on (see the module docs). A token whose `exp` is already reached (accepted
    /// only by the leeway) is not kept.
    pub(super) fn insert(&self, key: SignatureKey, token: &str, value: Arc<V>, now: u64) {
        if now >= value.exp() || !self.admit(key) {
            return;
        }
        self.store(key, token, value, now);
    }

    fn store(&self, key: SignatureKey, token: &str, value: Arc<V>, now: u64) {
        let mut entries = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.per_shard && !entries.contains_key(&key.0) {
            // Down to three quarters, expired entries first: the next full shard is a quarter of
            // a shard's inserts away, so the scan stays amortised O(1) per insert.
            let keep = self.per_shard - self.per_shard.div_ceil(4);
            entries.retain(|_, kept| now < kept.value.exp());
            if entries.len() > keep {
                let excess = entries.len() - keep;
                let evicted: Vec<u64> = entries.keys().take(excess).copied().collect();
                for bits in &evicted {
                    entries.remove(bits);
                }
            }
        }
        entries.insert(
            key.0,
            Entry {
                token: token.into(),
                value,
            },
        );
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

    struct Exp(u64);

    impl Expiring for Exp {
        fn exp(&self) -> u64 {
            self.0
        }
    }

    /// A token-shaped string whose signature segment is unique to `n` and looks like a real
    /// one (base64url of 32 uniform bytes).
    fn token(n: usize) -> String {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let signature = Sha256::digest(n.to_le_bytes());
        format!(
            "header.payload.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        )
    }

    fn cache(capacity: usize) -> VerifiedCache<Exp> {
        VerifiedCache::new(capacity).unwrap()
    }

    /// Stores directly, past the doorkeeper.
    fn insert(cache: &VerifiedCache<Exp>, token: &str, exp: u64, now: u64) {
        let key = cache.key_of(token).unwrap();
        if now < exp {
            cache.store(key, token, Arc::new(Exp(exp)), now);
        }
    }

    #[test]
    fn a_token_is_admitted_on_its_second_verification_and_a_flood_of_new_ones_stores_nothing() {
        let cache = cache(1_000);
        let key = cache.key_of(&token(1)).unwrap();
        cache.insert(key, &token(1), Arc::new(Exp(2_000)), 1_000);
        assert_eq!(cache.len(), 0);
        cache.insert(key, &token(1), Arc::new(Exp(2_000)), 1_000);
        assert_eq!(cache.len(), 1);
        // 100,000 distinct tokens seen once each: a doorkeeper false positive (a new token taken
        // for a known one) is rarer than 1 in 16, about 1 in 100 on average.
        let admitted = (10..100_010)
            .filter(|&n| cache.admit(cache.key_of(&token(n)).unwrap()))
            .count();
        assert!(admitted < 3_000, "{admitted}");
        // After the flood, a token is still admitted on its second sighting.
        for n in 200_000..200_100 {
            let key = cache.key_of(&token(n)).unwrap();
            cache.admit(key);
            assert!(cache.admit(key), "{n}");
        }
    }

    #[test]
    fn the_token_that_ends_an_epoch_is_admitted_on_its_next_sighting_and_the_rest_forgotten() {
        let cache = cache(1_000);
        let key = |n: usize| cache.key_of(&token(n)).unwrap();
        let ended = (0..2 * DOORKEEPER_EPOCH)
            .find(|&n| !cache.admit(key(n)) && cache.first_sightings.load(Ordering::Relaxed) == 0)
            .expect("an epoch ends within two epochs' worth of new tokens");
        assert!(cache.admit(key(ended)));
        // The sightings before it are forgotten: each counts as a first sighting again.
        let before = cache.first_sightings.load(Ordering::Relaxed);
        let remembered = (ended - 100..ended)
            .filter(|&n| cache.admit(key(n)))
            .count();
        assert!(remembered <= 1, "{remembered}");
        assert!(cache.first_sightings.load(Ordering::Relaxed) >= before + 99);
    }

    fn hit(cache: &VerifiedCache<Exp>, token: &str, now: u64) -> bool {
        cache
            .key_of(token)
            .and_then(|key| cache.get(key, token, now))
            .is_some()
    }

    #[test]
    fn a_zero_capacity_is_no_cache() {
        assert!(VerifiedCache::<Exp>::new(0).is_none());
    }

    #[test]
    fn the_capacity_is_never_exceeded_small_or_sharded() {
        for capacity in [1, 2, 3, 10, 255, 256, 1_000, 10_000] {
            let cache = cache(capacity);
            assert!(cache.capacity() <= capacity);
            assert!(cache.capacity() > capacity * 9 / 10 || capacity < 32);
            for n in 0..capacity * 5 {
                insert(&cache, &token(n), 2_000, 1_000);
                assert!(
                    cache.len() <= cache.capacity(),
                    "{capacity}: {}",
                    cache.len()
                );
            }
            // The newest entry survives its own insertion.
            assert!(hit(&cache, &token(capacity * 5 - 1), 1_000));
        }
    }

    #[test]
    fn a_full_shard_drops_its_expired_entries_first() {
        let cache = cache(4);
        for n in 0..3 {
            insert(&cache, &token(n), 1_010, 1_000);
        }
        insert(&cache, &token(10), 5_000, 1_000);
        insert(&cache, &token(11), 5_000, 1_020);
        assert_eq!(cache.len(), 2);
        assert!(hit(&cache, &token(10), 1_020));
        assert!(hit(&cache, &token(11), 1_020));
    }

    #[test]
    fn an_entry_ends_at_its_exp_and_is_dropped() {
        let cache = cache(10);
        insert(&cache, &token(1), 1_100, 1_000);
        assert!(hit(&cache, &token(1), 1_099));
        assert!(!hit(&cache, &token(1), 1_100));
        assert_eq!(cache.len(), 0);
        // Accepted only by the leeway: not kept.
        insert(&cache, &token(1), 1_100, 1_100);
        assert_eq!(cache.len(), 0);
    }

    /// The key reads only the signature, but a hit needs the whole token: the same signature
    /// under other claims, or one changed character anywhere, is a miss.
    #[test]
    fn a_hit_needs_the_whole_token_not_just_its_signature() {
        let cache = cache(10);
        let stored = token(7);
        insert(&cache, &stored, 2_000, 1_000);
        let (signed, signature) = stored.rsplit_once('.').unwrap();
        let other_claims = format!("header.other-payload.{signature}");
        assert_eq!(cache.key_of(&other_claims), cache.key_of(&stored));
        assert!(!hit(&cache, &other_claims, 1_000));
        for index in 0..stored.len() {
            let mut changed = stored.clone().into_bytes();
            changed[index] = if changed[index] == b'x' { b'y' } else { b'x' };
            let changed = String::from_utf8(changed).unwrap();
            assert!(!hit(&cache, &changed, 1_000), "{changed}");
        }
        assert!(!hit(&cache, signed, 1_000));
        assert!(hit(&cache, &stored, 1_000));
        // A miss on a colliding key leaves the stored entry alone.
        cache.remove(cache.key_of(&other_claims).unwrap(), &other_claims);
        assert!(hit(&cache, &stored, 1_000));
        cache.remove(cache.key_of(&stored).unwrap(), &stored);
        assert!(!hit(&cache, &stored, 1_000));
    }

    #[test]
    fn short_or_missing_signatures_have_no_key() {
        let cache = cache(10);
        for token in ["", "no-dots", "a.b.", "a.b.short", "a.b.0123456789abcde"] {
            assert!(cache.key_of(token).is_none(), "{token}");
        }
        assert!(cache.key_of("a.b.0123456789abcdef").is_some());
    }

    /// Keys of distinct signatures spread over the shards and rarely collide.
    #[test]
    fn keys_spread_over_the_shards() {
        let cache = cache(10_000);
        let mut per_shard = [0usize; SHARDS];
        let mut keys = std::collections::HashSet::new();
        for n in 0..16_000 {
            let key = cache.key_of(&token(n)).unwrap();
            per_shard[key.shard_bits() & (SHARDS - 1)] += 1;
            keys.insert(key.0);
        }
        assert_eq!(keys.len(), 16_000);
        for count in per_shard {
            assert!((700..1_300).contains(&count), "{per_shard:?}");
        }
    }
}
