//! Account recovery and the admin reset over HTTP: the recovery routes on SQLite and PostgreSQL
//! (the mail read from the fixture's outbox), the admin handler behind the application's own
//! policy, a recovery delay. The clock is always the test's: nothing sleeps to make time pass
//! (mails leave in the background; the tests wait for those tasks, not for time).

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup_core::clock::Clock;
use stepup_core::token::Grant;
use stepup_mfa::AttemptPolicy;
use stepup_mfa::totp::TotpKey;
use support::*;

const EMAIL: &str = "ada@example.com";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const RECOVERY_SUBJECT: &str = "Your account recovery code";

async fn request_recovery(app: &App, email: &str) -> Answer {
    app.post("/api/mfa/recovery/request", None, json!({"email": email}))
        .await
}

async fn confirm(app: &App, token: &str, password: &str) -> Answer {
    app.post(
        "/api/mfa/recovery/confirm",
        None,
        json!({"token": token, "password": password}),
    )
    .await
}

/// Requests a recovery for `email` and returns the code from the outbox.
async fn mailed_code(app: &App, email: &str) -> String {
    let before = app.mails().len();
    let answer = request_recovery(app, email).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    // Other notices leave in the background too, in any order: wait for this very mail.
    let mail = app.mail_with_subject(before, RECOVERY_SUBJECT).await;
    assert_eq!(mail.to, email);
    recovery_code_in(&mail.body)
}

/// The `name=value` of the device cookie set by an MFA step with `remember_device`.
async fn remembered_cookie(app: &App, key: &TotpKey) -> String {
    let mfa_token = app.mfa_token(EMAIL).await;
    let (answer, cookie) = app
        .remembered_step(&mfa_token, json!({"code": app.code(key)}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    cookie
}

on_backends!([sqlite, postgres]
    request_outbox_confirm_and_enroll_again,
    an_unknown_address_gets_the_same_answer_and_no_mail,
    a_wrong_password_uses_the_code_up,
    a_code_works_once,
    a_code_expires_after_an_hour,
    wrong_codes_use_up_the_address_budget,
    an_authorization_code_issued_before_a_recovery_fails_after_it,
);

on_backends!([sqlite, postgres, postgres_redis] one_code_confirmed_100_times_at_once_resets_once);

/// Recovery codes live in the ephemeral store: with it in Redis, the race is Redis's.
async fn one_code_confirmed_100_times_at_once_resets_once(backend: &Backend) {
    let app = backend.app().await;
    app.enrolled_user(EMAIL).await;
    let code = mailed_code(&app, EMAIL).await;
    let body = json!({"token": code, "password": PASSWORD});
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let request = app
            .request(reqwest::Method::POST, "/api/mfa/recovery/confirm", None)
            .json(&body);
        tasks.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = tasks.join_all().await;
    let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(wins, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK
            || *s == StatusCode::BAD_REQUEST
            || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let completed = app
        .stepup
        .mfa()
        .audit()
        .events(&app.users.id_of(EMAIL).unwrap(), 100)
        .await
        .unwrap()
        .iter()
        .filter(|event| event.kind == "recovery_completed")
        .count();
    assert_eq!(completed, 1, "one reset");
}

async fn request_outbox_confirm_and_enroll_again(backend: &Backend) {
    let app = backend.app().await;
    let (old_token, key, backup_codes) = app.enrolled_user(EMAIL).await;
    let cookie = remembered_cookie(&app, &key).await;
    app.clock.advance(Duration::from_secs(30));
    let old_mfa_token = app.mfa_token(EMAIL).await;
    let mfa_token = app.mfa_token(EMAIL).await;
    let mfa_access = app.mfa_step_with_code(&mfa_token, &key).await.token();
    app.clock.advance(Duration::from_secs(30));

    let code = mailed_code(&app, EMAIL).await;
    assert!(code.len() >= 43, "256 random bits");
    let recovered = confirm(&app, &code, PASSWORD).await;
    assert_eq!(recovered.status, StatusCode::OK, "{recovered:?}");
    assert_eq!(recovered.body["acr"], "pwd");
    assert_eq!(recovered.cache_control.as_deref(), Some("no-store"));
    let token = recovered.token();

    // Every factor and backup code is gone; the recovery token enrolls again.
    let factors = app.get("/api/mfa/factors", Some(&token)).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
    assert_eq!(factors.body["factors"], json!([]));
    assert_eq!(factors.body["backup_codes_remaining"], 0);
    let setup = app.post("/api/mfa/setup", Some(&token), json!({})).await;
    assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
    let new_key = key_from(&setup.body);
    let verified = app
        .post(
            "/api/mfa/verify-setup",
            Some(&token),
            json!({"code": app.code(&new_key)}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    app.clock.advance(Duration::from_secs(30));

    // Old tokens (password and MFA level) are void.
    for old in [&old_token, &mfa_access] {
        app.get("/api/mfa/factors", Some(old))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
        let me = app.get("/api/me", Some(old)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{me:?}");
        assert_eq!(me.body["error"], "invalid_token");
    }
    // The old mfa_token fails, even with the new factor.
    app.mfa_step_with_code(&old_mfa_token, &new_key)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    // The old backup codes are gone.
    let mfa_token = app.mfa_token(EMAIL).await;
    app.mfa_step(&mfa_token, json!({"backup_code": backup_codes[0]}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    // The old device cookie vouches no more: the login asks for the second factor.
    let login = app.login_with_cookie(EMAIL, &cookie).await;
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    // The new factor works.
    let mfa_token = app.mfa_token(EMAIL).await;
    let answer = app.mfa_step_with_code(&mfa_token, &new_key).await;
    assert_eq!(answer.body["acr"], "mfa", "{answer:?}");

    // Audited.
    let kinds = app.event_kinds(&answer.token()).await;
    for kind in ["recovery_requested", "factors_reset", "recovery_completed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn an_unknown_address_gets_the_same_answer_and_no_mail(backend: &Backend) {
    let app = backend.app().await;
    app.register(EMAIL).await;
    let known = request_recovery(&app, EMAIL).await;
    let unknown = request_recovery(&app, "nobody@example.com").await;
    let malformed = request_recovery(&app, "not an address").await;
    for answer in [&known, &unknown, &malformed] {
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
        assert_eq!(answer.body, known.body);
        assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    }
    let mails = app.mails_at_least(1).await;
    // Give a stray mail every chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mails_now = app.mails();
    assert_eq!(mails_now.len(), 1, "{mails_now:?}");
    assert_eq!(mails[0].to, EMAIL);
}

async fn a_wrong_password_uses_the_code_up(backend: &Backend) {
    let app = backend.app().await;
    let (_, key, _) = app.enrolled_user(EMAIL).await;
    let code = mailed_code(&app, EMAIL).await;
    confirm(&app, &code, "wrong horse")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    confirm(&app, &code, PASSWORD)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    // Nothing was reset.
    let mfa_token = app.mfa_token(EMAIL).await;
    assert_eq!(
        app.mfa_step_with_code(&mfa_token, &key).await.body["acr"],
        "mfa"
    );
}

async fn a_code_works_once(backend: &Backend) {
    let app = backend.app().await;
    app.enrolled_user(EMAIL).await;
    let code = mailed_code(&app, EMAIL).await;
    assert_eq!(confirm(&app, &code, PASSWORD).await.status, StatusCode::OK);
    confirm(&app, &code, PASSWORD)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    confirm(&app, "made-up", PASSWORD)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
}

async fn a_code_expires_after_an_hour(backend: &Backend) {
    let app = backend.app().await;
    app.enrolled_user(EMAIL).await;
    let code = mailed_code(&app, EMAIL).await;
    app.clock.advance(Duration::from_secs(60 * 60 + 1));
    confirm(&app, &code, PASSWORD)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    // A fresh one works.
    let code = mailed_code(&app, EMAIL).await;
    assert_eq!(confirm(&app, &code, PASSWORD).await.status, StatusCode::OK);
}

async fn wrong_codes_use_up_the_address_budget(backend: &Backend) {
    let app = backend.app().await;
    app.register(EMAIL).await;
    for _ in 0..30 {
        confirm(&app, "a-wrong-recovery-code", PASSWORD)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    }
    let refused = confirm(&app, "a-wrong-recovery-code", PASSWORD).await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert!(refused.retry_after.is_some());
}

async fn an_authorization_code_issued_before_a_recovery_fails_after_it(backend: &Backend) {
    let app = backend.app().await;
    let (_, key, _) = app.enrolled_user(EMAIL).await;
    // A PKCE login completes: the client holds a code it has not redeemed yet.
    let login = app
        .post(
            "/oauth/authorize",
            None,
            with_pkce(json!({"username": EMAIL, "password": PASSWORD})),
        )
        .await;
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    let early = app
        .redirected_code(
            "/oauth/authorize/mfa",
            json!({"mfa_token": mfa_token, "code": app.code(&key)}),
        )
        .await;
    // The account is recovered, still within the code's minute.
    app.clock.advance(Duration::from_secs(5));
    let code = mailed_code(&app, EMAIL).await;
    assert_eq!(confirm(&app, &code, PASSWORD).await.status, StatusCode::OK);
    app.redeem_code(&early)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    // A code issued after the recovery (the password alone now), in the same second, is good,
    // and so is its token.
    let after = app
        .redirected_code(
            "/oauth/authorize",
            with_pkce(json!({"username": EMAIL, "password": PASSWORD})),
        )
        .await;
    let token = app.redeem_code(&after).await.token();
    let factors = app.get("/api/mfa/factors", Some(&token)).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
}

#[tokio::test]
async fn the_admin_route_resets_a_user_for_its_admins_after_a_phishing_resistant_login() {
    let backend = Backend::sqlite().await.unwrap();
    let first = backend.app().await;
    let admin = first.register("root@example.com").await;
    let (own_token, key, _) = first.enrolled_user(EMAIL).await;
    let user = first.subject(&own_token).await;
    // Another instance over the same state, whose policy names root an administrator.
    let app = backend
        .app_with(Options {
            admins: vec![admin.clone()],
            ..Options::default()
        })
        .await;
    let path = format!("/api/admin/users/{user}/mfa/reset");
    let at = |sub: &str, acr: &str, amr: &str| {
        app.mint(
            &Grant::new(sub)
                .acr(acr)
                .amr([amr])
                .auth_time(app.clock.unix_seconds()),
        )
    };

    // An admin at `mfa` gets the phr challenge; a user at `phr` who is no admin gets 403.
    let refused = app
        .post(&path, Some(&at(&admin, "mfa", "otp")), json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    assert!(refused.challenge.unwrap().contains("acr_values=\"phr\""));
    app.post(&path, Some(&at(&user, "phr", "hwk")), json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // A phr login of the admin older than five minutes: the challenge again.
    let stale = at(&admin, "phr", "hwk");
    app.clock.advance(Duration::from_secs(301));
    let refused = app.post(&path, Some(&stale), json!({})).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    // Nothing was reset so far.
    let mfa_token = app.mfa_token(EMAIL).await;
    assert_eq!(
        app.mfa_step_with_code(&mfa_token, &key).await.body["acr"],
        "mfa"
    );

    let admin_token = at(&admin, "phr", "hwk");
    let reset = app.post(&path, Some(&admin_token), json!({})).await;
    assert_eq!(reset.status, StatusCode::OK, "{reset:?}");
    assert_eq!(reset.body["success"], true);
    app.post(
        "/api/admin/users/nobody/mfa/reset",
        Some(&admin_token),
        json!({}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    // The user signs in with the password alone; the trail names the admin.
    let token = app.login(EMAIL).await.token();
    let events = app.get("/api/mfa/events", Some(&token)).await;
    let reset = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["kind"] == "admin_reset")
        .cloned()
        .expect("the reset is audited");
    assert!(reset.to_string().contains(&admin), "{reset}");
}

#[tokio::test]
async fn notices_hold_no_code_but_the_recovery_mail() {
    let app = sqlite_app().await;
    let (_, _, backup_codes) = app.enrolled_user(EMAIL).await;
    let code = mailed_code(&app, EMAIL).await;
    let recovered = confirm(&app, &code, PASSWORD).await;
    assert_eq!(recovered.status, StatusCode::OK);
    // The enrollment notice, the code, the completed recovery.
    let expected = [
        "A sign-in factor was added",
        RECOVERY_SUBJECT,
        "Your account was recovered",
    ];
    // Notices leave in the background, in any order: wait until all three are there.
    for subject in expected {
        app.mail_with_subject(0, subject).await;
    }
    let added = app.mail_with_subject(0, expected[0]).await;
    assert!(
        added.body.contains("An authenticator app was added"),
        "the notice names the factor: {}",
        added.body
    );
    let mails = app.mails();
    for mail in &mails {
        assert_eq!(mail.to, EMAIL);
        let is_code_mail = mail.subject == RECOVERY_SUBJECT;
        assert_eq!(mail.body.contains(&code), is_code_mail, "{mail:?}");
        for backup in &backup_codes {
            assert!(!mail.body.contains(backup.as_str()), "{mail:?}");
        }
    }
    // Nor does the database hold the code in the clear.
    let dump = std::fs::read(app.dir.path().join("stepup.db")).unwrap();
    let wal = std::fs::read(app.dir.path().join("stepup.db-wal")).unwrap_or_default();
    for bytes in [&dump, &wal] {
        assert!(
            !bytes
                .windows(code.len())
                .any(|window| window == code.as_bytes()),
            "the recovery code is in the database file"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A recovery delay, and the admin reset of a locked factor.

/// An instance with a recovery delay and an attempt policy; `ada` (at [`EMAIL`]) and `admin`
/// (an administrator) have accounts. Returns the instance and their ids.
async fn delayed(delay: Option<Duration>, attempts: AttemptPolicy) -> (App, String, String) {
    let backend = Backend::sqlite().await.unwrap();
    let ada = backend.users.add(EMAIL, PASSWORD, Hashing::Plain);
    let admin = backend
        .users
        .add("admin@example.com", PASSWORD, Hashing::Plain);
    let app = backend
        .app_with(Options {
            recovery_delay: delay,
            attempts: Some(attempts),
            admins: vec![admin.clone()],
            ..Options::default()
        })
        .await;
    (app, ada, admin)
}

/// Enrolls ada's authenticator; the clock ends on a fresh time step.
async fn enroll(app: &App) -> TotpKey {
    let token = app.login(EMAIL).await.token();
    app.enroll_totp(&token).await.0
}

async fn mfa_login(app: &App, key: &TotpKey) -> Answer {
    let mfa_token = app.mfa_token(EMAIL).await;
    app.mfa_step_with_code(&mfa_token, key).await
}

#[tokio::test]
async fn a_delayed_recovery_takes_effect_at_the_first_login_after_its_due_time() {
    let (app, _, _) = delayed(Some(DAY), AttemptPolicy::default()).await;
    enroll(&app).await;
    let code = mailed_code(&app, EMAIL).await;
    let pending = confirm(&app, &code, PASSWORD).await;
    assert_eq!(pending.status, StatusCode::ACCEPTED, "{pending:?}");
    assert_eq!(pending.body["status"], "pending");
    assert_eq!(
        pending.body["due_at"],
        app.clock.unix_seconds() + DAY.as_secs()
    );
    app.mail_with_subject(0, "Your account recovery is pending")
        .await;

    // Before the due time nothing changed: the login asks for the factor.
    app.clock.advance(DAY - Duration::from_secs(60));
    assert_eq!(app.login(EMAIL).await.body["mfa_required"], true);

    // After it, the first password login applies the reset and gets a password token.
    app.clock.advance(Duration::from_secs(61));
    let login = app.login(EMAIL).await;
    assert_eq!(login.body["acr"], "pwd", "{login:?}");
    let factors = app.get("/api/mfa/factors", Some(&login.token())).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
    assert_eq!(factors.body["factors"], json!([]));
    app.mail_with_subject(0, "Your account was recovered").await;
}

#[tokio::test]
async fn a_delayed_recovery_applied_at_a_pkce_login_redirects_with_a_working_code() {
    let (app, _, _) = delayed(Some(DAY), AttemptPolicy::default()).await;
    enroll(&app).await;
    let code = mailed_code(&app, EMAIL).await;
    assert_eq!(
        confirm(&app, &code, PASSWORD).await.status,
        StatusCode::ACCEPTED
    );
    app.clock.advance(DAY + Duration::from_secs(1));

    // The login that applies the recovery ends in the redirect, in the reset's own second…
    let code = app
        .redirected_code(
            "/oauth/authorize",
            with_pkce(json!({"username": EMAIL, "password": PASSWORD})),
        )
        .await;
    // …and its code, redeemed in that second too, gives a token the reset does not void.
    let token = app.redeem_code(&code).await;
    assert_eq!(token.body["acr"], "pwd", "{token:?}");
    let factors = app.get("/api/mfa/factors", Some(&token.token())).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
    assert_eq!(factors.body["factors"], json!([]));
}

#[tokio::test]
async fn a_login_with_the_factor_cancels_a_pending_recovery() {
    let (app, ada, _) = delayed(Some(DAY), AttemptPolicy::default()).await;
    let key = enroll(&app).await;
    let code = mailed_code(&app, EMAIL).await;
    assert_eq!(
        confirm(&app, &code, PASSWORD).await.status,
        StatusCode::ACCEPTED
    );
    let mfa = app.stepup.mfa();
    assert!(mfa.pending_recovery(&ada).await.unwrap().is_some());

    app.clock.advance(Duration::from_secs(60 * 60));
    let answer = mfa_login(&app, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["acr"], "mfa");
    assert_eq!(mfa.pending_recovery(&ada).await.unwrap(), None);
    app.mail_with_subject(0, "Your account recovery was cancelled")
        .await;

    // Past the due time, the factor is still there.
    app.clock.advance(DAY * 2);
    assert_eq!(app.login(EMAIL).await.body["mfa_required"], true);
}

#[tokio::test]
async fn admin_reset_removes_factors_unlocks_and_records_the_admin() {
    let attempts = AttemptPolicy {
        max_failures: 50,
        lock_after: 3,
        ..AttemptPolicy::default()
    };
    let (app, ada, admin) = delayed(None, attempts).await;
    let key = enroll(&app).await;
    let mfa_token = app.mfa_token(EMAIL).await;
    for _ in 0..3 {
        let answer = app.mfa_step(&mfa_token, json!({"code": "000000"})).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    }
    app.mail_with_subject(0, "A sign-in factor was locked")
        .await;
    let locked = mfa_login(&app, &key).await;
    locked.assert_error(StatusCode::FORBIDDEN, "factor_locked");

    // Only through the application's policy.
    let now = app.clock.unix_seconds();
    let path = format!("/api/admin/users/{ada}/mfa/reset");
    let as_ada = app.mint(&Grant::new(&ada).acr("phr").amr(["hwk"]).auth_time(now));
    let refused = app.post(&path, Some(&as_ada), json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    let as_admin = app.mint(&Grant::new(&admin).acr("phr").amr(["hwk"]).auth_time(now));
    let reset = app.post(&path, Some(&as_admin), json!({})).await;
    assert_eq!(reset.status, StatusCode::OK, "{reset:?}");
    assert_eq!(reset.body["success"], true);
    let unknown = app
        .post(
            "/api/admin/users/nobody/mfa/reset",
            Some(&as_admin),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Unlocked and reset: the password alone signs in, and enrolls again.
    let login = app.login(EMAIL).await;
    assert_eq!(login.body["acr"], "pwd", "{login:?}");
    let factors = app.get("/api/mfa/factors", Some(&login.token())).await;
    assert_eq!(factors.body["factors"], json!([]));
    let mfa = app.stepup.mfa();
    assert!(!mfa.is_locked(&ada, "totp").await.unwrap());
    let events = mfa.audit().events(&ada, 100).await.unwrap();
    let reset = events
        .iter()
        .find(|event| event.kind == "admin_reset")
        .expect("audited");
    assert_eq!(
        serde_json::from_str::<Value>(&reset.detail).unwrap(),
        json!({"admin": admin})
    );
    let notice = app
        .mail_with_subject(0, "An administrator reset your second factors")
        .await;
    assert_eq!(notice.to, EMAIL);
    let key = enroll(&app).await;
    assert_eq!(mfa_login(&app, &key).await.status, StatusCode::OK);
}
