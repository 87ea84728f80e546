//! The findings of the outside reviews, each replayed over HTTP: a token that outlives its
//! account, a stolen password token enrolling the thief's authenticator, wrong passwords spread
//! over many addresses, a remembered device during a password lockout; tokens of a reset's own
//! second, a stranger's passkey assertions against the owner's budget, one IPv6 /64 against the
//! request ceiling, racing WebAuthn challenges, non-UTF-8 paths and nameless 400s.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use stepup_core::clock::Clock;
use stepup_core::token::Grant;
use stepup_mfa::totp::TotpKey;
use support::*;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// The token of a fresh second factor, as the MFA step gives it.
async fn fresh_mfa_token(app: &App, email: &str) -> (String, TotpKey) {
    let (_, key, _) = app.enrolled_user(email).await;
    app.clock.advance(Duration::from_secs(30));
    let mfa_token = app.mfa_token(email).await;
    let answer = app.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    (answer.token(), key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_deleted_account_can_neither_enroll_nor_step_up() {
    let app = sqlite_app().await;
    let (token, _) = fresh_mfa_token(&app, "gone@example.com").await;
    let deleted = app.delete("/api/account", Some(&token)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");

    // The same token, replayed on every route that enrolls or mints.
    for path in ["/api/mfa/setup", "/api/mfa/verify-setup"] {
        let answer = app
            .post(path, Some(&token), json!({"code": "123456"}))
            .await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(
            answer.body["error_description"],
            "the token has been revoked"
        );
    }
    let step_up = app
        .post(
            "/oauth/authorize",
            Some(&token),
            json!({"acr_values": "mfa"}),
        )
        .await;
    step_up.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    let factors = app.get("/api/mfa/factors", Some(&token)).await;
    factors.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    // The application's own routes opt in with `stepup.reject_revoked()`: the fixture's do.
    let me = app.get("/api/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{me:?}");
    assert!(me.challenge.unwrap().contains("the token has been revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_minted_for_a_user_the_application_does_not_know_is_refused() {
    let app = sqlite_app().await;
    // Validly signed, but for an account that does not exist (deleted behind stepup's back).
    let token = app.mint(&Grant::new("no-such-user").acr("pwd").auth_time(T0));
    let answer = app.post("/api/mfa/setup", Some(&token), json!({})).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_factor_needs_a_password_from_the_last_ten_minutes() {
    let app = sqlite_app().await;
    app.register("stale@example.com").await;
    let token = app.login("stale@example.com").await.token();

    // Eleven minutes later the same (still valid) token cannot enroll: RFC 9470 asks for a
    // fresh password.
    app.clock.advance(Duration::from_secs(11 * 60));
    let answer = app.post("/api/mfa/setup", Some(&token), json!({})).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "insufficient_user_authentication");
    let challenge = answer.challenge.expect("a WWW-Authenticate challenge");
    assert!(challenge.contains("acr_values=\"pwd\""), "{challenge}");
    assert!(challenge.contains("max_age=600"), "{challenge}");

    // Within ten minutes of the password it can.
    let token = app.login("stale@example.com").await.token();
    app.clock.advance(Duration::from_secs(9 * 60));
    let answer = app.post("/api/mfa/setup", Some(&token), json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
}

async fn wrong_password(app: &App, email: &str, forwarded_for: &str) -> StatusCode {
    app.request(reqwest::Method::POST, "/oauth/authorize", None)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": email, "password": "wrong horse battery"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_per_account_whatever_the_address() {
    let app = sqlite_app().await;
    app.register("target@example.com").await;
    // Ten wrong passwords, each "from" another address (the application trusts no proxy, so the header
    // changes nothing; the per-address budget of 30 is not what stops them).
    for attempt in 0..10 {
        let status =
            wrong_password(&app, "target@example.com", &format!("198.51.100.{attempt}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits, with Retry-After.
    let answer = app.login("target@example.com").await;
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    let retry_after: u64 = answer.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    // Another account is not affected.
    app.register("bystander@example.com").await;
    assert_eq!(
        app.login("bystander@example.com").await.status,
        StatusCode::OK
    );
    // The lockout is short: after it, the owner signs in.
    app.clock.advance(Duration::from_secs(retry_after));
    assert_eq!(app.login("target@example.com").await.status, StatusCode::OK);
    // Failed passwords of a known account are in its audit trail.
    let token = app.login("target@example.com").await.token();
    let events = app.get("/api/mfa/events", Some(&token)).await;
    let failures = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "password_failed")
        .count();
    assert_eq!(failures, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_remembered_device_signs_in_during_a_password_lockout() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("owner@example.com").await;
    app.clock.advance(Duration::from_secs(30));
    let mfa_token = app.mfa_token("owner@example.com").await;
    let code = app.code(&key);
    let remembered = app
        .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": code, "remember_device": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(remembered.status(), StatusCode::OK);
    let cookie = remembered.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();

    for _ in 0..10 {
        assert_eq!(
            wrong_password(&app, "owner@example.com", "203.0.113.1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login("owner@example.com").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let login = |cookie: &str, password: &str| {
        app.request(reqwest::Method::POST, "/oauth/authorize", None)
            .header("cookie", cookie.to_owned())
            .json(&json!({"username": "owner@example.com", "password": password}))
            .send()
    };
    // The owner's browser gets in…
    let answer = login(&cookie, PASSWORD).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    // …but the cookie is no way around the lockout for a guesser: a wrong password with it is
    // still refused as locked out.
    let answer = login(&cookie, "wrong horse battery").await.unwrap();
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_device_is_no_way_around_the_lockout() {
    let app = sqlite_app().await;
    let (_, key, _) = app.enrolled_user("attacker@example.com").await;
    app.register("victim@example.com").await;
    app.clock.advance(Duration::from_secs(30));
    let mfa_token = app.mfa_token("attacker@example.com").await;
    let code = app.code(&key);
    let remembered = app
        .request(reqwest::Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": code, "remember_device": true}))
        .send()
        .await
        .unwrap();
    let cookie = remembered.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let guess = |password: &'static str| {
        app.request(reqwest::Method::POST, "/oauth/authorize", None)
            .header("cookie", cookie.clone())
            .json(&json!({"username": "victim@example.com", "password": password}))
            .send()
    };
    for _ in 0..10 {
        assert_eq!(
            guess("wrong horse battery").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The right password, sent with the attacker's own device cookie, learns nothing.
    assert_eq!(
        guess(PASSWORD).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

// ---------------------------------------------------------------------------------------------
// Round 3: same-second tokens, a stranger's lockout, floods of one /64, racing challenges, and
// bad input. (The reset race: `reset_race.rs`.)

const OWNER: &str = "owner@example.com";
/// Tokens are void by generation, not by the second: one minted in the very second of a
/// recovery is good, and a recovery's token is void after an admin reset in that same second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_the_second_of_a_reset_are_judged_by_generation() {
    let backend = Backend::sqlite().await.unwrap();
    let admin = backend
        .users
        .add("root@example.com", PASSWORD, Hashing::Plain);
    let app = backend
        .app_with(Options {
            admins: vec![admin.clone()],
            ..Options::default()
        })
        .await;
    let (old, _, _) = app.enrolled_user(OWNER).await;
    let user = app.subject(&old).await;
    app.post("/api/mfa/recovery/request", None, json!({"email": OWNER}))
        .await;
    let mail = app.mail_with_subject(0, "Your account recovery code").await;
    // From here on the clock stands still: everything happens in one second.
    let recovered = app
        .post(
            "/api/mfa/recovery/confirm",
            None,
            json!({"token": recovery_code_in(&mail.body), "password": PASSWORD}),
        )
        .await
        .token();
    let after = app.login(OWNER).await.token();
    for token in [&recovered, &after] {
        let setup = app.post("/api/mfa/setup", Some(token), json!({})).await;
        assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
        assert_eq!(app.get("/api/me", Some(token)).await.status, StatusCode::OK);
    }
    app.get("/api/mfa/factors", Some(&old))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");

    // An administrator resets the user, in the same second.
    let as_admin = app.mint(
        &Grant::new(&admin)
            .acr("phr")
            .amr(["hwk"])
            .auth_time(app.clock.unix_seconds()),
    );
    let reset = app
        .post(
            &format!("/api/admin/users/{user}/mfa/reset"),
            Some(&as_admin),
            json!({}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{reset:?}");
    for token in [&recovered, &after] {
        let answer = app.post("/api/mfa/setup", Some(token), json!({})).await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(
            answer.body["error_description"],
            "the token has been revoked"
        );
        let me = app.get("/api/me", Some(token)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{me:?}");
    }
    // A login after the reset, still in that second, is good.
    let latest = app.login(OWNER).await.token();
    let setup = app.post("/api/mfa/setup", Some(&latest), json!({})).await;
    assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
}

on_backends!([sqlite, postgres_redis] garbage_passkey_assertions_spend_no_budget_of_the_owner);

/// A stranger sends assertions naming the owner's credential id and user handle (neither is
/// secret) that do not verify: they are limited per credential, and the owner's budget, factors
/// and trail are untouched.
async fn garbage_passkey_assertions_spend_no_budget_of_the_owner(backend: &Backend) {
    let app = backend.app().await;
    let (_, key, _) = app.enrolled_user(OWNER).await;
    let fresh = app.fresh_mfa_token(OWNER, &key).await;
    let mut owners = SoftPasskey::new(true);
    let (finished, handle) = app.add_passkey(&fresh, &mut owners).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    let id = finished.body["credential_id"].clone();
    // The stranger's own account and passkey, to make well-formed assertions with.
    let stranger = app.password_token("eve@example.com").await;
    let mut theirs = SoftPasskey::new(true);
    let (their_key, their_handle) = app.add_passkey(&stranger, &mut theirs).await;
    let their_id = their_key.body["credential_id"].clone();

    for attempt in 0..7 {
        let (passkey_token, mut assertion) = app
            .passkey_login(&mut theirs, &their_id, &their_handle)
            .await;
        assertion["id"] = id.clone();
        assertion["rawId"] = id.clone();
        assertion["response"]["userHandle"] = handle.clone();
        let answer = app
            .post(
                "/oauth/authorize/passkey",
                None,
                json!({ "passkey_token": passkey_token, "credential": assertion }),
            )
            .await;
        if attempt < 5 {
            answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_mfa_code");
        } else {
            // The claimed credential's own budget is spent, not the owner's.
            answer.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
        }
    }

    // The owner signs in with the app, and with the passkey as a second factor.
    app.clock.advance(Duration::from_secs(31));
    let mfa_token = app.mfa_token(OWNER).await;
    let answer = app.mfa_step_with_code(&mfa_token, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["acr"], "mfa");
    let token = answer.token();
    let answer = app.second_factor(OWNER, &mut owners).await;
    assert_eq!(answer.body["acr"], "phr", "{answer:?}");
    // Nothing is locked or disabled, and the owner's trail has no failure in it.
    let listed = app.get("/api/mfa/factors", Some(&token)).await;
    for factor in listed.body["factors"].as_array().unwrap() {
        assert_eq!(factor["locked"], false, "{factor}");
        assert_eq!(factor["status"], "active", "{factor}");
    }
    let kinds = app.event_kinds(&token).await;
    assert!(!kinds.iter().any(|kind| kind == "mfa_failed"), "{kinds:?}");
}

/// Clients of one IPv6 /64 (named by a trusted proxy) share the request ceiling; the next /64
/// is another client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_of_one_64_share_the_request_ceiling() {
    let app = sqlite_app_with(Options {
        trusted_proxies: vec!["127.0.0.1/32"],
        request_ceiling: Some((5, Duration::from_secs(60))),
        ..Options::default()
    })
    .await;
    let garbage = |client: &str| {
        app.request(Method::POST, "/oauth/authorize", None)
            .header("x-forwarded-for", client)
            .header("content-type", "application/json")
            .body("not json")
    };
    for host in 1..=5 {
        let answer = Answer::read(garbage(&format!("2001:db8:1:2::{host}"))).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let refused = Answer::read(garbage("2001:db8:1:2:ffff:ffff:ffff:fffe")).await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert_eq!(refused.retry_after.as_deref(), Some("60"), "{refused:?}");
    let neighbour = Answer::read(garbage("2001:db8:1:3::1")).await;
    neighbour.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}

/// The prefix is one setting for every per-address limit (they all key on the engine's
/// grouping): configured at /48, clients of different /64s of one /48 share the failed-login
/// budget and the recovery-mail budget; another /48 has its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_ipv6_prefix_groups_every_per_address_limit() {
    let app = sqlite_app_with(Options {
        trusted_proxies: vec!["127.0.0.1/32"],
        ipv6_prefix: Some(48),
        ..Options::default()
    })
    .await;
    let from = |client: String, path: &str, body: serde_json::Value| {
        app.request(Method::POST, path, None)
            .header("x-forwarded-for", client)
            .json(&body)
    };
    // Failed logins: 30 per group, from 30 different /64s of 2001:db8:10::/48.
    for n in 0..30 {
        let guess = json!({"username": format!("nobody{n}@example.com"), "password": "guess"});
        Answer::read(from(
            format!("2001:db8:10:{n:x}::1"),
            "/oauth/authorize",
            guess,
        ))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
    }
    let guess = json!({"username": "nobody@example.com", "password": "guess"});
    Answer::read(from(
        "2001:db8:10:ff::1".into(),
        "/oauth/authorize",
        guess.clone(),
    ))
    .await
    .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    Answer::read(from("2001:db8:11::1".into(), "/oauth/authorize", guess))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");

    // Recovery mails: 20 per group, from 20 different /64s of 2001:db8:20::/48.
    let per_client = stepup_mfa::recovery::REQUESTS_PER_CLIENT_PER_HOUR;
    let email = |n: u64| format!("p48-{n}@example.com");
    for n in 0..=per_client + 1 {
        app.register(&email(n)).await;
    }
    for n in 0..per_client {
        let answer = Answer::read(from(
            format!("2001:db8:20:{n:x}::1"),
            "/api/mfa/recovery/request",
            json!({"email": email(n)}),
        ))
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    }
    for (client, n) in [
        ("2001:db8:20:ff::1", per_client),
        ("2001:db8:21::1", per_client + 1),
    ] {
        let answer = Answer::read(from(
            client.into(),
            "/api/mfa/recovery/request",
            json!({"email": email(n)}),
        ))
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    }
    let mails = app
        .mails_at_least(usize::try_from(per_client).unwrap() + 1)
        .await;
    assert!(mails.iter().any(|mail| mail.to == email(per_client + 1)));
    assert!(!mails.iter().any(|mail| mail.to == email(per_client)));
}

/// The failed-login budget groups a /64 the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_of_one_64_share_the_failed_login_budget() {
    let app = sqlite_app_with(Options {
        trusted_proxies: vec!["127.0.0.1/32"],
        ..Options::default()
    })
    .await;
    let guess = |client: String, attempt: u32| {
        app.request(Method::POST, "/oauth/authorize", None)
            .header("x-forwarded-for", client)
            .json(&json!({"username": format!("nobody{attempt}@example.com"), "password": "guess"}))
    };
    for attempt in 0..30 {
        let answer = Answer::read(guess(format!("2001:db8:7:7::{attempt:x}"), attempt)).await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
    }
    let refused = Answer::read(guess("2001:db8:7:7:abcd::1".to_owned(), 99)).await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    let neighbour = Answer::read(guess("2001:db8:7:8::1".to_owned(), 100)).await;
    neighbour.assert_error(StatusCode::UNAUTHORIZED, "invalid_grant");
}

/// Recovery mails are limited per client address group too: clients of one /64 share one
/// budget (answered alike, not mailed past it); another /64 has its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_of_one_64_share_the_recovery_mail_budget() {
    let app = sqlite_app_with(Options {
        trusted_proxies: vec!["127.0.0.1/32"],
        ..Options::default()
    })
    .await;
    let per_client = stepup_mfa::recovery::REQUESTS_PER_CLIENT_PER_HOUR;
    let email = |n: u64| format!("rec{n}@example.com");
    for n in 0..=per_client + 1 {
        app.register(&email(n)).await;
    }
    let request = |client: String, n: u64| {
        app.request(Method::POST, "/api/mfa/recovery/request", None)
            .header("x-forwarded-for", client)
            .json(&json!({"email": email(n)}))
    };
    for n in 0..per_client {
        let answer = Answer::read(request(format!("2001:db8:9:9::{n:x}"), n)).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    }
    let over = Answer::read(request("2001:db8:9:9:abcd::1".to_owned(), per_client)).await;
    assert_eq!(
        over.status,
        StatusCode::ACCEPTED,
        "answered alike: {over:?}"
    );
    let neighbour = Answer::read(request("2001:db8:9:a::1".to_owned(), per_client + 1)).await;
    assert_eq!(neighbour.status, StatusCode::ACCEPTED);
    // The refused request mailed nothing in the foreground or after: every mail sent is in.
    let mails = app
        .mails_at_least(usize::try_from(per_client).unwrap() + 1)
        .await;
    assert!(mails.iter().any(|mail| mail.to == email(per_client + 1)));
    assert!(
        !mails.iter().any(|mail| mail.to == email(per_client)),
        "the /64's budget was spent"
    );
}

on_backends!([sqlite, postgres, postgres_redis] racing_webauthn_starts_on_one_mfa_token_answer_2xx_or_409);

/// Concurrent requests for one MFA step's WebAuthn options: one wins, the others are told to
/// try again (409), none is a 500; the step then completes.
async fn racing_webauthn_starts_on_one_mfa_token_answer_2xx_or_409(backend: &Backend) {
    // Each request from another client (named by a trusted proxy): a burst from one address
    // meets that address's budget before anything else.
    let app = backend
        .app_with(Options {
            trusted_proxies: vec!["127.0.0.1/32"],
            ..Options::default()
        })
        .await;
    let token = app.password_token(OWNER).await;
    let mut passkey = SoftPasskey::new(true);
    let (finished, _) = app.add_passkey(&token, &mut passkey).await;
    assert_eq!(finished.status, StatusCode::OK, "{finished:?}");
    let mfa_token = app.mfa_token(OWNER).await;
    for path in [
        "/oauth/authorize/mfa/webauthn/start",
        "/oauth/authorize/mfa/webauthn/prepare",
    ] {
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..60 {
            let request = app
                .request(Method::POST, path, None)
                .header("x-forwarded-for", format!("198.51.100.{client}"))
                .json(&json!({"mfa_token": mfa_token}));
            tasks.spawn(async move { Answer::read(request).await });
        }
        let answers = tasks.join_all().await;
        for answer in &answers {
            match answer.status {
                StatusCode::OK => assert!(answer.body["publicKey"].is_object()),
                StatusCode::CONFLICT => {
                    answer.assert_error(StatusCode::CONFLICT, "challenge_in_progress");
                }
                _ => panic!("{path}: {answer:?}"),
            }
        }
        assert!(
            answers.iter().any(|answer| answer.status == StatusCode::OK),
            "{path}: one wins"
        );
    }
    let proof = app.assertion_for(&mfa_token, &mut passkey).await;
    let answer = app.mfa_step(&mfa_token, proof).await;
    assert_eq!(answer.body["acr"], "phr", "{answer:?}");
}

/// A path segment that is not UTF-8 is a JSON 400 that echoes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_segment_that_is_not_utf8_is_a_json_400() {
    let app = sqlite_app().await;
    let token = app.password_token(OWNER).await;
    for (method, path, body) in [
        (Method::DELETE, "/api/mfa/devices/%FF", None),
        (
            Method::PATCH,
            "/api/mfa/factors/webauthn/%FF",
            Some(json!({"label": "x"})),
        ),
        (
            Method::PATCH,
            "/api/mfa/factors/%FF/x",
            Some(json!({"label": "x"})),
        ),
        (
            Method::PATCH,
            "/api/mfa/webauthn/credentials/%FF%FE",
            Some(json!({"label": "x"})),
        ),
        (Method::POST, "/api/mfa/factors/%FF", Some(json!({}))),
        (
            Method::POST,
            "/api/mfa/factors/%C3%28/confirm",
            Some(json!({"code": "1"})),
        ),
        (
            Method::POST,
            "/oauth/authorize/mfa/%FF/prepare",
            Some(json!({"mfa_token": "x"})),
        ),
    ] {
        let mut request = app.request(method, path, Some(&token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = Answer::read(request).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            !answer.body.to_string().contains("%FF"),
            "{path}: {answer:?}"
        );
    }
}

/// A `400` names the missing or mistyped field from the server's own schema, never echoing a
/// value the client sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_name_the_field_from_the_schema() {
    let app = sqlite_app().await;
    let token = app.password_token(OWNER).await;
    let started = app.start_passkey("/api/mfa/factors/webauthn", &token).await;
    let mut registration = app.registration(&started, &mut SoftPasskey::new(true));
    registration
        .as_object_mut()
        .unwrap()
        .remove("registration_token");
    let cases = [
        (
            "/api/mfa/factors/webauthn/confirm",
            registration.clone(),
            "missing field registration_token",
        ),
        (
            "/api/mfa/webauthn/register/finish",
            registration,
            "missing field registration_token",
        ),
        ("/api/mfa/factors/sms", json!({}), "missing field phone"),
        (
            "/api/mfa/factors/sms",
            json!({"phone": 15551236789_u64}),
            "field phone has the wrong type",
        ),
        ("/api/mfa/verify-setup", json!({}), "missing field code"),
        ("/oauth/authorize/mfa", json!({}), "missing field mfa_token"),
        (
            "/oauth/authorize/mfa",
            json!({"mfa_token": "x", "method": "totp"}),
            "missing field code",
        ),
        (
            "/oauth/authorize/mfa/sms/prepare",
            json!({}),
            "missing field mfa_token",
        ),
        (
            "/api/mfa/recovery/confirm",
            json!({"token": "x"}),
            "missing field password",
        ),
        (
            "/api/mfa/recovery/request",
            json!({}),
            "missing field email",
        ),
    ];
    for (path, body, description) in cases {
        let answer = app.post(path, Some(&token), body).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(answer.body["error_description"], description, "{path}");
        assert!(!answer.body.to_string().contains("5551236789"), "{path}");
    }
}
