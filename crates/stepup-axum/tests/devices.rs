//! "Remember this device", the audit trail and the per-address limits of the login, end to end
//! over HTTP.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_mfa::totp::TotpKey;
use support::*;

/// Completes the MFA step with `remember_device` and returns the `Set-Cookie` header.
async fn remember(app: &App, email: &str, key: &TotpKey) -> String {
    let mfa_token = app.mfa_token(email).await;
    let response = app
        .request(Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": app.code(key), "remember_device": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    app.clock.advance(Duration::from_secs(30));
    cookie
}

async fn login_with_cookie(app: &App, email: &str, cookie: &str) -> Answer {
    app.login_with_cookie(email, cookie).await
}

#[tokio::test]
async fn the_cookie_is_host_only_http_only_secure_and_strict() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("ada@example.com").await;
    let set_cookie = remember(&app, "ada@example.com", &key).await;
    let mut attributes: Vec<&str> = set_cookie.split("; ").collect();
    let pair = attributes.remove(0);
    let (name, token) = pair.split_once('=').unwrap();
    assert_eq!(name, "__Host-stepup_device");
    assert_eq!(token.len(), 43, "256 random bits, base64url");
    attributes.sort_unstable();
    assert_eq!(
        attributes,
        [
            "HttpOnly",
            "Max-Age=2592000",
            "Path=/",
            "SameSite=Strict",
            "Secure"
        ]
    );
}

#[tokio::test]
async fn a_remembered_device_skips_the_mfa_step_but_never_meets_max_age() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("bo@example.com").await;
    let cookie = cookie_pair(&remember(&app, "bo@example.com", &key).await);

    let login = login_with_cookie(&app, "bo@example.com", &cookie).await;
    assert_eq!(login.body["acr"], "mfa", "{login:?}");
    assert!(login.body.get("mfa_required").is_none());
    let token = login.token();
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.body["amr"], json!(["pwd"]), "only what was used now");
    assert_eq!(me.body["auth_time"], Value::Null);

    let refused = app.delete("/api/account", Some(&token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.challenge.unwrap().contains("max_age=300"));

    // The wrong password is still the wrong password.
    let wrong = Answer::read(
        app.request(Method::POST, "/oauth/authorize", None)
            .header("cookie", &cookie)
            .json(&json!({"username": "bo@example.com", "password": "wrong horse"})),
    )
    .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
}

#[tokio::test]
async fn a_device_vouches_only_for_its_own_user() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("cy@example.com").await;
    app.enrolled_user("di@example.com").await;
    let cookie = cookie_pair(&remember(&app, "cy@example.com", &key).await);
    let login = login_with_cookie(&app, "di@example.com", &cookie).await;
    assert_eq!(login.body["mfa_required"], true);
    // Nor through the authorization-code path.
    let login = Answer::read(
        app.request(Method::POST, "/oauth/authorize", None)
            .header("cookie", &cookie)
            .json(&json!({
                "username": "di@example.com",
                "password": PASSWORD,
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            })),
    )
    .await;
    assert_eq!(login.body["mfa_required"], true);
    // A forged or garbled cookie is no device.
    for forged in [
        "__Host-stepup_device=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "__Host-stepup_device=x",
        "garbage",
    ] {
        let login = login_with_cookie(&app, "cy@example.com", forged).await;
        assert_eq!(login.body["mfa_required"], true, "{forged}");
    }
}

#[tokio::test]
async fn devices_are_listed_revoked_and_expire() {
    let app = sqlite_app().await;
    let (password_token, key, _) = app.enrolled_user("ed@example.com").await;
    let first = cookie_pair(&remember(&app, "ed@example.com", &key).await);
    let second = cookie_pair(&remember(&app, "ed@example.com", &key).await);

    let listed = app.get("/api/mfa/devices", Some(&password_token)).await;
    let devices = listed.body["devices"].as_array().unwrap().clone();
    assert_eq!(devices.len(), 2);
    assert!(devices.iter().all(|device| device["id"].is_string()
        && device["expires_at"].as_u64().unwrap() > T0
        && device.get("token").is_none()
        && device.get("token_hash").is_none()));

    // Revoke the first: it no longer skips the step; the second still does.
    let first_login = login_with_cookie(&app, "ed@example.com", &first).await;
    assert_eq!(first_login.body["acr"], "mfa");
    let first_id = {
        let listed = Answer::read(
            app.request(Method::GET, "/api/mfa/devices", Some(&password_token))
                .header("cookie", &first),
        )
        .await;
        let devices = listed.body["devices"].as_array().unwrap().clone();
        devices
            .into_iter()
            .find(|device| device["current"] == true)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let revoked = app
        .delete(
            &format!("/api/mfa/devices/{first_id}"),
            Some(&password_token),
        )
        .await;
    assert_eq!(revoked.body, json!({"success": true}));
    app.delete(
        &format!("/api/mfa/devices/{first_id}"),
        Some(&password_token),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        login_with_cookie(&app, "ed@example.com", &first).await.body["mfa_required"],
        true
    );
    assert_eq!(
        login_with_cookie(&app, "ed@example.com", &second)
            .await
            .body["acr"],
        "mfa"
    );

    // 30 days later the second has expired too.
    app.clock.advance(Duration::from_secs(30 * 24 * 60 * 60));
    assert_eq!(
        login_with_cookie(&app, "ed@example.com", &second)
            .await
            .body["mfa_required"],
        true
    );
}

#[tokio::test]
async fn removing_the_factor_revokes_every_device() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("fa@example.com").await;
    let cookie = cookie_pair(&remember(&app, "fa@example.com", &key).await);
    let mfa_token = app.mfa_token("fa@example.com").await;
    let fresh = app.mfa_step_with_code(&mfa_token, &key).await.token();
    assert_eq!(
        app.delete("/api/mfa/totp", Some(&fresh)).await.body,
        json!({"success": true})
    );
    let listed = app.get("/api/mfa/devices", Some(&fresh)).await;
    assert_eq!(listed.body["devices"], json!([]));
    // Without a factor the login is a password login, and the old cookie adds nothing.
    let login = login_with_cookie(&app, "fa@example.com", &cookie).await;
    assert_eq!(login.body["acr"], "pwd");
}

#[tokio::test]
async fn a_session_is_audited_in_order() {
    let app = sqlite_app().await;
    let (password_token, key, codes) = app.enrolled_user("gus@example.com").await;
    let mfa_token = app.mfa_token("gus@example.com").await;
    app.mfa_step(&mfa_token, json!({"code": "000000"})).await;
    app.mfa_step(&mfa_token, json!({"backup_code": codes[0]}))
        .await
        .token();
    remember(&app, "gus@example.com", &key).await;
    app.delete("/api/mfa/devices", Some(&password_token)).await;

    let events = app.get("/api/mfa/events", Some(&password_token)).await;
    let kinds: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "token_issued",
            "totp_enrollment_started",
            "totp_enrolled",
            "mfa_failed",
            "backup_code_used",
            "mfa_succeeded",
            "token_issued",
            "mfa_succeeded",
            "device_remembered",
            "token_issued",
            "devices_revoked",
        ]
    );
    let detail_of = |kind: &str| {
        events.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["kind"] == kind)
            .unwrap()["detail"]
            .clone()
    };
    assert_eq!(detail_of("backup_code_used"), json!({"remaining": 9}));
    assert_eq!(detail_of("mfa_failed")["method"], "totp");
    assert_eq!(
        detail_of("token_issued"),
        json!({"acr": "pwd", "amr": ["pwd"], "via": "direct"})
    );
    // Nobody else's events, and none without a token.
    let (other, _, _) = app.enrolled_user("hy@example.com").await;
    let theirs = app.get("/api/mfa/events", Some(&other)).await;
    assert_eq!(theirs.body["events"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.get("/api/mfa/events", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_login_endpoints_are_limited_per_address_even_with_rotating_forwarded_headers() {
    let app = sqlite_app().await;
    // Each guess names another account, so the per-account password limit stays out of it.
    for attempt in 0..30 {
        let answer = Answer::read(
            app.request(Method::POST, "/oauth/authorize", None)
                .header("x-forwarded-for", format!("203.0.113.{attempt}"))
                .json(&json!({"username": format!("nobody{attempt}@example.com"), "password": "guess"})),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let response = app
        .request(Method::POST, "/oauth/authorize", None)
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"username": "nobody@example.com", "password": "guess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "300");
    app.clock.advance(Duration::from_secs(300));
    let answer = app
        .post(
            "/oauth/authorize",
            None,
            json!({"username": "nobody@example.com", "password": "guess"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "a new window");
}

/// A login with the wrong password, from the app client's one address.
async fn wrong_login(app: &App, email: &str) -> Answer {
    app.post(
        "/oauth/authorize",
        None,
        json!({"username": email, "password": "wrong horse"}),
    )
    .await
}

#[tokio::test]
async fn successful_logins_never_use_up_the_address_budget_but_failures_do() {
    let app = sqlite_app().await;
    app.register("kai@example.com").await;
    // Every request of the test comes from one address (the test's loopback peer). An office
    // behind one address logs in as often as it needs: successes are given back.
    for login in 0..40 {
        let answer = app.login("kai@example.com").await;
        assert_eq!(answer.status, StatusCode::OK, "login {login}: {answer:?}");
        assert_eq!(answer.body["acr"], "pwd");
    }
    // Failures count, and a success in between does not wipe them out. (Each guess names
    // another account, so the per-account password limit stays out of it.)
    for guess in 0..15 {
        wrong_login(&app, &format!("guess{guess}@example.com"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
    }
    assert_eq!(app.login("kai@example.com").await.body["acr"], "pwd");
    for guess in 15..30 {
        wrong_login(&app, &format!("guess{guess}@example.com"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
    }
    // 30 failures: the next attempt is refused before any check, even with the right password.
    for refused in [
        app.login("kai@example.com").await,
        wrong_login(&app, "kai@example.com").await,
    ] {
        refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
        assert_eq!(refused.retry_after.as_deref(), Some("300"), "{refused:?}");
    }
    // A new window gives the address its budget back.
    app.clock.advance(Duration::from_secs(300));
    assert_eq!(app.login("kai@example.com").await.body["acr"], "pwd");
}

#[tokio::test]
async fn the_request_ceiling_is_300_per_address_whatever_the_outcome() {
    let app = sqlite_app().await;
    app.register("lea@example.com").await;
    // Requests refused before any check (a body that is not JSON) are no failed logins, but
    // every request counts toward the ceiling.
    let garbage = || {
        app.request(Method::POST, "/oauth/authorize", None)
            .header("content-type", "application/json")
            .body("not json")
    };
    for request in 0..299 {
        let answer = Answer::read(garbage()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "request {request}");
    }
    // The 300th still passes, and is a good login.
    assert_eq!(app.login("lea@example.com").await.body["acr"], "pwd");
    // The 301st is refused whatever it holds.
    let refused = app.login("lea@example.com").await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert_eq!(refused.retry_after.as_deref(), Some("300"), "{refused:?}");
    Answer::read(garbage())
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    // Each login endpoint has its own ceiling.
    app.post(
        "/oauth/authorize/mfa",
        None,
        json!({"mfa_token": "x", "code": "123456"}),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    app.clock.advance(Duration::from_secs(300));
    assert_eq!(app.login("lea@example.com").await.body["acr"], "pwd");
}

#[tokio::test]
async fn deleting_the_account_forgets_its_devices() {
    let app = sqlite_app().await;
    let (password_token, key, _) = app.enrolled_user("ike@example.com").await;
    let user = app.get("/api/me", Some(&password_token)).await.body["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    remember(&app, "ike@example.com", &key).await;
    assert_eq!(app.stores.devices.devices(&user).await.unwrap().len(), 1);
    let mfa_token = app.mfa_token("ike@example.com").await;
    let fresh = app.mfa_step_with_code(&mfa_token, &key).await.token();
    assert_eq!(
        app.delete("/api/account", Some(&fresh)).await.body,
        json!({"success": true})
    );
    assert!(app.stores.devices.devices(&user).await.unwrap().is_empty());
}
