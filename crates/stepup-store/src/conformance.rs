//! The conformance suite every store backend must pass.
//!
//! [`run`] checks the semantics documented on [`FactorStore`], [`EphemeralStore`], [`DeviceStore`]
//! and [`AuditStore`], and races 100 tasks on each single-use or check-and-update call (exactly one
//! must win) and on appends to the audit trail (none may be lost). Time moves only
//! through the [`ManualClock`] the store was built with, so the suite never sleeps.
//!
//! ```no_run
//! use std::sync::Arc;
//! use stepup_core::clock::ManualClock;
//! use stepup_store::{MemoryStore, conformance};
//!
//! // Under `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]`:
//! async fn memory_store_conforms() {
//!     let clock = ManualClock::at_unix(1_800_000_000);
//!     let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
//!     conformance::run(Arc::new(store), clock).await;
//! }
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stepup_core::clock::{Clock, ManualClock};
use tokio::sync::Barrier;

use crate::{
    AuditRecord, AuditStore, BackupCodeHash, DeviceRecord, DeviceStore, EphemeralStore,
    FactorStore, StoreResult, TotpRecord,
};

/// How many tasks race on each atomic operation.
const RACERS: usize = 100;

/// Runs every check on `store`, panicking with a description of the first failure.
///
/// `store` must judge expiry by `clock` (the suite moves it forward). Each check uses its own
/// user ids and keys, so the store may hold other data, and the suite may run more than once on
/// the same store. Run it on a multi-threaded tokio runtime so the races are real:
/// `#[tokio::test(flavor = "multi_thread")]`.
pub async fn run<S>(store: Arc<S>, clock: ManualClock)
where
    S: FactorStore + EphemeralStore + DeviceStore + AuditStore,
{
    let ids = Ids::new();

    expect(store.ping().await, "ping");

    totp_lifecycle(&store, &ids).await;
    totp_steps(&store, &ids).await;
    concurrent_accept_totp_step(&store, &ids).await;
    concurrent_activate_totp(&store, &ids).await;
    activation_stores_backup_codes(&store, &ids).await;
    totp_secret_rotation(&store, &ids).await;
    backup_codes(&store, &ids).await;
    concurrent_consume_backup_code(&store, &ids).await;
    delete_factors(&store, &ids).await;

    ephemeral_basics(&store, &ids).await;
    concurrent_take(&store, &ids).await;
    concurrent_insert_if_absent(&store, &ids).await;
    ephemeral_expiry(&store, &ids, &clock).await;
    increment_counts(&store, &ids).await;
    concurrent_increment(&store, &ids).await;
    increment_window(&store, &ids, &clock).await;

    device_lifecycle(&store, &ids, &clock).await;
    device_listing(&store, &ids, &clock).await;
    device_revocation(&store, &ids, &clock).await;
    device_expiry(&store, &ids, &clock).await;

    audit_order(&store, &ids).await;
    concurrent_append_audit(&store, &ids).await;
}

/// Fresh names for one run of the suite.
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

    /// A device id, token hash or audit event id (unique across stores sharing a database).
    fn id(&self, check: &str, name: &str) -> String {
        format!("conformance-id:{check}:{name}:{}", self.run)
    }
}

fn expect<T>(result: StoreResult<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("conformance: {what}: the store failed: {error}"),
    }
}

fn check<T: PartialEq + Debug>(actual: T, expected: T, what: &str) {
    assert!(
        actual == expected,
        "conformance: {what}: expected {expected:?}, got {actual:?}"
    );
}

fn pending(secret: &str) -> TotpRecord {
    TotpRecord {
        sealed_secret: secret.to_owned(),
        algorithm: "SHA1".to_owned(),
        digits: 6,
        period: 30,
        active: false,
        last_used_step: None,
        created_at: 1_800_000_000,
    }
}

/// Runs `op` in `RACERS` tasks started together and returns their results.
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

fn winners(results: &[bool]) -> usize {
    results.iter().filter(|won| **won).count()
}

async fn totp_lifecycle<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("totp-lifecycle");

    check(
        expect(store.totp(&user).await, "totp of a new user"),
        None,
        "a new user has no TOTP enrollment",
    );
    check(
        expect(
            store.activate_totp(&user, 10, Vec::new()).await,
            "activate_totp",
        ),
        false,
        "activate_totp without an enrollment",
    );
    check(
        expect(
            store.put_pending_totp(&user, pending("sealed-1")).await,
            "put_pending_totp",
        ),
        true,
        "put_pending_totp for a new user",
    );
    check(
        expect(store.totp(&user).await, "totp"),
        Some(pending("sealed-1")),
        "the pending enrollment as stored",
    );
    check(
        expect(
            store.put_pending_totp(&user, pending("sealed-2")).await,
            "put_pending_totp",
        ),
        true,
        "put_pending_totp replacing a pending enrollment",
    );
    check(
        expect(store.totp(&user).await, "totp"),
        Some(pending("sealed-2")),
        "the replacing pending enrollment",
    );
    check(
        expect(store.accept_totp_step(&user, 5).await, "accept_totp_step"),
        false,
        "accept_totp_step on a pending enrollment",
    );
    check(
        expect(
            store.activate_totp(&user, 100, Vec::new()).await,
            "activate_totp",
        ),
        true,
        "activate_totp of a pending enrollment",
    );
    check(
        expect(store.totp(&user).await, "totp"),
        Some(TotpRecord {
            active: true,
            last_used_step: Some(100),
            ..pending("sealed-2")
        }),
        "the activated enrollment (active, activation step recorded)",
    );
    check(
        expect(
            store.activate_totp(&user, 101, Vec::new()).await,
            "activate_totp",
        ),
        false,
        "a second activate_totp",
    );
    check(
        expect(
            store.put_pending_totp(&user, pending("sealed-3")).await,
            "put_pending_totp",
        ),
        false,
        "put_pending_totp over an active enrollment",
    );
    check(
        expect(store.totp(&user).await, "totp")
            .map(|record| (record.sealed_secret, record.active, record.last_used_step)),
        Some(("sealed-2".to_owned(), true, Some(100))),
        "the active enrollment after a refused put_pending_totp",
    );
    check(
        expect(store.delete_totp(&user).await, "delete_totp"),
        true,
        "delete_totp of an enrollment",
    );
    check(
        expect(store.totp(&user).await, "totp"),
        None,
        "the enrollment after delete_totp",
    );
    check(
        expect(store.delete_totp(&user).await, "delete_totp"),
        false,
        "delete_totp without an enrollment",
    );
    check(
        expect(
            store.put_pending_totp(&user, pending("sealed-4")).await,
            "put_pending_totp",
        ),
        true,
        "put_pending_totp after delete_totp",
    );
}

async fn totp_steps<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("totp-steps");
    check(
        expect(store.accept_totp_step(&user, 5).await, "accept_totp_step"),
        false,
        "accept_totp_step without an enrollment",
    );
    expect(
        store.put_pending_totp(&user, pending("sealed")).await,
        "put_pending_totp",
    );
    check(
        expect(
            store.activate_totp(&user, 1000, Vec::new()).await,
            "activate_totp",
        ),
        true,
        "activate_totp",
    );
    check(
        expect(
            store.accept_totp_step(&user, 1000).await,
            "accept_totp_step",
        ),
        false,
        "accept_totp_step of the activation step",
    );
    check(
        expect(
            store.accept_totp_step(&user, 1001).await,
            "accept_totp_step",
        ),
        true,
        "accept_totp_step of a later step",
    );
    check(
        expect(
            store.accept_totp_step(&user, 1001).await,
            "accept_totp_step",
        ),
        false,
        "accept_totp_step of the same step again",
    );
    check(
        expect(store.accept_totp_step(&user, 999).await, "accept_totp_step"),
        false,
        "accept_totp_step of an earlier step",
    );
    check(
        expect(
            store.accept_totp_step(&user, 1005).await,
            "accept_totp_step",
        ),
        true,
        "accept_totp_step skipping ahead",
    );
    check(
        expect(
            store.accept_totp_step(&user, 1003).await,
            "accept_totp_step",
        ),
        false,
        "accept_totp_step of a step between the last two",
    );
    check(
        expect(store.totp(&user).await, "totp").and_then(|record| record.last_used_step),
        Some(1005),
        "last_used_step after accepted steps",
    );

    // A pending enrollment keeps `last_used_step` as `None`; activation at step 0 then accepts 1.
    let fresh = ids.user("totp-steps-fresh");
    expect(
        store.put_pending_totp(&fresh, pending("sealed")).await,
        "put_pending_totp",
    );
    check(
        expect(store.totp(&fresh).await, "totp").and_then(|record| record.last_used_step),
        None,
        "last_used_step of a pending enrollment",
    );
    check(
        expect(
            store.activate_totp(&fresh, 0, Vec::new()).await,
            "activate_totp",
        ),
        true,
        "activate_totp at step 0",
    );
    check(
        expect(store.accept_totp_step(&fresh, 1).await, "accept_totp_step"),
        true,
        "accept_totp_step of step 1 after activation at 0",
    );
}

async fn concurrent_accept_totp_step<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-accept");
    expect(
        store.put_pending_totp(&user, pending("sealed")).await,
        "put_pending_totp",
    );
    expect(
        store.activate_totp(&user, 500, Vec::new()).await,
        "activate_totp",
    );
    let results = race(store, |store, _| {
        let user = user.clone();
        async move { expect(store.accept_totp_step(&user, 501).await, "accept_totp_step") }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent accept_totp_step of one step: number of winners",
    );
}

async fn concurrent_activate_totp<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-activate");
    expect(
        store.put_pending_totp(&user, pending("sealed")).await,
        "put_pending_totp",
    );
    let results = race(store, |store, index| {
        let user = user.clone();
        let step = 700 + u64::try_from(index).unwrap_or(0);
        async move {
            expect(
                store.activate_totp(&user, step, Vec::new()).await,
                "activate_totp",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent activate_totp: number of winners",
    );
    let winner = results.iter().position(|won| *won).unwrap_or(0);
    let record = expect(store.totp(&user).await, "totp");
    check(
        record.map(|record| (record.active, record.last_used_step)),
        Some((true, Some(700 + u64::try_from(winner).unwrap_or(0)))),
        "the enrollment after concurrent activate_totp (the winner's step recorded)",
    );
}

async fn totp_secret_rotation<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let active = ids.user("rotation-active");
    let waiting = ids.user("rotation-pending");
    expect(
        store.put_pending_totp(&active, pending("old-a")).await,
        "put_pending_totp",
    );
    expect(
        store.activate_totp(&active, 1, Vec::new()).await,
        "activate_totp",
    );
    expect(
        store.put_pending_totp(&waiting, pending("old-p")).await,
        "put_pending_totp",
    );

    let secrets = expect(store.totp_secrets().await, "totp_secrets");
    for (user, secret) in [(&active, "old-a"), (&waiting, "old-p")] {
        check(
            secrets
                .iter()
                .filter(|(listed, _)| listed == user)
                .map(|(_, sealed)| sealed.as_str())
                .collect::<Vec<_>>(),
            vec![secret],
            "totp_secrets lists each enrollment, pending or active, once",
        );
    }

    check(
        expect(
            store.replace_totp_secret(&active, "old-a", "new-a").await,
            "replace_totp_secret",
        ),
        true,
        "replace_totp_secret with the current secret",
    );
    check(
        expect(
            store.replace_totp_secret(&active, "old-a", "newer-a").await,
            "replace_totp_secret",
        ),
        false,
        "replace_totp_secret with a stale secret",
    );
    check(
        expect(store.totp(&active).await, "totp"),
        Some(TotpRecord {
            active: true,
            last_used_step: Some(1),
            ..pending("new-a")
        }),
        "the enrollment after rotation (only the secret changed)",
    );
    check(
        expect(
            store.replace_totp_secret(&waiting, "old-p", "new-p").await,
            "replace_totp_secret",
        ),
        true,
        "replace_totp_secret of a pending enrollment",
    );
    check(
        expect(store.totp(&waiting).await, "totp").map(|record| record.sealed_secret),
        Some("new-p".to_owned()),
        "the pending enrollment after rotation",
    );
    check(
        expect(
            store
                .replace_totp_secret(&ids.user("rotation-none"), "x", "y")
                .await,
            "replace_totp_secret",
        ),
        false,
        "replace_totp_secret without an enrollment",
    );
    let secrets = expect(store.totp_secrets().await, "totp_secrets");
    check(
        secrets
            .iter()
            .find(|(user, _)| *user == active)
            .map(|(_, sealed)| sealed.as_str()),
        Some("new-a"),
        "totp_secrets after rotation",
    );
}

fn codes(prefix: &str, count: usize) -> Vec<BackupCodeHash> {
    (0..count)
        .map(|index| BackupCodeHash {
            lookup: format!("{prefix}-lookup-{index}"),
            hash: format!("{prefix}-hash-{index}"),
        })
        .collect()
}

/// Activation and the first backup codes land together; a refused activation writes no code.
async fn activation_stores_backup_codes<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("activation-codes");
    expect(
        store.put_pending_totp(&user, pending("sealed")).await,
        "put_pending_totp",
    );
    check(
        expect(
            store.activate_totp(&user, 7, codes("first", 10)).await,
            "activate_totp",
        ),
        true,
        "activate_totp with backup codes",
    );
    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        10,
        "backup codes stored by activate_totp",
    );
    check(
        expect(
            store.activate_totp(&user, 8, codes("second", 3)).await,
            "activate_totp",
        ),
        false,
        "a second activate_totp",
    );
    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        10,
        "backup codes after a refused activate_totp",
    );
    check(
        expect(
            store
                .backup_code_hash(&user, &codes("first", 10)[0].lookup)
                .await,
            "backup_code_hash",
        )
        .is_some(),
        true,
        "the first set is still the stored one",
    );
}

async fn backup_codes<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("backup-codes");
    let other = ids.user("backup-codes-other");

    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        0,
        "remaining_backup_codes of a new user",
    );
    expect(
        store.replace_backup_codes(&user, codes("a", 10)).await,
        "replace_backup_codes",
    );
    expect(
        store.replace_backup_codes(&other, codes("a", 3)).await,
        "replace_backup_codes",
    );
    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        10,
        "remaining_backup_codes after storing 10",
    );
    check(
        expect(store.backup_code_hash(&user, "a-lookup-3").await, "hash"),
        Some("a-hash-3".to_owned()),
        "backup_code_hash of a stored code",
    );
    check(
        expect(store.backup_code_hash(&user, "a-lookup-99").await, "hash"),
        None,
        "backup_code_hash of an unknown lookup",
    );
    check(
        expect(
            store.consume_backup_code(&user, "a-lookup-3").await,
            "consume",
        ),
        true,
        "consume_backup_code of a stored code",
    );
    check(
        expect(
            store.consume_backup_code(&user, "a-lookup-3").await,
            "consume",
        ),
        false,
        "consume_backup_code of a used code",
    );
    check(
        expect(
            store.consume_backup_code(&user, "a-lookup-99").await,
            "consume",
        ),
        false,
        "consume_backup_code of an unknown lookup",
    );
    check(
        expect(store.backup_code_hash(&user, "a-lookup-3").await, "hash"),
        None,
        "backup_code_hash of a used code",
    );
    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        9,
        "remaining_backup_codes after one use",
    );
    check(
        expect(store.remaining_backup_codes(&other).await, "remaining"),
        3,
        "another user's codes are untouched",
    );

    expect(
        store.replace_backup_codes(&user, codes("b", 5)).await,
        "replace_backup_codes",
    );
    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        5,
        "remaining_backup_codes after regeneration",
    );
    check(
        expect(store.backup_code_hash(&user, "a-lookup-4").await, "hash"),
        None,
        "backup_code_hash of a code from the replaced set",
    );
    check(
        expect(
            store.consume_backup_code(&user, "a-lookup-4").await,
            "consume",
        ),
        false,
        "consume_backup_code of a code from the replaced set",
    );
    check(
        expect(store.backup_code_hash(&user, "b-lookup-4").await, "hash"),
        Some("b-hash-4".to_owned()),
        "backup_code_hash of a code from the new set",
    );
    check(
        expect(store.backup_code_hash(&other, "a-lookup-1").await, "hash"),
        Some("a-hash-1".to_owned()),
        "regeneration leaves another user's codes alone",
    );

    expect(
        store.replace_backup_codes(&user, Vec::new()).await,
        "replace_backup_codes",
    );
    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        0,
        "remaining_backup_codes after replacing with an empty set",
    );
}

async fn concurrent_consume_backup_code<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-consume");
    expect(
        store.replace_backup_codes(&user, codes("c", 10)).await,
        "replace_backup_codes",
    );
    let results = race(store, |store, _| {
        let user = user.clone();
        async move {
            expect(
                store.consume_backup_code(&user, "c-lookup-7").await,
                "consume_backup_code",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent consume_backup_code of one code: number of winners",
    );
    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        9,
        "remaining_backup_codes after concurrent consumption",
    );
}

async fn delete_factors<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("delete-factors");
    let other = ids.user("delete-factors-other");
    for someone in [&user, &other] {
        expect(
            store.put_pending_totp(someone, pending("sealed")).await,
            "put_pending_totp",
        );
        expect(
            store.activate_totp(someone, 3, Vec::new()).await,
            "activate_totp",
        );
        expect(
            store.replace_backup_codes(someone, codes("d", 4)).await,
            "replace_backup_codes",
        );
    }
    expect(store.delete_factors(&user).await, "delete_factors");
    check(
        expect(store.totp(&user).await, "totp"),
        None,
        "the TOTP enrollment after delete_factors",
    );
    check(
        expect(store.remaining_backup_codes(&user).await, "remaining"),
        0,
        "backup codes after delete_factors",
    );
    check(
        expect(store.backup_code_hash(&user, "d-lookup-0").await, "hash"),
        None,
        "backup_code_hash after delete_factors",
    );
    check(
        expect(store.totp(&other).await, "totp").map(|record| record.active),
        Some(true),
        "delete_factors leaves another user's enrollment alone",
    );
    check(
        expect(store.remaining_backup_codes(&other).await, "remaining"),
        4,
        "delete_factors leaves another user's codes alone",
    );
    expect(
        store.delete_factors(&ids.user("delete-factors-none")).await,
        "delete_factors of a user without factors",
    );
}

const MINUTE: Duration = Duration::from_secs(60);

async fn ephemeral_basics<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("basics");
    check(
        expect(store.get(&key).await, "get"),
        None,
        "get of an absent key",
    );
    check(
        expect(store.take(&key).await, "take"),
        None,
        "take of an absent key",
    );
    check(
        expect(
            store.insert_if_absent(&key, b"first", MINUTE).await,
            "insert",
        ),
        true,
        "insert_if_absent of an absent key",
    );
    check(
        expect(
            store.insert_if_absent(&key, b"second", MINUTE).await,
            "insert",
        ),
        false,
        "insert_if_absent of a live key",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"first".to_vec()),
        "get keeps the first value",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"first".to_vec()),
        "get does not consume",
    );
    check(
        expect(store.take(&key).await, "take"),
        Some(b"first".to_vec()),
        "take of a live key",
    );
    check(
        expect(store.take(&key).await, "take"),
        None,
        "take of a taken key",
    );
    check(
        expect(store.get(&key).await, "get"),
        None,
        "get of a taken key",
    );
    check(
        expect(
            store.insert_if_absent(&key, b"third", MINUTE).await,
            "insert",
        ),
        true,
        "insert_if_absent after take",
    );
    expect(store.remove(&key).await, "remove");
    check(
        expect(store.get(&key).await, "get"),
        None,
        "get of a removed key",
    );
    expect(store.remove(&key).await, "remove of an absent key");

    let binary = ids.key("binary");
    let value: Vec<u8> = (0..=255).collect();
    expect(
        store.insert_if_absent(&binary, &value, MINUTE).await,
        "insert",
    );
    check(
        expect(store.take(&binary).await, "take"),
        Some(value),
        "a binary value round-trips",
    );
}

async fn concurrent_take<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("concurrent-take");
    expect(
        store.insert_if_absent(&key, b"once", MINUTE).await,
        "insert_if_absent",
    );
    let results = race(store, |store, _| {
        let key = key.clone();
        async move { expect(store.take(&key).await, "take") }
    })
    .await;
    let taken: Vec<_> = results.into_iter().flatten().collect();
    check(
        taken,
        vec![b"once".to_vec()],
        "concurrent take of one key: the values handed out",
    );
}

async fn concurrent_insert_if_absent<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("concurrent-insert");
    let results = race(store, |store, index| {
        let key = key.clone();
        async move {
            let value = index.to_string();
            expect(
                store.insert_if_absent(&key, value.as_bytes(), MINUTE).await,
                "insert_if_absent",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent insert_if_absent: number of winners",
    );
    let winner = results.iter().position(|won| *won).unwrap_or(0);
    check(
        expect(store.get(&key).await, "get"),
        Some(winner.to_string().into_bytes()),
        "the value after concurrent insert_if_absent is the winner's",
    );
}

async fn ephemeral_expiry<S: EphemeralStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let key = ids.key("expiry");
    let taken = ids.key("expiry-take");
    expect(store.insert_if_absent(&key, b"v1", MINUTE).await, "insert");
    expect(store.insert_if_absent(&taken, b"t", MINUTE).await, "insert");

    clock.advance(Duration::from_secs(59));
    check(
        expect(store.get(&key).await, "get"),
        Some(b"v1".to_vec()),
        "get one second before expiry",
    );
    check(
        expect(store.insert_if_absent(&key, b"v2", MINUTE).await, "insert"),
        false,
        "insert_if_absent one second before expiry",
    );

    clock.advance(Duration::from_secs(1));
    check(
        expect(store.get(&key).await, "get"),
        None,
        "get at the expiry (by the store's clock)",
    );
    check(
        expect(store.take(&taken).await, "take"),
        None,
        "take at the expiry (by the store's clock)",
    );
    check(
        expect(store.insert_if_absent(&key, b"v2", MINUTE).await, "insert"),
        true,
        "insert_if_absent over an expired entry",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"v2".to_vec()),
        "get of the entry replacing an expired one",
    );
    clock.advance(Duration::from_secs(30));
    check(
        expect(store.take(&key).await, "take"),
        Some(b"v2".to_vec()),
        "the replacing entry lives its own TTL",
    );

    let long = ids.key("expiry-long");
    expect(
        store
            .insert_if_absent(&long, b"l", Duration::from_secs(3600))
            .await,
        "insert",
    );
    clock.advance(Duration::from_secs(3599));
    check(
        expect(store.get(&long).await, "get"),
        Some(b"l".to_vec()),
        "get just before an hour-long TTL ends",
    );
    clock.advance(Duration::from_secs(2));
    check(
        expect(store.get(&long).await, "get"),
        None,
        "get after an hour-long TTL ended",
    );
}

async fn increment_counts<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("increment");
    let other = ids.key("increment-other");
    for expected in 1..=3 {
        check(
            expect(store.increment(&key, MINUTE).await, "increment"),
            expected,
            "increment counts up from 1",
        );
    }
    check(
        expect(store.increment(&other, MINUTE).await, "increment"),
        1,
        "another counter starts at 1",
    );
    expect(store.remove(&key).await, "remove");
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "increment after remove starts at 1",
    );
}

async fn concurrent_increment<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("concurrent-increment");
    let results = race(store, |store, _| {
        let key = key.clone();
        async move { expect(store.increment(&key, MINUTE).await, "increment") }
    })
    .await;
    let mut counts = results;
    counts.sort_unstable();
    let expected: Vec<u64> = (1..=100).collect();
    check(
        counts,
        expected,
        "concurrent increment: the counts handed out (sorted)",
    );
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        101,
        "increment after 100 concurrent ones",
    );
}

async fn increment_window<S: EphemeralStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let key = ids.key("increment-window");
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "first increment",
    );
    clock.advance(Duration::from_secs(30));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        2,
        "increment within the window",
    );
    clock.advance(Duration::from_secs(29));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        3,
        "increment in the window's last second",
    );
    clock.advance(Duration::from_secs(1));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "increment once the window ended (later increments kept the first expiry)",
    );
    clock.advance(Duration::from_secs(59));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        2,
        "increment within the new window",
    );
    clock.advance(Duration::from_secs(1));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "increment once the new window ended",
    );
}

/// A device of `user` remembered at `now` for a day.
fn device(ids: &Ids, check: &str, name: &str, user: &str, now: u64) -> DeviceRecord {
    DeviceRecord {
        id: ids.id(check, name),
        user: user.to_owned(),
        token_hash: ids.id(check, &format!("{name}-token")),
        created_at: now,
        last_used_at: now,
        expires_at: now + 86_400,
        mfa_at: now.saturating_sub(5),
        address: Some("192.0.2.1".to_owned()),
        user_agent: Some("conformance/1.0".to_owned()),
    }
}

fn device_ids(devices: &[DeviceRecord]) -> Vec<&str> {
    devices.iter().map(|device| device.id.as_str()).collect()
}

async fn device_lifecycle<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-lifecycle";
    let user = ids.user(check_name);
    let now = clock.unix_seconds();
    let phone = device(ids, check_name, "phone", &user, now);

    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        None,
        "device_by_token before the device is stored",
    );
    expect(store.insert_device(phone.clone()).await, "insert_device");
    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        Some(phone.clone()),
        "device_by_token of a stored device (as stored)",
    );
    check(
        expect(
            store
                .device_by_token(&ids.id(check_name, "unknown-token"))
                .await,
            "device_by_token",
        ),
        None,
        "device_by_token of an unknown token hash",
    );
    check(
        expect(store.device_by_token(&phone.id).await, "device_by_token"),
        None,
        "device_by_token of a device id (not a token hash)",
    );

    // A taken id or token hash is refused and leaves the stored device alone.
    check(
        store
            .insert_device(DeviceRecord {
                token_hash: ids.id(check_name, "fresh-token"),
                user: ids.user("device-lifecycle-thief"),
                ..phone.clone()
            })
            .await
            .is_err(),
        true,
        "insert_device with a taken id fails",
    );
    check(
        store
            .insert_device(DeviceRecord {
                id: ids.id(check_name, "fresh-id"),
                user: ids.user("device-lifecycle-thief"),
                ..phone.clone()
            })
            .await
            .is_err(),
        true,
        "insert_device with a taken token hash fails",
    );
    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        Some(phone.clone()),
        "the device after refused inserts",
    );
    check(
        expect(
            store
                .device_by_token(&ids.id(check_name, "fresh-token"))
                .await,
            "device_by_token",
        ),
        None,
        "a refused insert stores nothing",
    );

    check(
        expect(
            store
                .touch_device(&phone.id, now + 10, Some("198.51.100.7"), Some("agent/2"))
                .await,
            "touch_device",
        ),
        true,
        "touch_device of a live device",
    );
    let touched = DeviceRecord {
        last_used_at: now + 10,
        address: Some("198.51.100.7".to_owned()),
        user_agent: Some("agent/2".to_owned()),
        ..phone.clone()
    };
    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        Some(touched.clone()),
        "the device after touch_device (only last use, address and user agent changed)",
    );
    check(
        expect(
            store.touch_device(&phone.id, now + 20, None, None).await,
            "touch_device",
        ),
        true,
        "touch_device without address or user agent",
    );
    check(
        expect(
            store.device_by_token(&phone.token_hash).await,
            "device_by_token",
        ),
        Some(DeviceRecord {
            last_used_at: now + 20,
            address: None,
            user_agent: None,
            ..phone.clone()
        }),
        "touch_device with None clears address and user agent",
    );
    check(
        expect(
            store
                .touch_device(&ids.id(check_name, "unknown"), now, None, None)
                .await,
            "touch_device",
        ),
        false,
        "touch_device of an unknown id",
    );
}

async fn device_listing<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-listing";
    let user = ids.user(check_name);
    let other = ids.user("device-listing-other");
    let now = clock.unix_seconds();

    check(
        expect(store.devices(&user).await, "devices"),
        Vec::new(),
        "devices of a user without any",
    );
    // Inserted in an order matching neither the expected listing nor its reverse.
    for (name, last_used) in [("b", now + 30), ("a", now + 10), ("c", now + 20)] {
        expect(
            store
                .insert_device(DeviceRecord {
                    last_used_at: last_used,
                    ..device(ids, check_name, name, &user, now)
                })
                .await,
            "insert_device",
        );
    }
    expect(
        store
            .insert_device(device(ids, check_name, "elsewhere", &other, now + 40))
            .await,
        "insert_device",
    );
    let listed = expect(store.devices(&user).await, "devices");
    check(
        device_ids(&listed),
        vec![
            ids.id(check_name, "b").as_str(),
            ids.id(check_name, "c").as_str(),
            ids.id(check_name, "a").as_str(),
        ],
        "devices: only the user's, most recently used first",
    );
    check(
        listed.iter().all(|device| device.user == user),
        true,
        "devices lists only the user's devices",
    );

    expect(
        store
            .touch_device(&ids.id(check_name, "a"), now + 50, None, None)
            .await,
        "touch_device",
    );
    check(
        device_ids(&expect(store.devices(&user).await, "devices")),
        vec![
            ids.id(check_name, "a").as_str(),
            ids.id(check_name, "b").as_str(),
            ids.id(check_name, "c").as_str(),
        ],
        "devices after touching the least recently used one",
    );
    check(
        device_ids(&expect(store.devices(&other).await, "devices")),
        vec![ids.id(check_name, "elsewhere").as_str()],
        "devices of another user",
    );
}

async fn device_revocation<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-revocation";
    let user = ids.user(check_name);
    let other = ids.user("device-revocation-other");
    let now = clock.unix_seconds();
    for name in ["a", "b", "c"] {
        expect(
            store
                .insert_device(device(ids, check_name, name, &user, now))
                .await,
            "insert_device",
        );
    }
    let others = device(ids, check_name, "others", &other, now);
    expect(store.insert_device(others.clone()).await, "insert_device");

    check(
        expect(
            store.delete_device(&user, &others.id).await,
            "delete_device",
        ),
        false,
        "delete_device of another user's device",
    );
    check(
        expect(
            store.device_by_token(&others.token_hash).await,
            "device_by_token",
        ),
        Some(others.clone()),
        "another user's device after a refused delete_device",
    );
    let a = device(ids, check_name, "a", &user, now);
    check(
        expect(store.delete_device(&user, &a.id).await, "delete_device"),
        true,
        "delete_device of the user's device",
    );
    check(
        expect(store.delete_device(&user, &a.id).await, "delete_device"),
        false,
        "delete_device of a revoked device",
    );
    check(
        expect(
            store.device_by_token(&a.token_hash).await,
            "device_by_token",
        ),
        None,
        "device_by_token of a revoked device",
    );
    check(
        expect(
            store.touch_device(&a.id, now + 1, None, None).await,
            "touch_device",
        ),
        false,
        "touch_device of a revoked device",
    );
    check(
        expect(store.devices(&user).await, "devices").len(),
        2,
        "devices after one revocation",
    );

    check(
        expect(store.delete_devices(&user).await, "delete_devices"),
        2,
        "delete_devices counts the user's devices",
    );
    check(
        expect(store.devices(&user).await, "devices"),
        Vec::new(),
        "devices after delete_devices",
    );
    check(
        expect(store.delete_devices(&user).await, "delete_devices"),
        0,
        "delete_devices of a user without any",
    );
    check(
        expect(store.devices(&other).await, "devices"),
        vec![others],
        "delete_devices leaves another user's devices alone",
    );
}

async fn device_expiry<S: DeviceStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let check_name = "device-expiry";
    let user = ids.user(check_name);
    let now = clock.unix_seconds();
    let short = DeviceRecord {
        expires_at: now + 60,
        ..device(ids, check_name, "short", &user, now)
    };
    let long = device(ids, check_name, "long", &user, now);
    expect(store.insert_device(short.clone()).await, "insert_device");
    expect(store.insert_device(long.clone()).await, "insert_device");

    clock.advance(Duration::from_secs(59));
    check(
        expect(
            store.device_by_token(&short.token_hash).await,
            "device_by_token",
        ),
        Some(short.clone()),
        "device_by_token one second before expiry",
    );
    check(
        expect(
            store.touch_device(&short.id, now + 59, None, None).await,
            "touch_device",
        ),
        true,
        "touch_device one second before expiry",
    );
    check(
        expect(store.devices(&user).await, "devices").len(),
        2,
        "devices one second before expiry",
    );

    clock.advance(Duration::from_secs(1));
    check(
        expect(
            store.device_by_token(&short.token_hash).await,
            "device_by_token",
        ),
        None,
        "device_by_token at the expiry (by the store's clock)",
    );
    check(
        device_ids(&expect(store.devices(&user).await, "devices")),
        vec![long.id.as_str()],
        "devices at the expiry lists only the live device",
    );
    check(
        expect(
            store.touch_device(&short.id, now + 60, None, None).await,
            "touch_device",
        ),
        false,
        "touch_device of an expired device",
    );
    check(
        expect(store.delete_device(&user, &short.id).await, "delete_device"),
        false,
        "delete_device of an expired device (absent)",
    );
    check(
        expect(
            store.device_by_token(&long.token_hash).await,
            "device_by_token",
        ),
        Some(long),
        "the live device is untouched by the expiry of another",
    );
    check(
        expect(store.delete_devices(&user).await, "delete_devices"),
        1,
        "delete_devices counts only live devices",
    );
}

/// The names of events made by [`event`], in order.
fn names(events: &[AuditRecord]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.kind.trim_start_matches("kind-"))
        .collect()
}

fn event(ids: &Ids, name: &str, user: &str, at: u64) -> AuditRecord {
    AuditRecord {
        id: ids.id("audit", name),
        user: user.to_owned(),
        kind: format!("kind-{name}"),
        at,
        detail: format!("{{\"name\":\"{name}\"}}"),
    }
}

async fn audit_order<S: AuditStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("audit-order");
    let other = ids.user("audit-order-other");
    check(
        expect(store.audit_events(&user, 10).await, "audit_events"),
        Vec::new(),
        "audit_events of a user without any",
    );
    // Appended out of time order, with a tie at 200, interleaved with another user's events.
    let appended = [
        event(ids, "e0", &user, 100),
        event(ids, "e1", &user, 300),
        event(ids, "x0", &other, 250),
        event(ids, "e2", &user, 200),
        event(ids, "e3", &user, 200),
        event(ids, "x1", &other, 50),
        event(ids, "e4", &user, 400),
    ];
    for record in &appended {
        expect(store.append_audit(record.clone()).await, "append_audit");
    }

    let all = expect(store.audit_events(&user, 10).await, "audit_events");
    check(
        all.first().cloned(),
        Some(appended[0].clone()),
        "an audit event as appended",
    );
    check(
        names(&all),
        vec!["e0", "e2", "e3", "e1", "e4"],
        "audit_events: oldest first, ties in the order appended",
    );
    check(
        names(&expect(store.audit_events(&user, 3).await, "audit_events")),
        vec!["e3", "e1", "e4"],
        "audit_events with a limit keeps the most recent ones",
    );
    check(
        names(&expect(store.audit_events(&user, 4).await, "audit_events")),
        vec!["e2", "e3", "e1", "e4"],
        "audit_events with a limit keeps the most recent ones (splitting no tie)",
    );
    check(
        expect(store.audit_events(&user, 0).await, "audit_events"),
        Vec::new(),
        "audit_events with limit 0",
    );
    check(
        names(&expect(
            store.audit_events(&other, usize::MAX).await,
            "audit_events",
        )),
        vec!["x1", "x0"],
        "audit_events of another user (users isolated)",
    );

    // A retried append is stored once.
    expect(
        store.append_audit(appended[0].clone()).await,
        "append_audit of a stored id",
    );
    check(
        names(&expect(store.audit_events(&user, 10).await, "audit_events")),
        vec!["e0", "e2", "e3", "e1", "e4"],
        "audit_events after appending an id again",
    );
}

async fn concurrent_append_audit<S: AuditStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-audit");
    race(store, |store, index| {
        let record = event(ids, &format!("race-{index}"), &user, 1_800_000_000);
        async move { expect(store.append_audit(record).await, "append_audit") }
    })
    .await;
    let stored = expect(store.audit_events(&user, 1000).await, "audit_events");
    check(
        stored.len(),
        RACERS,
        "concurrent append_audit: events stored",
    );
    let mut unique: Vec<&str> = stored.iter().map(|event| event.id.as_str()).collect();
    unique.sort_unstable();
    unique.dedup();
    check(
        unique.len(),
        RACERS,
        "concurrent append_audit: distinct events stored",
    );
}
