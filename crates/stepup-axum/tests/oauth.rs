//! The OAuth side of the drop-in routes: authorization code with PKCE, step-up of a signed-in
//! user, and the per-user attempt limit, end to end over HTTP.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

/// The authorization request of a PKCE client, with the user's password.
fn authorization(email: &str) -> Value {
    with_pkce(json!({ "username": email, "password": PASSWORD }))
}

#[tokio::test]
async fn a_code_is_exchanged_once_with_its_verifier() {
    let app = sqlite_app().await;
    app.register_argon2("ann@example.com").await;
    let code = app
        .redirected_code("/oauth/authorize", authorization("ann@example.com"))
        .await;
    let token = app.redeem_code(&code).await;
    assert_eq!(token.body["acr"], "pwd");
    assert_eq!(token.body["token_type"], "Bearer");
    let me = app.get("/api/me", Some(&token.token())).await;
    assert_eq!(me.body["amr"], json!(["pwd"]));

    app.redeem_code(&code)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn a_wrong_verifier_redirect_uri_or_client_is_invalid_grant() {
    let app = sqlite_app().await;
    app.register("ben@example.com").await;
    let other_verifier = "x".repeat(43);
    let cases: [[(&str, &str); 5]; 4] = [
        [
            ("grant_type", "authorization_code"),
            ("code", ""),
            ("code_verifier", &other_verifier),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
        ],
        [
            ("grant_type", "authorization_code"),
            ("code", ""),
            ("code_verifier", PKCE_VERIFIER),
            ("redirect_uri", "http://localhost:3000/callback/"),
            ("client_id", CLIENT_ID),
        ],
        [
            ("grant_type", "authorization_code"),
            ("code", ""),
            ("code_verifier", PKCE_VERIFIER),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", "another-client"),
        ],
        [
            ("grant_type", "authorization_code"),
            ("code", ""),
            ("code_verifier", "short"),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", CLIENT_ID),
        ],
    ];
    for mut form in cases {
        let code = app
            .redirected_code("/oauth/authorize", authorization("ben@example.com"))
            .await;
        form[1].1 = &code;
        app.exchange(&form)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
        // The failed attempt consumed the code: the right verifier is too late now.
        app.redeem_code(&code)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    app.exchange(&[("grant_type", "password")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    app.exchange(&[("grant_type", "authorization_code")])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn codes_expire_after_a_minute() {
    let app = sqlite_app().await;
    app.register("cal@example.com").await;
    let code = app
        .redirected_code("/oauth/authorize", authorization("cal@example.com"))
        .await;
    app.clock.advance(Duration::from_secs(61));
    app.redeem_code(&code)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn bad_authorization_requests_are_refused_without_redirecting() {
    let app = sqlite_app().await;
    app.register("dee@example.com").await;
    let with = |key: &str, value: Value| {
        let mut request = authorization("dee@example.com");
        request[key] = value;
        request
    };
    let cases = [
        (
            with("code_challenge_method", json!("plain")),
            "invalid_request",
        ),
        (
            with("code_challenge_method", Value::Null),
            "invalid_request",
        ),
        (
            with("code_challenge", json!("too-short")),
            "invalid_request",
        ),
        (
            with("redirect_uri", json!("https://evil.example/steal")),
            "invalid_request",
        ),
        (
            with("redirect_uri", json!("http://localhost:3000/callback?x=1")),
            "invalid_request",
        ),
        (with("client_id", json!("unknown")), "unauthorized_client"),
        (with("client_id", Value::Null), "invalid_request"),
    ];
    for (request, error) in cases {
        app.post("/oauth/authorize", None, request)
            .await
            .assert_error(StatusCode::BAD_REQUEST, error);
    }
}

#[tokio::test]
async fn an_enrolled_user_gets_a_code_only_after_the_second_factor() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("eli@example.com").await;
    let first = app
        .post("/oauth/authorize", None, authorization("eli@example.com"))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["mfa_required"], true);
    assert!(first.body.get("code").is_none());
    let mfa_token = first.body["mfa_token"].as_str().unwrap();
    let code = app
        .redirected_code(
            "/oauth/authorize/mfa",
            json!({"mfa_token": mfa_token, "code": app.code(&key)}),
        )
        .await;
    let token = app.redeem_code(&code).await;
    assert_eq!(token.body["acr"], "mfa");
    let me = app.get("/api/me", Some(&token.token())).await;
    assert_eq!(me.body["amr"], json!(["pwd", "otp"]));
}

#[tokio::test]
async fn a_signed_in_user_follows_the_step_up_challenge_to_completion() {
    let app = sqlite_app().await;
    let (password_token, key, _) = app.enrolled_user("fin@example.com").await;
    app.clock.advance(Duration::from_secs(600));

    // The resource server says what it wants…
    let refused = app.delete("/api/account", Some(&password_token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let acr_values = refused.body["acr_values"].as_str().unwrap().to_owned();
    assert_eq!(refused.body["max_age"], 300);

    // A code cannot be had by naming a client either: the step-up path asks for the factor.
    let mut with_client = authorization("fin@example.com");
    with_client["acr_values"] = json!(acr_values);
    with_client.as_object_mut().unwrap().remove("username");
    with_client.as_object_mut().unwrap().remove("password");
    let answer = app
        .post("/oauth/authorize", Some(&password_token), with_client)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["mfa_required"], true);

    // …and the client asks for exactly that, with the token it has and no password.
    let step_up = app
        .post(
            "/oauth/authorize",
            Some(&password_token),
            json!({"acr_values": acr_values}),
        )
        .await;
    assert_eq!(step_up.body["mfa_required"], true, "{step_up:?}");
    assert!(step_up.body.get("access_token").is_none());
    let mfa_token = step_up.body["mfa_token"].as_str().unwrap();
    let stepped = app.mfa_step_with_code(mfa_token, &key).await;
    assert_eq!(stepped.body["acr"], "mfa");
    let token = stepped.token();
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.body["amr"], json!(["pwd", "otp"]));
    assert_eq!(me.body["auth_time"], T0 + 30 + 600, "a fresh auth_time");

    let deleted = app.delete("/api/account", Some(&token)).await;
    assert_eq!(deleted.body, json!({"success": true}));
}

#[tokio::test]
async fn step_up_needs_a_token_and_an_enrolled_factor() {
    let app = sqlite_app().await;
    app.register("gil@example.com").await;
    let token = app.login("gil@example.com").await.token();
    app.post(
        "/oauth/authorize",
        Some(&token),
        json!({"acr_values": "mfa"}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "mfa_not_enrolled");
    let anonymous = app
        .post("/oauth/authorize", None, json!({"acr_values": "mfa"}))
        .await;
    anonymous.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        anonymous.challenge.as_deref(),
        Some("Bearer"),
        "step-up without a token asks for one"
    );
    app.post("/oauth/authorize", Some(&token), json!({}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let forged = format!("{token}x");
    let answer = app
        .post(
            "/oauth/authorize",
            Some(&forged),
            json!({"acr_values": "mfa"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["error"], "invalid_token");
}

#[tokio::test]
async fn the_sixth_wrong_code_gets_429_with_retry_after_even_with_fresh_mfa_tokens() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("hal@example.com").await;
    // Each attempt with a fresh mfa_token and a new X-Forwarded-For (the peer is no trusted
    // proxy): the user's count goes on regardless.
    for attempt in 0..5 {
        let mfa_token = app.mfa_token("hal@example.com").await;
        let answer = Answer::read(
            app.request(Method::POST, "/oauth/authorize/mfa", None)
                .header("x-forwarded-for", format!("192.0.2.{attempt}"))
                .json(&json!({"mfa_token": mfa_token, "code": "000000"})),
        )
        .await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    }
    let mfa_token = app.mfa_token("hal@example.com").await;
    let response = app
        .request(Method::POST, "/oauth/authorize/mfa", None)
        .header("x-forwarded-for", "192.0.2.99")
        .json(&json!({"mfa_token": mfa_token, "code": app.code(&key)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "300");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");

    app.clock.advance(Duration::from_secs(300));
    let stepped = app.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(
        stepped.status,
        StatusCode::UNAUTHORIZED,
        "the token expired meanwhile"
    );
    let mfa_token = app.mfa_token("hal@example.com").await;
    assert_eq!(
        app.mfa_step_with_code(&mfa_token, &key).await.body["acr"],
        "mfa"
    );
}
