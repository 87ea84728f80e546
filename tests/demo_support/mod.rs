//! A demo server for the demo's own end-to-end tests: real socket, SQLite file, the clock in the
//! test's hands. (The library's HTTP tests have their own application:
//! `crates/stepup-axum/tests/support`.)
#![allow(dead_code, unreachable_pub)]

#[path = "../../examples/demo/app.rs"]
pub mod app;
#[path = "../backends/mod.rs"]
pub mod backends;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use stepup::clock::{Clock, ManualClock};
use stepup::mfa::totp::TotpAlgorithm;
use stepup::mfa::totp::TotpKey;
use stepup::token::Grant;
use stepup::{JwtIssuer, SqliteStore};
pub use stepup_test_env::Answer;

pub const T0: u64 = 1_800_000_000;
pub const CLIENT_ID: &str = "demo";
pub const REDIRECT_URI: &str = "http://localhost:3000/callback";
pub const JWT_SECRET: &[u8] = b"demo test secret, thirty-two bytes at least";

pub fn secrets() -> app::Secrets {
    app::Secrets {
        jwt_secret: JWT_SECRET.to_vec(),
        seal_key_id: "test".into(),
        seal_key: vec![3; 32],
        lookup_key: vec![4; 32],
    }
}

/// A running demo over SQLite.
pub struct Demo {
    pub base: String,
    pub client: Client,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    pub store: SqliteStore,
}

/// Serves `router` on a fresh local port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.unwrap()
    });
    base
}

/// The test's HTTP client: redirects are part of the contract under test, never followed.
fn http_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Demo {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, ManualClock::at_unix(T0)).await
    }

    /// A demo server over the database in `dir`.
    pub async fn start_in(dir: tempfile::TempDir, clock: ManualClock) -> Self {
        Self::start_full(dir, clock, |_| {}).await
    }

    /// A demo server over a fresh database, its settings changed by `configure` first.
    pub async fn start_configured(configure: impl FnOnce(&mut app::Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_full(dir, ManualClock::at_unix(T0), configure).await
    }

    /// The demo as an authorization server for other resources: served on `listener` (its URL
    /// is the issuer), signing with a fresh ES256 key, issuing tokens for `resources`.
    pub async fn start_authorization_server(
        listener: tokio::net::TcpListener,
        clock: ManualClock,
        resources: Vec<String>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // `localhost`, not the IP address: a WebAuthn relying party is named by a domain.
        let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let url = format!("sqlite://{}", dir.path().join("demo.db").display());
        let database = app::Database::open(&url, Arc::new(clock.clone()))
            .await
            .unwrap();
        let app::Database::Sqlite(store) = database.clone() else {
            panic!("a sqlite:// URL opens SQLite");
        };
        let settings = app::Settings {
            public_url: base.clone(),
            signing_key: Some(stepup::SigningKey::generate_es256("demo-key").unwrap().key),
            resources,
            ..app::Settings::new(database, secrets(), Arc::new(clock.clone()))
        };
        let router = app::build(settings).await.unwrap();
        tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service).await.unwrap()
        });
        Self {
            base,
            client: http_client(),
            clock,
            dir,
            store,
        }
    }

    /// A demo whose factors the users of `external` may use (token exchange).
    pub async fn start_with_external_issuer(external: stepup::token::TrustedIssuer) -> Self {
        Self::start_configured(|settings| settings.external_issuer = Some(external)).await
    }

    async fn start_full(
        dir: tempfile::TempDir,
        clock: ManualClock,
        configure: impl FnOnce(&mut app::Settings),
    ) -> Self {
        let url = format!("sqlite://{}", dir.path().join("demo.db").display());
        let database = app::Database::open(&url, Arc::new(clock.clone()))
            .await
            .unwrap();
        let app::Database::Sqlite(store) = database.clone() else {
            panic!("a sqlite:// URL opens SQLite");
        };
        let mut settings = app::Settings::new(database, secrets(), Arc::new(clock.clone()));
        configure(&mut settings);
        let router = app::build(settings).await.unwrap();
        Self {
            base: serve(router).await,
            client: http_client(),
            clock,
            dir,
            store,
        }
    }
}

impl Demo {
    /// A token minted with the demo's own key, as the future MFA step would.
    pub fn mint(&self, grant: &Grant) -> String {
        JwtIssuer::hs256(JWT_SECRET)
            .unwrap()
            .with_issuer(app::DEFAULT_PUBLIC_URL)
            .with_audience(app::DEFAULT_PUBLIC_URL)
            .with_clock(Arc::new(self.clock.clone()))
            .issue(grant)
            .unwrap()
            .access_token
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        Answer::read(self.request(reqwest::Method::POST, path, token).json(&body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        Answer::read(self.request(reqwest::Method::GET, path, token)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        Answer::read(self.request(reqwest::Method::DELETE, path, token)).await
    }

    pub async fn register(&self, email: &str) -> String {
        let answer = self
            .post(
                "/api/register",
                None,
                json!({"email": email, "password": "correct horse"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        answer.body["user_id"].as_str().unwrap().to_owned()
    }

    pub async fn login(&self, email: &str) -> Answer {
        self.post(
            "/oauth/authorize",
            None,
            json!({"username": email, "password": "correct horse"}),
        )
        .await
    }

    /// Registers, logs in and enrolls an authenticator; returns the password token, the TOTP key
    /// and the backup codes. The clock ends on a fresh time step.
    pub async fn enrolled_user(&self, email: &str) -> (String, TotpKey, Vec<String>) {
        self.register(email).await;
        let token = self.login(email).await.body["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let setup = self.post("/api/mfa/setup", Some(&token), json!({})).await;
        assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
        let secret =
            totp_rs::Secret::try_from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
        let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();
        let code = key.code_at(self.clock.unix_seconds());
        let verified = self
            .post("/api/mfa/verify-setup", Some(&token), json!({"code": code}))
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
        let codes = verified.body["backup_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|code| code.as_str().unwrap().to_owned())
            .collect();
        self.clock.advance(Duration::from_secs(30));
        (token, key, codes)
    }

    pub fn code(&self, key: &TotpKey) -> String {
        key.code_at(self.clock.unix_seconds())
    }

    /// Logs in with the password and returns the `mfa_token` of the second step.
    pub async fn mfa_token(&self, email: &str) -> String {
        let login = self.login(email).await;
        assert_eq!(login.body["mfa_required"], true, "{login:?}");
        login.body["mfa_token"].as_str().unwrap().to_owned()
    }

    /// `POST /oauth/authorize/mfa` with `mfa_token` and the fields of `proof`.
    pub async fn mfa_step(&self, mfa_token: &str, mut proof: Value) -> Answer {
        proof["mfa_token"] = json!(mfa_token);
        self.post("/oauth/authorize/mfa", None, proof).await
    }

    /// The second step with the authenticator's current code.
    pub async fn mfa_step_with_code(&self, mfa_token: &str, key: &TotpKey) -> Answer {
        self.mfa_step(mfa_token, json!({"code": self.code(key)}))
            .await
    }
}

pub const CHALLENGE: &str = "Bearer error=\"insufficient_user_authentication\", \
     error_description=\"a stronger authentication level is required\", \
     acr_values=\"mfa\", max_age=300";
