//! DPoP-bound tokens from the drop-in routes (RFC 9449 §5): a `DPoP` proof on `POST /oauth/token`
//! or on a login answered with a token binds the access token to the proof's key (`cnf.jkt`,
//! `token_type: "DPoP"`). Proofs are made here by an independent client: signed by
//! `ed25519-dalek`, the RFC 7638 thumbprint computed by hand.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stepup_core::AuthContext;
use stepup_core::clock::Clock;
use support::*;

/// The client's DPoP key.
struct Key(ed25519_dalek::SigningKey);

impl Key {
    fn new(seed: u8) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.verifying_key().as_bytes())
    }

    fn thumbprint(&self) -> String {
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.x());
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A proof for `POST {PUBLIC_URL}{path}` at `iat`.
    fn proof(&self, path: &str, iat: u64, jti: &str) -> String {
        let htu = format!("{PUBLIC_URL}{path}");
        self.sign(&json!({"jti": jti, "htm": "POST", "htu": htu, "iat": iat}))
    }

    /// A proof for `GET {PUBLIC_URL}{path}` with `token`, at `iat`.
    fn resource_proof(&self, path: &str, token: &str, iat: u64, jti: &str) -> String {
        self.proof_with_token("GET", path, token, iat, jti)
    }

    /// A proof for `method {PUBLIC_URL}{path}` with `token`, at `iat`.
    fn proof_with_token(
        &self,
        method: &str,
        path: &str,
        token: &str,
        iat: u64,
        jti: &str,
    ) -> String {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        let htu = format!("{PUBLIC_URL}{path}");
        self.sign(&json!({"jti": jti, "htm": method, "htu": htu, "iat": iat, "ath": ath}))
    }

    fn sign(&self, claims: &Value) -> String {
        use ed25519_dalek::Signer;
        let header = json!({
            "typ": "dpop+jwt",
            "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": self.x()},
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = URL_SAFE_NO_PAD.encode(self.0.sign(input.as_bytes()).to_bytes());
        format!("{input}.{signature}")
    }
}

/// The claims of an access token (no signature check: the routes' own verifier does that).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn post_with_proof(app: &App, path: &str, proof: &str, body: Value) -> Answer {
    Answer::read(
        app.request(Method::POST, path, None)
            .header("DPoP", proof)
            .json(&body),
    )
    .await
}

async fn exchange_with_proof(app: &App, proof: Option<&str>, form: &[(&str, &str)]) -> Answer {
    let mut request = app.request(Method::POST, "/oauth/token", None).form(form);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    Answer::read(request).await
}

#[tokio::test]
async fn a_password_login_with_a_proof_answers_a_bound_token() {
    let app = sqlite_app().await;
    app.register("dee@example.com").await;
    let key = Key::new(1);
    let now = app.clock.unix_seconds();
    let proof = key.proof("/oauth/authorize", now, "login-1");
    let body = json!({"username": "dee@example.com", "password": PASSWORD});
    let answer = post_with_proof(&app, "/oauth/authorize", &proof, body.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["token_type"], "DPoP");
    let token = answer.token();
    assert_eq!(claims_of(&token)["cnf"], json!({"jkt": key.thumbprint()}));

    // The same proof again, or one made for another endpoint: `400 invalid_dpop_proof`.
    post_with_proof(&app, "/oauth/authorize", &proof, body.clone())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    let elsewhere = key.proof("/oauth/token", now, "login-2");
    post_with_proof(&app, "/oauth/authorize", &elsewhere, body.clone())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    post_with_proof(&app, "/oauth/authorize", "not.a.proof", body.clone())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");

    // Without a proof: a bearer token, as before.
    let plain = app.login("dee@example.com").await;
    assert_eq!(plain.body["token_type"], "Bearer");
    assert!(claims_of(&plain.token()).get("cnf").is_none());
}

#[tokio::test]
async fn the_second_factor_with_a_proof_answers_a_bound_token() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("eli@example.com").await;
    let mfa_token = app.mfa_token("eli@example.com").await;
    let dpop = Key::new(2);
    let proof = dpop.proof("/oauth/authorize/mfa", app.clock.unix_seconds(), "mfa-1");
    let body = json!({"mfa_token": mfa_token, "method": "totp", "code": app.code(&key)});
    let answer = post_with_proof(&app, "/oauth/authorize/mfa", &proof, body).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["token_type"], "DPoP");
    assert_eq!(
        claims_of(&answer.token())["cnf"]["jkt"],
        json!(dpop.thumbprint())
    );
}

#[tokio::test]
async fn the_token_endpoint_binds_the_access_token_to_the_proofs_key() {
    let app = sqlite_app().await;
    app.register("fay@example.com").await;
    let code = app
        .redirected_code(
            "/oauth/authorize",
            with_pkce(json!({"username": "fay@example.com", "password": PASSWORD})),
        )
        .await;
    let key = Key::new(3);
    let now = app.clock.unix_seconds();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", PKCE_VERIFIER),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", CLIENT_ID),
    ];
    // A bad proof is refused before the code is spent.
    let stale = key.proof("/oauth/token", now - 600, "token-0");
    exchange_with_proof(&app, Some(&stale), &form)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    let proof = key.proof("/oauth/token", now, "token-1");
    let answer = exchange_with_proof(&app, Some(&proof), &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["token_type"], "DPoP");
    assert_eq!(
        claims_of(&answer.token())["cnf"]["jkt"],
        json!(key.thumbprint())
    );

    // A refresh with a proof: the new access token is bound too.
    // The refresh token is bound too: without a proof, or with another key's, it is refused
    // (and nothing rotates).
    let refresh_token = answer.body["refresh_token"]
        .as_str()
        .expect("a refresh token");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", CLIENT_ID),
    ];
    exchange_with_proof(&app, None, &form)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let thief = Key::new(9).proof("/oauth/token", now, "thief-1");
    exchange_with_proof(&app, Some(&thief), &form)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let proof = key.proof("/oauth/token", now, "token-2");
    let refreshed = exchange_with_proof(&app, Some(&proof), &form).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    assert_eq!(refreshed.body["token_type"], "DPoP");
    assert_eq!(
        claims_of(&refreshed.token())["cnf"]["jkt"],
        json!(key.thumbprint())
    );
    let rotated = refreshed.body["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rotated),
        ("client_id", CLIENT_ID),
    ];
    exchange_with_proof(&app, None, &form)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn an_unbound_refresh_token_stays_unbound_and_a_proof_binds_only_the_access_token() {
    let app = sqlite_app().await;
    app.register("hal@example.com").await;
    let code = app
        .redirected_code(
            "/oauth/authorize",
            with_pkce(json!({"username": "hal@example.com", "password": PASSWORD})),
        )
        .await;
    let answer = app.redeem_code(&code).await;
    assert_eq!(answer.body["token_type"], "Bearer", "{:?}", answer.body);
    let refresh_token = answer.body["refresh_token"].as_str().unwrap();
    let key = Key::new(5);
    let proof = key.proof("/oauth/token", app.clock.unix_seconds(), "hal-1");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", CLIENT_ID),
    ];
    let refreshed = exchange_with_proof(&app, Some(&proof), &form).await;
    assert_eq!(refreshed.body["token_type"], "DPoP", "{:?}", refreshed.body);
    let rotated = refreshed.body["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rotated),
        ("client_id", CLIENT_ID),
    ];
    let plain = exchange_with_proof(&app, None, &form).await;
    assert_eq!(plain.body["token_type"], "Bearer", "{:?}", plain.body);
}

#[tokio::test]
async fn the_metadata_names_the_proof_algorithms() {
    let app = sqlite_app().await;
    let metadata = app
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert_eq!(
        metadata.body["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "PS256"])
    );
}

on_backends!([postgres, postgres_redis]
    a_proof_accepted_by_one_instance_is_refused_by_the_other,
);

/// An API beside the drop-in routes of `app`'s instance, protected with DPoP through
/// `StepUp::dpop_policy`; its base URL.
async fn api_of(app: &App) -> String {
    let stepup = &app.stepup;
    let router = Router::new()
        .route(
            "/api/dpop",
            get(|caller: AuthContext| async move { caller.subject().to_owned() }),
        )
        .layer(
            stepup
                .authenticate()
                .with_dpop(stepup.dpop_policy().unwrap()),
        );
    serve(router).await
}

async fn present(http: &reqwest::Client, base: &str, token: &str, proof: &str) -> StatusCode {
    http.get(format!("{base}/api/dpop"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap()
        .status()
}

async fn a_proof_accepted_by_one_instance_is_refused_by_the_other(backend: &Backend) {
    let (a, b) = (backend.app().await, backend.app().await);
    let (api_a, api_b) = (api_of(&a).await, api_of(&b).await);
    a.register("gus@example.com").await;
    let key = Key::new(4);
    let now = a.clock.unix_seconds();
    let login = post_with_proof(
        &a,
        "/oauth/authorize",
        &key.proof("/oauth/authorize", now, "gus-login"),
        json!({"username": "gus@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(login.body["token_type"], "DPoP", "{:?}", login.body);
    let token = login.token();

    let proof = key.resource_proof("/api/dpop", &token, now, "gus-1");
    assert_eq!(
        present(&a.http, &api_a, &token, &proof).await,
        StatusCode::OK
    );
    assert_eq!(
        present(&b.http, &api_b, &token, &proof).await,
        StatusCode::UNAUTHORIZED,
        "replayed on the other instance"
    );

    // One proof raced 20 times over both instances: one success.
    let proof = key.resource_proof("/api/dpop", &token, now, "gus-2");
    let shared: Arc<(reqwest::Client, String, String, String, String)> =
        Arc::new((a.http.clone(), api_a, api_b, token, proof));
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let (http, api_a, api_b, token, proof) = &*shared;
                let base = if n % 2 == 0 { api_a } else { api_b };
                present(http, base, token, proof).await
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => accepted += 1,
            StatusCode::UNAUTHORIZED => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(accepted, 1);
}

/// A signed-in user whose token is bound steps up with it: `authenticate()` checks the proof
/// sent to `POST /oauth/authorize` (with `ath`) and the route takes its key from there rather
/// than judging the same proof again (which would call it a replay).
#[tokio::test]
async fn a_bound_token_steps_up_at_the_authorize_route() {
    let app = sqlite_app().await;
    let stepup = &app.stepup;
    let routes = Router::new().merge(stepup.routes()).layer(
        stepup
            .authenticate()
            .with_dpop(stepup.dpop_policy().unwrap()),
    );
    let base = serve(routes).await;
    let (_, totp, _) = app.enrolled_user("ivy@example.com").await;
    let dpop = Key::new(5);
    let now = app.clock.unix_seconds();
    let mfa_token = app.mfa_token("ivy@example.com").await;
    let proof = dpop.proof("/oauth/authorize/mfa", now, "ivy-mfa");
    let body = json!({"mfa_token": mfa_token, "method": "totp", "code": app.code(&totp)});
    let token = post_with_proof(&app, "/oauth/authorize/mfa", &proof, body)
        .await
        .token();

    let step_up = |proof: String| {
        app.http
            .post(format!("{base}/oauth/authorize"))
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .json(&json!({"acr_values": "mfa"}))
    };
    let proof = dpop.proof_with_token("POST", "/oauth/authorize", &token, now, "ivy-up");
    let answer = Answer::read(step_up(proof.clone())).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert!(answer.body["mfa_token"].is_string(), "{:?}", answer.body);

    // The same proof again is a replay; the token sent as a bearer token is refused.
    let replayed = Answer::read(step_up(proof)).await;
    assert_eq!(
        replayed.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        replayed.body
    );
    let as_bearer = Answer::read(
        app.http
            .post(format!("{base}/oauth/authorize"))
            .bearer_auth(&token)
            .json(&json!({"acr_values": "mfa"})),
    )
    .await;
    assert_eq!(
        as_bearer.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        as_bearer.body
    );
}
