//! A fake OpenID Connect provider on 127.0.0.1: discovery, a JWKS it can rotate, an outage switch,
//! `Cache-Control: max-age`, and a count of every fetch; plus RS256/ES256 keys that mint tokens.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const RSA_PRIVATE: &[u8] = include_bytes!("../keys/rsa_private.pem");
pub const EC_PRIVATE: &[u8] = include_bytes!("../keys/ec_private.pem");

/// A signing key of the provider, published as a JWK under `kid`.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    pub jwk: Jwk,
}

impl TestKey {
    /// The test RSA key (RS256) under `kid`.
    pub fn rsa(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        )
    }

    /// The test P-256 key (ES256) under `kid`.
    pub fn ec(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        )
    }

    fn new(kid: &str, algorithm: Algorithm, encoding: EncodingKey) -> Self {
        stepup::token::crypto_provider();
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            jwk,
        }
    }

    /// A token over `claims`, signed by this key and naming it.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.algorithm, Some(&self.kid), claims)
    }

    /// A token with the header `alg` and `kid` given, signed by this key (under its own
    /// algorithm when the header lies).
    pub fn sign_as(&self, header_alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        stepup::token::crypto_provider();
        let mut header = Header::new(self.algorithm);
        header.kid = kid.map(str::to_owned);
        let token = jsonwebtoken::encode(&header, claims, &self.encoding).unwrap();
        if header_alg == self.algorithm {
            return token;
        }
        // Rewrite the header only: the signature no longer covers it, and the algorithm must
        // be refused before that matters.
        let mut lying = Header::new(header_alg);
        lying.kid = kid.map(str::to_owned);
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&lying).unwrap(),
        );
        let (_, rest) = token.split_once('.').unwrap();
        format!("{encoded}.{rest}")
    }
}

struct IdpState {
    issuer: String,
    base: String,
    keys: Mutex<Vec<Jwk>>,
    down: AtomicBool,
    max_age: Mutex<Option<u64>>,
    discovery_issuer: Mutex<Option<String>>,
    discovery_fetches: Mutex<u64>,
    jwks_fetches: tokio::sync::watch::Sender<u64>,
}

/// The provider: an axum app on 127.0.0.1:0, stopped when dropped.
pub struct FakeIdp {
    pub issuer: String,
    pub base: String,
    state: Arc<IdpState>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeIdp {
    /// A provider whose issuer is `http://127.0.0.1:PORT{path}` (`path` empty or starting with
    /// `/`), publishing `keys`.
    pub async fn start(path: &str, keys: &[&TestKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{base}{path}");
        let (jwks_fetches, _) = tokio::sync::watch::channel(0);
        let state = Arc::new(IdpState {
            issuer: issuer.clone(),
            base: base.clone(),
            keys: Mutex::new(keys.iter().map(|key| key.jwk.clone()).collect()),
            down: AtomicBool::new(false),
            max_age: Mutex::new(None),
            discovery_issuer: Mutex::new(None),
            discovery_fetches: Mutex::new(0),
            jwks_fetches,
        });
        let app = Router::new()
            .route(
                &format!("{path}/.well-known/openid-configuration"),
                get(discovery),
            )
            .route("/keys", get(jwks))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            issuer,
            base,
            state,
            server,
        }
    }

    /// The JWKS URL (what discovery names).
    pub fn jwks_url(&self) -> String {
        format!("{}/keys", self.base)
    }

    /// Publishes exactly `keys` from now on.
    pub fn publish(&self, keys: &[&TestKey]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|key| key.jwk.clone()).collect();
    }

    /// Publishes raw JWKs.
    pub fn publish_jwks(&self, jwks: Vec<Jwk>) {
        *self.state.keys.lock().unwrap() = jwks;
    }

    /// An outage: every endpoint answers 503.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// The `Cache-Control: max-age` of the JWKS responses.
    pub fn set_max_age(&self, seconds: Option<u64>) {
        *self.state.max_age.lock().unwrap() = seconds;
    }

    /// Makes discovery name another issuer.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    /// JWKS requests received (failed ones included).
    pub fn jwks_fetches(&self) -> u64 {
        *self.state.jwks_fetches.borrow()
    }

    /// Discovery requests received.
    pub fn discovery_fetches(&self) -> u64 {
        *self.state.discovery_fetches.lock().unwrap()
    }

    /// Waits (an event, not a sleep; at most 10 s) until `count` JWKS requests were received.
    pub async fn wait_for_jwks_fetches(&self, count: u64) {
        let mut fetches = self.state.jwks_fetches.subscribe();
        tokio::time::timeout(Duration::from_secs(10), fetches.wait_for(|&n| n >= count))
            .await
            .unwrap_or_else(|_| {
                panic!("{count} JWKS fetches awaited, {} seen", self.jwks_fetches())
            })
            .unwrap();
    }
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn discovery(State(state): State<Arc<IdpState>>) -> Response {
    *state.discovery_fetches.lock().unwrap() += 1;
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let issuer = state
        .discovery_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| state.issuer.clone());
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/keys", state.base),
        "authorization_endpoint": format!("{}/authorize", state.issuer),
        "token_endpoint": format!("{}/token", state.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<IdpState>>) -> Response {
    state.jwks_fetches.send_modify(|count| *count += 1);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = state.keys.lock().unwrap().clone();
    let mut response = axum::Json(json!({ "keys": keys })).into_response();
    if let Some(seconds) = *state.max_age.lock().unwrap() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={seconds}")).unwrap(),
        );
    }
    response
}
