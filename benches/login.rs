//! Whole logins and the rate-limit check.
//!
//! - `rate_limit/*`: one per-address check on the in-memory store, alone and as the tower layer
//!   over the engine's request ceiling (address grouping included).
//! - `login/*`: complete logins through the drop-in routes, in process (no sockets): a password
//!   login, and a full MFA login (password, then a TOTP code), each ending with a signed token.
//!   The password is checked with argon2id (OWASP parameters), as in the demo; that check is most
//!   of the cost, as it is in Keycloak's published 15 password logins/s per vCPU.
//!
//! `cargo bench --bench login`; figures go to `docs/benchmarks.md`.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::Router;
use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use stepup::clock::ManualClock;
use stepup::mfa::totp::{TotpAlgorithm, TotpKey};
use stepup::mfa::{ClientInfo, PasswordCheckFailed};
use stepup::store::EphemeralStore;
use stepup::{JwtIssuer, Keyring, MemoryStore, PasswordCheck, StepUp, Stores};
use tower::{Service, ServiceExt};

const T0: u64 = 1_800_000_000;

struct OneUser {
    hash: String,
}

#[stepup::policy::async_trait]
impl PasswordCheck for OneUser {
    async fn check(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed> {
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), self.hash.as_str())
            .is_ok();
        Ok((user == "bench" && matches).then(|| "bench".to_owned()))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed> {
        Ok(user == "bench")
    }
}

fn rate_limit(c: &mut Criterion) {
    let store = MemoryStore::new();
    let mut group = c.benchmark_group("rate_limit");
    // The store call is async (`async_trait`, one boxed future), polled by a minimal executor.
    group.bench_function("increment_memory_store", |b| {
        b.iter(|| {
            futures_executor::block_on(store.increment(
                black_box("rate:authorize:203.0.113.9"),
                Duration::from_secs(300),
            ))
            .unwrap()
        })
    });
    let engine = stepup::Mfa::new(
        Stores::shared(MemoryStore::new()),
        Keyring::new("k1", &[1; 32]).unwrap(),
        &[2; 32],
    )
    .unwrap();
    let layer = stepup_tower::RateLimitLayer::new(engine, "bench")
        .with_limit(u64::MAX, Duration::from_secs(300));
    let mut service = tower::ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(
                http_body_util::Empty::<bytes::Bytes>::new(),
            ))
        }));
    group.bench_function("layer_memory_store", |b| {
        b.iter(|| {
            let mut request = Request::new(());
            request
                .extensions_mut()
                .insert(stepup::client::ClientAddr("203.0.113.9".parse().unwrap()));
            futures_executor::block_on(service.call(request)).unwrap()
        })
    });
    group.finish();
}

async fn post(app: &Router, path: &str, body: Value) -> Value {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn logins(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = ManualClock::at_unix(T0);
    let hash = Argon2::default()
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
    let stepup = StepUp::builder()
        .issuer(JwtIssuer::hs256(&[9; 32]).unwrap())
        .store(MemoryStore::new().with_clock(Arc::new(clock.clone())))
        .keyring(Keyring::new("k1", &[1; 32]).unwrap())
        .lookup_key(&[2; 32])
        .passwords(OneUser { hash })
        .request_ceiling(u64::MAX, Duration::from_secs(300))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let app = Router::new()
        .merge(stepup.routes())
        .layer(stepup.authenticate());
    let credentials = json!({"username": "bench", "password": "correct horse"});

    let mut group = c.benchmark_group("login");
    group.sample_size(10);
    group.bench_function("password_only", |b| {
        b.iter(|| runtime.block_on(post(&app, "/oauth/authorize", credentials.clone())))
    });

    // Enroll, then time whole MFA logins; each uses the next time step, as a person would.
    let key = runtime.block_on(async {
        let client = ClientInfo::default();
        let mfa = stepup.mfa();
        let started = mfa
            .start_enrollment("bench", "totp", &json!({}), &client)
            .await
            .unwrap();
        let secret = totp_rs::Secret::try_from_base32(started["secret"].as_str().unwrap()).unwrap();
        let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "b", "u").unwrap();
        mfa.finish_enrollment(
            "bench",
            "totp",
            &json!({ "code": key.code_at(T0) }),
            &client,
        )
        .await
        .unwrap();
        key
    });
    let mut now = T0;
    group.bench_function("password_and_totp", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                let code = loop {
                    now += 30;
                    let code = key.code_at(now);
                    if code != key.code_at(now - 30) && code != key.code_at(now + 30) {
                        break code;
                    }
                };
                clock.set_unix(now);
                let start = Instant::now();
                runtime.block_on(async {
                    let challenge = post(&app, "/oauth/authorize", credentials.clone()).await;
                    let token = post(
                        &app,
                        "/oauth/authorize/mfa",
                        json!({"mfa_token": challenge["mfa_token"], "code": code}),
                    )
                    .await;
                    assert_eq!(token["acr"], "mfa");
                });
                spent += start.elapsed();
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, rate_limit, logins);
criterion_main!(benches);
