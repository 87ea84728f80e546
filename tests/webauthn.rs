//! Passkeys and security keys (issue 9), end to end over the demo's HTTP contract with the soft
//! authenticators of `webauthn-authenticator-rs`: registration, the second factor, passwordless
//! login at `phr` and the vault, replays, a wrong origin, and a cloned authenticator.

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
async fn password_token(demo: &Demo, email: &str) -> String {
    demo.register(email).await;
    demo.login(email).await.token()
}

/// Registers a credential from `authenticator` for the holder of `token`; returns the finish
/// answer and the user handle the authenticator was given.
async fn add_passkey(
    demo: &Demo,
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
async fn second_factor(
    demo: &Demo,
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

async fn passkey_login(
    demo: &Demo,
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

async fn event_kinds(demo: &Demo, token: &str) -> Vec<String> {
    let events = demo.get("/api/mfa/events", Some(token)).await;
    events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_passkey_registers_and_serves_as_the_second_factor_at_phr() {
    let demo = Demo::start().await;
    let token = password_token(&demo, "ada@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, _) = add_passkey(&demo, &token, &mut key).await;
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
    let signed_in = second_factor(&demo, "ada@example.com", &mut key).await;
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
    let kinds = event_kinds(&demo, &strong).await;
    for kind in ["webauthn_enrolled", "mfa_succeeded", "webauthn_removed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn a_passkey_signs_in_without_a_password_and_only_it_opens_the_vault() {
    let demo = Demo::start().await;
    let token = password_token(&demo, "cleo@example.com").await;
    let mut passkey = SoftPasskey::new(true);
    let (finished, handle) = add_passkey(&demo, &token, &mut passkey).await;
    let id = finished.body["credential_id"].clone();

    let (passkey_token, assertion) = passkey_login(&demo, &mut passkey, &id, &handle).await;
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

#[tokio::test]
async fn a_totp_level_token_gets_the_phr_challenge_at_the_vault() {
    let demo = Demo::start().await;
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

#[tokio::test]
async fn an_assertion_answers_one_challenge_once() {
    let demo = Demo::start().await;
    let token = password_token(&demo, "eve@example.com").await;
    let mut key = SoftPasskey::new(true);
    add_passkey(&demo, &token, &mut key).await;

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
    let kinds = event_kinds(&demo, &token).await;
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

#[tokio::test]
async fn a_wrong_origin_is_refused() {
    let demo = Demo::start().await;
    let token = password_token(&demo, "fay@example.com").await;
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

#[tokio::test]
async fn a_cloned_security_key_is_refused_and_audited() {
    let demo = Demo::start().await;
    let token = password_token(&demo, "gil@example.com").await;
    let (mut original, _) = SoftToken::new(true).unwrap();
    let (finished, _) = add_passkey(&demo, &token, &mut original).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    let mut clone = SoftToken::from_cbor(&original.to_cbor().unwrap()).unwrap();
    for _ in 0..2 {
        second_factor(&demo, "gil@example.com", &mut clone)
            .await
            .token();
    }
    second_factor(&demo, "gil@example.com", &mut original)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let kinds = event_kinds(&demo, &token).await;
    assert!(
        kinds.iter().any(|k| k == "webauthn_clone_suspected"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn bad_webauthn_input_is_a_json_400() {
    let demo = Demo::start().await;
    let token = password_token(&demo, "hal@example.com").await;
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
