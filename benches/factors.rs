//! Cost of the second factors (SPEC §4): a TOTP verification, one backup-code attempt, one
//! WebAuthn assertion, and the same round trips on PostgreSQL.
//!
//! `cargo bench --bench factors`; figures go to `docs/benchmarks.md`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use stepup::mfa::backup::BackupCodes;
use stepup::mfa::totp::TotpKey;
use stepup::{Keyring, ManualClock, MemoryStore, Mfa, Proof, Stores, TotpAlgorithm};

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

    // The whole engine call: read the enrollment, open the sealed secret, check, compare-and-set.
    // Each iteration moves the clock one step so that the compare-and-set succeeds. The slow-hash
    // pool waits with a timeout, so the runtime needs its time driver.
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
    .with_clock(Arc::new(clock.clone()));
    let key = runtime.block_on(async {
        let enrollment = mfa.begin_totp_enrollment("user", "user").await.unwrap();
        let secret = totp_rs::Secret::try_from_base32(&enrollment.secret).unwrap();
        let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "b", "u").unwrap();
        mfa.confirm_totp_enrollment("user", &key.code_at(T0))
            .await
            .unwrap();
        key
    });
    let mut now = T0;
    c.bench_function("totp/mfa_verify_memory_store", |b| {
        b.iter_batched(
            || loop {
                // A code equal to a neighbouring step's is rightly refused as already used (one
                // chance in a million per step); skip those steps.
                now += 30;
                let code = key.code_at(now);
                if code != key.code_at(now - 30) && code != key.code_at(now + 30) {
                    break (now, code);
                }
            },
            |(now, code)| {
                clock.set_unix(now);
                runtime.block_on(mfa.verify_totp("user", &code)).unwrap()
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
    .with_clock(Arc::new(clock.clone()));
    let user = format!("bench-{}", std::process::id());
    let key = runtime.block_on(async {
        let enrollment = mfa.begin_totp_enrollment(&user, "user").await.unwrap();
        let secret = totp_rs::Secret::try_from_base32(&enrollment.secret).unwrap();
        let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "b", "u").unwrap();
        mfa.confirm_totp_enrollment(&user, &key.code_at(T0))
            .await
            .unwrap();
        key
    });
    let mut now = T0;
    c.bench_function("totp/mfa_verify_postgres", |b| {
        b.iter_batched(
            || loop {
                now += 30;
                let code = key.code_at(now);
                if code != key.code_at(now - 30) && code != key.code_at(now + 30) {
                    break (now, code);
                }
            },
            |(now, code)| {
                clock.set_unix(now);
                runtime.block_on(mfa.verify_totp(&user, &code)).unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });

    // Each redemption gets the same one-code set written back first (not measured), so every
    // measured attempt is a success: lookup, one argon2id, the consume, the count.
    let codes = BackupCodes::new(&[2; 32]).unwrap();
    let code = BackupCodes::generate().remove(0);
    let normalised = BackupCodes::normalise(&code).unwrap();
    let set = stepup::store::CodeSet {
        kind: stepup::mfa::backup::KIND.to_owned(),
        codes: vec![stepup::store::CodeHash {
            lookup: codes.lookup(&normalised),
            hash: BackupCodes::hash(&normalised).unwrap(),
            expires_at: None,
        }],
    };
    let mut group = c.benchmark_group("backup_code");
    group.sample_size(20);
    group.bench_function("redeem_postgres", |b| {
        b.iter_batched(
            || {
                use stepup::store::FactorStore;
                runtime
                    .block_on(store.replace_codes(&user, set.clone()))
                    .unwrap();
            },
            |()| {
                runtime
                    .block_on(mfa.redeem_backup_code(&user, &code))
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
    use stepup::mfa::webauthn::{RelyingParty, Url};
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
    .with_relying_party(RelyingParty::new("example.com", ORIGIN).unwrap());
    let origin = Url::parse(ORIGIN).unwrap();
    let mut key = SoftPasskey::new(true);
    runtime.block_on(async {
        let started = mfa
            .begin_webauthn_registration("user", "user", "user")
            .await
            .unwrap();
        let credential = key
            .do_registration(origin.clone(), started.options)
            .unwrap();
        mfa.finish_webauthn_registration("user", &started.registration_token, &credential, None)
            .await
            .unwrap();
    });
    c.bench_function("webauthn/assertion_es256_memory_store", |b| {
        b.iter_batched(
            || {
                runtime.block_on(async {
                    let challenge = mfa.start_challenge("user", &["pwd"], None).await.unwrap();
                    let options = mfa
                        .begin_webauthn_challenge(&challenge.mfa_token)
                        .await
                        .unwrap();
                    let assertion = key.do_authentication(origin.clone(), options).unwrap();
                    (challenge.mfa_token, assertion)
                })
            },
            |(mfa_token, assertion)| {
                runtime
                    .block_on(mfa.complete_challenge(&mfa_token, Proof::Webauthn(&assertion)))
                    .unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, totp, backup_code, webauthn, postgres);
criterion_main!(benches);
