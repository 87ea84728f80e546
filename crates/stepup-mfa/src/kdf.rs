//! A bounded pool for slow hashes (argon2id). Each evaluation holds about 19 MiB for tens of
//! milliseconds; unbounded, a flood of requests multiplies both. Every argon2 evaluation stepup
//! runs goes through [`KdfPool::run`], and the application should send its password hashing
//! through the same pool ([`Mfa::kdf`](crate::Mfa::kdf)), so memory stays within about
//! `concurrency × 19 MiB` of hashing state whatever the load.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// At most `concurrency` slow hashes at once, on tokio's blocking threads; a caller waits at most
/// `queue_timeout` for its turn, then gets [`KdfBusy`] (answered `503`). Cheap to clone.
///
/// ```
/// # async fn example() -> Result<(), stepup_mfa::KdfBusy> {
/// use std::time::Duration;
/// use stepup_mfa::KdfPool;
///
/// let pool = KdfPool::new(2, Duration::from_secs(5));
/// let hashed = pool.run(|| 6 * 7).await?;
/// assert_eq!(hashed, 42);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KdfPool {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

/// The pool had no room within its queue timeout (or the hash could not finish).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password-hashing pool is busy")]
pub struct KdfBusy;

impl KdfPool {
    /// At most `concurrency` (at least 1) evaluations at once; callers wait up to
    /// `queue_timeout`.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
        }
    }

    /// Runs `hash` when a slot is free, on a blocking thread.
    pub async fn run<T, F>(&self, hash: F) -> Result<T, KdfBusy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| KdfBusy)?
            .map_err(|_| KdfBusy)?;
        tokio::task::spawn_blocking(move || {
            let result = hash();
            drop(permit);
            result
        })
        .await
        .map_err(|_| KdfBusy)
    }

    /// Slots left right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

impl Default for KdfPool {
    /// As many slots as cores; a 5-second queue.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new(cores, Duration::from_secs(5))
    }
}
