//! `authenticate()`: every way a bearer token can be refused, and the ways it is accepted.

mod common;

use std::sync::Arc;

use common::*;
use http::HeaderValue;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use stepup::{AuthContext, JwtVerifier, RequireMfa, VerifyingKey, authenticate, token::JwkSet};
use tower::{ServiceBuilder, service_fn};

/// `authenticate()` alone: unauthenticated requests pass through to `echo`.
fn open_service(
    verifier: JwtVerifier,
) -> impl tower::Service<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<stepup::ResponseBody<http_body_util::Full<bytes::Bytes>>>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    ServiceBuilder::new()
        .layer(authenticate(verifier))
        .service(service_fn(echo))
}

async fn answer(token: &str) -> Answer {
    call(&open_service(verifier(&clock())), bearer(token)).await
}

#[tokio::test]
async fn a_valid_token_of_each_algorithm_reaches_the_handler_with_its_context() {
    let clock = clock();
    let service = open_service(verifier(&clock));
    for key in signing_keys() {
        let issuer = stepup::JwtIssuer::new(key.clone())
            .with_issuer(ISSUER)
            .with_audience(AUDIENCE)
            .with_clock(Arc::new(clock.clone()));
        let token = issuer
            .issue(&stepup::Grant::new("user-7").acr("mfa").amr(["pwd", "otp"]))
            .unwrap();
        let answer = call(&service, bearer(&token.access_token)).await;
        assert_eq!(answer.status, 200, "{:?} {answer:?}", key.algorithm());
        assert_eq!(answer.body, "hello user-7");
    }
}

#[tokio::test]
async fn no_header_and_other_schemes_pass_on_without_context() {
    let service = open_service(verifier(&clock()));
    assert_eq!(call(&service, None).await.body, "anonymous");
    let basic = Some(HeaderValue::from_static("Basic dXNlcjpwYXNzd29yZA=="));
    assert_eq!(call(&service, basic).await.body, "anonymous");
}

#[tokio::test]
async fn no_token_or_wrong_scheme_on_a_protected_route_is_a_bare_bearer_challenge() {
    let service = ServiceBuilder::new()
        .layer(authenticate(verifier(&clock())))
        .layer(RequireMfa)
        .service(service_fn(echo));
    call(&service, None).await.assert_missing_token();
    call(
        &service,
        Some(HeaderValue::from_static("Basic dXNlcjpwYXNzd29yZA==")),
    )
    .await
    .assert_missing_token();
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let token = hs_token(&claims("mfa"));
    let service = open_service(verifier(&clock()));
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let value = HeaderValue::from_str(&format!("{scheme} {token}")).unwrap();
        assert_eq!(call(&service, Some(value)).await.body, "hello user-1");
    }
}

#[tokio::test]
async fn malformed_authorization_headers_are_invalid_tokens() {
    let service = open_service(verifier(&clock()));
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a\"b",
        "Bearer ====",
    ] {
        call(&service, Some(HeaderValue::from_static(value)))
            .await
            .assert_invalid_token("the bearer token is malformed");
    }
    let not_ascii = HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    call(&service, Some(not_ascii))
        .await
        .assert_invalid_token("the bearer token is malformed");
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let token = hs_token(&claims("mfa"));
    let mut request = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
    for _ in 0..2 {
        request.headers_mut().append(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    let response = tower::ServiceExt::oneshot(open_service(verifier(&clock())), request)
        .await
        .unwrap();
    Answer::read(response)
        .await
        .assert_invalid_token("the bearer token is malformed");
}

#[tokio::test]
async fn garbage_is_an_invalid_token() {
    for garbage in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30", "...."] {
        answer(garbage)
            .await
            .assert_invalid_token("the bearer token is malformed");
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    for alg in ["none", "None", "NONE"] {
        let token = forge(&json!({"alg": alg, "typ": "JWT"}), &claims("phr"), b"");
        answer(&token)
            .await
            .assert_invalid_token("the bearer token is malformed");
    }
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
    let confused = EncodingKey::from_secret(RSA_PUBLIC);
    // Naming the RSA key: its one algorithm is RS256.
    let token = sign(Algorithm::HS256, Some("rs"), &claims("phr"), &confused);
    answer(&token)
        .await
        .assert_invalid_token("the token's signing algorithm is not accepted");

    // Naming no key, against a verifier that only knows the RSA public key.
    let rsa_only = JwtVerifier::builder()
        .key(VerifyingKey::rs256_pem(RSA_PUBLIC).unwrap())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    let token = sign(Algorithm::HS256, None, &claims("phr"), &confused);
    call(&open_service(rsa_only), bearer(&token))
        .await
        .assert_invalid_token("the token's signing algorithm is not accepted");
}

#[tokio::test]
async fn algorithms_outside_the_allow_list_are_refused() {
    for alg in ["HS384", "HS512", "PS256", "RS512", "ES384"] {
        let token = forge(&json!({"alg": alg, "kid": "hs"}), &claims("mfa"), b"sig");
        answer(&token)
            .await
            .assert_invalid_token("the token's signing algorithm is not accepted");
    }
}

#[tokio::test]
async fn expiry_is_enforced_with_30_seconds_of_leeway() {
    let clock = clock();
    let service = open_service(verifier(&clock));
    let mut claims = claims("mfa");
    claims["exp"] = json!(T0 - 30);
    let token = hs_token(&claims);
    assert_eq!(call(&service, bearer(&token)).await.status, 200);
    clock.advance(std::time::Duration::from_secs(1));
    call(&service, bearer(&token))
        .await
        .assert_invalid_token("the token has expired");
}

#[tokio::test]
async fn not_before_is_enforced_with_30_seconds_of_leeway() {
    let clock = clock();
    let service = open_service(verifier(&clock));
    let mut claims = claims("mfa");
    claims["nbf"] = json!(T0 + 31);
    let token = hs_token(&claims);
    call(&service, bearer(&token))
        .await
        .assert_invalid_token("the token is not valid yet");
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(call(&service, bearer(&token)).await.status, 200);
}

#[tokio::test]
async fn wrong_issuer_and_audience_are_refused() {
    let mut wrong_issuer = claims("mfa");
    wrong_issuer["iss"] = json!("https://evil.test");
    answer(&hs_token(&wrong_issuer))
        .await
        .assert_invalid_token("the token's issuer is not accepted");

    let mut wrong_audience = claims("mfa");
    wrong_audience["aud"] = json!(["https://other-api.test"]);
    answer(&hs_token(&wrong_audience))
        .await
        .assert_invalid_token("the token's audience is not accepted");

    let mut audience_list = claims("mfa");
    audience_list["aud"] = json!(["https://other-api.test", AUDIENCE]);
    assert_eq!(answer(&hs_token(&audience_list)).await.status, 200);
}

#[tokio::test]
async fn required_claims_must_be_present() {
    for missing in ["sub", "exp", "iss", "aud"] {
        let mut claims = claims("mfa");
        claims.as_object_mut().unwrap().remove(missing);
        answer(&hs_token(&claims))
            .await
            .assert_invalid_token("the token lacks a required claim");
    }
    let mut string_exp = claims("mfa");
    string_exp["exp"] = json!("tomorrow");
    let answer = answer(&hs_token(&string_exp)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"], "invalid_token");
}

#[tokio::test]
async fn a_tampered_payload_breaks_the_signature() {
    let token = hs_token(&claims("pwd"));
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims("phr").to_string()
        ),
        parts[2]
    );
    answer(&tampered)
        .await
        .assert_invalid_token("the token's signature is invalid");
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let token = sign(
        Algorithm::HS256,
        Some("retired"),
        &claims("mfa"),
        &EncodingKey::from_secret(HS_SECRET),
    );
    answer(&token)
        .await
        .assert_invalid_token("the token's signing key is unknown");

    // With a single key nothing is chosen, but a token naming another key is still refused,
    // even when that key's secret happens to verify it.
    let single = JwtVerifier::builder()
        .key(VerifyingKey::hs256(HS_SECRET).unwrap().with_kid("hs"))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    assert_eq!(
        single.verify(&token).unwrap_err(),
        stepup::TokenError::UnknownKey
    );
}

#[tokio::test]
async fn an_oversized_header_is_refused_before_parsing() {
    let huge = format!("{}.{}.sig", "a".repeat(9000), "b".repeat(100));
    answer(&huge)
        .await
        .assert_invalid_token("the bearer token is too large");
}

#[tokio::test]
async fn a_context_set_by_an_outer_layer_is_not_trusted() {
    let service = ServiceBuilder::new()
        .map_request(|mut request: http::Request<_>| {
            let forged = AuthContext::builder("intruder").acr("phr").build();
            request.extensions_mut().insert(forged);
            request
        })
        .layer(authenticate(verifier(&clock())))
        .layer(RequireMfa)
        .service(service_fn(echo));
    call(&service, None).await.assert_missing_token();
}

#[tokio::test]
async fn keys_from_a_static_jwk_set_verify() {
    let set: JwkSet = serde_json::from_str(JWKS).unwrap();
    let verifier = JwtVerifier::builder()
        .jwk_set(&set)
        .unwrap()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    let key = EncodingKey::from_ed_pem(ED_PRIVATE).unwrap();
    let token = sign(Algorithm::EdDSA, Some("ed-jwk"), &claims("mfa"), &key);
    let answer = call(&open_service(verifier.clone()), bearer(&token)).await;
    assert_eq!(answer.body, "hello user-1");

    let hs = hs_token(&claims("mfa"));
    assert_eq!(
        verifier.verify(&hs).unwrap_err(),
        stepup::TokenError::AlgorithmNotAllowed
    );
}

#[test]
fn symmetric_jwks_and_short_secrets_are_refused_at_configuration() {
    let oct: JwkSet = serde_json::from_value(json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "alg": "HS256"}
    ]}))
    .unwrap();
    assert!(JwtVerifier::builder().jwk_set(&oct).is_err());
    assert!(VerifyingKey::hs256(b"too short").is_err());
    let mismatched: JwkSet = serde_json::from_value({
        let mut jwks: Value = serde_json::from_str(JWKS).unwrap();
        jwks["keys"][0]["alg"] = json!("RS256");
        jwks
    })
    .unwrap();
    assert!(JwtVerifier::builder().jwk_set(&mismatched).is_err());
}

#[test]
fn a_verifier_without_issuer_audience_or_keys_is_refused() {
    let key = || VerifyingKey::hs256(HS_SECRET).unwrap();
    assert!(
        JwtVerifier::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .is_err()
    );
    assert!(
        JwtVerifier::builder()
            .key(key())
            .audience(AUDIENCE)
            .build()
            .is_err()
    );
    assert!(
        JwtVerifier::builder()
            .key(key())
            .issuer(ISSUER)
            .build()
            .is_err()
    );
    let duplicate = JwtVerifier::builder()
        .key(key().with_kid("a"))
        .key(key().with_kid("a"))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build();
    assert!(duplicate.is_err());
}

#[test]
fn the_context_carries_every_claim() {
    let context = verifier(&clock())
        .verify(&hs_token(&claims("mfa")))
        .unwrap();
    assert_eq!(context.subject(), "user-1");
    assert_eq!(context.acr(), Some("mfa"));
    assert_eq!(context.amr(), ["pwd", "otp"]);
    assert_eq!(context.auth_time(), Some(T0));
    assert_eq!(context.token_id(), Some("token-1"));
    assert_eq!(context.expires_at(), T0 + 600);
    assert_eq!(context.verified_at(), T0);
}
