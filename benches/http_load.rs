//! HTTP load harness (SPEC §4: a protected route keeps ≥ 90% of an open route's throughput).
//!
//! Serves an axum app in process on `127.0.0.1:0` (loopback only) and drives it over HTTP/1.1
//! keep-alive with [`CONNECTIONS`] connections, each its own `hyper` client task with its own
//! HS256 token (its own user), all sending the same headers:
//!
//! - (a) `GET /open`: the trivial handler, no layers;
//! - (b) `GET /mfa`: the same handler behind `authenticate()` + `RequireMfa` (the verifier's
//!   default cache of verified tokens);
//! - (b0) `GET /mfa-full`: the same, with the cache disabled (`with_cache_capacity(0)`): a full
//!   signature check and claims parse on every request;
//! - (c) full MFA logins (password, then a TOTP code) through `StepUp`'s routes on a `MemoryStore`,
//!   as in `benches/login.rs`, but over HTTP with concurrent clients.
//!
//! (a), (b) and (b0) run in alternating short rounds (the order rotating each round), so drift of
//! the shared machine hits them alike; each prints requests/s and p50/p99 latency, and (b)/(a).
//! The headline ratio is the median of the per-round ratios (each between rounds run a second
//! apart), which a change of the machine's speed in the middle of the run does not move.
//! Bounded in time and count: [`ROUNDS`] rounds of [`ROUND`] per route (about a minute in all),
//! at most [`MAX_REQUESTS_PER_ROUND`] requests per connection and round, then [`LOGIN_ROUNDS`]
//! rounds of [`LOGIN_ROUND`] of logins. `STEPUP_LOAD_ROUNDS` (≤ 200), `STEPUP_LOAD_MS` (≤ 10,000)
//! and `STEPUP_LOAD_CONNECTIONS` (≤ 256) override; without `--bench` (`cargo test --benches`)
//! one short round checks that it works.
//!
//! `cargo bench --bench http_load`; figures go to `docs/benchmarks.md`.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use stepup::clock::ManualClock;
use stepup::mfa::totp::{TotpAlgorithm, TotpKey};
use stepup::mfa::{ClientInfo, PasswordCheckFailed};
use stepup::token::Grant;
use stepup::{JwtIssuer, Keyring, MemoryStore, PasswordCheck, RequireMfa, StepUp, authenticate};
use tokio::net::TcpStream;
use tower::ServiceBuilder;

/// Keep-alive connections, one client task each.
const CONNECTIONS: usize = 32;
/// Measured rounds per route.
const ROUNDS: usize = 40;
/// Length of one round: short, because the shared VM changes speed every few seconds (phases
/// 30% apart were seen), and a ratio is only fair between rounds run in the same phase.
const ROUND: Duration = Duration::from_millis(500);
/// The count bound: requests per connection and round.
const MAX_REQUESTS_PER_ROUND: usize = 200_000;
/// Rounds of full logins (argon2id: ~15 ms of CPU each), and their length.
const LOGIN_ROUNDS: usize = 3;
const LOGIN_ROUND: Duration = Duration::from_secs(2);
const T0: u64 = 1_800_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Open,
    Mfa,
    MfaFull,
}

impl Route {
    const ALL: [Route; 3] = [Route::Open, Route::Mfa, Route::MfaFull];

    fn path(self) -> &'static str {
        match self {
            Route::Open => "/open",
            Route::Mfa => "/mfa",
            Route::MfaFull => "/mfa-full",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Open => "(a)  open route",
            Route::Mfa => "(b)  authenticate()+RequireMfa, cached verifier",
            Route::MfaFull => "(b0) authenticate()+RequireMfa, cache disabled",
        }
    }
}

struct Settings {
    rounds: usize,
    round: Duration,
    connections: usize,
    login_rounds: usize,
    login_round: Duration,
}

impl Settings {
    fn from_env() -> Self {
        let benching = std::env::args().any(|arg| arg == "--bench");
        let var = |name: &str, default: usize, max: usize| {
            std::env::var(name)
                .ok()
                .and_then(|value| value.parse::<usize>().ok())
                .map_or(default, |value| value.clamp(1, max))
        };
        if !benching {
            return Self {
                rounds: 1,
                round: Duration::from_millis(200),
                connections: 4,
                login_rounds: 1,
                login_round: Duration::from_millis(200),
            };
        }
        Self {
            rounds: var("STEPUP_LOAD_ROUNDS", ROUNDS, 200),
            round: Duration::from_millis(
                var("STEPUP_LOAD_MS", ROUND.as_millis() as usize, 10_000) as u64
            ),
            connections: var("STEPUP_LOAD_CONNECTIONS", CONNECTIONS, 256),
            login_rounds: LOGIN_ROUNDS,
            login_round: LOGIN_ROUND,
        }
    }
}

async fn hello() -> &'static str {
    "hello"
}

/// The same handler on the three routes; the issuer of the tokens (b) and (b0) accept.
fn app() -> (Router, JwtIssuer) {
    let issuer = JwtIssuer::hs256(b"http load secret of thirty-two bytes+")
        .unwrap()
        .with_issuer("https://auth.load")
        .with_audience("https://api.load")
        .with_ttl(Duration::from_secs(3600));
    let cached = issuer.verifier().build().unwrap();
    let uncached = issuer.verifier().with_cache_capacity(0).build().unwrap();
    let router = Router::new()
        .route("/open", get(hello))
        .merge(
            Router::new().route("/mfa", get(hello)).route_layer(
                ServiceBuilder::new()
                    .layer(authenticate(cached))
                    .layer(RequireMfa),
            ),
        )
        .merge(
            Router::new().route("/mfa-full", get(hello)).route_layer(
                ServiceBuilder::new()
                    .layer(authenticate(uncached))
                    .layer(RequireMfa),
            ),
        );
    (router, issuer)
}

async fn serve(
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
) -> SocketAddr {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

/// One client: as many requests as fit before `deadline` (at most the count bound), one at a
/// time on its keep-alive connection; the latency of each, in nanoseconds.
async fn drive(
    mut sender: Sender,
    path: &'static str,
    bearer: HeaderValue,
    deadline: Instant,
) -> (Sender, Vec<u64>) {
    let mut latencies = Vec::with_capacity(16_384);
    while latencies.len() < MAX_REQUESTS_PER_ROUND && Instant::now() < deadline {
        let request = Request::get(path)
            .header(header::HOST, "127.0.0.1")
            .header(header::AUTHORIZATION, bearer.clone())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let start = Instant::now();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        latencies.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(&body[..], b"hello");
    }
    (sender, latencies)
}

async fn status_of(sender: &mut Sender, path: &str, bearer: Option<&HeaderValue>) -> StatusCode {
    let mut request = Request::get(path).header(header::HOST, "127.0.0.1");
    if let Some(bearer) = bearer {
        request = request.header(header::AUTHORIZATION, bearer);
    }
    let request = request.body(Full::new(Bytes::new())).unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

/// One round of `route` on every connection: (requests, wall time, latencies).
async fn round(
    senders: &mut Vec<Sender>,
    bearers: &[HeaderValue],
    route: Route,
    length: Duration,
) -> (usize, Duration, Vec<u64>) {
    let start = Instant::now();
    let deadline = start + length;
    let tasks: Vec<_> = senders
        .drain(..)
        .zip(bearers)
        .map(|(sender, bearer)| tokio::spawn(drive(sender, route.path(), bearer.clone(), deadline)))
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let (sender, latencies) = task.await.unwrap();
        senders.push(sender);
        all.extend(latencies);
    }
    (all.len(), start.elapsed(), all)
}

#[derive(Default)]
struct Tally {
    requests: usize,
    time: Duration,
    latencies: Vec<u64>,
    per_round: Vec<f64>,
}

impl Tally {
    fn add(&mut self, (requests, time, latencies): (usize, Duration, Vec<u64>)) {
        self.requests += requests;
        self.time += time;
        self.latencies.extend(latencies);
        self.per_round.push(requests as f64 / time.as_secs_f64());
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.time.as_secs_f64()
    }

    fn percentile(&mut self, fraction: f64) -> Duration {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 - 1.0) * fraction).round() as usize;
        Duration::from_nanos(self.latencies.get(index).copied().unwrap_or(0))
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn requests(settings: &Settings) {
    let (router, issuer) = app();
    let addr = serve(router.into_make_service_with_connect_info::<SocketAddr>()).await;
    let bearers: Vec<HeaderValue> = (0..settings.connections)
        .map(|n| {
            let grant = Grant::new(format!("user-{n}"))
                .acr("mfa")
                .amr(["pwd", "otp"])
                .scope("read write");
            let token = issuer.issue(&grant).unwrap().access_token;
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
        })
        .collect();
    let mut senders = Vec::new();
    for _ in 0..settings.connections {
        senders.push(connect(addr).await);
    }

    // The protected routes do protect: no token, and a password-only token, are refused.
    let password_only = issuer
        .issue(&Grant::new("user-pwd").acr("pwd").amr(["pwd"]))
        .unwrap()
        .access_token;
    let password_only = HeaderValue::from_str(&format!("Bearer {password_only}")).unwrap();
    for path in [Route::Mfa.path(), Route::MfaFull.path()] {
        for bearer in [None, Some(&password_only)] {
            let status = status_of(&mut senders[0], path, bearer).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        }
        assert_eq!(
            status_of(&mut senders[0], path, Some(&bearers[0])).await,
            StatusCode::OK
        );
    }

    // Warm-up: connections, allocator, the verifier's cache.
    for route in Route::ALL {
        round(&mut senders, &bearers, route, settings.round * 2).await;
    }

    let mut tallies: Vec<Tally> = Route::ALL.iter().map(|_| Tally::default()).collect();
    let mut ratios = Vec::new();
    let mut ratios_full = Vec::new();
    for n in 0..settings.rounds {
        // Rotate the order, so no route always runs first or last in a round.
        let mut line = format!("round {:2}:", n + 1);
        let mut rates = [0.0; 3];
        for k in 0..Route::ALL.len() {
            let index = (n + k) % Route::ALL.len();
            let route = Route::ALL[index];
            let result = round(&mut senders, &bearers, route, settings.round).await;
            rates[index] = result.0 as f64 / result.1.as_secs_f64();
            tallies[index].add(result);
        }
        for (route, rate) in Route::ALL.iter().zip(rates) {
            line += &format!("  {} {:>8.0}/s", route.path(), rate);
        }
        ratios.push(rates[1] / rates[0]);
        ratios_full.push(rates[2] / rates[0]);
        println!(
            "{line}  (b)/(a) {:.3}  (b0)/(a) {:.3}",
            rates[1] / rates[0],
            rates[2] / rates[0]
        );
    }

    println!();
    println!(
        "{} keep-alive connections, {} rounds x {:?} per route, HTTP/1.1 on loopback, HS256",
        settings.connections, settings.rounds, settings.round
    );
    println!(
        "{:<50} {:>10} {:>10} {:>10} {:>9}",
        "route", "req/s", "p50", "p99", "vs (a)"
    );
    let open_rate = tallies[0].rate();
    for (route, tally) in Route::ALL.iter().zip(tallies.iter_mut()) {
        let (p50, p99) = (tally.percentile(0.50), tally.percentile(0.99));
        println!(
            "{:<50} {:>10.0} {:>8.0}µs {:>8.0}µs {:>9.3}",
            route.label(),
            tally.rate(),
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            tally.rate() / open_rate
        );
    }
    println!(
        "(b)/(a): {:.3} over all rounds; per round: median {:.3}, min {:.3}, max {:.3}",
        tallies[1].rate() / open_rate,
        median(ratios.clone()),
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "(b0)/(a): {:.3} over all rounds; per round: median {:.3}, min {:.3}, max {:.3}",
        tallies[2].rate() / open_rate,
        median(ratios_full.clone()),
        ratios_full.iter().copied().fold(f64::INFINITY, f64::min),
        ratios_full.iter().copied().fold(0.0, f64::max),
    );
}

/// Every user has the same password; the check is argon2id, as in the demo.
struct Users {
    hash: String,
    count: usize,
}

#[stepup::policy::async_trait]
impl PasswordCheck for Users {
    async fn check(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed> {
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), self.hash.as_str())
            .is_ok();
        Ok((self.account(user) && matches).then(|| user.to_owned()))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed> {
        Ok(self.account(user))
    }
}

impl Users {
    fn account(&self, user: &str) -> bool {
        user.strip_prefix("user-")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n < self.count)
    }
}

async fn post(sender: &mut Sender, path: &str, body: &Value) -> Value {
    let request = Request::post(path)
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_success(), "{path}: {status} {bytes:?}");
    serde_json::from_slice(&bytes).unwrap()
}

/// Full MFA logins over HTTP, one per connection at a time, in waves: the clock (shared by the
/// engine and the store) stands still during a wave and moves three TOTP steps between waves, so
/// every user has a fresh step each wave.
async fn logins(settings: &Settings) {
    let clock = ManualClock::at_unix(T0);
    let hash = Argon2::default()
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
    let users = settings.connections;
    let stepup = StepUp::builder()
        .issuer(JwtIssuer::hs256(&[9; 32]).unwrap())
        .store(MemoryStore::new().with_clock(Arc::new(clock.clone())))
        .keyring(Keyring::new("k1", &[1; 32]).unwrap())
        .lookup_key(&[2; 32])
        .passwords(Users { hash, count: users })
        .request_ceiling(u64::MAX, Duration::from_secs(300))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let mut keys = Vec::new();
    for n in 0..users {
        let user = format!("user-{n}");
        let client = ClientInfo::default();
        let started = stepup
            .mfa()
            .start_enrollment(&user, "totp", &json!({}), &client)
            .await
            .unwrap();
        let secret = totp_rs::Secret::try_from_base32(started["secret"].as_str().unwrap()).unwrap();
        let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "b", "u").unwrap();
        let code = json!({ "code": key.code_at(T0) });
        stepup
            .mfa()
            .finish_enrollment(&user, "totp", &code, &client)
            .await
            .unwrap();
        keys.push(Arc::new(key));
    }
    let router = Router::new()
        .merge(stepup.routes())
        .layer(stepup.authenticate());
    let addr = serve(router.into_make_service_with_connect_info::<SocketAddr>()).await;
    let mut senders = Vec::new();
    for _ in 0..users {
        senders.push(connect(addr).await);
    }

    let mut now = T0;
    let mut tally = Tally::default();
    let mut waves = 0;
    for _ in 0..settings.login_rounds {
        let start = Instant::now();
        let mut latencies = Vec::new();
        while start.elapsed() < settings.login_round {
            now += 90;
            clock.set_unix(now);
            waves += 1;
            let tasks: Vec<_> = senders
                .drain(..)
                .zip(&keys)
                .enumerate()
                .map(|(n, (mut sender, key))| {
                    let code = key.code_at(now);
                    tokio::spawn(async move {
                        let begin = Instant::now();
                        let credentials =
                            json!({"username": format!("user-{n}"), "password": "correct horse"});
                        let challenge = post(&mut sender, "/oauth/authorize", &credentials).await;
                        let token = post(
                            &mut sender,
                            "/oauth/authorize/mfa",
                            &json!({"mfa_token": challenge["mfa_token"], "code": code}),
                        )
                        .await;
                        assert_eq!(token["acr"], "mfa");
                        (
                            sender,
                            u64::try_from(begin.elapsed().as_nanos()).unwrap_or(u64::MAX),
                        )
                    })
                })
                .collect();
            for task in tasks {
                let (sender, latency) = task.await.unwrap();
                senders.push(sender);
                latencies.push(latency);
            }
        }
        let elapsed = start.elapsed();
        println!(
            "logins round: {:>6.1}/s",
            latencies.len() as f64 / elapsed.as_secs_f64()
        );
        tally.add((latencies.len(), elapsed, latencies));
    }
    let (p50, p99) = (tally.percentile(0.50), tally.percentile(0.99));
    println!(
        "{:<50} {:>10.1} {:>8.1}ms {:>8.1}ms   ({} logins in {} waves of {})",
        "(c)  full MFA logins (password + TOTP), per s",
        tally.rate(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        tally.requests,
        waves,
        users
    );
}

fn main() {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        requests(&settings).await;
        println!();
        logins(&settings).await;
    });
}
