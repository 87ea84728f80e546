//! The WebAuthn factor with soft authenticators: registration, the MFA step, passwordless
//! login, single-use ceremonies, origins, clones.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use stepup_core::clock::ManualClock;
use stepup_store::{FactorStore, MemoryStore};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;

use super::*;
use crate::{AttemptPolicy, Keyring, Proof, Stores};

const ORIGIN: &str = "https://login.example.com";

fn engine() -> (Mfa, ManualClock, MemoryStore) {
    let clock = ManualClock::at_unix(1_800_000_000);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    let mfa = Mfa::new(
        Stores::shared(store.clone()),
        Keyring::new("k1", &[7; 32]).unwrap(),
        &[9; 32],
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_relying_party(RelyingParty::new("example.com", ORIGIN).unwrap());
    (mfa, clock, store)
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

async fn register(
    mfa: &Mfa,
    user: &str,
    authenticator: &mut impl WebauthnAuthenticator,
) -> WebauthnEnrolled {
    let started = mfa
        .begin_webauthn_registration(user, user, user)
        .await
        .unwrap();
    let credential = authenticator
        .do_registration(origin(), started.options)
        .unwrap();
    mfa.finish_webauthn_registration(user, &started.registration_token, &credential, Some("key"))
        .await
        .unwrap()
}

async fn assertion(
    mfa: &Mfa,
    user: &str,
    authenticator: &mut impl WebauthnAuthenticator,
) -> (String, PublicKeyCredential) {
    let challenge = mfa.start_challenge(user, &["pwd"], None).await.unwrap();
    let options = mfa
        .begin_webauthn_challenge(&challenge.mfa_token)
        .await
        .unwrap();
    let credential = authenticator.do_authentication(origin(), options).unwrap();
    (challenge.mfa_token, credential)
}

#[tokio::test]
async fn a_passkey_registers_and_completes_an_mfa_step_at_phr() {
    let (mfa, _, _) = engine();
    let mut key = SoftPasskey::new(true);
    let enrolled = register(&mfa, "ada", &mut key).await;
    assert_eq!(
        enrolled.backup_codes.len(),
        10,
        "the first factor brings the codes"
    );
    assert!(mfa.is_enrolled("ada").await.unwrap());
    assert_eq!(
        mfa.methods("ada").await.unwrap(),
        [Method::Webauthn, Method::BackupCode]
    );
    let listed = mfa.webauthn_credentials("ada").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, enrolled.credential_id);
    assert_eq!(listed[0].label.as_deref(), Some("key"));

    let (token, credential) = assertion(&mfa, "ada", &mut key).await;
    let done = mfa
        .complete_challenge(&token, Proof::Webauthn(&credential))
        .await
        .unwrap();
    assert_eq!(done.subject, "ada");
    assert_eq!(done.method, Method::Webauthn);
    assert_eq!(done.amr, ["pwd", "hwk"]);
    assert!(done.phishing_resistant);
    let listed = mfa.webauthn_credentials("ada").await.unwrap();
    assert_eq!(listed[0].counter, 1);
    assert_eq!(listed[0].last_used_at, Some(1_800_000_000));

    // A second key brings no new codes; the first is excluded from its registration.
    let started = mfa
        .begin_webauthn_registration("ada", "ada", "ada")
        .await
        .unwrap();
    let options = serde_json::to_value(&started.options).unwrap();
    assert_eq!(
        options["publicKey"]["excludeCredentials"][0]["id"],
        json!(enrolled.credential_id)
    );
    let second = register(&mfa, "ada", &mut SoftPasskey::new(true)).await;
    assert!(second.backup_codes.is_empty());

    assert!(
        mfa.rename_webauthn_credential("ada", &second.credential_id, Some("spare"))
            .await
            .unwrap()
    );
    assert!(matches!(
        mfa.rename_webauthn_credential("ada", &second.credential_id, Some(""))
            .await,
        Err(MfaError::InvalidLabel)
    ));
    assert!(
        mfa.remove_webauthn_credential("ada", &second.credential_id)
            .await
            .unwrap()
    );
    assert!(
        !mfa.remove_webauthn_credential("ada", &second.credential_id)
            .await
            .unwrap()
    );
    assert!(
        mfa.remove_webauthn_credential("ada", &enrolled.credential_id)
            .await
            .unwrap()
    );
    assert!(!mfa.is_enrolled("ada").await.unwrap());
    assert_eq!(mfa.remaining_backup_codes("ada").await.unwrap(), 0);
}

#[tokio::test]
async fn a_registration_ceremony_is_single_use_and_bound_to_its_user() {
    let (mfa, _, _) = engine();
    let started = mfa
        .begin_webauthn_registration("bo", "bo", "bo")
        .await
        .unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(origin(), started.options)
        .unwrap();
    assert!(matches!(
        mfa.finish_webauthn_registration("eve", &started.registration_token, &credential, None)
            .await,
        Err(MfaError::InvalidCeremony)
    ));
    // The wrong user used it up.
    assert!(matches!(
        mfa.finish_webauthn_registration("bo", &started.registration_token, &credential, None)
            .await,
        Err(MfaError::InvalidCeremony)
    ));
    assert!(!mfa.is_enrolled("bo").await.unwrap());
}

#[tokio::test]
async fn a_wrong_origin_is_refused() {
    let (mfa, _, _) = engine();
    let started = mfa
        .begin_webauthn_registration("cy", "cy", "cy")
        .await
        .unwrap();
    // A sibling site within the rp_id: the authenticator answers it, the server must not.
    let evil = Url::parse("https://evil.example.com").unwrap();
    let mut key = SoftPasskey::new(true);
    let credential = key.do_registration(evil.clone(), started.options).unwrap();
    assert!(matches!(
        mfa.finish_webauthn_registration("cy", &started.registration_token, &credential, None)
            .await,
        Err(MfaError::InvalidCode)
    ));
    register(&mfa, "cy", &mut key).await;
    let challenge = mfa.start_challenge("cy", &["pwd"], None).await.unwrap();
    let options = mfa
        .begin_webauthn_challenge(&challenge.mfa_token)
        .await
        .unwrap();
    let credential = key.do_authentication(evil, options).unwrap();
    assert!(matches!(
        mfa.complete_challenge(&challenge.mfa_token, Proof::Webauthn(&credential))
            .await,
        Err(MfaError::InvalidCode)
    ));
}

#[tokio::test]
async fn a_challenge_is_answered_once_and_an_assertion_never_replays() {
    let (mfa, _, _) = engine();
    let mut key = SoftPasskey::new(true);
    register(&mfa, "di", &mut key).await;
    let (token, credential) = assertion(&mfa, "di", &mut key).await;
    mfa.complete_challenge(&token, Proof::Webauthn(&credential))
        .await
        .unwrap();
    assert!(matches!(
        mfa.complete_challenge(&token, Proof::Webauthn(&credential))
            .await,
        Err(MfaError::InvalidMfaToken)
    ));
    // The same assertion against a new challenge.
    let challenge = mfa.start_challenge("di", &["pwd"], None).await.unwrap();
    mfa.begin_webauthn_challenge(&challenge.mfa_token)
        .await
        .unwrap();
    assert!(matches!(
        mfa.complete_challenge(&challenge.mfa_token, Proof::Webauthn(&credential))
            .await,
        Err(MfaError::InvalidCode)
    ));
    // Without a started challenge there is nothing to answer.
    assert!(matches!(
        mfa.complete_challenge(&challenge.mfa_token, Proof::Webauthn(&credential))
            .await,
        Err(MfaError::InvalidCode)
    ));
}

#[tokio::test]
async fn a_stale_challenge_is_refused() {
    let (mfa, clock, _) = engine();
    let mut key = SoftPasskey::new(true);
    let enrolled = register(&mfa, "ed", &mut key).await;
    let login = mfa.begin_passkey_login().await.unwrap();
    let options = as_discoverable(&login.options, &enrolled.credential_id);
    let assertion = key.do_authentication(origin(), options).unwrap();
    clock.advance(CEREMONY_TTL + Duration::from_secs(1));
    assert!(matches!(
        mfa.complete_passkey_login(&login.passkey_token, &assertion)
            .await,
        Err(MfaError::InvalidCeremony)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_finishes_of_one_ceremony_give_one_success() {
    let (mfa, _, _) = engine();
    let mfa = mfa.with_attempt_policy(AttemptPolicy {
        max_failures: 1_000,
        lock_after: 1_000,
        ..AttemptPolicy::default()
    });
    let mut key = SoftPasskey::new(true);
    register(&mfa, "fi", &mut key).await;
    let (token, credential) = assertion(&mfa, "fi", &mut key).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (mfa, token, credential) = (mfa.clone(), token.clone(), credential.clone());
        tasks.spawn(async move {
            mfa.complete_challenge(&token, Proof::Webauthn(&credential))
                .await
                .is_ok()
        });
    }
    let successes = tasks.join_all().await.into_iter().filter(|ok| *ok).count();
    assert_eq!(successes, 1);
}

#[tokio::test]
async fn a_cloned_authenticator_is_refused_and_audited() {
    let (mfa, _, _) = engine();
    let (mut original, _) = SoftToken::new(true).unwrap();
    let enrolled = register(&mfa, "gus", &mut original).await;
    let mut clone = SoftToken::from_cbor(&original.to_cbor().unwrap()).unwrap();
    for _ in 0..2 {
        let (token, credential) = assertion(&mfa, "gus", &mut clone).await;
        mfa.complete_challenge(&token, Proof::Webauthn(&credential))
            .await
            .unwrap();
    }
    let (token, credential) = assertion(&mfa, "gus", &mut original).await;
    assert!(matches!(
        mfa.complete_challenge(&token, Proof::Webauthn(&credential))
            .await,
        Err(MfaError::InvalidCode)
    ));
    let events = mfa.audit().events("gus", 100).await.unwrap();
    let suspected = events
        .iter()
        .find(|event| event.kind == "webauthn_clone_suspected")
        .expect("the clone is audited");
    let detail: Value = serde_json::from_str(&suspected.detail).unwrap();
    assert_eq!(detail["credential_id"], json!(enrolled.credential_id));
    assert!(
        AuditEvent::WebauthnCloneSuspected {
            credential_id: String::new()
        }
        .is_factor_change()
    );
}

#[tokio::test]
async fn a_credential_id_another_account_holds_is_refused() {
    let (mfa, _, store) = engine();
    let started = mfa
        .begin_webauthn_registration("ike", "ike", "ike")
        .await
        .unwrap();
    let credential = SoftPasskey::new(true)
        .do_registration(origin(), started.options)
        .unwrap();
    // Another account already holds the id the authenticator made.
    let id = URL_SAFE_NO_PAD.encode(&credential.raw_id);
    let held = Credential {
        user: "eve".to_owned(),
        kind: KIND.to_owned(),
        id: id.clone(),
        status: CredentialStatus::Pending,
        label: None,
        payload: "{}".to_owned(),
        counter: 0,
        created_at: 1_800_000_000,
        last_used_at: None,
    };
    assert!(store.put_pending(held, Enrollment::Many).await.unwrap());
    assert!(matches!(
        mfa.finish_webauthn_registration("ike", &started.registration_token, &credential, None)
            .await,
        Err(MfaError::CredentialExists)
    ));
    assert!(!mfa.is_enrolled("ike").await.unwrap());
    assert!(store.credentials("ike").await.unwrap().is_empty());
    let holder = store.credential_by_id(KIND, &id).await.unwrap().unwrap();
    assert_eq!(holder.user, "eve");
}

#[tokio::test]
async fn an_authenticator_without_a_counter_has_its_use_recorded() {
    let (mfa, clock, _) = engine();
    let enrolled = register(&mfa, "jo", &mut SoftPasskey::new(true)).await;
    let listed = mfa.webauthn_credentials("jo").await.unwrap();
    assert_eq!((listed[0].counter, listed[0].last_used_at), (0, None));
    // What webauthn-rs reports for a synced passkey: a counter that stays 0.
    let result = |backup_state: bool| -> webauthn_rs::prelude::AuthenticationResult {
        serde_json::from_value(json!({
            "cred_id": enrolled.credential_id,
            "needs_update": false,
            "user_verified": true,
            "backup_state": backup_state,
            "backup_eligible": listed[0].backup_eligible.unwrap_or(false),
            "counter": 0,
            "extensions": {},
        }))
        .unwrap()
    };
    let unchanged = listed[0].backup_state.unwrap_or(false);

    // The payload unchanged: only the use is recorded.
    clock.advance(Duration::from_secs(60));
    assert!(
        mfa.record_assertion("jo", &enrolled.credential_id, Ok(result(unchanged)))
            .await
            .unwrap()
    );
    let after = mfa.webauthn_credentials("jo").await.unwrap();
    assert_eq!(after[0].counter, 0);
    assert_eq!(after[0].last_used_at, Some(1_800_000_060));
    assert_eq!(after[0].backup_state, listed[0].backup_state);

    // A later use, the backup flag changed: both stored.
    clock.advance(Duration::from_secs(60));
    assert!(
        mfa.record_assertion("jo", &enrolled.credential_id, Ok(result(!unchanged)))
            .await
            .unwrap()
    );
    let after = mfa.webauthn_credentials("jo").await.unwrap();
    assert_eq!(after[0].counter, 0);
    assert_eq!(after[0].last_used_at, Some(1_800_000_120));
    assert_eq!(after[0].backup_state, Some(!unchanged));
}

/// What a discoverable authenticator does: it picks its own credential and returns the user
/// handle it stored at registration (the soft authenticators only answer allow-listed ids).
pub(crate) fn as_discoverable(
    options: &RequestChallengeResponse,
    credential_id: &str,
) -> RequestChallengeResponse {
    let mut options = serde_json::to_value(options).unwrap();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": credential_id}]);
    serde_json::from_value(options).unwrap()
}

fn with_user_handle(credential: &PublicKeyCredential, handle: &Value) -> PublicKeyCredential {
    let mut credential = serde_json::to_value(credential).unwrap();
    credential["response"]["userHandle"] = handle.clone();
    serde_json::from_value(credential).unwrap()
}

#[tokio::test]
async fn a_passkey_signs_in_without_a_password() {
    let (mfa, _, _) = engine();
    let mut key = SoftPasskey::new(true);
    let started = mfa
        .begin_webauthn_registration("hal", "hal", "hal")
        .await
        .unwrap();
    let handle = serde_json::to_value(&started.options).unwrap()["publicKey"]["user"]["id"].clone();
    let credential = key.do_registration(origin(), started.options).unwrap();
    let enrolled = mfa
        .finish_webauthn_registration("hal", &started.registration_token, &credential, None)
        .await
        .unwrap();

    let login = mfa.begin_passkey_login().await.unwrap();
    let options = as_discoverable(&login.options, &enrolled.credential_id);
    let assertion = with_user_handle(&key.do_authentication(origin(), options).unwrap(), &handle);
    let signed_in = mfa
        .complete_passkey_login(&login.passkey_token, &assertion)
        .await
        .unwrap();
    assert_eq!(signed_in.subject, "hal");
    assert_eq!(signed_in.amr, ["hwk"]);
    assert!(signed_in.user_verified);
    assert!(matches!(
        mfa.complete_passkey_login(&login.passkey_token, &assertion)
            .await,
        Err(MfaError::InvalidCeremony)
    ));

    // Another user's handle does not name this credential.
    let login = mfa.begin_passkey_login().await.unwrap();
    let options = as_discoverable(&login.options, &enrolled.credential_id);
    let other = json!(URL_SAFE_NO_PAD.encode(mfa.user_handle("eve").as_bytes()));
    let assertion = with_user_handle(&key.do_authentication(origin(), options).unwrap(), &other);
    assert!(matches!(
        mfa.complete_passkey_login(&login.passkey_token, &assertion)
            .await,
        Err(MfaError::InvalidCode)
    ));
}

#[tokio::test]
async fn without_a_relying_party_passkeys_are_not_configured() {
    let mfa = Mfa::new(
        Stores::shared(MemoryStore::new()),
        Keyring::new("k1", &[7; 32]).unwrap(),
        &[9; 32],
    )
    .unwrap();
    assert!(matches!(
        mfa.begin_passkey_login().await,
        Err(MfaError::WebauthnNotConfigured)
    ));
    assert!(RelyingParty::new("example.com", "https://example.net").is_err());
    assert!(RelyingParty::new("localhost", "http://localhost:3000").is_ok());
}

/// A phone that keeps the texts it gets.
struct Phone(Arc<std::sync::Mutex<Vec<String>>>);

#[async_trait::async_trait]
impl crate::SmsSender for Phone {
    async fn send(&self, _to: &str, body: &str) -> Result<(), crate::SmsError> {
        self.0.lock().unwrap().push(body.to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn the_last_passkey_beside_sms_stays_where_sms_needs_company() {
    let (mfa, _, _) = engine();
    let texts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mfa = mfa
        .with_sms_provider(crate::SmsProvider::sender(Phone(texts.clone())))
        .with_sms_policy(crate::SmsPolicy {
            needs_another_factor: true,
            ..crate::SmsPolicy::default()
        });
    let one = register(&mfa, "ivy", &mut SoftPasskey::new(true)).await;
    let two = register(&mfa, "ivy", &mut SoftPasskey::new(true)).await;
    mfa.begin_sms_enrollment("ivy", "+15551236789", None)
        .await
        .unwrap();
    let text = texts.lock().unwrap().last().unwrap().clone();
    let code = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 6)
        .unwrap()
        .to_owned();
    mfa.confirm_sms_enrollment("ivy", &code).await.unwrap();

    // With two passkeys, one may go; the last one may not while SMS stays.
    assert!(
        mfa.remove_webauthn_credential("ivy", &one.credential_id)
            .await
            .unwrap()
    );
    assert!(matches!(
        mfa.remove_webauthn_credential("ivy", &two.credential_id)
            .await,
        Err(MfaError::SmsWouldBeAlone)
    ));
    assert!(mfa.is_enrolled("ivy").await.unwrap());
    // An unknown id is still "no such credential", not a refusal.
    assert!(!mfa.remove_webauthn_credential("ivy", "nope").await.unwrap());
    // SMS first, then the passkey.
    assert!(mfa.remove_sms("ivy").await.unwrap());
    assert!(
        mfa.remove_webauthn_credential("ivy", &two.credential_id)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn passkeys_are_not_offered_without_a_relying_party() {
    let (mfa, clock, store) = engine();
    register(&mfa, "jay", &mut SoftPasskey::new(true)).await;
    let without = Mfa::new(
        Stores::shared(store),
        Keyring::new("k1", &[7; 32]).unwrap(),
        &[9; 32],
    )
    .unwrap()
    .with_clock(Arc::new(clock));
    // The backup codes remain the way in; the challenge offers only them.
    assert_eq!(
        without.methods("jay").await.unwrap(),
        vec![Method::BackupCode]
    );
    let challenge = without
        .start_challenge("jay", &["pwd"], None)
        .await
        .unwrap();
    assert_eq!(challenge.methods, vec![Method::BackupCode]);
    assert!(matches!(
        without.begin_webauthn_challenge(&challenge.mfa_token).await,
        Err(MfaError::WebauthnNotConfigured)
    ));
    assert_eq!(
        mfa.methods("jay").await.unwrap(),
        vec![Method::Webauthn, Method::BackupCode]
    );
}
