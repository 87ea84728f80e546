//! SMS codes over HTTP (SQLite and PostgreSQL), the texts read from the fixture's gateway:
//! enrollment, login, step-up, the cooldown, bad numbers, the PKCE redirect, a remembered
//! device, SMS never left alone where the policy says so, and no code or number in the log.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

fn amr_of(token: &str) -> Value {
    claims_of(token)["amr"].clone()
}

/// Adds `email` and enrolls [`PHONE`] through the earlier paths; returns the password token and
/// the backup codes.
async fn sms_user(app: &App, email: &str) -> (String, Vec<Value>) {
    app.register(email).await;
    let token = app.login(email).await.token();
    let enrolled = app
        .post("/api/mfa/sms/enroll", Some(&token), json!({"phone": PHONE}))
        .await;
    assert_eq!(enrolled.status, StatusCode::OK, "{enrolled:?}");
    assert_eq!(enrolled.body["message"], "Code sent to +1*****6789");
    assert_eq!(enrolled.cache_control.as_deref(), Some("no-store"));
    let verified = app
        .post(
            "/api/mfa/sms/verify",
            Some(&token),
            json!({"code": app.last_sms_code()}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    assert_eq!(verified.body["enabled"], true);
    let codes = verified.body["backup_codes"].as_array().unwrap().clone();
    app.clock.advance(Duration::from_secs(31));
    (token, codes)
}

on_backends!([sqlite, postgres]
    enrollment_login_step_up_and_cooldown,
    bad_numbers_are_400_and_an_unknown_mfa_token_401,
    sms_with_the_pkce_redirect_and_a_remembered_device,
);

async fn enrollment_login_step_up_and_cooldown(backend: &Backend) {
    let app = backend.app().await;
    let (password_token, codes) = sms_user(&app, "sam@example.com").await;
    assert_eq!(codes.len(), 10);
    let outbox = app.texts();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].to, PHONE);
    assert_eq!(outbox[0].at, T0);

    let factors = app.get("/api/mfa/factors", Some(&password_token)).await;
    assert_eq!(factors.status, StatusCode::OK);
    assert_eq!(factors.body["factors"][0]["kind"], "sms");
    assert_eq!(factors.body["factors"][0]["method"], "sms");
    assert_eq!(factors.body["factors"][0]["phone"], MASKED_PHONE);
    assert_eq!(factors.body["factors"][0]["restricted"], true);
    assert!(!factors.body.to_string().contains("5551236789"));

    // Login.
    let login = app.login("sam@example.com").await;
    assert_eq!(login.body["methods"], json!(["sms", "backup_code"]));
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    let sent = app
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
    assert_eq!(sent.body, json!({"message": "Code sent to +1*****6789"}));
    // The cooldown: 429 with Retry-After.
    app.clock.advance(Duration::from_secs(5));
    let again = app
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    again.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert_eq!(again.retry_after.as_deref(), Some("25"));
    let wrong = app
        .mfa_step(&mfa_token, json!({"method": "sms", "code": "12345"}))
        .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let token = app
        .mfa_step(
            &mfa_token,
            json!({"method": "sms", "code": app.last_sms_code()}),
        )
        .await
        .token();
    assert_eq!(amr_of(&token), json!(["pwd", "sms"]));
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.body["acr"], "mfa");

    // Step-up of the password token.
    app.clock.advance(Duration::from_secs(31));
    let step = app
        .post(
            "/oauth/authorize",
            Some(&password_token),
            json!({"acr_values": "mfa"}),
        )
        .await;
    let mfa_token = step.body["mfa_token"].as_str().unwrap().to_owned();
    let sent = app
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
    let token = app
        .mfa_step(
            &mfa_token,
            json!({"method": "sms", "code": app.last_sms_code()}),
        )
        .await
        .token();
    assert_eq!(amr_of(&token), json!(["pwd", "sms"]));
    let deleted = app.delete("/api/account", Some(&token)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
}

async fn bad_numbers_are_400_and_an_unknown_mfa_token_401(backend: &Backend) {
    let app = backend.app().await;
    app.register("tea@example.com").await;
    let token = app.login("tea@example.com").await.token();
    for bad in [
        json!({"phone": "555-1234"}),
        json!({"phone": "+0123456789"}),
        json!({}),
    ] {
        let answer = app.post("/api/mfa/sms/enroll", Some(&token), bad).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        assert!(!answer.body.to_string().contains("555"), "{answer:?}");
    }
    let answer = app
        .post("/api/mfa/sms/enroll", None, json!({"phone": PHONE}))
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = app
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": "nope"}),
        )
        .await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    assert!(app.texts().is_empty());
}

async fn sms_with_the_pkce_redirect_and_a_remembered_device(backend: &Backend) {
    let app = backend.app().await;
    sms_user(&app, "val@example.com").await;
    let send = async |mfa_token: &str| {
        let sent = app
            .post(
                "/oauth/authorize/mfa/sms/send",
                None,
                json!({"mfa_token": mfa_token}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
    };
    // The PKCE redirect: password, SMS code, then the code for the client.
    let login = app
        .post(
            "/oauth/authorize",
            None,
            with_pkce(json!({"username": "val@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    send(&mfa_token).await;
    let code = app
        .redirected_code(
            "/oauth/authorize/mfa",
            json!({"mfa_token": mfa_token, "method": "sms", "code": app.last_sms_code()}),
        )
        .await;
    let exchanged = app.redeem_code(&code).await;
    assert_eq!(exchanged.body["acr"], "mfa", "{exchanged:?}");
    assert_eq!(amr_of(&exchanged.token()), json!(["pwd", "sms"]));

    // Remember this device on an SMS step: the next login skips the step.
    app.clock.advance(Duration::from_secs(31));
    let mfa_token = app.mfa_token("val@example.com").await;
    send(&mfa_token).await;
    let (answer, cookie) = app
        .remembered_step(
            &mfa_token,
            json!({"method": "sms", "code": app.last_sms_code()}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let sent = app.texts().len();
    let login = app.login_with_cookie("val@example.com", &cookie).await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    assert!(login.body.get("mfa_required").is_none(), "{login:?}");
    assert_eq!(login.body["acr"], "mfa");
    assert_eq!(app.texts().len(), sent, "no SMS for a remembered device");
    // Without the cookie the step is asked for again.
    assert_eq!(
        app.login("val@example.com").await.body["mfa_required"],
        true
    );
}

#[tokio::test]
async fn removing_the_last_other_factor_is_a_409_where_sms_needs_company() {
    let app = sqlite_app_with(Options {
        restricted_alone: false,
        ..Options::default()
    })
    .await;
    let (_, key, _) = app.enrolled_user("eli@example.com").await;
    let fresh = app.fresh_mfa_token("eli@example.com", &key).await;
    let enrolled = app
        .post("/api/mfa/sms/enroll", Some(&fresh), json!({"phone": PHONE}))
        .await;
    assert_eq!(enrolled.status, StatusCode::OK, "{enrolled:?}");
    let verified = app
        .post(
            "/api/mfa/sms/verify",
            Some(&fresh),
            json!({"code": app.last_sms_code()}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");

    let refused = app.delete("/api/mfa/totp", Some(&fresh)).await;
    refused.assert_error(StatusCode::CONFLICT, "sms_needs_another_factor");
    assert!(
        refused.body["error_description"]
            .as_str()
            .unwrap()
            .contains("SMS")
    );
    let methods = app.login("eli@example.com").await.body["methods"].clone();
    assert_eq!(methods, json!(["totp", "sms", "backup_code"]));
    // SMS first, then the app: both go.
    assert_eq!(
        app.delete("/api/mfa/sms", Some(&fresh)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.delete("/api/mfa/totp", Some(&fresh)).await.status,
        StatusCode::OK
    );
    assert_eq!(app.login("eli@example.com").await.body["acr"], "pwd");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every other test of this binary logs into this subscriber too: none of them may leak either.
#[tokio::test]
async fn no_code_and_no_full_number_in_any_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let installed = tracing_subscriber::fmt()
        .with_env_filter(
            "trace,hyper=info,hyper_util=info,reqwest=info,h2=info,tokio=info,runtime=info",
        )
        .with_ansi(false)
        // A timestamp's microseconds could spell a code.
        .without_time()
        .with_writer(move || writer.clone())
        .try_init();
    assert!(installed.is_ok(), "the first subscriber of this binary");

    let app = sqlite_app().await;
    let mut secrets = vec![PHONE.to_owned(), "5551236789".to_owned()];
    let (_, _) = sms_user(&app, "uma@example.com").await;
    let mfa_token = app.mfa_token("uma@example.com").await;
    app.post(
        "/oauth/authorize/mfa/sms/send",
        None,
        json!({"mfa_token": mfa_token}),
    )
    .await;
    app.mfa_step(&mfa_token, json!({"method": "sms", "code": "000000"}))
        .await;
    app.mfa_step(
        &mfa_token,
        json!({"method": "sms", "code": app.last_sms_code()}),
    )
    .await
    .token();
    for sent in app.texts() {
        secrets.push(code_in(&sent.body));
    }

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("sms_sent"), "sends are audited");
    assert!(log.contains("SMS code sent"));
    assert!(log.contains(MASKED_PHONE));
    for secret in &secrets {
        for line in log.lines() {
            assert!(
                !contains_word(line, secret),
                "{secret} reached the log: {line}"
            );
        }
    }
}

/// Whether `needle` occurs in `haystack` not as part of a longer run of letters and digits (a
/// 6-digit code may turn up inside a random hex id by chance).
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}
