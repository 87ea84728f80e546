//! Keys from an identity provider: OIDC discovery and a JWKS URL served by a fake provider on
//! 127.0.0.1, with rotation, removal, an outage, a flood of unknown `kid`s and several issuers.
//! Time is a `ManualClock`; nothing sleeps (waits are for events, bounded).

mod common;
mod support_oidc;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, bearer, call, echo};
use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use stepup::clock::ManualClock;
use stepup::dpop::DpopPolicy;
use stepup::middleware::TokenError;
use stepup::token::{JwtVerifier, KeySourceError, RefreshPolicy, TrustedIssuer};
use stepup::{RequireMfa, authenticate};
use support_oidc::{FakeIdp, TestKey};
use tower::{ServiceBuilder, service_fn};

const T0: u64 = 1_800_000_000;
const AUDIENCE: &str = "https://api.test";

fn claims(issuer: &str, acr: &str) -> Value {
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": T0,
        "exp": T0 + 86_400,
        "auth_time": T0,
        "acr": acr,
        "amr": ["pwd", "otp"],
    })
}

fn discovering(idp: &FakeIdp, clock: &ManualClock) -> JwtVerifier {
    JwtVerifier::builder()
        .discover(&idp.issuer)
        .audience(AUDIENCE)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// The verifier behind `authenticate()` + `RequireMfa`, as a service answering "hello <sub>".
async fn through_layers(verifier: &JwtVerifier, token: &str) -> Answer {
    let service = ServiceBuilder::new()
        .layer(authenticate(verifier.clone()))
        .layer(RequireMfa)
        .service(service_fn(echo));
    call(&service, bearer(token)).await
}

#[tokio::test]
async fn discovery_loads_the_keys_and_tokens_verify_synchronously() {
    let rs = TestKey::rsa("rs-1");
    let es = TestKey::ec("es-1");
    let idp = FakeIdp::start("/realms/demo", &[&rs, &es]).await;
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    verifier.refresh_keys().await.unwrap();
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
    for key in [&rs, &es] {
        let token = key.sign(&claims(&idp.issuer, "mfa"));
        // `verify` is synchronous: the keys are in memory.
        let caller = verifier.verify(&token).unwrap();
        assert_eq!(caller.subject(), "user-1");
        assert_eq!(caller.issuer(), Some(idp.issuer.as_str()));
        assert_eq!(through_layers(&verifier, &token).await.body, "hello user-1");
    }
    // The warm path fetched nothing more.
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
    // A JWKS URL directly works the same.
    let direct = JwtVerifier::builder()
        .jwks_url(idp.jwks_url())
        .issuer(&idp.issuer)
        .audience(AUDIENCE)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    direct.refresh_keys().await.unwrap();
    assert!(direct.verify(&rs.sign(&claims(&idp.issuer, "mfa"))).is_ok());
}

#[tokio::test]
async fn no_key_set_ever_loaded_is_503_not_401_until_the_provider_answers() {
    let key = TestKey::rsa("rs-1");
    let idp = FakeIdp::start("", &[&key]).await;
    idp.set_down(true);
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    assert_eq!(
        verifier.refresh_keys().await.unwrap_err(),
        KeySourceError::Status(503)
    );
    let token = key.sign(&claims(&idp.issuer, "mfa"));
    assert_eq!(
        verifier.verify(&token).unwrap_err(),
        TokenError::KeysUnavailable
    );
    let answer = through_layers(&verifier, &token).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert_eq!(answer.www_authenticate, None);
    assert_eq!(
        answer.json(),
        json!({"error": "temporarily_unavailable",
               "error_description": "the token's signing keys cannot be loaded now"})
    );
    // A forged token is no different: nothing can be judged without keys.
    assert_eq!(
        verifier.verify("a.b.c").unwrap_err(),
        TokenError::KeysUnavailable
    );

    idp.set_down(false);
    verifier.refresh_keys().await.unwrap();
    assert_eq!(through_layers(&verifier, &token).await.body, "hello user-1");
}

#[tokio::test]
async fn the_discovered_issuer_must_equal_the_configured_one() {
    let key = TestKey::rsa("rs-1");
    let idp = FakeIdp::start("/tenant", &[&key]).await;
    idp.set_discovery_issuer("https://attacker.example");
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    assert!(matches!(
        verifier.refresh_keys().await.unwrap_err(),
        KeySourceError::IssuerMismatch { .. }
    ));
    // Its JWKS was never fetched, and nothing verifies.
    assert_eq!(idp.jwks_fetches(), 0);
    let token = key.sign(&claims(&idp.issuer, "mfa"));
    assert_eq!(
        verifier.verify(&token).unwrap_err(),
        TokenError::KeysUnavailable
    );
    // Only https, or plain http to a loopback address, is ever fetched.
    let error = JwtVerifier::builder()
        .discover("http://idp.example.com")
        .audience(AUDIENCE)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("https"), "{error}");
}

/// 1,000 requests naming random `kid`s cause at most one fetch per cooldown.
#[tokio::test]
async fn a_thousand_random_kids_cause_at_most_one_fetch() {
    let key = TestKey::ec("es-1");
    let idp = FakeIdp::start("", &[&key]).await;
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    verifier.refresh_keys().await.unwrap();
    assert_eq!(idp.jwks_fetches(), 1);

    let random_kid_tokens: Vec<String> = (0..1_000)
        .map(|n| {
            key.sign_as(
                Algorithm::ES256,
                Some(&format!("random-{n}-{}", rand::random::<u64>())),
                &claims(&idp.issuer, "mfa"),
            )
        })
        .collect();
    // Within the cooldown of the first load: not one fetch.
    for token in &random_kid_tokens {
        assert_eq!(verifier.verify(token).unwrap_err(), TokenError::UnknownKey);
    }
    assert_eq!(idp.jwks_fetches(), 1);

    // Past it: the 1,000 at once, waiting for the refresh they may start: one fetch in all.
    clock.advance(Duration::from_secs(31));
    let answers = futures_join_all(
        random_kid_tokens
            .iter()
            .map(|token| verifier.verify_async(token)),
    )
    .await;
    assert!(
        answers
            .iter()
            .all(|answer| matches!(answer, Err(TokenError::UnknownKey)))
    );
    assert_eq!(idp.jwks_fetches(), 2);
    // And again right after: the cooldown holds.
    for token in random_kid_tokens.iter().take(100) {
        assert_eq!(verifier.verify(token).unwrap_err(), TokenError::UnknownKey);
    }
    assert_eq!(idp.jwks_fetches(), 2);
    // The real key was never disturbed.
    assert!(
        verifier
            .verify(&key.sign(&claims(&idp.issuer, "mfa")))
            .is_ok()
    );
}

/// Waits for every future (tokio has no `join_all`; the futures run concurrently in one task).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_its_first_token() {
    let old = TestKey::rsa("2026-11");
    let new = TestKey::ec("2026-12");
    let idp = FakeIdp::start("", &[&old]).await;
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    verifier.refresh_keys().await.unwrap();

    // The provider starts signing with a new key, published alongside the old one.
    idp.publish(&[&old, &new]);
    clock.advance(Duration::from_secs(31));
    let token = new.sign(&claims(&idp.issuer, "mfa"));
    let caller = verifier.verify_async(&token).await.unwrap();
    assert_eq!(caller.subject(), "user-1");
    assert_eq!(idp.jwks_fetches(), 2);
    // Both keys verify now, synchronously.
    assert!(verifier.verify(&token).is_ok());
    assert!(
        verifier
            .verify(&old.sign(&claims(&idp.issuer, "mfa")))
            .is_ok()
    );
}

/// `authenticate().with_dpop(…)` answers most requests at once, but a bearer token naming a key
/// its issuer has just published waits for the refresh it starts, as `verify_async` does.
#[tokio::test]
async fn the_dpop_aware_layer_awaits_a_rotated_key_instead_of_refusing_it() {
    let old = TestKey::rsa("2026-11");
    let new = TestKey::ec("2026-12");
    let idp = FakeIdp::start("", &[&old]).await;
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    verifier.refresh_keys().await.unwrap();
    let service = ServiceBuilder::new()
        .layer(authenticate(verifier.clone()).with_dpop(DpopPolicy::optional(AUDIENCE).unwrap()))
        .layer(RequireMfa)
        .service(service_fn(echo));

    idp.publish(&[&old, &new]);
    clock.advance(Duration::from_secs(31));
    let answer = call(&service, bearer(&new.sign(&claims(&idp.issuer, "mfa")))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "hello user-1");
    assert_eq!(idp.jwks_fetches(), 2);
    // A key its issuer never published is still refused, after the one refresh.
    let stranger = TestKey::ec("never-published");
    let answer = call(
        &service,
        bearer(&stranger.sign(&claims(&idp.issuer, "mfa"))),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_removed_key_stops_working_at_the_next_refresh_cached_tokens_included() {
    let old = TestKey::rsa("old");
    let new = TestKey::ec("new");
    let idp = FakeIdp::start("", &[&old, &new]).await;
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    verifier.refresh_keys().await.unwrap();
    let old_token = old.sign(&claims(&idp.issuer, "mfa"));
    let new_token = new.sign(&claims(&idp.issuer, "mfa"));
    // Both verified twice, so both sit in the verified-token cache.
    for _ in 0..2 {
        assert!(verifier.verify(&old_token).is_ok());
        assert!(verifier.verify(&new_token).is_ok());
    }

    idp.publish(&[&new]);
    verifier.refresh_keys().await.unwrap();
    assert_eq!(
        verifier.verify(&old_token).unwrap_err(),
        TokenError::UnknownKey
    );
    assert_eq!(
        through_layers(&verifier, &old_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The kept key keeps its cached tokens.
    assert!(verifier.verify(&new_token).is_ok());
}

#[tokio::test]
async fn refresh_follows_max_age_clamped_and_never_blocks_a_request() {
    let key = TestKey::rsa("rs-1");
    let idp = FakeIdp::start("", &[&key]).await;
    idp.set_max_age(Some(600));
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    verifier.refresh_keys().await.unwrap();
    let token = key.sign(&claims(&idp.issuer, "mfa"));

    // Not due yet: requests fetch nothing.
    clock.set_unix(T0 + 599);
    assert!(verifier.verify(&token).is_ok());
    assert_eq!(idp.jwks_fetches(), 1);
    // Due: the request is answered from the keys held, and wakes the background refresh.
    clock.set_unix(T0 + 601);
    assert!(verifier.verify(&token).is_ok());
    idp.wait_for_jwks_fetches(2).await;
    // (Joins that background fetch, should it still be finishing.)
    verifier.refresh_keys().await.unwrap();
    assert_eq!(idp.jwks_fetches(), 2);

    // A max-age below the floor counts as 5 minutes.
    idp.set_max_age(Some(10));
    verifier.refresh_keys().await.unwrap();
    let fetched = idp.jwks_fetches();
    clock.set_unix(T0 + 601 + 11);
    assert!(verifier.verify(&token).is_ok());
    clock.set_unix(T0 + 601 + 299);
    assert!(verifier.verify(&token).is_ok());
    assert_eq!(idp.jwks_fetches(), fetched);
    clock.set_unix(T0 + 601 + 301);
    assert!(verifier.verify(&token).is_ok());
    idp.wait_for_jwks_fetches(fetched + 1).await;
}

#[tokio::test]
async fn an_outage_keeps_the_last_good_keys_for_max_stale_then_fails_closed_and_recovers() {
    let key = TestKey::rsa("rs-1");
    let idp = FakeIdp::start("", &[&key]).await;
    idp.set_max_age(Some(600));
    let clock = ManualClock::at_unix(T0);
    let mut policy = RefreshPolicy::default();
    policy.max_stale = Duration::from_secs(3_600);
    let verifier = JwtVerifier::builder()
        .discover(&idp.issuer)
        .audience(AUDIENCE)
        .clock(Arc::new(clock.clone()))
        .refresh_policy(policy)
        .build()
        .unwrap();
    verifier.refresh_keys().await.unwrap();
    let token = key.sign(&claims(&idp.issuer, "mfa"));
    let uncached = key.sign(
        &json!({"jti": "another", "iss": idp.issuer, "aud": AUDIENCE,
        "sub": "user-2", "exp": T0 + 86_400, "acr": "mfa"}),
    );
    assert!(verifier.verify(&token).is_ok());

    idp.set_down(true);
    // The refresh is due and fails: the last good keys still serve, cached or not.
    clock.set_unix(T0 + 700);
    assert!(verifier.verify(&token).is_ok());
    idp.wait_for_jwks_fetches(2).await;
    assert!(verifier.refresh_keys().await.is_err());
    assert!(verifier.verify(&token).is_ok());
    assert!(verifier.verify(&uncached).is_ok());
    // Up to the interval plus `max_stale` after the last success.
    clock.set_unix(T0 + 600 + 3_599);
    assert!(verifier.verify(&token).is_ok());
    clock.set_unix(T0 + 600 + 3_600);
    assert_eq!(
        verifier.verify(&token).unwrap_err(),
        TokenError::KeysUnavailable
    );
    assert_eq!(
        through_layers(&verifier, &uncached).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // The provider comes back: served again, without a restart.
    idp.set_down(false);
    verifier.refresh_keys().await.unwrap();
    assert!(verifier.verify(&token).is_ok());
    assert_eq!(
        through_layers(&verifier, &uncached).await.body,
        "hello user-2"
    );
}

#[tokio::test]
async fn several_issuers_are_chosen_by_iss_each_with_its_keys_and_audience() {
    let a_key = TestKey::rsa("shared-kid");
    let b_key = TestKey::ec("shared-kid");
    let a = FakeIdp::start("/a", &[&a_key]).await;
    let b = FakeIdp::start("/b", &[&b_key]).await;
    let clock = ManualClock::at_unix(T0);
    let verifier = JwtVerifier::builder()
        .trust(TrustedIssuer::new(&a.issuer).discover().audience("api-a"))
        .trust(TrustedIssuer::new(&b.issuer).discover().audience("api-b"))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    verifier.refresh_keys().await.unwrap();
    let for_issuer = |issuer: &str, audience: &str| {
        let mut claims = claims(issuer, "mfa");
        claims["aud"] = json!(audience);
        claims
    };
    assert!(
        verifier
            .verify(&a_key.sign(&for_issuer(&a.issuer, "api-a")))
            .is_ok()
    );
    assert!(
        verifier
            .verify(&b_key.sign(&for_issuer(&b.issuer, "api-b")))
            .is_ok()
    );
    // The same `kid` at both: `iss` picks the issuer first, so A's key never checks B's tokens.
    assert_eq!(
        verifier
            .verify(&a_key.sign(&for_issuer(&b.issuer, "api-b")))
            .unwrap_err(),
        TokenError::AlgorithmNotAllowed
    );
    // Each issuer its own audience.
    assert_eq!(
        verifier
            .verify(&a_key.sign(&for_issuer(&a.issuer, "api-b")))
            .unwrap_err(),
        TokenError::InvalidAudience
    );
    // An issuer no one trusts is refused before any key is looked at.
    assert_eq!(
        verifier
            .verify(&a_key.sign(&for_issuer("https://stranger.example", "api-a")))
            .unwrap_err(),
        TokenError::InvalidIssuer
    );
}

#[tokio::test]
async fn the_algorithm_is_pinned_per_key_never_taken_from_the_token() {
    let rs = TestKey::rsa("rs-1");
    let idp = FakeIdp::start("", &[&rs]).await;
    let clock = ManualClock::at_unix(T0);
    let verifier = discovering(&idp, &clock);
    verifier.refresh_keys().await.unwrap();
    // The RSA key's `kid` with another `alg` in the header.
    for lie in [Algorithm::ES256, Algorithm::HS256, Algorithm::PS256] {
        let token = rs.sign_as(lie, Some("rs-1"), &claims(&idp.issuer, "mfa"));
        assert_eq!(
            verifier.verify(&token).unwrap_err(),
            TokenError::AlgorithmNotAllowed,
            "{lie:?}"
        );
    }
    // HS256 "signed" with the RSA public key's modulus: the RSA key accepts RS256 only.
    let modulus = match &rs.jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => rsa.n.clone(),
        other => panic!("{other:?}"),
    };
    let confused = jsonwebtoken::encode(
        &{
            let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
            header.kid = Some("rs-1".into());
            header
        },
        &claims(&idp.issuer, "mfa"),
        &jsonwebtoken::EncodingKey::from_secret(modulus.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&confused).unwrap_err(),
        TokenError::AlgorithmNotAllowed
    );
}
