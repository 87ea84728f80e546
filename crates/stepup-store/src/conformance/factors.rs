//! The conformance suite of [`FactorStore`]: enrollment rules (ids of `Many` kinds unique across
//! users), activation with its code set, listing order, lookup by credential id, the counter and
//! payload compare-and-sets, labels, disabled credentials, single-use codes with expiry by the
//! store's clock, failure streaks, each user's generation and its change feed, and per-user
//! deletion, with 100 tasks racing on each atomic call.

mod codes;
mod compare_and_set;
mod credentials;
mod disabling;
mod enrollment;
mod generations;
mod races;
mod state;

use std::sync::Arc;

use stepup_core::clock::ManualClock;

use super::{Ids, expect};
use crate::{CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus, FactorStore};

/// Runs every check of [`FactorStore`] on `store`, panicking with a description of the first
/// failure.
///
/// `store` must judge code expiry by `clock` (the suite moves it forward). The store may hold
/// other data, and the suite may run more than once on it. Run it on a multi-threaded tokio
/// runtime so the races are real.
pub async fn run<S: FactorStore>(store: Arc<S>, clock: ManualClock) {
    let ids = Ids::new();

    expect(store.ping().await, "ping");

    enrollment::one_per_user(&store, &ids).await;
    enrollment::one_per_user_generations(&store, &ids).await;
    enrollment::one_per_user_never_replaces_a_newer_generation(&store, &ids).await;
    enrollment::many(&store, &ids).await;
    enrollment::across_users(&store, &ids).await;
    enrollment::activation(&store, &ids).await;
    enrollment::activation_codes(&store, &ids).await;

    credentials::listing(&store, &ids).await;
    credentials::of_kind(&store, &ids).await;
    credentials::lookup_by_id(&store, &ids).await;
    credentials::generation_round_trip(&store, &ids).await;
    compare_and_set::advance_counter(&store, &ids).await;
    compare_and_set::replace_payload(&store, &ids).await;
    credentials::labels(&store, &ids).await;
    credentials::deletion(&store, &ids).await;
    disabling::disabling(&store, &ids).await;

    codes::code_sets(&store, &ids).await;
    codes::code_expiry(&store, &ids, &clock).await;

    state::failure_streaks(&store, &ids).await;
    generations::generations(&store, &ids).await;
    generations::generation_feed(&store, &ids).await;
    state::delete_user_factors(&store, &ids).await;

    races::concurrent_put_pending(&store, &ids).await;
    races::concurrent_put_pending_across_users(&store, &ids).await;
    races::concurrent_activate(&store, &ids).await;
    races::concurrent_advance_counter(&store, &ids).await;
    races::concurrent_replace_payload(&store, &ids).await;
    races::concurrent_consume_code(&store, &ids).await;
    races::concurrent_record_failure(&store, &ids).await;
    races::concurrent_disable(&store, &ids).await;
    races::concurrent_advance_generation(&store, &ids).await;
    races::concurrent_advance_generation_across_users(&store, &ids).await;

    expect(store.ping().await, "ping after the checks");
}

/// An authenticator app: one per user.
const TOTP: &str = "totp";
/// Passkeys: any number per user.
const PASSKEY: &str = "webauthn";
/// A phone receiving codes.
const PHONE: &str = "sms";
/// Backup codes.
const BACKUP: &str = "backup_code";
/// Codes sent by SMS.
const SMS_CODE: &str = "sms_code";

/// A `created_at` in the suite's credentials.
const T0: u64 = 1_800_000_000;

/// A pending credential as the engine would put it, with a payload naming it.
fn credential(user: &str, kind: &str, id: &str, created_at: u64) -> Credential {
    Credential {
        user: user.to_owned(),
        kind: kind.to_owned(),
        id: id.to_owned(),
        status: CredentialStatus::Pending,
        label: Some(format!("label {id}")),
        payload: format!("payload:{kind}:{id}"),
        counter: 0,
        created_at,
        last_used_at: None,
        generation: 0,
    }
}

/// `credential` as activation leaves it: active with `counter`, everything else as stored
/// (activation's effect on `last_used_at` is not specified: see [`ignoring_last_use`]).
fn activated(credential: &Credential, counter: u64) -> Credential {
    Credential {
        status: CredentialStatus::Active,
        counter,
        ..credential.clone()
    }
}

/// The credential with `last_used_at` cleared, to compare what activation specifies.
fn ignoring_last_use(credential: Option<Credential>) -> Option<Credential> {
    credential.map(|credential| Credential {
        last_used_at: None,
        ..credential
    })
}

/// The lookup digest of code `index` of the set `prefix`.
fn lookup(prefix: &str, index: usize) -> String {
    format!("{prefix}-lookup-{index}")
}

/// The slow hash of code `index` of the set `prefix`.
fn hash(prefix: &str, index: usize) -> String {
    format!("{prefix}-hash-{index}")
}

/// `count` codes of the set `prefix`, expiring at `expires_at`.
fn codes(prefix: &str, count: usize, expires_at: Option<u64>) -> Vec<CodeHash> {
    (0..count)
        .map(|index| CodeHash {
            lookup: lookup(prefix, index),
            hash: hash(prefix, index),
            expires_at,
        })
        .collect()
}

/// A set of `count` never-expiring codes of `kind`.
fn code_set(kind: &str, prefix: &str, count: usize) -> CodeSet {
    CodeSet {
        kind: kind.to_owned(),
        codes: codes(prefix, count, None),
    }
}

/// The stored credential.
async fn stored<S: FactorStore>(store: &Arc<S>, key: CredentialRef<'_>) -> Option<Credential> {
    expect(store.credential(key).await, "credential")
}

/// The user's credentials, as `(kind, id)`, in the order listed.
async fn listed<S: FactorStore>(store: &Arc<S>, user: &str) -> Vec<(String, String)> {
    expect(store.credentials(user).await, "credentials")
        .into_iter()
        .map(|credential| (credential.kind, credential.id))
        .collect()
}

/// How many live codes of `kind` the user has.
async fn count<S: FactorStore>(store: &Arc<S>, user: &str, kind: &str) -> usize {
    expect(store.count_codes(user, kind).await, "count_codes")
}

/// The slow hash of a live code.
async fn hash_of<S: FactorStore>(
    store: &Arc<S>,
    user: &str,
    kind: &str,
    lookup: &str,
) -> Option<String> {
    expect(store.code_hash(user, kind, lookup).await, "code_hash")
}

/// `(kind, id)` pairs, for comparing listings.
fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(kind, id)| ((*kind).to_owned(), (*id).to_owned()))
        .collect()
}
