//! Passkeys and security keys, end to end over the drop-in routes with the soft authenticators
//! of `webauthn-authenticator-rs`: registration, the second factor, passwordless login at `phr`
//! and the vault, step-up, the PKCE redirect, the remembered device, replays, a wrong origin or
//! `rp_id`, a cloned authenticator, and 100 concurrent finishes of one ceremony — each over
//! SQLite and over PostgreSQL.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::passkeys::{creation_options, request_options};
use support::*;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;

on_backends!([sqlite, postgres]

    a_passkey_registers_and_serves_as_the_second_factor_at_phr,
    a_passkey_signs_in_without_a_password_and_only_it_opens_the_vault,
    a_totp_level_token_gets_the_phr_challenge_at_the_vault,
    an_assertion_answers_one_challenge_once,
    a_wrong_origin_is_refused,
    a_cloned_security_key_is_refused_and_audited,
    a_suspected_clone_is_disabled_until_enrolled_anew,
    bad_webauthn_input_is_a_json_400,
    a_signed_in_user_steps_up_with_a_passkey,
    the_pkce_redirect_works_with_a_passkey_as_second_factor_and_passwordless,
    a_device_remembered_after_a_passkey_skips_the_step,
    one_mfa_ceremony_finished_100_times_at_once_succeeds_once,
    one_passwordless_ceremony_finished_100_times_at_once_succeeds_once,
);

async fn a_passkey_registers_and_serves_as_the_second_factor_at_phr(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("ada@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, _) = app.add_passkey(&token, &mut key).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    assert_eq!(finished.cache_control.as_deref(), Some("no-store"));
    let id = finished.body["credential_id"].clone();
    assert_eq!(
        finished.body["backup_codes"].as_array().unwrap().len(),
        10,
        "a passkey enrolled first brings the backup codes"
    );

    let listed = app.get("/api/mfa/webauthn/credentials", Some(&token)).await;
    assert_eq!(listed.body["credentials"][0]["id"], id);
    assert_eq!(listed.body["credentials"][0]["label"], "my key");
    let factors = app.get("/api/mfa/factors", Some(&token)).await;
    assert_eq!(factors.body["factors"][0]["method"], "webauthn");

    let login = app.login("ada@example.com").await;
    assert_eq!(login.body["methods"], json!(["webauthn", "backup_code"]));
    let signed_in = app.second_factor("ada@example.com", &mut key).await;
    assert_eq!(signed_in.body["acr"], "phr", "{signed_in:?}");
    let strong = signed_in.token();
    let me = app.get("/api/me", Some(&strong)).await;
    assert_eq!(me.body["amr"], json!(["pwd", "hwk"]));
    let vault = app.get("/api/vault", Some(&strong)).await;
    assert_eq!(vault.status, StatusCode::OK, "{vault:?}");
    assert!(vault.body["secret"].as_str().is_some());

    // Rename, then remove (a factor removal needs a fresh second factor).
    let path = format!("/api/mfa/webauthn/credentials/{}", id.as_str().unwrap());
    let renamed = Answer::read(
        app.request(reqwest::Method::PATCH, &path, Some(&strong))
            .json(&json!({ "label": "yubikey" })),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{renamed:?}");
    let listed = app
        .get("/api/mfa/webauthn/credentials", Some(&strong))
        .await;
    assert_eq!(listed.body["credentials"][0]["label"], "yubikey");
    assert_eq!(listed.body["credentials"][0]["counter"], 1);
    let refused = app.delete(&path, Some(&token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let removed = app.delete(&path, Some(&strong)).await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    app.delete(&path, Some(&strong))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let kinds = app.event_kinds(&strong).await;
    for kind in ["webauthn_enrolled", "mfa_succeeded", "webauthn_removed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn a_passkey_signs_in_without_a_password_and_only_it_opens_the_vault(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("cleo@example.com").await;
    let mut passkey = SoftPasskey::new(true);
    let (finished, handle) = app.add_passkey(&token, &mut passkey).await;
    let id = finished.body["credential_id"].clone();

    let (passkey_token, assertion) = app.passkey_login(&mut passkey, &id, &handle).await;
    let signed_in = app
        .post(
            "/oauth/authorize/passkey",
            None,
            json!({ "passkey_token": passkey_token, "credential": assertion }),
        )
        .await;
    assert_eq!(signed_in.body["acr"], "phr", "{signed_in:?}");
    let strong = signed_in.token();
    let me = app.get("/api/me", Some(&strong)).await;
    assert_eq!(me.body["amr"], json!(["hwk"]), "no password was checked");
    let vault = app.get("/api/vault", Some(&strong)).await;
    assert_eq!(vault.status, StatusCode::OK, "{vault:?}");

    // The same ceremony, or the same assertion in a new one, never signs in again.
    app.post(
        "/oauth/authorize/passkey",
        None,
        json!({ "passkey_token": passkey_token, "credential": assertion }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_ceremony");
    let fresh = app
        .post("/oauth/authorize/passkey/start", None, json!({}))
        .await;
    app.post(
        "/oauth/authorize/passkey",
        None,
        json!({ "passkey_token": fresh.body["passkey_token"], "credential": assertion }),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");

    // The vault after five minutes asks for a fresh phishing-resistant login.
    app.clock.advance(std::time::Duration::from_secs(301));
    let stale = app.get("/api/vault", Some(&strong)).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert!(stale.challenge.unwrap().contains("acr_values=\"phr\""));
}

async fn a_totp_level_token_gets_the_phr_challenge_at_the_vault(backend: &Backend) {
    let app = backend.app().await;
    let (_, key, _) = app.enrolled_user("dan@example.com").await;
    let mfa_token = app.mfa_token("dan@example.com").await;
    let token = app.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(token.body["acr"], "mfa");
    let refused = app.get("/api/vault", Some(&token.token())).await;
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

async fn an_assertion_answers_one_challenge_once(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("eve@example.com").await;
    let mut key = SoftPasskey::new(true);
    app.add_passkey(&token, &mut key).await;

    let mfa_token = app.mfa_token("eve@example.com").await;
    let options = app
        .post(
            "/oauth/authorize/mfa/webauthn/start",
            None,
            json!({ "mfa_token": mfa_token }),
        )
        .await;
    let credential = key
        .do_authentication(app.origin.clone(), request_options(&options.body))
        .unwrap();
    let proof = json!({ "method": "webauthn", "credential": credential });
    app.mfa_step(&mfa_token, proof.clone()).await.token();
    app.mfa_step(&mfa_token, proof.clone())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");

    // Replayed into a new login: its challenge is not the one signed.
    let replay_token = app.mfa_token("eve@example.com").await;
    app.post(
        "/oauth/authorize/mfa/webauthn/start",
        None,
        json!({ "mfa_token": replay_token }),
    )
    .await;
    app.mfa_step(&replay_token, proof)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let kinds = app.event_kinds(&token).await;
    assert!(kinds.iter().any(|k| k == "mfa_failed"), "{kinds:?}");

    // An unknown mfa_token gets no options.
    app.post(
        "/oauth/authorize/mfa/webauthn/start",
        None,
        json!({ "mfa_token": "nope" }),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_token");
}

async fn a_wrong_origin_is_refused(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("fay@example.com").await;
    let started = app
        .post("/api/mfa/webauthn/register/start", Some(&token), json!({}))
        .await;
    // Another origin under the same rp_id (another port of localhost): the authenticator signs,
    // the server refuses.
    let evil = Url::parse("http://localhost:4000").unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(evil, creation_options(&started.body))
        .unwrap();
    app.post(
        "/api/mfa/webauthn/register/finish",
        Some(&token),
        json!({ "registration_token": started.body["registration_token"], "credential": credential }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_credential");
    let listed = app.get("/api/mfa/webauthn/credentials", Some(&token)).await;
    assert_eq!(listed.body["credentials"], json!([]));
}

async fn a_cloned_security_key_is_refused_and_audited(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("gil@example.com").await;
    let (mut original, _) = SoftToken::new(true).unwrap();
    let (finished, handle) = app.add_passkey(&token, &mut original).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    let mut clone = SoftToken::from_cbor(&original.to_cbor().unwrap()).unwrap();
    for _ in 0..2 {
        app.second_factor("gil@example.com", &mut clone)
            .await
            .token();
    }
    app.second_factor("gil@example.com", &mut original)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    let kinds = app.event_kinds(&token).await;
    assert!(
        kinds.iter().any(|k| k == "webauthn_clone_suspected"),
        "{kinds:?}"
    );
    // The credential is disabled: listed as such, and accepted from neither copy any more.
    let listed = app.get("/api/mfa/factors", Some(&token)).await;
    let factor = &listed.body["factors"][0];
    assert_eq!(factor["kind"], "webauthn", "{listed:?}");
    assert_eq!(factor["status"], "disabled", "{listed:?}");
    assert_eq!(factor["active"], false, "{listed:?}");
    let id = finished.body["credential_id"].clone();
    for authenticator in [&mut clone, &mut original] {
        let (passkey_token, assertion) = app.passkey_login(authenticator, &id, &handle).await;
        app.post(
            "/oauth/authorize/passkey",
            None,
            json!({ "passkey_token": passkey_token, "credential": assertion }),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    }
}

/// A suspected clone disables the credential until it is removed and an authenticator enrolled
/// anew; the user's other factor goes on working meanwhile.
async fn a_suspected_clone_is_disabled_until_enrolled_anew(backend: &Backend) {
    let app = backend.app().await;
    let (_, key, _) = app.enrolled_user("jo@example.com").await;
    let fresh = app.fresh_mfa_token("jo@example.com", &key).await;
    let (mut original, _) = SoftToken::new(true).unwrap();
    let (finished, _) = app.add_passkey(&fresh, &mut original).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    let id = finished.body["credential_id"].as_str().unwrap().to_owned();
    let mut clone = SoftToken::from_cbor(&original.to_cbor().unwrap()).unwrap();
    app.second_factor("jo@example.com", &mut clone)
        .await
        .token();
    app.second_factor("jo@example.com", &mut original)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");

    // Listed as disabled, audited.
    let listed = app.get("/api/mfa/factors", Some(&fresh)).await;
    let passkey = listed.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|factor| factor["id"] == id.as_str())
        .unwrap_or_else(|| panic!("the passkey is listed: {listed:?}"))
        .clone();
    assert_eq!(passkey["status"], "disabled", "{passkey}");
    assert_eq!(passkey["active"], false, "{passkey}");
    let events = app.event_kinds(&fresh).await;
    assert!(
        events.iter().any(|kind| kind == "webauthn_clone_suspected"),
        "{events:?}"
    );

    // No longer offered, and no challenge is made for it.
    let login = app.login("jo@example.com").await;
    assert_eq!(
        login.body["methods"],
        json!(["totp", "backup_code"]),
        "{login:?}"
    );
    let mfa_token = login.body["mfa_token"].as_str().unwrap();
    app.post(
        "/oauth/authorize/mfa/webauthn/start",
        None,
        json!({ "mfa_token": mfa_token }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "not_enrolled");
    // The app still signs in.
    let token = app.mfa_step_with_code(mfa_token, &key).await.token();
    app.clock.advance(std::time::Duration::from_secs(30));

    // Removed (with a fresh second factor), then registered anew: the authenticator works again.
    let removed = app
        .delete(&format!("/api/mfa/webauthn/credentials/{id}"), Some(&token))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    let (again, _) = app.add_passkey(&token, &mut original).await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    let signed_in = app.second_factor("jo@example.com", &mut original).await;
    assert_eq!(signed_in.body["acr"], "phr", "{signed_in:?}");
}

async fn bad_webauthn_input_is_a_json_400(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("hal@example.com").await;
    app.post(
        "/api/mfa/webauthn/register/finish",
        Some(&token),
        json!({ "registration_token": "x", "credential": {"id": 7} }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let started = app
        .post("/api/mfa/webauthn/register/start", Some(&token), json!({}))
        .await;
    let credential = SoftPasskey::new(true)
        .do_registration(app.origin.clone(), creation_options(&started.body))
        .unwrap();
    app.post(
        "/api/mfa/webauthn/register/finish",
        Some(&token),
        json!({ "registration_token": "not the token", "credential": credential }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_ceremony");
    let shapeless = app
        .post(
            "/oauth/authorize/passkey",
            None,
            json!({ "passkey_token": "x" }),
        )
        .await;
    shapeless.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(
        shapeless.body["error_description"], "missing field credential",
        "{shapeless:?}"
    );
    let anonymous = app
        .post("/api/mfa/webauthn/register/start", None, json!({}))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn a_signed_in_user_steps_up_with_a_passkey(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("ida@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, _) = app.add_passkey(&token, &mut key).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    // The password-level token does not open the vault; its holder steps up with the passkey.
    let refused = app.get("/api/vault", Some(&token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let step = app
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
    let proof = app.assertion_for(&mfa_token, &mut key).await;
    let stepped = app.mfa_step(&mfa_token, proof).await;
    assert_eq!(stepped.body["acr"], "phr", "{stepped:?}");
    let strong = stepped.token();
    let me = app.get("/api/me", Some(&strong)).await;
    assert_eq!(
        me.body["sub"],
        app.get("/api/me", Some(&token)).await.body["sub"]
    );
    assert_eq!(me.body["amr"], json!(["pwd", "hwk"]));
    let vault = app.get("/api/vault", Some(&strong)).await;
    assert_eq!(vault.status, StatusCode::OK, "{vault:?}");
    // Without a token there is no step-up.
    app.post("/oauth/authorize", None, json!({"acr_values": "phr"}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn the_pkce_redirect_works_with_a_passkey_as_second_factor_and_passwordless(
    backend: &Backend,
) {
    let app = backend.app().await;
    let token = app.password_token("jon@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, handle) = app.add_passkey(&token, &mut key).await;
    let id = finished.body["credential_id"].clone();

    // Password, then the passkey as the second factor: the step ends in the redirect.
    let login = app
        .post(
            "/oauth/authorize",
            None,
            with_pkce(json!({"username": "jon@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    assert!(login.body.get("code").is_none());
    let mfa_token = login.body["mfa_token"].as_str().unwrap().to_owned();
    let mut proof = app.assertion_for(&mfa_token, &mut key).await;
    proof["mfa_token"] = json!(mfa_token);
    let code = app.redirected_code("/oauth/authorize/mfa", proof).await;
    let exchanged = app.redeem_code(&code).await;
    assert_eq!(exchanged.body["acr"], "phr", "{exchanged:?}");
    let me = app.get("/api/me", Some(&exchanged.token())).await;
    assert_eq!(me.body["amr"], json!(["pwd", "hwk"]));
    app.redeem_code(&code)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // Passwordless: the passkey alone, the same redirect.
    let (passkey_token, assertion) = app.passkey_login(&mut key, &id, &handle).await;
    let code = app
        .redirected_code(
            "/oauth/authorize/passkey",
            with_pkce(json!({ "passkey_token": passkey_token, "credential": assertion })),
        )
        .await;
    let exchanged = app.redeem_code(&code).await;
    assert_eq!(exchanged.body["acr"], "phr", "{exchanged:?}");
    let me = app.get("/api/me", Some(&exchanged.token())).await;
    assert_eq!(me.body["amr"], json!(["hwk"]));
}

async fn a_device_remembered_after_a_passkey_skips_the_step(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("kim@example.com").await;
    let mut key = SoftPasskey::new(true);
    app.add_passkey(&token, &mut key).await;
    let mfa_token = app.mfa_token("kim@example.com").await;
    let proof = app.assertion_for(&mfa_token, &mut key).await;
    let (answer, cookie) = app.remembered_step(&mfa_token, proof).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["acr"], "phr");
    // The next password login on this device gets a token without the step, at `mfa` (the
    // device vouches for a second factor, not for a phishing-resistant one now).
    let login = app.login_with_cookie("kim@example.com", &cookie).await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    assert!(login.body.get("mfa_required").is_none(), "{login:?}");
    assert_eq!(login.body["acr"], "mfa");
    let vault = app.get("/api/vault", Some(&login.token())).await;
    assert_eq!(vault.status, StatusCode::UNAUTHORIZED, "{vault:?}");
    // Removing the passkey (with a fresh factor) revokes the device.
    let mfa_token = app.mfa_token("kim@example.com").await;
    let proof = app.assertion_for(&mfa_token, &mut key).await;
    let strong = app.mfa_step(&mfa_token, proof).await.token();
    let listed = app
        .get("/api/mfa/webauthn/credentials", Some(&strong))
        .await;
    let id = listed.body["credentials"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let removed = app
        .delete(
            &format!("/api/mfa/webauthn/credentials/{id}"),
            Some(&strong),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{removed:?}");
    let login = app.login_with_cookie("kim@example.com", &cookie).await;
    assert_eq!(
        login.body["acr"], "pwd",
        "no factor left, the device vouches for nothing"
    );
}

/// Fires `count` copies of `body` at `path` at once; returns every status.
async fn all_at_once(app: &App, path: &str, body: &Value, count: usize) -> Vec<StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let request = app.request(reqwest::Method::POST, path, None).json(body);
        tasks.spawn(async move { request.send().await.unwrap().status() });
    }
    tasks.join_all().await
}

async fn one_mfa_ceremony_finished_100_times_at_once_succeeds_once(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("lea@example.com").await;
    let mut key = SoftPasskey::new(true);
    app.add_passkey(&token, &mut key).await;
    let mfa_token = app.mfa_token("lea@example.com").await;
    let mut proof = app.assertion_for(&mfa_token, &mut key).await;
    proof["mfa_token"] = json!(mfa_token);
    let statuses = all_at_once(&app, "/oauth/authorize/mfa", &proof, 100).await;
    let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(wins, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || s.is_client_error()),
        "{statuses:?}"
    );
}

async fn one_passwordless_ceremony_finished_100_times_at_once_succeeds_once(backend: &Backend) {
    let app = backend.app().await;
    let token = app.password_token("max@example.com").await;
    let mut key = SoftPasskey::new(true);
    let (finished, handle) = app.add_passkey(&token, &mut key).await;
    let id = finished.body["credential_id"].clone();
    let (passkey_token, assertion) = app.passkey_login(&mut key, &id, &handle).await;
    let body = json!({ "passkey_token": passkey_token, "credential": assertion });
    let statuses = all_at_once(&app, "/oauth/authorize/passkey", &body, 100).await;
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

/// The app reached at an https origin whose registrable parent is another valid `rp_id`: an
/// authenticator told `example.com` instead of the app's `app.example.com` signs for the wrong
/// relying party at the right origin.
const APP_ORIGIN: &str = "https://app.example.com";
const PARENT_RP_ID: &str = "example.com";

#[tokio::test]
async fn a_registration_or_assertion_for_another_rp_id_is_refused_and_audited() {
    let app = sqlite_app_with(Options {
        public_url: APP_ORIGIN.to_owned(),
        ..Options::default()
    })
    .await;
    let origin = Url::parse(APP_ORIGIN).unwrap();
    let token = app.password_token("ned@example.com").await;

    // Registration: the attestation's rpIdHash is example.com's.
    let started = app
        .post("/api/mfa/webauthn/register/start", Some(&token), json!({}))
        .await;
    assert_eq!(started.body["publicKey"]["rp"]["id"], "app.example.com");
    let mut options = started.body.clone();
    options["publicKey"]["rp"]["id"] = json!(PARENT_RP_ID);
    let mut key = SoftPasskey::new(true);
    let credential = key
        .do_registration(origin.clone(), creation_options(&options))
        .unwrap();
    app.post(
        "/api/mfa/webauthn/register/finish",
        Some(&token),
        json!({ "registration_token": started.body["registration_token"], "credential": credential }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_credential");
    let listed = app.get("/api/mfa/webauthn/credentials", Some(&token)).await;
    assert_eq!(listed.body["credentials"], json!([]));

    // The same authenticator registered properly: right rp_id, it works.
    let started = app
        .post("/api/mfa/webauthn/register/start", Some(&token), json!({}))
        .await;
    let credential = key
        .do_registration(origin.clone(), creation_options(&started.body))
        .unwrap();
    let finished = app
        .post(
            "/api/mfa/webauthn/register/finish",
            Some(&token),
            json!({ "registration_token": started.body["registration_token"], "credential": credential }),
        )
        .await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");

    // An assertion whose rpIdHash is example.com's, at the right origin: refused.
    let mfa_token = app.mfa_token("ned@example.com").await;
    let options = app
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
        .do_authentication(origin.clone(), request_options(&wrong))
        .unwrap();
    app.mfa_step(
        &mfa_token,
        json!({ "method": "webauthn", "credential": assertion }),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
    // The challenge was used up by the refused assertion; a new one for the same mfa_token
    // (a wrong proof does not spend the token), answered for the right rp_id, passes.
    let options = app
        .post(
            "/oauth/authorize/mfa/webauthn/start",
            None,
            json!({ "mfa_token": mfa_token }),
        )
        .await;
    let assertion = key
        .do_authentication(origin, request_options(&options.body))
        .unwrap();
    let signed_in = app
        .mfa_step(
            &mfa_token,
            json!({ "method": "webauthn", "credential": assertion }),
        )
        .await;
    assert_eq!(signed_in.body["acr"], "phr", "{signed_in:?}");

    let events = app.get("/api/mfa/events", Some(&signed_in.token())).await;
    let failed: Vec<&Value> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "mfa_failed")
        .collect();
    assert_eq!(failed.len(), 2, "one per refused ceremony: {failed:?}");
}
