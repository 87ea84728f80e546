//! A demo server for end-to-end tests: real socket, SQLite file (or a PostgreSQL schema of the
//! test's own, [`Demo::start_postgres`]), the clock in the test's hands.
#![allow(dead_code, unreachable_pub)]

#[path = "../../examples/demo/app.rs"]
pub mod app;
#[path = "../backends/mod.rs"]
pub mod backends;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use stepup::mfa::totp::TotpKey;
use stepup::clock::{Clock, ManualClock};
use stepup::mfa::totp::TotpAlgorithm;
use stepup::token::Grant;
use stepup::{JwtIssuer, SqliteStore};
use stepup_store_postgres::PostgresStore;

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

/// A running demo over `S` (SQLite by default, or [`PostgresStore`]).
pub struct Demo<S = SqliteStore> {
    pub base: String,
    pub client: Client,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    pub store: S,
    /// Where the demo writes its SMS and its mail.
    pub sms_outbox: std::path::PathBuf,
    pub mail_outbox: std::path::PathBuf,
    /// The PostgreSQL schema, dropped by [`Demo::finish`].
    pub schema: Option<backends::TestSchema>,
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

impl Demo<PostgresStore> {
    /// A demo over a PostgreSQL schema of the test's own at `DATABASE_URL` (the outboxes in a
    /// temporary directory); `None` (the reason printed) without `DATABASE_URL`, a panic under
    /// `CI=true`.
    pub async fn start_postgres() -> Option<Self> {
        let clock = ManualClock::at_unix(T0);
        let backends::Postgres { store, schema } = backends::Postgres::start(&clock).await?;
        let dir = tempfile::tempdir().unwrap();
        let settings = app::Settings {
            outbox_dir: Some(dir.path().to_owned()),
            ..app::Settings::new(
                app::Database::Postgres(store.clone()),
                secrets(),
                Arc::new(clock.clone()),
            )
        };
        let router = app::build(settings).await.unwrap();
        Some(Self {
            base: serve(router).await,
            client: http_client(),
            clock,
            sms_outbox: dir.path().join("demo.sms.jsonl"),
            mail_outbox: dir.path().join("demo.mail.jsonl"),
            dir,
            store,
            schema: Some(schema),
        })
    }
}

impl<S> Demo<S> {
    /// Ends the test: drops the PostgreSQL schema, if any (a failed test leaves it behind).
    pub async fn finish(self) {
        if let Some(schema) = self.schema {
            schema.drop_schema().await;
        }
    }
}

impl Demo {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, ManualClock::at_unix(T0)).await
    }

    /// A demo server over the database in `dir`.
    pub async fn start_in(dir: tempfile::TempDir, clock: ManualClock) -> Self {
        Self::start_at(dir, clock, app::DEFAULT_PUBLIC_URL).await
    }

    /// A demo server over the database in `dir`, configured as reached at `public_url` (its
    /// WebAuthn origin; the host is the `rp_id`). It still listens on a local port.
    pub async fn start_at(dir: tempfile::TempDir, clock: ManualClock, public_url: &str) -> Self {
        Self::start_full(dir, clock, public_url, app::Admins::default()).await
    }

    /// A demo server over the database in `dir` whose administrators (`STEPUP_ADMINS`) are
    /// `admins` (user ids). Another demo may be running on the same file: both serve it.
    pub async fn start_with_admins(
        dir: tempfile::TempDir,
        clock: ManualClock,
        admins: &[String],
    ) -> Self {
        let admins = app::Admins::new(admins.iter().cloned());
        Self::start_full(dir, clock, app::DEFAULT_PUBLIC_URL, admins).await
    }

    async fn start_full(
        dir: tempfile::TempDir,
        clock: ManualClock,
        public_url: &str,
        admins: app::Admins,
    ) -> Self {
        let url = format!("sqlite://{}", dir.path().join("demo.db").display());
        let database = app::Database::open(&url, Arc::new(clock.clone()))
            .await
            .unwrap();
        let app::Database::Sqlite(store) = database.clone() else {
            panic!("a sqlite:// URL opens SQLite");
        };
        let settings = app::Settings {
            public_url: public_url.to_owned(),
            admins,
            ..app::Settings::new(database, secrets(), Arc::new(clock.clone()))
        };
        let router = app::build(settings).await.unwrap();
        Self {
            base: serve(router).await,
            client: http_client(),
            clock,
            sms_outbox: dir.path().join("demo.db.sms.jsonl"),
            mail_outbox: dir.path().join("demo.db.mail.jsonl"),
            dir,
            store,
            schema: None,
        }
    }
}

impl<S> Demo<S> {
    /// A token minted with the demo's own key, as the future MFA step would.
    pub fn mint(&self, grant: &Grant) -> String {
        JwtIssuer::hs256(JWT_SECRET)
            .unwrap()
            .with_issuer(app::TOKEN_ISSUER)
            .with_audience(app::TOKEN_ISSUER)
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

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub cache_control: Option<String>,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Answer {
    pub async fn read(request: RequestBuilder) -> Self {
        let response = request.send().await.unwrap();
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &reqwest::header::HeaderValue| value.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/json"),
            "{status}"
        );
        let challenge = header("www-authenticate");
        let cache_control = header("cache-control");
        let retry_after = header("retry-after");
        Self {
            status,
            challenge,
            cache_control,
            retry_after,
            body: response.json().await.unwrap(),
        }
    }

    /// Asserts an error answer: `status`, `{"error": code, "error_description": …}`, and never
    /// cached (`Cache-Control: no-store`).
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["error"], code, "{self:?}");
        assert!(
            self.body["error_description"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "{self:?}"
        );
        assert_eq!(
            self.cache_control.as_deref(),
            Some("no-store"),
            "an error answer is never cached: {self:?}"
        );
    }

    pub fn token(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        self.body["access_token"].as_str().unwrap().to_owned()
    }
}

pub const CHALLENGE: &str = "Bearer error=\"insufficient_user_authentication\", \
     error_description=\"a stronger authentication level is required\", \
     acr_values=\"mfa\", max_age=300";

/// Every SMS the demo "sent" so far: the lines of its outbox (beside the SQLite database).
pub fn sms_outbox<S>(demo: &Demo<S>) -> Vec<Value> {
    std::fs::read_to_string(&demo.sms_outbox)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The code of the last SMS the demo "sent".
pub fn last_sms_code<S>(demo: &Demo<S>) -> String {
    let sent = sms_outbox(demo);
    let body = sent.last().expect("an SMS was sent")["body"]
        .as_str()
        .unwrap()
        .to_owned();
    body.split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 6)
        .expect("the SMS holds a 6-digit code")
        .to_owned()
}

/// Every mail in the demo's outbox (`<database>.mail.jsonl` for SQLite), oldest first.
pub fn mail_outbox<S>(demo: &Demo<S>) -> Vec<Value> {
    std::fs::read_to_string(&demo.mail_outbox)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The outbox once it holds at least `count` mails: mails leave in the background, so this waits
/// for the writer (real time, at most 10 s; no clock is involved).
pub async fn mails_at_least<S>(demo: &Demo<S>, count: usize) -> Vec<Value> {
    for _ in 0..1000 {
        let mails = mail_outbox(demo);
        if mails.len() >= count {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the outbox never held {count} mails: {:?}",
        mail_outbox(demo)
    );
}

/// The recovery code in a recovery mail's body.
pub fn recovery_code_in(body: &str) -> String {
    body.split("Recovery code: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a recovery mail holds its code")
        .to_owned()
}

// ---- OAuth 2.1 with PKCE, and the remembered device, for every factor's tests ----

/// The PKCE verifier of [`with_pkce`] requests.
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more";
/// The `state` of [`with_pkce`] requests, returned in the redirect.
pub const PKCE_STATE: &str = "af0ifjsldkj&x=1";

/// `body` with the demo client's authorization parameters (S256 challenge of
/// [`PKCE_VERIFIER`], [`PKCE_STATE`]).
pub fn with_pkce(mut body: Value) -> Value {
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(PKCE_VERIFIER.as_bytes()));
    body["client_id"] = json!(CLIENT_ID);
    body["redirect_uri"] = json!(REDIRECT_URI);
    body["state"] = json!(PKCE_STATE);
    body["code_challenge"] = json!(challenge);
    body["code_challenge_method"] = json!("S256");
    body
}

/// Posts `body` to `path`, expects a `302` to the client's redirect URI with [`PKCE_STATE`];
/// returns the code.
pub async fn redirected_code<S>(demo: &Demo<S>, path: &str, body: Value) -> String {
    let response = demo
        .request(reqwest::Method::POST, path, None)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "{:?}", response);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let query = location
        .strip_prefix(&format!("{REDIRECT_URI}?"))
        .unwrap_or_else(|| panic!("redirected elsewhere: {location}"));
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let get = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(get("state").as_deref(), Some(PKCE_STATE));
    get("code").expect("the redirect carries a code")
}

/// `POST /oauth/token` with `code` and [`PKCE_VERIFIER`].
pub async fn redeem_code<S>(demo: &Demo<S>, code: &str) -> Answer {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", PKCE_VERIFIER),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", CLIENT_ID),
    ];
    Answer::read(
        demo.request(reqwest::Method::POST, "/oauth/token", None)
            .form(&form),
    )
    .await
}

/// The MFA step of `mfa_token` with `proof` and `remember_device`; returns the answer and the
/// `name=value` of the device cookie it set.
pub async fn remembered_step<S>(
    demo: &Demo<S>,
    mfa_token: &str,
    mut proof: Value,
) -> (Answer, String) {
    proof["mfa_token"] = json!(mfa_token);
    proof["remember_device"] = json!(true);
    let response = demo
        .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
        .json(&proof)
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|value| {
            value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        })
        .expect("a remembered device gets its cookie");
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let answer = Answer {
        status,
        challenge: None,
        cache_control: None,
        retry_after: None,
        body,
    };
    (answer, cookie)
}

/// A password login of `email` presenting the device `cookie`.
pub async fn login_with_cookie<S>(demo: &Demo<S>, email: &str, cookie: &str) -> Answer {
    Answer::read(
        demo.request(reqwest::Method::POST, "/oauth/authorize", None)
            .header("cookie", cookie)
            .json(&json!({"username": email, "password": "correct horse"})),
    )
    .await
}

/// Runs each named `async fn test<S>(demo: &Demo<S>)` on a demo over SQLite (`mod sqlite`) and
/// on one over PostgreSQL (`mod postgres`: skipped, with the reason printed, without
/// `DATABASE_URL`; failing under `CI=true`).
#[allow(unused_macros)] // Only the tests that run on both backends use it.
macro_rules! on_sqlite_and_postgres {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let demo = super::Demo::start().await;
                    super::$test(&demo).await;
                    demo.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(demo) = super::Demo::start_postgres().await else {
                        return;
                    };
                    super::$test(&demo).await;
                    demo.finish().await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_sqlite_and_postgres;
