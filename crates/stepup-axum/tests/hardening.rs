//! The findings of the outside reviews, each replayed over HTTP: a token that outlives its
//! account, a stolen password token enrolling the thief's authenticator, wrong passwords spread
//! over many addresses, a remembered device during a password lockout.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use stepup_core::token::Grant;
use stepup_mfa::totp::TotpKey;
use support::*;

/// The token of a fresh second factor, as the MFA step gives it.
async fn fresh_mfa_token(app: &App, email: &str) -> (String, TotpKey) {
    let (_, key, _) = app.enrolled_user(email).await;
    app.clock.advance(Duration::from_secs(30));
    let mfa_token = app.mfa_token(email).await;
    let answer = app.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    (answer.token(), key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_deleted_account_can_neither_enroll_nor_step_up() {
    let app = sqlite_app().await;
    let (token, _) = fresh_mfa_token(&app, "gone@example.com").await;
    let deleted = app.delete("/api/account", Some(&token)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");

    // The same token, replayed on every route that enrolls or mints.
    for path in ["/api/mfa/setup", "/api/mfa/verify-setup"] {
        let answer = app
            .post(path, Some(&token), json!({"code": "123456"}))
            .await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(
            answer.body["error_description"],
            "the token has been revoked"
        );
    }
    let step_up = app
        .post(
            "/oauth/authorize",
            Some(&token),
            json!({"acr_values": "mfa"}),
        )
        .await;
    step_up.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    let factors = app.get("/api/mfa/factors", Some(&token)).await;
    factors.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    // The application's own routes opt in with `stepup.reject_revoked()`: the fixture's do.
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{me:?}");
    assert!(me.challenge.unwrap().contains("the token has been revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_minted_for_a_user_the_application_does_not_know_is_refused() {
    let app = sqlite_app().await;
    // Validly signed, but for an account that does not exist (deleted behind stepup's back).
    let token = app.mint(&Grant::new("no-such-user").acr("pwd").auth_time(T0));
    let answer = app.post("/api/mfa/setup", Some(&token), json!({})).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_factor_needs_a_password_from_the_last_ten_minutes() {
    let app = sqlite_app().await;
    app.register("stale@example.com").await;
    let token = app.login("stale@example.com").await.token();

    // Eleven minutes later the same (still valid) token cannot enroll: RFC 9470 asks for a
    // fresh password.
    app.clock.advance(Duration::from_secs(11 * 60));
    let answer = app.post("/api/mfa/setup", Some(&token), json!({})).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "insufficient_user_authentication");
    let challenge = answer.challenge.expect("a WWW-Authenticate challenge");
    assert!(challenge.contains("acr_values=\"pwd\""), "{challenge}");
    assert!(challenge.contains("max_age=600"), "{challenge}");

    // Within ten minutes of the password it can.
    let token = app.login("stale@example.com").await.token();
    app.clock.advance(Duration::from_secs(9 * 60));
    let answer = app.post("/api/mfa/setup", Some(&token), json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
}

async fn wrong_password(app: &App, email: &str, forwarded_for: &str) -> StatusCode {
    app.request(reqwest::Method::POST, "/oauth/authorize", None)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": email, "password": "wrong horse battery"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_per_account_whatever_the_address() {
    let app = sqlite_app().await;
    app.register("target@example.com").await;
    // Ten wrong passwords, each "from" another address (the application trusts no proxy, so the header
    // changes nothing; the per-address budget of 30 is not what stops them).
    for attempt in 0..10 {
        let status =
            wrong_password(&app, "target@example.com", &format!("198.51.100.{attempt}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits, with Retry-After.
    let answer = app.login("target@example.com").await;
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    let retry_after: u64 = answer.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    // Another account is not affected.
    app.register("bystander@example.com").await;
    assert_eq!(
        app.login("bystander@example.com").await.status,
        StatusCode::OK
    );
    // The lockout is short: after it, the owner signs in.
    app.clock.advance(Duration::from_secs(retry_after));
    assert_eq!(app.login("target@example.com").await.status, StatusCode::OK);
    // Failed passwords of a known account are in its audit trail.
    let token = app.login("target@example.com").await.token();
    let events = app.get("/api/mfa/events", Some(&token)).await;
    let failures = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "password_failed")
        .count();
    assert_eq!(failures, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_remembered_device_signs_in_during_a_password_lockout() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("owner@example.com").await;
    app.clock.advance(Duration::from_secs(30));
    let mfa_token = app.mfa_token("owner@example.com").await;
    let code = app.code(&key);
    let remembered = app
        .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": code, "remember_device": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(remembered.status(), StatusCode::OK);
    let cookie = remembered.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();

    for _ in 0..10 {
        assert_eq!(
            wrong_password(&app, "owner@example.com", "203.0.113.1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login("owner@example.com").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let login = |cookie: &str, password: &str| {
        app.request(reqwest::Method::POST, "/oauth/authorize", None)
            .header("cookie", cookie.to_owned())
            .json(&json!({"username": "owner@example.com", "password": password}))
            .send()
    };
    // The owner's browser gets in…
    let answer = login(&cookie, PASSWORD).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    // …but the cookie is no way around the lockout for a guesser: a wrong password with it is
    // still refused as locked out.
    let answer = login(&cookie, "wrong horse battery").await.unwrap();
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_device_is_no_way_around_the_lockout() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("attacker@example.com").await;
    app.register("victim@example.com").await;
    app.clock.advance(Duration::from_secs(30));
    let mfa_token = app.mfa_token("attacker@example.com").await;
    let code = app.code(&key);
    let remembered = app
        .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": code, "remember_device": true}))
        .send()
        .await
        .unwrap();
    let cookie = remembered.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let guess = |password: &'static str| {
        app.request(reqwest::Method::POST, "/oauth/authorize", None)
            .header("cookie", cookie.clone())
            .json(&json!({"username": "victim@example.com", "password": password}))
            .send()
    };
    for _ in 0..10 {
        assert_eq!(
            guess("wrong horse battery").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The right password, sent with the attacker's own device cookie, learns nothing.
    assert_eq!(
        guess(PASSWORD).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
