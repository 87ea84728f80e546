//! HTTP load harness: a protected route of the demo keeps ≥ 95% of an open route's throughput.
//!
//! Serves **the demo's own router** (`examples/demo/app.rs`, built as `main.rs` builds it: its
//! security headers, `authenticate()` and the revocation check around its router, the engine's
//! generation copy) in process on `127.0.0.1:0` (loopback only), over SQLite, and over
//! PostgreSQL and Redis when `DATABASE_URL` and `REDIS_URL` are set, and drives it over HTTP/1.1
//! keep-alive with [`CONNECTIONS`] connections, each its own `hyper` client task with its own
//! HS256 token (its own user), all sending the same headers:
//!
//! - (a) `GET /no-such-page` without a token: the demo's JSON 404, through every layer;
//! - (b) `GET /api/me` with the token: `authenticate()` + the revocation check + the handler;
//! - (b2) `GET /api/vault` with a phishing-resistant token: the same plus
//!   `RequireAcr::level("phr").max_age(300 s)`;
//! - (a2) the 404 again, with a header as large as (b)'s `Authorization` that is no token: so
//!   that (b)/(a2) compares requests of one size;
//! - (c) full MFA logins (password, then a TOTP code) through `StepUp`'s routes on a `MemoryStore`,
//!   as in `benches/login.rs`, but over HTTP with concurrent clients.
//!
//! (a), (b), (b2) and (a2) run in alternating short rounds (the order rotating each round), so drift of
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
use stepup::{JwtIssuer, Keyring, MemoryStore, PasswordCheck, StepUp};
use tokio::net::TcpStream;

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

#[path = "../examples/demo/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Open,
    Me,
    Vault,
    OpenSized,
}

impl Route {
    const ALL: [Route; 4] = [Route::Open, Route::Me, Route::Vault, Route::OpenSized];

    fn path(self) -> &'static str {
        match self {
            Route::Open | Route::OpenSized => "/no-such-page",
            Route::Me => "/api/me",
            Route::Vault => "/api/vault",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Route::Open | Route::OpenSized => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Open => "(a)  the demo's 404, no token",
            Route::Me => "(b)  /api/me: authenticate + revocation check",
            Route::Vault => "(b2) /api/vault: + RequireAcr phr, max_age",
            Route::OpenSized => "(a2) the 404, a header the token's size, no token",
        }
    }
}

/// The header a request of `route` carries: the bearer token, or (a2) a header of the same
/// size that is no token, so that (b)/(a2) compares requests of one size.
fn header_of(route: Route, bearer: &HeaderValue) -> Option<(header::HeaderName, HeaderValue)> {
    match route {
        Route::Open => None,
        Route::Me | Route::Vault => Some((header::AUTHORIZATION, bearer.clone())),
        Route::OpenSized => {
            let padding = "p".repeat(bearer.len());
            Some((
                header::HeaderName::from_static("x-padding-as-large-as"),
                HeaderValue::from_str(&padding).unwrap(),
            ))
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

/// The secret of the demo's HS256 tokens in this harness.
const JWT_SECRET: &[u8] = b"http load secret of thirty-two bytes+";

/// The demo over `database` (and Redis for its ephemeral state), as `main.rs` builds it; the
/// issuer of the tokens it accepts.
async fn demo(
    database: app::Database,
    redis: Option<stepup_store_redis::RedisStore>,
    clock: &ManualClock,
) -> (Router, JwtIssuer) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = app::Secrets {
        jwt_secret: JWT_SECRET.to_vec(),
        seal_key_id: "k1".into(),
        seal_key: vec![1; 32],
        lookup_key: vec![2; 32],
    };
    let settings = app::Settings {
        redis,
        outbox_dir: Some(dir.keep()),
        ..app::Settings::new(database, secrets, Arc::new(clock.clone()))
    };
    let router = app::build(settings).await.unwrap();
    let issuer = JwtIssuer::hs256(JWT_SECRET)
        .unwrap()
        .with_issuer(app::DEFAULT_PUBLIC_URL)
        .with_audience(app::DEFAULT_PUBLIC_URL)
        .with_ttl(Duration::from_secs(3600))
        .with_clock(Arc::new(clock.clone()));
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
    route: Route,
    header: Option<(header::HeaderName, HeaderValue)>,
    deadline: Instant,
) -> (Sender, Vec<u64>) {
    let mut latencies = Vec::with_capacity(16_384);
    let path = route.path();
    while latencies.len() < MAX_REQUESTS_PER_ROUND && Instant::now() < deadline {
        let mut request = Request::get(path).header(header::HOST, "127.0.0.1");
        if let Some((name, value)) = &header {
            request = request.header(name, value.clone());
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        let start = Instant::now();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        latencies.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        assert_eq!(status, route.status(), "{path}: {body:?}");
        assert!(!body.is_empty());
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
    bearers: &Bearers,
    route: Route,
    length: Duration,
) -> (usize, Duration, Vec<u64>) {
    let start = Instant::now();
    let deadline = start + length;
    let tasks: Vec<_> = senders
        .drain(..)
        .enumerate()
        .map(|(n, sender)| {
            let bearer = match route {
                Route::Vault => &bearers.phr[n],
                _ => &bearers.mfa[n],
            };
            tokio::spawn(drive(sender, route, header_of(route, bearer), deadline))
        })
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

/// Each connection's tokens: one at `mfa` for `/api/me`, one at `phr` for the vault.
struct Bearers {
    mfa: Vec<HeaderValue>,
    phr: Vec<HeaderValue>,
}

/// The backends the harness runs on: SQLite always, PostgreSQL + Redis when both are set.
async fn backends(
    clock: &ManualClock,
) -> Vec<(
    &'static str,
    app::Database,
    Option<stepup_store_redis::RedisStore>,
)> {
    let shared: stepup::clock::SharedClock = Arc::new(clock.clone());
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}", dir.join("load.db").display());
    let mut backends = vec![(
        "SQLite",
        app::Database::open(&url, shared.clone()).await.unwrap(),
        None,
    )];
    if let (Ok(database), Ok(redis)) = (std::env::var("DATABASE_URL"), std::env::var("REDIS_URL")) {
        let schema = format!("stepup_load_{}", std::process::id());
        let store = stepup_store_postgres::PostgresStore::open_in_schema(
            &database,
            &schema,
            shared.clone(),
        )
        .await
        .unwrap();
        let redis = stepup_store_redis::RedisStore::open_with_clock(&redis, shared)
            .await
            .unwrap()
            .with_prefix(format!("{schema}:"));
        backends.push((
            "PostgreSQL + Redis",
            app::Database::Postgres(store),
            Some(redis),
        ));
    } else {
        println!("PostgreSQL + Redis skipped: DATABASE_URL and REDIS_URL are not both set");
    }
    backends
}

async fn requests(settings: &Settings) {
    let clock = ManualClock::at_unix(T0);
    for (name, database, redis) in backends(&clock).await {
        println!();
        println!("== the demo's router on {name}");
        requests_on(settings, database, redis, &clock).await;
    }
}

async fn requests_on(
    settings: &Settings,
    database: app::Database,
    redis: Option<stepup_store_redis::RedisStore>,
    clock: &ManualClock,
) {
    let (router, issuer) = demo(database, redis, clock).await;
    let addr = serve(
        router
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await;
    let bearer = |grant: Grant| {
        let token = issuer.issue(&grant).unwrap().access_token;
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
    };
    let bearers = Bearers {
        mfa: (0..settings.connections)
            .map(|n| {
                bearer(
                    Grant::new(format!("user-{n}"))
                        .acr("mfa")
                        .amr(["pwd", "otp"]),
                )
            })
            .collect(),
        phr: (0..settings.connections)
            .map(|n| bearer(Grant::new(format!("user-{n}")).acr("phr").amr(["hwk"])))
            .collect(),
    };
    let mut senders = Vec::new();
    for _ in 0..settings.connections {
        senders.push(connect(addr).await);
    }

    // The protected routes do protect: no token is refused; a token of a user reset since is
    // refused; a password-only token never opens the vault.
    let password_only = bearer(Grant::new("user-pwd").acr("pwd").amr(["pwd"]));
    for path in [Route::Me.path(), Route::Vault.path()] {
        assert_eq!(
            status_of(&mut senders[0], path, None).await,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        status_of(&mut senders[0], Route::Vault.path(), Some(&password_only)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&mut senders[0], Route::Me.path(), Some(&bearers.mfa[0])).await,
        StatusCode::OK
    );

    in_process(&router, &bearers, settings).await;

    // Warm-up: connections, allocator, the verifier's cache.
    for route in Route::ALL {
        round(&mut senders, &bearers, route, settings.round * 2).await;
    }

    let mut tallies: Vec<Tally> = Route::ALL.iter().map(|_| Tally::default()).collect();
    let mut ratios = Vec::new();
    let mut ratios_full = Vec::new();
    let mut ratios_sized = Vec::new();
    for n in 0..settings.rounds {
        // Rotate the order, so no route always runs first or last in a round.
        let mut line = format!("round {:2}:", n + 1);
        let mut rates = [0.0; 4];
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
        ratios_sized.push(rates[1] / rates[3]);
        println!(
            "{line}  (b)/(a) {:.3}  (b2)/(a) {:.3}  (b)/(a2) {:.3}",
            rates[1] / rates[0],
            rates[2] / rates[0],
            rates[1] / rates[3]
        );
    }

    println!();
    println!(
        "{} keep-alive connections, {} rounds x {:?} per route, HTTP/1.1 on loopback, HS256, the demo's router",
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
        "(b2)/(a): {:.3} over all rounds; per round: median {:.3}, min {:.3}, max {:.3}",
        tallies[2].rate() / open_rate,
        median(ratios_full.clone()),
        ratios_full.iter().copied().fold(f64::INFINITY, f64::min),
        ratios_full.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "(b)/(a2): {:.3} over all rounds; per round: median {:.3}, min {:.3}, max {:.3}",
        tallies[1].rate() / tallies[3].rate(),
        median(ratios_sized.clone()),
        ratios_sized.iter().copied().fold(f64::INFINITY, f64::min),
        ratios_sized.iter().copied().fold(0.0, f64::max),
    );
}

/// The same router called in process, one request at a time, without TCP or hyper: what each
/// route costs the server beyond the HTTP machinery every request pays alike, so that a gap
/// between (a) and (b) over HTTP can be put down to the layers, the routing or the handler.
async fn in_process(router: &Router, bearers: &Bearers, settings: &Settings) {
    use tower::ServiceExt;
    // As serving does (`into_make_service*`): every handler made a route once, not per request.
    let router = router.clone().with_state::<()>(());
    let calls = (settings.rounds * 500).max(1);
    let mut nanos = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for n in 0..settings.rounds.max(3) {
        for k in 0..Route::ALL.len() {
            let index = (n + k) % Route::ALL.len();
            let route = Route::ALL[index];
            let bearer = match route {
                Route::Vault => &bearers.phr[0],
                _ => &bearers.mfa[0],
            };
            let header = header_of(route, bearer);
            let start = Instant::now();
            for _ in 0..calls {
                let mut request = Request::get(route.path()).header(header::HOST, "127.0.0.1");
                if let Some((name, value)) = &header {
                    request = request.header(name, value.clone());
                }
                let request = request.body(axum::body::Body::empty()).unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), route.status());
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert!(!body.is_empty());
            }
            nanos[index].push(start.elapsed().as_nanos() as f64 / calls as f64);
        }
    }
    println!("in process (the router alone, no TCP or hyper), median ns per request:");
    let medians: Vec<f64> = nanos.into_iter().map(median).collect();
    for (route, ns) in Route::ALL.iter().zip(&medians) {
        println!(
            "  {:<50} {:>8.0} ns  ({:+.0} ns vs (a))",
            route.label(),
            ns,
            ns - medians[0]
        );
    }
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
