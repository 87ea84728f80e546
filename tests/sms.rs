//! SMS codes over HTTP: the demo (SQLite and PostgreSQL) with its outbox, a small app where SMS
//! needs company, and the log. (The SMS factor in the engine, Twilio Verify against its local
//! fake, and the database file are tested beside the engine, in `crates/stepup-mfa/tests/`.)
//! Never the network, never a sleep: the clock is a `ManualClock`.

mod demo_support;
#[path = "../crates/stepup-mfa/tests/fake_twilio/mod.rs"]
mod fake_twilio;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use demo_support::*;
use fake_twilio::FakeTwilio;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup::mfa::totp::TotpKey;
use stepup::mfa::{SmsError, SmsPolicy, SmsProvider, SmsSender, TwilioVerify};
use stepup::{
    AttemptPolicy, Clock, Keyring, ManualClock, MemoryStore, Method, Mfa, MfaError, Proof,
    SqliteStore, Stores, TotpAlgorithm,
};

const PHONE: &str = "+15551236789";
const MASKED: &str = "+1*****6789";
const LOOKUP_KEY: &[u8] = &[42; 32];

/// A phone that keeps every text it gets.
#[derive(Clone, Default)]
struct Phone(Arc<Mutex<Vec<(String, String)>>>);

#[stepup::store::async_trait]
impl SmsSender for Phone {
    async fn send(&self, to: &str, body: &str) -> Result<(), SmsError> {
        self.0
            .lock()
            .unwrap()
            .push((to.to_owned(), body.to_owned()));
        Ok(())
    }
}

impl Phone {
    fn last_code(&self) -> String {
        let texts = self.0.lock().unwrap();
        let (to, body) = texts.last().expect("a text was sent");
        assert_eq!(to, PHONE);
        code_in(body)
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn code_in(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}

fn no_cooldown() -> SmsPolicy {
    SmsPolicy {
        resend_cooldown: Duration::ZERO,
        ..SmsPolicy::default()
    }
}

/// A per-user policy that never gets in the way of counting a factor's streak.
fn generous_attempts() -> AttemptPolicy {
    AttemptPolicy {
        max_failures: 1_000_000,
        lock_after: 100,
        ..AttemptPolicy::default()
    }
}

// ---- Twilio Verify (its log lines are checked below) ----

async fn twilio_engine(fake: &FakeTwilio, clock: &ManualClock) -> Mfa {
    let twilio = TwilioVerify::new(
        fake_twilio::ACCOUNT_SID,
        fake_twilio::AUTH_TOKEN,
        fake_twilio::SERVICE_SID,
    )
    .unwrap()
    .with_base_url(&fake.base);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    Mfa::new(
        Stores::shared(store),
        Keyring::new("k1", &[1; 32]).unwrap(),
        LOOKUP_KEY,
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_attempt_policy(generous_attempts())
    .with_sms_provider(SmsProvider::verifier(twilio))
    .with_sms_policy(no_cooldown())
}


// ---- Over HTTP: the demo, its outbox, and the log ----

fn amr_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["amr"].clone()
}

/// Registers `email`, enrolls `PHONE` over HTTP; returns the password token and backup codes.
async fn sms_user<S>(demo: &Demo<S>, email: &str) -> (String, Vec<Value>) {
    demo.register(email).await;
    let token = demo.login(email).await.token();
    let enrolled = demo
        .post("/api/mfa/sms/enroll", Some(&token), json!({"phone": PHONE}))
        .await;
    assert_eq!(enrolled.status, StatusCode::OK, "{enrolled:?}");
    assert_eq!(enrolled.body["message"], "Code sent to +1*****6789");
    assert_eq!(enrolled.cache_control.as_deref(), Some("no-store"));
    let verified = demo
        .post(
            "/api/mfa/sms/verify",
            Some(&token),
            json!({"code": last_sms_code(demo)}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    assert_eq!(verified.body["enabled"], true);
    let codes = verified.body["backup_codes"].as_array().unwrap().clone();
    demo.clock.advance(Duration::from_secs(31));
    (token, codes)
}

mod http {
    use super::*;

    on_sqlite_and_postgres!(
        http_enrollment_login_step_up_and_cooldown,
        http_bad_numbers_are_400_and_an_unknown_mfa_token_401,
        http_sms_with_the_pkce_redirect_and_a_remembered_device,
    );
}

async fn http_enrollment_login_step_up_and_cooldown<S>(demo: &Demo<S>) {
    let (password_token, codes) = sms_user(demo, "sam@example.com").await;
    assert_eq!(codes.len(), 10);
    let outbox = sms_outbox(demo);
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0]["to"], PHONE);
    assert_eq!(outbox[0]["at"], T0);

    let factors = demo.get("/api/mfa/factors", Some(&password_token)).await;
    assert_eq!(factors.status, StatusCode::OK);
    assert_eq!(factors.body["factors"][0]["method"], "sms");
    assert_eq!(factors.body["factors"][0]["phone"], MASKED);
    assert_eq!(factors.body["factors"][0]["restricted"], true);
    assert!(!factors.body.to_string().contains("5551236789"));

    // Login.
    let login = demo.login("sam@example.com").await;
    assert_eq!(login.body["methods"], json!(["sms", "backup_code"]));
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    let sent = demo
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
    assert_eq!(sent.body, json!({"message": "Code sent to +1*****6789"}));
    // The cooldown: 429 with Retry-After.
    demo.clock.advance(Duration::from_secs(5));
    let again = demo
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    again.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert_eq!(again.retry_after.as_deref(), Some("25"));
    let wrong = demo
        .mfa_step(&mfa_token, json!({"method": "sms", "code": "12345"}))
        .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let token = demo
        .mfa_step(
            &mfa_token,
            json!({"method": "sms", "code": last_sms_code(demo)}),
        )
        .await
        .token();
    assert_eq!(amr_of(&token), json!(["pwd", "sms"]));
    let me = demo.get("/api/me", Some(&token)).await;
    assert_eq!(me.body["acr"], "mfa");

    // Step-up of the password token.
    demo.clock.advance(Duration::from_secs(31));
    let step = demo
        .post(
            "/oauth/authorize",
            Some(&password_token),
            json!({"acr_values": "mfa"}),
        )
        .await;
    let mfa_token = step.body["mfa_token"].as_str().unwrap().to_owned();
    let sent = demo
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
    let token = demo
        .mfa_step(
            &mfa_token,
            json!({"method": "sms", "code": last_sms_code(demo)}),
        )
        .await
        .token();
    assert_eq!(amr_of(&token), json!(["pwd", "sms"]));
    let deleted = demo.delete("/api/account", Some(&token)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
}

async fn http_bad_numbers_are_400_and_an_unknown_mfa_token_401<S>(demo: &Demo<S>) {
    demo.register("tea@example.com").await;
    let token = demo.login("tea@example.com").await.token();
    for bad in [
        json!({"phone": "555-1234"}),
        json!({"phone": "+0123456789"}),
        json!({}),
    ] {
        let answer = demo.post("/api/mfa/sms/enroll", Some(&token), bad).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        assert!(!answer.body.to_string().contains("555"), "{answer:?}");
    }
    let answer = demo
        .post("/api/mfa/sms/enroll", None, json!({"phone": PHONE}))
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = demo
        .post(
            "/oauth/authorize/mfa/sms/send",
            None,
            json!({"mfa_token": "nope"}),
        )
        .await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
    assert!(sms_outbox(demo).is_empty());
}

async fn http_sms_with_the_pkce_redirect_and_a_remembered_device<S>(demo: &Demo<S>) {
    sms_user(demo, "val@example.com").await;
    let send = async |mfa_token: &str| {
        let sent = demo
            .post(
                "/oauth/authorize/mfa/sms/send",
                None,
                json!({"mfa_token": mfa_token}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
    };
    // The PKCE redirect: password, SMS code, then the code for the client.
    let login = demo
        .post(
            "/oauth/authorize",
            None,
            with_pkce(json!({"username": "val@example.com", "password": "correct horse"})),
        )
        .await;
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    send(&mfa_token).await;
    let code = redirected_code(
        demo,
        "/oauth/authorize/mfa",
        json!({"mfa_token": mfa_token, "method": "sms", "code": last_sms_code(demo)}),
    )
    .await;
    let exchanged = redeem_code(demo, &code).await;
    assert_eq!(exchanged.body["acr"], "mfa", "{exchanged:?}");
    assert_eq!(amr_of(&exchanged.token()), json!(["pwd", "sms"]));

    // Remember this device on an SMS step: the next login skips the step.
    demo.clock.advance(Duration::from_secs(31));
    let mfa_token = demo.mfa_token("val@example.com").await;
    send(&mfa_token).await;
    let (answer, cookie) = remembered_step(
        demo,
        &mfa_token,
        json!({"method": "sms", "code": last_sms_code(demo)}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let sent = sms_outbox(demo).len();
    let login = login_with_cookie(demo, "val@example.com", &cookie).await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    assert!(login.body.get("mfa_required").is_none(), "{login:?}");
    assert_eq!(login.body["acr"], "mfa");
    assert_eq!(
        sms_outbox(demo).len(),
        sent,
        "no SMS for a remembered device"
    );
    // Without the cookie the step is asked for again.
    assert_eq!(
        demo.login("val@example.com").await.body["mfa_required"],
        true
    );
}

/// One user, `eli`, whose password is `pw`.
struct OneUser;

#[stepup::store::async_trait]
impl stepup::PasswordCheck for OneUser {
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, stepup::PasswordCheckFailed> {
        Ok((username == "eli" && password == "pw").then(|| "eli".to_owned()))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, stepup::PasswordCheckFailed> {
        Ok(user == "eli")
    }
}

#[tokio::test]
async fn http_removing_the_last_other_factor_is_a_409_where_sms_needs_company() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let clock = ManualClock::at_unix(T0);
    let phone = Phone::default();
    let stepup = stepup::StepUp::builder()
        .issuer(stepup::JwtIssuer::hs256(JWT_SECRET).unwrap())
        .store(MemoryStore::new().with_clock(Arc::new(clock.clone())))
        .keyring(Keyring::new("k1", &[1; 32]).unwrap())
        .lookup_key(LOOKUP_KEY)
        .passwords(OneUser)
        .sms(SmsProvider::sender(phone.clone()))
        .sms_needs_another_factor(true)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let router = axum::Router::new()
        .merge(stepup.routes())
        .layer(stepup.authenticate());
    let call = async |method: &str, path: &str, token: &str, body: Value| {
        let request = ::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
        )
    };
    let mfa = stepup.mfa();
    let enrollment = mfa.begin_totp_enrollment("eli", "eli").await.unwrap();
    let secret = totp_rs::Secret::try_from_base32(&enrollment.secret).unwrap();
    let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();
    mfa.confirm_totp_enrollment("eli", &key.code_at(T0))
        .await
        .unwrap();
    mfa.begin_sms_enrollment("eli", PHONE, None).await.unwrap();
    mfa.confirm_sms_enrollment("eli", &phone.last_code())
        .await
        .unwrap();
    let fresh = stepup
        .issuer()
        .issue(
            &stepup::Grant::new("eli")
                .acr("mfa")
                .amr(["pwd", "otp"])
                .auth_time(T0),
        )
        .unwrap()
        .access_token;

    let (status, body) = call("DELETE", "/api/mfa/totp", &fresh, json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "sms_needs_another_factor", "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("SMS"));
    assert!(mfa.methods("eli").await.unwrap().contains(&Method::Totp));
    // SMS first, then the app: both go.
    assert_eq!(
        call("DELETE", "/api/mfa/sms", &fresh, json!({})).await.0,
        200
    );
    assert_eq!(
        call("DELETE", "/api/mfa/totp", &fresh, json!({})).await.0,
        200
    );
    assert!(!mfa.is_enrolled("eli").await.unwrap());
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

    let demo = Demo::start().await;
    let mut secrets = vec![PHONE.to_owned(), "5551236789".to_owned()];
    let (_, _) = sms_user(&demo, "uma@example.com").await;
    let mfa_token = demo.mfa_token("uma@example.com").await;
    demo.post(
        "/oauth/authorize/mfa/sms/send",
        None,
        json!({"mfa_token": mfa_token}),
    )
    .await;
    demo.mfa_step(&mfa_token, json!({"method": "sms", "code": "000000"}))
        .await;
    demo.mfa_step(
        &mfa_token,
        json!({"method": "sms", "code": last_sms_code(&demo)}),
    )
    .await
    .token();
    for sent in sms_outbox(&demo) {
        secrets.push(code_in(sent["body"].as_str().unwrap()));
    }
    // Twilio too.
    let fake = FakeTwilio::start().await;
    let clock = ManualClock::at_unix(T0);
    let mfa = twilio_engine(&fake, &clock).await;
    mfa.begin_sms_enrollment("vic", PHONE, None).await.unwrap();
    let code = fake.code_for(PHONE).unwrap();
    mfa.confirm_sms_enrollment("vic", &code).await.unwrap();
    secrets.push(code);
    let _ = mfa
        .begin_sms_enrollment("vic", fake_twilio::RATE_LIMITED_NUMBER, None)
        .await;
    secrets.push(fake_twilio::RATE_LIMITED_NUMBER.to_owned());

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("sms_sent"), "sends are audited");
    assert!(log.contains("SMS written to the outbox"));
    assert!(log.contains(MASKED));
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
