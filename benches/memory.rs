//! Memory at scale: one million pending challenges in a `MemoryStore`, made by the
//! engine itself (`Mfa::start_challenge`: the `mfa_token:` key and the ticket it stores), and the
//! process's resident size before and after.
//!
//! The size is the kernel's: `VmRSS` in `/proc/self/status` (no allocator hook; the workspace
//! forbids unsafe code). The figure covers everything a pending challenge costs the process:
//! the key, the ticket, moka's entry, its expiry timers and hash tables, and the allocator's
//! overhead. Before measuring, a sample of the challenges (every 10,000th) is read back from the
//! store, live: nothing was evicted or dropped.
//!
//! Bounded: [`CHALLENGES`] challenges (`STEPUP_MEMORY_CHALLENGES` overrides, at most 4 million),
//! in one thread. Fails if the projection to one million exceeds [`BUDGET_MB`]. Without `--bench`
//! (`cargo test --benches`) 20,000 challenges check that it runs, and nothing is asserted.
//! Linux only (reads `/proc`).
//!
//! `cargo bench --bench memory`; the figure goes to `docs/benchmarks.md`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use stepup::clock::ManualClock;
use stepup::mfa::ClientInfo;
use stepup::mfa::totp::TotpKey;
use stepup::mfa::totp::{Totp, TotpAlgorithm};
use stepup::store::EphemeralStore;
use stepup::{Keyring, MemoryStore, Mfa, Stores};
use stepup_core::tokens::digest;

const T0: u64 = 1_800_000_000;
/// Challenges of a full run.
const CHALLENGES: usize = 1_000_000;
/// The most `STEPUP_MEMORY_CHALLENGES` may ask for.
const MAX_CHALLENGES: usize = 4_000_000;
/// Challenges of a quick check (`cargo test --benches`).
const QUICK_CHALLENGES: usize = 20_000;
/// The target for one million pending challenges.
const BUDGET_MB: f64 = 300.0;
/// Every this many challenges, one is kept and read back at the end.
const SAMPLE_EVERY: usize = 10_000;
/// A user id shaped like the demo's (a UUID).
const USER: &str = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b";

/// The resident set size, in bytes (`VmRSS`).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    let kilobytes: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kilobytes * 1024
}

fn challenges_to_make(full: bool) -> usize {
    if !full {
        return QUICK_CHALLENGES;
    }
    std::env::var("STEPUP_MEMORY_CHALLENGES")
        .ok()
        .and_then(|value| value.parse().ok())
        .map_or(CHALLENGES, |count: usize| count.clamp(1, MAX_CHALLENGES))
}

async fn run(count: usize) -> (u64, u64, Duration) {
    let clock = ManualClock::at_unix(T0);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    let mfa = Mfa::new(
        Stores::shared(store.clone()),
        Keyring::new("k1", &[1; 32]).unwrap(),
        &[2; 32],
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_factor(Totp::default());
    let client = ClientInfo::default();
    let started = mfa
        .start_enrollment(USER, "totp", &json!({}), &client)
        .await
        .unwrap();
    let secret = totp_rs::Secret::try_from_base32(started["secret"].as_str().unwrap()).unwrap();
    let key = TotpKey::new(
        secret.as_bytes(),
        TotpAlgorithm::Sha1,
        6,
        30,
        1,
        "bench",
        "user",
    )
    .unwrap();
    mfa.finish_enrollment(USER, "totp", &json!({ "code": key.code_at(T0) }), &client)
        .await
        .unwrap();
    // Warm the allocator and the cache's structures before the baseline.
    for _ in 0..1_000 {
        mfa.start_challenge(USER, &["pwd"], None).await.unwrap();
    }

    let before = resident_bytes();
    let started = Instant::now();
    let mut sample = Vec::with_capacity(count / SAMPLE_EVERY + 1);
    for index in 0..count {
        let challenge = mfa.start_challenge(USER, &["pwd"], None).await.unwrap();
        if index % SAMPLE_EVERY == 0 {
            sample.push(challenge.mfa_token);
        }
    }
    let elapsed = started.elapsed();
    // Every sampled challenge is still pending.
    for mfa_token in &sample {
        let ticket = store
            .get(&format!("mfa_token:{}", digest(mfa_token)))
            .await
            .unwrap();
        assert!(ticket.is_some(), "a pending challenge is missing");
    }
    let after = resident_bytes();
    (before, after, elapsed)
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let count = challenges_to_make(full);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (before, after, elapsed) = runtime.block_on(run(count));
    let grown = after.saturating_sub(before);
    let per_challenge = grown as f64 / count as f64;
    let per_million_mb = per_challenge * 1_000_000.0 / (1024.0 * 1024.0);
    println!(
        "memory/pending_challenges: {count} challenges in {:.1} s; resident {:.1} MB -> {:.1} MB \
         (+{:.1} MB): {per_challenge:.0} bytes per challenge, {per_million_mb:.0} MB per million \
         (target < {BUDGET_MB} MB)",
        elapsed.as_secs_f64(),
        before as f64 / (1024.0 * 1024.0),
        after as f64 / (1024.0 * 1024.0),
        grown as f64 / (1024.0 * 1024.0),
    );
    if full {
        assert!(
            per_million_mb < BUDGET_MB,
            "{per_million_mb:.0} MB per million pending challenges exceeds {BUDGET_MB} MB"
        );
    }
}
