//! Passkeys and security keys (issue 9), end to end over the demo's HTTP contract with the soft
//! authenticators of `webauthn-authenticator-rs`: registration, the second factor, passwordless
//! login at `phr` and the vault, step-up, the PKCE redirect, the remembered device, replays, a
//! wrong origin or `rp_id`, a cloned authenticator, and 100 concurrent finishes of one ceremony —
//! each on a demo over SQLite and one over PostgreSQL.

mod demo_support;

use demo_support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup::mfa::webauthn::{CreationChallengeResponse, RequestChallengeResponse};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;

/// The demo's WebAuthn origin (`STEPUP_PUBLIC_URL`'s default).
fn origin() -> Url {
    Url::parse(demo_support::app::DEFAULT_PUBLIC_URL).unwrap()
}

/// What an authenticator gets from `{publicKey: …}`.
fn creation_options(body: &Value) -> CreationChallengeResponse {
    serde_json::from_value(json!({ "publicKey": body["publicKey"] })).unwrap()
}

fn request_options(body: &Value) -> RequestChallengeResponse {
    serde_json::from_value(json!({ "publicKey": body["publicKey"] })).unwrap()
}

/// Registers and logs in `email` with its password; returns the password token.
async fn password_token<S>(demo: &Demo<S>, email: &str) -> String {
    demo.register(email).await;
    demo.login(email).await.token()
}

/// Registers a credential from `authenticator` for the holder of `token`; returns the finish
/// answer and the user handle the authenticator was given.
async fn add_passkey<S>(
    demo: &Demo<S>,
    token: &str,
    authenticator: &mut impl WebauthnAuthenticator,
) -> (Answer, Value) {
    let started = demo
        .post("/api/mfa/webauthn/register/start", Some(token), json!({}))
        .await;
    assert_eq!(started.status, StatusCode::OK, "{started:?}");
    assert_eq!(started.cache_control.as_deref(), Some("no-store"));
    let handle = started.body["publicKey"]["user"]["id"].clone();
    let credential = authenticator
        .do_registration(origin(), creation_options(&started.body))
        .unwrap();
    let finished = demo
        .post(
            "/api/mfa/webauthn/register/finish",
            Some(token),
            json!({
                "registration_token": started.body["registration_token"],
                "credential": credential,
                "label": "my key",
            }),
        )
        .await;
    (finished, handle)
}

/// Logs in with the password and answers the MFA step with `authenticator`.
async fn second_factor<S>(
    demo: &Demo<S>,
    email: &str,
    authenticator: &mut impl WebauthnAuthenticator,
) -> Answer {
    let mfa_token = demo.mfa_token(email).await;
    let options = demo
        .post(
            "/oauth/authorize/mfa/webauthn/start",
            None,
            json!({ "mfa_token": mfa_token }),
        )
        .await;
    assert_eq!(options.status, StatusCode::OK, "{options:?}");
    let credential = authenticator
        .do_authentication(origin(), request_options(&options.body))
        .unwrap();
    demo.mfa_step(
        &mfa_token,
        json!({ "method": "webauthn", "credential": credential }),
    )
    .await
}

/// What a discoverable authenticator does on its own (the soft ones only answer allow-listed
/// credentials and return no user handle): pick its credential, return the stored user handle.
fn as_discoverable(options: &Value, credential_id: &Value) -> RequestChallengeResponse {
    let mut public_key = options["publicKey"].clone();
    public_key["allowCredentials"] = json!([{ "type": "public-key", "id": credential_id }]);
    serde_json::from_value(json!({ "publicKey": public_key })).unwrap()
}

async fn passkey_login<S>(
    demo: &Demo<S>,
    authenticator: &mut impl WebauthnAuthenticator,
    credential_id: &Value,
    handle: &Value,
) -> (String, Value) {
    let started = demo
        .post("/oauth/authorize/passkey/start", None, json!({}))
        .await;
    assert_eq!(started.status, StatusCode::OK, "{started:?}");
    let assertion = authenticator
        .do_authentication(origin(), as_discoverable(&started.body, credential_id))
        .unwrap();
    let mut assertion = serde_json::to_value(assertion).unwrap();
    assertion["response"]["userHandle"] = handle.clone();
    (
        started.body["passkey_token"].as_str().unwrap().to_owned(),
        assertion,
    )
}

on_sqlite_and_postgres!(
    a_passkey_registers_and_serves_as_the_second_factor_at_phr,
    a_passkey_signs_in_without_a_password_and_only_it_opens_the_vault,
    a_totp_level_token_gets_the_phr_challenge_at_the_vault,
    an_assertion_answers_one_challenge_once,
    a_wrong_origin_is_refused,
    a_cloned_security_key_is_refused_and_audited,
    bad_webauthn_input_is_a_json_400,
    a_signed_in_user_steps_up_with_a_passkey,
    the_pkce_redirect_works_with_a_passkey_as_second_factor_and_passwordless,
    a_device_remembered_after_a_passkey_skips_the_step,
    one_mfa_ceremony_finished_100_times_at_once_succeeds_once,
    one_passwordless_ceremony_finished_100_times_at_once_succeeds_once,
);

async fn event_kinds<S>(demo: &Demo<S>, token: &str) -> Vec<String> {
    let events = demo.get("/api/mfa/events", Some(token)).await;
    events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_passkey_registers_and_serves_as_the_second_factor_at_phr<S>(demo: &Demo<S>) {
    let token = password_token(demo, "ada@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, _) = add_passkey(demo, &token, &mut key).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    assert_eq!(finished.cache_control.as_deref(), Some("no-store"));
    let id = finished.body["credential_id"].clone();
    assert_eq!(
        finished.body["backup_codes"].as_array().unwrap().len(),
        10,
        "a passkey enrolled first brings the backup codes"
    );

    let listed = demo
        .get("/api/mfa/webauthn/credentials", Some(&token))
        .await;
    assert_eq!(listed.body["credentials"][0]["id"], id);
    assert_eq!(listed.body["credentials"][0]["label"], "my key");
    let factors = demo.get("/api/mfa/factors", Some(&token)).await;
    assert_eq!(factors.body["factors"][0]["method"], "webauthn");

    let login = demo.login("ada@example.com").await;
    assert_eq!(login.body["methods"], json!(["webauthn", "backup_code"]));
    let signed_in = second_factor(demo, "ada@example.com", &mut key).await;
    assert_eq!(signed_in.body["acr"], "phr", "{signed_in:?}");
    let strong = signed_in.token();
    let me = demo.get("/api/me", Some(&strong)).await;
    assert_eq!(me.body["amr"], json!(["pwd", "hwk"]));
    let vault = demo.get("/api/vault", Some(&strong)).await;
    assert_eq!(vault.status, StatusCode::OK, "{vault:?}");
    assert!(vault.body["secret"].as_str().is_some());

    // Rename, then remove (a factor removal needs a fresh second factor).
    let path = format!("/api/mfa/webauthn/credentials/{}", id.as_str().unwrap());
    let renamed = Answer::read(
        demo.request(reqwest::Method::PATCH, &path, Some(&strong))
            .json(&json!({ "label": "yubikey" })),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{renamed:?}");
    let listed = demo
        .get("/api/mfa/webauthn/credentials", Some(&strong))
        .await;
    assert_eq!(listed.body["credentials"][0]["label"], "yubikey");
    assert_eq!(listed.body["credentials"][0]["counter"], 1);
    let refused = demo.delete(&path, Some(&token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let removed = demo.delete(&path, Some(&strong)).await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    demo.delete(&path, Some(&strong))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let kinds = event_kinds(demo, &strong).await;
    for kind in ["webauthn_enrolled", "mfa_succeeded", "webauthn_removed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn a_passkey_signs_in_without_a_password_and_only_it_opens_the_vault<S>(demo: &Demo<S>) {
    let token = password_token(demo, "cleo@example.com").await;
    let mut passkey = SoftPasskey::new(true);
    let (finished, handle) = add_passkey(demo, &token, &mut passkey).await;
    let id = finished.body["credential_id"].clone();

    let (passkey_token, assertion) = passkey_login(demo, &mut passkey, &id, &handle).await;
    let signed_in = demo
        .post(
            "/oauth/authorize/passkey",
            None,
            json!({ "passkey_token": passkey_token, "credential": assertion }),
        )
        .await;
    assert_eq!(signed_in.body["acr"], "phr", "{signed_in:?}");
    let strong = signed_in.token();
    let me = demo.get("/api/me", Some(&strong)).await;
    assert_eq!(me.body["amr"], json!(["hwk"]), "no password was checked");
    let vault = demo.get("/api/vault", Some(&strong)).await;
    assert_eq!(vault.status, StatusCode::OK, "{vault:?}");

    // The same ceremony, or the same assertion in a new one, never signs in again.
    demo.post(
        "/oauth/authorize/passkey",
        None,
        json!({ "passkey_token": passkey_token, "credential": assertion }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_ceremony");
    let fresh = demo
        .post("/oauth/authorize/passkey/start", None, json!({}))
        .await;
    demo.post(
        "/oauth/authorize/passkey",
        None,
        json!({ "passkey_token": fresh.body["passkey_token"], "credential": assertion }),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");

    // The vault after five minutes asks for a fresh phishing-resistant login.
    demo.clock.advance(std::time::Duration::from_secs(301));
    let stale = demo.get("/api/vault", Some(&strong)).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert!(stale.challenge.unwrap().contains("acr_values=\"phr\""));
}

async fn a_totp_level_token_gets_the_phr_challenge_at_the_vault<S>(demo: &Demo<S>) {
    let (_, key, _) = demo.enrolled_user("dan@example.com").await;
    let mfa_token = demo.mfa_token("dan@example.com").await;
    let token = demo.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(token.body["acr"], "mfa");
    let refused = demo.get("/api/vault", Some(&token.token())).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let challenge = refused.challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    assert!(challenge.contains("acr_values=\"phr\""), "{challenge}");
    assert!(challenge.contains("max_age=300"), "{challenge}");
    assert_eq!(refused.body["acr_values"], "phr");
}

async fn an_assertion_answers_one_challenge_once<S>(demo: &Demo<S>) {
    let token = password_token(demo, "eve@example.com").await;
    let mut key = SoftPasskey::new(true);
    add_passkey(demo, &token, &mut key).await;

    let mfa_token = demo.mfa_token("eve@example.com").await;
    let options = demo
        .post(
            "/oauth/authorize/mfa/webauthn/start",
            None,
            json!({ "mfa_token": mfa_token }),
        )
        .await;
    let credential = key
        .do_authentication(origin(), request_options(&options.body))
        .unwrap();
    let proof = json!({ "method": "webauthn", "credential": credential });
    demo.mfa_step(&mfa_token, proof.clone()).await.token();
    demo.mfa_step(&mfa_token, proof.clone())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");

    // Replayed into a new login: its challenge is not the one signed.
    let replay_token = demo.mfa_token("eve@example.com").await;
    demo.post(
        "/oauth/authorize/mfa/webauthn/start",
        None,
        json!({ "mfa_token": replay_token }),
    )
    .await;
    demo.mfa_step(&replay_token, proof)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let kinds = event_kinds(demo, &token).await;
    assert!(kinds.iter().any(|k| k == "mfa_failed"), "{kinds:?}");

    // An unknown mfa_token gets no options.
    demo.post(
        "/oauth/authorize/mfa/webauthn/start",
        None,
        json!({ "mfa_token": "nope" }),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
}

async fn a_wrong_origin_is_refused<S>(demo: &Demo<S>) {
    let token = password_token(demo, "fay@example.com").await;
    let started = demo
        .post("/api/mfa/webauthn/register/start", Some(&token), json!({}))
        .await;
    // Another origin under the same rp_id (another port of localhost): the authenticator signs,
    // the server refuses.
    let evil = Url::parse("http://localhost:4000").unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(evil, creation_options(&started.body))
        .unwrap();
    demo.post(
        "/api/mfa/webauthn/register/finish",
        Some(&token),
        json!({ "registration_token": started.body["registration_token"], "credential": credential }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_credential");
    let listed = demo
        .get("/api/mfa/webauthn/credentials", Some(&token))
        .await;
    assert_eq!(listed.body["credentials"], json!([]));
}

async fn a_cloned_security_key_is_refused_and_audited<S>(demo: &Demo<S>) {
    let token = password_token(demo, "gil@example.com").await;
    let (mut original, _) = SoftToken::new(true).unwrap();
    let (finished, _) = add_passkey(demo, &token, &mut original).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    let mut clone = SoftToken::from_cbor(&original.to_cbor().unwrap()).unwrap();
    for _ in 0..2 {
        second_factor(demo, "gil@example.com", &mut clone)
            .await
            .token();
    }
    second_factor(demo, "gil@example.com", &mut original)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let kinds = event_kinds(demo, &token).await;
    assert!(
        kinds.iter().any(|k| k == "webauthn_clone_suspected"),
        "{kinds:?}"
    );
}

async fn bad_webauthn_input_is_a_json_400<S>(demo: &Demo<S>) {
    let token = password_token(demo, "hal@example.com").await;
    demo.post(
        "/api/mfa/webauthn/register/finish",
        Some(&token),
        json!({ "registration_token": "x", "credential": {"id": 7} }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let started = demo
        .post("/api/mfa/webauthn/register/start", Some(&token), json!({}))
        .await;
    let credential = SoftPasskey::new(true)
        .do_registration(origin(), creation_options(&started.body))
        .unwrap();
    demo.post(
        "/api/mfa/webauthn/register/finish",
        Some(&token),
        json!({ "registration_token": "not the token", "credential": credential }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_ceremony");
    demo.post(
        "/oauth/authorize/passkey",
        None,
        json!({ "passkey_token": "x" }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let anonymous = demo
        .post("/api/mfa/webauthn/register/start", None, json!({}))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

/// The request options of the MFA step of `mfa_token`, answered by `authenticator`.
async fn assertion_for<S>(
    demo: &Demo<S>,
    mfa_token: &str,
    authenticator: &mut impl WebauthnAuthenticator,
) -> Value {
    let options = demo
        .post(
            "/oauth/authorize/mfa/webauthn/start",
            None,
            json!({ "mfa_token": mfa_token }),
        )
        .await;
    assert_eq!(options.status, StatusCode::OK, "{options:?}");
    let credential = authenticator
        .do_authentication(origin(), request_options(&options.body))
        .unwrap();
    json!({ "method": "webauthn", "credential": credential })
}

async fn a_signed_in_user_steps_up_with_a_passkey<S>(demo: &Demo<S>) {
    let token = password_token(demo, "ida@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, _) = add_passkey(demo, &token, &mut key).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    // The password-level token does not open the vault; its holder steps up with the passkey.
    let refused = demo.get("/api/vault", Some(&token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let step = demo
        .post(
            "/oauth/authorize",
            Some(&token),
            json!({"acr_values": "phr"}),
        )
        .await;
    assert_eq!(step.status, StatusCode::OK, "{step:?}");
    assert_eq!(step.body["mfa_required"], true, "{step:?}");
    assert_eq!(step.body["methods"], json!(["webauthn", "backup_code"]));
    let mfa_token = step.body["mfa_token"].as_str().unwrap().to_owned();
    let proof = assertion_for(demo, &mfa_token, &mut key).await;
    let stepped = demo.mfa_step(&mfa_token, proof).await;
    assert_eq!(stepped.body["acr"], "phr", "{stepped:?}");
    let strong = stepped.token();
    let me = demo.get("/api/me", Some(&strong)).await;
    assert_eq!(
        me.body["sub"],
        demo.get("/api/me", Some(&token)).await.body["sub"]
    );
    assert_eq!(me.body["amr"], json!(["pwd", "hwk"]));
    let vault = demo.get("/api/vault", Some(&strong)).await;
    assert_eq!(vault.status, StatusCode::OK, "{vault:?}");
    // Without a token there is no step-up.
    demo.post("/oauth/authorize", None, json!({"acr_values": "phr"}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn the_pkce_redirect_works_with_a_passkey_as_second_factor_and_passwordless<S>(
    demo: &Demo<S>,
) {
    let token = password_token(demo, "jon@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, handle) = add_passkey(demo, &token, &mut key).await;
    let id = finished.body["credential_id"].clone();

    // Password, then the passkey as the second factor: the step ends in the redirect.
    let login = demo
        .post(
            "/oauth/authorize",
            None,
            with_pkce(json!({"username": "jon@example.com", "password": "correct horse"})),
        )
        .await;
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    assert!(login.body.get("code").is_none());
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    let mut proof = assertion_for(demo, &mfa_token, &mut key).await;
    proof["mfa_token"] = json!(mfa_token);
    let code = redirected_code(demo, "/oauth/authorize/mfa", proof).await;
    let exchanged = redeem_code(demo, &code).await;
    assert_eq!(exchanged.body["acr"], "phr", "{exchanged:?}");
    let me = demo.get("/api/me", Some(&exchanged.token())).await;
    assert_eq!(me.body["amr"], json!(["pwd", "hwk"]));
    redeem_code(demo, &code)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // Passwordless: the passkey alone, the same redirect.
    let (passkey_token, assertion) = passkey_login(demo, &mut key, &id, &handle).await;
    let code = redirected_code(
        demo,
        "/oauth/authorize/passkey",
        with_pkce(json!({ "passkey_token": passkey_token, "credential": assertion })),
    )
    .await;
    let exchanged = redeem_code(demo, &code).await;
    assert_eq!(exchanged.body["acr"], "phr", "{exchanged:?}");
    let me = demo.get("/api/me", Some(&exchanged.token())).await;
    assert_eq!(me.body["amr"], json!(["hwk"]));
}

async fn a_device_remembered_after_a_passkey_skips_the_step<S>(demo: &Demo<S>) {
    let token = password_token(demo, "kim@example.com").await;
    let mut key = SoftPasskey::new(true);
    add_passkey(demo, &token, &mut key).await;
    let mfa_token = demo.mfa_token("kim@example.com").await;
    let proof = assertion_for(demo, &mfa_token, &mut key).await;
    let (answer, cookie) = remembered_step(demo, &mfa_token, proof).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["acr"], "phr");
    // The next password login on this device gets a token without the step, at `mfa` (the
    // device vouches for a second factor, not for a phishing-resistant one now).
    let login = login_with_cookie(demo, "kim@example.com", &cookie).await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    assert!(login.body.get("mfa_required").is_none(), "{login:?}");
    assert_eq!(login.body["acr"], "mfa");
    let vault = demo.get("/api/vault", Some(&login.token())).await;
    assert_eq!(vault.status, StatusCode::UNAUTHORIZED, "{vault:?}");
    // Removing the passkey (with a fresh factor) revokes the device.
    let mfa_token = demo.mfa_token("kim@example.com").await;
    let proof = assertion_for(demo, &mfa_token, &mut key).await;
    let strong = demo.mfa_step(&mfa_token, proof).await.token();
    let listed = demo
        .get("/api/mfa/webauthn/credentials", Some(&strong))
        .await;
    let id = listed.body["credentials"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let removed = demo
        .delete(
            &format!("/api/mfa/webauthn/credentials/{id}"),
            Some(&strong),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    let login = login_with_cookie(demo, "kim@example.com", &cookie).await;
    assert_eq!(
        login.body["acr"], "pwd",
        "no factor left, the device vouches for nothing"
    );
}

/// Fires `count` copies of `body` at `path` at once; returns every status.
async fn all_at_once<S>(demo: &Demo<S>, path: &str, body: &Value, count: usize) -> Vec<StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let request = demo.request(reqwest::Method::POST, path, None).json(body);
        tasks.spawn(async move { request.send().await.unwrap().status() });
    }
    tasks.join_all().await
}

async fn one_mfa_ceremony_finished_100_times_at_once_succeeds_once<S>(demo: &Demo<S>) {
    let token = password_token(demo, "lea@example.com").await;
    let mut key = SoftPasskey::new(true);
    add_passkey(demo, &token, &mut key).await;
    let mfa_token = demo.mfa_token("lea@example.com").await;
    let mut proof = assertion_for(demo, &mfa_token, &mut key).await;
    proof["mfa_token"] = json!(mfa_token);
    let statuses = all_at_once(demo, "/oauth/authorize/mfa", &proof, 100).await;
    let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(wins, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || s.is_client_error()),
        "{statuses:?}"
    );
}

async fn one_passwordless_ceremony_finished_100_times_at_once_succeeds_once<S>(demo: &Demo<S>) {
    let token = password_token(demo, "max@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, handle) = add_passkey(demo, &token, &mut key).await;
    let id = finished.body["credential_id"].clone();
    let (passkey_token, assertion) = passkey_login(demo, &mut key, &id, &handle).await;
    let body = json!({ "passkey_token": passkey_token, "credential": assertion });
    let statuses = all_at_once(demo, "/oauth/authorize/passkey", &body, 100).await;
    let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(wins, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || s.is_client_error()),
        "{statuses:?}"
    );
}

// ---- The relying party's own id ----

/// The demo reached at an https origin whose registrable parent is another valid `rp_id`: an
/// authenticator told `example.com` instead of the demo's `app.example.com` signs for the wrong
/// relying party at the right origin.
const APP_ORIGIN: &str = "https://app.example.com";
const PARENT_RP_ID: &str = "example.com";

#[tokio::test]
async fn a_registration_or_assertion_for_another_rp_id_is_refused_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start_at(dir, stepup::ManualClock::at_unix(T0), APP_ORIGIN).await;
    let app = Url::parse(APP_ORIGIN).unwrap();
    let token = password_token(&demo, "ned@example.com").await;

    // Registration: the attestation's rpIdHash is example.com's.
    let started = demo
        .post("/api/mfa/webauthn/register/start", Some(&token), json!({}))
        .await;
    assert_eq!(started.body["publicKey"]["rp"]["id"], "app.example.com");
    let mut options = started.body.clone();
    options["publicKey"]["rp"]["id"] = json!(PARENT_RP_ID);
    let mut key = SoftPasskey::new(true);
    let credential = key
        .do_registration(app.clone(), creation_options(&options))
        .unwrap();
    demo.post(
        "/api/mfa/webauthn/register/finish",
        Some(&token),
        json!({ "registration_token": started.body["registration_token"], "credential": credential }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_credential");
    let listed = demo
        .get("/api/mfa/webauthn/credentials", Some(&token))
        .await;
    assert_eq!(listed.body["credentials"], json!([]));

    // The same authenticator registered properly: right rp_id, it works.
    let started = demo
        .post("/api/mfa/webauthn/register/start", Some(&token), json!({}))
        .await;
    let credential = key
        .do_registration(app.clone(), creation_options(&started.body))
        .unwrap();
    let finished = demo
        .post(
            "/api/mfa/webauthn/register/finish",
            Some(&token),
            json!({ "registration_token": started.body["registration_token"], "credential": credential }),
        )
        .await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");

    // An assertion whose rpIdHash is example.com's, at the right origin: refused.
    let mfa_token = demo.mfa_token("ned@example.com").await;
    let options = demo
        .post(
            "/oauth/authorize/mfa/webauthn/start",
            None,
            json!({ "mfa_token": mfa_token }),
        )
        .await;
    assert_eq!(options.body["publicKey"]["rpId"], "app.example.com");
    let mut wrong = options.body.clone();
    wrong["publicKey"]["rpId"] = json!(PARENT_RP_ID);
    let assertion = key
        .do_authentication(app.clone(), request_options(&wrong))
        .unwrap();
    demo.mfa_step(
        &mfa_token,
        json!({ "method": "webauthn", "credential": assertion }),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    // The challenge was used up by the refused assertion; a new one for the same mfa_token
    // (a wrong proof does not spend the token), answered for the right rp_id, passes.
    let options = demo
        .post(
            "/oauth/authorize/mfa/webauthn/start",
            None,
            json!({ "mfa_token": mfa_token }),
        )
        .await;
    let assertion = key
        .do_authentication(app, request_options(&options.body))
        .unwrap();
    let signed_in = demo
        .mfa_step(
            &mfa_token,
            json!({ "method": "webauthn", "credential": assertion }),
        )
        .await;
    assert_eq!(signed_in.body["acr"], "phr", "{signed_in:?}");

    let events = demo.get("/api/mfa/events", Some(&signed_in.token())).await;
    let failed: Vec<&Value> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "mfa_failed")
        .collect();
    assert_eq!(failed.len(), 2, "one per refused ceremony: {failed:?}");
}
