//! What the integration tests of every stepup crate share: the servers they run on, read from
//! the environment, fresh names for a test's own PostgreSQL schema or Redis key prefix, the codes
//! in the texts and mails the product sends, and (feature `http`) [`Answer`], the JSON answer of
//! a route.
//!
//! A test that cannot run here (no `DATABASE_URL`, no `REDIS_URL`, no browser) prints why and
//! passes, except on CI (`CI=true`), where it fails: CI runs everything, it never skips.
//!
//! ```
//! // Outside CI, without the variable: `None`, and the reason printed.
//! # if !stepup_test_env::on_ci() {
//! assert_eq!(stepup_test_env::env_or_skip("STEPUP_TEST_ENV_UNSET"), None);
//! # }
//! assert_ne!(stepup_test_env::random_hex(), stepup_test_env::random_hex());
//! ```

#[cfg(feature = "http")]
mod answer;
mod messages;

#[cfg(feature = "http")]
pub use answer::Answer;
pub use messages::{code_in, recovery_code_in};

use std::collections::hash_map::RandomState;
use std::fmt::Display;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether this run is CI's (`CI=true`), where nothing may be skipped.
pub fn on_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Skips a test that cannot run here: prints `skipping: {reason}`.
///
/// # Panics
///
/// On CI (`CI=true`): CI must run every test, never skip one.
pub fn skip(reason: impl Display) {
    assert!(!on_ci(), "{reason}: CI must run every test, never skip one");
    eprintln!("skipping: {reason}");
}

/// The environment variable `name`, or `None` when it is unset or empty (and the test skipped:
/// see [`skip`]).
///
/// # Panics
///
/// When the variable is missing on CI (`CI=true`).
pub fn env_or_skip(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            skip(format_args!("{name} is not set"));
            None
        }
    }
}

/// The PostgreSQL server to test against (`DATABASE_URL`); see [`env_or_skip`].
pub fn database_url() -> Option<String> {
    env_or_skip("DATABASE_URL")
}

/// The Redis server to test against (`REDIS_URL`); see [`env_or_skip`].
pub fn redis_url() -> Option<String> {
    env_or_skip("REDIS_URL")
}

/// 64 random bits in hex, for a test's own schema name or key prefix: the process's random
/// hasher keys over the time, the process id and a counter, so that parallel tests and parallel
/// runs of the suite never meet.
pub fn random_hex() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let bits = RandomState::new().hash_one((nanos, std::process::id(), call));
    format!("{bits:016x}")
}
