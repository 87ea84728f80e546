//! Shared by `tests/two_processes.rs` and `tests/faults.rs`: the demo's own start-up
//! (`examples/demo/main.rs`: configuration, backends, router, listener) over PostgreSQL + Redis,
//! a TCP relay the test can cut and restore, and an HTTP client with the demo's flows.
//!
//! Needs `DATABASE_URL` and `REDIS_URL`; without them a test prints why and passes, except under
//! `CI=true`, where it fails.
#![allow(dead_code, unreachable_pub)]

#[path = "../../examples/demo/main.rs"]
pub mod demo;

pub use backends_support::pg_support as pg;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use stepup::clock::SharedClock;
use stepup::mfa::totp::TotpAlgorithm;
use stepup::mfa::totp::TotpKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub(crate) use demo::app;

/// Where every test's clock starts.
pub const T0: u64 = 1_800_000_000;
/// The password of every test user.
pub const PASSWORD: &str = "correct horse";
/// The demo's OAuth client.
pub const CLIENT_ID: &str = "demo";
/// Its redirect URI.
pub const REDIRECT_URI: &str = "http://localhost:3000/callback";

// The same skip-or-fail rule as every backend test (`tests/backends`).
#[path = "../backends/mod.rs"]
mod backends_support;
pub use backends_support::redis_url;

/// Both servers' URLs, or `None` (the reason printed) when either is unset.
pub fn backends() -> Option<(String, String)> {
    let database = stepup_test_env::database_url()?;
    let redis = redis_url()?;
    Some((database, redis))
}

/// The keys of every demo of a test (as base64url for the environment).
pub const JWT_SECRET: &str = "processes and faults, one secret of thirty-two bytes";
/// `STEPUP_SEAL_KEY`: 32 bytes of 7, base64url.
pub const SEAL_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
/// `STEPUP_LOOKUP_KEY`: 32 bytes of 8, base64url.
pub const LOOKUP_KEY: &str = "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg";

/// The same keys, decoded.
pub fn secrets() -> app::Secrets {
    app::Secrets {
        jwt_secret: JWT_SECRET.as_bytes().to_vec(),
        seal_key_id: "k1".into(),
        seal_key: vec![7; 32],
        lookup_key: vec![8; 32],
    }
}

/// A demo configuration over `database_url` (tables in `schema`) and `redis_url` (keys under
/// `<schema>:`), listening on a free loopback port, its outboxes in `outbox_dir`.
pub fn config(
    database_url: &str,
    schema: &str,
    redis_url: Option<&str>,
    outbox_dir: PathBuf,
) -> demo::Config {
    demo::Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.to_owned(),
        database_schema: Some(schema.to_owned()),
        redis_url: redis_url.map(str::to_owned),
        redis_prefix: Some(format!("{schema}:")),
        client_id: CLIENT_ID.to_owned(),
        redirect_uri: REDIRECT_URI.to_owned(),
        public_url: "http://localhost:3000".to_owned(),
        secrets: secrets(),
        // HS256 with the shared secret, as STEPUP_JWT_SECRET gives every process.
        signing_key: None,
        resources: Vec::new(),
        external_issuer: None,
        sms: None,
        sms_regions: None,
        outbox_dir: Some(outbox_dir),
        admins: demo::app::Admins::default(),
        trusted_proxies: stepup::middleware::TrustedProxies::none(),
        dev_panel: true,
    }
}

/// Starts the demo in this process, as `main.rs` does; returns its base URL.
pub async fn serve_in_process(config: demo::Config, clock: SharedClock) -> String {
    let (listener, router) = demo::start(config, clock).await.expect("the demo starts");
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap()
    });
    base
}

/// A TCP relay in front of a server, which the test cuts (live connections closed, new ones
/// refused: nothing listens) and restores (listening again on the same address).
pub struct Relay {
    address: SocketAddr,
    upstream: String,
    tasks: Mutex<Option<JoinSet<()>>>,
    /// While `true`, nothing is relayed: connections stay open and silent, as behind a network
    /// partition that drops packets.
    frozen: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    /// A relay to `upstream` (`host:port`), listening on a free loopback port.
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Self {
            address: listener.local_addr().unwrap(),
            upstream,
            tasks: Mutex::new(None),
            frozen: tokio::sync::watch::Sender::new(false),
        };
        relay.serve(listener);
        relay
    }

    /// A relay to `upstream` that starts cut: its address is reserved, nothing listens on it.
    pub async fn start_cut(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self {
            address: listener.local_addr().unwrap(),
            upstream,
            tasks: Mutex::new(None),
            frozen: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let frozen = self.frozen.subscribe();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // Dropped with the task: every relayed connection is aborted, so closed.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mut frozen = frozen.clone();
                connections.spawn(async move {
                    let relayed = async {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    };
                    let freezes = async move {
                        let _ = frozen.wait_for(|frozen| *frozen).await.map(|_| ());
                    };
                    tokio::select! {
                        biased;
                        // Frozen: stop relaying, keep the connection open and silent.
                        () = freezes => std::future::pending::<()>().await,
                        () = relayed => {}
                    }
                });
            }
        });
        *self.tasks.lock().unwrap() = Some(tasks);
    }

    /// Stops relaying without closing anything: every connection, old or new, stays open and
    /// gets no answer (a partition, not a refusal). [`cut`](Self::cut) then
    /// [`restore`](Self::restore) end it.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Closes every relayed connection and stops listening: connecting is refused.
    pub async fn cut(&self) {
        let tasks = self.tasks.lock().unwrap().take();
        if let Some(mut tasks) = tasks {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }

    /// Listens again on the same address.
    pub async fn restore(&self) {
        self.frozen.send_replace(false);
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }
}

/// `url` with its host and port replaced by `address` (user, password, path and query kept).
pub fn through(url: &str, address: SocketAddr) -> String {
    let mut url = url::Url::parse(url).expect("a URL");
    url.set_host(Some(&address.ip().to_string())).unwrap();
    url.set_port(Some(address.port())).unwrap();
    url.to_string()
}

/// The `host:port` of `url`, with `default_port` when it names none.
pub fn host_port(url: &str, default_port: u16) -> String {
    let url = url::Url::parse(url).expect("a URL");
    let host = url.host_str().expect("a URL with a host");
    format!("{host}:{}", url.port().unwrap_or(default_port))
}

/// A fresh schema name and a directory for the outboxes.
pub fn fresh_names() -> (String, tempfile::TempDir) {
    (
        format!("stepup_test_{}", stepup_test_env::random_hex()),
        tempfile::tempdir().unwrap(),
    )
}

/// An HTTP answer: status, JSON body (`null` if none) and headers.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// Asserts a JSON error of `status` with the `error` code `error`, and no token in it.
    pub fn assert_error(&self, status: StatusCode, error: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        assert!(self.body.get("access_token").is_none(), "{}", self.body);
        assert!(self.body.get("mfa_token").is_none(), "{}", self.body);
        assert!(
            self.headers
                .get("content-type")
                .is_some_and(|value| value.as_bytes().starts_with(b"application/json")),
            "{:?}",
            self.headers
        );
    }

    /// Asserts `503 temporarily_unavailable` in JSON.
    pub fn assert_unavailable(&self) {
        self.assert_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
}

/// An HTTP client for demos, never following redirects, each request bounded in time.
#[derive(Clone)]
pub struct Http {
    client: Client,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// A client whose requests fail after 20 seconds rather than hang.
    pub fn new() -> Self {
        Self {
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    async fn read(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the demo answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            body,
            headers,
        }
    }

    /// `POST base+path` with a JSON body.
    pub async fn post(&self, base: &str, path: &str, token: Option<&str>, body: Value) -> Answer {
        let mut request = self.client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::read(request).await
    }

    /// `POST base+path` with a form body.
    pub async fn post_form(&self, base: &str, path: &str, form: &[(&str, &str)]) -> Answer {
        Self::read(self.client.post(format!("{base}{path}")).form(form)).await
    }

    /// `GET base+path`.
    pub async fn get(&self, base: &str, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::read(request).await
    }

    /// `DELETE base+path`.
    pub async fn delete(&self, base: &str, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.delete(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::read(request).await
    }

    /// Registers `email` with [`PASSWORD`].
    pub async fn register(&self, base: &str, email: &str) {
        let answer = self
            .post(
                base,
                "/api/register",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }

    /// `POST /oauth/authorize` with the password.
    pub async fn login(&self, base: &str, email: &str) -> Answer {
        self.post(
            base,
            "/oauth/authorize",
            None,
            json!({"username": email, "password": PASSWORD}),
        )
        .await
    }

    /// A password login of a user without a second factor: the token.
    pub async fn password_token(&self, base: &str, email: &str) -> String {
        let answer = self.login(base, email).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// A password login of an enrolled user: the `mfa_token`.
    pub async fn mfa_token(&self, base: &str, email: &str) -> String {
        let answer = self.login(base, email).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.body["mfa_required"], true, "{}", answer.body);
        answer.body["mfa_token"].as_str().unwrap().to_owned()
    }

    /// `POST /oauth/authorize/mfa` with a TOTP code.
    pub async fn mfa_step(&self, base: &str, mfa_token: &str, code: &str) -> Answer {
        self.post(
            base,
            "/oauth/authorize/mfa",
            None,
            json!({"mfa_token": mfa_token, "code": code}),
        )
        .await
    }

    /// Registers `email` on `register_on`, starts TOTP there and confirms it on `confirm_on`
    /// with the code of `now`; returns the key.
    pub async fn enrolled_user(
        &self,
        register_on: &str,
        confirm_on: &str,
        email: &str,
        now: u64,
    ) -> TotpKey {
        self.register(register_on, email).await;
        let token = self.password_token(register_on, email).await;
        let setup = self
            .post(register_on, "/api/mfa/setup", Some(&token), json!({}))
            .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
        let key = key_from(&setup.body);
        let confirmed = self
            .post(
                confirm_on,
                "/api/mfa/verify-setup",
                Some(&token),
                json!({"code": key.code_at(now)}),
            )
            .await;
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
        key
    }
}

/// The TOTP key of a `/api/mfa/setup` answer.
pub fn key_from(setup: &Value) -> TotpKey {
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
