//! Memory under a registration flood: 200 passwords hashed at once through one `KdfPool` (as
//! many slots as cores, the 5-second queue: the demo's pool), five sign-ins checked during the
//! flood, and the process's peak resident size (`VmHWM`) against the target of 200 MB.
//!
//! The figures are the kernel's (`VmRSS`, `VmHWM` in `/proc/self/status`), for the whole process:
//! the runtime, the pool's slots and whatever the allocator keeps. `STEPUP_KDF_FLOOD=per-hash`
//! runs the same flood the way the demo hashed before the pool owned its memory (argon2 with its
//! own allocation inside `KdfPool::run`, sign-ins queued behind the flood), for comparison; run it
//! in its own process, since the peak is the process's.
//!
//! Then the ten backup codes of an enrollment: hashed across the pool (`hash_many`) against one
//! after another, and a whole TOTP enrollment confirmation through the engine (`MemoryStore`),
//! which hashes them.
//!
//! `cargo bench --bench kdf_flood` (full: 200 registrations, asserts the target); without
//! `--bench` (`cargo test --benches`) a flood of 20 checks that it runs, and nothing is asserted.
//! Linux only (reads `/proc`).
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde_json::json;
use stepup::clock::ManualClock;
use stepup::mfa::ClientInfo;
use stepup::mfa::kdf::KdfPool;
use stepup::mfa::totp::TotpKey;
use stepup::mfa::totp::{Totp, TotpAlgorithm};
use stepup::{Keyring, MemoryStore, Mfa, Stores};

/// Concurrent registrations of a full run.
const REGISTRATIONS: usize = 200;
/// Of a quick check (`cargo test --benches`).
const QUICK_REGISTRATIONS: usize = 20;
/// Sign-ins during the flood, one every [`LOGIN_EVERY`].
const LOGINS: usize = 5;
const LOGIN_EVERY: Duration = Duration::from_millis(150);
/// The target for the peak resident size.
const BUDGET_MB: f64 = 200.0;

/// `VmRSS` and `VmHWM` (the peak) of this process, in MiB.
fn resident_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    let field = |name: &str| -> f64 {
        let kilobytes: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"));
        kilobytes as f64 / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Through the pool's own memory (`hash`, `verify`).
    Pool,
    /// argon2 allocating its own memory inside `KdfPool::run`: the demo before.
    PerHash,
}

async fn register(pool: &KdfPool, mode: Mode, password: String) -> bool {
    match mode {
        Mode::Pool => pool.hash(password.as_bytes()).await.is_ok(),
        Mode::PerHash => pool
            .run(move || Argon2::default().hash_password(password.as_bytes()).is_ok())
            .await
            .unwrap_or(false),
    }
}

async fn sign_in(pool: &KdfPool, mode: Mode, password: &'static str, stored: &str) -> bool {
    match mode {
        Mode::Pool => pool.verify(password.as_bytes(), stored).await == Ok(true),
        Mode::PerHash => {
            let stored = stored.to_owned();
            pool.run(move || {
                Argon2::default()
                    .verify_password(password.as_bytes(), stored.as_str())
                    .is_ok()
            })
            .await
            .unwrap_or(false)
        }
    }
}

async fn flood(mode: Mode, registrations: usize) -> (f64, f64, f64, f64) {
    let pool = KdfPool::default();
    let stored = pool.hash(b"the owner's password").await.unwrap();
    let (before, _) = resident_mb();
    let started = Instant::now();
    let mut flood = tokio::task::JoinSet::new();
    for index in 0..registrations {
        let pool = pool.clone();
        flood.spawn(async move { register(&pool, mode, format!("password number {index}")).await });
    }
    let mut logins = tokio::task::JoinSet::new();
    for index in 0..LOGINS {
        let pool = pool.clone();
        let stored = stored.clone();
        logins.spawn(async move {
            tokio::time::sleep(LOGIN_EVERY * (index as u32 + 1)).await;
            let asked = Instant::now();
            let signed_in = sign_in(&pool, mode, "the owner's password", &stored).await;
            (signed_in, asked.elapsed())
        });
    }
    let (mut registered, mut busy) = (0, 0);
    while let Some(done) = flood.join_next().await {
        if done.unwrap() {
            registered += 1;
        } else {
            busy += 1;
        }
    }
    let flood_took = started.elapsed();
    let mut login_times = Vec::new();
    while let Some(done) = logins.join_next().await {
        let (signed_in, took) = done.unwrap();
        assert!(signed_in, "a sign-in during the flood failed");
        login_times.push(took);
    }
    login_times.sort();
    let (after, peak) = resident_mb();
    let label = match mode {
        Mode::Pool => "pool memory",
        Mode::PerHash => "per-hash allocation",
    };
    println!(
        "kdf_flood ({label}): {registrations} concurrent registrations on {} slots in {:.2} s \
         ({registered} hashed, {busy} busy); {LOGINS} sign-ins during the flood took {:.0} to \
         {:.0} ms; resident {before:.1} MB before, peak {peak:.1} MB, {after:.1} MB after \
         (target < {BUDGET_MB} MB); at most {} evaluations at once",
        pool.slots(),
        flood_took.as_secs_f64(),
        login_times[0].as_secs_f64() * 1000.0,
        login_times[login_times.len() - 1].as_secs_f64() * 1000.0,
        pool.peak_in_use(),
    );
    (
        before,
        peak,
        after,
        login_times[login_times.len() - 1].as_secs_f64(),
    )
}

/// The ten backup codes of an enrollment: across the pool, then one after another.
async fn enrollment_codes() {
    let pool = KdfPool::default();
    let codes: Vec<String> = (0..10).map(|index| format!("ABCDE{index:05}")).collect();
    // Warm both slots.
    pool.hash_many(&codes[..2]).await.unwrap();
    let started = Instant::now();
    pool.hash_many(&codes).await.unwrap();
    let parallel = started.elapsed();
    let started = Instant::now();
    for code in &codes {
        pool.hash(code.as_bytes()).await.unwrap();
    }
    let sequential = started.elapsed();
    println!(
        "kdf_flood/enrollment_codes: ten backup codes hashed across {} slots in {:.0} ms; one \
         after another {:.0} ms",
        pool.slots(),
        parallel.as_secs_f64() * 1000.0,
        sequential.as_secs_f64() * 1000.0,
    );
}

/// A whole TOTP enrollment confirmation through the engine on `MemoryStore`: the code checked,
/// the factor activated with its ten backup codes, hashed across the engine's pool.
async fn confirm_enrollment(pool: &KdfPool) -> Duration {
    const T0: u64 = 1_800_000_000;
    const USER: &str = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b";
    let clock = ManualClock::at_unix(T0);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    let mfa = Mfa::new(
        Stores::shared(store),
        Keyring::new("k1", &[1; 32]).unwrap(),
        &[2; 32],
    )
    .unwrap()
    .with_clock(Arc::new(clock))
    .with_kdf_pool(pool.clone())
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
    let timer = Instant::now();
    let confirmed = mfa
        .finish_enrollment(USER, "totp", &json!({ "code": key.code_at(T0) }), &client)
        .await
        .unwrap();
    let took = timer.elapsed();
    assert_eq!(confirmed.backup_codes.len(), 10, "ten backup codes");
    took
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let registrations = if full {
        REGISTRATIONS
    } else {
        QUICK_REGISTRATIONS
    };
    let mode = match std::env::var("STEPUP_KDF_FLOOD").as_deref() {
        Ok("per-hash") => Mode::PerHash,
        _ => Mode::Pool,
    };
    // As the demo runs: a worker per core, blocking threads on demand.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_, peak, _, slowest_login) = runtime.block_on(flood(mode, registrations));
    if mode == Mode::Pool {
        runtime.block_on(enrollment_codes());
        // One pool, warm, as in a running server.
        let pool = KdfPool::default();
        runtime
            .block_on(pool.hash_many(&["warm", "both slots"]))
            .unwrap();
        let mut confirmations: Vec<Duration> = (0..5)
            .map(|_| runtime.block_on(confirm_enrollment(&pool)))
            .collect();
        confirmations.sort();
        println!(
            "kdf_flood/confirm_totp_enrollment: {:.0} ms median of 5 ({:.0} to {:.0} ms) on {} slots",
            confirmations[2].as_secs_f64() * 1000.0,
            confirmations[0].as_secs_f64() * 1000.0,
            confirmations[4].as_secs_f64() * 1000.0,
            pool.slots(),
        );
    }
    if full && mode == Mode::Pool {
        assert!(
            peak < BUDGET_MB,
            "peak resident size {peak:.1} MB exceeds {BUDGET_MB} MB"
        );
        assert!(
            slowest_login < 1.0,
            "a sign-in during the flood took {slowest_login:.2} s"
        );
    }
}
