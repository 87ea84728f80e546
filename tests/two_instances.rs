//! Two complete demo applications — separate routers, stores, pools and caches — over one
//! PostgreSQL database, as two instances behind a load balancer run: every single-use artefact
//! stays single-use across them, and what one revokes the other refuses.
//!
//! Needs `DATABASE_URL`; without it the test is skipped with a message, except under `CI=true`,
//! where it fails.

#[path = "../examples/demo/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use stepup::mfa::totp::TotpKey;
use stepup::{Clock, ManualClock, TotpAlgorithm};
use stepup_store_postgres::PostgresStore;

const T0: u64 = 1_800_000_000;

fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("DATABASE_URL must be set under CI: the PostgreSQL tests may not be skipped")
        }
        _ => {
            eprintln!("skipping: DATABASE_URL is not set");
            None
        }
    }
}

fn secrets() -> app::Secrets {
    app::Secrets {
        jwt_secret: b"two instances, one secret, thirty-two bytes".to_vec(),
        seal_key_id: "test".into(),
        seal_key: vec![5; 32],
        lookup_key: vec![6; 32],
    }
}

/// One instance: its own pool on the shared schema, its own router, its own port.
struct Instance {
    base: String,
}

/// Redis for the ephemeral state, under the cluster's own prefix, when asked for.
fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("REDIS_URL must be set under CI: the Redis tests may not be skipped")
        }
        _ => {
            eprintln!("skipping: REDIS_URL is not set");
            None
        }
    }
}

async fn start(url: &str, schema: &str, redis: Option<&str>, clock: &ManualClock) -> Instance {
    let shared: stepup::SharedClock = Arc::new(clock.clone());
    let store = PostgresStore::open_in_schema(url, schema, shared.clone())
        .await
        .expect("open PostgreSQL in the test's schema");
    let redis = match redis {
        Some(redis_url) => Some(
            stepup_store_redis::RedisStore::open_with_clock(redis_url, shared.clone())
                .await
                .expect("open Redis")
                .with_prefix(format!("{schema}:")),
        ),
        None => None,
    };
    let client = app::demo_client("demo", "http://localhost:3000/callback");
    // The outboxes go to a directory of the test's, never the working tree.
    let outbox_dir = std::env::temp_dir().join(schema);
    std::fs::create_dir_all(&outbox_dir).unwrap();
    let backends = app::Backends {
        database: app::Database::Postgres(store),
        redis,
        outbox_dir: Some(outbox_dir),
    };
    let router = app::router(backends, &secrets(), client, shared)
        .await
        .expect("build the demo");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.unwrap()
    });
    Instance { base }
}

struct Cluster {
    a: Instance,
    b: Instance,
    http: Client,
    clock: ManualClock,
}

impl Cluster {
    /// Two instances over one PostgreSQL schema; with `with_redis`, their ephemeral state in
    /// one Redis under the cluster's prefix.
    async fn start(with_redis: bool) -> Option<Self> {
        let url = database_url()?;
        let redis = if with_redis { Some(redis_url()?) } else { None };
        let schema = format!("stepup_two_{}", uuid::Uuid::new_v4().simple());
        let clock = ManualClock::at_unix(T0);
        let a = start(&url, &schema, redis.as_deref(), &clock).await;
        let b = start(&url, &schema, redis.as_deref(), &clock).await;
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Some(Self { a, b, http, clock })
    }

    async fn post(
        &self,
        on: &Instance,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.http.post(format!("{}{path}", on.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body, headers)
    }

    async fn delete(&self, on: &Instance, path: &str, token: &str) -> StatusCode {
        self.http
            .delete(format!("{}{path}", on.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Registers `email` on `a` and enrolls TOTP; returns the key and the backup codes.
    async fn enrolled_user(&self, email: &str) -> (TotpKey, Vec<String>) {
        let credentials = json!({"email": email, "password": "correct horse"});
        let (status, _, _) = self.post(&self.a, "/api/register", None, credentials).await;
        assert_eq!(status, StatusCode::CREATED);
        let token = self.password_token(&self.a, email).await;
        let (status, setup, _) = self
            .post(&self.a, "/api/mfa/setup", Some(&token), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{setup}");
        let key = key_from(&setup);
        let code = key.code_at(self.clock.unix_seconds());
        let (status, confirmed, _) = self
            .post(
                &self.b,
                "/api/mfa/verify-setup",
                Some(&token),
                json!({"code": code}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{confirmed}");
        let codes = confirmed["backup_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|code| code.as_str().unwrap().to_owned())
            .collect();
        (key, codes)
    }

    async fn password_token(&self, on: &Instance, email: &str) -> String {
        let (status, body, _) = self.login(on, email).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("a token").to_owned()
    }

    async fn login(
        &self,
        on: &Instance,
        email: &str,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        self.post(
            on,
            "/oauth/authorize",
            None,
            json!({"username": email, "password": "correct horse"}),
        )
        .await
    }

    async fn mfa_token(&self, on: &Instance, email: &str) -> String {
        let (status, body, _) = self.login(on, email).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["mfa_required"], true, "{body}");
        body["mfa_token"].as_str().unwrap().to_owned()
    }
}

fn key_from(setup: &Value) -> TotpKey {
    let secret = totp_rs::Secret::try_from_base32(setup["secret"].as_str().unwrap()).unwrap();
    TotpKey::new(
        secret.as_bytes(),
        TotpAlgorithm::Sha1,
        6,
        30,
        1,
        "stepup demo",
        "test",
    )
    .unwrap()
}

async fn a_totp_code_accepted_by_one_instance_is_refused_by_the_other(cluster: Cluster) {
    let (key, _) = cluster.enrolled_user("totp@example.com").await;
    cluster.clock.advance(Duration::from_secs(30));
    let code = key.code_at(cluster.clock.unix_seconds());

    let on_a = cluster.mfa_token(&cluster.a, "totp@example.com").await;
    let (status, body, _) = cluster
        .post(
            &cluster.a,
            "/oauth/authorize/mfa",
            None,
            json!({"mfa_token": on_a, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["acr"], "mfa");

    let on_b = cluster.mfa_token(&cluster.b, "totp@example.com").await;
    let (status, body, _) = cluster
        .post(
            &cluster.b,
            "/oauth/authorize/mfa",
            None,
            json!({"mfa_token": on_b, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_mfa_code");
}

async fn an_mfa_token_made_by_one_instance_completes_on_the_other_once(cluster: Cluster) {
    let (key, _) = cluster.enrolled_user("token@example.com").await;
    cluster.clock.advance(Duration::from_secs(30));
    let mfa_token = cluster.mfa_token(&cluster.a, "token@example.com").await;
    let code = key.code_at(cluster.clock.unix_seconds());
    let (status, body, _) = cluster
        .post(
            &cluster.b,
            "/oauth/authorize/mfa",
            None,
            json!({"mfa_token": mfa_token, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cluster.clock.advance(Duration::from_secs(30));
    let code = key.code_at(cluster.clock.unix_seconds());
    let (status, body, _) = cluster
        .post(
            &cluster.a,
            "/oauth/authorize/mfa",
            None,
            json!({"mfa_token": mfa_token, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_mfa_token");
}

async fn one_backup_code_raced_over_both_instances_succeeds_once(cluster: Cluster) {
    let (_, codes) = cluster.enrolled_user("backup@example.com").await;
    // 100 challenges, half from each instance, each redeemed with the same code on the other one.
    let mut tokens = Vec::new();
    for index in 0..100 {
        let on = if index % 2 == 0 {
            &cluster.a
        } else {
            &cluster.b
        };
        tokens.push(cluster.mfa_token(on, "backup@example.com").await);
    }
    let cluster = Arc::new(cluster);
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let mut tasks = Vec::new();
    for (index, mfa_token) in tokens.into_iter().enumerate() {
        let cluster = cluster.clone();
        let barrier = barrier.clone();
        let code = codes[0].clone();
        tasks.push(tokio::spawn(async move {
            let on = if index % 2 == 0 {
                &cluster.b
            } else {
                &cluster.a
            };
            barrier.wait().await;
            let (status, _, _) = cluster
                .post(
                    on,
                    "/oauth/authorize/mfa",
                    None,
                    json!({"mfa_token": mfa_token, "backup_code": code}),
                )
                .await;
            status
        }));
    }
    let mut successes = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            status == StatusCode::OK
                || status == StatusCode::UNAUTHORIZED
                || status == StatusCode::TOO_MANY_REQUESTS,
            "unexpected {status}"
        );
        successes += usize::from(status == StatusCode::OK);
    }
    assert_eq!(
        successes, 1,
        "one backup code, one success across both instances"
    );
}

async fn a_device_revoked_through_one_instance_is_refused_by_the_other(cluster: Cluster) {
    let (key, _) = cluster.enrolled_user("device@example.com").await;
    cluster.clock.advance(Duration::from_secs(30));
    let mfa_token = cluster.mfa_token(&cluster.a, "device@example.com").await;
    let code = key.code_at(cluster.clock.unix_seconds());
    let (status, body, headers) = cluster
        .post(
            &cluster.a,
            "/oauth/authorize/mfa",
            None,
            json!({"mfa_token": mfa_token, "code": code, "remember_device": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let cookie = headers["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let remembered_login = |on: &Instance| {
        cluster
            .http
            .post(format!("{}/oauth/authorize", on.base))
            .header("cookie", cookie.clone())
            .json(&json!({"username": "device@example.com", "password": "correct horse"}))
            .send()
    };
    // The device is known to the other instance…
    let body: Value = remembered_login(&cluster.b)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["access_token"].is_string(), "{body}");
    // …revoked through one…
    assert_eq!(
        cluster.delete(&cluster.a, "/api/mfa/devices", &token).await,
        StatusCode::OK
    );
    // …and refused by the other: the MFA step is asked for again.
    let body: Value = remembered_login(&cluster.b)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("access_token").is_none());
}

/// Each scenario on PostgreSQL alone and on PostgreSQL + Redis (the ephemeral state in Redis).
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(cluster) = super::Cluster::start(false).await {
                    super::$scenario(cluster).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres_and_redis() {
                if let Some(cluster) = super::Cluster::start(true).await {
                    super::$scenario(cluster).await;
                }
            }
        }
    )*};
}

on_both_backends!(
    a_totp_code_accepted_by_one_instance_is_refused_by_the_other,
    an_mfa_token_made_by_one_instance_completes_on_the_other_once,
    one_backup_code_raced_over_both_instances_succeeds_once,
    a_device_revoked_through_one_instance_is_refused_by_the_other
);
