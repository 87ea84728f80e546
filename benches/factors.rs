//! Cost of the second factors: a TOTP check, one backup-code attempt, one WebAuthn assertion,
//! each also as the whole MFA step through the engine (the `mfa_token` looked up and counted, the
//! factor's check, the token taken), on memory and on PostgreSQL.
//!
//! `cargo bench --bench factors`; figures go to `docs/benchmarks.md`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use stepup::clock::{Clock, ManualClock};
use stepup::mfa::ClientInfo;
use stepup::mfa::backup::BackupCodes;
use stepup::mfa::totp::{Totp, TotpAlgorithm, TotpKey};
use stepup::{Keyring, MemoryStore, Mfa, Stores};

/// Enrolls TOTP for `user` through the engine; the key of the authenticator app.
async fn enroll_totp(mfa: &Mfa, user: &str) -> TotpKey {
    let client = ClientInfo::default();
    let started = mfa
        .start_enrollment(user, "totp", &json!({}), &client)
        .await
        .unwrap();
    let secret = totp_rs::Secret::try_from_base32(started["secret"].as_str().unwrap()).unwrap();
    let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "b", "u").unwrap();
    let code = key.code_at(mfa.clock().unix_seconds());
    mfa.finish_enrollment(user, "totp", &json!({ "code": code }), &client)
        .await
        .unwrap();
    key
}

/// An MFA step for `user`, started outside the measurement.
async fn mfa_token(mfa: &Mfa, user: &str) -> String {
    mfa.start_challenge(user, &["pwd"], None)
        .await
        .unwrap()
        .mfa_token
}

const T0: u64 = 1_800_000_000;

fn totp(c: &mut Criterion) {
    let secret = TotpKey::generate_secret();
    let key = TotpKey::new(&secret, TotpAlgorithm::Sha1, 6, 30, 1, "bench", "user").unwrap();
    let code = key.code_at(T0);
    // The window is searched newest step first: the next step's code is found first, a wrong
    // code only after all three steps.
    let late = key.code_at(T0 + 30);
    c.bench_function("totp/check_current_step", |b| {
        b.iter(|| key.matching_step(black_box(&code), T0).unwrap())
    });
    c.bench_function("totp/check_next_step", |b| {
        b.iter(|| key.matching_step(black_box(&late), T0).unwrap())
    });
    c.bench_function("totp/check_wrong_code", |b| {
        b.iter(|| key.matching_step(black_box("000000"), T0))
    });

    // The whole MFA step through the engine: the mfa_token looked up and its attempt counted,
    // the enrollment read, the sealed secret opened, the code checked, the step compare-and-set,
    // the token taken. Each iteration moves the clock one step so that the compare-and-set
    // succeeds; the mfa_token is made outside the measurement. The slow-hash pool waits with a
    // timeout, so the runtime needs its time driver.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = ManualClock::at_unix(T0);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    let mfa = Mfa::new(
        Stores::shared(store),
        Keyring::new("k1", &[1; 32]).unwrap(),
        &[2; 32],
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_factor(Totp::default());
    let key = runtime.block_on(enroll_totp(&mfa, "user"));
    totp_steps(
        c,
        "totp/mfa_step_memory_store",
        &runtime,
        &mfa,
        &clock,
        &key,
        "user",
    );
}

/// The MFA step with a fresh TOTP code, measured as `name`.
fn totp_steps(
    c: &mut Criterion,
    name: &str,
    runtime: &tokio::runtime::Runtime,
    mfa: &Mfa,
    clock: &ManualClock,
    key: &TotpKey,
    user: &str,
) {
    let client = ClientInfo::default();
    let mut now = clock.unix_seconds();
    c.bench_function(name, |b| {
        b.iter_batched(
            || loop {
                // A code equal to a neighbouring step's is rightly refused as already used (one
                // chance in a million per step); skip those steps.
                now += 30;
                let code = key.code_at(now);
                if code != key.code_at(now - 30) && code != key.code_at(now + 30) {
                    clock.set_unix(now);
                    break (runtime.block_on(mfa_token(mfa, user)), code);
                }
            },
            |(token, code)| {
                runtime
                    .block_on(mfa.finish_challenge(
                        &token,
                        "totp",
                        &json!({ "code": code }),
                        &client,
                    ))
                    .unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

fn backup_code(c: &mut Criterion) {
    let codes = BackupCodes::new(&[7; 32]).unwrap();
    let code = BackupCodes::normalise(&BackupCodes::generate()[0]).unwrap();
    let hash = BackupCodes::hash(&code).unwrap();
    let mut group = c.benchmark_group("backup_code");
    group.sample_size(20);
    group.bench_function("lookup_digest", |b| {
        b.iter(|| codes.lookup(black_box(&code)))
    });
    group.bench_function("one_attempt", |b| {
        b.iter(|| {
            let lookup = codes.lookup(black_box(&code));
            black_box(lookup);
            assert!(BackupCodes::verify(black_box(&code), &hash));
        })
    });
    group.finish();
}

/// One TOTP verification and one backup-code redemption through the engine on PostgreSQL
/// (`DATABASE_URL`; skipped without it): each is a few round trips, the compare-and-set or the
/// consume among them, in a private schema.
fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping the PostgreSQL benchmarks: DATABASE_URL is not set");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let clock = ManualClock::at_unix(T0);
    let schema = format!("stepup_bench_{}", std::process::id());
    let store = runtime
        .block_on(stepup_store_postgres::PostgresStore::open_in_schema(
            &url,
            &schema,
            Arc::new(clock.clone()),
        ))
        .unwrap();
    let mfa = Mfa::new(
        Stores::shared(store.clone()),
        Keyring::new("k1", &[1; 32]).unwrap(),
        &[2; 32],
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_factor(Totp::default());
    let user = format!("bench-{}", std::process::id());
    let key = runtime.block_on(enroll_totp(&mfa, &user));
    totp_steps(
        c,
        "totp/mfa_step_postgres",
        &runtime,
        &mfa,
        &clock,
        &key,
        &user,
    );

    // Each redemption gets the same one-code set written back first (not measured), so every
    // measured attempt is a success: lookup, one argon2id, the consume, the count.
    let codes = BackupCodes::new(&[2; 32]).unwrap();
    let code = BackupCodes::generate().remove(0);
    let normalised = BackupCodes::normalise(&code).unwrap();
    let set = stepup::store::CodeSet {
        // The user was never reset: the set of generation 0.
        kind: stepup::mfa::backup::KIND.to_owned(),
        codes: vec![stepup::store::CodeHash {
            lookup: codes.lookup(&normalised),
            hash: BackupCodes::hash(&normalised).unwrap(),
            expires_at: None,
        }],
    };
    let mut group = c.benchmark_group("backup_code");
    group.sample_size(20);
    let client = ClientInfo::default();
    group.bench_function("mfa_step_postgres", |b| {
        b.iter_batched(
            || {
                use stepup::store::FactorStore;
                runtime
                    .block_on(store.replace_codes(&user, set.clone()))
                    .unwrap();
                runtime.block_on(mfa_token(&mfa, &user))
            },
            |token| {
                let proof = json!({ "code": code });
                runtime
                    .block_on(mfa.finish_challenge(&token, "backup_code", &proof, &client))
                    .unwrap()
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
    runtime.block_on(async {
        // The schema name is made above from the process id: nothing outside reaches it.
        let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
        let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(store.pool())
            .await;
    });
}

/// One WebAuthn assertion (ES256, a soft passkey with user verification) completing an MFA
/// step through the engine on `MemoryStore`: take the ceremony, verify the signature and the
/// client data, compare-and-set the counter or payload, take the `mfa_token`. The assertion is
/// made (signed by the soft authenticator) outside the measurement.
fn webauthn(c: &mut Criterion) {
    use stepup::mfa::webauthn::{RelyingParty, Url, Webauthn};
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;

    const ORIGIN: &str = "https://example.com";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = ManualClock::at_unix(T0);
    let mfa = Mfa::new(
        Stores::shared(MemoryStore::new().with_clock(Arc::new(clock.clone()))),
        Keyring::new("k1", &[1; 32]).unwrap(),
        &[2; 32],
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_factor(Webauthn::new(
        RelyingParty::new("example.com", ORIGIN).unwrap(),
    ));
    let origin = Url::parse(ORIGIN).unwrap();
    let mut key = SoftPasskey::new(true);
    let client = ClientInfo::default();
    runtime.block_on(async {
        let started = mfa
            .start_enrollment("user", "webauthn", &json!({}), &client)
            .await
            .unwrap();
        let options = serde_json::from_value(started.clone()).unwrap();
        let credential = key.do_registration(origin.clone(), options).unwrap();
        let finish = json!({
            "registration_token": started["registration_token"],
            "credential": credential,
        });
        mfa.finish_enrollment("user", "webauthn", &finish, &client)
            .await
            .unwrap();
    });
    c.bench_function("webauthn/assertion_es256_memory_store", |b| {
        b.iter_batched(
            || {
                runtime.block_on(async {
                    let token = mfa_token(&mfa, "user").await;
                    let options = mfa
                        .prepare_challenge(&token, "webauthn", &client)
                        .await
                        .unwrap();
                    let options = serde_json::from_value(options).unwrap();
                    let assertion = key.do_authentication(origin.clone(), options).unwrap();
                    (token, json!({ "credential": assertion }))
                })
            },
            |(token, proof)| {
                runtime
                    .block_on(mfa.finish_challenge(&token, "webauthn", &proof, &client))
                    .unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, totp, backup_code, webauthn, postgres);
criterion_main!(benches);
