//! A bounded pool for the slow hash (argon2id) with its memory allocated once.
//!
//! One argon2id evaluation with the default parameters works in 19 MiB of memory for tens of
//! milliseconds. Allocated per hash, a flood of registrations multiplies both, and the allocator
//! keeps the freed blocks in per-thread arenas long after the flood. So the pool owns a fixed set
//! of slots, each with its own argon2 memory, sized for the configured parameters, allocated on
//! the slot's first use and reused by every later hash: whatever the load, hashing holds at most
//! `slots × 19 MiB`, and nothing the size of the argon2 state is allocated per hash. A slot is
//! wiped after each evaluation, so memory holds no state of a past hash.
//!
//! Every argon2 evaluation stepup runs goes through the pool, and the application should send its
//! password hashing through the same pool ([`Mfa::kdf`](crate::Mfa::kdf)):
//!
//! - [`KdfPool::hash`] makes a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`, random salt), the
//!   format of `argon2::Argon2::default().hash_password`;
//! - [`KdfPool::verify`] checks a PHC string, recomputing with the parameters it names in a slot's
//!   memory and comparing in constant time; strings made by `argon2` itself verify;
//! - [`KdfPool::hash_many`] hashes several codes across all slots at once (the backup codes of
//!   an enrollment).
//!
//! A caller waits at most the queue timeout for a slot, then gets [`KdfError::Busy`] (answered
//! `503`). Checks ([`verify`](KdfPool::verify)) and code sets ([`hash_many`](KdfPool::hash_many))
//! go before new hashes ([`hash`](KdfPool::hash), [`run`](KdfPool::run)) in the queue, so a flood of
//! registrations never keeps a sign-in waiting for more than the hashes already running.
//!
//! ```
//! # async fn example() -> Result<(), stepup_mfa::kdf::KdfError> {
//! use std::time::Duration;
//! use stepup_mfa::KdfPool;
//!
//! let pool = KdfPool::new(2, Duration::from_secs(5));
//! let stored = pool.hash(b"correct horse battery staple").await?;
//! assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//! assert!(pool.verify(b"correct horse battery staple", &stored).await?);
//! assert!(!pool.verify(b"another password", &stored).await?);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(example()).unwrap();
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::MfaError;

/// Bytes of the random salt of a new hash.
const SALT_LEN: usize = 16;

/// At most `slots` argon2id evaluations at once, each in its slot's own memory, on tokio's
/// blocking threads; a caller waits at most `queue_timeout` for a slot. Cheap to clone: clones
/// share the slots.
///
/// ```
/// # async fn example() -> Result<(), stepup_mfa::kdf::KdfError> {
/// use std::time::Duration;
/// use stepup_mfa::KdfPool;
///
/// let pool = KdfPool::new(2, Duration::from_secs(5));
/// let codes = ["ABCDEFGHJK", "MNPQRSTUVW", "XYZ2345678"];
/// let hashes = pool.hash_many(&codes).await?;
/// assert_eq!(hashes.len(), 3);
/// assert!(pool.verify(b"MNPQRSTUVW", &hashes[1]).await?);
/// assert_eq!(pool.slot_memory_bytes(), 19 * 1024 * 1024);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(example()).unwrap();
/// ```
#[derive(Clone)]
pub struct KdfPool {
    inner: Arc<Inner>,
}

/// The pool had no free slot within its queue timeout. The error of [`KdfPool::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password-hashing pool is busy")]
pub struct KdfBusy;

/// Why a hash or a check through the pool failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KdfError {
    /// No slot was free within the queue timeout (answered `503`).
    #[error("the password-hashing pool is busy")]
    Busy,
    /// The stored string is not an argon2 PHC string this pool can check: malformed, another
    /// algorithm, no salt or hash, or parameters needing more memory than a slot holds.
    #[error("the stored hash cannot be checked: {0}")]
    UnsupportedHash(&'static str),
    /// The parameters given to [`KdfPool::with_params`] cannot make PHC strings.
    #[error("unusable argon2 parameters: {0}")]
    UnsupportedParams(&'static str),
    /// The slot's memory could not be allocated.
    #[error("the argon2 memory could not be allocated")]
    OutOfMemory,
    /// argon2 refused the input, or the evaluation did not finish.
    #[error("argon2 failed: {0}")]
    Failed(&'static str),
}

impl From<KdfBusy> for KdfError {
    fn from(_: KdfBusy) -> Self {
        Self::Busy
    }
}

impl From<KdfBusy> for MfaError {
    /// A busy pool is [`MfaError::Unavailable`] (`503`).
    fn from(busy: KdfBusy) -> Self {
        crate::error::Unavailable::new(busy).into()
    }
}

impl From<KdfError> for MfaError {
    /// A busy pool is [`MfaError::Unavailable`] (`503`); anything else is internal.
    fn from(error: KdfError) -> Self {
        match error {
            KdfError::Busy => KdfBusy.into(),
            other => MfaError::internal(other),
        }
    }
}

/// Where a waiting caller queues: checks before new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    /// A check or a code set: a user is waiting to sign in or to finish an enrollment.
    Urgent,
    /// A new hash (a registration, a password change) or a closure given to [`KdfPool::run`].
    Normal,
}

struct Inner {
    /// The parameters of new hashes; they size each slot.
    params: Params,
    /// argon2 blocks (1 KiB each) a slot holds.
    slot_blocks: usize,
    slots: usize,
    queue_timeout: Duration,
    queue: Mutex<Queue>,
    /// Slots handed out right now, and the most ever handed out at once.
    in_use: AtomicUsize,
    peak_in_use: AtomicUsize,
    /// argon2 evaluations begun in the slots (hashes and checks).
    evaluations: AtomicU64,
}

struct Queue {
    idle: Vec<Slot>,
    urgent: VecDeque<oneshot::Sender<Slot>>,
    normal: VecDeque<oneshot::Sender<Slot>>,
}

/// One slot's argon2 memory: empty until its first use, then `slot_blocks` blocks for good.
struct Slot {
    blocks: Vec<Block>,
}

impl KdfPool {
    /// At most `slots` (at least 1) evaluations at once, with argon2id's default parameters
    /// (19 MiB, 2 passes, 1 lane); callers wait up to `queue_timeout` for a slot.
    pub fn new(slots: usize, queue_timeout: Duration) -> Self {
        Self::build(slots.max(1), queue_timeout, Params::DEFAULT)
    }

    /// The same slots and queue timeout, hashing with `params` (each slot then holds
    /// `params.m_cost()` KiB). Fails when the output length is outside what a PHC string holds
    /// (10 to 64 bytes).
    pub fn with_params(self, params: Params) -> Result<Self, KdfError> {
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        if !(Output::MIN_LENGTH..=Output::MAX_LENGTH).contains(&output_len) {
            return Err(KdfError::UnsupportedParams(
                "the output length must be 10 to 64 bytes",
            ));
        }
        Ok(Self::build(
            self.inner.slots,
            self.inner.queue_timeout,
            params,
        ))
    }

    fn build(slots: usize, queue_timeout: Duration, params: Params) -> Self {
        Self {
            inner: Arc::new(Inner {
                slot_blocks: params.block_count(),
                params,
                slots,
                queue_timeout,
                queue: Mutex::new(Queue {
                    idle: (0..slots).map(|_| Slot { blocks: Vec::new() }).collect(),
                    urgent: VecDeque::new(),
                    normal: VecDeque::new(),
                }),
                in_use: AtomicUsize::new(0),
                peak_in_use: AtomicUsize::new(0),
                evaluations: AtomicU64::new(0),
            }),
        }
    }

    /// The argon2id hash of `secret` as a PHC string, with a fresh random salt and this pool's
    /// parameters.
    pub async fn hash(&self, secret: &[u8]) -> Result<String, KdfError> {
        self.hash_as(Priority::Normal, secret.to_vec()).await
    }

    /// Whether `secret` matches the PHC string `stored`: recomputed with the algorithm, version
    /// and parameters `stored` names (any argon2 variant whose memory fits a slot) and compared
    /// in constant time. `Ok(false)` when it does not match; [`KdfError::UnsupportedHash`] when
    /// `stored` cannot be checked here.
    pub async fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, KdfError> {
        let check = self.inner.prepare_check(stored)?;
        let secret = secret.to_vec();
        let lease = self.inner.acquire(Priority::Urgent).await?;
        tokio::task::spawn_blocking(move || lease.check(&secret, &check))
            .await
            .map_err(|_| KdfError::Failed("the check did not finish"))?
    }

    /// The PHC strings of `secrets`, in order, hashed across all slots at once (ten codes on a
    /// two-slot pool take five hash times, not ten). Fails as a whole when one fails.
    pub async fn hash_many<S: AsRef<[u8]>>(&self, secrets: &[S]) -> Result<Vec<String>, KdfError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, secret) in secrets.iter().enumerate() {
            let pool = self.clone();
            let secret = secret.as_ref().to_vec();
            tasks.spawn(async move { (index, pool.hash_as(Priority::Urgent, secret).await) });
        }
        let mut hashes: Vec<Option<String>> = vec![None; secrets.len()];
        while let Some(joined) = tasks.join_next().await {
            let (index, hash) = joined.map_err(|_| KdfError::Failed("a hash did not finish"))?;
            if let Some(cell) = hashes.get_mut(index) {
                *cell = Some(hash?);
            }
        }
        hashes
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or(KdfError::Failed("a hash is missing"))
    }

    /// Runs `work` on a blocking thread while holding a slot, for slow work that is not one of
    /// the calls above. The closure does not get the slot's memory: an argon2 evaluation it makes
    /// allocates its own, outside the pool's bound; prefer [`hash`](Self::hash) and
    /// [`verify`](Self::verify).
    pub async fn run<T, F>(&self, work: F) -> Result<T, KdfBusy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let lease = self
            .inner
            .acquire(Priority::Normal)
            .await
            .map_err(|_| KdfBusy)?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(lease);
            result
        })
        .await
        .map_err(|_| KdfBusy)
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.inner.lock().idle.len()
    }

    /// Slots in the pool: the most evaluations at once.
    pub fn slots(&self) -> usize {
        self.inner.slots
    }

    /// The most slots that were ever in use at once (never more than [`slots`](Self::slots)).
    pub fn peak_in_use(&self) -> usize {
        self.inner.peak_in_use.load(Ordering::Relaxed)
    }

    /// The argon2 evaluations (hashes and checks) begun in this pool's slots so far, by it and
    /// its clones; closures given to [`run`](Self::run) are not counted.
    pub fn evaluations(&self) -> u64 {
        self.inner.evaluations.load(Ordering::Relaxed)
    }

    /// The argon2 memory of one slot, in bytes; the pool holds at most `slots` times this.
    pub fn slot_memory_bytes(&self) -> usize {
        self.inner.slot_blocks * Block::SIZE
    }

    /// The parameters of new hashes.
    pub fn params(&self) -> &Params {
        &self.inner.params
    }

    async fn hash_as(&self, priority: Priority, secret: Vec<u8>) -> Result<String, KdfError> {
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        let lease = self.inner.acquire(priority).await?;
        tokio::task::spawn_blocking(move || lease.hash(&secret, &salt))
            .await
            .map_err(|_| KdfError::Failed("the hash did not finish"))?
    }
}

impl Default for KdfPool {
    /// As many slots as cores; a 5-second queue; argon2id's default parameters.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new(cores, Duration::from_secs(5))
    }
}

impl std::fmt::Debug for KdfPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KdfPool")
            .field("slots", &self.inner.slots)
            .field("slot_memory_bytes", &self.slot_memory_bytes())
            .field("queue_timeout", &self.inner.queue_timeout)
            .finish_non_exhaustive()
    }
}

/// A parsed PHC string, ready to be recomputed.
struct Check {
    argon2: Argon2<'static>,
    salt: Salt,
    expected: Output,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while the queue is locked; a poisoned lock still holds a sound queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A free slot now, or the first one released for this priority within the queue timeout.
    async fn acquire(self: &Arc<Self>, priority: Priority) -> Result<Lease, KdfError> {
        let receiver = {
            let mut queue = self.lock();
            if let Some(slot) = queue.idle.pop() {
                return Ok(Lease::new(self.clone(), slot));
            }
            let (sender, receiver) = oneshot::channel();
            match priority {
                Priority::Urgent => queue.urgent.push_back(sender),
                Priority::Normal => queue.normal.push_back(sender),
            }
            receiver
        };
        let mut waiting = Waiting {
            pool: self.clone(),
            receiver,
        };
        match tokio::time::timeout(self.queue_timeout, &mut waiting.receiver).await {
            Ok(Ok(slot)) => Ok(Lease::new(self.clone(), slot)),
            // The queue never drops a sender unsent, but if it did, that is no slot.
            Ok(Err(_)) => Err(KdfError::Busy),
            Err(_elapsed) => {
                // A slot handed over just as the time ran out is still taken.
                waiting.receiver.close();
                match waiting.receiver.try_recv() {
                    Ok(slot) => Ok(Lease::new(self.clone(), slot)),
                    Err(_) => Err(KdfError::Busy),
                }
            }
        }
    }

    /// Hands `slot` to the first waiter still waiting (checks first), or makes it idle.
    fn release(&self, mut slot: Slot) {
        let mut queue = self.lock();
        loop {
            let next = match queue.urgent.pop_front() {
                Some(sender) => Some(sender),
                None => queue.normal.pop_front(),
            };
            let Some(sender) = next else {
                queue.idle.push(slot);
                return;
            };
            match sender.send(slot) {
                Ok(()) => return,
                // That waiter gave up: the next one.
                Err(returned) => slot = returned,
            }
        }
    }

    fn prepare_check(&self, stored: &str) -> Result<Check, KdfError> {
        let parsed =
            PasswordHash::new(stored).map_err(|_| KdfError::UnsupportedHash("not a PHC string"))?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str())
            .map_err(|_| KdfError::UnsupportedHash("not an argon2 hash"))?;
        let version = match parsed.version {
            Some(version) => Version::try_from(version)
                .map_err(|_| KdfError::UnsupportedHash("an unknown argon2 version"))?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed)
            .map_err(|_| KdfError::UnsupportedHash("invalid argon2 parameters"))?;
        if params.block_count() > self.slot_blocks {
            return Err(KdfError::UnsupportedHash(
                "its parameters need more memory than a pool slot holds",
            ));
        }
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(KdfError::UnsupportedHash("no salt or no hash"));
        };
        Ok(Check {
            argon2: Argon2::new(algorithm, version, params),
            salt,
            expected,
        })
    }
}

/// A caller waiting for a slot. Dropped (its caller gave up), it returns a slot handed over in
/// the meantime, so no slot is ever lost.
struct Waiting {
    pool: Arc<Inner>,
    receiver: oneshot::Receiver<Slot>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.receiver.close();
        if let Ok(slot) = self.receiver.try_recv() {
            self.pool.release(slot);
        }
    }
}

/// A slot held by one evaluation; wiped and released when dropped (even if the evaluation
/// panicked, or its caller went away).
struct Lease {
    pool: Arc<Inner>,
    slot: Option<Slot>,
}

impl Lease {
    fn new(pool: Arc<Inner>, slot: Slot) -> Self {
        let in_use = pool.in_use.fetch_add(1, Ordering::AcqRel) + 1;
        pool.peak_in_use.fetch_max(in_use, Ordering::AcqRel);
        Self {
            pool,
            slot: Some(slot),
        }
    }

    /// The slot's memory, allocated on its first use, for one evaluation (counted).
    fn blocks(&mut self) -> Result<&mut [Block], KdfError> {
        self.pool.evaluations.fetch_add(1, Ordering::Relaxed);
        let wanted = self.pool.slot_blocks;
        let slot = self
            .slot
            .as_mut()
            .ok_or(KdfError::Failed("the slot is gone"))?;
        if slot.blocks.len() < wanted {
            slot.blocks
                .try_reserve_exact(wanted - slot.blocks.len())
                .map_err(|_| KdfError::OutOfMemory)?;
            slot.blocks.resize(wanted, Block::new());
        }
        Ok(&mut slot.blocks)
    }

    fn hash(mut self, secret: &[u8], salt: &[u8]) -> Result<String, KdfError> {
        let params = self.pool.params.clone();
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let output = buffer
            .get_mut(..output_len)
            .ok_or(KdfError::UnsupportedParams(
                "the output length must be 10 to 64 bytes",
            ))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        argon2
            .hash_password_into_with_memory(secret, salt, &mut *output, self.blocks()?)
            .map_err(|_| KdfError::Failed("argon2id refused the input"))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)
                .map_err(|_| KdfError::UnsupportedParams("the parameters have no PHC form"))?,
            salt: Some(Salt::new(salt).map_err(|_| KdfError::Failed("the salt is unusable"))?),
            hash: Some(
                Output::new(output).map_err(|_| KdfError::Failed("the output is unusable"))?,
            ),
        };
        Ok(phc.to_string())
    }

    fn check(mut self, secret: &[u8], check: &Check) -> Result<bool, KdfError> {
        let expected = check.expected.as_ref();
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let computed = buffer
            .get_mut(..expected.len())
            .ok_or(KdfError::UnsupportedHash("the hash is too long"))?;
        check
            .argon2
            .hash_password_into_with_memory(secret, &check.salt, &mut *computed, self.blocks()?)
            .map_err(|_| KdfError::UnsupportedHash("argon2 refused its parameters"))?;
        Ok(bool::from(computed.ct_eq(expected)))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            slot.blocks.fill(Block::new());
            self.pool.in_use.fetch_sub(1, Ordering::AcqRel);
            self.pool.release(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn pool(slots: usize) -> KdfPool {
        KdfPool::new(slots, Duration::from_secs(30))
    }

    /// Small parameters (64 KiB, 1 pass) where a test makes many hashes.
    fn small() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_phc_strings_that_argon2_itself_verifies() {
        let pool = pool(2);
        let stored = pool.hash(b"hunter2").await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(
            Argon2::default()
                .verify_password(b"hunter2", stored.as_str())
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"hunter3", stored.as_str())
                .is_err()
        );
        // A fresh salt each time.
        assert_ne!(stored, pool.hash(b"hunter2").await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_by_plain_argon2_verify() {
        let pool = pool(1);
        let made_today = Argon2::default()
            .hash_password(b"ABCDEFGHJK")
            .unwrap()
            .to_string();
        assert!(pool.verify(b"ABCDEFGHJK", &made_today).await.unwrap());
        assert!(!pool.verify(b"ABCDEFGHJM", &made_today).await.unwrap());
        // A stored string, fixed: made by
        // `Argon2::default().hash_password_with_salt(b"correct horse", b"stepup-fixed-salt")`.
        let fixed = "$argon2id$v=19$m=19456,t=2,p=1$c3RlcHVwLWZpeGVkLXNhbHQ$\
                     CNlUa4y3xNFSh/VuyOQd9a2WgoLKjpbSw3LLReQR4I4";
        assert!(pool.verify(b"correct horse", fixed).await.unwrap());
        assert!(!pool.verify(b"correct horsf", fixed).await.unwrap());
    }

    #[tokio::test]
    async fn other_argon2_variants_and_smaller_parameters_verify() {
        let pool = pool(1);
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d, Algorithm::Argon2id] {
            for version in [Version::V0x10, Version::V0x13] {
                let params = Params::new(256, 3, 2, Some(24)).unwrap();
                let stored = Argon2::new(algorithm, version, params)
                    .hash_password(b"secret")
                    .unwrap()
                    .to_string();
                assert!(pool.verify(b"secret", &stored).await.unwrap(), "{stored}");
                assert!(!pool.verify(b"Secret", &stored).await.unwrap(), "{stored}");
            }
        }
    }

    #[tokio::test]
    async fn unusable_strings_are_refused_without_a_panic() {
        let pool = pool(1);
        let good = pool.hash(b"x").await.unwrap();
        let too_big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(19 * 1024 + 8, 1, 1, None).unwrap(),
        )
        .hash_password(b"x")
        .unwrap()
        .to_string();
        let without_hash = good.rsplit_once('$').unwrap().0.to_owned();
        for bad in [
            "",
            "not a hash",
            "$",
            "$$$$$$",
            "$argon2id$v=19$m=19456,t=2,p=1",
            without_hash.as_str(),
            "$argon2id$v=7$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            too_big.as_str(),
            &format!("{good}$trailing"),
        ] {
            assert!(
                matches!(
                    pool.verify(b"x", bad).await,
                    Err(KdfError::UnsupportedHash(_))
                ),
                "{bad}"
            );
        }
        // A refusal holds no slot.
        assert_eq!(pool.available(), 1);
        assert_eq!(
            MfaError::from(KdfError::UnsupportedHash("x")).status(),
            http::StatusCode::INTERNAL_SERVER_ERROR
        );
        let busy = MfaError::from(KdfError::Busy);
        assert!(matches!(busy, MfaError::Unavailable(_)));
        assert_eq!(busy.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn the_configured_parameters_size_the_slots_and_the_hashes() {
        let pool = pool(3).with_params(small()).unwrap();
        assert_eq!(pool.slot_memory_bytes(), 64 * 1024);
        let stored = pool.hash(b"pw").await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored}"
        );
        assert!(
            Argon2::default()
                .verify_password(b"pw", stored.as_str())
                .is_ok()
        );
        // A default-parameter hash needs more memory than these slots hold.
        let default = Argon2::default().hash_password(b"pw").unwrap().to_string();
        assert_eq!(
            pool.verify(b"pw", &default).await,
            Err(KdfError::UnsupportedHash(
                "its parameters need more memory than a pool slot holds"
            ))
        );
        let too_long = Params::new(64, 1, 1, Some(65)).unwrap();
        assert!(matches!(
            pool.clone().with_params(too_long),
            Err(KdfError::UnsupportedParams(_))
        ));
    }

    #[tokio::test]
    async fn many_codes_hash_in_order_across_the_slots() {
        let pool = pool(2);
        let codes: Vec<String> = (0..10).map(|index| format!("CODE{index:06}")).collect();
        let hashes = pool.hash_many(&codes).await.unwrap();
        assert_eq!(hashes.len(), 10);
        for (code, hash) in codes.iter().zip(&hashes) {
            assert!(pool.verify(code.as_bytes(), hash).await.unwrap());
        }
        assert!(!pool.verify(codes[0].as_bytes(), &hashes[1]).await.unwrap());
        // They ran two at a time, not one after another.
        assert_eq!(pool.peak_in_use(), 2);
        assert_eq!(pool.available(), 2);
        assert!(pool.hash_many::<&str>(&[]).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_tasks_never_exceed_the_slots() {
        let pool = KdfPool::new(2, Duration::from_secs(60))
            .with_params(small())
            .unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..64_u32 {
            let pool = pool.clone();
            let running = running.clone();
            let most = most.clone();
            tasks.spawn(async move {
                match index % 4 {
                    0 => {
                        // A closure observed from the inside.
                        pool.run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(5));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                        .unwrap();
                    }
                    1 => {
                        let stored = pool.hash(&index.to_le_bytes()).await.unwrap();
                        assert!(pool.verify(&index.to_le_bytes(), &stored).await.unwrap());
                    }
                    2 => {
                        pool.hash_many(&[[1u8; 4], [2; 4], [3; 4]]).await.unwrap();
                    }
                    _ => {
                        // A caller that gives up while waiting.
                        let _ = tokio::time::timeout(
                            Duration::from_micros(50),
                            pool.hash(b"impatient"),
                        )
                        .await;
                    }
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert_eq!(pool.peak_in_use(), 2, "the tasks did race");
        // Every slot came back, none was lost to a caller that gave up.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.slots(), 2);
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_after_the_queue_timeout_and_loses_no_slot() {
        let pool = KdfPool::new(1, Duration::from_millis(50));
        let (hold, release) = std::sync::mpsc::channel::<()>();
        let holder = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || release.recv().ok()).await })
        };
        while pool.available() != 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool.hash(b"x").await, Err(KdfError::Busy));
        assert_eq!(pool.run(|| ()).await, Err(KdfBusy));
        hold.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(pool.available(), 1);
        assert!(pool.hash(b"x").await.is_ok());
    }

    #[tokio::test]
    async fn a_check_goes_before_the_new_hashes_queued_ahead_of_it() {
        let pool = KdfPool::new(1, Duration::from_secs(30));
        let held = pool.inner.acquire(Priority::Normal).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for (name, priority) in [
            ("registration 1", Priority::Normal),
            ("registration 2", Priority::Normal),
            ("login", Priority::Urgent),
            ("registration 3", Priority::Normal),
        ] {
            let inner = pool.inner.clone();
            let order = order.clone();
            waiters.push(tokio::spawn(async move {
                let lease = inner.acquire(priority).await.unwrap();
                order.lock().unwrap().push(name);
                drop(lease);
            }));
            // Each one queued before the next.
            while pool.inner.waiting() < waiters.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            [
                "login",
                "registration 1",
                "registration 2",
                "registration 3"
            ]
        );
        assert_eq!(pool.available(), 1);
    }

    #[tokio::test]
    async fn a_slot_handed_to_a_caller_that_gave_up_comes_back() {
        let pool = KdfPool::new(1, Duration::from_secs(30));
        let held = pool.inner.acquire(Priority::Normal).await.unwrap();
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.verify(
                    b"x",
                    "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                )
                .await
            })
        };
        while pool.inner.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // The slot goes to the waiter's channel; the waiter is cancelled before it runs again.
        drop(held);
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(pool.available(), 1);
    }

    impl Inner {
        fn waiting(&self) -> usize {
            let queue = self.lock();
            queue.urgent.len() + queue.normal.len()
        }
    }
}
