//! The conformance suites every store backend must pass, one per trait.
//!
//! [`factors::run`], [`ephemeral::run`], [`devices::run`], [`audit::run`] and [`grants::run`]
//! each check the semantics documented on their trait ([`FactorStore`](crate::FactorStore),
//! [`EphemeralStore`](crate::EphemeralStore), [`DeviceStore`](crate::DeviceStore),
//! [`AuditStore`](crate::AuditStore), [`GrantStore`](crate::GrantStore)), and race 100 tasks, released together, on every
//! single-use or check-and-update call (exactly one must win) and on every counting call (no
//! update may be lost). A backend implementing one trait (Redis for the ephemeral state) runs that
//! trait's suite; [`run_all`] runs the five on a backend implementing every trait.
//!
//! Time moves only through the [`ManualClock`] the store was built with, so the suites never
//! sleep. Every check uses its own users, keys and ids, fresh for each run, so the store may hold
//! other data and a suite may run more than once on the same store. A failure panics with a
//! description of the broken rule.
//!
//! ```no_run
//! use std::sync::Arc;
//! use stepup_core::clock::ManualClock;
//! use stepup_store::{MemoryStore, conformance};
//!
//! // Under `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]`:
//! async fn memory_store_conforms() {
//!     let clock = ManualClock::at_unix(1_800_000_000);
//!     let store = Arc::new(MemoryStore::new().with_clock(Arc::new(clock.clone())));
//!     // Every suite:
//!     conformance::run_all(Arc::clone(&store), clock.clone()).await;
//!     // Or one trait's suite, for a backend implementing only that trait:
//!     conformance::ephemeral::run(store, clock).await;
//! }
//! ```

pub mod audit;
pub mod devices;
pub mod ephemeral;
pub mod factors;
pub mod grants;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use stepup_core::clock::ManualClock;
use tokio::sync::Barrier;

use crate::{Store, StoreResult};

/// Runs the five suites on `store`, one after another, panicking at the first failure.
///
/// `store` must judge expiry by `clock` (the suites move it forward). Run it on a multi-threaded
/// tokio runtime so the races are real: `#[tokio::test(flavor = "multi_thread")]`. Do not run
/// suites concurrently on stores sharing `clock`: each expects time to move only when it moves it.
pub async fn run_all<S: Store>(store: Arc<S>, clock: ManualClock) {
    factors::run(Arc::clone(&store), clock.clone()).await;
    ephemeral::run(Arc::clone(&store), clock.clone()).await;
    devices::run(Arc::clone(&store), clock.clone()).await;
    audit::run(Arc::clone(&store), clock.clone()).await;
    grants::run(store, clock).await;
}

/// How many tasks race on each atomic operation.
const RACERS: usize = 100;

/// Fresh names for one run of a suite.
struct Ids {
    run: String,
}

impl Ids {
    fn new() -> Self {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        Self {
            run: format!(
                "{}-{nanos}-{}",
                std::process::id(),
                RUNS.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    fn user(&self, check: &str) -> String {
        format!("conformance-user:{check}:{}", self.run)
    }

    fn key(&self, check: &str) -> String {
        format!("conformance-key:{check}:{}", self.run)
    }

    /// A factor kind no other run uses (for calls listing every user's credentials of a kind).
    fn kind(&self, check: &str) -> String {
        format!("conformance-kind:{check}:{}", self.run)
    }

    /// A device id, token hash or audit event id (unique across stores sharing a database).
    fn id(&self, check: &str, name: &str) -> String {
        format!("conformance-id:{check}:{name}:{}", self.run)
    }
}

/// The value of a store call, or a panic naming the call.
fn expect<T>(result: StoreResult<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("conformance: {what}: the store failed: {error}"),
    }
}

/// Panics, describing the rule, unless `actual` is `expected`.
fn check<T: PartialEq + Debug>(actual: T, expected: T, what: &str) {
    assert!(
        actual == expected,
        "conformance: {what}: expected {expected:?}, got {actual:?}"
    );
}

/// Runs `op` in `RACERS` tasks released together by a barrier and returns their results, in
/// task order.
async fn race<S, T, F, Fut>(store: &Arc<S>, op: F) -> Vec<T>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(Arc<S>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|index| {
            let barrier = Arc::clone(&barrier);
            let future = op(Arc::clone(store), index);
            tokio::spawn(async move {
                barrier.wait().await;
                future.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RACERS);
    for task in tasks {
        match task.await {
            Ok(result) => results.push(result),
            Err(error) => panic!("conformance: a racing task failed: {error}"),
        }
    }
    results
}

/// How many racers won.
fn winners(results: &[bool]) -> usize {
    results.iter().filter(|won| **won).count()
}

/// The index of the only winner, after [`winners`] was checked to be 1.
fn winner(results: &[bool]) -> usize {
    results.iter().position(|won| *won).unwrap_or(0)
}
