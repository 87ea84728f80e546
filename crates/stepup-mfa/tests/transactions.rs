//! The transaction step-up on every store: an operation approved with a second factor yields
//! one single-use grant for exactly that operation, that user and that generation; raced 100
//! times, it approves once.

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::json;
use stepup_core::AuthContext;
use stepup_mfa::{ClientInfo, Conclusion, Mfa, MfaError};
use support::*;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

on_every_store!(
    a_grant_approves_one_operation_of_one_user_once,
    one_grant_raced_100_times_approves_once,
    a_code_sent_for_a_transaction_names_what_it_approves,
    a_passkey_approves_only_the_operation_it_signed,
);
on_every_store!(redis: one_grant_raced_100_times_approves_once);

const PAYMENT: &str = r#"{"amount":"125","currency":"EUR","payee":"ACME Ltd","type":"payment"}"#;
const OTHER: &str = r#"{"amount":"126","currency":"EUR","payee":"ACME Ltd","type":"payment"}"#;

fn caller(user: &str) -> AuthContext {
    AuthContext::builder(user)
        .acr("mfa")
        .amr(["pwd", "otp"])
        .build()
}

/// Approves `operation` for `user` with the TOTP code of now: the grant.
async fn approve(
    h: &Harness,
    mfa: &Mfa,
    key: &stepup_mfa::totp::TotpKey,
    user: &str,
    operation: &str,
) -> String {
    let id = mfa
        .request_transaction(&caller(user), operation)
        .await
        .unwrap();
    let (challenge, details) = mfa
        .start_transaction_step(&caller(user), &id)
        .await
        .unwrap();
    assert_eq!(
        details,
        json!([serde_json::from_str::<serde_json::Value>(operation).unwrap()])
    );
    let login = mfa
        .finish_mfa(
            &challenge.mfa_token,
            "totp",
            &json!({"code": h.code(key)}),
            true,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    assert!(
        login.device.is_none(),
        "approving an operation remembers no browser"
    );
    match mfa.conclude(login).await.unwrap() {
        Conclusion::Approved(grant) => grant.transaction_grant,
        other => panic!("a transaction step ends in a grant, never a token: {other:?}"),
    }
}

async fn a_grant_approves_one_operation_of_one_user_once(h: Harness) {
    let mfa = h.mfa.clone();
    let (key, _) = h.enroll_totp(&mfa, "payer").await;
    h.enroll_totp(&mfa, "other").await;
    h.clock.advance(Duration::from_secs(30));

    // Once, for that operation, for that user.
    let grant = approve(&h, &mfa, &key, "payer", PAYMENT).await;
    assert!(
        mfa.redeem_transaction(&caller("payer"), &grant, PAYMENT)
            .await
            .unwrap()
    );
    assert!(
        !mfa.redeem_transaction(&caller("payer"), &grant, PAYMENT)
            .await
            .unwrap()
    );

    // Another amount spends the grant and approves nothing.
    h.clock.advance(Duration::from_secs(30));
    let grant = approve(&h, &mfa, &key, "payer", PAYMENT).await;
    assert!(
        !mfa.redeem_transaction(&caller("payer"), &grant, OTHER)
            .await
            .unwrap()
    );
    assert!(
        !mfa.redeem_transaction(&caller("payer"), &grant, PAYMENT)
            .await
            .unwrap()
    );

    // Another user's grant approves nothing for this one.
    h.clock.advance(Duration::from_secs(30));
    let grant = approve(&h, &mfa, &key, "payer", PAYMENT).await;
    assert!(
        !mfa.redeem_transaction(&caller("other"), &grant, PAYMENT)
            .await
            .unwrap()
    );

    // Another user cannot open this user's transaction.
    let id = mfa
        .request_transaction(&caller("payer"), PAYMENT)
        .await
        .unwrap();
    assert_refused(
        mfa.start_transaction_step(&caller("other"), &id).await,
        400,
        "invalid_request",
    );
    assert_refused(
        mfa.start_transaction_step(&caller("payer"), "no-such-id")
            .await,
        400,
        "invalid_request",
    );

    // A grant expires after five minutes.
    h.clock.advance(Duration::from_secs(30));
    let grant = approve(&h, &mfa, &key, "payer", PAYMENT).await;
    h.clock.advance(Duration::from_secs(5 * 60 + 1));
    assert!(
        !mfa.redeem_transaction(&caller("payer"), &grant, PAYMENT)
            .await
            .unwrap()
    );

    // A reset since the approval voids the grant.
    let grant = approve(&h, &mfa, &key, "payer", PAYMENT).await;
    mfa.admin_reset("payer", "admin").await.unwrap();
    assert!(
        !mfa.redeem_transaction(&caller("payer"), &grant, PAYMENT)
            .await
            .unwrap()
    );

    // The audit trail names the operation's digest, never the operation.
    let approved = events(&mfa, "payer", "transaction_approved").await;
    assert!(!approved.is_empty());
    assert!(!approved[0].to_string().contains("ACME"), "{approved:?}");

    // An operation that is not one JSON object is refused.
    assert!(matches!(
        mfa.request_transaction(&caller("payer"), "[1]").await,
        Err(MfaError::InvalidInput(_))
    ));
}

async fn one_grant_raced_100_times_approves_once(h: Harness) {
    let mfa = h.mfa.clone();
    let (key, _) = h.enroll_totp(&mfa, "racer").await;
    h.clock.advance(Duration::from_secs(30));
    let grant = approve(&h, &mfa, &key, "racer", PAYMENT).await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (mfa, grant) = (mfa.clone(), grant.clone());
            tokio::spawn(async move {
                mfa.redeem_transaction(&caller("racer"), &grant, PAYMENT)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut approved = 0;
    for task in tasks {
        approved += usize::from(task.await.unwrap());
    }
    assert_eq!(approved, 1);
}

async fn a_code_sent_for_a_transaction_names_what_it_approves(h: Harness) {
    let mfa = h.mfa.clone();
    h.enroll_totp(&mfa, "texted").await;
    h.enroll_sms(&mfa, "texted").await;
    h.enroll_email(&mfa, "texted").await;
    let client = ClientInfo::default();

    // By SMS: the text names the amount and the payee; its code approves the operation.
    let id = mfa
        .request_transaction(&caller("texted"), PAYMENT)
        .await
        .unwrap();
    let (challenge, _) = mfa
        .start_transaction_step(&caller("texted"), &id)
        .await
        .unwrap();
    mfa.prepare_challenge(&challenge.mfa_token, "sms", &client)
        .await
        .unwrap();
    let (_, text) = h.phone.texts().pop().unwrap();
    assert!(
        text.starts_with("Approve 125 EUR to ACME Ltd: your code is "),
        "{text}"
    );
    let login = mfa
        .finish_mfa(
            &challenge.mfa_token,
            "sms",
            &json!({"code": h.phone.last_code()}),
            false,
            &client,
        )
        .await
        .unwrap();
    assert!(matches!(
        mfa.conclude(login).await.unwrap(),
        Conclusion::Approved(_)
    ));

    // By mail: the subject and the body name it too.
    h.clock.advance(Duration::from_secs(31));
    let id = mfa
        .request_transaction(&caller("texted"), PAYMENT)
        .await
        .unwrap();
    let (challenge, _) = mfa
        .start_transaction_step(&caller("texted"), &id)
        .await
        .unwrap();
    mfa.prepare_challenge(&challenge.mfa_token, "email", &client)
        .await
        .unwrap();
    let mail = h.mailbox.mails().pop().unwrap();
    assert!(
        mail.subject
            .starts_with("Approve 125 EUR to ACME Ltd: your code "),
        "{}",
        mail.subject
    );
    assert!(
        mail.body
            .starts_with("You are approving 125 EUR to ACME Ltd."),
        "{}",
        mail.body
    );

    // An operation recorded with control characters (the engine's API takes any JSON object)
    // reaches the message without them.
    h.clock.advance(Duration::from_secs(31));
    let sneaky = r#"{"amount":"1","currency":"EUR","payee":"ACME\r\nBcc: x","type":"payment"}"#;
    let id = mfa
        .request_transaction(&caller("texted"), sneaky)
        .await
        .unwrap();
    let (challenge, _) = mfa
        .start_transaction_step(&caller("texted"), &id)
        .await
        .unwrap();
    mfa.prepare_challenge(&challenge.mfa_token, "email", &client)
        .await
        .unwrap();
    let mail = h.mailbox.mails().pop().unwrap();
    assert!(!mail.subject.contains(['\r', '\n']), "{:?}", mail.subject);
    assert!(
        mail.subject.starts_with("Approve 1 EUR to ACMEBcc: x: "),
        "{:?}",
        mail.subject
    );

    // A login's code names nothing.
    h.clock.advance(Duration::from_secs(31));
    let login = mfa_token(&mfa, "texted").await;
    mfa.prepare_challenge(&login, "sms", &client).await.unwrap();
    let (_, text) = h.phone.texts().pop().unwrap();
    assert!(text.starts_with("Your verification code is "), "{text}");
}

/// The MFA step approving `operation` for `user`, prepared for WebAuthn: its `mfa_token` and the
/// request options.
async fn passkey_step(mfa: &Mfa, user: &str, operation: &str) -> (String, serde_json::Value) {
    let id = mfa
        .request_transaction(&caller(user), operation)
        .await
        .unwrap();
    let (challenge, _) = mfa
        .start_transaction_step(&caller(user), &id)
        .await
        .unwrap();
    let options = mfa
        .prepare_challenge(&challenge.mfa_token, "webauthn", &ClientInfo::default())
        .await
        .unwrap();
    (challenge.mfa_token, options)
}

/// The MFA step `mfa_token` answered with the WebAuthn `proof`.
async fn answer(
    mfa: &Mfa,
    mfa_token: &str,
    proof: &serde_json::Value,
) -> Result<stepup_mfa::Login, MfaError> {
    mfa.finish_mfa(mfa_token, "webauthn", proof, false, &ClientInfo::default())
        .await
}

/// The challenge in an assertion's signed clientDataJSON (base64url).
fn signed_challenge(proof: &serde_json::Value) -> serde_json::Value {
    let credential: stepup_mfa::webauthn::PublicKeyCredential =
        serde_json::from_value(proof["credential"].clone()).unwrap();
    let client_data: serde_json::Value =
        serde_json::from_slice(&credential.response.client_data_json).unwrap();
    client_data["challenge"].clone()
}

async fn a_passkey_approves_only_the_operation_it_signed(h: Harness) {
    let mfa = h.mfa.clone();
    let mut key = SoftPasskey::new(true);
    h.register_passkey(&mfa, "signer", &mut key, None).await;
    let client = ClientInfo::default();

    // The step for the payment: user verification required, and the authenticator signs the
    // challenge it was sent (derived from the operation: see the factor's unit tests).
    let (payment, options) = passkey_step(&mfa, "signer", PAYMENT).await;
    assert_eq!(options["publicKey"]["userVerification"], json!("required"));
    let credential = key
        .do_authentication(origin(), request_options(&options))
        .unwrap();
    let signed = json!({ "credential": credential });
    assert_eq!(signed_challenge(&signed), options["publicKey"]["challenge"]);

    // Answered on the step of the same payment for one euro more: refused.
    let (other, _) = passkey_step(&mfa, "signer", OTHER).await;
    assert!(matches!(
        answer(&mfa, &other, &signed).await,
        Err(MfaError::InvalidCode(_))
    ));

    // On its own step it approves the payment, at phr, and only the payment.
    let login = answer(&mfa, &payment, &signed).await.unwrap();
    assert_eq!(login.authentication.acr, "phr");
    let grant = match mfa.conclude(login).await.unwrap() {
        Conclusion::Approved(grant) => grant.transaction_grant,
        other => panic!("a transaction step ends in a grant, never a token: {other:?}"),
    };
    assert!(
        mfa.redeem_transaction(&caller("signer"), &grant, PAYMENT)
            .await
            .unwrap()
    );

    // The other payment is approved only by an assertion made for it.
    mfa.prepare_challenge(&other, "webauthn", &client)
        .await
        .unwrap();
    assert!(matches!(
        answer(&mfa, &other, &signed).await,
        Err(MfaError::InvalidCode(_))
    ));
    let options = mfa
        .prepare_challenge(&other, "webauthn", &client)
        .await
        .unwrap();
    let credential = key
        .do_authentication(origin(), request_options(&options))
        .unwrap();
    let login = answer(&mfa, &other, &json!({ "credential": credential }))
        .await
        .unwrap();
    let Conclusion::Approved(grant) = mfa.conclude(login).await.unwrap() else {
        panic!("a transaction step ends in a grant");
    };
    assert!(
        !mfa.redeem_transaction(&caller("signer"), &grant.transaction_grant, PAYMENT)
            .await
            .unwrap()
    );

    // A login's assertion still works, and ends in a token.
    let (token, proof) = h.passkey_assertion(&mfa, "signer", &mut key).await;
    let login = answer(&mfa, &token, &proof).await.unwrap();
    assert!(matches!(
        mfa.conclude(login).await.unwrap(),
        Conclusion::Token { .. }
    ));
}
