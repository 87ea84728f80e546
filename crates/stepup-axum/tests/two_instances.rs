//! Two instances of the application — separate routers, stores, pools and caches — over one
//! PostgreSQL schema (and one Redis for the ephemeral state), as two instances behind a load
//! balancer run: every single-use artefact stays single-use across them, and what one revokes
//! the other refuses.

mod support;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use stepup_mfa::totp::TotpKey;
use support::*;

/// Adds `email`, starts the enrollment on `a` and confirms it on `b`; returns the key and the
/// backup codes.
async fn enrolled_user(a: &App, b: &App, email: &str) -> (TotpKey, Vec<String>) {
    a.register(email).await;
    let token = a.login(email).await.token();
    let setup = a.post("/api/mfa/setup", Some(&token), json!({})).await;
    assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
    let key = key_from(&setup.body);
    let confirmed = b
        .post(
            "/api/mfa/verify-setup",
            Some(&token),
            json!({"code": b.code(&key)}),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{confirmed:?}");
    (key, strings(&confirmed.body["backup_codes"]))
}

on_backends!([postgres, postgres_redis]
    a_totp_code_accepted_by_one_instance_is_refused_by_the_other,
    an_mfa_token_made_by_one_instance_completes_on_the_other_once,
    one_backup_code_raced_over_both_instances_succeeds_once,
    a_device_revoked_through_one_instance_is_refused_by_the_other,
);

async fn a_totp_code_accepted_by_one_instance_is_refused_by_the_other(backend: &Backend) {
    let (a, b) = (backend.app().await, backend.app().await);
    let (key, _) = enrolled_user(&a, &b, "totp@example.com").await;
    backend.clock.advance(Duration::from_secs(30));
    let code = a.code(&key);

    let on_a = a.mfa_token("totp@example.com").await;
    let answer = a.mfa_step(&on_a, json!({"code": code})).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["acr"], "mfa");

    let on_b = b.mfa_token("totp@example.com").await;
    b.mfa_step(&on_b, json!({"code": code}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
}

async fn an_mfa_token_made_by_one_instance_completes_on_the_other_once(backend: &Backend) {
    let (a, b) = (backend.app().await, backend.app().await);
    let (key, _) = enrolled_user(&a, &b, "token@example.com").await;
    backend.clock.advance(Duration::from_secs(30));
    let mfa_token = a.mfa_token("token@example.com").await;
    let answer = b.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    backend.clock.advance(Duration::from_secs(30));
    a.mfa_step_with_code(&mfa_token, &key)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
}

async fn one_backup_code_raced_over_both_instances_succeeds_once(backend: &Backend) {
    let (a, b) = (backend.app().await, backend.app().await);
    let (_, codes) = enrolled_user(&a, &b, "backup@example.com").await;
    // 100 challenges, half from each instance, each redeemed with the same code on the other one.
    let mut tokens = Vec::new();
    for index in 0..100 {
        let on = if index % 2 == 0 { &a } else { &b };
        tokens.push(on.mfa_token("backup@example.com").await);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let mut tasks = Vec::new();
    for (index, mfa_token) in tokens.into_iter().enumerate() {
        let on = if index % 2 == 0 { &b } else { &a };
        let request = on
            .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
            .json(&json!({"mfa_token": mfa_token, "backup_code": codes[0]}));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            request.send().await.unwrap().status()
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

async fn a_device_revoked_through_one_instance_is_refused_by_the_other(backend: &Backend) {
    let (a, b) = (backend.app().await, backend.app().await);
    let (key, _) = enrolled_user(&a, &b, "device@example.com").await;
    backend.clock.advance(Duration::from_secs(30));
    let mfa_token = a.mfa_token("device@example.com").await;
    let (answer, cookie) = a
        .remembered_step(&mfa_token, json!({"code": a.code(&key)}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let token = answer.token();

    // The device is known to the other instance…
    let login = b.login_with_cookie("device@example.com", &cookie).await;
    assert!(login.body["access_token"].is_string(), "{login:?}");
    // …revoked through one…
    assert_eq!(
        a.delete("/api/mfa/devices", Some(&token)).await.status,
        StatusCode::OK
    );
    // …and refused by the other: the MFA step is asked for again.
    let login = b.login_with_cookie("device@example.com", &cookie).await;
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    assert!(login.body.get("access_token").is_none());
}
