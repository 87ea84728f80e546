//! Measures the Redis memory a pending challenge costs: 10,000 values of 200 bytes under keys
//! shaped like the engine's (`mfa_token:` and 64 hex digits), `used_memory` before and after.
//!
//! A measurement, printed (`--nocapture`); it only asserts a generous bound. Alone in its test
//! binary, so no other test of this crate writes meanwhile.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use stepup_core::clock::SystemClock;
use stepup_store::EphemeralStore;
use support::{TestPrefix, random_hex};

const ENTRIES: usize = 10_000;
const VALUE_BYTES: usize = 200;
const TASKS: usize = 16;

async fn used_memory(raw: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(raw)
        .await
        .expect("INFO memory");
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("INFO memory reports used_memory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bytes_per_pending_challenge() {
    let Some(prefix) = TestPrefix::new() else {
        return;
    };
    let store = Arc::new(prefix.store(Arc::new(SystemClock)).await);
    let mut raw = prefix.raw().await;
    let keys: Vec<String> = (0..ENTRIES)
        .map(|_| format!("mfa_token:{}", random_hex().repeat(4)))
        .collect();
    let value: Vec<u8> = (0..VALUE_BYTES).map(|byte| (byte % 251) as u8).collect();

    let before = used_memory(&mut raw).await;
    let started = Instant::now();
    let keys = Arc::new(keys);
    let value = Arc::new(value);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, keys, value) = (Arc::clone(&store), Arc::clone(&keys), Arc::clone(&value));
            tokio::spawn(async move {
                for key in keys.iter().skip(task).step_by(TASKS) {
                    let inserted = store
                        .insert_if_absent(key, &value, Duration::from_secs(300))
                        .await
                        .expect("insert");
                    assert!(inserted);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("an inserting task");
    }
    let elapsed = started.elapsed();
    let after = used_memory(&mut raw).await;

    let per_entry = (after - before) as f64 / ENTRIES as f64;
    let key_bytes = prefix.prefix().len() + "v:".len() + keys[0].len();
    println!(
        "{ENTRIES} pending challenges of {VALUE_BYTES} bytes (Redis keys of {key_bytes} bytes, \
         stored values of {} bytes): used_memory {before} -> {after}, {per_entry:.0} bytes per \
         challenge; inserted in {elapsed:?}",
        VALUE_BYTES + 11
    );
    assert!(per_entry < 2048.0, "{per_entry} bytes per challenge");

    prefix.clean_up().await;
    println!(
        "used_memory after clean-up: {}",
        used_memory(&mut raw).await
    );
}
