//! `authenticate()`: every way a bearer token can be refused, and the ways it is accepted.

mod common;

use std::sync::Arc;

use common::*;
use http::HeaderValue;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use stepup::token::{JwkSet, JwtVerifierBuilder};
use stepup::{AuthContext, JwtVerifier, RequireMfa, VerifyingKey, authenticate};
use tower::{ServiceBuilder, service_fn};

/// `authenticate()` alone: unauthenticated requests pass through to `echo`.
fn open_service(
    verifier: JwtVerifier,
) -> impl tower::Service<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<stepup::middleware::ResponseBody<http_body_util::Full<bytes::Bytes>>>,
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
            .issue(
                &stepup::token::Grant::new("user-7")
                    .acr("mfa")
                    .amr(["pwd", "otp"]),
            )
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

/// RFC 7515 §4.1.11: a header parameter listed in `crit` must be understood, or the token is
/// refused. Signed correctly under the right key, each of these still fails.
#[tokio::test]
async fn critical_header_parameters_that_are_not_understood_are_refused() {
    let key = EncodingKey::from_secret(HS_SECRET).unwrap();
    let signed_with = |header: Value| {
        stepup::token::crypto_provider();
        let signing_input = format!(
            "{}.{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                header.to_string()
            ),
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                claims("mfa").to_string()
            ),
        );
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{signing_input}.{signature}")
    };
    // The same header without `crit` is accepted: only `crit` makes the difference.
    let plain = signed_with(json!({"alg": "HS256", "typ": "JWT", "kid": "hs"}));
    assert_eq!(answer(&plain).await.body, "hello user-1");
    for header in [
        json!({"alg": "HS256", "kid": "hs", "crit": ["exp-extension"], "exp-extension": 1}),
        json!({"alg": "HS256", "kid": "hs", "crit": ["http://example.com/unknown"]}),
        json!({"alg": "HS256", "kid": "hs", "crit": []}),
        json!({"alg": "HS256", "kid": "hs", "crit": ["b64"], "b64": false}),
        json!({"alg": "HS256", "kid": "hs", "crit": ["b64", "b64"], "b64": true}),
    ] {
        let token = signed_with(header.clone());
        let answer = answer(&token).await;
        assert_eq!(answer.status, 401, "{header}");
        answer.assert_invalid_token("the bearer token is malformed");
    }
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
    let confused = EncodingKey::from_secret(RSA_PUBLIC).unwrap();
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
async fn an_auth_time_in_the_future_is_an_invalid_token() {
    let clock = clock();
    let service = open_service(verifier(&clock));
    let mut claims = claims("mfa");
    claims["auth_time"] = json!(T0 + 31);
    let token = hs_token(&claims);
    call(&service, bearer(&token))
        .await
        .assert_invalid_token("the token's authentication time is in the future");
    assert_eq!(
        verifier(&clock).verify(&token).unwrap_err(),
        stepup::middleware::TokenError::AuthTimeInFuture
    );
    // Within the 30 seconds of leeway, it is clock skew.
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(call(&service, bearer(&token)).await.status, 200);

    // However far ahead.
    claims["auth_time"] = json!(u64::MAX);
    call(&service, bearer(&hs_token(&claims)))
        .await
        .assert_invalid_token("the token's authentication time is in the future");

    // The configured leeway is the one applied.
    let strict = JwtVerifier::builder()
        .key(VerifyingKey::hs256(HS_SECRET).unwrap().with_kid("hs"))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .leeway(std::time::Duration::ZERO)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let now = T0 + 1;
    claims["auth_time"] = json!(now + 1);
    assert_eq!(
        strict.verify(&hs_token(&claims)).unwrap_err(),
        stepup::middleware::TokenError::AuthTimeInFuture
    );
    claims["auth_time"] = json!(now);
    assert!(strict.verify(&hs_token(&claims)).is_ok());
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

/// A verifier with exactly these keys.
fn verifier_with(keys: impl IntoIterator<Item = VerifyingKey>) -> JwtVerifier {
    keys.into_iter()
        .fold(JwtVerifier::builder(), JwtVerifierBuilder::key)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(Arc::new(clock()))
        .build()
        .unwrap()
}

/// The test JWK set, with each key's `kid` replaced (`None`: removed), plus more keys.
fn jwk_set(kid: Option<&str>, more: impl IntoIterator<Item = Jwk>) -> JwtVerifier {
    let mut set: JwkSet = serde_json::from_str(JWKS).unwrap();
    for jwk in &mut set.keys {
        jwk.common.key_id = kid.map(str::to_owned);
    }
    set.keys.extend(more);
    JwtVerifier::builder()
        .jwk_set(&set)
        .unwrap()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(Arc::new(clock()))
        .build()
        .unwrap()
}

/// The test RSA key as a public JWK named `kid`.
fn rsa_jwk(kid: &str) -> Jwk {
    stepup::token::crypto_provider();
    let mut jwk = Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let hs = EncodingKey::from_secret(HS_SECRET).unwrap();
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE).unwrap();
    let hs_key = || VerifyingKey::hs256(HS_SECRET).unwrap();
    let rs_key = || VerifyingKey::rs256_pem(RSA_PUBLIC).unwrap();
    // Each configuration, the key that signs, and the `kid` a good token names (if any). Every
    // token below verifies under its key's secret: only the `kid` it names is wrong.
    let cases: Vec<(&str, JwtVerifier, Algorithm, &EncodingKey, Option<&str>)> = vec![
        (
            "four named keys",
            verifier(&clock()),
            Algorithm::HS256,
            &hs,
            Some("hs"),
        ),
        (
            "several keys, the signing one unnamed",
            verifier_with([hs_key(), rs_key().with_kid("rs")]),
            Algorithm::HS256,
            &hs,
            None,
        ),
        (
            "several unnamed keys",
            verifier_with([hs_key(), rs_key()]),
            Algorithm::HS256,
            &hs,
            None,
        ),
        (
            "one named key",
            verifier_with([hs_key().with_kid("hs")]),
            Algorithm::HS256,
            &hs,
            Some("hs"),
        ),
        (
            "one key without a kid",
            verifier_with([hs_key()]),
            Algorithm::HS256,
            &hs,
            None,
        ),
        (
            "a JWKS of one named key",
            jwk_set(Some("ed-jwk"), []),
            Algorithm::EdDSA,
            &ed,
            Some("ed-jwk"),
        ),
        (
            "a JWKS of one key without a kid",
            jwk_set(None, []),
            Algorithm::EdDSA,
            &ed,
            None,
        ),
        (
            "a JWKS of several keys",
            jwk_set(Some("ed-jwk"), [rsa_jwk("rs-jwk")]),
            Algorithm::EdDSA,
            &ed,
            Some("ed-jwk"),
        ),
    ];
    for (name, verifier, algorithm, key, good_kid) in cases {
        let service = open_service(verifier.clone());
        let good = sign(algorithm, good_kid, &claims("mfa"), key);
        assert_eq!(call(&service, bearer(&good)).await.status, 200, "{name}");
        for unknown in ["retired", "", "HS", "ed-jwk "] {
            if good_kid == Some(unknown) {
                continue;
            }
            let token = sign(algorithm, Some(unknown), &claims("mfa"), key);
            assert_eq!(
                verifier.verify(&token).unwrap_err(),
                stepup::middleware::TokenError::UnknownKey,
                "{name}: kid {unknown:?}"
            );
            call(&service, bearer(&token))
                .await
                .assert_invalid_token("the token's signing key is unknown");
        }
    }
}

#[tokio::test]
async fn an_oversized_header_is_refused_before_parsing() {
    let huge = format!("{}.{}.sig", "a".repeat(9000), "b".repeat(100));
    answer(&huge)
        .await
        .assert_invalid_token("the bearer token is too large");
}

/// Client input that must never come back in an answer.
const MARKER: &str = "MARKERd1e2f3";

/// Asserts `answer` is a `401 invalid_token` whose body is exactly `{"error",
/// "error_description"}` JSON, and that neither the body nor the challenge echoes [`MARKER`].
fn assert_json_refusal_without_echo(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 401, "{case}: {answer:?}");
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/json"),
        "{case}"
    );
    let body = answer.json();
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["error", "error_description"], "{case}");
    assert_eq!(body["error"], "invalid_token", "{case}");
    assert!(!answer.body.contains(MARKER), "{case}: {}", answer.body);
    let challenge = answer.www_authenticate.as_deref().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{case}"
    );
    assert!(!challenge.contains(MARKER), "{case}: {challenge}");
}

#[tokio::test]
async fn every_refusal_is_a_json_error_body_that_echoes_nothing() {
    let service = open_service(verifier(&clock()));
    let huge = format!("Bearer {MARKER}{}", "a".repeat(64 * 1024));
    let mut hostile_claims = claims("mfa");
    hostile_claims["iss"] = json!(MARKER);
    let mut headers: Vec<(&str, Vec<HeaderValue>)> = vec![
        ("oversized", vec![HeaderValue::from_str(&huge).unwrap()]),
        (
            "oversized, another scheme",
            vec![HeaderValue::from_str(&huge.replace("Bearer", "Basic")).unwrap()],
        ),
        (
            "two headers",
            vec![bearer(MARKER).unwrap(), bearer(MARKER).unwrap()],
        ),
        (
            "two oversized headers",
            vec![HeaderValue::from_str(&huge).unwrap(); 2],
        ),
        (
            "not UTF-8",
            vec![
                HeaderValue::from_bytes(
                    &[&b"Bearer "[..], MARKER.as_bytes(), &b"\xff\xfe"[..]].concat(),
                )
                .unwrap(),
            ],
        ),
        ("garbage token", vec![bearer(MARKER).unwrap()]),
        (
            "quote in the token",
            vec![HeaderValue::from_str(&format!("Bearer \"{MARKER}")).unwrap()],
        ),
    ];
    for (case, token) in [
        (
            "unknown kid",
            sign(
                Algorithm::HS256,
                Some(MARKER),
                &claims("mfa"),
                &EncodingKey::from_secret(HS_SECRET).unwrap(),
            ),
        ),
        (
            "alg outside the allow-list",
            forge(&json!({"alg": MARKER, "kid": "hs"}), &claims("mfa"), b"sig"),
        ),
        ("wrong issuer", hs_token(&hostile_claims)),
    ] {
        headers.push((case, vec![bearer(&token).unwrap()]));
    }
    for (case, values) in headers {
        let mut request = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
        for value in values {
            request
                .headers_mut()
                .append(http::header::AUTHORIZATION, value);
        }
        let response = tower::ServiceExt::oneshot(service.clone(), request)
            .await
            .unwrap();
        assert_json_refusal_without_echo(&Answer::read(response).await, case);
    }
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
        stepup::middleware::TokenError::AlgorithmNotAllowed
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
