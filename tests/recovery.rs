//! Account recovery and the admin reset over HTTP: on the demo (SQLite and PostgreSQL, the mail
//! outbox file; the demo's own admin route), and on a small app with a recovery delay and the
//! admin handler (memory store, an in-memory outbox). (The engine's recovery and resets, and the
//! races, are tested beside the engine, in `crates/stepup-mfa/tests/resets.rs`.) The clock is
//! always the test's: nothing sleeps to make time pass.

mod demo_support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use demo_support::*;
use http_body_util::BodyExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup::mail::{Mail, MemoryOutbox};
use stepup::mfa::totp::TotpKey;
use stepup::{
    AttemptPolicy, Clock, Grant, JwtIssuer, Keyring, ManualClock, MemoryStore, PasswordCheck,
    PasswordCheckFailed, StepUp, TotpAlgorithm,
};
use tower::ServiceExt;

const EMAIL: &str = "ada@example.com";

// ---------------------------------------------------------------------------------------------
// The demo over HTTP: SQLite, the outbox file.

async fn request_recovery<S>(demo: &Demo<S>, email: &str) -> Answer {
    demo.post("/api/mfa/recovery/request", None, json!({"email": email}))
        .await
}

async fn confirm<S>(demo: &Demo<S>, token: &str, password: &str) -> Answer {
    demo.post(
        "/api/mfa/recovery/confirm",
        None,
        json!({"token": token, "password": password}),
    )
    .await
}

/// Requests a recovery for `email` and returns the code from the outbox (the `nth` mail).
async fn mailed_code<S>(demo: &Demo<S>, email: &str) -> String {
    let before = mail_outbox(demo).len();
    let answer = request_recovery(demo, email).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    // Other notices leave in the background too, in any order: wait for this very mail.
    let mut mail = None;
    for _ in 0..1000 {
        let mails = mails_at_least(demo, before + 1).await;
        mail = mails
            .into_iter()
            .skip(before)
            .find(|mail| mail["subject"] == "Your account recovery code");
        if mail.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mail = mail.expect("a recovery mail");
    assert_eq!(mail["to"], email);
    recovery_code_in(mail["body"].as_str().unwrap())
}

/// The `name=value` of the device cookie set by an MFA step with `remember_device`.
async fn remembered_cookie<S>(demo: &Demo<S>, key: &TotpKey) -> String {
    let mfa_token = demo.mfa_token(EMAIL).await;
    let response = demo
        .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": demo.code(key), "remember_device": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    set_cookie.split(';').next().unwrap().to_owned()
}

on_sqlite_and_postgres!(
    request_outbox_confirm_and_enroll_again,
    an_unknown_address_gets_the_same_answer_and_no_mail,
    a_wrong_password_uses_the_code_up,
    a_code_works_once,
    a_code_expires_after_an_hour,
    wrong_codes_use_up_the_address_budget,
    an_authorization_code_issued_before_a_recovery_fails_after_it,
);

async fn request_outbox_confirm_and_enroll_again<S>(demo: &Demo<S>) {
    let (old_token, key, backup_codes) = demo.enrolled_user(EMAIL).await;
    let cookie = remembered_cookie(demo, &key).await;
    demo.clock.advance(Duration::from_secs(30));
    let old_mfa_token = demo.mfa_token(EMAIL).await;
    let mfa_token = demo.mfa_token(EMAIL).await;
    let mfa_access = demo.mfa_step_with_code(&mfa_token, &key).await.token();
    demo.clock.advance(Duration::from_secs(30));

    let code = mailed_code(demo, EMAIL).await;
    assert!(code.len() >= 43, "256 random bits");
    let recovered = confirm(demo, &code, "correct horse").await;
    assert_eq!(recovered.status, StatusCode::OK, "{recovered:?}");
    assert_eq!(recovered.body["acr"], "pwd");
    assert_eq!(recovered.cache_control.as_deref(), Some("no-store"));
    let token = recovered.token();

    // Every factor and backup code is gone; the recovery token enrolls again.
    let factors = demo.get("/api/mfa/factors", Some(&token)).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
    assert_eq!(factors.body["factors"], json!([]));
    assert_eq!(factors.body["backup_codes_remaining"], 0);
    let setup = demo.post("/api/mfa/setup", Some(&token), json!({})).await;
    assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
    let secret = totp_rs::Secret::try_from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    let new_key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();
    let verified = demo
        .post(
            "/api/mfa/verify-setup",
            Some(&token),
            json!({"code": demo.code(&new_key)}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    demo.clock.advance(Duration::from_secs(30));

    // Old tokens (password and MFA level) are void.
    for old in [&old_token, &mfa_access] {
        demo.get("/api/mfa/factors", Some(old))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
        let me = demo.get("/api/me", Some(old)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{me:?}");
        assert_eq!(me.body["error"], "invalid_token");
    }
    // The old mfa_token fails, even with the new factor.
    demo.mfa_step_with_code(&old_mfa_token, &new_key)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    // The old backup codes are gone.
    let mfa_token = demo.mfa_token(EMAIL).await;
    demo.mfa_step(&mfa_token, json!({"backup_code": backup_codes[0]}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    // The old device cookie vouches no more: the login asks for the second factor.
    let login = Answer::read(
        demo.request(reqwest::Method::POST, "/oauth/authorize", None)
            .header("cookie", &cookie)
            .json(&json!({"username": EMAIL, "password": "correct horse"})),
    )
    .await;
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    // The new factor works.
    let mfa_token = demo.mfa_token(EMAIL).await;
    let answer = demo.mfa_step_with_code(&mfa_token, &new_key).await;
    assert_eq!(answer.body["acr"], "mfa", "{answer:?}");

    // Audited.
    let events = demo.get("/api/mfa/events", Some(&answer.token())).await;
    let kinds: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    for kind in ["recovery_requested", "factors_reset", "recovery_completed"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

async fn an_unknown_address_gets_the_same_answer_and_no_mail<S>(demo: &Demo<S>) {
    demo.register(EMAIL).await;
    let known = request_recovery(demo, EMAIL).await;
    let unknown = request_recovery(demo, "nobody@example.com").await;
    let malformed = request_recovery(demo, "not an address").await;
    for answer in [&known, &unknown, &malformed] {
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
        assert_eq!(answer.body, known.body);
        assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    }
    let mails = mails_at_least(demo, 1).await;
    // Give a stray mail every chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mails_now = mail_outbox(demo);
    assert_eq!(mails_now.len(), 1, "{mails_now:?}");
    assert_eq!(mails[0]["to"], EMAIL);
    assert_eq!(mails[0]["at"], T0);
}

async fn a_wrong_password_uses_the_code_up<S>(demo: &Demo<S>) {
    let (_, key, _) = demo.enrolled_user(EMAIL).await;
    let code = mailed_code(demo, EMAIL).await;
    confirm(demo, &code, "wrong horse")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    confirm(demo, &code, "correct horse")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    // Nothing was reset.
    let mfa_token = demo.mfa_token(EMAIL).await;
    assert_eq!(
        demo.mfa_step_with_code(&mfa_token, &key).await.body["acr"],
        "mfa"
    );
}

async fn a_code_works_once<S>(demo: &Demo<S>) {
    demo.enrolled_user(EMAIL).await;
    let code = mailed_code(demo, EMAIL).await;
    assert_eq!(
        confirm(demo, &code, "correct horse").await.status,
        StatusCode::OK
    );
    confirm(demo, &code, "correct horse")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    confirm(demo, "made-up", "correct horse")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
}

async fn a_code_expires_after_an_hour<S>(demo: &Demo<S>) {
    demo.enrolled_user(EMAIL).await;
    let code = mailed_code(demo, EMAIL).await;
    demo.clock.advance(Duration::from_secs(60 * 60 + 1));
    confirm(demo, &code, "correct horse")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    // A fresh one works.
    let code = mailed_code(demo, EMAIL).await;
    assert_eq!(
        confirm(demo, &code, "correct horse").await.status,
        StatusCode::OK
    );
}

async fn wrong_codes_use_up_the_address_budget<S>(demo: &Demo<S>) {
    demo.register(EMAIL).await;
    for _ in 0..30 {
        confirm(demo, "a-wrong-recovery-code", "correct horse")
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_token");
    }
    let refused = confirm(demo, "a-wrong-recovery-code", "correct horse").await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert!(refused.retry_after.is_some());
}

async fn an_authorization_code_issued_before_a_recovery_fails_after_it<S>(demo: &Demo<S>) {
    let (_, key, _) = demo.enrolled_user(EMAIL).await;
    // A PKCE login completes: the client holds a code it has not redeemed yet.
    let login = demo
        .post(
            "/oauth/authorize",
            None,
            with_pkce(json!({"username": EMAIL, "password": "correct horse"})),
        )
        .await;
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    let early = redirected_code(
        demo,
        "/oauth/authorize/mfa",
        json!({"mfa_token": mfa_token, "code": demo.code(&key)}),
    )
    .await;
    // The account is recovered, still within the code's minute.
    demo.clock.advance(Duration::from_secs(5));
    let code = mailed_code(demo, EMAIL).await;
    assert_eq!(
        confirm(demo, &code, "correct horse").await.status,
        StatusCode::OK
    );
    redeem_code(demo, &early)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    // A code issued after the recovery (the password alone now) is good, and so is its token.
    demo.clock.advance(Duration::from_secs(1));
    let after = redirected_code(
        demo,
        "/oauth/authorize",
        with_pkce(json!({"username": EMAIL, "password": "correct horse"})),
    )
    .await;
    let token = redeem_code(demo, &after).await.token();
    let factors = demo.get("/api/mfa/factors", Some(&token)).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
}

#[tokio::test]
async fn the_demo_resets_a_user_for_its_admins_after_a_phishing_resistant_login() {
    let demo = Demo::start().await;
    let admin = demo.register("root@example.com").await;
    let (own_token, key, _) = demo.enrolled_user(EMAIL).await;
    let user = demo.get("/api/me", Some(&own_token)).await.body["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same database, served again with `STEPUP_ADMINS` naming root.
    let Demo { dir, clock, .. } = demo;
    let demo = Demo::start_with_admins(dir, clock, std::slice::from_ref(&admin)).await;
    let path = format!("/api/admin/users/{user}/mfa/reset");
    let at = |sub: &str, acr: &str, amr: &str| {
        demo.mint(
            &Grant::new(sub)
                .acr(acr)
                .amr([amr])
                .auth_time(demo.clock.unix_seconds()),
        )
    };

    // An admin at `mfa` gets the phr challenge; a user at `phr` who is no admin gets 403.
    let refused = demo
        .post(&path, Some(&at(&admin, "mfa", "otp")), json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    assert!(refused.challenge.unwrap().contains("acr_values=\"phr\""));
    demo.post(&path, Some(&at(&user, "phr", "hwk")), json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // A phr login of the admin older than five minutes: the challenge again.
    let stale = at(&admin, "phr", "hwk");
    demo.clock.advance(Duration::from_secs(301));
    let refused = demo.post(&path, Some(&stale), json!({})).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    // Nothing was reset so far.
    let mfa_token = demo.mfa_token(EMAIL).await;
    assert_eq!(
        demo.mfa_step_with_code(&mfa_token, &key).await.body["acr"],
        "mfa"
    );

    let admin_token = at(&admin, "phr", "hwk");
    let reset = demo.post(&path, Some(&admin_token), json!({})).await;
    assert_eq!(reset.status, StatusCode::OK, "{reset:?}");
    assert_eq!(reset.body["success"], true);
    demo.post(
        "/api/admin/users/nobody/mfa/reset",
        Some(&admin_token),
        json!({}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    // The user signs in with the password alone; the trail names the admin.
    demo.clock.advance(Duration::from_secs(1));
    let token = demo.login(EMAIL).await.token();
    let events = demo.get("/api/mfa/events", Some(&token)).await;
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
    let demo = Demo::start().await;
    let (_, _, backup_codes) = demo.enrolled_user(EMAIL).await;
    let code = mailed_code(&demo, EMAIL).await;
    let recovered = confirm(&demo, &code, "correct horse").await;
    assert_eq!(recovered.status, StatusCode::OK);
    // The enrollment notice, the code, the completed recovery.
    let expected = [
        "An authenticator app was added",
        "Your account recovery code",
        "Your account was recovered",
    ];
    // Notices leave in the background, in any order: wait until all three are there.
    let mut mails = mails_at_least(&demo, 3).await;
    for _ in 0..1000 {
        let has_all = expected
            .iter()
            .all(|subject| mails.iter().any(|mail| mail["subject"] == *subject));
        if has_all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        mails = mail_outbox(&demo);
    }
    let subjects: Vec<&str> = mails
        .iter()
        .map(|mail| mail["subject"].as_str().unwrap())
        .collect();
    for subject in expected {
        assert!(subjects.contains(&subject), "{subject} in {subjects:?}");
    }
    for mail in &mails {
        assert_eq!(mail["to"], EMAIL);
        let body = mail["body"].as_str().unwrap();
        let is_code_mail = mail["subject"] == "Your account recovery code";
        assert_eq!(body.contains(&code), is_code_mail, "{mail}");
        for backup in &backup_codes {
            assert!(!body.contains(backup.as_str()), "{mail}");
        }
    }
    // Nor does the database hold the code in the clear.
    let dump = std::fs::read(demo.dir.path().join("demo.db")).unwrap();
    let wal = std::fs::read(demo.dir.path().join("demo.db-wal")).unwrap_or_default();
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
// A small app over HTTP: a recovery delay, the admin handler, an in-memory outbox.

const SECRET: &[u8] = b"recovery test secret, thirty-two bytes at least";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Clone)]
struct Users;

#[stepup::store::async_trait]
impl PasswordCheck for Users {
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed> {
        Ok((username == EMAIL && password == "correct horse").then(|| "ada".to_owned()))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed> {
        Ok(matches!(user, "ada" | "admin"))
    }

    async fn email_of(&self, user: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok((user == "ada").then(|| EMAIL.to_owned()))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok((email == EMAIL).then(|| "ada".to_owned()))
    }
}

struct App {
    router: Router,
    stepup: StepUp,
    clock: ManualClock,
    outbox: MemoryOutbox,
}

impl App {
    fn new(delay: Option<Duration>, attempts: AttemptPolicy) -> Self {
        let clock = ManualClock::at_unix(T0);
        let outbox = MemoryOutbox::default();
        let mut builder = StepUp::builder()
            .issuer(JwtIssuer::hs256(SECRET).unwrap())
            .store(MemoryStore::new().with_clock(Arc::new(clock.clone())))
            .keyring(Keyring::new("k1", &[7; 32]).unwrap())
            .lookup_key(&[8; 32])
            .passwords(Users)
            .client(stepup::OAuthClient::new(CLIENT_ID).with_redirect_uri(REDIRECT_URI))
            .mailer(outbox.clone())
            .attempt_policy(attempts)
            .clock(Arc::new(clock.clone()));
        if let Some(delay) = delay {
            builder = builder.recovery_delay(delay);
        }
        let stepup = builder.build().unwrap();
        // The admin handler behind the application's own policy (here: the caller is `admin`).
        let admin = Router::new()
            .route(
                "/api/admin/users/{user}/mfa/reset",
                post(stepup::admin_reset).layer(axum::middleware::from_fn(only_admin)),
            )
            .with_state(stepup.clone());
        let router = Router::new()
            .merge(stepup.routes())
            .merge(admin)
            .layer(stepup.authenticate());
        Self {
            router,
            stepup,
            clock,
            outbox,
        }
    }

    async fn call(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = http::Request::post(path).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let request = http::Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn login(&self) -> Value {
        let (status, body) = self
            .call(
                "/oauth/authorize",
                None,
                json!({"username": EMAIL, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn code(&self, key: &TotpKey) -> String {
        key.code_at(self.clock.unix_seconds())
    }

    /// Enrolls ada's authenticator; the clock ends on a fresh time step.
    async fn enroll(&self) -> TotpKey {
        let token = self.login().await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, setup) = self.call("/api/mfa/setup", Some(&token), json!({})).await;
        let secret = totp_rs::Secret::try_from_base32(setup["secret"].as_str().unwrap()).unwrap();
        let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();
        let (status, body) = self
            .call(
                "/api/mfa/verify-setup",
                Some(&token),
                json!({"code": self.code(&key)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.clock.advance(Duration::from_secs(30));
        key
    }

    /// Requests a recovery and returns the mailed code.
    async fn mailed_code(&self) -> String {
        let before = self.outbox.mails().len();
        let (status, _) = self
            .call("/api/mfa/recovery/request", None, json!({"email": EMAIL}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let mail = wait_for_mail(&self.outbox, before, "Your account recovery code").await;
        recovery_code_in(&mail.body)
    }

    async fn confirm(&self, code: &str) -> (StatusCode, Value) {
        self.call(
            "/api/mfa/recovery/confirm",
            None,
            json!({"token": code, "password": "correct horse"}),
        )
        .await
    }

    async fn mfa_login(&self, key: &TotpKey) -> (StatusCode, Value) {
        let login = self.login().await;
        assert_eq!(login["mfa_required"], true, "{login}");
        self.call(
            "/oauth/authorize/mfa",
            None,
            json!({"mfa_token": login["mfa_token"], "code": self.code(key)}),
        )
        .await
    }
}

async fn only_admin(
    caller: Option<stepup::AuthContext>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match caller {
        Some(caller) if caller.subject() == "admin" => next.run(request).await,
        _ => axum::http::StatusCode::FORBIDDEN.into_response(),
    }
}

/// The first mail after the first `skip` with `subject` (mails leave in the background: this
/// waits for them in real time, at most 10 s).
async fn wait_for_mail(outbox: &MemoryOutbox, skip: usize, subject: &str) -> Mail {
    for _ in 0..1000 {
        if let Some(mail) = outbox
            .mails()
            .into_iter()
            .skip(skip)
            .find(|mail| mail.subject == subject)
        {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no mail {subject:?}");
}

#[tokio::test]
async fn a_delayed_recovery_takes_effect_at_the_first_login_after_its_due_time() {
    let app = App::new(Some(DAY), AttemptPolicy::default());
    app.enroll().await;
    let code = app.mailed_code().await;
    let (status, pending) = app.confirm(&code).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["due_at"], app.clock.unix_seconds() + DAY.as_secs());
    wait_for_mail(&app.outbox, 0, "Your account recovery is pending").await;

    // Before the due time nothing changed: the login asks for the factor.
    app.clock.advance(DAY - Duration::from_secs(60));
    assert_eq!(app.login().await["mfa_required"], true);

    // After it, the first password login applies the reset and gets a password token.
    app.clock.advance(Duration::from_secs(61));
    let login = app.login().await;
    assert_eq!(login["acr"], "pwd", "{login}");
    let token = login["access_token"].as_str().unwrap();
    let (status, factors) = app.get("/api/mfa/factors", token).await;
    assert_eq!(status, StatusCode::OK, "{factors}");
    assert_eq!(factors["factors"], json!([]));
    wait_for_mail(&app.outbox, 0, "Your account was recovered").await;
}

#[tokio::test]
async fn a_delayed_recovery_applied_at_a_pkce_login_redirects_with_a_working_code() {
    let app = App::new(Some(DAY), AttemptPolicy::default());
    app.enroll().await;
    let code = app.mailed_code().await;
    assert_eq!(app.confirm(&code).await.0, StatusCode::ACCEPTED);
    app.clock.advance(DAY + Duration::from_secs(1));

    // The login that applies the recovery ends in the redirect, in the reset's own second…
    let body = with_pkce(json!({"username": EMAIL, "password": "correct horse"}));
    let request = http::Request::post("/oauth/authorize")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let query = location.split_once('?').unwrap().1;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let code = &params.iter().find(|(name, _)| name == "code").unwrap().1;
    // …and its code, redeemed in that second too, gives a token the reset does not void.
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", PKCE_VERIFIER),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", CLIENT_ID),
    ])
    .unwrap();
    let request = http::Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let token: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(token["acr"], "pwd", "{token}");
    let (status, factors) = app
        .get("/api/mfa/factors", token["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{factors}");
    assert_eq!(factors["factors"], json!([]));
}

#[tokio::test]
async fn a_login_with_the_factor_cancels_a_pending_recovery() {
    let app = App::new(Some(DAY), AttemptPolicy::default());
    let key = app.enroll().await;
    let code = app.mailed_code().await;
    assert_eq!(app.confirm(&code).await.0, StatusCode::ACCEPTED);
    assert!(
        app.stepup
            .mfa()
            .pending_recovery("ada")
            .await
            .unwrap()
            .is_some()
    );

    app.clock.advance(Duration::from_secs(60 * 60));
    let (status, body) = app.mfa_login(&key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["acr"], "mfa");
    assert_eq!(
        app.stepup.mfa().pending_recovery("ada").await.unwrap(),
        None
    );
    wait_for_mail(&app.outbox, 0, "Your account recovery was cancelled").await;

    // Past the due time, the factor is still there.
    app.clock.advance(DAY * 2);
    assert_eq!(app.login().await["mfa_required"], true);
}

#[tokio::test]
async fn admin_reset_removes_factors_unlocks_and_records_the_admin() {
    let attempts = AttemptPolicy {
        max_failures: 50,
        lock_after: 3,
        ..AttemptPolicy::default()
    };
    let app = App::new(None, attempts);
    let key = app.enroll().await;
    let login = app.login().await;
    for _ in 0..3 {
        let (status, _) = app
            .call(
                "/oauth/authorize/mfa",
                None,
                json!({"mfa_token": login["mfa_token"], "code": "000000"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    wait_for_mail(&app.outbox, 0, "A sign-in factor was locked").await;
    let (status, body) = app.mfa_login(&key).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "factor_locked");

    // Only through the application's policy.
    let ada = app
        .stepup
        .issuer()
        .issue(&Grant::new("ada").acr("mfa").amr(["pwd", "otp"]));
    let (status, _) = app
        .call(
            "/api/admin/users/ada/mfa/reset",
            Some(&ada.unwrap().access_token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = app
        .stepup
        .issuer()
        .issue(&Grant::new("admin").acr("phr").amr(["hwk"]))
        .unwrap()
        .access_token;
    let (status, body) = app
        .call("/api/admin/users/ada/mfa/reset", Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let (status, _) = app
        .call("/api/admin/users/nobody/mfa/reset", Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Unlocked and reset: the password alone signs in, and enrolls again.
    app.clock.advance(Duration::from_secs(1));
    let login = app.login().await;
    assert_eq!(login["acr"], "pwd", "{login}");
    let (_, factors) = app
        .get("/api/mfa/factors", login["access_token"].as_str().unwrap())
        .await;
    assert_eq!(factors["factors"], json!([]));
    assert!(
        !app.stepup
            .mfa()
            .is_locked("ada", stepup::Method::Totp)
            .await
            .unwrap()
    );
    let events = app.stepup.mfa().audit().events("ada", 100).await.unwrap();
    let reset = events
        .iter()
        .find(|event| event.kind == "admin_reset")
        .expect("audited");
    assert_eq!(
        serde_json::from_str::<Value>(&reset.detail).unwrap(),
        json!({"admin": "admin"})
    );
    let notice = wait_for_mail(&app.outbox, 0, "An administrator reset your second factors").await;
    assert_eq!(notice.to, EMAIL);
    let key = app.enroll().await;
    let (status, _) = app.mfa_login(&key).await;
    assert_eq!(status, StatusCode::OK);
}
