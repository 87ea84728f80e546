//! The generic factor routes, the same for every kind (`totp`, `webauthn`, `sms`, `email`):
//! `POST /api/mfa/factors/{kind}` and `…/confirm`, `GET /api/mfa/factors`,
//! `PATCH`/`DELETE /api/mfa/factors/{kind}/{id}`, `POST /oauth/authorize/mfa/{kind}/prepare`
//! and `POST /oauth/authorize/mfa` with `method: kind` — each kind's whole life over HTTP, on
//! SQLite and PostgreSQL. The earlier per-kind paths are aliases (the other test files use them).

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_mfa::totp::TotpKey;
use support::passkeys::request_options;
use support::*;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// What a user holds of one factor, to answer its challenges.
enum Holding {
    Totp(TotpKey),
    Passkey(SoftPasskey),
    /// SMS and email: the codes arrive in the fixture's outboxes.
    Codes,
}

/// The body that starts an enrollment of `kind`.
fn start_body(kind: &str) -> Value {
    match kind {
        "sms" => json!({"phone": PHONE}),
        _ => json!({}),
    }
}

/// Checks the start answer of `kind`; returns what confirms it and what the user holds.
async fn confirmation(app: &App, kind: &str, started: &Answer, mails: usize) -> (Value, Holding) {
    match kind {
        "totp" => {
            assert!(started.body["secret"].is_string(), "{started:?}");
            assert!(
                started.body["otpauth_uri"]
                    .as_str()
                    .unwrap()
                    .starts_with("otpauth://totp/")
            );
            assert!(
                started.body["qr_code"]
                    .as_str()
                    .unwrap()
                    .starts_with("data:image/png;base64,")
            );
            let key = key_from(&started.body);
            (json!({"code": app.code(&key)}), Holding::Totp(key))
        }
        "webauthn" => {
            assert!(started.body["publicKey"]["challenge"].is_string());
            let mut passkey = SoftPasskey::new(true);
            let body = app.registration(started, &mut passkey);
            (body, Holding::Passkey(passkey))
        }
        "sms" => {
            assert_eq!(started.body["message"], "Code sent to +1*****6789");
            assert_eq!(started.body["phone"], MASKED_PHONE);
            (json!({"code": app.last_sms_code()}), Holding::Codes)
        }
        "email" => {
            assert_eq!(started.body["message"], "Code sent to e***@example.com");
            assert_eq!(started.body["email"], "e***@example.com");
            (
                json!({"code": app.mailed_code(mails).await}),
                Holding::Codes,
            )
        }
        other => panic!("no such kind {other}"),
    }
}

/// The `amr` a factor of `kind` adds, and the level it reaches.
fn reached(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "totp" => ("otp", "mfa"),
        "webauthn" => ("hwk", "phr"),
        "sms" => ("sms", "mfa"),
        "email" => ("email", "mfa"),
        other => panic!("no such kind {other}"),
    }
}

/// One kind's life through the generic routes: start, confirm, list, rename, the MFA step
/// (prepare, then `method: kind`), removal only with a fresh second factor.
async fn lifecycle(backend: &Backend, kind: &str) {
    let app = backend.app().await;
    let email = "erin@example.com";
    app.register(email).await;
    let password = app.login(email).await.token();

    // Start: the factor's answer, never cached; the credential is pending until confirmed.
    let mails = app.mails().len();
    let started = app
        .post(
            &format!("/api/mfa/factors/{kind}"),
            Some(&password),
            start_body(kind),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{started:?}");
    assert_eq!(started.cache_control.as_deref(), Some("no-store"));
    let (confirm, mut holding) = confirmation(&app, kind, &started, mails).await;
    let listed = app.get("/api/mfa/factors", Some(&password)).await;
    if kind == "webauthn" {
        // A passkey has nothing pending: its ceremony waits in the ephemeral store.
        assert_eq!(listed.body["factors"], json!([]), "{listed:?}");
    } else {
        assert_eq!(listed.body["factors"][0]["status"], "pending", "{listed:?}");
        assert_eq!(listed.body["factors"][0]["active"], false, "{listed:?}");
        assert_eq!(
            app.login(email).await.body["acr"],
            "pwd",
            "a pending factor is no factor"
        );
    }

    // Confirm: the first factor brings the backup codes.
    let confirmed = app
        .post(
            &format!("/api/mfa/factors/{kind}/confirm"),
            Some(&password),
            confirm,
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{confirmed:?}");
    assert_eq!(confirmed.cache_control.as_deref(), Some("no-store"));
    assert_eq!(confirmed.body["success"], true);
    assert_eq!(confirmed.body["enabled"], true);
    assert_eq!(confirmed.body["kind"], kind);
    assert_eq!(strings(&confirmed.body["backup_codes"]).len(), 10);
    let id = confirmed.body["credential_id"].as_str().unwrap().to_owned();

    // Listed with its kind, id, label, restriction and masked destination; no secret.
    let listed = app.get("/api/mfa/factors", Some(&password)).await;
    assert_eq!(listed.status, StatusCode::OK, "{listed:?}");
    let factors = listed.body["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1, "{listed:?}");
    let factor = &factors[0];
    assert_eq!(factor["kind"], kind);
    assert_eq!(factor["method"], kind);
    assert_eq!(factor["id"], id.as_str());
    assert_eq!(factor["status"], "active");
    assert_eq!(factor["active"], true);
    assert_eq!(factor["locked"], false);
    assert_eq!(factor["restricted"], matches!(kind, "sms" | "email"));
    let label = if kind == "webauthn" {
        json!("my key")
    } else {
        Value::Null
    };
    assert_eq!(factor["label"], label);
    match kind {
        "sms" => assert_eq!(factor["phone"], MASKED_PHONE),
        "email" => assert_eq!(factor["email"], "e***@example.com"),
        _ => {}
    }
    assert_eq!(listed.body["backup_codes_remaining"], 10);
    let text = listed.body.to_string();
    for secret in ["5551236789", "erin@", "payload", "otpauth"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    if let Some(secret) = started.body["secret"].as_str() {
        assert!(!text.contains(secret));
    }

    // Renamed.
    let path = format!("/api/mfa/factors/{kind}/{id}");
    let renamed = app
        .patch(&path, Some(&password), json!({"label": "daily"}))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{renamed:?}");
    let listed = app.get("/api/mfa/factors", Some(&password)).await;
    assert_eq!(listed.body["factors"][0]["label"], "daily");

    // The MFA step: this kind is offered, prepared, and answered with `method: kind`.
    app.clock.advance(Duration::from_secs(31));
    let login = app.login(email).await;
    assert_eq!(
        login.body["methods"],
        json!([kind, "backup_code"]),
        "{login:?}"
    );
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    let mails = app.mails().len();
    let prepared = app
        .post(
            &format!("/oauth/authorize/mfa/{kind}/prepare"),
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    let mut proof = match (&mut holding, kind) {
        (Holding::Totp(key), _) => {
            // An authenticator app has nothing to prepare.
            prepared.assert_error(StatusCode::BAD_REQUEST, "unsupported");
            json!({"code": app.code(key)})
        }
        (Holding::Passkey(passkey), _) => {
            assert_eq!(prepared.status, StatusCode::OK, "{prepared:?}");
            assert_eq!(prepared.cache_control.as_deref(), Some("no-store"));
            let credential = passkey
                .do_authentication(app.origin.clone(), request_options(&prepared.body))
                .unwrap();
            json!({"credential": credential})
        }
        (Holding::Codes, "sms") => {
            assert_eq!(prepared.status, StatusCode::OK, "{prepared:?}");
            assert_eq!(
                prepared.body,
                json!({"message": "Code sent to +1*****6789"})
            );
            json!({"code": app.last_sms_code()})
        }
        (Holding::Codes, _) => {
            assert_eq!(prepared.status, StatusCode::OK, "{prepared:?}");
            assert_eq!(
                prepared.body,
                json!({"message": "Code sent to e***@example.com"})
            );
            json!({"code": app.mailed_code(mails).await})
        }
    };
    proof["method"] = json!(kind);
    let signed_in = app.mfa_step(&mfa_token, proof).await;
    let (amr, acr) = reached(kind);
    assert_eq!(signed_in.body["acr"], acr, "{signed_in:?}");
    let fresh = signed_in.token();
    assert_eq!(claims_of(&fresh)["amr"], json!(["pwd", amr]));

    // Removal needs a fresh second factor: the password token gets the RFC 9470 challenge.
    let refused = app.delete(&path, Some(&password)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    assert_eq!(refused.body["error"], "insufficient_user_authentication");
    assert_eq!(refused.challenge.as_deref(), Some(CHALLENGE), "{refused:?}");
    assert_eq!(refused.body["acr_values"], "mfa");
    assert_eq!(refused.body["max_age"], 300);
    let removed = app.delete(&path, Some(&fresh)).await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    assert_eq!(removed.body, json!({"success": true}));
    app.delete(&path, Some(&fresh))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let listed = app.get("/api/mfa/factors", Some(&fresh)).await;
    assert_eq!(listed.body["factors"], json!([]));
    assert_eq!(
        listed.body["backup_codes_remaining"], 0,
        "the backup codes go with the last factor"
    );
    assert_eq!(app.login(email).await.body["acr"], "pwd");

    // Audited under the kind's own names.
    let kinds = app.event_kinds(&fresh).await;
    for event in ["enrollment_started", "enrolled", "removed"] {
        let event = format!("{kind}_{event}");
        assert!(kinds.contains(&event), "{event} in {kinds:?}");
    }
}

on_backends!([sqlite, postgres] totp, webauthn, sms, email);

async fn totp(backend: &Backend) {
    lifecycle(backend, "totp").await;
}

async fn webauthn(backend: &Backend) {
    lifecycle(backend, "webauthn").await;
}

async fn sms(backend: &Backend) {
    lifecycle(backend, "sms").await;
}

async fn email(backend: &Backend) {
    lifecycle(backend, "email").await;
}

#[tokio::test]
async fn every_kind_side_by_side_each_step_names_its_method() {
    let app = sqlite_app().await;
    let email = "erin@example.com";
    let (_, key, _) = app.enrolled_user(email).await;
    let mut fresh = app.fresh_mfa_token(email, &key).await;
    // Email to another address than the account's, proven by the code mailed there.
    let mails = app.mails().len();
    let started = app
        .post(
            "/api/mfa/factors/email",
            Some(&fresh),
            json!({"email": "Work@Example.ORG"}),
        )
        .await;
    assert_eq!(started.body["email"], "W***@example.org", "{started:?}");
    let mail = wait_for_mail(&app.mail, mails, |mail| {
        mail.subject.starts_with("Your verification code")
    })
    .await;
    assert_eq!(mail.to, "Work@example.org");
    let code = code_in(&mail.body);
    let confirmed = app
        .post(
            "/api/mfa/factors/email/confirm",
            Some(&fresh),
            json!({"code": code}),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{confirmed:?}");
    assert_eq!(
        confirmed.body["backup_codes"],
        json!([]),
        "not the first factor"
    );
    let started = app
        .post(
            "/api/mfa/factors/sms",
            Some(&fresh),
            json!({"phone": PHONE}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{started:?}");
    let confirmed = app
        .post(
            "/api/mfa/factors/sms/confirm",
            Some(&fresh),
            json!({"code": app.last_sms_code()}),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{confirmed:?}");
    let mut passkey = SoftPasskey::new(true);
    let started = app.start_passkey("/api/mfa/factors/webauthn", &fresh).await;
    let body = app.registration(&started, &mut passkey);
    let confirmed = app
        .post("/api/mfa/factors/webauthn/confirm", Some(&fresh), body)
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{confirmed:?}");

    let listed = app.get("/api/mfa/factors", Some(&fresh)).await;
    let kinds: Vec<&str> = listed.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|factor| factor["kind"].as_str().unwrap())
        .collect();
    for kind in ["totp", "webauthn", "sms", "email"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let login = app.login(email).await;
    assert_eq!(
        login.body["methods"],
        json!(["totp", "webauthn", "sms", "email", "backup_code"]),
        "in registration order"
    );

    // One step, each kind: the token names exactly the factor used.
    for kind in ["totp", "webauthn", "sms", "email"] {
        app.clock.advance(Duration::from_secs(31));
        let mfa_token = app.mfa_token(email).await;
        let mails = app.mails().len();
        let proof = match kind {
            "totp" => json!({"method": "totp", "code": app.code(&key)}),
            "webauthn" => app.assertion_for(&mfa_token, &mut passkey).await,
            _ => {
                let prepared = app
                    .post(
                        &format!("/oauth/authorize/mfa/{kind}/prepare"),
                        None,
                        json!({"mfa_token": mfa_token}),
                    )
                    .await;
                assert_eq!(prepared.status, StatusCode::OK, "{prepared:?}");
                let code = if kind == "sms" {
                    app.last_sms_code()
                } else {
                    app.mailed_code(mails).await
                };
                json!({"method": kind, "code": code})
            }
        };
        let signed_in = app.mfa_step(&mfa_token, proof).await;
        let (amr, acr) = reached(kind);
        assert_eq!(signed_in.body["acr"], acr, "{kind}: {signed_in:?}");
        fresh = signed_in.token();
        assert_eq!(claims_of(&fresh)["amr"], json!(["pwd", amr]), "{kind}");
    }

    // A code of one kind is no proof of another.
    app.clock.advance(Duration::from_secs(31));
    let mfa_token = app.mfa_token(email).await;
    app.mfa_step(&mfa_token, json!({"method": "sms", "code": app.code(&key)}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
}

#[tokio::test]
async fn unknown_kinds_and_backup_codes_are_no_enrollable_factor() {
    let app = sqlite_app().await;
    let token = app.password_token("nia@example.com").await;
    app.post("/api/mfa/factors/nope", Some(&token), json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "unknown_factor");
    app.post("/api/mfa/factors/backup_code", Some(&token), json!({}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unsupported");
    app.post("/api/mfa/factors/nope/confirm", Some(&token), json!({}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "unknown_factor");
    // Confirming what was never started.
    app.post(
        "/api/mfa/factors/sms/confirm",
        Some(&token),
        json!({"code": "123456"}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "no_pending_enrollment");
    // Without a token, nothing.
    let anonymous = app.post("/api/mfa/factors/totp", None, json!({})).await;
    anonymous.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(anonymous.challenge.as_deref(), Some("Bearer"));
    let listed = Answer::read(app.request(Method::GET, "/api/mfa/factors", None)).await;
    assert_eq!(listed.status, StatusCode::UNAUTHORIZED);
}

/// The earlier per-kind paths answer exactly as the generic ones.
#[tokio::test]
async fn the_earlier_paths_are_aliases_of_the_generic_ones() {
    let app = sqlite_app().await;
    let email = "ola@example.com";
    let (password, key, _) = app.enrolled_user(email).await;
    let confirmed_shape = app.get("/api/mfa/factors", Some(&password)).await;
    assert_eq!(confirmed_shape.body["factors"][0]["kind"], "totp");
    let fresh = app.fresh_mfa_token(email, &key).await;

    // SMS through its earlier paths, prepared through the earlier send path.
    let started = app
        .post("/api/mfa/sms/enroll", Some(&fresh), json!({"phone": PHONE}))
        .await;
    assert_eq!(started.status, StatusCode::OK, "{started:?}");
    let confirmed = app
        .post(
            "/api/mfa/sms/verify",
            Some(&fresh),
            json!({"code": app.last_sms_code()}),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{confirmed:?}");
    assert_eq!(confirmed.body["kind"], "sms");
    assert_eq!(confirmed.body["credential_id"], "sms");
    // A passkey through its earlier paths, listed and renamed there.
    let mut passkey = SoftPasskey::new(true);
    let (finished, _) = app.add_passkey(&fresh, &mut passkey).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    assert_eq!(finished.body["kind"], "webauthn");
    let id = finished.body["credential_id"].as_str().unwrap().to_owned();
    let credentials = app.get("/api/mfa/webauthn/credentials", Some(&fresh)).await;
    assert_eq!(credentials.body["credentials"][0]["id"], id.as_str());
    let renamed = app
        .patch(
            &format!("/api/mfa/webauthn/credentials/{id}"),
            Some(&fresh),
            json!({"label": "desk key"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{renamed:?}");
    let listed = app.get("/api/mfa/factors", Some(&fresh)).await;
    let passkey_entry = listed.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|factor| factor["kind"] == "webauthn")
        .unwrap()
        .clone();
    assert_eq!(passkey_entry["label"], "desk key");

    // The earlier prepare paths.
    app.clock.advance(Duration::from_secs(31));
    let mfa_token = app.mfa_token(email).await;
    let sent = app
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(sent.body, json!({"message": "Code sent to +1*****6789"}));
    let options = app
        .post(
            "/oauth/authorize/mfa/webauthn/start",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert!(options.body["publicKey"]["challenge"].is_string());
    let stepped = app
        .mfa_step(
            &mfa_token,
            json!({"method": "sms", "code": app.last_sms_code()}),
        )
        .await;
    let fresh = stepped.token();

    // The earlier removal paths, behind the same freshness rule.
    for path in [
        "/api/mfa/sms".to_owned(),
        format!("/api/mfa/webauthn/credentials/{id}"),
        "/api/mfa/totp".to_owned(),
    ] {
        let refused = app.delete(&path, Some(&password)).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {refused:?}"
        );
        assert_eq!(refused.challenge.as_deref(), Some(CHALLENGE), "{path}");
        let removed = app.delete(&path, Some(&fresh)).await;
        assert_eq!(
            removed.body,
            json!({"success": true}),
            "{path}: {removed:?}"
        );
    }
    let listed = app.get("/api/mfa/factors", Some(&fresh)).await;
    assert_eq!(listed.body["factors"], json!([]));
}

/// Every path that starts an enrollment, generic or earlier, counts against one request
/// ceiling: an earlier path is no way around the generic route's limit.
#[tokio::test]
async fn every_path_that_starts_an_enrollment_shares_one_ceiling() {
    let app = sqlite_app_with(Options {
        request_ceiling: Some((4, Duration::from_secs(300))),
        ..Options::default()
    })
    .await;
    app.register("cap@example.com").await;
    let token = app.login("cap@example.com").await.token();
    let starts = [
        ("/api/mfa/setup", json!({})),
        ("/api/mfa/webauthn/register/start", json!({})),
        ("/api/mfa/factors/totp", json!({})),
        ("/api/mfa/sms/enroll", json!({"phone": PHONE})),
    ];
    for (path, body) in &starts {
        let started = app.post(path, Some(&token), body.clone()).await;
        assert_eq!(started.status, StatusCode::OK, "{path}: {started:?}");
    }
    for (path, body) in &starts {
        let refused = app.post(path, Some(&token), body.clone()).await;
        refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    }
}

/// New backup codes need a fresh second factor; the set is replaced whole.
#[tokio::test]
async fn backup_codes_are_regenerated_whole_with_a_fresh_second_factor() {
    let app = sqlite_app().await;
    let email = "pia@example.com";
    let (password, key, old) = app.enrolled_user(email).await;
    let refused = app
        .post(
            "/api/mfa/backup-codes/regenerate",
            Some(&password),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    assert_eq!(refused.challenge.as_deref(), Some(CHALLENGE));
    let fresh = app.fresh_mfa_token(email, &key).await;
    let regenerated = app
        .post("/api/mfa/backup-codes/regenerate", Some(&fresh), json!({}))
        .await;
    assert_eq!(regenerated.status, StatusCode::OK, "{regenerated:?}");
    assert_eq!(regenerated.cache_control.as_deref(), Some("no-store"));
    let new = strings(&regenerated.body["backup_codes"]);
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|code| !old.contains(code)));
    let mfa_token = app.mfa_token(email).await;
    app.mfa_step(&mfa_token, json!({"backup_code": old[0]}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let used = app
        .mfa_step(
            &mfa_token,
            json!({"method": "backup_code", "backup_code": new[0]}),
        )
        .await;
    assert_eq!(used.body["acr"], "mfa", "{used:?}");
    assert_eq!(used.body["remaining_codes"], 9);
}
