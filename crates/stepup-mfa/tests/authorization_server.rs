//! The authorization server in the engine, on every backend: clients (configured, registered),
//! authorization requests, the sign-in session and its step-up, codes exchanged for tokens,
//! refresh-token rotation and reuse detection, resources, revocation, resets.

#[macro_use]
mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stepup_core::AuthContext;
use stepup_mfa::{
    AuthorizationError, AuthorizationParams, AuthorizationRequest, ClientInfo, CodeExchange,
    Conclusion, Login, Mfa, MfaError, OAuthClient, RefreshRequest, RegistrationPolicy,
    SessionDecision, TokenResponse,
};
use support::*;

const CLIENT: &str = "demo";
const REDIRECT: &str = "http://localhost:3000/callback";
const RESOURCE: &str = "https://mcp.example.com/";
const VERIFIER: &str = "a-pkce-verifier-long-enough-to-be-valid-0123456789";

fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

/// The harness's engine as an authorization server: the `demo` client, registration, a
/// resource and a scope.
fn server(h: &Harness) -> Mfa {
    h.mfa
        .clone()
        .with_client(OAuthClient::new(CLIENT).with_redirect_uri(REDIRECT))
        .with_dynamic_registration(RegistrationPolicy::default())
        .with_resource(RESOURCE)
        .with_scope("tools")
}

fn params(pairs: &[(&str, &str)]) -> AuthorizationParams {
    let challenge = challenge();
    let mut all = vec![
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
    ];
    for (name, value) in pairs {
        all.retain(|(known, _)| known != name);
        all.push((name, value));
    }
    AuthorizationParams::from_pairs(all.into_iter().filter(|(_, value)| !value.is_empty()))
}

async fn request(mfa: &Mfa, pairs: &[(&str, &str)]) -> AuthorizationRequest {
    mfa.authorization_request(&params(pairs)).await.unwrap()
}

fn redirected_error(result: Result<AuthorizationRequest, AuthorizationError>) -> &'static str {
    match result {
        Err(AuthorizationError::Redirect(redirect)) => {
            assert_eq!(redirect.redirect_uri, REDIRECT);
            assert_eq!(redirect.state.as_deref(), Some("xyz"));
            redirect.error
        }
        other => panic!("expected an error redirect, got {other:?}"),
    }
}

/// The code a login concludes with.
async fn code_of(mfa: &Mfa, login: Login) -> String {
    match mfa.conclude(login).await.unwrap() {
        Conclusion::Code { code, .. } => code,
        other => panic!("expected a code, got {other:?}"),
    }
}

/// A TOTP login of `user` for `request`: the code.
async fn mfa_code(
    h: &Harness,
    mfa: &Mfa,
    key: &stepup_mfa::totp::TotpKey,
    user: &str,
    request: &AuthorizationRequest,
) -> String {
    let challenge = mfa
        .start_challenge(user, &["pwd"], Some(request.pending.clone()))
        .await
        .unwrap();
    let login = mfa
        .finish_mfa(
            &challenge.mfa_token,
            "totp",
            &json!({"code": h.code(key)}),
            false,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(30));
    code_of(mfa, login).await
}

async fn exchange(mfa: &Mfa, code: &str) -> Result<TokenResponse, MfaError> {
    mfa.exchange_authorization_code(
        CodeExchange {
            code,
            client_id: CLIENT,
            redirect_uri: REDIRECT,
            code_verifier: VERIFIER,
            resource: None,
        },
        &ClientInfo::default(),
    )
    .await
}

async fn refresh(mfa: &Mfa, token: &str) -> Result<TokenResponse, MfaError> {
    mfa.refresh(
        RefreshRequest {
            refresh_token: token,
            client_id: CLIENT,
            scope: None,
            resource: None,
        },
        &ClientInfo::default(),
    )
    .await
}

/// The access token as a resource server for `RESOURCE` sees it.
fn at_resource(mfa: &Mfa, token: &TokenResponse) -> AuthContext {
    mfa.issuer()
        .unwrap()
        .verifier()
        .audience(RESOURCE)
        .build()
        .unwrap()
        .verify(&token.token.access_token)
        .unwrap()
}

async fn registrations_follow_rfc_7591(h: Harness) {
    let mfa = server(&h);
    let client = client_at("198.51.100.7");
    let registered = mfa
        .register_client(
            &json!({
                "client_name": "Claude",
                "redirect_uris": ["https://claude.ai/api/mcp/auth_callback", "http://127.0.0.1:33418/cb"],
                "token_endpoint_auth_method": "none",
            }),
            &client,
        )
        .await
        .unwrap();
    let answer = serde_json::to_value(&registered).unwrap();
    assert_eq!(answer["token_endpoint_auth_method"], "none");
    assert_eq!(
        answer["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(answer["client_id_issued_at"], h.now());
    let known = mfa.client(&registered.client_id).await.unwrap().unwrap();
    assert!(!known.is_first_party());
    assert!(known.allows_redirect("http://127.0.0.1:33418/cb"));
    assert!(!known.allows_redirect("http://127.0.0.1:33419/cb"));

    for (metadata, code) in [
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["myapp:/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (json!([1]), "invalid_client_metadata"),
    ] {
        assert_refused(mfa.register_client(&metadata, &client).await, 400, code);
    }
    // The listing and the revocation.
    let listed = mfa.registered_clients(10).await.unwrap();
    assert_eq!(listed[0].id, registered.client_id);
    assert_eq!(listed[0].registered_by.as_deref(), Some("198.51.100.7"));
    let kinds = event_kinds(&mfa, &format!("client:{}", registered.client_id)).await;
    assert_eq!(kinds, ["client_registered"]);
    assert!(mfa.revoke_client(&registered.client_id).await.unwrap());
    assert!(mfa.client(&registered.client_id).await.unwrap().is_none());
    assert!(!mfa.revoke_client(&registered.client_id).await.unwrap());
}

async fn registrations_are_limited_per_address(h: Harness) {
    let mfa = server(&h).with_dynamic_registration(RegistrationPolicy {
        max_per_address: 3,
        window: Duration::from_secs(3600),
    });
    let metadata = json!({"redirect_uris": ["https://app.example/cb"]});
    // IPv6 grouped by /64: one network is one address.
    for n in 1..=3 {
        let client = client_at(&format!("2001:db8::{n}"));
        mfa.register_client(&metadata, &client).await.unwrap();
    }
    let refused = mfa
        .register_client(&metadata, &client_at("2001:db8::99"))
        .await;
    assert_eq!(retry_after(refused), Duration::from_secs(3600));
    mfa.register_client(&metadata, &client_at("2001:db8:1::1"))
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(3600));
    mfa.register_client(&metadata, &client_at("2001:db8::99"))
        .await
        .unwrap();
    // Disabled: refused.
    assert_refused(
        h.mfa
            .register_client(&metadata, &client_at("192.0.2.1"))
            .await,
        403,
        "access_denied",
    );
}

async fn authorization_requests_are_checked(h: Harness) {
    let mfa = server(&h);
    let checked = request(
        &mfa,
        &[
            ("scope", "tools offline_access"),
            ("resource", RESOURCE),
            ("acr_values", "mfa"),
            ("max_age", "300"),
        ],
    )
    .await;
    assert_eq!(checked.pending.resource.as_deref(), Some(RESOURCE));
    assert_eq!(
        checked.pending.scope.as_deref(),
        Some("tools offline_access")
    );
    assert_eq!(checked.acr_values, ["mfa"]);
    assert_eq!(checked.max_age, Some(300));

    // Never redirected: an unknown client, a redirect URI not registered, none at all.
    for pairs in [
        vec![("client_id", "nobody")],
        vec![("redirect_uri", "http://localhost:3000/elsewhere")],
        vec![("redirect_uri", "")],
        vec![("client_id", "")],
    ] {
        assert!(matches!(
            mfa.authorization_request(&params(&pairs)).await,
            Err(AuthorizationError::Unredirectable(_))
        ));
    }
    // Redirected, with the state.
    for (pairs, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("scope", "admin")], "invalid_scope"),
        (
            vec![("resource", "https://elsewhere.example/")],
            "invalid_target",
        ),
        (vec![("max_age", "soon")], "invalid_request"),
        (vec![("prompt", "consent")], "invalid_request"),
        (vec![("acr_values", "gold")], "invalid_request"),
    ] {
        assert_eq!(
            redirected_error(mfa.authorization_request(&params(&pairs)).await),
            error,
            "{pairs:?}"
        );
    }
    let twice = AuthorizationParams::from_pairs([
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("state", "xyz"),
        ("scope", "tools"),
        ("scope", "tools"),
    ]);
    assert_eq!(
        redirected_error(mfa.authorization_request(&twice).await),
        "invalid_request"
    );
    let two_resources = params(&[("resource", RESOURCE)]);
    let mut two_resources = two_resources;
    two_resources.resource.push("https://other.example/".into());
    assert_eq!(
        redirected_error(mfa.authorization_request(&two_resources).await),
        "invalid_target"
    );
}

async fn a_code_becomes_tokens_and_refreshes_keep_the_authentication(h: Harness) {
    let mfa = server(&h);
    let (key, _) = h.enroll_totp(&mfa, "ada").await;
    let checked = request(&mfa, &[("resource", RESOURCE), ("scope", "tools")]).await;
    let authenticated_at = h.now();
    let code = mfa_code(&h, &mfa, &key, "ada", &checked).await;
    let tokens = exchange(&mfa, &code).await.unwrap();
    assert_eq!(tokens.scope.as_deref(), Some("tools"));
    let first = at_resource(&mfa, &tokens);
    assert_eq!((first.subject(), first.acr()), ("ada", Some("mfa")));
    assert_eq!(first.amr(), ["pwd", "otp"]);
    assert_eq!(first.auth_time(), Some(authenticated_at));
    // The code is single-use.
    assert_refused(exchange(&mfa, &code).await, 400, "invalid_grant");

    // An hour later: a refreshed token carries the same authentication, and a new refresh token.
    h.clock.advance(Duration::from_secs(3600));
    let refreshed = refresh(&mfa, tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_ne!(refreshed.refresh_token, tokens.refresh_token);
    let second = at_resource(&mfa, &refreshed);
    assert_eq!(second.acr(), Some("mfa"));
    assert_eq!(second.amr(), ["pwd", "otp"]);
    assert_eq!(
        second.auth_time(),
        Some(authenticated_at),
        "no fresher than the factor"
    );
    assert_eq!(second.issued_at(), Some(h.now()));
    assert_eq!(second.scope(), Some("tools"));
    assert_eq!(
        event_kinds(&mfa, "ada")
            .await
            .iter()
            .filter(|kind| *kind == "token_issued")
            .count(),
        2
    );

    // A narrower scope is fine, a wider one is not; another resource is not.
    let narrower = mfa
        .refresh(
            RefreshRequest {
                refresh_token: refreshed.refresh_token.as_deref().unwrap(),
                client_id: CLIENT,
                scope: Some("tools"),
                resource: Some(RESOURCE),
            },
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    let latest = narrower.refresh_token.clone().unwrap();
    assert_refused(
        mfa.refresh(
            RefreshRequest {
                refresh_token: &latest,
                client_id: CLIENT,
                scope: Some("tools admin"),
                resource: None,
            },
            &ClientInfo::default(),
        )
        .await,
        400,
        "invalid_scope",
    );
    // Another client presenting the token rotates nothing.
    assert_refused(
        mfa.refresh(
            RefreshRequest {
                refresh_token: &latest,
                client_id: "other",
                scope: None,
                resource: None,
            },
            &ClientInfo::default(),
        )
        .await,
        400,
        "invalid_grant",
    );
    let after_refusals = refresh(&mfa, &latest).await.unwrap();

    // A reuse of an earlier token revokes the family: the latest token dies with it.
    assert_refused(
        refresh(&mfa, tokens.refresh_token.as_deref().unwrap()).await,
        400,
        "invalid_grant",
    );
    assert_refused(
        refresh(&mfa, after_refusals.refresh_token.as_deref().unwrap()).await,
        400,
        "invalid_grant",
    );
    assert!(
        event_kinds(&mfa, "ada")
            .await
            .contains(&"refresh_token_reused".to_owned())
    );
    assert!(mfa.refresh_families("ada").await.unwrap().is_empty());
}

async fn a_reset_voids_every_refresh_family(h: Harness) {
    let mfa = server(&h);
    let (key, _) = h.enroll_totp(&mfa, "bob").await;
    let checked = request(&mfa, &[]).await;
    let code = mfa_code(&h, &mfa, &key, "bob", &checked).await;
    let tokens = exchange(&mfa, &code).await.unwrap();
    assert_eq!(mfa.refresh_families("bob").await.unwrap().len(), 1);
    mfa.admin_reset("bob", "root").await.unwrap();
    assert_refused(
        refresh(&mfa, tokens.refresh_token.as_deref().unwrap()).await,
        400,
        "invalid_grant",
    );
    assert!(mfa.refresh_families("bob").await.unwrap().is_empty());

    // A family written by a login that raced the reset is void by its generation all the same.
    let (key, _) = h.enroll_totp(&mfa, "cid").await;
    let code = mfa_code(&h, &mfa, &key, "cid", &checked).await;
    let raced = exchange(&mfa, &code).await.unwrap();
    h.factors()
        .advance_generation("cid", h.now())
        .await
        .unwrap();
    assert_refused(
        refresh(&mfa, raced.refresh_token.as_deref().unwrap()).await,
        400,
        "invalid_grant",
    );
}

async fn concurrent_refreshes_of_one_token_yield_one_success(h: Harness) {
    let mfa = unlimited(&server(&h));
    let (key, _) = h.enroll_totp(&mfa, "dee").await;
    let checked = request(&mfa, &[]).await;
    let code = mfa_code(&h, &mfa, &key, "dee", &checked).await;
    let token = exchange(&mfa, &code).await.unwrap().refresh_token.unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (mfa, token, barrier) = (mfa.clone(), token.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                refresh(&mfa, &token).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(tokens) => won.push(tokens),
            Err(error) => assert_eq!(error.code(), "invalid_grant", "{error:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one refresh succeeds");
    // The losers presented an earlier token: the family is revoked, the winner's token with it.
    assert_refused(
        refresh(&mfa, won[0].refresh_token.as_deref().unwrap()).await,
        400,
        "invalid_grant",
    );
}

/// An authorization code is single-use: of 100 concurrent exchanges exactly one gets tokens,
/// the others `invalid_grant`, and one refresh family is made.
async fn one_code_redeemed_100_times_at_once_gives_one_token(h: Harness) {
    let mfa = unlimited(&server(&h));
    let (key, _) = h.enroll_totp(&mfa, "eve").await;
    let checked = request(&mfa, &[]).await;
    let code = mfa_code(&h, &mfa, &key, "eve", &checked).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (mfa, code, barrier) = (mfa.clone(), code.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                exchange(&mfa, &code).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(tokens) => won.push(tokens),
            Err(error) => assert_eq!(error.code(), "invalid_grant", "{error:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one exchange gets tokens");
    assert_eq!(at_resource(&mfa, &won[0]).subject(), "eve");
    assert_eq!(mfa.refresh_families("eve").await.unwrap().len(), 1);
}

async fn revocation_ends_a_family(h: Harness) {
    let mfa = server(&h);
    let (key, _) = h.enroll_totp(&mfa, "eve").await;
    let checked = request(&mfa, &[]).await;
    let code = mfa_code(&h, &mfa, &key, "eve", &checked).await;
    let tokens = exchange(&mfa, &code).await.unwrap();
    let token = tokens.refresh_token.unwrap();
    assert!(
        !mfa.revoke_refresh_token(&token, "other").await.unwrap(),
        "only its own client"
    );
    assert!(
        !mfa.revoke_refresh_token("not-a-token", CLIENT)
            .await
            .unwrap()
    );
    assert!(mfa.revoke_refresh_token(&token, CLIENT).await.unwrap());
    assert_refused(refresh(&mfa, &token).await, 400, "invalid_grant");
    assert!(
        event_kinds(&mfa, "eve")
            .await
            .contains(&"refresh_family_revoked".to_owned())
    );
}

async fn a_revoked_client_refreshes_no_more(h: Harness) {
    let mfa = server(&h);
    let (key, _) = h.enroll_totp(&mfa, "fay").await;
    let registered = mfa
        .register_client(
            &json!({"redirect_uris": ["https://app.example/cb"]}),
            &client_at("192.0.2.9"),
        )
        .await
        .unwrap();
    let client_id = registered.client_id.clone();
    let checked = request(
        &mfa,
        &[
            ("client_id", &client_id),
            ("redirect_uri", "https://app.example/cb"),
        ],
    )
    .await;
    let code = mfa_code(&h, &mfa, &key, "fay", &checked).await;
    let tokens = mfa
        .exchange_authorization_code(
            CodeExchange {
                code: &code,
                client_id: &client_id,
                redirect_uri: "https://app.example/cb",
                code_verifier: VERIFIER,
                resource: None,
            },
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    mfa.revoke_client(&client_id).await.unwrap();
    let refused = mfa
        .refresh(
            RefreshRequest {
                refresh_token: tokens.refresh_token.as_deref().unwrap(),
                client_id: &client_id,
                scope: None,
                resource: None,
            },
            &ClientInfo::default(),
        )
        .await;
    assert_refused(refused, 400, "invalid_grant");
    assert!(mfa.refresh_families("fay").await.unwrap().is_empty());
}

async fn a_session_steps_up_with_only_the_missing_factor(h: Harness) {
    let mfa = server(&h);
    let (key, _) = h.enroll_totp(&mfa, "gus").await;
    // The page's first sign-in: a password (the user's factor is asked for later).
    let password_only = stepup_mfa::Authentication {
        subject: "gus".into(),
        acr: "pwd".into(),
        amr: vec!["pwd".into()],
        auth_time: Some(h.now()),
        generation: 0,
    };
    let session = mfa.start_session(&password_only).await.unwrap();
    let plain = request(&mfa, &[]).await;
    assert_eq!(
        mfa.session_decision(Some(&session), &plain).await.unwrap(),
        SessionDecision::Satisfied(password_only.clone())
    );
    let step_up = request(&mfa, &[("acr_values", "mfa")]).await;
    let SessionDecision::StepUp {
        user,
        first_factors,
    } = mfa
        .session_decision(Some(&session), &step_up)
        .await
        .unwrap()
    else {
        panic!("a pwd session asks only for the second factor");
    };
    assert_eq!(
        (user.as_str(), first_factors.as_slice()),
        ("gus", &["pwd".to_owned()][..])
    );
    let challenge = mfa
        .start_session_step_up(&user, &first_factors, step_up.pending.clone())
        .await
        .unwrap();
    assert_eq!(challenge.methods, ["totp", "backup_code"]);
    let login = mfa
        .finish_mfa(
            &challenge.mfa_token,
            "totp",
            &json!({"code": h.code(&key)}),
            false,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    assert_eq!(login.authentication.amr, ["pwd", "otp"]);
    assert_eq!(login.authentication.acr, "mfa");
    h.clock.advance(Duration::from_secs(30));

    // prompt=login: the whole sign-in, whatever the session; prompt=none: never the page.
    let login_again = request(&mfa, &[("prompt", "login")]).await;
    assert_eq!(
        mfa.session_decision(Some(&session), &login_again)
            .await
            .unwrap(),
        SessionDecision::SignIn
    );
    let silent = request(&mfa, &[("prompt", "none"), ("acr_values", "mfa")]).await;
    assert_eq!(
        mfa.session_decision(Some(&session), &silent).await.unwrap(),
        SessionDecision::LoginRequired
    );
    assert_eq!(
        mfa.session_decision(None, &plain).await.unwrap(),
        SessionDecision::SignIn
    );

    // max_age: a session older than it needs a fresh factor.
    let mfa_session = mfa.start_session(&login.authentication).await.unwrap();
    let fresh = request(&mfa, &[("acr_values", "mfa"), ("max_age", "60")]).await;
    assert!(matches!(
        mfa.session_decision(Some(&mfa_session), &fresh)
            .await
            .unwrap(),
        SessionDecision::Satisfied(_)
    ));
    h.clock.advance(Duration::from_secs(61));
    assert!(matches!(
        mfa.session_decision(Some(&mfa_session), &fresh)
            .await
            .unwrap(),
        SessionDecision::StepUp { .. }
    ));

    // A reset ends every session.
    mfa.admin_reset("gus", "root").await.unwrap();
    assert_eq!(
        mfa.session_decision(Some(&mfa_session), &plain)
            .await
            .unwrap(),
        SessionDecision::SignIn
    );
    assert!(mfa.session(&mfa_session).await.unwrap().is_none());
}

async fn page_requests_are_kept_and_expire(h: Harness) {
    let mfa = server(&h);
    let checked = request(&mfa, &[]).await;
    let id = mfa.save_authorization_request(&checked).await.unwrap();
    let saved = mfa.saved_authorization_request(&id).await.unwrap();
    assert!(saved.pending.from_page);
    assert_eq!(saved.pending.client_id, CLIENT);
    h.clock.advance(Duration::from_secs(601));
    assert_refused(
        mfa.saved_authorization_request(&id).await,
        400,
        "invalid_request",
    );
    let location = checked.pending.code_location("c0de", "https://as.example");
    assert_eq!(
        location,
        format!("{REDIRECT}?code=c0de&state=xyz&iss=https%3A%2F%2Fas.example")
    );
}

async fn tokens_and_refresh_tokens_are_stored_as_hashes(h: Harness) {
    let mfa = server(&h);
    let (key, _) = h.enroll_totp(&mfa, "hal").await;
    let checked = request(&mfa, &[]).await;
    let code = mfa_code(&h, &mfa, &key, "hal", &checked).await;
    let tokens = exchange(&mfa, &code).await.unwrap();
    let token = tokens.refresh_token.unwrap();
    let families = h.stores.grants.families("hal").await.unwrap();
    assert_eq!(families.len(), 1);
    assert_eq!(families[0].token_hash, stepup_core::tokens::digest(&token));
    assert_ne!(families[0].token_hash, token);
    let value: Value = serde_json::to_value(&families[0].amr).unwrap();
    assert_eq!(value, json!(["pwd", "otp"]));
}

on_every_store!(
    registrations_follow_rfc_7591,
    registrations_are_limited_per_address,
    authorization_requests_are_checked,
    a_code_becomes_tokens_and_refreshes_keep_the_authentication,
    a_reset_voids_every_refresh_family,
    concurrent_refreshes_of_one_token_yield_one_success,
    one_code_redeemed_100_times_at_once_gives_one_token,
    revocation_ends_a_family,
    a_revoked_client_refreshes_no_more,
    a_session_steps_up_with_only_the_missing_factor,
    page_requests_are_kept_and_expire,
    tokens_and_refresh_tokens_are_stored_as_hashes,
);
on_every_store!(
    redis: concurrent_refreshes_of_one_token_yield_one_success,
    one_code_redeemed_100_times_at_once_gives_one_token,
    a_session_steps_up_with_only_the_missing_factor
);

/// Client ID Metadata Documents: fetched from loopback (the development policy), checked and
/// cached; refused under the default policy.
#[cfg(feature = "client-metadata")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_documents_are_fetched_checked_and_cached() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use stepup_mfa::{ClientSource, MetadataDocumentPolicy};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let good = format!("{base}/client.json");
    let (served, counter) = (good.clone(), fetches.clone());
    let router = axum::Router::new()
        .route(
            "/client.json",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let id = served.clone();
                async move {
                    axum::Json(json!({
                        "client_id": id,
                        "client_name": "A metadata client",
                        "redirect_uris": ["http://127.0.0.1:7777/cb"],
                        "token_endpoint_auth_method": "none",
                    }))
                }
            }),
        )
        .route(
            "/impostor.json",
            axum::routing::get(|| async {
                axum::Json(json!({
                    "client_id": "https://someone-else.example/client.json",
                    "redirect_uris": ["https://evil.example/cb"],
                }))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let h = Harness::memory().await;
    let mfa = server(&h)
        .with_client_metadata_documents(MetadataDocumentPolicy::development())
        .unwrap();
    let client = mfa
        .client(&good)
        .await
        .unwrap()
        .expect("the document's client");
    assert_eq!(client.source, ClientSource::MetadataDocument);
    assert_eq!(client.name.as_deref(), Some("A metadata client"));
    assert!(client.allows_redirect("http://127.0.0.1:7777/cb"));
    assert!(!client.is_first_party());
    mfa.client(&good).await.unwrap().unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached");
    assert!(
        mfa.client(&format!("{base}/impostor.json"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        mfa.client(&format!("{base}/missing.json"))
            .await
            .unwrap()
            .is_none()
    );
    // The default policy: https only, never a loopback address.
    let strict = server(&h)
        .with_client_metadata_documents(MetadataDocumentPolicy::default())
        .unwrap();
    assert!(strict.client(&good).await.unwrap().is_none());
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "not even fetched");
}
