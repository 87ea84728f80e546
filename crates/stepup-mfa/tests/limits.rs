//! The limits on guessing, on every store backend: the per-user window and its growing lockouts,
//! the `mfa_token`'s own bound under races, the 100-failure factor lock (per factor, not offered
//! while locked, ended by removal or a new enrollment), and the client address's budget.

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use stepup_core::client::AddressGrouping;
use stepup_mfa::totp::TotpKey;
use stepup_mfa::{AddressPolicy, AttemptPolicy, ClientInfo, MAX_CODE_ATTEMPTS, Mfa, MfaError};
use support::*;

on_every_store!(
    the_sixth_wrong_code_is_refused_even_with_fresh_mfa_tokens,
    lockouts_grow_with_each_burst_and_successes_forgive,
    a_burst_of_100_concurrent_guesses_gets_five_tries,
    one_mfa_token_has_five_proofs_checked_however_many_race,
    ninety_nine_wrong_totp_codes_then_a_right_one_reset_the_streak,
    a_hundred_wrong_totp_codes_in_a_row_lock_the_factor,
    a_backup_code_streak_is_separate,
    a_streak_ends_when_its_factor_is_removed_or_enrolled_anew,
    failed_logins_spend_the_address_budget_and_successes_never_do,
);

on_every_store!(redis: one_mfa_token_has_five_proofs_checked_however_many_race);

async fn the_sixth_wrong_code_is_refused_even_with_fresh_mfa_tokens(h: Harness) {
    let (key, enrolled) = h.enroll_totp(&h.mfa, "ivan").await;
    let mfa = &h.mfa;
    let wrong = h.wrong_code(&key);
    for _ in 0..5 {
        assert!(matches!(
            totp_login(mfa, "ivan", &wrong).await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    let wait = retry_after(totp_login(mfa, "ivan", &h.code(&key)).await);
    assert_eq!(wait, Duration::from_secs(300));
    assert_eq!(
        events(mfa, "ivan", "lockout").await,
        [json!({"seconds": 300})]
    );
    // Every path that checks a code is closed: backup codes too.
    retry_after(backup_login(mfa, "ivan", &enrolled.backup_codes[0]).await);
    // Another user is not affected.
    let (other_key, _) = h.enroll_totp(mfa, "judy").await;
    totp_login(mfa, "judy", &h.code(&other_key)).await.unwrap();

    // After the lockout (the window's length for a first burst; judy's enrollment took 30 s of
    // it), codes work again.
    h.clock.advance(Duration::from_secs(300 - 30 - 1));
    retry_after(totp_login(mfa, "ivan", &h.code(&key)).await);
    h.clock.advance(Duration::from_secs(1));
    totp_login(mfa, "ivan", &h.code(&key)).await.unwrap();
}

async fn lockouts_grow_with_each_burst_and_successes_forgive(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "kim").await;
    let mfa = &h.mfa;
    // Four failures then a success: the count starts again.
    for _ in 0..4 {
        assert!(totp_login(mfa, "kim", &h.wrong_code(&key)).await.is_err());
    }
    totp_login(mfa, "kim", &h.code(&key)).await.unwrap();
    for _ in 0..5 {
        assert!(matches!(
            totp_login(mfa, "kim", &h.wrong_code(&key)).await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    assert_eq!(
        retry_after(totp_login(mfa, "kim", &h.wrong_code(&key)).await),
        Duration::from_secs(300)
    );
    // The second burst of the day locks for twice as long, the third four times.
    for expected in [600, 1200] {
        h.clock.advance(Duration::from_secs(3600));
        for _ in 0..5 {
            assert!(matches!(
                totp_login(mfa, "kim", &h.wrong_code(&key)).await,
                Err(MfaError::InvalidCode(_))
            ));
        }
        let wait = retry_after(totp_login(mfa, "kim", &h.wrong_code(&key)).await);
        assert_eq!(wait, Duration::from_secs(expected));
    }
    assert_eq!(
        events(mfa, "kim", "lockout").await,
        [
            json!({"seconds": 300}),
            json!({"seconds": 600}),
            json!({"seconds": 1200})
        ]
    );
}

/// 100 wrong codes at once, each on its own `mfa_token` and from its own address: the user's
/// limit lets five be checked.
async fn a_burst_of_100_concurrent_guesses_gets_five_tries(h: Harness) {
    h.enroll_totp(&h.mfa, "lou").await;
    let mut tokens = Vec::new();
    for _ in 0..100 {
        tokens.push(mfa_token(&h.mfa, "lou").await);
    }
    let tasks: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let mfa = h.mfa.clone();
            tokio::spawn(async move {
                let code = json!({"code": format!("{i:06}")});
                mfa.finish_challenge(&token, "totp", &code, &nth_client(i))
                    .await
            })
        })
        .collect();
    let mut checked = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(MfaError::RateLimited(_)) => {}
            Err(MfaError::InvalidCode(_)) | Ok(_) => checked += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(checked, 5, "only five guesses may be checked");
}

/// The token's own bound, apart from the per-user one (set out of reach here): its attempts are
/// counted before each check, so 100 racing wrong codes get five checks between them, not 100.
async fn one_mfa_token_has_five_proofs_checked_however_many_race(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "meg").await;
    let mfa = h.unlimited();
    let token = mfa_token(&mfa, "meg").await;
    let wrong = h.wrong_code(&key);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (mfa, token, code) = (mfa.clone(), token.clone(), wrong.clone());
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
    let mut checked = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(MfaError::InvalidCode(_)) => checked += 1,
            Err(MfaError::InvalidMfaToken(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        checked, MAX_CODE_ATTEMPTS,
        "only five proofs may be checked on one token"
    );
    // Dead: even the right code is refused now.
    let good = json!({"code": h.code(&key)});
    assert!(matches!(
        mfa.finish_challenge(&token, "totp", &good, &ClientInfo::default())
            .await,
        Err(MfaError::InvalidMfaToken(_))
    ));
}

/// `count` wrong TOTP codes, each checked and refused; the clock moves a whole per-user window on
/// after each, so that limit never blocks and only the factor's streak grows.
async fn wrong_totp_codes(h: &Harness, mfa: &Mfa, key: &TotpKey, user: &str, count: u64) {
    for attempt in 0..count {
        match totp_login(mfa, user, &h.wrong_code(key)).await {
            Err(MfaError::InvalidCode(_)) => {}
            other => panic!("wrong code {attempt}: expected InvalidCode, got {other:?}"),
        }
        h.clock.advance(WINDOW);
    }
}

/// `count` wrong (well-formed) backup codes, like [`wrong_totp_codes`].
async fn wrong_backup_codes(h: &Harness, mfa: &Mfa, codes: &[String], user: &str, count: u64) {
    let wrong = "ZZZZZ-ZZZZZ";
    assert!(!codes.iter().any(|code| code == wrong));
    for attempt in 0..count {
        match backup_login(mfa, user, wrong).await {
            Err(MfaError::InvalidCode(_)) => {}
            other => panic!("wrong backup code {attempt}: expected InvalidCode, got {other:?}"),
        }
        h.clock.advance(WINDOW);
    }
}

/// The stored `factor_locked` events of `user`.
async fn lock_events(mfa: &Mfa, user: &str) -> Vec<Value> {
    events(mfa, user, "factor_locked").await
}

/// The default limits, the lock after 100 failures in a row.
fn lock_policy(mfa: &Mfa) -> Mfa {
    mfa.clone().with_attempt_policy(AttemptPolicy {
        lock_after: 100,
        ..AttemptPolicy::default()
    })
}

async fn ninety_nine_wrong_totp_codes_then_a_right_one_reset_the_streak(h: Harness) {
    let (key, _) = h.enroll_totp(&h.mfa, "mo").await;
    let mfa = lock_policy(&h.mfa);
    wrong_totp_codes(&h, &mfa, &key, "mo", 99).await;
    assert!(!mfa.is_locked("mo", "totp").await.unwrap());
    assert_eq!(h.factors().failures("mo", "totp").await.unwrap(), 99);
    totp_login(&mfa, "mo", &h.code(&key)).await.unwrap();
    assert_eq!(h.factors().failures("mo", "totp").await.unwrap(), 0);
    // The streak starts again: 99 more wrong codes still leave the factor usable.
    wrong_totp_codes(&h, &mfa, &key, "mo", 99).await;
    assert!(!mfa.is_locked("mo", "totp").await.unwrap());
    totp_login(&mfa, "mo", &h.code(&key)).await.unwrap();
    assert!(lock_events(&mfa, "mo").await.is_empty());
    let summary = mfa.factor_summary("mo").await.unwrap();
    assert!(!summary.factors[0].locked, "{summary:?}");
}

async fn a_hundred_wrong_totp_codes_in_a_row_lock_the_factor(h: Harness) {
    let (key, enrolled) = h.enroll_totp(&h.mfa, "nell").await;
    let mfa = lock_policy(&h.mfa);
    wrong_totp_codes(&h, &mfa, &key, "nell", 99).await;
    assert!(!mfa.is_locked("nell", "totp").await.unwrap());
    assert!(lock_events(&mfa, "nell").await.is_empty());
    // The hundredth is checked (and wrong), and locks the factor.
    wrong_totp_codes(&h, &mfa, &key, "nell", 1).await;
    assert!(mfa.is_locked("nell", "totp").await.unwrap());

    // A locked factor is no longer offered: the backup codes are.
    assert_eq!(mfa.methods("nell").await.unwrap(), ["backup_code"]);
    let challenge = mfa.start_challenge("nell", &["pwd"], None).await.unwrap();
    assert_eq!(challenge.methods, ["backup_code"]);
    // Even the right code is refused, and so is a wrong one (403, named).
    let right = json!({"code": h.code(&key)});
    let refused = mfa
        .finish_challenge(&challenge.mfa_token, "totp", &right, &ClientInfo::default())
        .await;
    assert_eq!(refused.as_ref().unwrap_err().status().as_u16(), 403);
    assert_eq!(refused.as_ref().unwrap_err().code(), "factor_locked");
    assert_eq!(locked_kind(refused), "totp");
    let wrong = json!({"code": h.wrong_code(&key)});
    assert_eq!(
        locked_kind(
            mfa.finish_challenge(&challenge.mfa_token, "totp", &wrong, &ClientInfo::default())
                .await
        ),
        "totp"
    );
    // Refusals of a locked factor check nothing and do not lengthen the streak.
    assert_eq!(h.factors().failures("nell", "totp").await.unwrap(), 100);
    // It stays locked however long one waits: only a recovery or a reset unlocks it.
    h.clock.advance(Duration::from_secs(3 * 24 * 60 * 60));
    assert_eq!(
        locked_kind(totp_login(&mfa, "nell", &h.code(&key)).await),
        "totp"
    );
    assert!(mfa.is_locked("nell", "totp").await.unwrap());

    // Locked once, audited once.
    assert_eq!(
        lock_events(&mfa, "nell").await,
        [json!({"method": "totp", "failures": 100})]
    );
    let summary = mfa.factor_summary("nell").await.unwrap();
    assert_eq!(summary.factors.len(), 1, "{summary:?}");
    assert!(summary.factors[0].locked, "{summary:?}");
    assert_eq!(summary.factors[0].status, "active");

    // The backup codes are another factor: they still work, and do not unlock the app.
    assert!(!mfa.is_locked("nell", "backup_code").await.unwrap());
    let done = login(
        &mfa,
        "nell",
        "backup_code",
        json!({"code": enrolled.backup_codes[0]}),
    )
    .await
    .unwrap();
    assert_eq!(done.method, "backup_code");
    assert_eq!(done.answer["remaining_codes"], 9);
    assert!(mfa.is_locked("nell", "totp").await.unwrap());
    h.clock.advance(Duration::from_secs(30));
    assert_eq!(
        locked_kind(totp_login(&mfa, "nell", &h.code(&key)).await),
        "totp"
    );
    assert_eq!(lock_events(&mfa, "nell").await.len(), 1);

    // An administrator's reset unlocks (and removes) it.
    mfa.admin_reset("nell", "root").await.unwrap();
    assert!(!mfa.is_locked("nell", "totp").await.unwrap());
}

async fn a_backup_code_streak_is_separate(h: Harness) {
    let (key, enrolled) = h.enroll_totp(&h.mfa, "ona").await;
    let codes = &enrolled.backup_codes;
    let mfa = lock_policy(&h.mfa);
    wrong_totp_codes(&h, &mfa, &key, "ona", 99).await;
    // Wrong backup codes lengthen their own streak, not the app's.
    wrong_backup_codes(&h, &mfa, codes, "ona", 100).await;
    assert!(mfa.is_locked("ona", "backup_code").await.unwrap());
    assert!(!mfa.is_locked("ona", "totp").await.unwrap());
    assert_eq!(
        lock_events(&mfa, "ona").await,
        [json!({"method": "backup_code", "failures": 100})]
    );
    assert_eq!(
        locked_kind(backup_login(&mfa, "ona", &codes[0]).await),
        "backup_code"
    );
    // Locked backup codes are not offered.
    assert_eq!(mfa.methods("ona").await.unwrap(), ["totp"]);
    let token = mfa_token(&mfa, "ona").await;
    assert_eq!(
        locked_kind(
            mfa.finish_challenge(
                &token,
                "backup_code",
                &json!({"code": codes[0]}),
                &ClientInfo::default()
            )
            .await
        ),
        "backup_code"
    );
    // The app still works, and its success does not unlock the backup codes.
    let done = mfa
        .finish_challenge(
            &token,
            "totp",
            &json!({"code": h.code(&key)}),
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    assert_eq!(done.method, "totp");
    assert!(mfa.is_locked("ona", "backup_code").await.unwrap());
    assert_eq!(
        locked_kind(backup_login(&mfa, "ona", &codes[0]).await),
        "backup_code"
    );
    // Nothing was consumed by the refusals.
    assert_eq!(mfa.remaining_backup_codes("ona").await.unwrap(), 10);
    // The app's streak was ended by its success: one more wrong code does not lock it.
    wrong_totp_codes(&h, &mfa, &key, "ona", 1).await;
    assert!(!mfa.is_locked("ona", "totp").await.unwrap());
    assert_eq!(lock_events(&mfa, "ona").await.len(), 1);
}

/// A factor's failure streak belongs to the factor: removing it ends the streak, and a kind
/// enrolled anew starts without one (it is never locked at once).
async fn a_streak_ends_when_its_factor_is_removed_or_enrolled_anew(h: Harness) {
    let mfa = lockable(&h.mfa);
    let (key, _) = h.enroll_totp(&mfa, "pia").await;
    for _ in 0..100 {
        assert!(matches!(
            totp_login(&mfa, "pia", &h.wrong_code(&key)).await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    assert!(mfa.is_locked("pia", "totp").await.unwrap());
    // The locked factor is removed: its streak goes with it.
    assert!(mfa.remove_factor("pia", "totp", "totp").await.unwrap());
    assert!(!mfa.is_locked("pia", "totp").await.unwrap());
    assert_eq!(h.factors().failures("pia", "totp").await.unwrap(), 0);
    // Enrolled anew, it works at once.
    let (key, _) = h.enroll_totp(&mfa, "pia").await;
    assert!(!mfa.is_locked("pia", "totp").await.unwrap());
    assert_eq!(mfa.methods("pia").await.unwrap(), ["totp", "backup_code"]);
    totp_login(&mfa, "pia", &h.code(&key)).await.unwrap();

    // A streak a kind carries without a credential (left by an earlier engine, or by a failure
    // racing the removal) ends when the kind is enrolled anew.
    for _ in 0..100 {
        h.factors().record_failure("quinn", "totp").await.unwrap();
    }
    assert!(mfa.is_locked("quinn", "totp").await.unwrap());
    let (key, _) = h.enroll_totp(&mfa, "quinn").await;
    assert_eq!(h.factors().failures("quinn", "totp").await.unwrap(), 0);
    assert!(!mfa.is_locked("quinn", "totp").await.unwrap());
    totp_login(&mfa, "quinn", &h.code(&key)).await.unwrap();
    assert!(
        !mfa.factor_summary("quinn").await.unwrap().factors[0].locked,
        "a new factor is never listed as locked"
    );
}

/// Failed logins are limited per client address (30 per 5 minutes by default, IPv6 grouped by
/// /64), whichever users they name; a success never uses the budget up, so an office behind one
/// address keeps logging in.
async fn failed_logins_spend_the_address_budget_and_successes_never_do(h: Harness) {
    let mfa = h
        .mfa
        .clone()
        .with_attempt_policy(AttemptPolicy {
            max_failures: 1_000_000,
            ..AttemptPolicy::default()
        })
        .with_address_policy(AddressPolicy {
            max_failures: 3,
            window: WINDOW,
        })
        .with_address_grouping(AddressGrouping::ipv6_prefix(64));
    let (key, _) = h.enroll_totp(&mfa, "raf").await;
    let office = client_at("2001:db8:1:2::10");
    let neighbour = client_at("2001:db8:1:2:ffff::1");
    let elsewhere = client_at("2001:db8:1:3::10");
    let finish = async |client: &ClientInfo, code: String| {
        let token = mfa_token(&mfa, "raf").await;
        mfa.finish_challenge(&token, "totp", &json!({"code": code}), client)
            .await
    };
    // Successes never count: many logins from one address.
    for _ in 0..5 {
        finish(&office, h.code(&key)).await.unwrap();
        h.clock.advance(Duration::from_secs(30));
    }
    // Three failures from the /64 (two addresses of it), then the fourth attempt is refused,
    // right or wrong, and a bad mfa_token too.
    for client in [&office, &neighbour, &office] {
        assert!(matches!(
            finish(client, h.wrong_code(&key)).await,
            Err(MfaError::InvalidCode(_))
        ));
    }
    retry_after(finish(&neighbour, h.code(&key)).await);
    retry_after(
        mfa.finish_challenge("no-such-token", "totp", &json!({"code": "1"}), &office)
            .await,
    );
    // Another /64 is not affected, and neither is another user's login from it.
    finish(&elsewhere, h.code(&key)).await.unwrap();
    // The window passes.
    h.clock.advance(WINDOW);
    h.clock.advance(Duration::from_secs(30));
    finish(&office, h.code(&key)).await.unwrap();
}
