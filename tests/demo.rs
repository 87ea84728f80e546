//! The demo's HTTP contract, end to end over a real socket, on a SQLite file, with the
//! clock in the test's hands.

mod demo_support;

use std::time::Duration;

use demo_support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup::acr::{amr, level};
use stepup::mfa::totp::TotpAlgorithm;
use stepup::mfa::totp::TotpKey;
use stepup::token::Grant;

#[tokio::test]
async fn the_whole_flow_from_registration_to_deletion() {
    let demo = Demo::start().await;
    demo.register("ada@example.com").await;

    let login = demo.login("ada@example.com").await;
    assert_eq!(login.body["acr"], "pwd");
    assert_eq!(login.body["token_type"], "Bearer");
    let password_token = login.token();

    let refused = demo.delete("/api/account", Some(&password_token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(refused.body["acr_values"], "mfa");

    let setup = demo
        .post("/api/mfa/setup", Some(&password_token), json!({}))
        .await;
    assert_eq!(setup.status, StatusCode::OK);
    assert!(
        setup.body["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert!(
        setup.body["otpauth_uri"]
            .as_str()
            .unwrap()
            .contains("ada%40example.com")
    );
    let secret = totp_rs::Secret::try_from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();

    demo.post(
        "/api/mfa/verify-setup",
        Some(&password_token),
        json!({"code": "000000"}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_mfa_code");
    let factors = demo.get("/api/mfa/factors", Some(&password_token)).await;
    let totp = only_factor(&factors);
    assert_eq!(totp["method"], "totp");
    assert_eq!(totp["active"], false, "still pending");
    assert_eq!(totp["locked"], false);
    assert_eq!(totp["created_at"], T0);
    assert_eq!(totp["last_used_at"], Value::Null);
    assert_eq!(factors.body["backup_codes_remaining"], 0);

    let verified = demo
        .post(
            "/api/mfa/verify-setup",
            Some(&password_token),
            json!({"code": demo.code(&key)}),
        )
        .await;
    assert_eq!(verified.body["success"], true);
    assert_eq!(verified.body["enabled"], true);
    assert_eq!(verified.body["backup_codes"].as_array().unwrap().len(), 10);
    let factors = demo.get("/api/mfa/factors", Some(&password_token)).await;
    let totp = only_factor(&factors);
    assert_eq!(totp["method"], "totp");
    assert_eq!(totp["active"], true);
    assert_eq!(totp["locked"], false);
    assert_eq!(factors.body["backup_codes_remaining"], 10);
    demo.clock.advance(Duration::from_secs(30));

    let login = demo.login("ada@example.com").await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["mfa_required"], true);
    assert_eq!(login.body["methods"], json!(["totp", "backup_code"]));
    assert!(login.body.get("access_token").is_none());
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();

    demo.mfa_step(&mfa_token, json!({"code": "000000"}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let step = demo.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(step.body["acr"], "mfa");
    let mfa_token_value = step.token();
    demo.mfa_step_with_code(&mfa_token, &key)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");

    let me = demo.get("/api/me", Some(&mfa_token_value)).await;
    assert_eq!(me.body["acr"], "mfa");
    assert_eq!(me.body["amr"], json!(["pwd", "otp"]));
    assert_eq!(me.body["auth_time"], T0 + 30, "the second factor's time");
    let factors = demo.get("/api/mfa/factors", Some(&mfa_token_value)).await;
    assert_eq!(
        only_factor(&factors)["last_used_at"],
        T0 + 30,
        "the login it proved"
    );

    let deleted = demo.delete("/api/account", Some(&mfa_token_value)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
    assert_eq!(deleted.body, json!({"success": true}));
    demo.login("ada@example.com")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
}

/// The one factor of a `GET /api/mfa/factors` answer, after checking the answer's shape: exactly
/// `{"factors": [...], "backup_codes_remaining": n}`, each factor exactly its public fields.
fn only_factor(factors: &Answer) -> Value {
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
    let mut top: Vec<&str> = factors
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    top.sort_unstable();
    assert_eq!(top, ["backup_codes_remaining", "factors"], "{factors:?}");
    let list = factors.body["factors"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{factors:?}");
    let factor = list[0].clone();
    let mut fields: Vec<&str> = factor
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "active",
            "created_at",
            "id",
            "kind",
            "label",
            "last_used_at",
            "locked",
            "method",
            "restricted",
            "status"
        ],
        "no secret, nothing else: {factors:?}"
    );
    assert!(factor["id"].as_str().is_some_and(|id| !id.is_empty()));
    factor
}

#[tokio::test]
async fn a_backup_code_logs_in_once_and_reports_what_is_left() {
    let demo = Demo::start().await;
    let (_, _, codes) = demo.enrolled_user("bea@example.com").await;
    let mut used = None;
    for _ in 0..2 {
        let mfa_token = demo.mfa_token("bea@example.com").await;
        let answer = demo
            .mfa_step(&mfa_token, json!({"backup_code": codes[0].to_lowercase()}))
            .await;
        if used.is_none() {
            assert_eq!(answer.body["remaining_codes"], 9);
            assert_eq!(answer.body["acr"], "mfa");
            used = Some(answer.token());
        } else {
            answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
        }
    }
    let factors = demo.get("/api/mfa/factors", used.as_deref()).await;
    assert_eq!(factors.body["backup_codes_remaining"], 9);
}

#[tokio::test]
async fn factor_changes_need_a_fresh_second_factor() {
    let demo = Demo::start().await;
    let (password_token, key, _) = demo.enrolled_user("cy@example.com").await;
    for (method, path) in [
        (reqwest::Method::POST, "/api/mfa/backup-codes/regenerate"),
        (reqwest::Method::DELETE, "/api/mfa/totp"),
    ] {
        let answer = Answer::read(demo.request(method, path, Some(&password_token))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(answer.challenge.unwrap().contains("acr_values=\"mfa\""));
    }

    let mfa_token = demo.mfa_token("cy@example.com").await;
    let fresh = demo.mfa_step_with_code(&mfa_token, &key).await.token();
    let regenerated = demo
        .post("/api/mfa/backup-codes/regenerate", Some(&fresh), json!({}))
        .await;
    assert_eq!(
        regenerated.body["backup_codes"].as_array().unwrap().len(),
        10
    );

    demo.clock.advance(Duration::from_secs(301));
    let stale = demo.delete("/api/mfa/totp", Some(&fresh)).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert!(stale.challenge.unwrap().contains("max_age=300"));

    let minted = demo.mint(
        &Grant::new(me_of(&demo, &fresh).await)
            .acr(level::MFA)
            .amr([amr::PWD, amr::OTP]),
    );
    let removed = demo.delete("/api/mfa/totp", Some(&minted)).await;
    assert_eq!(removed.body, json!({"success": true}));
    let login = demo.login("cy@example.com").await;
    assert_eq!(login.body["acr"], "pwd", "no second factor any more");
}

async fn me_of(demo: &Demo, token: &str) -> String {
    demo.get("/api/me", Some(token)).await.body["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_expired_mfa_token_is_refused() {
    let demo = Demo::start().await;
    let (_, key, _) = demo.enrolled_user("dan@example.com").await;
    let mfa_token = demo.mfa_token("dan@example.com").await;
    demo.clock.advance(Duration::from_secs(5 * 60));
    demo.mfa_step_with_code(&mfa_token, &key)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
}

#[tokio::test]
async fn bad_mfa_input_is_a_400_json_error_and_changes_nothing() {
    let demo = Demo::start().await;
    let (password_token, key, _) = demo.enrolled_user("eve@example.com").await;
    let mfa_token = demo.mfa_token("eve@example.com").await;
    for body in [
        json!({}),
        json!({"mfa_token": mfa_token}),
        json!({"mfa_token": mfa_token, "code": "123456", "backup_code": "ABCDE-FGHJK"}),
        json!({"mfa_token": 7, "code": "123456"}),
        json!({"code": "123456"}),
    ] {
        demo.post("/oauth/authorize/mfa", None, body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let raw = demo
        .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
        .header("content-type", "application/json")
        .body("{\"mfa_token\":");
    Answer::read(raw)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    // The answers never echo the input (nor the server's type names).
    let echoed = |answer: &Answer| {
        let description = answer.body["error_description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            !description.contains("ECHO") && !description.contains("MfaLogin"),
            "the error echoes: {description}"
        );
    };
    for body in [
        json!({"mfa_token": {"ECHO-1": "ECHO-2"}, "code": "ECHO-3"}),
        json!({"mfa_token": "ECHO-4", "code": ["ECHO-5"]}),
        json!({"ECHO-6": "ECHO-7"}),
    ] {
        let answer = demo.post("/oauth/authorize/mfa", None, body).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        echoed(&answer);
    }
    let raw = demo
        .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
        .header("content-type", "application/json")
        .body("{\"mfa_token\": \"ECHO-8\", ECHO-9");
    let answer = Answer::read(raw).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    echoed(&answer);
    // A caller without a fresh second factor is refused before the body is looked at.
    let unfresh = demo
        .post(
            "/api/mfa/verify-setup",
            Some(&password_token),
            json!({"kode": "1"}),
        )
        .await;
    assert_eq!(unfresh.status, StatusCode::UNAUTHORIZED, "{unfresh:?}");
    assert_eq!(unfresh.body["error"], "insufficient_user_authentication");
    let anonymous = demo.post("/api/mfa/setup", None, json!({})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.challenge.as_deref(), Some("Bearer"));

    // None of that used up the mfa_token.
    let step = demo.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(step.body["acr"], "mfa");
}

#[tokio::test]
async fn users_and_factors_survive_a_restart() {
    let first = Demo::start().await;
    let (_, key, _) = first.enrolled_user("fay@example.com").await;
    let clock = first.clock.clone();
    let dir = first.dir;
    let second = Demo::start_in(dir, clock).await;
    let mfa_token = second.mfa_token("fay@example.com").await;
    let step = second.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(step.body["acr"], "mfa");
}

#[tokio::test]
async fn registration_refuses_bad_input_and_duplicates() {
    let demo = Demo::start().await;
    let ok = json!({"email": "grace@example.com", "password": "long enough"});
    assert_eq!(
        demo.post("/api/register", None, ok.clone()).await.status,
        StatusCode::CREATED
    );
    demo.post("/api/register", None, ok)
        .await
        .assert_error(StatusCode::CONFLICT, "email_taken");
    demo.post(
        "/api/register",
        None,
        json!({"email": " GRACE@example.com ", "password": "long enough"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "email_taken");
    for body in [
        json!({"email": "not-an-email", "password": "long enough"}),
        json!({"email": "x@example.com", "password": "short"}),
        json!({"email": "x@example.com", "password": "p".repeat(257)}),
        json!({"email": "x@example.com"}),
        json!({"email": 5, "password": "long enough"}),
        json!([]),
    ] {
        demo.post("/api/register", None, body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Nothing half-registered: the refused email is still free.
    let answer = demo
        .post(
            "/api/register",
            None,
            json!({"email": "x@example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
}

#[tokio::test]
async fn login_refuses_wrong_passwords_and_unknown_users_alike() {
    let demo = Demo::start().await;
    demo.register("lin@example.com").await;
    let wrong = demo
        .post(
            "/oauth/authorize",
            None,
            json!({"username": "lin@example.com", "password": "wrong horse"}),
        )
        .await;
    let unknown = demo.login("nobody@example.com").await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
    assert_eq!(wrong.body, unknown.body);
    demo.post(
        "/oauth/authorize",
        None,
        json!({"username": "lin@example.com"}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn an_old_second_factor_does_not_delete_the_account() {
    let demo = Demo::start().await;
    let user = demo.register("old@example.com").await;
    let stale = demo.mint(&Grant::new(&user).acr(level::MFA).auth_time(T0 - 3600));
    let answer = demo.delete("/api/account", Some(&stale)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenge.unwrap().contains("max_age=300"));
    assert_eq!(demo.login("old@example.com").await.status, StatusCode::OK);
}

#[tokio::test]
async fn health_needs_no_token_and_me_needs_one() {
    let demo = Demo::start().await;
    assert_eq!(demo.get("/healthz", None).await.status, StatusCode::OK);
    let anonymous = demo.get("/api/me", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.challenge.as_deref(), Some("Bearer"));
    demo.get("/nowhere", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_store_that_is_down_fails_closed() {
    let demo = Demo::start().await;
    let (_, key, codes) = demo.enrolled_user("zed@example.com").await;
    let mfa_token = demo.mfa_token("zed@example.com").await;

    demo.store.pool().close().await;
    for proof in [
        json!({"code": demo.code(&key)}),
        json!({"backup_code": codes[0]}),
    ] {
        demo.mfa_step(&mfa_token, proof)
            .await
            .assert_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
    demo.login("zed@example.com")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    demo.get("/healthz", None)
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
}

/// The SMS lines the demo wrote to its outbox (beside the database).
fn texts(demo: &Demo) -> Vec<Value> {
    std::fs::read_to_string(demo.dir.path().join("demo.db.sms.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn sms_is_never_the_only_factor_and_enrolls_numbers_of_the_listed_regions_only() {
    let demo = Demo::start_configured(|settings| {
        settings.sms_regions = Some(demo_support::app::parse_regions("US").unwrap());
    })
    .await;
    const WASHINGTON: &str = "+1 202 555 0143";

    // Alone, SMS is refused whatever the number.
    demo.register("sol@example.com").await;
    let password_token = demo.login("sol@example.com").await.token();
    demo.post(
        "/api/mfa/sms/enroll",
        Some(&password_token),
        json!({"phone": WASHINGTON}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "sms_needs_another_factor");
    assert!(texts(&demo).is_empty());

    // Beside an app, only numbers of the listed regions: `US` is not every `+1` country.
    let (_, key, _) = demo.enrolled_user("ana@example.com").await;
    let mfa_token = demo.mfa_token("ana@example.com").await;
    let fresh = demo.mfa_step_with_code(&mfa_token, &key).await.token();
    for number in ["+1 613 555 0123", "+1 876 555 0123", "+44 7400 123456"] {
        let refused = demo
            .post(
                "/api/mfa/sms/enroll",
                Some(&fresh),
                json!({"phone": number}),
            )
            .await;
        refused.assert_error(StatusCode::BAD_REQUEST, "country_not_allowed");
        assert!(
            !refused.body.to_string().contains(&number[4..]),
            "{refused:?}"
        );
    }
    assert!(texts(&demo).is_empty(), "nothing was texted");
    let started = demo
        .post(
            "/api/mfa/sms/enroll",
            Some(&fresh),
            json!({"phone": WASHINGTON}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{started:?}");
    assert_eq!(texts(&demo).len(), 1);
}

#[test]
fn sms_regions_are_region_codes_not_calling_codes() {
    let regions = demo_support::app::parse_regions(" GB, de ,").unwrap();
    let names: Vec<&str> = regions.iter().map(|region| region.as_str()).collect();
    assert_eq!(names, ["GB", "DE"]);
    assert!(demo_support::app::parse_regions("").unwrap().is_empty());
    for bad in ["1", "44", "GB,49", "USA", "ZZ"] {
        assert!(demo_support::app::parse_regions(bad).is_err(), "{bad}");
    }
}
