//! A reset (here a recovery) cannot be outraced: a party holding a fresh session keeps
//! registering passkeys and completing MFA steps with `remember_device` while the owner confirms
//! a recovery — 100 requests around it, on SQLite, PostgreSQL and PostgreSQL + Redis — and, made
//! certain, a write that passed every check before the reset is held until the reset has deleted
//! everything, then lands. Nothing of it signs in afterwards: everything carries the user's
//! generation, and the reset moves it on.

mod support;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use stepup_mfa::totp::TotpKey;
use stepup_store::{
    CodeSet, Credential, CredentialRef, DeviceRecord, DeviceStore, Enrollment, FactorStore,
    Generation, GenerationChange, StoreResult, async_trait,
};
use support::*;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const OWNER: &str = "owner@example.com";
/// Passkey registrations racing the recovery.
const REGISTRATIONS: usize = 50;
/// Remembered-device MFA logins racing the recovery.
const LOGINS: usize = 49;
/// How many of each are in flight at once. Every login, every registration's finish and the
/// recovery counts one attempt against the user's limit (five) before it is checked, and the
/// factor-change lease lets one registration at a time that far: three logins, one registration
/// and the recovery make five, so the recovery is never the sixth.
const REGISTRATION_STREAMS: usize = 2;
const LOGIN_STREAMS: usize = 3;

/// What one racing request ended with.
enum Raced {
    Registration {
        status: StatusCode,
        body: serde_json::Value,
        index: usize,
    },
    Login {
        status: StatusCode,
        cookie: Option<String>,
        token: Option<String>,
    },
    Recovery {
        status: StatusCode,
        body: serde_json::Value,
    },
}

on_backends!([sqlite, postgres, postgres_redis] a_reset_cannot_be_outraced);

/// A party holding a fresh session keeps registering passkeys and completing MFA steps with
/// `remember_device` while the owner confirms a recovery: 100 requests around it. Whatever
/// landed before, during or after the reset, nothing of it signs in afterwards.
async fn a_reset_cannot_be_outraced(backend: &Backend) {
    // The race's own requests must not meet the request ceiling.
    let app = backend
        .app_with(Options {
            request_ceiling: Some((10_000, Duration::from_secs(300))),
            ..Options::default()
        })
        .await;
    let (_, key, _) = app.enrolled_user(OWNER).await;
    let fresh = app.fresh_mfa_token(OWNER, &key).await;

    // The other party's passkeys, one per login to come (each assertion advances its own key's
    // counter, so that racing assertions are no clones of each other).
    let mut keys = Vec::new();
    for _ in 0..LOGINS {
        let mut passkey = SoftPasskey::new(true);
        let (finished, handle) = app.add_passkey(&fresh, &mut passkey).await;
        assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
        keys.push((passkey, finished.body["credential_id"].clone(), handle));
    }
    // Registrations waiting for their finish…
    let mut registrations = Vec::new();
    for _ in 0..REGISTRATIONS {
        let mut passkey = SoftPasskey::new(true);
        let started = app.start_passkey("/api/mfa/factors/webauthn", &fresh).await;
        let handle = started.body["publicKey"]["user"]["id"].clone();
        let body = app.registration(&started, &mut passkey);
        registrations.push((passkey, handle, body));
    }
    // …MFA steps waiting for their assertion…
    let mut logins = Vec::new();
    for (passkey, _, _) in &mut keys {
        let mfa_token = app.mfa_token(OWNER).await;
        let mut proof = app.assertion_for(&mfa_token, passkey).await;
        proof["mfa_token"] = json!(mfa_token);
        proof["remember_device"] = json!(true);
        logins.push(proof);
    }
    // …and the owner's recovery code.
    app.post("/api/mfa/recovery/request", None, json!({"email": OWNER}))
        .await;
    let mail = app.mail_with_subject(0, "Your account recovery code").await;
    let code = recovery_code_in(&mail.body);

    // The race: the registrations in two streams and the logins in three (each stream sends its
    // next request when the last is answered: a wider burst would only meet the user's attempt
    // limit, and of registrations the factor-change lease), and the recovery once a fifth of
    // them are answered, so that it lands among them.
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let go = Arc::new(tokio::sync::Notify::new());
    let mut race = tokio::task::JoinSet::new();
    let mut requests: Vec<Vec<(reqwest::RequestBuilder, Option<usize>)>> = Vec::new();
    for stream in 0..REGISTRATION_STREAMS {
        requests.push(
            registrations
                .iter()
                .enumerate()
                .skip(stream)
                .step_by(REGISTRATION_STREAMS)
                .map(|(index, (_, _, body))| {
                    let request = app
                        .request(
                            Method::POST,
                            "/api/mfa/factors/webauthn/confirm",
                            Some(&fresh),
                        )
                        .json(body);
                    (request, Some(index))
                })
                .collect(),
        );
    }
    for stream in 0..LOGIN_STREAMS {
        requests.push(
            logins
                .iter()
                .skip(stream)
                .step_by(LOGIN_STREAMS)
                .map(|proof| {
                    let request = app
                        .request(Method::POST, "/oauth/authorize/mfa", None)
                        .json(proof);
                    (request, None)
                })
                .collect(),
        );
    }
    let total = REGISTRATIONS + LOGINS;
    for stream in requests {
        let (answered, go) = (answered.clone(), go.clone());
        race.spawn(async move {
            let mut outcomes = Vec::new();
            for (request, registration) in stream {
                let response = request.send().await.unwrap();
                let status = response.status();
                let cookie = response
                    .headers()
                    .get("set-cookie")
                    .map(|value| cookie_pair(value.to_str().unwrap()));
                let body: serde_json::Value = response.json().await.unwrap();
                outcomes.push(match registration {
                    Some(index) => Raced::Registration {
                        status,
                        body,
                        index,
                    },
                    None => Raced::Login {
                        status,
                        cookie,
                        token: body["access_token"].as_str().map(str::to_owned),
                    },
                });
                if answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == total / 5 {
                    go.notify_one();
                }
            }
            outcomes
        });
    }
    let request = app
        .request(Method::POST, "/api/mfa/recovery/confirm", None)
        .json(&json!({"token": code, "password": PASSWORD}));
    race.spawn(async move {
        go.notified().await;
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap();
        vec![Raced::Recovery { status, body }]
    });

    let mut registered = Vec::new();
    let mut cookies = Vec::new();
    let mut tokens = vec![fresh.clone()];
    let mut recovered = None;
    let (mut registrations_won, mut logins_won) = (0, 0);
    for outcome in race.join_all().await.into_iter().flatten() {
        match outcome {
            Raced::Registration {
                status,
                body,
                index,
            } => {
                assert!(!status.is_server_error(), "{status}: {body}");
                if status == StatusCode::OK {
                    registrations_won += 1;
                    registered.push((index, body["credential_id"].clone()));
                }
            }
            Raced::Login {
                status,
                cookie,
                token,
            } => {
                assert!(!status.is_server_error(), "{status}");
                if status == StatusCode::OK {
                    logins_won += 1;
                    cookies.push(cookie.expect("a remembered device's cookie"));
                    tokens.push(token.expect("a token"));
                }
            }
            Raced::Recovery { status, body } => {
                assert_eq!(status, StatusCode::OK, "{body}");
                recovered = Some(body["access_token"].as_str().unwrap().to_owned());
            }
        }
    }
    eprintln!(
        "{}: {registrations_won} of {REGISTRATIONS} registrations and {logins_won} of {LOGINS} \
         remembered-device logins answered 200 around the reset",
        backend.name
    );
    let recovered = recovered.expect("the recovery ran");

    // The owner enrolls a new factor with the recovery's token, once any lockout the logins
    // refused after the reset started for the user is over (a recovery does not lift one).
    app.clock.advance(Duration::from_secs(301));
    let (new_key, _) = app.enroll_totp(&recovered).await;
    let listed = app.get("/api/mfa/factors", Some(&recovered)).await;
    let kinds: Vec<&str> = listed.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|factor| factor["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["totp"], "only the new factor: {listed:?}");
    let devices = app.get("/api/mfa/devices", Some(&recovered)).await;
    assert_eq!(devices.body["devices"], json!([]), "{devices:?}");
    let login = app.login(OWNER).await;
    assert_eq!(
        login.body["methods"],
        json!(["totp", "backup_code"]),
        "{login:?}"
    );

    // No cookie of the race skips the new factor; no token of before stands.
    for cookie in &cookies {
        let login = app.login_with_cookie(OWNER, cookie).await;
        assert_eq!(login.body["mfa_required"], true, "{login:?}");
    }
    for token in &tokens {
        let me = app.get("/api/me", Some(token)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{me:?}");
    }
    // No passkey of before or of the race signs in without a password. (Each refusal counts
    // against the address's failure budget: a new window every 25.)
    let mut checks = Vec::new();
    for (passkey, id, handle) in keys {
        checks.push((passkey, id, handle));
    }
    let mut registrations: Vec<_> = registrations.into_iter().map(Some).collect();
    for (index, id) in registered {
        let (passkey, handle, _) = registrations[index].take().unwrap();
        checks.push((passkey, id, handle));
    }
    for (count, (mut passkey, id, handle)) in checks.into_iter().enumerate() {
        if count % 25 == 24 {
            app.clock.advance(Duration::from_secs(301));
        }
        let (passkey_token, assertion) = app.passkey_login(&mut passkey, &id, &handle).await;
        app.post(
            "/oauth/authorize/passkey",
            None,
            json!({ "passkey_token": passkey_token, "credential": assertion }),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    }
    // The new factor works.
    app.clock.advance(Duration::from_secs(31));
    let mfa_token = app.mfa_token(OWNER).await;
    let answer = app.mfa_step_with_code(&mfa_token, &new_key).await;
    assert_eq!(answer.body["acr"], "mfa", "{answer:?}");
}

// ---------------------------------------------------------------------------------------------
// The same race, made certain: a write that passed every check before the reset is held until
// the reset has deleted everything, then lands. It must prove nothing.

/// Holds the first write after [`arm`](Gate::arm) until the reset's delete has run.
#[derive(Clone)]
struct Gate {
    armed: Arc<std::sync::atomic::AtomicBool>,
    writing: Arc<tokio::sync::Notify>,
    deleted: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    fn new() -> Self {
        Self {
            armed: Arc::default(),
            writing: Arc::default(),
            deleted: tokio::sync::watch::channel(false).0,
        }
    }

    fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Before a write: if armed, tell the test and wait for the reset's delete.
    async fn hold(&self) {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.writing.notify_one();
            let mut deleted = self.deleted.subscribe();
            deleted.wait_for(|deleted| *deleted).await.unwrap();
        }
    }

    /// After a reset's delete.
    fn release(&self) {
        self.deleted.send_replace(true);
    }
}

/// Remembered devices whose first insert after arming waits for the reset's `delete_devices`.
struct LateDevices {
    inner: Arc<dyn DeviceStore>,
    gate: Gate,
}

#[async_trait]
impl DeviceStore for LateDevices {
    async fn insert_device(&self, device: DeviceRecord) -> StoreResult<()> {
        self.gate.hold().await;
        self.inner.insert_device(device).await
    }
    async fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceRecord>> {
        self.inner.device_by_token(token_hash).await
    }
    async fn touch_device(
        &self,
        id: &str,
        last_used_at: u64,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<bool> {
        self.inner
            .touch_device(id, last_used_at, address, user_agent)
            .await
    }
    async fn devices(&self, user: &str) -> StoreResult<Vec<DeviceRecord>> {
        self.inner.devices(user).await
    }
    async fn delete_device(&self, user: &str, id: &str) -> StoreResult<bool> {
        self.inner.delete_device(user, id).await
    }
    async fn delete_devices(&self, user: &str) -> StoreResult<usize> {
        let count = self.inner.delete_devices(user).await?;
        self.gate.release();
        Ok(count)
    }
}

/// Factors whose first new credential after arming waits for the reset's
/// `delete_user_factors`.
struct LateFactors {
    inner: Arc<dyn FactorStore>,
    gate: Gate,
}

#[async_trait]
impl FactorStore for LateFactors {
    async fn put_pending(&self, credential: Credential, rule: Enrollment) -> StoreResult<bool> {
        self.gate.hold().await;
        self.inner.put_pending(credential, rule).await
    }
    async fn activate(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        codes: Option<CodeSet>,
    ) -> StoreResult<bool> {
        self.inner.activate(key, counter, codes).await
    }
    async fn credential(&self, key: CredentialRef<'_>) -> StoreResult<Option<Credential>> {
        self.inner.credential(key).await
    }
    async fn credentials(&self, user: &str) -> StoreResult<Vec<Credential>> {
        self.inner.credentials(user).await
    }
    async fn credentials_of_kind(&self, kind: &str) -> StoreResult<Vec<Credential>> {
        self.inner.credentials_of_kind(kind).await
    }
    async fn credential_by_id(&self, kind: &str, id: &str) -> StoreResult<Option<Credential>> {
        self.inner.credential_by_id(kind, id).await
    }
    async fn advance_counter(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        payload: Option<&str>,
        used_at: u64,
    ) -> StoreResult<bool> {
        self.inner
            .advance_counter(key, counter, payload, used_at)
            .await
    }
    async fn replace_payload(
        &self,
        key: CredentialRef<'_>,
        old: &str,
        new: &str,
        used_at: Option<u64>,
    ) -> StoreResult<bool> {
        self.inner.replace_payload(key, old, new, used_at).await
    }
    async fn disable_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool> {
        self.inner.disable_credential(key).await
    }
    async fn set_label(&self, key: CredentialRef<'_>, label: Option<&str>) -> StoreResult<bool> {
        self.inner.set_label(key, label).await
    }
    async fn delete_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool> {
        self.inner.delete_credential(key).await
    }
    async fn replace_codes(&self, user: &str, set: CodeSet) -> StoreResult<()> {
        self.inner.replace_codes(user, set).await
    }
    async fn code_hash(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<Option<String>> {
        self.inner.code_hash(user, kind, lookup).await
    }
    async fn consume_code(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<bool> {
        self.inner.consume_code(user, kind, lookup).await
    }
    async fn count_codes(&self, user: &str, kind: &str) -> StoreResult<usize> {
        self.inner.count_codes(user, kind).await
    }
    async fn record_failure(&self, user: &str, kind: &str) -> StoreResult<u64> {
        self.inner.record_failure(user, kind).await
    }
    async fn failures(&self, user: &str, kind: &str) -> StoreResult<u64> {
        self.inner.failures(user, kind).await
    }
    async fn clear_failures(&self, user: &str, kind: &str) -> StoreResult<()> {
        self.inner.clear_failures(user, kind).await
    }
    async fn generation(&self, user: &str) -> StoreResult<Generation> {
        self.inner.generation(user).await
    }
    async fn advance_generation(&self, user: &str, at: u64) -> StoreResult<Generation> {
        self.inner.advance_generation(user, at).await
    }
    async fn generation_changes(
        &self,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<GenerationChange>> {
        self.inner.generation_changes(after, limit).await
    }
    async fn delete_user_factors(&self, user: &str) -> StoreResult<()> {
        self.inner.delete_user_factors(user).await?;
        self.gate.release();
        Ok(())
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}

/// Which write a [`Gate`] holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Late {
    /// A remembered device, held until the reset's `delete_devices`.
    Device,
    /// A new credential, held until the reset's `delete_user_factors`.
    Credential,
}

/// An instance whose `late` writes go through `gate`, with an enrolled owner; returns the
/// instance, the owner's app key, a fresh MFA token and the recovery code mailed.
async fn gated(backend: &Backend, gate: &Gate, late: Late) -> (App, TotpKey, String, String) {
    let wrap_gate = gate.clone();
    let app = backend
        .app_with(Options {
            wrap_stores: Some(Arc::new(move |mut stores| {
                let gate = wrap_gate.clone();
                match late {
                    Late::Device => {
                        stores.devices = Arc::new(LateDevices {
                            inner: stores.devices,
                            gate,
                        });
                    }
                    Late::Credential => {
                        stores.factors = Arc::new(LateFactors {
                            inner: stores.factors,
                            gate,
                        });
                    }
                }
                stores
            })),
            ..Options::default()
        })
        .await;
    let (_, key, _) = app.enrolled_user(OWNER).await;
    let fresh = app.fresh_mfa_token(OWNER, &key).await;
    app.post("/api/mfa/recovery/request", None, json!({"email": OWNER}))
        .await;
    let mail = app.mail_with_subject(0, "Your account recovery code").await;
    (app, key, fresh, recovery_code_in(&mail.body))
}

/// Confirms the recovery; returns its token.
async fn recover(app: &App, code: &str) -> String {
    app.post(
        "/api/mfa/recovery/confirm",
        None,
        json!({"token": code, "password": PASSWORD}),
    )
    .await
    .token()
}

on_backends!([sqlite, postgres]
    a_device_remembered_across_a_reset_vouches_for_nothing,
    a_passkey_registered_across_a_reset_signs_in_nowhere,
);

async fn a_device_remembered_across_a_reset_vouches_for_nothing(backend: &Backend) {
    let gate = Gate::new();
    let (app, key, _, code) = gated(backend, &gate, Late::Device).await;
    // An MFA step with remember_device verifies its factor, and its device write is held…
    let mfa_token = app.mfa_token(OWNER).await;
    let request = app
        .request(Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": app.code(&key), "remember_device": true}));
    gate.arm();
    let login = tokio::spawn(async move {
        let response = request.send().await.unwrap();
        let cookie = response
            .headers()
            .get("set-cookie")
            .map(|value| cookie_pair(value.to_str().unwrap()));
        (Answer::from_response(response).await, cookie)
    });
    gate.writing.notified().await;
    // …while the recovery resets the user; then it lands.
    let recovered = recover(&app, &code).await;
    let (answer, cookie) = login.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let cookie = cookie.expect("the late device's cookie");

    // The owner enrolls anew: the late device neither vouches nor is listed, its token is void.
    let (new_key, _) = app.enroll_totp(&recovered).await;
    let login = app.login_with_cookie(OWNER, &cookie).await;
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    let devices = app.get("/api/mfa/devices", Some(&recovered)).await;
    assert_eq!(devices.body["devices"], json!([]), "{devices:?}");
    let me = app.get("/api/me", Some(&answer.token())).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{me:?}");
    let mfa_token = app.mfa_token(OWNER).await;
    let answer = app.mfa_step_with_code(&mfa_token, &new_key).await;
    assert_eq!(answer.body["acr"], "mfa", "{answer:?}");
}

async fn a_passkey_registered_across_a_reset_signs_in_nowhere(backend: &Backend) {
    let gate = Gate::new();
    let (app, _, fresh, code) = gated(backend, &gate, Late::Credential).await;
    // A registration passes every check, holding the factor-change lease, and its write is held…
    let mut passkey = SoftPasskey::new(true);
    let started = app.start_passkey("/api/mfa/factors/webauthn", &fresh).await;
    let handle = started.body["publicKey"]["user"]["id"].clone();
    let body = app.registration(&started, &mut passkey);
    let request = app
        .request(
            Method::POST,
            "/api/mfa/factors/webauthn/confirm",
            Some(&fresh),
        )
        .json(&body);
    gate.arm();
    let registration = tokio::spawn(async move { Answer::read(request).await });
    gate.writing.notified().await;
    // …while the recovery resets the user (it waits for the lease a while, then goes ahead);
    // then the registration lands.
    let recovered = recover(&app, &code).await;
    let registered = registration.await.unwrap();
    assert_eq!(registered.status, StatusCode::OK, "{registered:?}");
    let id = registered.body["credential_id"].clone();

    // The owner enrolls anew: the late passkey is not listed, not offered, and signs in nowhere.
    app.enroll_totp(&recovered).await;
    let listed = app.get("/api/mfa/factors", Some(&recovered)).await;
    let kinds: Vec<&str> = listed.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|factor| factor["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["totp"], "{listed:?}");
    let login = app.login(OWNER).await;
    assert_eq!(
        login.body["methods"],
        json!(["totp", "backup_code"]),
        "{login:?}"
    );
    let (passkey_token, assertion) = app.passkey_login(&mut passkey, &id, &handle).await;
    app.post(
        "/oauth/authorize/passkey",
        None,
        json!({ "passkey_token": passkey_token, "credential": assertion }),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let mfa_token = login.body["mfa_token"].as_str().unwrap();
    app.post(
        "/oauth/authorize/mfa/webauthn/prepare",
        None,
        json!({ "mfa_token": mfa_token }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "not_enrolled");
}
