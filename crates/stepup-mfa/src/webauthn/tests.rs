//! What only the factor's inside can show: how an assertion of an authenticator without a
//! signature counter is recorded. (The WebAuthn factor's behaviour through the engine —
//! registration, the MFA step, passwordless login, replays, origins, clones, races — is tested in
//! `tests/webauthn.rs`.)

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stepup_core::clock::{Clock, ManualClock};
use stepup_store::{CredentialRef, FactorStore, MemoryStore};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use super::*;
use crate::factor::ClientInfo;
use crate::{Keyring, Mfa, Stores};

const ORIGIN: &str = "https://login.example.com";

#[tokio::test]
async fn an_authenticator_without_a_counter_has_its_use_recorded() {
    let clock = ManualClock::at_unix(1_800_000_000);
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

    let client = ClientInfo::default();
    let started = mfa
        .start_enrollment("jo", KIND, &json!({}), &client)
        .await
        .unwrap();
    let options = serde_json::from_value(json!({ "publicKey": started["publicKey"] })).unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    let input = json!({
        "registration_token": started["registration_token"],
        "credential": credential,
    });
    let enrolled = mfa
        .finish_enrollment("jo", KIND, &input, &client)
        .await
        .unwrap();
    let key = CredentialRef {
        user: "jo",
        kind: KIND,
        id: &enrolled.credential_id,
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
            "cred_id": enrolled.credential_id,
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
