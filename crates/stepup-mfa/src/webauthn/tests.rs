//! What only the factor's inside can show: how an assertion of an authenticator without a
//! signature counter is recorded, and the challenge a transaction step-up's authenticator signs.
//! (The WebAuthn factor's behaviour through the engine — registration, the MFA step, passwordless
//! login, replays, origins, clones, races — is tested in `tests/webauthn.rs`, the transaction
//! step-up in `tests/transactions.rs`.)

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use stepup_core::clock::{Clock, ManualClock};
use stepup_store::{CredentialRef, FactorStore, MemoryStore};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use super::*;
use crate::factor::ClientInfo;
use crate::{Keyring, Mfa, Stores};

const ORIGIN: &str = "https://login.example.com";
/// The canonical JSON of a payment, and of the same payment for one euro more.
const PAYMENT: &str = r#"{"amount":"125","currency":"EUR","payee":"ACME Ltd","type":"payment"}"#;
const OTHER: &str = r#"{"amount":"126","currency":"EUR","payee":"ACME Ltd","type":"payment"}"#;

/// An engine on a memory store with the WebAuthn factor alone.
fn engine(clock: &ManualClock) -> (MemoryStore, Webauthn, Mfa) {
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    let factor = Webauthn::new(RelyingParty::new("example.com", ORIGIN).unwrap());
    let mfa = Mfa::new(
        Stores::shared(store.clone()),
        Keyring::new("k1", &[7; 32]).unwrap(),
        &[9; 32],
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_factor(factor.clone());
    (store, factor, mfa)
}

/// Registers a credential of `authenticator` for `user`: its id.
async fn register(mfa: &Mfa, user: &str, authenticator: &mut SoftPasskey) -> String {
    let client = ClientInfo::default();
    let started = mfa
        .start_enrollment(user, KIND, &json!({}), &client)
        .await
        .unwrap();
    let options = serde_json::from_value(json!({ "publicKey": started["publicKey"] })).unwrap();
    let credential = authenticator
        .do_registration(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    let input = json!({
        "registration_token": started["registration_token"],
        "credential": credential,
    });
    mfa.finish_enrollment(user, KIND, &input, &client)
        .await
        .unwrap()
        .credential_id
}

/// The challenge a transaction step-up's authenticator must sign, computed here from the rule
/// itself: SHA-256(nonce ‖ 0x00 ‖ canonical operation), base64url.
fn expected_challenge(nonce: &[u8], operation: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(nonce);
    hash.update([0u8]);
    hash.update(operation.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// The challenge in an assertion's signed clientDataJSON (base64url, as the browser wrote it).
fn signed_challenge(credential: &PublicKeyCredential) -> String {
    let client_data: Value = serde_json::from_slice(&credential.response.client_data_json).unwrap();
    client_data["challenge"].as_str().unwrap().to_owned()
}

/// What an authenticator gets from prepared options.
fn request_options(options: &Value) -> RequestChallengeResponse {
    serde_json::from_value(json!({ "publicKey": options["publicKey"] })).unwrap()
}

#[tokio::test]
async fn a_transaction_assertion_signs_sha256_of_the_nonce_and_the_operation() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let (_, factor, mfa) = engine(&clock);
    let mut authenticator = SoftPasskey::new(true);
    register(&mfa, "jo", &mut authenticator).await;
    let credentials = mfa.credentials_of("jo", KIND).await.unwrap();
    let client = ClientInfo::default();
    let generation = credentials[0].generation;
    let step = |id: &str, operation: Option<&str>| {
        FactorContext::new(&mfa, KIND, "jo", generation, &client)
            .for_challenge(id.to_owned())
            .for_transaction(operation.map(str::to_owned))
    };

    // The step approving the payment: the options and the state carry the one challenge derived
    // from the recorded nonce and the operation, and the authenticator signs it.
    let cx = step("step-a", Some(PAYMENT));
    let options = factor.prepare(&cx, &credentials).await.unwrap();
    let stored = cx.state(&assertion_key("step-a")).await.unwrap().unwrap();
    let stored: Value = serde_json::from_slice(&stored).unwrap();
    let nonce = URL_SAFE_NO_PAD
        .decode(stored["transaction_nonce"].as_str().unwrap())
        .unwrap();
    assert_eq!(nonce.len(), 32);
    let expected = expected_challenge(&nonce, PAYMENT);
    assert_ne!(expected, URL_SAFE_NO_PAD.encode(&nonce));
    assert_eq!(options["publicKey"]["challenge"], json!(expected));
    assert_eq!(stored["ast"]["challenge"], json!(expected));
    assert_eq!(options["publicKey"]["userVerification"], json!("required"));
    let assertion = authenticator
        .do_authentication(Url::parse(ORIGIN).unwrap(), request_options(&options))
        .unwrap();
    assert_eq!(signed_challenge(&assertion), expected);
    // webauthn-rs checks the signed challenge against the state's: nothing else is needed.
    let verified = factor
        .verify(&cx, &credentials, &json!({ "credential": assertion }))
        .await
        .unwrap();
    assert_eq!(verified.acr, stepup_core::acr::level::PHR);

    // A login step: the challenge is the one webauthn-rs drew, and no nonce is recorded.
    let cx = step("step-login", None);
    let options = factor.prepare(&cx, &credentials).await.unwrap();
    let stored = cx
        .state(&assertion_key("step-login"))
        .await
        .unwrap()
        .unwrap();
    let stored: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored.as_object().unwrap().len(), 1, "{stored}");
    assert_eq!(
        stored["ast"]["challenge"],
        options["publicKey"]["challenge"]
    );
    let assertion = authenticator
        .do_authentication(Url::parse(ORIGIN).unwrap(), request_options(&options))
        .unwrap();
    factor
        .verify(&cx, &credentials, &json!({ "credential": assertion }))
        .await
        .unwrap();
}

#[tokio::test]
async fn one_nonce_bound_to_another_operation_refuses_the_assertion() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let (_, factor, mfa) = engine(&clock);
    let mut authenticator = SoftPasskey::new(true);
    register(&mfa, "jo", &mut authenticator).await;
    let credentials = mfa.credentials_of("jo", KIND).await.unwrap();
    let passkeys: Vec<Passkey> = credentials
        .iter()
        .map(|c| decode_passkey(c).unwrap())
        .collect();
    let (options, state) = factor
        .webauthn()
        .start_passkey_authentication(&passkeys)
        .unwrap();
    let nonce = options.public_key.challenge.clone();

    // The same nonce bound to the payment and to one euro more: two challenges.
    let (payment, payment_state) =
        bind_to_operation(options.clone(), state.clone(), PAYMENT).unwrap();
    let (_, other_state) = bind_to_operation(options.clone(), state.clone(), OTHER).unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(&payment.public_key.challenge),
        expected_challenge(&nonce, PAYMENT)
    );
    let assertion = authenticator
        .do_authentication(Url::parse(ORIGIN).unwrap(), payment)
        .unwrap();
    assert!(matches!(
        factor
            .webauthn()
            .finish_passkey_authentication(&assertion, &other_state.state),
        Err(WebauthnError::MismatchedChallenge)
    ));
    // The unbound state (the nonce as challenge) refuses it too; the payment's accepts it.
    assert!(matches!(
        factor
            .webauthn()
            .finish_passkey_authentication(&assertion, &state),
        Err(WebauthnError::MismatchedChallenge)
    ));
    assert!(
        factor
            .webauthn()
            .finish_passkey_authentication(&assertion, &payment_state.state)
            .unwrap()
            .user_verified()
    );

    // Options whose challenge is not the state's are never bound (so never sent).
    let (elsewhere, _) = factor
        .webauthn()
        .start_passkey_authentication(&passkeys)
        .unwrap();
    assert!(matches!(
        bind_to_operation(elsewhere, state, PAYMENT),
        Err(MfaError::Internal(_))
    ));
}

#[tokio::test]
async fn an_authenticator_without_a_counter_has_its_use_recorded() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let (store, factor, mfa) = engine(&clock);
    let client = ClientInfo::default();
    let credential_id = register(&mfa, "jo", &mut SoftPasskey::new(true)).await;
    let key = CredentialRef {
        user: "jo",
        kind: KIND,
        id: &credential_id,
    };
    let stored = || async { store.credential(key).await.unwrap().unwrap() };
    let registered = stored().await;
    assert_eq!((registered.counter, registered.last_used_at), (0, None));
    let flags: serde_json::Value = serde_json::from_str(&registered.payload).unwrap();
    let backup_eligible = flags["cred"]["backup_eligible"].as_bool().unwrap_or(false);
    let backup_state = flags["cred"]["backup_state"].as_bool().unwrap_or(false);
    // What webauthn-rs reports for a synced passkey: a counter that stays 0.
    let result = |backup_state: bool| -> AuthenticationResult {
        serde_json::from_value(json!({
            "cred_id": credential_id,
            "needs_update": false,
            "user_verified": true,
            "backup_state": backup_state,
            "backup_eligible": backup_eligible,
            "counter": 0,
            "extensions": {},
        }))
        .unwrap()
    };
    let cx = |generation| FactorContext::new(&mfa, KIND, "jo", generation, &client);

    // The payload unchanged: only the use is recorded.
    clock.advance(Duration::from_secs(60));
    let current = stored().await;
    assert!(
        factor
            .record_assertion(&cx(current.generation), &current, Ok(result(backup_state)))
            .await
            .unwrap()
    );
    let after = stored().await;
    assert_eq!(after.counter, 0);
    assert_eq!(after.last_used_at, Some(clock.unix_seconds()));
    assert_eq!(after.payload, current.payload);

    // A later use, the backup flag changed: both stored.
    clock.advance(Duration::from_secs(60));
    let current = stored().await;
    assert!(
        factor
            .record_assertion(&cx(current.generation), &current, Ok(result(!backup_state)))
            .await
            .unwrap()
    );
    let after = stored().await;
    assert_eq!(after.counter, 0);
    assert_eq!(after.last_used_at, Some(clock.unix_seconds()));
    let flags: serde_json::Value = serde_json::from_str(&after.payload).unwrap();
    assert_eq!(flags["cred"]["backup_state"], json!(!backup_state));

    // An authenticator that counted before does not stop counting: a 0 from it is a clone.
    assert!(
        store
            .advance_counter(key, 5, None, clock.unix_seconds())
            .await
            .unwrap()
    );
    let counted = stored().await;
    assert!(matches!(
        factor
            .record_assertion(&cx(counted.generation), &counted, Ok(result(!backup_state)))
            .await,
        Err(MfaError::InvalidCode(_))
    ));
    assert_eq!(
        stored().await.status,
        stepup_store::CredentialStatus::Disabled
    );
}
