//! The email factor on every store backend, built only on the factor seam: enrollment with the
//! account's own address (`{}`) or another one (`{"email": …}`), login with the mailed code, codes
//! bound to their MFA step, the shared send machinery (cooldown, limits per address, user and
//! client), expiry, single use under races, the factor lock, the masked address, `amr` `email`,
//! the rule that a restricted factor is never left alone, and key rotation.

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use stepup_mfa::delivery::{SendLimit, SendPolicy};
use stepup_mfa::{ClientInfo, Keyring, Mfa, MfaError};
use support::*;

on_every_store!(
    the_accounts_address_enrolls_with_the_mailed_code_and_logs_in,
    another_address_is_proven_by_its_own_code,
    bad_addresses_are_refused_and_nothing_is_mailed,
    a_code_of_one_mfa_token_is_refused_on_another,
    a_resend_waits_for_the_cooldown,
    sends_are_limited_per_address_per_user_and_per_client,
    codes_expire_by_the_injected_clock,
    one_code_submitted_100_times_at_once_succeeds_once,
    a_hundred_wrong_email_codes_lock_the_factor,
    email_is_restricted_like_sms,
    reseal_moves_the_addresses_to_the_new_key,
    a_code_by_mail_and_a_code_by_sms_never_stand_for_each_other,
);

on_every_store!(redis: one_code_submitted_100_times_at_once_succeeds_once);

/// The default policy without the resend cooldown.
fn no_cooldown() -> SendPolicy {
    SendPolicy {
        resend_cooldown: Duration::ZERO,
        ..SendPolicy::default()
    }
}

/// `max` sends an hour.
fn hourly(max: u64) -> Vec<SendLimit> {
    vec![SendLimit {
        max,
        window: Duration::from_secs(3600),
    }]
}

async fn prepare(mfa: &Mfa, token: &str) -> Result<Value, MfaError> {
    mfa.prepare_challenge(token, "email", &ClientInfo::default())
        .await
}

async fn finish(
    mfa: &Mfa,
    token: &str,
    code: &str,
) -> Result<stepup_mfa::CompletedChallenge, MfaError> {
    mfa.finish_challenge(
        token,
        "email",
        &json!({ "code": code }),
        &ClientInfo::default(),
    )
    .await
}

async fn the_accounts_address_enrolls_with_the_mailed_code_and_logs_in(h: Harness) {
    let mfa = h.mfa.clone();
    let address = address_of("ella");
    let sent = mfa
        .start_enrollment("ella", "email", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(
        sent,
        json!({"message": "Code sent to e***@example.com", "email": "e***@example.com"})
    );
    let mails = h.mailbox.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, address);
    let code = code_in(&mails[0].body);
    assert!(mails[0].subject.contains(&code));
    // Pending until the code comes back.
    assert!(!mfa.is_enrolled("ella").await.unwrap());
    let summary = mfa.factor_summary("ella").await.unwrap();
    assert_eq!(summary.factors[0].status, "pending");
    assert_eq!(summary.factors[0].detail["email"], "e***@example.com");
    let enrolled = mfa
        .finish_enrollment(
            "ella",
            "email",
            &json!({"code": code}),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        enrolled.backup_codes.len(),
        10,
        "a first factor brings backup codes"
    );
    assert_eq!(
        (enrolled.kind.as_str(), enrolled.credential_id.as_str()),
        ("email", "email")
    );
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(mfa.methods("ella").await.unwrap(), ["email", "backup_code"]);
    let summary = mfa.factor_summary("ella").await.unwrap();
    let factor = &summary.factors[0];
    assert_eq!(factor.kind, "email");
    assert!(factor.active && factor.restricted);
    let listed = serde_json::to_value(&summary).unwrap();
    assert_eq!(listed["factors"][0]["email"], "e***@example.com");
    assert_eq!(listed["factors"][0]["restricted"], true);
    assert!(!listed.to_string().contains(&address), "{listed}");

    // Login: the code goes to the enrolled address; the answer shows it masked.
    let token = mfa_token(&mfa, "ella").await;
    let sent = prepare(&mfa, &token).await.unwrap();
    assert_eq!(sent, json!({"message": "Code sent to e***@example.com"}));
    assert_eq!(h.mailbox.mails_to(&address).len(), 2);
    let code = h.mailbox.last_code_to(&address);
    let done = finish(&mfa, &token, &code).await.unwrap();
    assert_eq!(
        done.amr,
        ["pwd", "email"],
        "a code by mail is neither otp nor sms"
    );
    assert_eq!(done.method, "email");
    assert_eq!(done.acr, "mfa");
    // Single use: not on another step, not on the spent one.
    let again = mfa_token(&mfa, "ella").await;
    assert!(matches!(
        finish(&mfa, &again, &code).await,
        Err(MfaError::InvalidCode(_))
    ));
    assert!(matches!(
        finish(&mfa, &token, &code).await,
        Err(MfaError::InvalidMfaToken(_))
    ));
    assert_eq!(
        events(&mfa, "ella", "email_sent").await,
        [
            json!({"purpose": "enrollment"}),
            json!({"purpose": "login"})
        ]
    );
    assert_eq!(
        events(&mfa, "ella", "email_enrollment_started").await.len(),
        1
    );
    assert_eq!(
        events(&mfa, "ella", "email_enrolled").await,
        [json!({"credential_id": "email", "backup_codes": 10})]
    );
    assert_eq!(
        events(&mfa, "ella", "mfa_failed").await,
        [json!({"method": "email"})]
    );
    // No event or answer holds the address or a code.
    for event in mfa.audit().events("ella", 100).await.unwrap() {
        assert!(!event.detail.contains("ella@"), "{}", event.detail);
        assert!(!event.detail.contains(&code), "{}", event.detail);
    }

    // One address per user; removal ends it, with the backup codes of the last factor.
    assert!(matches!(
        mfa.start_enrollment("ella", "email", &json!({}), &ClientInfo::default())
            .await,
        Err(MfaError::AlreadyEnrolled(_))
    ));
    assert!(mfa.remove_factor("ella", "email", "email").await.unwrap());
    assert!(!mfa.is_enrolled("ella").await.unwrap());
    assert_eq!(mfa.remaining_backup_codes("ella").await.unwrap(), 0);
    assert_eq!(
        events(&mfa, "ella", "email_removed").await,
        [json!({"credential_id": "email"})]
    );
}

async fn another_address_is_proven_by_its_own_code(h: Harness) {
    let mfa = h.with_email_policy(no_cooldown());
    let first = "first.address@example.org";
    let second = "Other.Person@example.org";
    mfa.start_enrollment(
        "finn",
        "email",
        &json!({"email": first}),
        &ClientInfo::default(),
    )
    .await
    .unwrap();
    let first_code = h.mailbox.last_code_to(first);
    // Started again for another address (spaces trimmed, the domain lower-cased): the pending
    // address is replaced, and the first address's code proves nothing for it.
    let sent = mfa
        .start_enrollment(
            "finn",
            "email",
            &json!({"email": " Other.Person@Example.ORG "}),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    assert_eq!(sent["email"], "O***@example.org");
    let second_code = h.mailbox.last_code_to(second);
    assert!(h.mailbox.mails_to(&address_of("finn")).is_empty());
    if first_code != second_code {
        assert_refused(
            mfa.finish_enrollment(
                "finn",
                "email",
                &json!({"code": first_code}),
                &ClientInfo::default(),
            )
            .await,
            400,
            "invalid_mfa_code",
        );
    }
    mfa.finish_enrollment(
        "finn",
        "email",
        &json!({"code": second_code}),
        &ClientInfo::default(),
    )
    .await
    .unwrap();
    let summary = mfa.factor_summary("finn").await.unwrap();
    assert_eq!(summary.factors.len(), 1, "{summary:?}");
    assert_eq!(summary.factors[0].detail["email"], "O***@example.org");
    // Login codes go to the proven address, not the account's.
    let token = mfa_token(&mfa, "finn").await;
    prepare(&mfa, &token).await.unwrap();
    assert_eq!(h.mailbox.mails_to(second).len(), 2);
    assert!(h.mailbox.mails_to(&address_of("finn")).is_empty());
    finish(&mfa, &token, &h.mailbox.last_code_to(second))
        .await
        .unwrap();
}

async fn bad_addresses_are_refused_and_nothing_is_mailed(h: Harness) {
    for bad in [
        "",
        "ada",
        "ada@",
        "@example.com",
        "a b@example.com",
        "ada@example",
    ] {
        let refused = h
            .mfa
            .start_enrollment(
                "gus",
                "email",
                &json!({"email": bad}),
                &ClientInfo::default(),
            )
            .await;
        assert_eq!(
            refused.unwrap_err().description(),
            "field email is not a mail address",
            "{bad}"
        );
    }
    let refused = h
        .mfa
        .start_enrollment("gus", "email", &json!({"email": 7}), &ClientInfo::default())
        .await;
    assert_eq!(
        refused.unwrap_err().description(),
        "field email has the wrong type"
    );
    // `{}` for an account the application keeps no address for.
    assert_refused(
        h.mfa
            .start_enrollment("nomail-gus", "email", &json!({}), &ClientInfo::default())
            .await,
        400,
        "invalid_request",
    );
    assert!(h.mailbox.mails().is_empty());
    assert!(
        h.mfa
            .factor_summary("gus")
            .await
            .unwrap()
            .factors
            .is_empty()
    );
    // A code without an enrollment started.
    assert!(matches!(
        h.mfa
            .finish_enrollment(
                "gus",
                "email",
                &json!({"code": "123456"}),
                &ClientInfo::default()
            )
            .await,
        Err(MfaError::NoPendingEnrollment(_))
    ));
}

async fn a_code_of_one_mfa_token_is_refused_on_another(h: Harness) {
    let mfa = h.with_email_policy(no_cooldown());
    h.enroll_email(&mfa, "hal").await;
    let first = mfa_token(&mfa, "hal").await;
    let second = mfa_token(&mfa, "hal").await;
    prepare(&mfa, &first).await.unwrap();
    let code = h.mailbox.last_code_to(&address_of("hal"));
    assert!(matches!(
        finish(&mfa, &second, &code).await,
        Err(MfaError::InvalidCode(_))
    ));
    finish(&mfa, &first, &code).await.unwrap();
    assert!(matches!(
        prepare(&mfa, "not a token").await,
        Err(MfaError::InvalidMfaToken(_))
    ));
    // A code of the next step replaces the earlier step's: one live code per user.
    let third = mfa_token(&mfa, "hal").await;
    let fourth = mfa_token(&mfa, "hal").await;
    prepare(&mfa, &third).await.unwrap();
    let for_third = h.mailbox.last_code_to(&address_of("hal"));
    prepare(&mfa, &fourth).await.unwrap();
    let for_fourth = h.mailbox.last_code_to(&address_of("hal"));
    assert!(matches!(
        finish(&mfa, &third, &for_third).await,
        Err(MfaError::InvalidCode(_))
    ));
    finish(&mfa, &fourth, &for_fourth).await.unwrap();
}

async fn a_resend_waits_for_the_cooldown(h: Harness) {
    let mfa = h.mfa.clone();
    h.enroll_email(&mfa, "ida").await;
    let token = mfa_token(&mfa, "ida").await;
    prepare(&mfa, &token).await.unwrap();
    h.clock.advance(Duration::from_secs(10));
    let mails = h.mailbox.mails().len();
    assert_eq!(
        retry_after(prepare(&mfa, &token).await),
        Duration::from_secs(20)
    );
    assert_eq!(h.mailbox.mails().len(), mails, "nothing mailed");
    assert_eq!(
        events(&mfa, "ida", "email_refused").await,
        [json!({"reason": "cooldown"})]
    );
    h.clock.advance(Duration::from_secs(20));
    prepare(&mfa, &token).await.unwrap();
    finish(&mfa, &token, &h.mailbox.last_code_to(&address_of("ida")))
        .await
        .unwrap();
}

async fn sends_are_limited_per_address_per_user_and_per_client(h: Harness) {
    let shared = "shared@example.net";
    // The address's owner, enrolled before anyone else tries it.
    let owner = h.with_email_policy(no_cooldown());
    owner
        .start_enrollment(
            "owner",
            "email",
            &json!({"email": shared}),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    owner
        .finish_enrollment(
            "owner",
            "email",
            &json!({"code": h.mailbox.last_code_to(shared)}),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    // Per destination: two more enrollments of the same address, then refused.
    let mfa = h.with_email_policy(SendPolicy {
        per_destination: hourly(3),
        ..no_cooldown()
    });
    for (user, expected_ok) in [("jan", true), ("jan", true), ("kai", false)] {
        let outcome = mfa
            .start_enrollment(
                user,
                "email",
                &json!({"email": shared}),
                &ClientInfo::default(),
            )
            .await;
        assert_eq!(outcome.is_ok(), expected_ok, "{user}: {outcome:?}");
    }
    assert_eq!(
        events(&mfa, "kai", "email_refused").await,
        [json!({"reason": "destination_limit"})]
    );
    // Strangers enrolling the owner's address never spend the budget of its login codes.
    let token = mfa_token(&mfa, "owner").await;
    prepare(&mfa, &token).await.unwrap();
    finish(&mfa, &token, &h.mailbox.last_code_to(shared))
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(3601));
    mfa.start_enrollment(
        "kai",
        "email",
        &json!({"email": shared}),
        &ClientInfo::default(),
    )
    .await
    .unwrap();

    // Per user, whatever the address.
    let mfa = h.with_email_policy(SendPolicy {
        per_user: hourly(2),
        ..no_cooldown()
    });
    for address in ["one@example.net", "two@example.net"] {
        mfa.start_enrollment(
            "lea",
            "email",
            &json!({"email": address}),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        retry_after(
            mfa.start_enrollment(
                "lea",
                "email",
                &json!({"email": "three@example.net"}),
                &ClientInfo::default()
            )
            .await
        ),
        Duration::from_secs(3600)
    );
    assert_eq!(
        events(&mfa, "lea", "email_refused").await,
        [json!({"reason": "user_limit"})]
    );
    // Per client address, whatever the user.
    let mfa = h.with_email_policy(SendPolicy {
        per_address: hourly(1),
        ..no_cooldown()
    });
    let client = client_at("192.0.2.9");
    mfa.start_enrollment("max", "email", &json!({}), &client)
        .await
        .unwrap();
    retry_after(
        mfa.start_enrollment("ned", "email", &json!({}), &client)
            .await,
    );
    assert_eq!(
        events(&mfa, "ned", "email_refused").await,
        [json!({"reason": "address_limit"})]
    );
    assert!(h.mailbox.mails_to(&address_of("ned")).is_empty());
}

async fn codes_expire_by_the_injected_clock(h: Harness) {
    let mfa = h.with_email_policy(SendPolicy {
        code_ttl: Duration::from_secs(120),
        ..no_cooldown()
    });
    h.enroll_email(&mfa, "ola").await;
    let token = mfa_token(&mfa, "ola").await;
    prepare(&mfa, &token).await.unwrap();
    let mail = h.mailbox.mails_to(&address_of("ola")).pop().unwrap();
    assert!(mail.body.contains("expires in 2 minutes"), "{}", mail.body);
    h.clock.advance(Duration::from_secs(120));
    assert!(matches!(
        finish(&mfa, &token, &code_in(&mail.body)).await,
        Err(MfaError::InvalidCode(_))
    ));
    // A code lives 10 minutes at most, whatever the policy asks.
    let long = h.with_email_policy(SendPolicy {
        code_ttl: Duration::from_secs(3600),
        ..no_cooldown()
    });
    long.start_enrollment("pat", "email", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    let code = h.mailbox.last_code_to(&address_of("pat"));
    h.clock.advance(Duration::from_secs(10 * 60));
    assert_refused(
        long.finish_enrollment(
            "pat",
            "email",
            &json!({"code": code}),
            &ClientInfo::default(),
        )
        .await,
        400,
        "invalid_mfa_code",
    );
}

async fn one_code_submitted_100_times_at_once_succeeds_once(h: Harness) {
    let mfa = h.unlimited();
    h.enroll_email(&mfa, "quy").await;
    let token = mfa_token(&mfa, "quy").await;
    prepare(&mfa, &token).await.unwrap();
    let code = h.mailbox.last_code_to(&address_of("quy"));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (mfa, token, code) = (mfa.clone(), token.clone(), code.clone());
            tokio::spawn(async move { finish(&mfa, &token, &code).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(MfaError::InvalidCode(_) | MfaError::InvalidMfaToken(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(wins, 1);
}

async fn a_hundred_wrong_email_codes_lock_the_factor(h: Harness) {
    let mfa = lockable(&h.mfa);
    h.enroll_email(&mfa, "rex").await;
    for attempt in 0..100 {
        let token = mfa_token(&mfa, "rex").await;
        match finish(&mfa, &token, "000000").await {
            Err(MfaError::InvalidCode(_)) => {}
            other => panic!("wrong code {attempt}: {other:?}"),
        }
    }
    assert!(mfa.is_locked("rex", "email").await.unwrap());
    assert_eq!(mfa.methods("rex").await.unwrap(), ["backup_code"]);
    let mails = h.mailbox.mails().len();
    let token = mfa_token(&mfa, "rex").await;
    assert_eq!(locked_kind(prepare(&mfa, &token).await), "email");
    assert_eq!(h.mailbox.mails().len(), mails, "nothing mailed");
    assert_eq!(locked_kind(finish(&mfa, &token, "123456").await), "email");
    assert_eq!(
        events(&mfa, "rex", "factor_locked").await,
        [json!({"method": "email", "failures": 100})]
    );
    assert!(mfa.factor_summary("rex").await.unwrap().factors[0].locked);
}

async fn email_is_restricted_like_sms(h: Harness) {
    let strict = h.mfa.clone().with_restricted_factor_alone(false);
    assert_refused(
        strict
            .start_enrollment("sue", "email", &json!({}), &ClientInfo::default())
            .await,
        400,
        "email_needs_another_factor",
    );
    assert_eq!(
        events(&strict, "sue", "email_refused").await,
        [json!({"reason": "email_needs_another_factor"})]
    );
    assert!(h.mailbox.mails().is_empty());
    // SMS does not keep it company: both are restricted.
    h.enroll_sms(&h.mfa, "sue").await;
    assert_refused(
        strict
            .start_enrollment("sue", "email", &json!({}), &ClientInfo::default())
            .await,
        400,
        "email_needs_another_factor",
    );
    // An authenticator app does.
    h.enroll_totp(&strict, "sue").await;
    h.enroll_email(&strict, "sue").await;
    assert_eq!(
        strict.methods("sue").await.unwrap(),
        ["totp", "sms", "email", "backup_code"]
    );
    // Removing the app would leave restricted factors alone: refused (409), nothing removed.
    let refused = strict.remove_factor("sue", "totp", "totp").await;
    let code = refused.as_ref().unwrap_err().code().to_owned();
    assert!(
        code == "sms_needs_another_factor" || code == "email_needs_another_factor",
        "{code}"
    );
    assert_eq!(refused.unwrap_err().status().as_u16(), 409);
    assert!(strict.is_enrolled("sue").await.unwrap());
    // The restricted factors may go; then the app too.
    assert!(strict.remove_factor("sue", "sms", "sms").await.unwrap());
    assert_refused(
        strict.remove_factor("sue", "totp", "totp").await,
        409,
        "email_needs_another_factor",
    );
    assert!(strict.remove_factor("sue", "email", "email").await.unwrap());
    assert!(strict.remove_factor("sue", "totp", "totp").await.unwrap());
    assert!(!strict.is_enrolled("sue").await.unwrap());
    // Where the engine allows it (the default), email may be a user's only factor.
    h.enroll_email(&h.mfa, "tom").await;
    assert_eq!(
        h.mfa.methods("tom").await.unwrap(),
        ["email", "backup_code"]
    );
}

async fn reseal_moves_the_addresses_to_the_new_key(h: Harness) {
    h.enroll_email(&h.mfa, "uli").await;
    let stored = async || -> String {
        let credential = stored_credentials(h.factors(), "uli", "email")
            .await
            .remove(0);
        let payload: Value = serde_json::from_str(&credential.payload).unwrap();
        payload["address"].as_str().unwrap().to_owned()
    };
    assert_eq!(Keyring::key_id_of(&stored().await), Ok("k1"));
    let rotated = h.engine_on(
        &h.stores,
        Keyring::new("k2", &[9; 32])
            .unwrap()
            .with_old_key("k1", &[1; 32])
            .unwrap(),
    );
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 1);
    assert_eq!(Keyring::key_id_of(&stored().await), Ok("k2"));
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 0);
    let new_only = h.engine_on(&h.stores, Keyring::new("k2", &[9; 32]).unwrap());
    let summary = new_only.factor_summary("uli").await.unwrap();
    assert_eq!(summary.factors[0].detail["email"], "u***@example.com");
    let token = mfa_token(&new_only, "uli").await;
    prepare(&new_only, &token).await.unwrap();
    finish(
        &new_only,
        &token,
        &h.mailbox.last_code_to(&address_of("uli")),
    )
    .await
    .unwrap();
    assert!(matches!(
        h.mfa.factor_summary("uli").await,
        Err(MfaError::Internal(_))
    ));
}

/// One step, codes sent by mail and by SMS: each is its factor's only, and the `amr` names the
/// channel really used (one channel never counts as two factors).
async fn a_code_by_mail_and_a_code_by_sms_never_stand_for_each_other(h: Harness) {
    let mfa = h.mfa.clone();
    h.enroll_sms(&mfa, "vic").await;
    h.enroll_email(&mfa, "vic").await;
    assert_eq!(
        mfa.methods("vic").await.unwrap(),
        ["sms", "email", "backup_code"]
    );
    let token = mfa_token(&mfa, "vic").await;
    mfa.prepare_challenge(&token, "sms", &ClientInfo::default())
        .await
        .unwrap();
    prepare(&mfa, &token).await.unwrap();
    let by_sms = h.phone.last_code();
    let by_mail = h.mailbox.last_code_to(&address_of("vic"));
    if by_sms != by_mail {
        assert!(matches!(
            finish(&mfa, &token, &by_sms).await,
            Err(MfaError::InvalidCode(_))
        ));
        assert!(matches!(
            mfa.finish_challenge(
                &token,
                "sms",
                &json!({"code": by_mail}),
                &ClientInfo::default()
            )
            .await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    let done = finish(&mfa, &token, &by_mail).await.unwrap();
    assert_eq!(done.amr, ["pwd", "email"]);
}
