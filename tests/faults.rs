//! Fail closed, recover by itself: the demo, started as `main.rs` starts it, over PostgreSQL and
//! Redis reached through TCP relays of the test's own, which the test cuts (live connections
//! closed, new ones refused) and restores.
//!
//! - A backend going away mid-run, its connections closed and new ones refused, or silent (a
//!   partition: open, never answered): verification (`POST /oauth/authorize/mfa` with a right code),
//!   the password step (`POST /oauth/authorize`) and `GET /healthz` answer `503` JSON within a few
//!   seconds, never a success; once the backend is back, the very same requests succeed, with no
//!   restart of the demo.
//! - Redis unreachable at start: the demo starts, answers `503`, and serves once Redis is up.
//! - PostgreSQL unreachable at start: the demo refuses to start, with an error naming the
//!   database and repeating no password (it applies its migrations before serving); started
//!   again once the database is up, it serves.
//!
//! Time is the test's [`ManualClock`]; the only waits are bounded polls for a reconnection.
//! Needs `DATABASE_URL` and `REDIS_URL` (skipped with a message without them, failing under
//! `CI=true`).

mod cluster_support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_support::*;
use reqwest::StatusCode;
use stepup::clock::{Clock, ManualClock};
use stepup::mfa::totp::TotpKey;

/// A cut backend must be answered for within this (PostgreSQL's pool waits 5 seconds for a
/// connection; Redis's connection manager gives up within about 3 with nothing listening).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How long a restored backend may take to be used again.
const RECOVER_WITHIN: Duration = Duration::from_secs(30);

/// One demo in this process, its backends behind relays.
struct Faulty {
    base: String,
    http: Http,
    clock: ManualClock,
    postgres: Relay,
    redis: Relay,
    schema: pg::TestSchema,
    _outboxes: tempfile::TempDir,
}

/// Which relays start cut.
#[derive(Clone, Copy, PartialEq)]
enum AtStart {
    Up,
    RedisDown,
}

impl Faulty {
    /// The demo over relayed PostgreSQL and (with `with_redis`) relayed Redis.
    async fn start(with_redis: bool, at_start: AtStart) -> Option<Self> {
        let (database_url, redis_url) = backends()?;
        let schema = pg::TestSchema::create().await?;
        let postgres = Relay::start(host_port(&database_url, 5432)).await;
        let redis = match at_start {
            AtStart::Up => Relay::start(host_port(&redis_url, 6379)).await,
            AtStart::RedisDown => Relay::start_cut(host_port(&redis_url, 6379)).await,
        };
        let redis_through = through(&redis_url, redis.address());
        let (_, outboxes) = fresh_names();
        let config = config(
            &through(&database_url, postgres.address()),
            schema.name(),
            with_redis.then_some(redis_through.as_str()),
            outboxes.path().to_owned(),
        );
        let clock = ManualClock::at_unix(T0);
        let started = Instant::now();
        let base = serve_in_process(config, Arc::new(clock.clone())).await;
        eprintln!("started in {:?}", started.elapsed());
        Some(Self {
            base,
            http: Http::new(),
            clock,
            postgres,
            redis,
            schema,
            _outboxes: outboxes,
        })
    }

    /// An enrolled user, the clock moved to a fresh TOTP step, and an `mfa_token` with the
    /// step's right code.
    async fn pending_login(&self, email: &str) -> (TotpKey, String, String) {
        let key = self
            .http
            .enrolled_user(&self.base, &self.base, email, self.clock.unix_seconds())
            .await;
        self.clock.advance(Duration::from_secs(30));
        let mfa_token = self.http.mfa_token(&self.base, email).await;
        let code = key.code_at(self.clock.unix_seconds());
        (key, mfa_token, code)
    }

    /// While a backend is away: the right code, the password step and the health check (at
    /// once) are all `503` JSON, each within [`ANSWER_WITHIN`]; the right code again, still.
    async fn assert_fails_closed(&self, email: &str, mfa_token: &str, code: &str) {
        let (verification, login, health) = tokio::join!(
            timed(self.http.mfa_step(&self.base, mfa_token, code)),
            timed(self.http.login(&self.base, email)),
            timed(self.http.get(&self.base, "/healthz", None)),
        );
        verification.assert_unavailable();
        login.assert_unavailable();
        health.assert_unavailable();
        // Asked again, still closed: no retry path lets a request through.
        let answer = timed(self.http.mfa_step(&self.base, mfa_token, code)).await;
        answer.assert_unavailable();
    }

    /// Polls `/healthz` (bounded) until the demo has reconnected by itself.
    async fn await_healthy(&self) {
        let started = Instant::now();
        loop {
            let answer = self.http.get(&self.base, "/healthz", None).await;
            if answer.status == StatusCode::OK {
                eprintln!("healthy again after {:?}", started.elapsed());
                return;
            }
            answer.assert_unavailable();
            assert!(
                started.elapsed() < RECOVER_WITHIN,
                "not recovered within {RECOVER_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Once recovered: the same `mfa_token` and code that got `503` now log in, once; the
    /// password step asks for the second factor again.
    async fn assert_serves_again(&self, email: &str, mfa_token: &str, code: &str) {
        let answer = self.http.mfa_step(&self.base, mfa_token, code).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body["acr"], "mfa", "{}", answer.body);
        let token = answer.body["access_token"].as_str().expect("a token");
        let me = self.http.get(&self.base, "/api/me", Some(token)).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        // Still single-use after the outage.
        self.http
            .mfa_step(&self.base, mfa_token, code)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
        let answer = self.http.login(&self.base, email).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body["mfa_required"], true, "{}", answer.body);
    }

    async fn finish(self) {
        self.schema.drop_schema().await;
    }
}

/// Awaits `answer`, asserting it came within [`ANSWER_WITHIN`].
async fn timed(answer: impl Future<Output = Answer>) -> Answer {
    let started = Instant::now();
    let answer = answer.await;
    let elapsed = started.elapsed();
    eprintln!("{} after {elapsed:?}", answer.status);
    assert!(elapsed < ANSWER_WITHIN, "answered after {elapsed:?}");
    answer
}

/// Which backend goes away.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Postgres,
    Redis,
}

/// How a backend goes away.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// Connections closed, new ones refused.
    Cut,
    /// Connections open but silent (a partition).
    Frozen,
}

/// An enrolled user with a pending login; `backend` goes away (`503` for everything, within
/// the timeouts) and comes back (the same requests succeed, no restart).
async fn outage(backend: Backend, with_redis: bool, outage: Outage) {
    let Some(demo) = Faulty::start(with_redis, AtStart::Up).await else {
        return;
    };
    let email = "outage@example.com";
    let (_, mfa_token, code) = demo.pending_login(email).await;
    let relay = match backend {
        Backend::Postgres => &demo.postgres,
        Backend::Redis => &demo.redis,
    };

    match outage {
        Outage::Cut => relay.cut().await,
        Outage::Frozen => relay.freeze(),
    }
    demo.assert_fails_closed(email, &mfa_token, &code).await;

    if let Outage::Frozen = outage {
        // The partition heals; the silent connections are dropped, as their peers' timeouts
        // would.
        relay.cut().await;
    }
    relay.restore().await;
    demo.await_healthy().await;
    demo.assert_serves_again(email, &mfa_token, &code).await;
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_fails_closed_and_service_resumes() {
    outage(Backend::Postgres, true, Outage::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_alone_going_away_fails_closed_and_service_resumes() {
    outage(Backend::Postgres, false, Outage::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_fails_closed_and_service_resumes() {
    outage(Backend::Redis, true, Outage::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_postgres_fails_closed_within_the_timeouts() {
    outage(Backend::Postgres, true, Outage::Frozen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redis_fails_closed_within_the_timeouts() {
    outage(Backend::Redis, true, Outage::Frozen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_at_start_serves_503_then_recovers() {
    let started = Instant::now();
    let Some(demo) = Faulty::start(true, AtStart::RedisDown).await else {
        return;
    };
    assert!(
        started.elapsed() < ANSWER_WITHIN,
        "the demo waited for Redis to start: {:?}",
        started.elapsed()
    );
    let email = "late@example.com";
    let answer = timed(demo.http.get(&demo.base, "/healthz", None)).await;
    answer.assert_unavailable();
    // Registration is limited per address in Redis: closed too.
    let answer = timed(demo.http.post(
        &demo.base,
        "/api/register",
        None,
        serde_json::json!({"email": email, "password": PASSWORD}),
    ))
    .await;
    answer.assert_unavailable();
    let answer = timed(demo.http.mfa_step(&demo.base, "an-mfa-token", "123456")).await;
    answer.assert_unavailable();

    demo.redis.restore().await;
    demo.await_healthy().await;
    let (_, mfa_token, code) = demo.pending_login(email).await;
    let answer = demo.http.mfa_step(&demo.base, &mfa_token, &code).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["acr"], "mfa", "{}", answer.body);
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_at_start_refuses_to_start_naming_the_database() {
    let Some((database_url, redis_url)) = backends() else {
        return;
    };
    let Some(schema) = pg::TestSchema::create().await else {
        return;
    };
    let postgres = Relay::start_cut(host_port(&database_url, 5432)).await;
    let mut with_password = url::Url::parse(&database_url).unwrap();
    with_password.set_password(Some("s3cret-password")).unwrap();
    let (_, outboxes) = fresh_names();
    let config = |url: &str| {
        config(
            &through(url, postgres.address()),
            schema.name(),
            Some(&redis_url),
            outboxes.path().to_owned(),
        )
    };
    let clock = ManualClock::at_unix(T0);

    let started = Instant::now();
    let refused = demo::start(config(with_password.as_str()), Arc::new(clock.clone())).await;
    let elapsed = started.elapsed();
    let Err(error) = refused else {
        panic!("the demo started without its database");
    };
    let message = error.to_string();
    eprintln!("refused after {elapsed:?}: {message}");
    assert!(message.contains("STEPUP_DATABASE_URL"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert!(elapsed < ANSWER_WITHIN + ANSWER_WITHIN, "took {elapsed:?}");

    // Started again once the database is up (as a supervisor's restart does), it serves.
    postgres.restore().await;
    let base = serve_in_process(config(&database_url), Arc::new(clock.clone())).await;
    let http = Http::new();
    let answer = http.get(&base, "/healthz", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    http.register(&base, "first@example.com").await;
    http.password_token(&base, "first@example.com").await;
    schema.drop_schema().await;
}
