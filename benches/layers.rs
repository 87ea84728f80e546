#![allow(missing_docs)]
//! Cost of the step-up middleware: the `RequireAcr` check alone, and `authenticate()` +
//! `RequireMfa` on one request against the bare `jsonwebtoken` decode of the same token, per algorithm.
//!
//! Per algorithm: `bare_decode` (the baseline), `verify` (stepup's verifier alone), `no_layers`
//! (the request harness around the bare handler) and `layers` (`authenticate()` + `RequireMfa` +
//! the handler), `layers+reject_revoked` (HS256: with the opt-in revocation check on a memory
//! store), and `overhead`: the two measured interleaved in one loop, reporting the summed
//! difference (layers + harness − bare decode), the figure to hold against the 10% target. These
//! run with the verifier's cache of verified tokens disabled (`with_cache_capacity(0)`): each
//! request is checked in full. `verify_cached` and `layers_cached` present the same token again
//! through a verifier with its default cache (a hit: digest, lookup, time checks, context).
//!
//! `backends`: the signature check alone (what `jsonwebtoken::decode` spends on the signature) of
//! each algorithm under each compiled crypto backend, RustCrypto and, with `--features aws-lc`,
//! aws-lc, in the same run. `forged`: a token with a wrong signature refused by a verifier with
//! its cache and by one without. `flood`: distinct valid tokens, each seen once, through a cached
//! verifier (every one a miss and an insertion) against an uncached one. `peer`: the same token and
//! handler behind a hand-written `jsonwebtoken` middleware and behind `authenticate()` +
//! `RequireMfa`.
//!
//! `cargo bench --bench layers --features aws-lc`; figures go to `docs/benchmarks.md`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use jsonwebtoken::{DecodingKey, Validation};
use std::hint::black_box;
use stepup::middleware::RejectRevokedLayer;
use stepup::token::Grant;
use stepup::token::{AccessTokenClaims, CryptoBackend, crypto_backend};
use stepup::{
    AcrRequirement, AuthContext, JwtIssuer, MemoryStore, RequireMfa, SigningKey, authenticate,
};
use tower::{Service, ServiceBuilder, service_fn};

const ISSUER: &str = "https://auth.bench";
const AUDIENCE: &str = "https://api.bench";

fn keys() -> Vec<(&'static str, SigningKey, DecodingKey)> {
    let secret = b"bench secret of thirty-two bytes or more";
    vec![
        (
            "HS256",
            SigningKey::hs256(secret).unwrap(),
            DecodingKey::from_secret(secret).unwrap(),
        ),
        (
            "ES256",
            SigningKey::es256_pem(
                include_bytes!("../tests/keys/ec_private.pem"),
                include_bytes!("../tests/keys/ec_public.pem"),
            )
            .unwrap(),
            DecodingKey::from_ec_pem(include_bytes!("../tests/keys/ec_public.pem")).unwrap(),
        ),
        (
            "EdDSA",
            SigningKey::eddsa_pem(
                include_bytes!("../tests/keys/ed_private.pem"),
                include_bytes!("../tests/keys/ed_public.pem"),
            )
            .unwrap(),
            DecodingKey::from_ed_pem(include_bytes!("../tests/keys/ed_public.pem")).unwrap(),
        ),
        (
            "RS256",
            SigningKey::rs256_pem(
                include_bytes!("../tests/keys/rsa_private.pem"),
                include_bytes!("../tests/keys/rsa_public.pem"),
            )
            .unwrap(),
            DecodingKey::from_rsa_pem(include_bytes!("../tests/keys/rsa_public.pem")).unwrap(),
        ),
    ]
}

fn require_acr_check(c: &mut Criterion) {
    let requirement = AcrRequirement::mfa().max_age(Duration::from_secs(300));
    let caller = AuthContext::builder("user-1")
        .acr("mfa")
        .amr(["pwd", "otp"])
        .auth_time(1_000)
        .verified_at(1_100)
        .build();
    c.bench_function("require_acr_check", |b| {
        b.iter(|| black_box(&requirement).check(black_box(&caller)))
    });
}

fn authenticate_and_require_mfa(c: &mut Criterion) {
    let mut group = c.benchmark_group("authenticate+require_mfa");
    for (name, signing, decoding) in keys() {
        let issuer = JwtIssuer::new(signing.with_kid("k1"))
            .with_issuer(ISSUER)
            .with_audience(AUDIENCE);
        let grant = Grant::new("user-1")
            .acr("mfa")
            .amr(["pwd", "otp"])
            .scope("read write");
        let token = issuer.issue(&grant).unwrap().access_token;

        // Baseline: the bare signature check and claim validation of the same token.
        let mut validation = Validation::new(signing_algorithm(name));
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        group.bench_function(format!("{name}/bare_decode"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<AccessTokenClaims>(black_box(&token), &decoding, &validation)
                    .unwrap()
            })
        });

        // The cache of verified tokens is off for `verify`, `layers` and `overhead`: they measure
        // the full check of each request, against `bare_decode`. `*_cached` measure a repeat
        // token through the default cache.
        let verifier = issuer.verifier().with_cache_capacity(0).build().unwrap();
        group.bench_function(format!("{name}/verify"), |b| {
            b.iter(|| verifier.verify(black_box(&token)).unwrap())
        });
        let cached_verifier = issuer.verifier().build().unwrap();
        group.bench_function(format!("{name}/verify_cached"), |b| {
            b.iter(|| cached_verifier.verify(black_box(&token)).unwrap())
        });
        let header = http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        // The harness alone: the same call on the handler without the layers.
        bench_call(
            &mut group,
            &format!("{name}/no_layers"),
            service_fn(handler),
            &header,
        );
        let layered = ServiceBuilder::new()
            .layer(authenticate(verifier))
            .layer(RequireMfa)
            .service(service_fn(handler));
        let mut layered_again = layered.clone();
        bench_call(&mut group, &format!("{name}/layers"), layered, &header);
        let layered_cached = ServiceBuilder::new()
            .layer(authenticate(cached_verifier))
            .layer(RequireMfa)
            .service(service_fn(handler));
        bench_call(
            &mut group,
            &format!("{name}/layers_cached"),
            layered_cached,
            &header,
        );

        // The revocation check the engine answers: the token's generation against the
        // in-process copy of every user's generation (no I/O), kept current by a task on a
        // runtime of its own here.
        if name == "HS256" {
            let engine = stepup::Mfa::new(
                stepup::Stores::shared(MemoryStore::new()),
                stepup::Keyring::new("k1", &[1; 32]).unwrap(),
                &[2; 32],
            )
            .unwrap();
            let _entered = replica_runtime().enter();
            wait_for_replica(&engine);
            let revoking = ServiceBuilder::new()
                .layer(authenticate(
                    issuer.verifier().with_cache_capacity(0).build().unwrap(),
                ))
                .layer(RejectRevokedLayer::new(engine))
                .layer(RequireMfa)
                .service(service_fn(handler));
            bench_call(
                &mut group,
                &format!("{name}/layers+reject_revoked"),
                revoking,
                &header,
            );
        }

        // The same comparison interleaved: each iteration decodes bare, then calls through the
        // layers, and the reported time is the summed difference. Drift in the machine's speed
        // hits both halves alike, which separate benchmarks on a shared VM cannot promise. Only
        // for HS256, the cheapest check and so the largest relative overhead: under the slower
        // signatures the difference drowns in the signature's own jitter.
        if name != "HS256" {
            continue;
        }
        group.bench_function(format!("{name}/overhead"), |b| {
            b.iter_custom(|iterations| {
                let (mut bare, mut through_layers) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iterations {
                    let request = request_with(&header);
                    let start = Instant::now();
                    black_box(
                        jsonwebtoken::decode::<AccessTokenClaims>(&token, &decoding, &validation)
                            .unwrap(),
                    );
                    let middle = Instant::now();
                    black_box(futures_executor::block_on(layered_again.call(request)).unwrap());
                    let end = Instant::now();
                    bare += middle - start;
                    through_layers += end - middle;
                }
                through_layers.saturating_sub(bare)
            })
        });
    }
    group.finish();
}

/// Times one call of `service` on a request carrying `authorization`; building the request is
/// left out of the measurement.
/// The runtime the engine's generation copy catches up on, for the whole bench.
fn replica_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Checks one token until the engine's copy of the generations is caught up (the check then
/// answers from memory).
fn wait_for_replica(engine: &stepup::Mfa) {
    let caller = stepup::AuthContext::builder("warm-up")
        .generation(0)
        .build();
    for _ in 0..100 {
        replica_runtime()
            .block_on(engine.check_token(&caller))
            .unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn bench_call<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    mut service: S,
    authorization: &http::HeaderValue,
) where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    group.bench_function(id, |b| {
        b.iter_batched(
            || request_with(authorization),
            |request| {
                let response = futures_executor::block_on(service.call(request)).unwrap();
                assert!(response.status().is_success());
                response
            },
            BatchSize::SmallInput,
        )
    });
}

fn request_with(authorization: &http::HeaderValue) -> Request<()> {
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, authorization.clone());
    request
}

fn handler(
    _: Request<()>,
) -> Ready<Result<Response<http_body_util::Empty<bytes::Bytes>>, Infallible>> {
    ready(Ok(Response::new(http_body_util::Empty::new())))
}

fn signing_algorithm(name: &str) -> jsonwebtoken::Algorithm {
    name.parse().unwrap()
}

/// The signature check alone, per backend: the provider's verifier for the key, run on the token's
/// signing input, exactly as `jsonwebtoken::decode` does it (the provider is chosen here rather
/// than taken from the process default, so both backends run in one process).
fn backends(c: &mut Criterion) {
    let mut group = c.benchmark_group("backends");
    for (name, signing, decoding) in keys() {
        let token = issuer(signing).issue(&mfa_grant()).unwrap().access_token;
        let (message, signature) = token.rsplit_once('.').unwrap();
        let signature =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
                .unwrap();
        let algorithm = signing_algorithm(name);
        for backend in CryptoBackend::compiled() {
            let provider = backend.provider().unwrap();
            group.bench_function(format!("{backend}/{name}/verify_signature"), |b| {
                b.iter(|| {
                    let verifier = (provider.verifier_factory)(&algorithm, &decoding).unwrap();
                    jsonwebtoken::signature::Verifier::verify(
                        &*verifier,
                        black_box(message.as_bytes()),
                        black_box(&signature),
                    )
                    .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// A token with a wrong signature: refused by a verifier with its cache (a miss) at least as fast
/// as by one without.
fn forged(c: &mut Criterion) {
    let mut group = c.benchmark_group("forged");
    for (name, signing, _) in keys() {
        if name != "HS256" && name != "ES256" {
            continue;
        }
        let issuer = issuer(signing.with_kid("k1"));
        let token = issuer.issue(&mfa_grant()).unwrap().access_token;
        // The same header and claims, the signature's middle characters changed.
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = signature.as_bytes().to_vec();
        let middle = bytes.len() / 2;
        for byte in &mut bytes[middle - 4..middle + 4] {
            *byte = if *byte == b'A' { b'B' } else { b'A' };
        }
        let forged = format!("{signed}.{}", String::from_utf8(bytes).unwrap());
        let uncached = issuer.verifier().with_cache_capacity(0).build().unwrap();
        let cached = issuer.verifier().build().unwrap();
        // The genuine token sits in the cache (admitted on its second verification), so the
        // forged one probes a populated map.
        cached.verify(&token).unwrap();
        cached.verify(&token).unwrap();
        group.bench_function(format!("{name}/uncached_verifier"), |b| {
            b.iter(|| uncached.verify(black_box(&forged)).unwrap_err())
        });
        group.bench_function(format!("{name}/cached_verifier"), |b| {
            b.iter(|| cached.verify(black_box(&forged)).unwrap_err())
        });
        // The two interleaved, as `overhead` does: each iteration refuses the forged token with
        // both verifiers; reported is what the cached one spent beyond the uncached one (0 when
        // it spent less), and the two means go to stderr.
        group.bench_function(format!("{name}/cached_minus_uncached_interleaved"), |b| {
            b.iter_custom(|iterations| {
                let (mut plain, mut with_cache) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iterations {
                    let start = Instant::now();
                    black_box(uncached.verify(black_box(&forged)).unwrap_err());
                    let middle = Instant::now();
                    black_box(cached.verify(black_box(&forged)).unwrap_err());
                    let end = Instant::now();
                    plain += middle - start;
                    with_cache += end - middle;
                }
                let count = u32::try_from(iterations.max(1)).unwrap_or(u32::MAX);
                eprintln!(
                    "forged {name}: uncached {:?}, cached {:?} per request",
                    plain / count,
                    with_cache / count
                );
                with_cache.saturating_sub(plain)
            })
        });
    }
    group.finish();
}

/// Distinct valid HS256 tokens, each presented once (minted outside the timing, each with its own
/// `jti`): through the default cache every one is a miss, and the doorkeeper stores none (bar its
/// rare false positives); against the same through an uncached verifier. Then a working set
/// four times the cache's capacity presented round-robin: each token comes back, is admitted,
/// and pushes another out (the cache's worst case).
fn flood(c: &mut Criterion) {
    let mut group = c.benchmark_group("flood");
    let secret = b"bench secret of thirty-two bytes or more";
    let issuer = issuer(SigningKey::hs256(secret).unwrap());
    let mint = || {
        issuer
            .issue(&Grant::new("user-1").acr("mfa").amr(["pwd", "otp"]))
            .unwrap()
            .access_token
    };
    let uncached = issuer.verifier().with_cache_capacity(0).build().unwrap();
    let cached = issuer.verifier().build().unwrap();
    for (id, verifier) in [
        ("HS256/distinct_tokens_uncached", &uncached),
        ("HS256/distinct_tokens_cached", &cached),
    ] {
        group.bench_function(id, |b| {
            b.iter_batched(
                mint,
                |token| verifier.verify(black_box(&token)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    // Interleaved: each iteration mints two fresh tokens (untimed), refuses neither, and times one
    // through each verifier; reported is the cached verifier's excess (0 when it spent less).
    group.bench_function("HS256/distinct_cached_minus_uncached_interleaved", |b| {
        b.iter_custom(|iterations| {
            let (mut plain, mut with_cache) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..iterations {
                let (first, second) = (mint(), mint());
                let start = Instant::now();
                black_box(uncached.verify(black_box(&first)).unwrap());
                let middle = Instant::now();
                black_box(cached.verify(black_box(&second)).unwrap());
                let end = Instant::now();
                plain += middle - start;
                with_cache += end - middle;
            }
            let count = u32::try_from(iterations.max(1)).unwrap_or(u32::MAX);
            eprintln!(
                "flood HS256: uncached {:?}, cached {:?} per request",
                plain / count,
                with_cache / count
            );
            with_cache.saturating_sub(plain)
        })
    });
    let working_set: Vec<String> = (0..4 * stepup::token::DEFAULT_CACHE_CAPACITY)
        .map(|_| mint())
        .collect();
    for (id, verifier) in [
        ("HS256/working_set_4x_capacity_uncached", &uncached),
        ("HS256/working_set_4x_capacity_cached", &cached),
    ] {
        let mut next = 0;
        group.bench_function(id, |b| {
            b.iter(|| {
                next = (next + 1) % working_set.len();
                verifier.verify(black_box(&working_set[next])).unwrap()
            })
        });
    }
    group.finish();
}

/// The claims a hand-written middleware reads.
#[derive(serde::Deserialize, Clone)]
#[allow(dead_code)]
struct PeerClaims {
    sub: String,
    exp: u64,
    acr: Option<String>,
    amr: Option<Vec<String>>,
    auth_time: Option<u64>,
    scope: Option<String>,
}

/// What an application writes without stepup: a tower middleware that decodes the bearer token
/// with `jsonwebtoken` (same `iss`/`aud`/required-claim validation), refuses a level below `mfa`,
/// and hands the claims to the handler in the extensions.
#[derive(Clone)]
struct HandWritten<S> {
    inner: S,
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl<S, B> Service<Request<()>> for HandWritten<S>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
    B: Default,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = futures_util_either::Either<S::Future, Ready<Result<Response<B>, Infallible>>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<()>) -> Self::Future {
        let refuse = |status: u16| {
            let mut response = Response::new(B::default());
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            futures_util_either::Either::Right(ready(Ok(response)))
        };
        let Some(token) = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return refuse(401);
        };
        let Ok(data) = jsonwebtoken::decode::<PeerClaims>(token, &self.key, &self.validation)
        else {
            return refuse(401);
        };
        if !matches!(data.claims.acr.as_deref(), Some("mfa" | "phr")) {
            return refuse(401);
        }
        request.extensions_mut().insert(data.claims);
        futures_util_either::Either::Left(self.inner.call(request))
    }
}

/// A two-armed future, so the hand-written middleware needs no allocation per request (as a tower
/// middleware written with care would).
mod futures_util_either {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pin_project_lite::pin_project! {
        #[project = EitherProj]
        pub(crate) enum Either<L, R> {
            Left { #[pin] future: L },
            Right { #[pin] future: R },
        }
    }

    #[allow(non_snake_case)]
    impl<L, R> Either<L, R> {
        pub(crate) fn Left(future: L) -> Self {
            Self::Left { future }
        }
        pub(crate) fn Right(future: R) -> Self {
            Self::Right { future }
        }
    }

    impl<L: Future, R: Future<Output = L::Output>> Future for Either<L, R> {
        type Output = L::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<L::Output> {
            match self.project() {
                EitherProj::Left { future } => future.poll(cx),
                EitherProj::Right { future } => future.poll(cx),
            }
        }
    }
}

/// The same token, the same handler and the same harness: a hand-written `jsonwebtoken` middleware
/// against stepup's `authenticate()` + `RequireMfa`, with and without stepup's cache.
fn peer(c: &mut Criterion) {
    let mut group = c.benchmark_group("peer");
    for (name, signing, decoding) in keys() {
        if name != "HS256" && name != "ES256" && name != "RS256" {
            continue;
        }
        let issuer = issuer(signing);
        let token = issuer.issue(&mfa_grant()).unwrap().access_token;
        let header = http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        let mut validation = Validation::new(signing_algorithm(name));
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let hand_written = HandWritten {
            inner: service_fn(handler),
            key: Arc::new(decoding),
            validation: Arc::new(validation),
        };
        bench_call(
            &mut group,
            &format!("{name}/hand_written_jsonwebtoken"),
            hand_written,
            &header,
        );
        let stepup_uncached = ServiceBuilder::new()
            .layer(authenticate(
                issuer.verifier().with_cache_capacity(0).build().unwrap(),
            ))
            .layer(RequireMfa)
            .service(service_fn(handler));
        bench_call(
            &mut group,
            &format!("{name}/stepup_uncached"),
            stepup_uncached,
            &header,
        );
        let stepup_cached = ServiceBuilder::new()
            .layer(authenticate(issuer.verifier().build().unwrap()))
            .layer(RequireMfa)
            .service(service_fn(handler));
        bench_call(
            &mut group,
            &format!("{name}/stepup"),
            stepup_cached,
            &header,
        );
    }
    group.finish();
}

fn issuer(key: SigningKey) -> JwtIssuer {
    JwtIssuer::new(key)
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        .with_ttl(Duration::from_secs(3_600))
}

fn mfa_grant() -> Grant {
    Grant::new("user-1")
        .acr("mfa")
        .amr(["pwd", "otp"])
        .scope("read write")
}

/// RS256 tokens whose key comes from a JWKS URL (the `jwks` feature): a provider on 127.0.0.1
/// serves the key set once, then every verification reads the in-memory snapshot, never the
/// network. Uncached (each request checked in full) and cached, through the layers.
#[cfg(feature = "jwks")]
fn cached_jwks(c: &mut Criterion) {
    use axum::routing::get;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let signing = SigningKey::rs256_pem(
        include_bytes!("../tests/keys/rsa_private.pem"),
        include_bytes!("../tests/keys/rsa_public.pem"),
    )
    .unwrap()
    .with_kid("rs-jwks");
    stepup::token::crypto_provider();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(
        &jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../tests/keys/rsa_private.pem"))
            .unwrap(),
        jsonwebtoken::Algorithm::RS256,
    )
    .unwrap();
    jwk.common.key_id = Some("rs-jwks".into());
    let body = serde_json::json!({ "keys": [jwk] }).to_string();
    let url = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/keys", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/keys", get(move || async move { body.clone() }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    });
    let token = issuer(signing).issue(&mfa_grant()).unwrap().access_token;
    let header = http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let build = |capacity| {
        let _guard = runtime.enter();
        let verifier = stepup::token::JwtVerifier::builder()
            .jwks_url(url.clone())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .with_cache_capacity(capacity)
            .build()
            .unwrap();
        runtime.block_on(verifier.refresh_keys()).unwrap();
        verifier
    };
    let mut group = c.benchmark_group("jwks");
    let uncached = build(0);
    group.bench_function("RS256/verify_from_jwks_snapshot", |b| {
        b.iter(|| uncached.verify(black_box(&token)).unwrap())
    });
    let layered = ServiceBuilder::new()
        .layer(authenticate(build(DEFAULT_CACHE)))
        .layer(RequireMfa)
        .service(service_fn(handler));
    bench_call(
        &mut group,
        "RS256/layers_cached_from_jwks",
        layered,
        &header,
    );
    group.finish();
    drop(runtime);
}

#[cfg(feature = "jwks")]
const DEFAULT_CACHE: usize = stepup::token::DEFAULT_CACHE_CAPACITY;

#[cfg(not(feature = "jwks"))]
fn cached_jwks(_: &mut Criterion) {}

fn report_backend(_: &mut Criterion) {
    eprintln!("stepup verifies with the {} backend", crypto_backend());
}

criterion_group!(
    benches,
    report_backend,
    require_acr_check,
    authenticate_and_require_mfa,
    backends,
    forged,
    flood,
    peer,
    cached_jwks
);
criterion_main!(benches);
