//! The SMS factor on every store backend, with a phone that keeps its texts: enrollment and
//! login with a code, the shared send machinery (cooldown, limits per number, user and address),
//! expiry by the injected clock, single use under races, the factor lock, the engine-wide rule
//! that a restricted factor is never left alone, key rotation, and the database file.

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use stepup_mfa::delivery::{SendLimit, SendPolicy};
use stepup_mfa::sms::SmsPolicy;
use stepup_mfa::{ClientInfo, Keyring, LoginStep, Mfa, MfaError};
use support::*;

on_every_store!(
    enrollment_then_login_with_an_sms_code,
    a_resend_waits_for_the_cooldown,
    sends_are_limited_per_number_per_user_and_per_address,
    sends_from_one_ipv6_64_share_the_address_budget,
    a_new_code_keeps_the_failure_count,
    codes_expire_by_the_injected_clock,
    one_code_submitted_100_times_at_once_succeeds_once,
    a_hundred_wrong_sms_codes_lock_the_factor,
    a_code_of_one_mfa_token_is_refused_on_another,
    bad_numbers_and_countries_off_the_allow_list_are_refused,
    numbers_outside_the_allowed_regions_are_refused,
    sms_can_be_refused_as_the_only_factor,
    removing_the_other_factor_is_refused_while_sms_would_be_left_alone,
    a_number_begun_beside_a_factor_since_removed_is_not_confirmed,
    racing_factor_changes_never_leave_sms_alone,
    reseal_moves_the_phone_numbers_to_the_new_key,
);

on_every_store!(redis: one_code_submitted_100_times_at_once_succeeds_once);

/// The default policy without the resend cooldown.
fn no_cooldown() -> SmsPolicy {
    SmsPolicy {
        sends: SendPolicy {
            resend_cooldown: Duration::ZERO,
            ..SendPolicy::default()
        },
        ..SmsPolicy::default()
    }
}

/// `max` sends an hour.
fn hourly(max: u64) -> Vec<SendLimit> {
    vec![SendLimit {
        max,
        window: Duration::from_secs(3600),
    }]
}

fn phone_input(number: &str) -> Value {
    json!({ "phone": number })
}

async fn prepare(mfa: &Mfa, token: &str) -> Result<Value, MfaError> {
    mfa.prepare_challenge(token, "sms", &ClientInfo::default())
        .await
}

async fn finish(
    mfa: &Mfa,
    token: &str,
    code: &str,
) -> Result<stepup_mfa::CompletedChallenge, MfaError> {
    mfa.finish_challenge(
        token,
        "sms",
        &json!({ "code": code }),
        &ClientInfo::default(),
    )
    .await
}

/// Not `code`.
fn other_than(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

async fn enrollment_then_login_with_an_sms_code(h: Harness) {
    let mfa = h.mfa.clone();
    assert!(!mfa.is_enrolled("ann").await.unwrap());
    let sent = mfa
        .start_enrollment("ann", "sms", &phone_input(PHONE), &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(
        sent,
        json!({"message": format!("Code sent to {MASKED_PHONE}"), "phone": MASKED_PHONE})
    );
    // Pending until the code comes back.
    assert!(!mfa.is_enrolled("ann").await.unwrap());
    let summary = mfa.factor_summary("ann").await.unwrap();
    assert_eq!(summary.factors[0].status, "pending");
    let enrolled = mfa
        .finish_enrollment(
            "ann",
            "sms",
            &json!({"code": h.phone.last_code()}),
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
        ("sms", "sms")
    );
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(mfa.methods("ann").await.unwrap(), ["sms", "backup_code"]);
    let summary = mfa.factor_summary("ann").await.unwrap();
    let factor = &summary.factors[0];
    assert_eq!(factor.kind, "sms");
    assert!(factor.active && factor.restricted);
    assert_eq!(factor.detail["phone"], MASKED_PHONE);
    let listed = serde_json::to_value(&summary).unwrap();
    assert_eq!(listed["factors"][0]["phone"], MASKED_PHONE);
    assert_eq!(listed["factors"][0]["restricted"], true);
    assert!(!listed.to_string().contains("5551236789"));

    let token = mfa_token(&mfa, "ann").await;
    let sent = prepare(&mfa, &token).await.unwrap();
    assert_eq!(sent, json!({"message": "Code sent to +1*****6789"}));
    let code = h.phone.last_code();
    let done = finish(&mfa, &token, &code).await.unwrap();
    assert_eq!(done.amr, ["pwd", "sms"]);
    assert_eq!(done.method, "sms");
    assert_eq!(done.acr, "mfa");
    // Single use, and the token is spent.
    let again = mfa_token(&mfa, "ann").await;
    assert!(matches!(
        finish(&mfa, &again, &code).await,
        Err(MfaError::InvalidCode(_))
    ));
    assert!(matches!(
        finish(&mfa, &token, &code).await,
        Err(MfaError::InvalidMfaToken(_))
    ));
    assert_eq!(
        events(&mfa, "ann", "sms_sent").await,
        [
            json!({"purpose": "enrollment"}),
            json!({"purpose": "login"})
        ]
    );
    assert_eq!(events(&mfa, "ann", "sms_enrollment_started").await.len(), 1);
    assert_eq!(
        events(&mfa, "ann", "sms_enrolled").await,
        [json!({"credential_id": "sms", "backup_codes": 10})]
    );
    assert_eq!(
        events(&mfa, "ann", "mfa_failed").await,
        [json!({"method": "sms"})]
    );

    // A second enrollment is refused while one is active; removal ends it.
    assert!(matches!(
        mfa.start_enrollment("ann", "sms", &phone_input(PHONE), &ClientInfo::default())
            .await,
        Err(MfaError::AlreadyEnrolled(_))
    ));
    assert!(mfa.remove_factor("ann", "sms", "sms").await.unwrap());
    assert!(!mfa.is_enrolled("ann").await.unwrap());
    assert_eq!(mfa.remaining_backup_codes("ann").await.unwrap(), 0);
    assert_eq!(
        events(&mfa, "ann", "sms_removed").await,
        [json!({"credential_id": "sms"})]
    );
}

async fn a_resend_waits_for_the_cooldown(h: Harness) {
    let mfa = h.mfa.clone();
    h.enroll_sms(&mfa, "bo").await;
    let token = mfa_token(&mfa, "bo").await;
    prepare(&mfa, &token).await.unwrap();
    h.clock.advance(Duration::from_secs(10));
    assert_eq!(
        retry_after(prepare(&mfa, &token).await),
        Duration::from_secs(20)
    );
    assert_eq!(
        events(&mfa, "bo", "sms_refused").await,
        [json!({"reason": "cooldown"})]
    );
    h.clock.advance(Duration::from_secs(20));
    let first = h.phone.last_code();
    prepare(&mfa, &token).await.unwrap();
    // The resend replaced the first code; the new one works.
    let code = h.phone.last_code();
    if code != first {
        assert!(matches!(
            finish(&mfa, &token, &first).await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    finish(&mfa, &token, &code).await.unwrap();
}

async fn sends_are_limited_per_number_per_user_and_per_address(h: Harness) {
    // The number's owner, enrolled before anyone else tries it.
    h.enroll_sms(&h.mfa, "owner").await;
    // Per number: two users share one number.
    let mfa = h.with_sms_policy(SmsPolicy {
        sends: SendPolicy {
            per_destination: hourly(3),
            ..no_cooldown().sends
        },
        ..SmsPolicy::default()
    });
    // The owner's own enrollment counted once: two more tries, then the number's enrollment
    // budget is spent.
    for (user, expected_ok) in [("cy", true), ("cy", true), ("di", false)] {
        let outcome = mfa
            .start_enrollment(user, "sms", &phone_input(PHONE), &ClientInfo::default())
            .await;
        assert_eq!(outcome.is_ok(), expected_ok, "{user}: {outcome:?}");
    }
    assert_eq!(
        events(&mfa, "di", "sms_refused").await,
        [json!({"reason": "destination_limit"})]
    );
    // Strangers enrolling the owner's number never spend the budget of its login codes.
    let texts = h.phone.count();
    let token = mfa_token(&mfa, "owner").await;
    prepare(&mfa, &token).await.unwrap();
    assert_eq!(h.phone.count(), texts + 1);
    // The hour passes.
    h.clock.advance(Duration::from_secs(3601));
    mfa.start_enrollment("di", "sms", &phone_input(PHONE), &ClientInfo::default())
        .await
        .unwrap();

    // Per user, whatever the number.
    let mfa = h.with_sms_policy(SmsPolicy {
        sends: SendPolicy {
            per_user: hourly(2),
            ..no_cooldown().sends
        },
        ..SmsPolicy::default()
    });
    for number in ["+15550000001", "+15550000002"] {
        mfa.start_enrollment("ed", "sms", &phone_input(number), &ClientInfo::default())
            .await
            .unwrap();
    }
    assert_eq!(
        retry_after(
            mfa.start_enrollment(
                "ed",
                "sms",
                &phone_input("+15550000003"),
                &ClientInfo::default()
            )
            .await
        ),
        Duration::from_secs(3600)
    );
    assert_eq!(
        events(&mfa, "ed", "sms_refused").await,
        [json!({"reason": "user_limit"})]
    );
    // Per address, whatever the user.
    let mfa = h.with_sms_policy(SmsPolicy {
        sends: SendPolicy {
            per_address: hourly(1),
            ..no_cooldown().sends
        },
        ..SmsPolicy::default()
    });
    let address = client_at("192.0.2.9");
    mfa.start_enrollment("fa", "sms", &phone_input("+15550000004"), &address)
        .await
        .unwrap();
    retry_after(
        mfa.start_enrollment("gu", "sms", &phone_input("+15550000005"), &address)
            .await,
    );
    assert_eq!(
        events(&mfa, "gu", "sms_refused").await,
        [json!({"reason": "address_limit"})]
    );
    // Another address is not affected.
    mfa.start_enrollment(
        "gu",
        "sms",
        &phone_input("+15550000005"),
        &client_at("192.0.2.10"),
    )
    .await
    .unwrap();
}

async fn a_new_code_keeps_the_failure_count(h: Harness) {
    let mfa = lockable(&h.with_sms_policy(SmsPolicy {
        sends: SendPolicy {
            per_destination: hourly(100),
            per_user: hourly(100),
            ..no_cooldown().sends
        },
        ..SmsPolicy::default()
    }));
    h.enroll_sms(&mfa, "ha").await;
    let mut failures = 0;
    for _ in 0..3 {
        let token = mfa_token(&mfa, "ha").await;
        prepare(&mfa, &token).await.unwrap();
        let wrong = other_than(&h.phone.last_code());
        for _ in 0..2 {
            assert!(matches!(
                finish(&mfa, &token, wrong).await,
                Err(MfaError::InvalidCode(_))
            ));
            failures += 1;
        }
        // Another code for the same token: the count goes on.
        prepare(&mfa, &token).await.unwrap();
        assert_eq!(h.factors().failures("ha", "sms").await.unwrap(), failures);
    }
}

async fn codes_expire_by_the_injected_clock(h: Harness) {
    let mfa = h.with_sms_policy(SmsPolicy {
        sends: SendPolicy {
            code_ttl: Duration::from_secs(120),
            ..no_cooldown().sends
        },
        ..SmsPolicy::default()
    });
    h.enroll_sms(&mfa, "io").await;
    let token = mfa_token(&mfa, "io").await;
    prepare(&mfa, &token).await.unwrap();
    let code = h.phone.last_code();
    h.clock.advance(Duration::from_secs(120));
    assert!(matches!(
        finish(&mfa, &token, &code).await,
        Err(MfaError::InvalidCode(_))
    ));
    // A code lives 10 minutes at most, whatever the policy asks.
    let long = h.with_sms_policy(SmsPolicy {
        sends: SendPolicy {
            code_ttl: Duration::from_secs(3600),
            ..no_cooldown().sends
        },
        ..SmsPolicy::default()
    });
    long.start_enrollment("jo", "sms", &phone_input(PHONE), &ClientInfo::default())
        .await
        .unwrap();
    let code = h.phone.last_code();
    h.clock.advance(Duration::from_secs(10 * 60));
    assert_refused(
        long.finish_enrollment("jo", "sms", &json!({"code": code}), &ClientInfo::default())
            .await,
        400,
        "invalid_mfa_code",
    );
    assert!(!long.is_enrolled("jo").await.unwrap());
}

async fn one_code_submitted_100_times_at_once_succeeds_once(h: Harness) {
    let mfa = h.unlimited();
    h.enroll_sms(&mfa, "ka").await;
    let token = mfa_token(&mfa, "ka").await;
    prepare(&mfa, &token).await.unwrap();
    let code = h.phone.last_code();
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

async fn a_hundred_wrong_sms_codes_lock_the_factor(h: Harness) {
    let mfa = lockable(&h.mfa);
    h.enroll_sms(&mfa, "lu").await;
    for attempt in 0..100 {
        // Each mfa_token dies at its fifth wrong code: take a new one each time.
        let token = mfa_token(&mfa, "lu").await;
        match finish(&mfa, &token, "000000").await {
            Err(MfaError::InvalidCode(_)) => {}
            other => panic!("wrong code {attempt}: {other:?}"),
        }
    }
    assert!(mfa.is_locked("lu", "sms").await.unwrap());
    // Not offered any more; refused whatever is asked of it, and nothing is sent.
    assert_eq!(mfa.methods("lu").await.unwrap(), ["backup_code"]);
    let texts = h.phone.count();
    let token = mfa_token(&mfa, "lu").await;
    assert_eq!(locked_kind(prepare(&mfa, &token).await), "sms");
    assert_eq!(locked_kind(finish(&mfa, &token, "123456").await), "sms");
    assert_eq!(h.phone.count(), texts);
    assert_eq!(
        events(&mfa, "lu", "factor_locked").await,
        [json!({"method": "sms", "failures": 100})]
    );
    assert!(mfa.factor_summary("lu").await.unwrap().factors[0].locked);
}

async fn a_code_of_one_mfa_token_is_refused_on_another(h: Harness) {
    let mfa = h.with_sms_policy(no_cooldown());
    h.enroll_sms(&mfa, "mi").await;
    let first = mfa_token(&mfa, "mi").await;
    let second = mfa_token(&mfa, "mi").await;
    prepare(&mfa, &first).await.unwrap();
    let code = h.phone.last_code();
    assert!(matches!(
        finish(&mfa, &second, &code).await,
        Err(MfaError::InvalidCode(_))
    ));
    finish(&mfa, &first, &code).await.unwrap();
    // No code for a token that is none.
    assert!(matches!(
        prepare(&mfa, "not a token").await,
        Err(MfaError::InvalidMfaToken(_))
    ));
}

async fn bad_numbers_and_countries_off_the_allow_list_are_refused(h: Harness) {
    for bad in [
        "5551236789",
        "+0123456789",
        "+1555",
        "+1555123678901234",
        "+1 555 CALL NOW",
    ] {
        let refused = h
            .mfa
            .start_enrollment("no", "sms", &phone_input(bad), &ClientInfo::default())
            .await;
        assert!(
            matches!(refused, Err(MfaError::InvalidInput(_))),
            "{bad}: {refused:?}"
        );
        assert!(!refused.unwrap_err().description().contains(bad));
    }
    let missing = h
        .mfa
        .start_enrollment("no", "sms", &json!({}), &ClientInfo::default())
        .await;
    assert_eq!(missing.unwrap_err().description(), "missing field phone");
    let mfa = h.with_sms_policy(SmsPolicy {
        allowed_country_codes: Some(vec!["44".into(), "49".into()]),
        ..SmsPolicy::default()
    });
    assert_refused(
        mfa.start_enrollment("no", "sms", &phone_input(PHONE), &ClientInfo::default())
            .await,
        400,
        "country_not_allowed",
    );
    assert_eq!(
        events(&mfa, "no", "sms_refused").await,
        [json!({"reason": "country_not_allowed"})]
    );
    assert_eq!(h.phone.count(), 0);
    assert!(mfa.factor_summary("no").await.unwrap().factors.is_empty());
    mfa.start_enrollment(
        "no",
        "sms",
        &phone_input("+447700900123"),
        &ClientInfo::default(),
    )
    .await
    .unwrap();
}

/// The allow-list by region: `US` admits the United States only, not Canada though it shares
/// `+1`; a number of no region is refused too.
async fn numbers_outside_the_allowed_regions_are_refused(h: Harness) {
    let region = |code: &str| code.parse::<stepup_mfa::sms::Region>().unwrap();
    let mfa = h.with_sms_policy(SmsPolicy {
        allowed_regions: Some(vec![region("US")]),
        ..no_cooldown()
    });
    let refusals = [
        ("ca", "+1 613 555 0123"),
        ("jm", "+1 876 555 0123"),
        ("gb", "+44 7700 900123"),
        ("freephone", "+800 1234 5678"),
    ];
    for (user, number) in refusals {
        assert_refused(
            mfa.start_enrollment(user, "sms", &phone_input(number), &ClientInfo::default())
                .await,
            400,
            "country_not_allowed",
        );
        assert_eq!(
            events(&mfa, user, "sms_refused").await,
            [json!({"reason": "country_not_allowed"})],
            "{number}"
        );
        assert!(mfa.factor_summary(user).await.unwrap().factors.is_empty());
    }
    assert_eq!(h.phone.count(), 0, "nothing was texted");
    mfa.start_enrollment(
        "us",
        "sms",
        &phone_input("+1 202 555 0143"),
        &ClientInfo::default(),
    )
    .await
    .unwrap();
    assert_eq!(h.phone.count(), 1);

    let europe = h.with_sms_policy(SmsPolicy {
        allowed_regions: Some(vec![region("GB"), region("DE")]),
        ..no_cooldown()
    });
    for (user, number) in [("de", "+49 30 1234567"), ("uk", "+44 7400 123456")] {
        europe
            .start_enrollment(user, "sms", &phone_input(number), &ClientInfo::default())
            .await
            .unwrap();
    }
    assert_refused(
        europe
            .start_enrollment(
                "us2",
                "sms",
                &phone_input("+1 202 555 0143"),
                &ClientInfo::default(),
            )
            .await,
        400,
        "country_not_allowed",
    );
}

/// The per-address send limit groups IPv6 clients like every per-address limit: clients of one
/// /64 share one budget, another /64 has its own.
async fn sends_from_one_ipv6_64_share_the_address_budget(h: Harness) {
    let mfa = h.with_sms_policy(SmsPolicy {
        sends: SendPolicy {
            per_address: hourly(2),
            ..no_cooldown().sends
        },
        ..SmsPolicy::default()
    });
    let enroll = |user: &'static str, number: &'static str, address: &'static str| {
        let mfa = mfa.clone();
        async move {
            mfa.start_enrollment(user, "sms", &phone_input(number), &client_at(address))
                .await
        }
    };
    enroll("ha", "+15550000011", "2001:db8:5:6::1")
        .await
        .unwrap();
    enroll("hb", "+15550000012", "2001:db8:5:6:ffff::2")
        .await
        .unwrap();
    assert_eq!(
        retry_after(enroll("hc", "+15550000013", "2001:db8:5:6::abc").await),
        Duration::from_secs(3600),
        "a third address of the /64 finds the budget spent"
    );
    assert_eq!(
        events(&mfa, "hc", "sms_refused").await,
        [json!({"reason": "address_limit"})]
    );
    enroll("hd", "+15550000014", "2001:db8:5:7::1")
        .await
        .unwrap();
    assert_eq!(h.phone.count(), 3);
}

/// The engine refuses a restricted factor alone.
fn strict(mfa: &Mfa) -> Mfa {
    mfa.clone().with_restricted_factor_alone(false)
}

async fn sms_can_be_refused_as_the_only_factor(h: Harness) {
    let mfa = strict(&h.mfa);
    assert_refused(
        mfa.start_enrollment("ola", "sms", &phone_input(PHONE), &ClientInfo::default())
            .await,
        400,
        "sms_needs_another_factor",
    );
    assert_eq!(
        events(&mfa, "ola", "sms_refused").await,
        [json!({"reason": "sms_needs_another_factor"})]
    );
    assert_eq!(h.phone.count(), 0);
    // Beside an authenticator app it is welcome.
    h.enroll_totp(&mfa, "ola").await;
    h.enroll_sms(&mfa, "ola").await;
    assert_eq!(
        mfa.methods("ola").await.unwrap(),
        ["totp", "sms", "backup_code"]
    );
}

async fn removing_the_other_factor_is_refused_while_sms_would_be_left_alone(h: Harness) {
    let strict = strict(&h.mfa);
    h.enroll_totp(&strict, "quin").await;
    h.enroll_sms(&strict, "quin").await;
    // Removing the app would leave SMS alone: refused (409), nothing removed.
    let refused = strict.remove_factor("quin", "totp", "totp").await;
    assert!(refused.as_ref().unwrap_err().description().contains("SMS"));
    assert_refused(refused, 409, "sms_needs_another_factor");
    assert_eq!(
        strict.methods("quin").await.unwrap(),
        ["totp", "sms", "backup_code"]
    );
    // SMS itself may go; then the app may go too.
    assert!(strict.remove_factor("quin", "sms", "sms").await.unwrap());
    assert!(strict.remove_factor("quin", "totp", "totp").await.unwrap());
    assert!(!strict.is_enrolled("quin").await.unwrap());

    // Where the engine allows a restricted factor alone (the default), the app can go.
    let lenient = h.mfa.clone();
    h.enroll_totp(&lenient, "rae").await;
    h.enroll_sms(&lenient, "rae").await;
    assert!(lenient.remove_factor("rae", "totp", "totp").await.unwrap());
    assert_eq!(
        lenient.methods("rae").await.unwrap(),
        ["sms", "backup_code"]
    );
}

async fn a_number_begun_beside_a_factor_since_removed_is_not_confirmed(h: Harness) {
    let strict = strict(&h.mfa);
    h.enroll_totp(&strict, "uma").await;
    strict
        .start_enrollment("uma", "sms", &phone_input(PHONE), &ClientInfo::default())
        .await
        .unwrap();
    let code = h.phone.last_code();
    // The number is only pending, so the app may go; then the number cannot be confirmed alone.
    assert!(strict.remove_factor("uma", "totp", "totp").await.unwrap());
    assert_refused(
        strict
            .finish_enrollment("uma", "sms", &json!({"code": code}), &ClientInfo::default())
            .await,
        400,
        "sms_needs_another_factor",
    );
    assert!(!strict.is_enrolled("uma").await.unwrap());
}

/// Confirming a number and removing the only other factor, at once, for many users: the check
/// each makes of the other factors holds while it writes (one factor change per user at a time),
/// so SMS is never left alone, whichever wins.
async fn racing_factor_changes_never_leave_sms_alone(h: Harness) {
    let strict = strict(&h.with_sms_policy(SmsPolicy {
        sends: SendPolicy {
            per_destination: Vec::new(),
            ..SendPolicy::default()
        },
        ..SmsPolicy::default()
    }));
    let users: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    let mut pending = Vec::new();
    for user in &users {
        h.enroll_totp(&strict, user).await;
        strict
            .start_enrollment(user, "sms", &phone_input(PHONE), &ClientInfo::default())
            .await
            .unwrap();
        pending.push((user.clone(), h.phone.last_code()));
    }
    let tasks: Vec<_> = pending
        .into_iter()
        .map(|(user, code)| {
            let (confirmer, remover) = (strict.clone(), strict.clone());
            let (u1, u2) = (user.clone(), user);
            tokio::spawn(async move {
                tokio::join!(
                    tokio::spawn(async move {
                        confirmer
                            .finish_enrollment(
                                &u1,
                                "sms",
                                &json!({"code": code}),
                                &ClientInfo::default(),
                            )
                            .await
                    }),
                    tokio::spawn(async move { remover.remove_factor(&u2, "totp", "totp").await }),
                )
            })
        })
        .collect();
    for task in tasks {
        let (confirmed, removed) = task.await.unwrap();
        let (confirmed, removed) = (confirmed.unwrap(), removed.unwrap());
        assert!(
            !(confirmed.is_ok() && matches!(removed, Ok(true))),
            "both won: {confirmed:?} {removed:?}"
        );
        let refusals = [confirmed.as_ref().err(), removed.as_ref().err()];
        for refused in refusals.into_iter().flatten() {
            assert!(
                matches!(refused, MfaError::FactorChangeInProgress(_))
                    || refused.code() == "sms_needs_another_factor",
                "{refused:?}"
            );
        }
    }
    for user in &users {
        let methods = strict.methods(user).await.unwrap();
        assert!(
            !methods.iter().any(|m| m == "sms") || methods.iter().any(|m| m == "totp"),
            "{user}: SMS alone: {methods:?}"
        );
    }
}

async fn reseal_moves_the_phone_numbers_to_the_new_key(h: Harness) {
    h.enroll_sms(&h.mfa, "sol").await;
    let stored = async || -> String {
        let credential = stored_credentials(h.factors(), "sol", "sms")
            .await
            .remove(0);
        let payload: Value = serde_json::from_str(&credential.payload).unwrap();
        payload["number"].as_str().unwrap().to_owned()
    };
    assert_eq!(Keyring::key_id_of(&stored().await), Ok("k1"));
    let mfa = h.engine_on(
        &h.stores,
        Keyring::new("k2", &[9; 32])
            .unwrap()
            .with_old_key("k1", &[1; 32])
            .unwrap(),
    );
    assert_eq!(mfa.reseal_secrets().await.unwrap(), 1);
    assert_eq!(Keyring::key_id_of(&stored().await), Ok("k2"));
    assert_eq!(
        mfa.reseal_secrets().await.unwrap(),
        0,
        "nothing left to move"
    );
    // The new key alone opens the number: the old key can be dropped.
    let new_only = h.engine_on(&h.stores, Keyring::new("k2", &[9; 32]).unwrap());
    let summary = new_only.factor_summary("sol").await.unwrap();
    assert_eq!(summary.factors[0].detail["phone"], MASKED_PHONE);
    let token = mfa_token(&new_only, "sol").await;
    prepare(&new_only, &token).await.unwrap();
    finish(&new_only, &token, &h.phone.last_code())
        .await
        .unwrap();
    // The old key alone no longer does.
    assert!(matches!(
        h.mfa.factor_summary("sol").await,
        Err(MfaError::Internal(_))
    ));
}

#[tokio::test]
async fn the_database_holds_no_number_and_no_code() {
    let h = Harness::sqlite().await;
    let mfa = h.mfa.clone();
    h.enroll_sms(&mfa, "pia").await;
    let token = mfa_token(&mfa, "pia").await;
    prepare(&mfa, &token).await.unwrap();
    let codes: Vec<String> = h
        .phone
        .texts()
        .iter()
        .map(|(_, body)| code_in(body))
        .collect();
    assert_eq!(codes.len(), 2);
    let Backend::Sqlite { dir, .. } = &h.backend else {
        unreachable!()
    };
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(bytes.len() > 4096, "the test must read a real database");
    let dump = String::from_utf8_lossy(&bytes);
    assert!(dump.contains("pia"), "the user's rows are there");
    assert!(!dump.contains("5551236789"), "the number is sealed");
    for code in &codes {
        assert!(
            !contains_word(&dump, code),
            "the code is kept only as a keyed digest"
        );
    }
}

/// An SMS-only user signs in through the password step to the SMS challenge; the login reaches
/// `mfa`, its `amr` names SMS and the password, never SMS twice.
#[tokio::test]
async fn a_password_login_continues_with_an_sms_code() {
    let h = Harness::memory().await;
    h.enroll_sms(&h.mfa, "val").await;
    let LoginStep::MfaRequired(challenge) = h.sign_in(&h.mfa, "val").await.unwrap() else {
        panic!("an enrolled user needs the second factor");
    };
    assert_eq!(challenge.methods, ["sms", "backup_code"]);
    prepare(&h.mfa, &challenge.mfa_token).await.unwrap();
    let login = h
        .mfa
        .finish_mfa(
            &challenge.mfa_token,
            "sms",
            &json!({"code": h.phone.last_code()}),
            false,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    let token = h.token(&h.mfa, login).await;
    assert_eq!(token.acr(), Some("mfa"));
    assert_eq!(token.amr(), ["pwd", "sms"]);
}

/// Whether `needle` occurs in `haystack` not as part of a longer run of letters and digits (a
/// 6-digit code may turn up inside a random hex id by chance).
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}
