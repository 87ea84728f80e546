//! The WebAuthn factor on every store backend, with the soft authenticators of
//! `webauthn-authenticator-rs`: registration, the MFA step at `phr`, passwordless login, single-use
//! ceremonies under 100-way races, origins and the `rp_id`, a cloned authenticator (refused,
//! audited, notified, disabled), credential ids held by one account, passwordless failures that
//! never spend the owner's budget, and registrations or sign-ins racing a reset.

#[macro_use]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use stepup_mfa::webauthn::{CEREMONY_TTL, RelyingParty};
use stepup_mfa::{
    AttemptPolicy, AuditEvent, ClientInfo, Credential, LoginStep, Mfa, MfaError, Notifier,
};
use stepup_store::{CredentialStatus, Enrollment};
use support::*;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;

on_every_store!(
    a_passkey_registers_and_completes_an_mfa_step_at_phr,
    a_registration_ceremony_is_single_use_and_bound_to_its_user,
    a_wrong_origin_is_refused,
    a_registration_or_assertion_for_another_rp_id_is_refused,
    a_challenge_is_answered_once_and_an_assertion_never_replays,
    stale_ceremonies_are_refused,
    a_hundred_concurrent_finishes_of_one_mfa_ceremony_give_one_success,
    a_hundred_concurrent_finishes_of_one_passwordless_ceremony_give_one_success,
    concurrent_prepares_of_one_step_answer_4xx,
    a_cloned_authenticator_is_refused_audited_and_disabled,
    a_credential_id_another_account_holds_is_refused,
    a_passkey_signs_in_without_a_password,
    passwordless_failures_never_spend_the_owners_budget,
    the_last_passkey_beside_sms_stays_where_restricted_factors_need_company,
    passkeys_are_not_offered_by_an_engine_without_the_factor,
    a_registration_started_before_a_reset_never_lands_after_it,
    a_reset_landing_while_a_passkey_signs_in_voids_the_login,
);

on_every_store!(
    redis: a_hundred_concurrent_finishes_of_one_mfa_ceremony_give_one_success,
    a_hundred_concurrent_finishes_of_one_passwordless_ceremony_give_one_success,
);

async fn finish(
    mfa: &Mfa,
    token: &str,
    proof: &Value,
) -> Result<stepup_mfa::CompletedChallenge, MfaError> {
    mfa.finish_challenge(token, "webauthn", proof, &ClientInfo::default())
        .await
}

async fn sign_in(mfa: &Mfa, proof: &Value) -> Result<stepup_mfa::Login, MfaError> {
    mfa.finish_sign_in("webauthn", proof, None, &ClientInfo::default())
        .await
}

/// The user's stored credential `id` of kind `webauthn`.
async fn passkey(h: &Harness, user: &str, id: &str) -> Credential {
    stored_credentials(h.factors(), user, "webauthn")
        .await
        .into_iter()
        .find(|credential| credential.id == id)
        .expect("the passkey is stored")
}

async fn a_passkey_registers_and_completes_an_mfa_step_at_phr(h: Harness) {
    let mfa = h.mfa.clone();
    let mut key = SoftPasskey::new(true);
    let (enrolled, _) = h.register_passkey(&mfa, "ada", &mut key, Some("key")).await;
    assert_eq!(enrolled.kind, "webauthn");
    assert_eq!(
        enrolled.backup_codes.len(),
        10,
        "the first factor brings the codes"
    );
    assert!(mfa.is_enrolled("ada").await.unwrap());
    assert_eq!(
        mfa.methods("ada").await.unwrap(),
        ["webauthn", "backup_code"]
    );
    let summary = mfa.factor_summary("ada").await.unwrap();
    assert_eq!(summary.factors.len(), 1);
    let listed = &summary.factors[0];
    assert_eq!(listed.id, enrolled.credential_id);
    assert_eq!(listed.label.as_deref(), Some("key"));
    assert_eq!(
        (listed.kind.as_str(), listed.status),
        ("webauthn", "active")
    );
    assert!(!listed.restricted);
    assert_eq!(listed.detail["counter"], 0);

    let (token, proof) = h.passkey_assertion(&mfa, "ada", &mut key).await;
    let done = finish(&mfa, &token, &proof).await.unwrap();
    assert_eq!(done.subject, "ada");
    assert_eq!(done.method, "webauthn");
    assert_eq!(done.amr, ["pwd", "hwk"]);
    assert_eq!(
        done.acr, "phr",
        "user verification makes it phishing-resistant"
    );
    let summary = mfa.factor_summary("ada").await.unwrap();
    assert_eq!(summary.factors[0].detail["counter"], 1);
    assert_eq!(summary.factors[0].last_used_at, Some(h.now()));

    // A second key brings no new codes; the first is excluded from its registration.
    let started = mfa
        .start_enrollment("ada", "webauthn", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(
        started["publicKey"]["excludeCredentials"][0]["id"],
        json!(enrolled.credential_id)
    );
    let (second, _) = h
        .register_passkey(&mfa, "ada", &mut SoftPasskey::new(true), None)
        .await;
    assert!(second.backup_codes.is_empty());
    assert_eq!(
        mfa.methods("ada").await.unwrap(),
        ["webauthn", "backup_code"]
    );

    assert!(
        mfa.rename_factor("ada", "webauthn", &second.credential_id, Some("spare"))
            .await
            .unwrap()
    );
    assert!(matches!(
        mfa.rename_factor("ada", "webauthn", &second.credential_id, Some(""))
            .await,
        Err(MfaError::InvalidLabel(_))
    ));
    assert!(
        !mfa.rename_factor("ada", "webauthn", "nope", Some("x"))
            .await
            .unwrap()
    );
    assert_eq!(
        passkey(&h, "ada", &second.credential_id)
            .await
            .label
            .as_deref(),
        Some("spare")
    );
    assert!(
        mfa.remove_factor("ada", "webauthn", &second.credential_id)
            .await
            .unwrap()
    );
    assert!(
        !mfa.remove_factor("ada", "webauthn", &second.credential_id)
            .await
            .unwrap()
    );
    assert_eq!(mfa.remaining_backup_codes("ada").await.unwrap(), 10);
    assert!(
        mfa.remove_factor("ada", "webauthn", &enrolled.credential_id)
            .await
            .unwrap()
    );
    assert!(!mfa.is_enrolled("ada").await.unwrap());
    assert_eq!(mfa.remaining_backup_codes("ada").await.unwrap(), 0);
    let kinds = event_kinds(&mfa, "ada").await;
    for kind in [
        "webauthn_enrollment_started",
        "webauthn_enrolled",
        "mfa_succeeded",
        "webauthn_removed",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn a_registration_ceremony_is_single_use_and_bound_to_its_user(h: Harness) {
    let mfa = &h.mfa;
    let started = mfa
        .start_enrollment("bo", "webauthn", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(origin(), creation_options(&started))
        .unwrap();
    let input = json!({
        "registration_token": started["registration_token"],
        "credential": credential,
    });
    assert!(matches!(
        mfa.finish_enrollment("eve", "webauthn", &input, &ClientInfo::default())
            .await,
        Err(MfaError::InvalidCeremony(_))
    ));
    // The wrong user used it up.
    assert!(matches!(
        mfa.finish_enrollment("bo", "webauthn", &input, &ClientInfo::default())
            .await,
        Err(MfaError::InvalidCeremony(_))
    ));
    assert!(!mfa.is_enrolled("bo").await.unwrap());
    assert!(!mfa.is_enrolled("eve").await.unwrap());
    // A made-up token, and a body of the wrong shape (named from the schema).
    let made_up = json!({"registration_token": "nope", "credential": credential});
    assert!(matches!(
        mfa.finish_enrollment("bo", "webauthn", &made_up, &ClientInfo::default())
            .await,
        Err(MfaError::InvalidCeremony(_))
    ));
    let refused = mfa
        .finish_enrollment(
            "bo",
            "webauthn",
            &json!({"credential": credential}),
            &ClientInfo::default(),
        )
        .await;
    assert_eq!(
        refused.unwrap_err().description(),
        "missing field registration_token"
    );
}

async fn a_wrong_origin_is_refused(h: Harness) {
    let mfa = &h.mfa;
    let started = mfa
        .start_enrollment("cy", "webauthn", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    // A sibling site within the rp_id: the authenticator answers it, the server must not.
    let evil = url::Url::parse("https://evil.example.com").unwrap();
    let mut key = SoftPasskey::new(true);
    let credential = key
        .do_registration(evil.clone(), creation_options(&started))
        .unwrap();
    assert_refused(
        mfa.finish_enrollment(
            "cy",
            "webauthn",
            &json!({"registration_token": started["registration_token"], "credential": credential}),
            &ClientInfo::default(),
        )
        .await,
        400,
        "invalid_credential",
    );
    assert!(mfa.factor_summary("cy").await.unwrap().factors.is_empty());
    h.register_passkey(mfa, "cy", &mut key, None).await;
    let token = mfa_token(mfa, "cy").await;
    let options = mfa
        .prepare_challenge(&token, "webauthn", &ClientInfo::default())
        .await
        .unwrap();
    let credential = key
        .do_authentication(evil, request_options(&options))
        .unwrap();
    assert!(matches!(
        finish(mfa, &token, &json!({"credential": credential})).await,
        Err(MfaError::InvalidCode(_))
    ));
}

/// An authenticator told another relying party id (the parent of ours is a valid one) signs
/// for it at the right origin: the registration and the assertion are refused.
async fn a_registration_or_assertion_for_another_rp_id_is_refused(h: Harness) {
    let mfa = &h.mfa;
    let started = mfa
        .start_enrollment("ned", "webauthn", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(started["publicKey"]["rp"]["id"], RP_ID);
    let mut wrong = started.clone();
    wrong["publicKey"]["rp"]["id"] = json!("login.example.com");
    let mut key = SoftPasskey::new(true);
    let credential = key
        .do_registration(origin(), creation_options(&wrong))
        .unwrap();
    assert_refused(
        mfa.finish_enrollment(
            "ned",
            "webauthn",
            &json!({"registration_token": started["registration_token"], "credential": credential}),
            &ClientInfo::default(),
        )
        .await,
        400,
        "invalid_credential",
    );
    assert!(mfa.factor_summary("ned").await.unwrap().factors.is_empty());
    // Registered properly, the same authenticator works…
    h.register_passkey(mfa, "ned", &mut key, None).await;
    // …but not for another rp_id.
    let token = mfa_token(mfa, "ned").await;
    let options = mfa
        .prepare_challenge(&token, "webauthn", &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(options["publicKey"]["rpId"], RP_ID);
    let mut wrong = options.clone();
    wrong["publicKey"]["rpId"] = json!("login.example.com");
    let assertion = key
        .do_authentication(origin(), request_options(&wrong))
        .unwrap();
    assert!(matches!(
        finish(mfa, &token, &json!({"credential": assertion})).await,
        Err(MfaError::InvalidCode(_))
    ));
    // The challenge was used up by the refused assertion; a new one for the same mfa_token (a
    // wrong proof does not spend the token), answered for the right rp_id, passes.
    let options = mfa
        .prepare_challenge(&token, "webauthn", &ClientInfo::default())
        .await
        .unwrap();
    let assertion = key
        .do_authentication(origin(), request_options(&options))
        .unwrap();
    let done = finish(mfa, &token, &json!({"credential": assertion}))
        .await
        .unwrap();
    assert_eq!(done.acr, "phr");
    // The refused registration and the refused assertion are both audited failures.
    assert_eq!(
        events(mfa, "ned", "mfa_failed").await,
        [
            json!({"method": "webauthn_setup"}),
            json!({"method": "webauthn"})
        ]
    );
}

async fn a_challenge_is_answered_once_and_an_assertion_never_replays(h: Harness) {
    let mfa = &h.mfa;
    let mut key = SoftPasskey::new(true);
    let (enrolled, _) = h.register_passkey(mfa, "di", &mut key, None).await;
    let (token, proof) = h.passkey_assertion(mfa, "di", &mut key).await;
    finish(mfa, &token, &proof).await.unwrap();
    assert!(matches!(
        finish(mfa, &token, &proof).await,
        Err(MfaError::InvalidMfaToken(_))
    ));
    // The same assertion against a new challenge.
    let token = mfa_token(mfa, "di").await;
    mfa.prepare_challenge(&token, "webauthn", &ClientInfo::default())
        .await
        .unwrap();
    assert!(matches!(
        finish(mfa, &token, &proof).await,
        Err(MfaError::InvalidCode(_))
    ));
    // Without a started challenge there is nothing to answer.
    assert!(matches!(
        finish(mfa, &token, &proof).await,
        Err(MfaError::InvalidCode(_))
    ));
    // Replays never make the credential look cloned: it stays active and usable.
    assert!(
        events(mfa, "di", "webauthn_clone_suspected")
            .await
            .is_empty()
    );
    assert_eq!(
        passkey(&h, "di", &enrolled.credential_id).await.status,
        CredentialStatus::Active
    );
    let (token, proof) = h.passkey_assertion(mfa, "di", &mut key).await;
    finish(mfa, &token, &proof).await.unwrap();
}

async fn stale_ceremonies_are_refused(h: Harness) {
    let mfa = &h.mfa;
    let mut key = SoftPasskey::new(true);
    let (enrolled, handle) = h.register_passkey(mfa, "ed", &mut key, None).await;
    // Passwordless.
    let proof = h
        .passwordless_proof(mfa, &mut key, &enrolled.credential_id, &handle)
        .await;
    h.clock.advance(CEREMONY_TTL);
    assert!(matches!(
        sign_in(mfa, &proof).await,
        Err(MfaError::InvalidCeremony(_))
    ));
    // A registration.
    let started = mfa
        .start_enrollment("ed", "webauthn", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(origin(), creation_options(&started))
        .unwrap();
    h.clock.advance(CEREMONY_TTL);
    assert!(matches!(
        mfa.finish_enrollment(
            "ed",
            "webauthn",
            &json!({"registration_token": started["registration_token"], "credential": credential}),
            &ClientInfo::default()
        )
        .await,
        Err(MfaError::InvalidCeremony(_))
    ));
    assert_eq!(mfa.factor_summary("ed").await.unwrap().factors.len(), 1);
}

async fn a_hundred_concurrent_finishes_of_one_mfa_ceremony_give_one_success(h: Harness) {
    let mfa = h.unlimited();
    let mut key = SoftPasskey::new(true);
    h.register_passkey(&mfa, "fi", &mut key, None).await;
    let (token, proof) = h.passkey_assertion(&mfa, "fi", &mut key).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (mfa, token, proof) = (mfa.clone(), token.clone(), proof.clone());
        tasks.spawn(async move { finish(&mfa, &token, &proof).await });
    }
    let mut successes = 0;
    for outcome in tasks.join_all().await {
        match outcome {
            Ok(_) => successes += 1,
            Err(error) => assert!(error.status().is_client_error(), "{error:?}"),
        }
    }
    assert_eq!(successes, 1);
}

async fn a_hundred_concurrent_finishes_of_one_passwordless_ceremony_give_one_success(h: Harness) {
    let mfa = h.unlimited();
    let mut key = SoftPasskey::new(true);
    let (enrolled, handle) = h.register_passkey(&mfa, "gil", &mut key, None).await;
    let proof = h
        .passwordless_proof(&mfa, &mut key, &enrolled.credential_id, &handle)
        .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (mfa, proof) = (mfa.clone(), proof.clone());
        tasks.spawn(async move {
            mfa.finish_sign_in("webauthn", &proof, None, &nth_client(i))
                .await
        });
    }
    let mut successes = 0;
    for outcome in tasks.join_all().await {
        match outcome {
            Ok(login) => {
                assert_eq!(login.authentication.subject, "gil");
                successes += 1;
            }
            Err(error) => assert!(error.status().is_client_error(), "{error:?}"),
        }
    }
    assert_eq!(successes, 1);
}

/// Many requests preparing one step's WebAuthn challenge at once: each gets options or a `409`
/// (never a 5xx), and the step can still be completed.
async fn concurrent_prepares_of_one_step_answer_4xx(h: Harness) {
    let mfa = h.unlimited();
    let mut key = SoftPasskey::new(true);
    h.register_passkey(&mfa, "hub", &mut key, None).await;
    let token = mfa_token(&mfa, "hub").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let (mfa, token) = (mfa.clone(), token.clone());
        tasks.spawn(async move {
            mfa.prepare_challenge(&token, "webauthn", &ClientInfo::default())
                .await
        });
    }
    let mut prepared = 0;
    for outcome in tasks.join_all().await {
        match outcome {
            Ok(options) => {
                assert!(options["publicKey"]["challenge"].is_string());
                prepared += 1;
            }
            Err(error) => {
                assert_eq!(error.status().as_u16(), 409, "{error:?}");
                assert_eq!(error.code(), "challenge_in_progress");
            }
        }
    }
    assert!(prepared >= 1);
    let options = mfa
        .prepare_challenge(&token, "webauthn", &ClientInfo::default())
        .await
        .unwrap();
    let assertion = key
        .do_authentication(origin(), request_options(&options))
        .unwrap();
    finish(&mfa, &token, &json!({"credential": assertion}))
        .await
        .unwrap();
}

/// Collects what a `Notifier` hears.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<String>>>);

#[async_trait::async_trait]
impl Notifier for Heard {
    async fn factor_changed(&self, _user: &str, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.kind().into_owned());
    }
}

/// A security key whose counter goes back (a clone answered first): the assertion is refused,
/// audited and notified, and the credential is disabled: listed as such, never offered nor
/// accepted again (the clone included), until it is removed and a key registered anew. The user
/// still needs a second factor meanwhile.
async fn a_cloned_authenticator_is_refused_audited_and_disabled(h: Harness) {
    let heard = Heard::default();
    let mfa = h.mfa.clone().with_notifier(Arc::new(heard.clone()));
    let (mut original, _) = SoftToken::new(true).unwrap();
    let (enrolled, handle) = h.register_passkey(&mfa, "gus", &mut original, None).await;
    let mut clone = SoftToken::from_cbor(&original.to_cbor().unwrap()).unwrap();
    for _ in 0..2 {
        let (token, proof) = h.passkey_assertion(&mfa, "gus", &mut clone).await;
        finish(&mfa, &token, &proof).await.unwrap();
    }
    let (token, proof) = h.passkey_assertion(&mfa, "gus", &mut original).await;
    assert!(matches!(
        finish(&mfa, &token, &proof).await,
        Err(MfaError::InvalidCode(_))
    ));
    assert_eq!(
        events(&mfa, "gus", "webauthn_clone_suspected").await,
        [json!({"credential_id": enrolled.credential_id})]
    );
    assert!(
        heard
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|kind| kind == "webauthn_clone_suspected"),
        "the user is told"
    );
    // Listed as disabled.
    let summary = mfa.factor_summary("gus").await.unwrap();
    assert_eq!(summary.factors.len(), 1);
    assert_eq!(summary.factors[0].status, "disabled");
    assert!(!summary.factors[0].active);
    assert_eq!(
        serde_json::to_value(&summary).unwrap()["factors"][0]["status"],
        "disabled"
    );
    // Never offered nor accepted again, not even from the clone, passwordless or not.
    assert_eq!(mfa.methods("gus").await.unwrap(), ["backup_code"]);
    let token = mfa_token(&mfa, "gus").await;
    assert!(matches!(
        mfa.prepare_challenge(&token, "webauthn", &ClientInfo::default())
            .await,
        Err(MfaError::NotEnrolled(_))
    ));
    let proof = h
        .passwordless_proof(&mfa, &mut clone, &enrolled.credential_id, &handle)
        .await;
    assert!(matches!(
        sign_in(&mfa, &proof).await,
        Err(MfaError::InvalidCode(_))
    ));
    // The user is still enrolled: the password alone does not sign in.
    assert!(mfa.is_enrolled("gus").await.unwrap());
    let LoginStep::MfaRequired(challenge) = h.sign_in(&mfa, "gus").await.unwrap() else {
        panic!("a user with a disabled passkey still needs a second factor");
    };
    assert_eq!(challenge.methods, ["backup_code"]);
    // Removed, and a new key registered: usable again.
    assert!(
        mfa.remove_factor("gus", "webauthn", &enrolled.credential_id)
            .await
            .unwrap()
    );
    let (mut fresh, _) = SoftToken::new(true).unwrap();
    h.register_passkey(&mfa, "gus", &mut fresh, None).await;
    let (token, proof) = h.passkey_assertion(&mfa, "gus", &mut fresh).await;
    finish(&mfa, &token, &proof).await.unwrap();
}

async fn a_credential_id_another_account_holds_is_refused(h: Harness) {
    let mfa = &h.mfa;
    let started = mfa
        .start_enrollment("ike", "webauthn", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(origin(), creation_options(&started))
        .unwrap();
    // Another account already holds the id the authenticator made.
    let id = URL_SAFE_NO_PAD.encode(&credential.raw_id);
    let held = Credential {
        user: "eve".to_owned(),
        kind: "webauthn".to_owned(),
        id: id.clone(),
        status: CredentialStatus::Pending,
        label: None,
        payload: "{}".to_owned(),
        counter: 0,
        created_at: T0,
        last_used_at: None,
        generation: 0,
    };
    assert!(
        h.factors()
            .put_pending(held, Enrollment::Many)
            .await
            .unwrap()
    );
    assert_refused(
        mfa.finish_enrollment(
            "ike",
            "webauthn",
            &json!({"registration_token": started["registration_token"], "credential": credential}),
            &ClientInfo::default(),
        )
        .await,
        409,
        "credential_exists",
    );
    assert!(!mfa.is_enrolled("ike").await.unwrap());
    assert!(h.factors().credentials("ike").await.unwrap().is_empty());
    assert_eq!(mfa.remaining_backup_codes("ike").await.unwrap(), 0);
    let holder = h
        .factors()
        .credential_by_id("webauthn", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder.user, "eve");
}

async fn a_passkey_signs_in_without_a_password(h: Harness) {
    let mfa = &h.mfa;
    let mut key = SoftPasskey::new(true);
    let (enrolled, handle) = h.register_passkey(mfa, "hal", &mut key, None).await;
    let started = mfa
        .start_sign_in("webauthn", &ClientInfo::default())
        .await
        .unwrap();
    assert!(started["passkey_token"].is_string());
    assert_eq!(started["publicKey"]["rpId"], RP_ID);
    let proof = h
        .passwordless_proof(mfa, &mut key, &enrolled.credential_id, &handle)
        .await;
    let login = sign_in(mfa, &proof).await.unwrap();
    assert_eq!(login.authentication.subject, "hal");
    assert_eq!(login.authentication.amr, ["hwk"], "no password was checked");
    assert_eq!(login.authentication.acr, "phr");
    let token = h.token(mfa, login).await;
    assert!(mfa.check_token(&token).await.unwrap());
    assert!(matches!(
        sign_in(mfa, &proof).await,
        Err(MfaError::InvalidCeremony(_))
    ));
    // The same assertion in a new ceremony: not the challenge it signed.
    let fresh = mfa
        .start_sign_in("webauthn", &ClientInfo::default())
        .await
        .unwrap();
    let mut replayed = proof.clone();
    replayed["passkey_token"] = fresh["passkey_token"].clone();
    assert!(matches!(
        sign_in(mfa, &replayed).await,
        Err(MfaError::InvalidCode(_))
    ));

    // Another user's handle does not name this credential.
    let started = mfa
        .start_enrollment("eve", "webauthn", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    let eves = started["publicKey"]["user"]["id"].clone();
    assert_ne!(eves, handle);
    let proof = h
        .passwordless_proof(mfa, &mut key, &enrolled.credential_id, &eves)
        .await;
    assert!(matches!(
        sign_in(mfa, &proof).await,
        Err(MfaError::InvalidCode(_))
    ));
    // A body of the wrong shape is named, and a made-up ceremony is refused.
    let refused = sign_in(mfa, &json!({"passkey_token": "x"})).await;
    assert!(refused.is_err());
    let mut made_up = h
        .passwordless_proof(mfa, &mut key, &enrolled.credential_id, &handle)
        .await;
    made_up["passkey_token"] = json!("made-up");
    assert!(matches!(
        sign_in(mfa, &made_up).await,
        Err(MfaError::InvalidCeremony(_))
    ));
}

/// A stranger sends garbage passwordless assertions naming the owner's credential (its id and
/// user handle are no secret), more than the limit and under changing `id`s: they are limited per
/// claimed credential (the credential the assertion really names) and per address, never against
/// the owner: the owner's other factors and the passkey as a second factor stay usable, nothing
/// is locked or audited as the owner's failure.
async fn passwordless_failures_never_spend_the_owners_budget(h: Harness) {
    let mfa = h.mfa.clone();
    let (totp, _) = h.enroll_totp(&mfa, "own").await;
    let mut key = SoftPasskey::new(true);
    let (enrolled, handle) = h.register_passkey(&mfa, "own", &mut key, None).await;
    let id = enrolled.credential_id.clone();
    // A real assertion of the key, its signature then tampered with.
    let genuine = h.passwordless_proof(&mfa, &mut key, &id, &handle).await;
    let mut garbage = genuine["credential"].clone();
    garbage["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode([7u8; 72]));
    let stranger = client_at("198.51.100.7");
    let limit = AttemptPolicy::default().max_failures;
    let mut outcomes = Vec::new();
    for attempt in 0..limit + 5 {
        let started = mfa.start_sign_in("webauthn", &stranger).await.unwrap();
        let mut credential = garbage.clone();
        // The `id` a client sends does not choose the budget: the credential named by `rawId`
        // does.
        credential["id"] = json!(format!("decoy-{attempt}"));
        let proof = json!({"passkey_token": started["passkey_token"], "credential": credential});
        outcomes.push(
            mfa.finish_sign_in("webauthn", &proof, None, &stranger)
                .await
                .map(drop),
        );
    }
    let (refused, limited) = outcomes.split_at(usize::try_from(limit).unwrap());
    assert!(
        refused
            .iter()
            .all(|outcome| matches!(outcome, Err(MfaError::InvalidCode(_)))),
        "{refused:?}"
    );
    assert!(
        limited
            .iter()
            .all(|outcome| matches!(outcome, Err(MfaError::RateLimited(_)))),
        "{limited:?}"
    );

    // The owner's budget is untouched: no lockout, no failure, no streak.
    assert!(events(&mfa, "own", "mfa_failed").await.is_empty());
    assert!(events(&mfa, "own", "lockout").await.is_empty());
    assert_eq!(h.factors().failures("own", "webauthn").await.unwrap(), 0);
    assert!(!mfa.is_locked("own", "webauthn").await.unwrap());
    assert_eq!(
        passkey(&h, "own", &id).await.status,
        CredentialStatus::Active
    );
    // The owner's own window is whole: four wrong codes, then the right one.
    for _ in 0..limit - 1 {
        assert!(matches!(
            totp_login(&mfa, "own", &h.wrong_code(&totp)).await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    totp_login(&mfa, "own", &h.code(&totp)).await.unwrap();
    // The passkey as the second factor works.
    let (token, proof) = h.passkey_assertion(&mfa, "own", &mut key).await;
    assert_eq!(finish(&mfa, &token, &proof).await.unwrap().acr, "phr");

    // Passwordless with that credential waits out its own lockout, whoever asks.
    let proof = h.passwordless_proof(&mfa, &mut key, &id, &handle).await;
    retry_after(sign_in(&mfa, &proof).await);
    // Another credential is not limited.
    let mut other_key = SoftPasskey::new(true);
    let (other, other_handle) = h.register_passkey(&mfa, "oth", &mut other_key, None).await;
    let proof = h
        .passwordless_proof(&mfa, &mut other_key, &other.credential_id, &other_handle)
        .await;
    sign_in(&mfa, &proof).await.unwrap();
    // The lockout passes.
    h.clock.advance(WINDOW);
    let proof = h.passwordless_proof(&mfa, &mut key, &id, &handle).await;
    let login = sign_in(&mfa, &proof).await.unwrap();
    assert_eq!(login.authentication.subject, "own");

    // Rotating claimed credentials does not escape the per-address budget.
    let mut refusals = 0;
    for attempt in 0..40 {
        let started = mfa.start_sign_in("webauthn", &stranger).await.unwrap();
        let mut credential = garbage.clone();
        let raw = URL_SAFE_NO_PAD.encode(format!("made-up-credential-{attempt}"));
        credential["id"] = json!(raw);
        credential["rawId"] = json!(raw);
        let proof = json!({"passkey_token": started["passkey_token"], "credential": credential});
        if let Err(MfaError::RateLimited(_)) = mfa
            .finish_sign_in("webauthn", &proof, None, &stranger)
            .await
        {
            refusals += 1;
        }
    }
    assert_eq!(
        refusals, 10,
        "the address budget (30 failures) stops the stranger"
    );
    // The owner, elsewhere, is not.
    h.clock.advance(Duration::from_secs(30));
    totp_login(&mfa, "own", &h.code(&totp)).await.unwrap();
}

async fn the_last_passkey_beside_sms_stays_where_restricted_factors_need_company(h: Harness) {
    let mfa = h.mfa.clone().with_restricted_factor_alone(false);
    let (one, _) = h
        .register_passkey(&mfa, "ivy", &mut SoftPasskey::new(true), None)
        .await;
    let (two, _) = h
        .register_passkey(&mfa, "ivy", &mut SoftPasskey::new(true), None)
        .await;
    h.enroll_sms(&mfa, "ivy").await;

    // With two passkeys, one may go; the last one may not while SMS stays.
    assert!(
        mfa.remove_factor("ivy", "webauthn", &one.credential_id)
            .await
            .unwrap()
    );
    assert_refused(
        mfa.remove_factor("ivy", "webauthn", &two.credential_id)
            .await,
        409,
        "sms_needs_another_factor",
    );
    assert!(mfa.is_enrolled("ivy").await.unwrap());
    // An unknown id is still "no such credential", not a refusal.
    assert!(!mfa.remove_factor("ivy", "webauthn", "nope").await.unwrap());
    // SMS first, then the passkey.
    assert!(mfa.remove_factor("ivy", "sms", "sms").await.unwrap());
    assert!(
        mfa.remove_factor("ivy", "webauthn", &two.credential_id)
            .await
            .unwrap()
    );
    assert!(!mfa.is_enrolled("ivy").await.unwrap());
}

async fn passkeys_are_not_offered_by_an_engine_without_the_factor(h: Harness) {
    h.register_passkey(&h.mfa, "jay", &mut SoftPasskey::new(true), None)
        .await;
    let without = Mfa::new(h.stores.clone(), keyring(), LOOKUP_KEY)
        .unwrap()
        .with_clock(Arc::new(h.clock.clone()))
        .with_factor(stepup_mfa::totp::Totp::default());
    // The backup codes remain the way in; the challenge offers only them.
    assert_eq!(without.methods("jay").await.unwrap(), ["backup_code"]);
    let challenge = without
        .start_challenge("jay", &["pwd"], None)
        .await
        .unwrap();
    assert_eq!(challenge.methods, ["backup_code"]);
    assert_refused(
        without
            .prepare_challenge(&challenge.mfa_token, "webauthn", &ClientInfo::default())
            .await,
        404,
        "unknown_factor",
    );
    assert_refused(
        without
            .start_sign_in("webauthn", &ClientInfo::default())
            .await,
        404,
        "unknown_factor",
    );
    assert_eq!(
        h.mfa.methods("jay").await.unwrap(),
        ["webauthn", "backup_code"]
    );
    // A relying party's origins must lie within its id.
    assert!(RelyingParty::new("example.com", "https://example.net").is_err());
    assert!(RelyingParty::with_origins("example.com", &[ORIGIN, "https://example.net"]).is_err());
    assert!(RelyingParty::new("localhost", "http://localhost:3000").is_ok());
}

/// A registration started under a session from before a reset and finished after it never
/// lands in the user's new generation.
async fn a_registration_started_before_a_reset_never_lands_after_it(h: Harness) {
    let mfa = &h.mfa;
    h.enroll_totp(mfa, "kit").await;
    let started = mfa
        .start_enrollment("kit", "webauthn", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    let mut key = SoftPasskey::new(true);
    let credential = key
        .do_registration(origin(), creation_options(&started))
        .unwrap();
    mfa.admin_reset("kit", "root").await.unwrap();
    assert!(matches!(
        mfa.finish_enrollment(
            "kit",
            "webauthn",
            &json!({"registration_token": started["registration_token"], "credential": credential}),
            &ClientInfo::default()
        )
        .await,
        Err(MfaError::InvalidCeremony(_))
    ));
    assert!(!mfa.is_enrolled("kit").await.unwrap());
    assert!(mfa.factor_summary("kit").await.unwrap().factors.is_empty());
    // One started after the reset registers.
    h.register_passkey(mfa, "kit", &mut key, None).await;
    assert_eq!(
        mfa.methods("kit").await.unwrap(),
        ["webauthn", "backup_code"]
    );
}

/// A reset lands while a passwordless assertion is being verified (between the signature check
/// and the login): the login is refused, never carried into the user's new generation.
async fn a_reset_landing_while_a_passkey_signs_in_voids_the_login(h: Harness) {
    let mfa = h.mfa.clone();
    let mut key = SoftPasskey::new(true);
    let (enrolled, handle) = h.register_passkey(&mfa, "lou", &mut key, None).await;
    let proof = h
        .passwordless_proof(&mfa, &mut key, &enrolled.credential_id, &handle)
        .await;
    let resetter = mfa.clone();
    h.accounts.on_next_exists(Arc::new(move |user| {
        let resetter = resetter.clone();
        Box::pin(async move { resetter.admin_reset(&user, "root").await.unwrap() })
    }));
    let outcome = sign_in(&mfa, &proof).await;
    assert!(
        matches!(outcome, Err(MfaError::InvalidCode(_))),
        "{outcome:?}"
    );
    assert_eq!(
        mfa.generation("lou").await.unwrap().value,
        1,
        "the reset ran"
    );
    assert!(!mfa.is_enrolled("lou").await.unwrap());
    assert!(events(&mfa, "lou", "mfa_succeeded").await.is_empty());
}
