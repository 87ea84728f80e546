//! [`MemoryStore`]: both kinds of state in this process's memory.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use moka::sync::Cache;
use stepup_core::clock::{SharedClock, SystemClock};

use crate::{
    AuditRecord, AuditStore, BackupCodeHash, DeviceRecord, DeviceStore, EphemeralStore,
    FactorStore, StoreError, StoreResult, TotpRecord, async_trait,
};

/// How long moka keeps an entry beyond its expiry by the injected clock before reclaiming the
/// memory. Expiry itself is always judged by the injected clock at read time; this slack only
/// keeps moka's real-time reclamation from removing an entry the clock still counts as live.
const RECLAIM_GRACE: Duration = Duration::from_secs(60);

/// The Unix second at which an entry written at `now` with `ttl` expires.
///
/// A fractional second of `ttl` is rounded up, so a positive `ttl` never expires at once.
pub(crate) fn expiry_after(now: u64, ttl: Duration) -> u64 {
    let seconds = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    now.saturating_add(seconds)
}

/// A single-process store: durable state (factors, remembered devices, the audit trail) in
/// mutex-guarded maps, ephemeral values in a moka cache and counters in sharded maps.
///
/// Clones share the same state. Nothing survives the process; use it for tests, development and
/// single-instance deployments that accept losing enrollments on restart.
///
/// Expiry is judged by the injected clock at every read (an entry whose expiry is at or before
/// the clock's current second counts as absent). moka only reclaims the memory of expired entries,
/// a little after they expired in real time. The caches have no size bound, so no live entry (a
/// one-time token's "used" marker, an attempt counter) is ever evicted early; their size is bounded
/// by the callers' TTLs.
///
/// ```
/// use stepup_store::MemoryStore;
///
/// let store = MemoryStore::new();
/// let shared = store.clone(); // the same state
/// # drop(shared);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    clock: SharedClock,
}

struct Inner {
    durable: Mutex<Durable>,
    values: Cache<String, ValueEntry>,
    counters: Counters,
}

/// Fixed-window counters in sharded maps under plain mutexes. The rate-limit check runs on every
/// login request: a short critical section costs a fraction of a moka compute. Expired counters
/// are purged when a shard has doubled since its last purge.
struct Counters {
    shards: Box<[Mutex<CounterShard>]>,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct CounterShard {
    /// key → (count, expires_at in Unix seconds by the injected clock).
    counts: HashMap<String, (u64, u64)>,
    /// Purge expired counters when the shard reaches this size.
    purge_at: usize,
}

const COUNTER_SHARDS: usize = 16;
const MIN_PURGE_AT: usize = 1024;

impl Counters {
    fn new() -> Self {
        Self {
            shards: (0..COUNTER_SHARDS)
                .map(|_| Mutex::new(CounterShard::default()))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, CounterShard> {
        use std::hash::BuildHasher;
        let index = usize::try_from(self.hasher.hash_one(key) % COUNTER_SHARDS as u64).unwrap_or(0);
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One atomic step: the new count, starting a window of `ttl` if there is no live one.
    fn increment(&self, key: &str, now: u64, ttl: Duration) -> u64 {
        let mut shard = self.shard(key);
        if let Some((count, expires_at)) = shard.counts.get_mut(key) {
            if *expires_at > now {
                *count = count.saturating_add(1);
            } else {
                *count = 1;
                *expires_at = expiry_after(now, ttl);
            }
            return *count;
        }
        if shard.counts.len() >= shard.purge_at.max(MIN_PURGE_AT) {
            shard.counts.retain(|_, (_, expires_at)| *expires_at > now);
            shard.purge_at = shard.counts.len().saturating_mul(2);
        }
        shard
            .counts
            .insert(key.to_owned(), (1, expiry_after(now, ttl)));
        1
    }

    fn remove(&self, key: &str) {
        self.shard(key).counts.remove(key);
    }
}

#[derive(Default)]
struct Durable {
    totp: HashMap<String, TotpRecord>,
    /// user → lookup → argon2id hash.
    backup_codes: HashMap<String, HashMap<String, String>>,
    devices: Devices,
    /// user → events, sorted by `at`, ties in the order appended.
    audit: HashMap<String, Vec<AuditRecord>>,
    /// Every audit event id ever appended.
    audit_ids: HashSet<String>,
}

/// Remembered devices, with the indexes their lookups need.
#[derive(Default)]
struct Devices {
    /// id → device.
    by_id: HashMap<String, DeviceRecord>,
    /// token hash → id.
    by_token: HashMap<String, String>,
    /// user → ids.
    by_user: HashMap<String, HashSet<String>>,
}

impl Devices {
    fn insert(&mut self, device: DeviceRecord) {
        self.by_token
            .insert(device.token_hash.clone(), device.id.clone());
        self.by_user
            .entry(device.user.clone())
            .or_default()
            .insert(device.id.clone());
        self.by_id.insert(device.id.clone(), device);
    }

    fn remove(&mut self, id: &str) -> Option<DeviceRecord> {
        let device = self.by_id.remove(id)?;
        self.by_token.remove(&device.token_hash);
        if let Some(ids) = self.by_user.get_mut(&device.user) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_user.remove(&device.user);
            }
        }
        Some(device)
    }

    /// Removes every device of `user`, returning them.
    fn remove_user(&mut self, user: &str) -> Vec<DeviceRecord> {
        let ids = self.by_user.remove(user).unwrap_or_default();
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }

    /// The live devices of `user`.
    fn live_of(&self, user: &str, now: u64) -> impl Iterator<Item = &DeviceRecord> {
        self.by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .filter(move |device| device.expires_at > now)
    }
}

/// A value of the ephemeral store.
#[derive(Clone)]
struct ValueEntry {
    value: Arc<[u8]>,
    /// Unix seconds by the injected clock; live while strictly before it.
    expires_at: u64,
    /// The TTL it was written with (for moka's reclamation).
    ttl: Duration,
}

/// moka's reclamation policy: an entry's memory is freed `RECLAIM_GRACE` after its TTL (in real
/// time) from the write that set its expiry.
struct Reclaim;

impl Expiry<String, ValueEntry> for Reclaim {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &ValueEntry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl.saturating_add(RECLAIM_GRACE))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &ValueEntry,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        // Values are only ever replaced once expired: the replacement starts afresh.
        Some(value.ttl.saturating_add(RECLAIM_GRACE))
    }
}

impl MemoryStore {
    /// An empty store judging expiry by the system clock.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                durable: Mutex::new(Durable::default()),
                values: Cache::builder().expire_after(Reclaim).build(),
                counters: Counters::new(),
            }),
            clock: Arc::new(SystemClock),
        }
    }

    /// Judges expiry by `clock` instead (tests pass a
    /// [`ManualClock`](stepup_core::clock::ManualClock)). The state is kept.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// The durable state; a panic while it was held leaves no half-done change (every change is a
    /// single map operation), so a poisoned lock is recovered.
    fn durable(&self) -> MutexGuard<'_, Durable> {
        self.inner
            .durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FactorStore for MemoryStore {
    async fn totp(&self, user: &str) -> StoreResult<Option<TotpRecord>> {
        Ok(self.durable().totp.get(user).cloned())
    }

    async fn put_pending_totp(&self, user: &str, record: TotpRecord) -> StoreResult<bool> {
        let mut durable = self.durable();
        if durable
            .totp
            .get(user)
            .is_some_and(|existing| existing.active)
        {
            return Ok(false);
        }
        durable.totp.insert(
            user.to_owned(),
            TotpRecord {
                active: false,
                ..record
            },
        );
        Ok(true)
    }

    async fn activate_totp(
        &self,
        user: &str,
        step: u64,
        backup_codes: Vec<BackupCodeHash>,
    ) -> StoreResult<bool> {
        let mut durable = self.durable();
        match durable.totp.get_mut(user) {
            Some(record) if !record.active => {
                record.active = true;
                record.last_used_step = Some(step);
                let set = backup_codes
                    .into_iter()
                    .map(|code| (code.lookup, code.hash))
                    .collect();
                durable.backup_codes.insert(user.to_owned(), set);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn accept_totp_step(&self, user: &str, step: u64) -> StoreResult<bool> {
        let mut durable = self.durable();
        match durable.totp.get_mut(user) {
            Some(record)
                if record.active && record.last_used_step.is_none_or(|last| step > last) =>
            {
                record.last_used_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_totp(&self, user: &str) -> StoreResult<bool> {
        Ok(self.durable().totp.remove(user).is_some())
    }

    async fn totp_secrets(&self) -> StoreResult<Vec<(String, String)>> {
        let mut secrets: Vec<(String, String)> = self
            .durable()
            .totp
            .iter()
            .map(|(user, record)| (user.clone(), record.sealed_secret.clone()))
            .collect();
        secrets.sort_unstable();
        Ok(secrets)
    }

    async fn replace_totp_secret(&self, user: &str, old: &str, new: &str) -> StoreResult<bool> {
        let mut durable = self.durable();
        match durable.totp.get_mut(user) {
            Some(record) if record.sealed_secret == old => {
                new.clone_into(&mut record.sealed_secret);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn replace_backup_codes(
        &self,
        user: &str,
        codes: Vec<BackupCodeHash>,
    ) -> StoreResult<()> {
        let set: HashMap<String, String> = codes
            .into_iter()
            .map(|code| (code.lookup, code.hash))
            .collect();
        let mut durable = self.durable();
        if set.is_empty() {
            durable.backup_codes.remove(user);
        } else {
            durable.backup_codes.insert(user.to_owned(), set);
        }
        Ok(())
    }

    async fn backup_code_hash(&self, user: &str, lookup: &str) -> StoreResult<Option<String>> {
        Ok(self
            .durable()
            .backup_codes
            .get(user)
            .and_then(|codes| codes.get(lookup))
            .cloned())
    }

    async fn consume_backup_code(&self, user: &str, lookup: &str) -> StoreResult<bool> {
        let mut durable = self.durable();
        let Some(codes) = durable.backup_codes.get_mut(user) else {
            return Ok(false);
        };
        let consumed = codes.remove(lookup).is_some();
        if codes.is_empty() {
            durable.backup_codes.remove(user);
        }
        Ok(consumed)
    }

    async fn remaining_backup_codes(&self, user: &str) -> StoreResult<usize> {
        Ok(self
            .durable()
            .backup_codes
            .get(user)
            .map_or(0, HashMap::len))
    }

    async fn delete_factors(&self, user: &str) -> StoreResult<()> {
        let mut durable = self.durable();
        durable.totp.remove(user);
        durable.backup_codes.remove(user);
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn insert_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let now = self.now();
        let entry = ValueEntry {
            value: Arc::from(value),
            expires_at: expiry_after(now, ttl),
            ttl,
        };
        // moka runs compute calls on one key one at a time: the check and the write are atomic.
        let result =
            self.inner
                .values
                .entry_by_ref(key)
                .and_compute_with(|current| match current {
                    Some(current) if current.value().expires_at > now => Op::Nop,
                    _ => Op::Put(entry),
                });
        Ok(matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        ))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = self.now();
        Ok(self
            .inner
            .values
            .get(key)
            .filter(|entry| entry.expires_at > now)
            .map(|entry| entry.value.to_vec()))
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = self.now();
        // Removes the entry whether live or expired; only a live one is handed out.
        let result =
            self.inner
                .values
                .entry_by_ref(key)
                .and_compute_with(|current| match current {
                    Some(_) => Op::Remove,
                    None => Op::Nop,
                });
        Ok(match result {
            CompResult::Removed(entry) if entry.value().expires_at > now => {
                Some(entry.value().value.to_vec())
            }
            _ => None,
        })
    }

    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<u64> {
        Ok(self.inner.counters.increment(key, self.now(), ttl))
    }

    async fn remove(&self, key: &str) -> StoreResult<()> {
        self.inner.values.invalidate(key);
        self.inner.counters.remove(key);
        Ok(())
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn insert_device(&self, device: DeviceRecord) -> StoreResult<()> {
        let now = self.now();
        let mut durable = self.durable();
        let devices = &mut durable.devices;
        // The user's expired devices go first (an expired device is absent anyway).
        let expired: Vec<String> = devices
            .by_user
            .get(&device.user)
            .into_iter()
            .flatten()
            .filter(|id| devices.by_id.get(*id).is_some_and(|d| d.expires_at <= now))
            .cloned()
            .collect();
        for id in &expired {
            devices.remove(id);
        }
        if devices.by_id.contains_key(&device.id)
            || devices.by_token.contains_key(&device.token_hash)
        {
            return Err(StoreError::Unavailable(
                "a device with this id or token hash is already stored".to_owned(),
            ));
        }
        devices.insert(device);
        Ok(())
    }

    async fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceRecord>> {
        let now = self.now();
        let durable = self.durable();
        let devices = &durable.devices;
        Ok(devices
            .by_token
            .get(token_hash)
            .and_then(|id| devices.by_id.get(id))
            .filter(|device| device.expires_at > now)
            .cloned())
    }

    async fn touch_device(
        &self,
        id: &str,
        last_used_at: u64,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<bool> {
        let now = self.now();
        let mut durable = self.durable();
        match durable.devices.by_id.get_mut(id) {
            Some(device) if device.expires_at > now => {
                device.last_used_at = last_used_at;
                device.address = address.map(str::to_owned);
                device.user_agent = user_agent.map(str::to_owned);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn devices(&self, user: &str) -> StoreResult<Vec<DeviceRecord>> {
        let now = self.now();
        let mut devices: Vec<DeviceRecord> =
            self.durable().devices.live_of(user, now).cloned().collect();
        devices.sort_unstable_by(|a, b| {
            b.last_used_at
                .cmp(&a.last_used_at)
                .then(b.created_at.cmp(&a.created_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(devices)
    }

    async fn delete_device(&self, user: &str, id: &str) -> StoreResult<bool> {
        let now = self.now();
        let mut durable = self.durable();
        let devices = &mut durable.devices;
        if devices
            .by_id
            .get(id)
            .is_none_or(|device| device.user != user)
        {
            return Ok(false);
        }
        Ok(devices
            .remove(id)
            .is_some_and(|device| device.expires_at > now))
    }

    async fn delete_devices(&self, user: &str) -> StoreResult<usize> {
        let now = self.now();
        Ok(self
            .durable()
            .devices
            .remove_user(user)
            .iter()
            .filter(|device| device.expires_at > now)
            .count())
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, record: AuditRecord) -> StoreResult<()> {
        let mut durable = self.durable();
        if !durable.audit_ids.insert(record.id.clone()) {
            return Ok(());
        }
        let events = durable.audit.entry(record.user.clone()).or_default();
        // After every event at or before it: ties keep the order appended.
        let position = events.partition_point(|event| event.at <= record.at);
        events.insert(position, record);
        Ok(())
    }

    async fn audit_events(&self, user: &str, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        let durable = self.durable();
        let events = durable.audit.get(user).map_or(&[][..], Vec::as_slice);
        Ok(events[events.len().saturating_sub(limit)..].to_vec())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn expired_counters_are_purged_as_a_shard_grows() {
        let counters = super::Counters::new();
        let ttl = std::time::Duration::from_secs(60);
        for index in 0..20_000 {
            counters.increment(&format!("old-{index}"), 1_000, ttl);
        }
        // Much later, new keys arrive: the expired ones make room.
        for index in 0..20_000 {
            counters.increment(&format!("new-{index}"), 2_000, ttl);
        }
        let stored: usize = counters
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().counts.len())
            .sum();
        assert!(stored < 30_000, "{stored} counters kept");
        assert_eq!(counters.increment("new-7", 2_000, ttl), 2);
        assert_eq!(counters.increment("old-7", 2_000, ttl), 1, "a new window");
    }

    use super::*;
    use stepup_core::clock::ManualClock;

    #[test]
    fn expiry_rounds_fractions_up() {
        assert_eq!(expiry_after(100, Duration::from_secs(30)), 130);
        assert_eq!(expiry_after(100, Duration::from_millis(1)), 101);
        assert_eq!(expiry_after(100, Duration::ZERO), 100);
        assert_eq!(expiry_after(u64::MAX, Duration::from_secs(1)), u64::MAX);
    }

    #[tokio::test]
    async fn clones_share_state_and_with_clock_keeps_it() {
        // Far ahead of the system clock.
        let clock = ManualClock::at_unix(4_000_000_000);
        let store = MemoryStore::new();
        assert!(
            store
                .insert_if_absent("k", b"v", Duration::from_secs(60))
                .await
                .unwrap()
        );
        let clone = store.clone().with_clock(Arc::new(clock.clone()));
        // The system clock is far behind the manual one: by it, the entry expired long ago.
        assert_eq!(store.get("k").await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(clone.get("k").await.unwrap(), None);
        clone.remove("k").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn put_pending_stores_a_pending_record() {
        let store = MemoryStore::new();
        let record = TotpRecord {
            sealed_secret: "s".to_owned(),
            algorithm: "SHA1".to_owned(),
            digits: 6,
            period: 30,
            active: true,
            last_used_step: None,
            created_at: 1,
        };
        assert!(store.put_pending_totp("u", record).await.unwrap());
        assert!(!store.totp("u").await.unwrap().unwrap().active);
    }

    #[cfg(feature = "conformance")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn conforms() {
        let clock = ManualClock::at_unix(1_800_000_000);
        let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
        crate::conformance::run(Arc::new(store), clock).await;
    }
}
