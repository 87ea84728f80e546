//! The SMS factor with Twilio Verify making and checking the codes, against a local stand-in for
//! Twilio (never the network): enrollment and login, a check never made without a send for the
//! same purpose, failures counted across resends, and Twilio's errors typed.

mod fake_twilio;
mod support;

use std::time::Duration;

use fake_twilio::FakeTwilio;
use serde_json::json;
use stepup_mfa::delivery::SendPolicy;
use stepup_mfa::sms::{Sms, SmsError, SmsPolicy, SmsProvider, SmsVerifier, TwilioVerify};
use stepup_mfa::{ClientInfo, Mfa, MfaError};
use support::*;

fn twilio(fake: &FakeTwilio) -> TwilioVerify {
    TwilioVerify::new(
        fake_twilio::ACCOUNT_SID,
        fake_twilio::AUTH_TOKEN,
        fake_twilio::SERVICE_SID,
    )
    .unwrap()
    .with_base_url(&fake.base)
}

/// The harness's engine with SMS through Twilio, no resend cooldown and `sends` as send limits,
/// the per-user and per-address limits out of reach (the factor lock kept).
fn engine(h: &Harness, fake: &FakeTwilio, sends: SendPolicy) -> Mfa {
    let policy = SmsPolicy {
        sends: SendPolicy {
            resend_cooldown: Duration::ZERO,
            ..sends
        },
        ..SmsPolicy::default()
    };
    lockable(&h.mfa).with_factor(Sms::new(SmsProvider::verifier(twilio(fake))).with_policy(policy))
}

#[tokio::test]
async fn twilio_verify_makes_and_checks_the_codes() {
    let fake = FakeTwilio::start().await;
    let h = Harness::memory().await;
    let mfa = engine(&h, &fake, SendPolicy::default());
    let client = ClientInfo::default();

    let sent = mfa
        .start_enrollment("qi", "sms", &json!({"phone": PHONE}), &client)
        .await
        .unwrap();
    assert_eq!(sent["message"], "Code sent to +1*****6789");
    let code = fake.code_for(PHONE).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_refused(
        mfa.finish_enrollment("qi", "sms", &json!({"code": wrong}), &client)
            .await,
        400,
        "invalid_mfa_code",
    );
    let enrolled = mfa
        .finish_enrollment("qi", "sms", &json!({"code": code}), &client)
        .await
        .unwrap();
    assert_eq!(enrolled.backup_codes.len(), 10);
    assert_eq!(h.phone.count(), 0, "Twilio sent it, not stepup");

    // Login: a check without a send for this token is refused before Twilio is asked.
    let token = mfa_token(&mfa, "qi").await;
    let checks = fake.requests().len();
    assert!(matches!(
        mfa.finish_challenge(&token, "sms", &json!({"code": code}), &client)
            .await,
        Err(MfaError::InvalidCode(_))
    ));
    assert_eq!(fake.requests().len(), checks);
    mfa.prepare_challenge(&token, "sms", &client).await.unwrap();
    let code = fake.code_for(PHONE).unwrap();
    let done = mfa
        .finish_challenge(&token, "sms", &json!({"code": code}), &client)
        .await
        .unwrap();
    assert_eq!(done.amr, ["pwd", "sms"]);

    // Twilio resends the same code; stepup keeps counting failures across it.
    let token = mfa_token(&mfa, "qi").await;
    mfa.prepare_challenge(&token, "sms", &client).await.unwrap();
    let first = fake.code_for(PHONE).unwrap();
    let wrong = if first == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..2 {
        assert!(matches!(
            mfa.finish_challenge(&token, "sms", &json!({"code": wrong}), &client)
                .await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    mfa.prepare_challenge(&token, "sms", &client).await.unwrap();
    assert_eq!(fake.code_for(PHONE).unwrap(), first);
    assert_eq!(h.factors().failures("qi", "sms").await.unwrap(), 2);
    // A verification checked too often is gone at Twilio (60202): a wrong code, never a 5xx.
    let token = mfa_token(&mfa, "qi").await;
    mfa.prepare_challenge(&token, "sms", &client).await.unwrap();
    for _ in 0..fake_twilio::MAX_CHECKS {
        assert!(matches!(
            mfa.finish_challenge(&token, "sms", &json!({"code": wrong}), &client)
                .await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    assert_eq!(h.factors().failures("qi", "sms").await.unwrap(), 7);
    assert_eq!(
        events(&mfa, "qi", "sms_sent").await.len(),
        5,
        "one enrollment send, four login sends"
    );
}

#[tokio::test]
async fn twilio_errors_are_typed() {
    let fake = FakeTwilio::start().await;
    let h = Harness::memory().await;
    // stepup's own send limits out of the way: Twilio's are the ones met here.
    let mfa = engine(
        &h,
        &fake,
        SendPolicy {
            per_destination: Vec::new(),
            per_user: Vec::new(),
            per_address: Vec::new(),
            ..SendPolicy::default()
        },
    );
    let client = ClientInfo::default();
    // 20429: Twilio's rate limit is stepup's 429.
    retry_after(
        mfa.start_enrollment(
            "ru",
            "sms",
            &json!({"phone": fake_twilio::RATE_LIMITED_NUMBER}),
            &client,
        )
        .await,
    );
    // 60203: too many sends to one number.
    for _ in 0..fake_twilio::MAX_SENDS {
        mfa.start_enrollment("su", "sms", &json!({"phone": "+15550001111"}), &client)
            .await
            .unwrap();
    }
    retry_after(
        mfa.start_enrollment("su", "sms", &json!({"phone": "+15550001111"}), &client)
            .await,
    );
    // 20404 and 60202 on a check: the code is gone, a wrong code.
    let twilio = twilio(&fake);
    assert_eq!(
        twilio.check("+15550002222", "123456").await,
        Err(SmsError::VerificationGone)
    );
    twilio.start("+15550002222").await.unwrap();
    for _ in 0..fake_twilio::MAX_CHECKS {
        assert_eq!(twilio.check("+15550002222", "999999x").await, Ok(false));
    }
    assert_eq!(
        twilio.check("+15550002222", "999999x").await,
        Err(SmsError::VerificationGone)
    );
    // Wrong credentials: unavailable, never a success; the engine answers 503.
    let wrong = TwilioVerify::new(fake_twilio::ACCOUNT_SID, "wrong", fake_twilio::SERVICE_SID)
        .unwrap()
        .with_base_url(&fake.base);
    assert!(matches!(
        wrong.start(PHONE).await,
        Err(SmsError::Unavailable(_))
    ));
    let broken = h
        .mfa
        .clone()
        .with_factor(Sms::new(SmsProvider::verifier(wrong)));
    let refused = broken
        .start_enrollment("tu", "sms", &json!({"phone": PHONE}), &client)
        .await;
    assert!(
        matches!(refused, Err(MfaError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(!broken.is_enrolled("tu").await.unwrap());
    // Its Debug holds no credential.
    assert!(!format!("{twilio:?}").contains(fake_twilio::AUTH_TOKEN));
}
