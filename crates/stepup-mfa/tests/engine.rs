//! The engine on every store backend: enrollment through the lifecycle, the methods offered,
//! single use under 100-way races (TOTP steps, backup codes, `mfa_token`s), expiry, key
//! rotation, account deletion, what reaches the database file, failing closed, and the audit
//! trail and its notifier.

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stepup_core::AuthContext;
use stepup_core::policy::{RequestCeiling, RevocationCheck, Revoked};
use stepup_core::tokens::digest;
use stepup_mfa::{
    AuditEvent, Authentication, ClientInfo, Keyring, LoginStep, MAX_CODE_ATTEMPTS, Mfa, MfaError,
    PendingAuthorization, Stores,
};
use stepup_store::{
    AuditRecord, CodeSet, Credential, CredentialRef, DeviceRecord, Enrollment, FactorStore,
    Generation, GenerationChange, MemoryStore, StoreError, StoreResult,
};
use support::*;

on_every_store!(
    enrollment_is_pending_until_a_valid_code,
    methods_list_only_what_the_user_has,
    a_totp_code_is_accepted_once,
    one_code_raced_100_times_succeeds_once,
    one_backup_code_raced_100_times_succeeds_once,
    backup_codes_are_single_use_normalised_and_regenerated_whole,
    an_mfa_token_raced_100_times_succeeds_once,
    an_mfa_token_survives_four_wrong_codes_and_dies_at_the_fifth,
    an_mfa_token_expires_after_five_minutes,
    refusals_that_check_no_code_do_not_use_up_the_mfa_token,
    rotation_keeps_old_secrets_working_and_reseal_moves_them,
    deleting_a_user_voids_earlier_tokens_and_every_factor,
    a_factor_of_a_kind_no_longer_registered_still_requires_the_second_factor,
);

on_every_store!(redis: an_mfa_token_raced_100_times_succeeds_once);

async fn enrollment_is_pending_until_a_valid_code(h: Harness) {
    let mfa = &h.mfa;
    let answer = mfa
        .start_enrollment("pending", "totp", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    assert!(
        answer["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert!(
        answer["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let key = totp_key(&answer);
    assert!(!mfa.is_enrolled("pending").await.unwrap());
    assert!(matches!(
        mfa.start_challenge("pending", &["pwd"], None).await,
        Err(MfaError::NotEnrolled(_))
    ));
    // A wrong first code is bad input (400), counted against the user's limit.
    assert_refused(
        mfa.finish_enrollment(
            "pending",
            "totp",
            &json!({"code": h.wrong_code(&key)}),
            &ClientInfo::default(),
        )
        .await,
        400,
        "invalid_mfa_code",
    );
    assert_eq!(
        events(mfa, "pending", "mfa_failed").await,
        [json!({"method": "totp_setup"})]
    );
    assert!(!mfa.is_enrolled("pending").await.unwrap());
    let summary = mfa.factor_summary("pending").await.unwrap();
    assert_eq!(summary.backup_codes_remaining, 0);
    assert_eq!(summary.factors.len(), 1, "{summary:?}");
    let factor = &summary.factors[0];
    assert_eq!((factor.kind.as_str(), factor.id.as_str()), ("totp", "totp"));
    assert_eq!(factor.status, "pending");
    assert!(!factor.active, "pending until confirmed");
    assert!(!factor.locked && !factor.restricted);
    assert_eq!(factor.created_at, T0);
    let listed = serde_json::to_value(&summary).unwrap();
    assert_eq!(listed["factors"][0]["method"], "totp");
    assert_eq!(listed["factors"][0]["kind"], "totp");
    assert_eq!(listed["factors"][0]["status"], "pending");
    assert!(
        !listed
            .to_string()
            .contains(answer["secret"].as_str().unwrap()),
        "the summary holds no secret"
    );

    // The pending credential is confirmed by the right code.
    let enrolled = mfa
        .finish_enrollment(
            "pending",
            "totp",
            &json!({"code": h.code(&key)}),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    assert_eq!(enrolled.backup_codes.len(), 10);
    assert_eq!(enrolled.credential_id, "totp");
    assert!(mfa.is_enrolled("pending").await.unwrap());
    let summary = mfa.factor_summary("pending").await.unwrap();
    assert_eq!(summary.backup_codes_remaining, 10);
    assert_eq!(summary.factors.len(), 1, "{summary:?}");
    assert!(summary.factors[0].active);
    assert_eq!(summary.factors[0].status, "active");
    assert!(!summary.factors[0].locked);
    // One authenticator app per user.
    assert!(matches!(
        mfa.start_enrollment("pending", "totp", &json!({}), &ClientInfo::default())
            .await,
        Err(MfaError::AlreadyEnrolled(_))
    ));
    assert!(matches!(
        mfa.finish_enrollment(
            "pending",
            "totp",
            &json!({"code": h.code(&key)}),
            &ClientInfo::default()
        )
        .await,
        Err(MfaError::AlreadyEnrolled(_))
    ));
    // Backup codes are never enrolled on their own, and unknown kinds are unknown.
    assert_refused(
        mfa.start_enrollment("pending", "backup_code", &json!({}), &ClientInfo::default())
            .await,
        400,
        "unsupported",
    );
    assert_refused(
        mfa.start_enrollment(
            "pending",
            "carrier_pigeon",
            &json!({}),
            &ClientInfo::default(),
        )
        .await,
        404,
        "unknown_factor",
    );
    // Audited under the kind's own names.
    let kinds = event_kinds(mfa, "pending").await;
    assert_eq!(
        kinds,
        ["totp_enrollment_started", "mfa_failed", "totp_enrolled"]
    );
    assert_eq!(
        events(mfa, "pending", "totp_enrolled").await,
        [json!({"credential_id": "totp", "backup_codes": 10})]
    );
}

async fn a_totp_code_is_accepted_once(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "alice").await;
    let mfa = &h.mfa;
    let code = h.code(&key);
    let done = totp_login(mfa, "alice", &code).await.unwrap();
    assert_eq!(
        (done.subject.as_str(), done.method.as_str()),
        ("alice", "totp")
    );
    assert_eq!(done.amr, ["pwd", "otp"]);
    assert_eq!(done.acr, "mfa");
    assert!(matches!(
        totp_login(mfa, "alice", &code).await,
        Err(MfaError::InvalidCode(_))
    ));
    // Still refused later in its window, and the previous step's code too.
    h.clock.advance(Duration::from_secs(20));
    assert!(matches!(
        totp_login(mfa, "alice", &code).await,
        Err(MfaError::InvalidCode(_))
    ));
    let previous = key.code_at(h.now() - 30);
    assert!(totp_login(mfa, "alice", &previous).await.is_err());
    // The next step's code is fine.
    h.clock.advance(Duration::from_secs(30));
    totp_login(mfa, "alice", &h.code(&key)).await.unwrap();
}

/// 100 MFA steps answered with one TOTP code at once (the limits out of reach, so all 100 are
/// checked): the time step is accepted once.
async fn one_code_raced_100_times_succeeds_once(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "racer").await;
    let mfa = h.unlimited();
    let code = h.code(&key);
    let mut tokens = Vec::new();
    for _ in 0..100 {
        tokens.push(mfa_token(&mfa, "racer").await);
    }
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (mfa, code) = (mfa.clone(), code.clone());
            tokio::spawn(async move {
                mfa.finish_challenge(
                    &token,
                    "totp",
                    &json!({"code": code}),
                    &ClientInfo::default(),
                )
                .await
            })
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => successes += 1,
            Err(MfaError::InvalidCode(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(successes, 1);
}

async fn one_backup_code_raced_100_times_succeeds_once(h: Harness) {
    let (_, enrolled) = h.enroll_totp(&h.mfa, "backup-racer").await;
    let mfa = h.unlimited();
    let mut tokens = Vec::new();
    for _ in 0..100 {
        tokens.push(mfa_token(&mfa, "backup-racer").await);
    }
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (mfa, code) = (mfa.clone(), enrolled.backup_codes[3].clone());
            tokio::spawn(async move {
                mfa.finish_challenge(
                    &token,
                    "backup_code",
                    &json!({"code": code}),
                    &ClientInfo::default(),
                )
                .await
            })
        })
        .collect();
    let mut successes = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(done) => successes.push(done.answer["remaining_codes"].clone()),
            Err(MfaError::InvalidCode(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(successes, [json!(9)]);
    assert_eq!(mfa.remaining_backup_codes("backup-racer").await.unwrap(), 9);
}

async fn backup_codes_are_single_use_normalised_and_regenerated_whole(h: Harness) {
    let (_, enrolled) = h.enroll_totp(&h.mfa, "bob").await;
    let codes = &enrolled.backup_codes;
    let mfa = &h.mfa;
    let sloppy = codes[0].to_lowercase().replace('-', " ");
    assert_eq!(backup_login(mfa, "bob", &sloppy).await.unwrap(), 9);
    assert!(matches!(
        backup_login(mfa, "bob", &codes[0]).await,
        Err(MfaError::InvalidCode(_))
    ));
    // The earlier shape of the proof is understood too.
    let done = login(mfa, "bob", "backup_code", json!({"backup_code": codes[1]}))
        .await
        .unwrap();
    assert_eq!(done.answer["remaining_codes"], 8);
    assert_eq!(done.method, "backup_code");
    assert_eq!(done.amr, ["pwd", "otp"]);
    assert_eq!(events(mfa, "bob", "backup_code_used").await.len(), 2);
    // Another user's code does nothing for bob, and garbage is just wrong.
    let (_, carol) = h.enroll_totp(&h.mfa, "carol").await;
    assert!(
        backup_login(mfa, "bob", &carol.backup_codes[0])
            .await
            .is_err()
    );
    for garbage in ["", "ABCDE", "ZZZZZ-ZZZZZ", "💥💥💥💥💥-💥💥💥💥💥"] {
        assert!(backup_login(mfa, "bob", garbage).await.is_err());
    }

    // (Those were six failures: the user is locked out for a while.)
    h.clock.advance(Duration::from_secs(600));
    let fresh = mfa.regenerate_backup_codes("bob").await.unwrap();
    assert_eq!(fresh.len(), 10);
    assert_eq!(
        mfa.factor_summary("bob")
            .await
            .unwrap()
            .backup_codes_remaining,
        10
    );
    assert!(backup_login(mfa, "bob", &codes[2]).await.is_err());
    assert_eq!(backup_login(mfa, "bob", &fresh[1]).await.unwrap(), 9);
    assert_eq!(
        events(mfa, "bob", "backup_codes_regenerated").await,
        [json!({"count": 10})]
    );
    assert!(matches!(
        mfa.regenerate_backup_codes("nobody").await,
        Err(MfaError::NotEnrolled(_))
    ));
}

/// One `mfa_token`, 100 concurrent answers with thirteen different proofs (TOTP steps and every
/// backup code, most of them valid): only the token's own single use can stop all but one.
async fn an_mfa_token_raced_100_times_succeeds_once(h: Harness) {
    let (key, enrolled) = h.enroll_totp(&h.mfa, "dave").await;
    let mfa = h.unlimited();
    let now = h.now();
    let mut proofs: Vec<(&str, String)> = (0..3)
        .map(|offset| ("totp", key.code_at(now - 30 + offset * 30)))
        .collect();
    proofs.extend(
        enrolled
            .backup_codes
            .iter()
            .map(|code| ("backup_code", code.clone())),
    );
    let token = mfa_token(&mfa, "dave").await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (mfa, token) = (mfa.clone(), token.clone());
            let (kind, code) = proofs[i % proofs.len()].clone();
            tokio::spawn(async move {
                mfa.finish_challenge(&token, kind, &json!({"code": code}), &ClientInfo::default())
                    .await
            })
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => successes += 1,
            Err(MfaError::InvalidCode(_) | MfaError::InvalidMfaToken(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(successes, 1);
}

async fn an_mfa_token_survives_four_wrong_codes_and_dies_at_the_fifth(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "erin").await;
    let mfa = &h.mfa;
    let challenge = mfa.start_challenge("erin", &["pwd"], None).await.unwrap();
    assert_eq!(challenge.methods, ["totp", "backup_code"]);
    assert!(challenge.mfa_required);
    let finish = async |token: &str, code: &str| {
        mfa.finish_challenge(
            token,
            "totp",
            &json!({"code": code}),
            &ClientInfo::default(),
        )
        .await
    };
    let wrong = h.wrong_code(&key);
    for _ in 0..4 {
        assert!(matches!(
            finish(&challenge.mfa_token, &wrong).await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    let good = h.code(&key);
    let done = finish(&challenge.mfa_token, &good).await.unwrap();
    assert_eq!(done.subject, "erin");
    assert_eq!(done.amr, ["pwd", "otp"]);
    assert_eq!(done.method, "totp");
    assert_eq!(done.acr, "mfa");
    assert!(done.answer.get("remaining_codes").is_none());
    assert_eq!(done.pending, None);
    // Consumed: the same token cannot be used again.
    assert!(matches!(
        finish(&challenge.mfa_token, &good).await,
        Err(MfaError::InvalidMfaToken(_))
    ));

    h.clock.advance(Duration::from_secs(30));
    let second = mfa_token(mfa, "erin").await;
    let wrong = h.wrong_code(&key);
    for _ in 0..5 {
        assert!(matches!(
            finish(&second, &wrong).await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    let good = h.code(&key);
    assert!(matches!(
        finish(&second, &good).await,
        Err(MfaError::InvalidMfaToken(_))
    ));
    // The code was not spent on the dead token: its step is still unused.
    let credential = stored_credentials(h.factors(), "erin", "totp")
        .await
        .remove(0);
    assert!(credential.counter < h.now() / 30);
    // A dead token prepares nothing either.
    assert!(matches!(
        mfa.prepare_challenge(&second, "webauthn", &ClientInfo::default())
            .await,
        Err(MfaError::InvalidMfaToken(_))
    ));
}

async fn an_mfa_token_expires_after_five_minutes(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "frank").await;
    let mfa = &h.mfa;
    let token = mfa_token(mfa, "frank").await;
    h.clock.advance(Duration::from_secs(5 * 60));
    let code = json!({"code": h.code(&key)});
    for token in [token.as_str(), "not-a-token", "", &"x".repeat(10_000)] {
        assert!(matches!(
            mfa.finish_challenge(token, "totp", &code, &ClientInfo::default())
                .await,
            Err(MfaError::InvalidMfaToken(_))
        ));
    }
}

/// An attempt is counted before its proof is checked and given back when no code was checked
/// (a factor the user does not have, a malformed proof, an unknown kind), so such refusals never
/// kill the token. (The per-user limit, which counts them, is set out of reach: this is the
/// token's own bound.)
async fn refusals_that_check_no_code_do_not_use_up_the_mfa_token(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "ned").await;
    let mfa = h.unlimited();
    let token = mfa_token(&mfa, "ned").await;
    let client = ClientInfo::default();
    for _ in 0..2 * MAX_CODE_ATTEMPTS {
        assert!(matches!(
            mfa.finish_challenge(&token, "sms", &json!({"code": "123456"}), &client)
                .await,
            Err(MfaError::NotEnrolled(_))
        ));
        assert_refused(
            mfa.finish_challenge(&token, "totp", &json!({"cod": "123456"}), &client)
                .await,
            400,
            "invalid_request",
        );
        assert_refused(
            mfa.finish_challenge(&token, "nope", &json!({"code": "123456"}), &client)
                .await,
            404,
            "unknown_factor",
        );
    }
    let done = mfa
        .finish_challenge(&token, "totp", &json!({"code": h.code(&key)}), &client)
        .await
        .unwrap();
    assert_eq!(done.subject, "ned");
}

async fn rotation_keeps_old_secrets_working_and_reseal_moves_them(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "gina").await;
    let factors = h.stores.factors.clone();
    let payload = async || -> Value {
        let credential = stored_credentials(factors.as_ref(), "gina", "totp")
            .await
            .remove(0);
        serde_json::from_str(&credential.payload).unwrap()
    };
    let before = payload().await;
    assert!(before["secret"].as_str().unwrap().starts_with("v1.k1."));

    // Another engine on the same factors, with its own ephemeral state, devices and trail.
    let on_the_same_factors = |keyring: Keyring| {
        let elsewhere = Arc::new(MemoryStore::new().with_clock(Arc::new(h.clock.clone())));
        let stores = Stores {
            factors: factors.clone(),
            ephemeral: elsewhere.clone(),
            devices: elsewhere.clone(),
            audit: elsewhere.clone(),
            grants: elsewhere,
        };
        h.engine_on(&stores, keyring)
    };

    // Rotate: k2 seals, k1 still opens.
    let rotated = on_the_same_factors(
        Keyring::new("k2", &[2; 32])
            .unwrap()
            .with_old_key("k1", &[1; 32])
            .unwrap(),
    );
    totp_login(&rotated, "gina", &h.code(&key)).await.unwrap();
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 1);
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 0);
    let after = payload().await;
    let sealed_after = after["secret"].as_str().unwrap();
    assert!(sealed_after.starts_with("v1.k2."), "{sealed_after}");
    // Only the secret moved: the parameters are those it was enrolled with.
    for field in ["algorithm", "digits", "period"] {
        assert_eq!(after[field], before[field], "{field}");
    }

    // Only the new key is needed from now on.
    let new_only = on_the_same_factors(Keyring::new("k2", &[2; 32]).unwrap());
    h.clock.advance(Duration::from_secs(30));
    totp_login(&new_only, "gina", &h.code(&key)).await.unwrap();
    // And the old key alone opens nothing any more.
    let old_only = on_the_same_factors(keyring());
    h.clock.advance(Duration::from_secs(30));
    assert!(matches!(
        totp_login(&old_only, "gina", &h.code(&key)).await,
        Err(MfaError::Internal(_))
    ));
}

async fn methods_list_only_what_the_user_has(h: Harness) {
    let mfa = &h.mfa;
    let not_enrolled = |result: Result<stepup_mfa::MfaChallenge, MfaError>| {
        matches!(result, Err(MfaError::NotEnrolled(_)))
    };
    assert!(mfa.methods("nobody").await.unwrap().is_empty());
    assert!(not_enrolled(
        mfa.start_challenge("nobody", &["pwd"], None).await
    ));

    // A pending enrollment proves nothing yet.
    h.start_totp(mfa, "pat").await;
    assert!(mfa.methods("pat").await.unwrap().is_empty());
    assert!(not_enrolled(
        mfa.start_challenge("pat", &["pwd"], None).await
    ));

    // A fresh start replaces the pending credential (one per user); then it is confirmed.
    let (_, enrolled) = h.enroll_totp(mfa, "pat").await;
    let codes = enrolled.backup_codes;
    assert_eq!(mfa.methods("pat").await.unwrap(), ["totp", "backup_code"]);
    let challenge = mfa.start_challenge("pat", &["pwd"], None).await.unwrap();
    assert_eq!(challenge.methods, ["totp", "backup_code"]);
    assert_eq!(
        serde_json::to_value(&challenge).unwrap()["methods"],
        json!(["totp", "backup_code"])
    );

    // Once every backup code is used, they are no longer offered.
    for (used, code) in codes.iter().enumerate() {
        assert_eq!(
            backup_login(mfa, "pat", code).await.unwrap(),
            u64::try_from(codes.len() - used - 1).unwrap()
        );
    }
    assert_eq!(mfa.methods("pat").await.unwrap(), ["totp"]);
    let challenge = mfa.start_challenge("pat", &["pwd"], None).await.unwrap();
    assert_eq!(
        serde_json::to_value(&challenge).unwrap()["methods"],
        json!(["totp"])
    );

    // A new set brings them back.
    mfa.regenerate_backup_codes("pat").await.unwrap();
    assert_eq!(mfa.methods("pat").await.unwrap(), ["totp", "backup_code"]);

    // Without the app, nothing is left: the backup codes went with it.
    assert!(mfa.remove_factor("pat", "totp", "totp").await.unwrap());
    assert!(!mfa.remove_factor("pat", "totp", "totp").await.unwrap());
    assert!(mfa.methods("pat").await.unwrap().is_empty());
    assert_eq!(mfa.remaining_backup_codes("pat").await.unwrap(), 0);
    assert!(not_enrolled(
        mfa.start_challenge("pat", &["pwd"], None).await
    ));
    assert_eq!(
        events(mfa, "pat", "totp_removed").await,
        [json!({"credential_id": "totp"})]
    );
    // Another user's factors are not this user's.
    h.enroll_totp(mfa, "quill").await;
    assert!(mfa.methods("pat").await.unwrap().is_empty());
}

/// The token of a whole login of `user` with the TOTP `key`.
async fn token_of(
    h: &Harness,
    mfa: &Mfa,
    user: &str,
    key: &stepup_mfa::totp::TotpKey,
) -> AuthContext {
    let token = mfa_token(mfa, user).await;
    let login = mfa
        .finish_mfa(
            &token,
            "totp",
            &json!({"code": h.code(key)}),
            false,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(30));
    h.token(mfa, login).await
}

async fn deleting_a_user_voids_earlier_tokens_and_every_factor(h: Harness) {
    let (key, enrolled) = h.enroll_totp(&h.mfa, "quin").await;
    let (other_key, _) = h.enroll_totp(&h.mfa, "rae").await;
    let mfa = &h.mfa;
    let issued = token_of(&h, mfa, "quin", &key).await;
    assert_eq!(issued.generation(), Some(0));
    assert!(mfa.check_token(&issued).await.unwrap());
    let rae_token = token_of(&h, mfa, "rae", &other_key).await;
    // A remembered device, from an MFA step that asked for it.
    let token = mfa_token(mfa, "quin").await;
    let login = mfa
        .finish_mfa(
            &token,
            "totp",
            &json!({"code": h.code(&key)}),
            true,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    let device = login.device.clone().expect("a device was remembered");
    assert_eq!(
        mfa.devices("quin").await.unwrap(),
        std::slice::from_ref(&device.record)
    );
    assert!(mfa.device(&device.token).await.unwrap().is_some());
    let pending_token = mfa_token(mfa, "quin").await;

    h.clock.advance(Duration::from_secs(10));
    let deleted_at = h.now();
    mfa.delete_user("quin").await.unwrap();

    // Every token issued until now is void; nobody else's is.
    assert!(!mfa.check_token(&issued).await.unwrap());
    assert!(matches!(
        mfa.check_caller(&issued).await,
        Err(MfaError::TokenRevoked(_))
    ));
    assert!(mfa.check_token(&rae_token).await.unwrap());
    // A token of another issuer (no generation) is judged by its second, the reset's included.
    for iat in [T0, deleted_at] {
        let foreign = AuthContext::builder("quin").issued_at(iat).build();
        assert!(!mfa.check_token(&foreign).await.unwrap(), "{iat}");
    }
    let later = AuthContext::builder("quin")
        .issued_at(deleted_at + 1)
        .build();
    assert!(mfa.check_token(&later).await.unwrap());

    // Nothing that logged the user in is left.
    assert!(!mfa.is_enrolled("quin").await.unwrap());
    assert!(mfa.methods("quin").await.unwrap().is_empty());
    assert_eq!(mfa.remaining_backup_codes("quin").await.unwrap(), 0);
    assert!(mfa.devices("quin").await.unwrap().is_empty());
    assert!(mfa.device(&device.token).await.unwrap().is_none());
    let summary = mfa.factor_summary("quin").await.unwrap();
    assert!(summary.factors.is_empty(), "{summary:?}");
    assert!(h.factors().credentials("quin").await.unwrap().is_empty());
    assert!(matches!(
        mfa.start_challenge("quin", &["pwd"], None).await,
        Err(MfaError::NotEnrolled(_))
    ));
    for (kind, code) in [
        ("totp", h.code(&key)),
        ("backup_code", enrolled.backup_codes[0].clone()),
    ] {
        assert!(matches!(
            mfa.finish_challenge(
                &pending_token,
                kind,
                &json!({"code": code}),
                &ClientInfo::default()
            )
            .await,
            Err(MfaError::InvalidMfaToken(_))
        ));
    }
    assert!(
        event_kinds(mfa, "quin")
            .await
            .iter()
            .any(|kind| kind == "account_deleted")
    );
    // The other user keeps everything.
    totp_login(mfa, "rae", &h.code(&other_key)).await.unwrap();

    // A token issued afterwards is good at once, in the reset's own second, and stays good
    // through a new enrollment; the old one stays void.
    assert_eq!(h.now(), deleted_at);
    let LoginStep::Authenticated(login) = h.sign_in(mfa, "quin").await.unwrap() else {
        panic!("a user without factors signs in with the password");
    };
    assert_eq!(login.authentication.acr, "pwd");
    let fresh = h.token(mfa, login).await;
    assert_eq!(fresh.issued_at(), Some(deleted_at));
    assert_eq!(fresh.generation(), Some(1));
    assert!(mfa.check_token(&fresh).await.unwrap());
    h.enroll_totp(mfa, "quin").await;
    assert!(!mfa.check_token(&issued).await.unwrap());
    assert!(mfa.check_token(&fresh).await.unwrap());
}

/// A credential of a kind the engine no longer registers (its factor taken out of the
/// configuration) is not offered, but its user is still enrolled: the backup codes are the way
/// in, never the password alone.
async fn a_factor_of_a_kind_no_longer_registered_still_requires_the_second_factor(h: Harness) {
    h.enroll_sms(&h.mfa, "tia").await;
    let without_sms = Mfa::new(h.stores.clone(), keyring(), LOOKUP_KEY)
        .unwrap()
        .with_clock(Arc::new(h.clock.clone()))
        .with_accounts(h.accounts.clone())
        .with_factor(stepup_mfa::totp::Totp::default());
    assert!(without_sms.is_enrolled("tia").await.unwrap());
    assert_eq!(without_sms.methods("tia").await.unwrap(), ["backup_code"]);
    let LoginStep::MfaRequired(challenge) = h.sign_in(&without_sms, "tia").await.unwrap() else {
        panic!("an enrolled user needs the second factor");
    };
    assert_eq!(challenge.methods, ["backup_code"]);
    assert_refused(
        without_sms
            .prepare_challenge(&challenge.mfa_token, "sms", &ClientInfo::default())
            .await,
        404,
        "unknown_factor",
    );
    // Beside an app: the app and the codes; the full engine offers SMS too.
    h.enroll_totp(&without_sms, "tia").await;
    assert_eq!(
        without_sms.methods("tia").await.unwrap(),
        ["totp", "backup_code"]
    );
    assert_eq!(
        h.mfa.methods("tia").await.unwrap(),
        ["totp", "sms", "backup_code"]
    );
}

// ---- The database file, byte for byte (SQLite) ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_holds_no_secret_code_or_token_in_the_clear() {
    let h = Harness::sqlite().await;
    let Backend::Sqlite { store, dir } = &h.backend else {
        unreachable!()
    };
    let mfa = &h.mfa;
    let answer = mfa
        .start_enrollment("henry", "totp", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    let secret_base32 = answer["secret"].as_str().unwrap().to_owned();
    let secret = totp_rs::Secret::try_from_base32(&secret_base32).unwrap();
    let key = totp_key(&answer);
    let codes = mfa
        .finish_enrollment(
            "henry",
            "totp",
            &json!({"code": h.code(&key)}),
            &ClientInfo::default(),
        )
        .await
        .unwrap()
        .backup_codes;
    h.clock.advance(Duration::from_secs(30));
    // A mail address for codes, beside the app, and the code that proved it.
    let address = "henry.private@example.org";
    mfa.start_enrollment(
        "henry",
        "email",
        &json!({"email": address}),
        &ClientInfo::default(),
    )
    .await
    .unwrap();
    let mailed = h.mailbox.last_code_to(address);
    mfa.finish_enrollment(
        "henry",
        "email",
        &json!({"code": mailed}),
        &ClientInfo::default(),
    )
    .await
    .unwrap();
    // A remembered device (its record), a failure (a streak), a waiting MFA step, an
    // authorization code (its grant).
    let token = mfa_token(mfa, "henry").await;
    let device = mfa
        .finish_mfa(
            &token,
            "totp",
            &json!({"code": h.code(&key)}),
            true,
            &ClientInfo {
                address: Some("203.0.113.7".parse().unwrap()),
                user_agent: Some("test agent".into()),
            },
        )
        .await
        .unwrap()
        .device
        .unwrap();
    assert!(matches!(
        totp_login(mfa, "henry", &h.wrong_code(&key)).await,
        Err(MfaError::InvalidCode(_))
    ));
    let challenge = mfa.start_challenge("henry", &["pwd"], None).await.unwrap();
    let verifier = "a-pkce-verifier-long-enough-to-be-valid-0123456789";
    let pending = PendingAuthorization {
        client_id: "demo".into(),
        redirect_uri: "http://localhost:3000/callback".into(),
        state: None,
        code_challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        ..Default::default()
    };
    let authentication = Authentication {
        subject: "henry".into(),
        acr: "mfa".into(),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: Some(h.now()),
        generation: 0,
    };
    let authorization_code = mfa
        .issue_authorization_code(authentication, &pending)
        .await
        .unwrap();

    // The state is in the tables of the current schema, and only in digested or sealed form.
    let pool = store.pool();
    let count = |sql: &'static str, bind: String| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(bind)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(
        count(
            "SELECT count(*) FROM credentials \
             WHERE user_id = ?1 AND kind IN ('totp', 'email') AND status = 'active'",
            "henry".into()
        )
        .await,
        2
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM codes WHERE user_id = ?1 AND kind = 'backup_code'",
            "henry".into()
        )
        .await,
        10
    );
    assert_eq!(
        count(
            "SELECT coalesce(sum(streak), 0) FROM factor_failures \
             WHERE user_id = ?1 AND kind = 'totp'",
            "henry".into()
        )
        .await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM devices WHERE token_hash = ?1",
            digest(&device.token)
        )
        .await,
        1,
        "the device is found by its token's SHA-256"
    );
    for token in [&challenge.mfa_token, &authorization_code] {
        assert_eq!(
            count(
                "SELECT count(*) FROM ephemeral WHERE instr(key, ?1) > 0",
                digest(token)
            )
            .await,
            1,
            "a single-use token is kept under its SHA-256"
        );
    }
    let old_tables = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM sqlite_master WHERE name IN ('totp_enrollments', 'backup_codes')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        old_tables, 0,
        "the TOTP-specific tables of version 1 are gone"
    );
    let payload: Value = serde_json::from_str(
        &sqlx::query_scalar::<_, String>(
            "SELECT payload FROM credentials WHERE user_id = 'henry' AND kind = 'totp'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(
        payload["secret"].as_str().unwrap().starts_with("v1.k1."),
        "{payload}"
    );

    // The database and its write-ahead log, byte for byte.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(bytes.len() > 4096, "the test must read a real database");
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    assert!(contains(b"henry"), "the user's rows are there");
    assert!(
        contains(digest(&device.token).as_bytes()),
        "the device's digest is there"
    );
    assert!(
        !contains(secret_base32.as_bytes()),
        "base32 secret in the clear"
    );
    assert!(!contains(secret.as_bytes()), "raw secret in the clear");
    for code in &codes {
        assert!(
            !contains(code.as_bytes()),
            "backup code {code} in the clear"
        );
        assert!(
            !contains(code.replace('-', "").as_bytes()),
            "normalised code in the clear"
        );
    }
    assert!(!contains(address.as_bytes()), "mail address in the clear");
    assert!(
        !contains(challenge.mfa_token.as_bytes()),
        "mfa_token in the clear"
    );
    assert!(
        !contains(device.token.as_bytes()),
        "device token in the clear"
    );
    assert!(
        !contains(authorization_code.as_bytes()),
        "authorization code in the clear"
    );
    assert!(!contains(verifier.as_bytes()), "PKCE verifier in the clear");
    assert!(
        !contains_word(&bytes, mailed.as_bytes()),
        "mailed code in the clear"
    );
}

/// Whether `needle` occurs in `haystack` not inside a longer run of letters and digits (a
/// 6-digit code may turn up inside a random hex digest by chance).
fn contains_word(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .enumerate()
        .any(|(at, window)| {
            let before = at.checked_sub(1).map(|i| haystack[i]);
            let after = haystack.get(at + needle.len()).copied();
            window == needle
                && !before.is_some_and(|b| b.is_ascii_alphanumeric())
                && !after.is_some_and(|b| b.is_ascii_alphanumeric())
        })
}

// ---- Failing closed --------------------------------------------------------------------------

/// A store whose every call fails, as when its database is unreachable.
struct DownStore;

fn down<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable("connection refused".into()))
}

#[async_trait::async_trait]
impl FactorStore for DownStore {
    async fn put_pending(&self, _: Credential, _: Enrollment) -> StoreResult<bool> {
        down()
    }
    async fn activate(
        &self,
        _: CredentialRef<'_>,
        _: u64,
        _: Option<CodeSet>,
    ) -> StoreResult<bool> {
        down()
    }
    async fn credential(&self, _: CredentialRef<'_>) -> StoreResult<Option<Credential>> {
        down()
    }
    async fn credentials(&self, _: &str) -> StoreResult<Vec<Credential>> {
        down()
    }
    async fn credentials_of_kind(&self, _: &str) -> StoreResult<Vec<Credential>> {
        down()
    }
    async fn credential_by_id(&self, _: &str, _: &str) -> StoreResult<Option<Credential>> {
        down()
    }
    async fn advance_counter(
        &self,
        _: CredentialRef<'_>,
        _: u64,
        _: Option<&str>,
        _: u64,
    ) -> StoreResult<bool> {
        down()
    }
    async fn replace_payload(
        &self,
        _: CredentialRef<'_>,
        _: &str,
        _: &str,
        _: Option<u64>,
    ) -> StoreResult<bool> {
        down()
    }
    async fn disable_credential(&self, _: CredentialRef<'_>) -> StoreResult<bool> {
        down()
    }
    async fn set_label(&self, _: CredentialRef<'_>, _: Option<&str>) -> StoreResult<bool> {
        down()
    }
    async fn delete_credential(&self, _: CredentialRef<'_>) -> StoreResult<bool> {
        down()
    }
    async fn replace_codes(&self, _: &str, _: CodeSet) -> StoreResult<()> {
        down()
    }
    async fn code_hash(&self, _: &str, _: &str, _: &str) -> StoreResult<Option<String>> {
        down()
    }
    async fn consume_code(&self, _: &str, _: &str, _: &str) -> StoreResult<bool> {
        down()
    }
    async fn count_codes(&self, _: &str, _: &str) -> StoreResult<usize> {
        down()
    }
    async fn record_failure(&self, _: &str, _: &str) -> StoreResult<u64> {
        down()
    }
    async fn failures(&self, _: &str, _: &str) -> StoreResult<u64> {
        down()
    }
    async fn clear_failures(&self, _: &str, _: &str) -> StoreResult<()> {
        down()
    }
    async fn generation(&self, _: &str) -> StoreResult<Generation> {
        down()
    }
    async fn advance_generation(&self, _: &str, _: u64) -> StoreResult<Generation> {
        down()
    }
    async fn generation_changes(&self, _: u64, _: usize) -> StoreResult<Vec<GenerationChange>> {
        down()
    }
    async fn delete_user_factors(&self, _: &str) -> StoreResult<()> {
        down()
    }
    async fn ping(&self) -> StoreResult<()> {
        down()
    }
}

#[async_trait::async_trait]
impl stepup_store::EphemeralStore for DownStore {
    async fn insert_if_absent(&self, _: &str, _: &[u8], _: Duration) -> StoreResult<bool> {
        down()
    }
    async fn get(&self, _: &str) -> StoreResult<Option<Vec<u8>>> {
        down()
    }
    async fn take(&self, _: &str) -> StoreResult<Option<Vec<u8>>> {
        down()
    }
    async fn increment(&self, _: &str, _: Duration) -> StoreResult<u64> {
        down()
    }
    async fn decrement(&self, _: &str) -> StoreResult<u64> {
        down()
    }
    async fn compare_and_swap(
        &self,
        _: &str,
        _: Option<&[u8]>,
        _: &[u8],
        _: Duration,
    ) -> StoreResult<bool> {
        down()
    }
    async fn remove(&self, _: &str) -> StoreResult<()> {
        down()
    }
}

#[async_trait::async_trait]
impl stepup_store::DeviceStore for DownStore {
    async fn insert_device(&self, _: DeviceRecord) -> StoreResult<()> {
        down()
    }
    async fn device_by_token(&self, _: &str) -> StoreResult<Option<DeviceRecord>> {
        down()
    }
    async fn touch_device(
        &self,
        _: &str,
        _: u64,
        _: Option<&str>,
        _: Option<&str>,
    ) -> StoreResult<bool> {
        down()
    }
    async fn devices(&self, _: &str) -> StoreResult<Vec<DeviceRecord>> {
        down()
    }
    async fn delete_device(&self, _: &str, _: &str) -> StoreResult<bool> {
        down()
    }
    async fn delete_devices(&self, _: &str) -> StoreResult<usize> {
        down()
    }
}

#[async_trait::async_trait]
impl stepup_store::AuditStore for DownStore {
    async fn append_audit(&self, _: AuditRecord) -> StoreResult<()> {
        down()
    }
    async fn audit_events(&self, _: &str, _: usize) -> StoreResult<Vec<AuditRecord>> {
        down()
    }
}

#[async_trait::async_trait]
impl stepup_store::GrantStore for DownStore {
    async fn insert_client(&self, _: stepup_store::ClientRecord) -> StoreResult<bool> {
        down()
    }
    async fn client(&self, _: &str) -> StoreResult<Option<stepup_store::ClientRecord>> {
        down()
    }
    async fn clients(&self, _: usize) -> StoreResult<Vec<stepup_store::ClientRecord>> {
        down()
    }
    async fn revoke_client(&self, _: &str) -> StoreResult<bool> {
        down()
    }
    async fn insert_family(&self, _: stepup_store::RefreshFamily) -> StoreResult<()> {
        down()
    }
    async fn rotate_refresh_token(&self, _: &str, _: &str) -> StoreResult<stepup_store::Rotation> {
        down()
    }
    async fn family_by_token(&self, _: &str) -> StoreResult<Option<stepup_store::RefreshFamily>> {
        down()
    }
    async fn revoke_family(&self, _: &str) -> StoreResult<bool> {
        down()
    }
    async fn revoke_user_families(&self, _: &str) -> StoreResult<usize> {
        down()
    }
    async fn families(&self, _: &str) -> StoreResult<Vec<stepup_store::RefreshFamily>> {
        down()
    }
}

#[tokio::test]
async fn every_verification_fails_closed_when_the_store_is_down() {
    let h = Harness::memory().await;
    let mfa = h.engine_on(&Stores::shared(DownStore), keyring());
    let client = ClientInfo::default();
    let unavailable = |result: Result<(), MfaError>| {
        assert!(
            matches!(result, Err(MfaError::Unavailable(_))),
            "{result:?}"
        );
        assert_eq!(result.unwrap_err().status().as_u16(), 503);
    };
    let code = json!({"code": "123456"});
    unavailable(mfa.is_enrolled("u").await.map(drop));
    unavailable(mfa.methods("u").await.map(drop));
    unavailable(mfa.factor_summary("u").await.map(drop));
    unavailable(mfa.is_locked("u", "totp").await.map(drop));
    unavailable(mfa.start_challenge("u", &["pwd"], None).await.map(drop));
    for kind in ["totp", "backup_code", "sms", "email", "webauthn"] {
        unavailable(
            mfa.finish_challenge("token", kind, &code, &client)
                .await
                .map(drop),
        );
        unavailable(
            mfa.prepare_challenge("token", kind, &client)
                .await
                .map(drop),
        );
    }
    for kind in ["totp", "sms", "email", "webauthn"] {
        let input = json!({"phone": PHONE, "email": "u@example.com"});
        unavailable(
            mfa.start_enrollment("u", kind, &input, &client)
                .await
                .map(drop),
        );
    }
    unavailable(
        mfa.finish_enrollment("u", "totp", &code, &client)
            .await
            .map(drop),
    );
    unavailable(mfa.regenerate_backup_codes("u").await.map(drop));
    unavailable(mfa.remove_factor("u", "totp", "totp").await.map(drop));
    unavailable(
        mfa.finish_mfa("token", "totp", &code, true, &client)
            .await
            .map(drop),
    );
    unavailable(h.sign_in(&mfa, "u").await.map(drop));
    // A token's standing cannot be confirmed: that is an error, never "still good".
    let caller = AuthContext::builder("u")
        .generation(0)
        .issued_at(T0)
        .build();
    unavailable(mfa.check_token(&caller).await.map(drop));
    unavailable(mfa.check_caller(&caller).await);
    assert_eq!(
        RevocationCheck::check(&mfa, &caller).await,
        Err(Revoked::Unavailable)
    );
    unavailable(mfa.delete_user("u").await);
    unavailable(mfa.admin_reset("u", "admin").await);
    unavailable(
        mfa.redeem_authorization_code("code", "demo", "http://localhost/cb", "verifier", &client)
            .await
            .map(drop),
    );
    unavailable(mfa.devices("u").await.map(drop));
    unavailable(mfa.device("a-device-token").await.map(drop));
    unavailable(
        mfa.start_recovery("u@example.com", &ClientInfo::default())
            .await,
    );
    unavailable(
        mfa.finish_recovery("code", PASSWORD, &client)
            .await
            .map(drop),
    );
    unavailable(mfa.reseal_secrets().await.map(drop));
    assert!(
        RequestCeiling::admit(&mfa, "login", None, 10, Duration::from_secs(60))
            .await
            .is_err()
    );
    unavailable(mfa.ping().await);
}

// ---- The audit trail and its notifier -------------------------------------------------------

/// Collects what a `Notifier` hears.
#[derive(Clone, Default)]
struct Heard(Arc<std::sync::Mutex<Vec<(String, AuditEvent)>>>);

#[async_trait::async_trait]
impl stepup_mfa::Notifier for Heard {
    async fn factor_changed(&self, user: &str, event: &AuditEvent) {
        self.0
            .lock()
            .unwrap()
            .push((user.to_owned(), event.clone()));
    }
}

#[tokio::test]
async fn the_notifier_hears_factor_changes_and_nothing_else() {
    let h = Harness::memory().await;
    let heard = Heard::default();
    let mfa = h.mfa.clone().with_notifier(Arc::new(heard.clone()));
    let (key, _) = h.enroll_totp(&mfa, "nia").await;
    totp_login(&mfa, "nia", &h.code(&key)).await.unwrap();
    assert!(totp_login(&mfa, "nia", "000000").await.is_err());
    mfa.regenerate_backup_codes("nia").await.unwrap();
    assert!(mfa.remove_factor("nia", "totp", "totp").await.unwrap());
    let heard: Vec<(String, AuditEvent)> = heard.0.lock().unwrap().clone();
    let changes: Vec<String> = heard
        .iter()
        .map(|(_, event)| event.kind().into_owned())
        .collect();
    assert_eq!(
        changes,
        ["totp_enrolled", "backup_codes_regenerated", "totp_removed"]
    );
    assert!(heard.iter().all(|(user, _)| user == "nia"));
    assert!(heard.iter().all(|(_, event)| event.is_factor_change()));
    assert_eq!(
        heard[0].1,
        AuditEvent::Enrolled {
            kind: "totp".into(),
            noun: "an authenticator app",
            credential_id: "totp".into(),
            backup_codes: 10,
        }
    );
    assert_eq!(
        event_kinds(&mfa, "nia").await,
        [
            "totp_enrollment_started",
            "totp_enrolled",
            "mfa_succeeded",
            "mfa_failed",
            "backup_codes_regenerated",
            "totp_removed"
        ]
    );
    // Events hold no secret: the detail of each is a small JSON object of ids and counts.
    for event in h.mfa.audit().events("nia", 100).await.unwrap() {
        let detail: Value = serde_json::from_str(&event.detail).unwrap();
        assert!(detail.is_object(), "{detail}");
        assert!(!event.detail.contains(&h.code(&key)), "{}", event.detail);
    }
}

/// An application's user id in the form of an external provider's user key would share that
/// user's factors and be issued tokens in that user's name: the password step refuses it.
#[tokio::test]
async fn an_application_id_in_the_external_users_form_never_signs_in() {
    let h = Harness::memory().await;
    let mfa = h
        .mfa
        .clone()
        .with_external_issuer("https://idp.example")
        .unwrap();
    let refused = h
        .sign_in(&mfa, "external:https://idp.example#alice")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "server_error", "{refused:?}");
    // The provider's own user is keyed that way, from its token only.
    let token = AuthContext::builder("alice")
        .issuer("https://idp.example")
        .build();
    assert_eq!(mfa.user_of(&token), "external:https://idp.example#alice");
    // An issuer holding a fragment cannot be configured (the key would be ambiguous).
    assert!(h.mfa.clone().with_external_issuer("https://idp#x").is_err());
}

/// Confirming an enrollment hashes its ten backup codes in the engine's pool, across every
/// slot at once, and runs no other slow hash: ten evaluations, four at a time on four slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_an_enrollment_hashes_the_backup_codes_across_the_pool() {
    let h = Harness::memory().await;
    // 4 MiB and one pass: each hash outlasts the start of the others.
    let params = argon2::Params::new(4 * 1024, 1, 1, None).unwrap();
    let pool = stepup_mfa::KdfPool::new(4, Duration::from_secs(60))
        .with_params(params)
        .unwrap();
    let mfa = h.mfa.clone().with_kdf_pool(pool.clone());
    let key = h.start_totp(&mfa, "ada").await;
    assert_eq!(pool.evaluations(), 0);
    let enrolled = mfa
        .finish_enrollment(
            "ada",
            "totp",
            &json!({ "code": h.code(&key) }),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    assert_eq!(enrolled.backup_codes.len(), 10);
    assert_eq!(pool.evaluations(), 10, "one hash per code, nothing more");
    assert_eq!(
        pool.peak_in_use(),
        4,
        "hashed across every slot at once, not one after another"
    );
    assert_eq!(pool.available(), 4, "every slot came back");
    // The codes were hashed with the pool's parameters and work: one check each.
    h.clock.advance(Duration::from_secs(30));
    backup_login(&mfa, "ada", &enrolled.backup_codes[0])
        .await
        .unwrap();
    assert_eq!(pool.evaluations(), 11);
}
