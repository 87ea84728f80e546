//! DPoP (RFC 9449) at the resource server: `authenticate(…).with_dpop(…)` against proofs made
//! here by an independent client — ES256 signed by `p256`, EdDSA by `ed25519-dalek`, PS256 by
//! `rsa`, the JWK thumbprints (RFC 7638) computed by hand — never by stepup's own code. Time is a
//! `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stepup_core::clock::ManualClock;
use stepup_core::dpop::{DpopNonces, DpopPolicy};
use stepup_core::policy::{ProofReplay, Unavailable, async_trait};
use stepup_core::resource::ProtectedResourceMetadata;
use stepup_core::token::{Grant, JwtIssuer, SigningKey};
use stepup_core::{AuthContext, Presentation};
use stepup_tower::{RequireMfa, authenticate};
use tower::ServiceExt;

const T0: u64 = 1_800_000_000;
const ORIGIN: &str = "https://api.example.com";
const ALGS: &str = r#"algs="ES256 EdDSA PS256""#;
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/keys");

// ---------------------------------------------------------------------------------------------
// The independent client.

enum ClientKey {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
    Ps256(Box<rsa::RsaPrivateKey>),
}

impl ClientKey {
    fn es256(seed: u8) -> Self {
        Self::Es256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap())
    }

    fn eddsa(seed: u8) -> Self {
        Self::EdDsa(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    fn ps256() -> Self {
        use rsa::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(format!("{KEYS}/rsa_private.pem")).unwrap();
        Self::Ps256(Box::new(rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()))
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
            Self::Ps256(_) => "PS256",
        }
    }

    /// The public JWK and its RFC 7638 thumbprint input (required members, lexicographic order,
    /// no whitespace).
    fn jwk_and_canonical(&self) -> (Value, String) {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            Self::Es256(key) => {
                let point = key.verifying_key().to_sec1_point(false);
                let bytes = point.as_bytes();
                let (x, y) = (b64(&bytes[1..33]), b64(&bytes[33..65]));
                (
                    json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                    format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
                )
            }
            Self::EdDsa(key) => {
                let x = b64(key.verifying_key().as_bytes());
                (
                    json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
                    format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
                )
            }
            Self::Ps256(key) => {
                use rsa::traits::PublicKeyParts;
                let (n, e) = (b64(&key.n().to_bytes_be()), b64(&key.e().to_bytes_be()));
                (
                    json!({"kty": "RSA", "n": n, "e": e}),
                    format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
                )
            }
        }
    }

    fn jwk(&self) -> Value {
        self.jwk_and_canonical().0
    }

    fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.jwk_and_canonical().1.as_bytes()))
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Self::Es256(key) => {
                use p256::ecdsa::signature::Signer;
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            Self::EdDsa(key) => {
                use ed25519_dalek::Signer;
                key.sign(input).to_bytes().to_vec()
            }
            Self::Ps256(key) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                let signer =
                    rsa::pss::BlindedSigningKey::<rsa::sha2::Sha256>::new(key.as_ref().clone());
                signer
                    .sign_with_rng(&mut rsa::rand_core::OsRng, input)
                    .to_vec()
            }
        }
    }

    /// A proof with this header and these claims, signed by this key.
    fn sign_proof(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = URL_SAFE_NO_PAD.encode(self.sign(input.as_bytes()));
        format!("{input}.{signature}")
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// The claims of a proof for `method` `url` with `token`, issued now.
    fn claims(method: &str, url: &str, token: &str, iat: u64) -> Value {
        json!({
            "jti": unique_jti(),
            "htm": method,
            "htu": url,
            "iat": iat,
            "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())),
        })
    }

    /// A good proof for `method` `url` with `token`, at `T0`.
    fn proof(&self, method: &str, url: &str, token: &str) -> String {
        self.sign_proof(&self.header(), &Self::claims(method, url, token, T0))
    }
}

fn unique_jti() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("jti-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------------
// The resource server.

fn issuer(clock: &ManualClock) -> JwtIssuer {
    JwtIssuer::new(SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap())
        .with_issuer("https://auth.example.com")
        .with_audience(ORIGIN)
        .with_clock(Arc::new(clock.clone()))
}

/// A token for `ada` at `acr`, bound to `key` when given.
fn token(clock: &ManualClock, acr: &str, key: Option<&ClientKey>) -> String {
    let mut grant = Grant::new("ada").acr(acr).amr(["pwd", "otp"]);
    if let Some(key) = key {
        grant = grant.dpop_bound(key.thumbprint());
    }
    let issued = issuer(clock).issue(&grant).unwrap();
    assert_eq!(
        issued.token_type,
        if key.is_some() { "DPoP" } else { "Bearer" }
    );
    issued.access_token
}

type Service = Router;

/// Answers who called and how: `{"sub", "dpop"}`; `/api/transfers` behind `RequireMfa`.
fn service(policy: DpopPolicy, clock: &ManualClock) -> Service {
    let verifier = issuer(clock).verifier().build().unwrap();
    let metadata = ProtectedResourceMetadata::new(ORIGIN).unwrap();
    let layer = authenticate(verifier)
        .with_dpop(policy.with_clock(Arc::new(clock.clone())))
        .with_resource_metadata(metadata.metadata_url());
    async fn who(request: axum::extract::Request) -> String {
        let caller = request.extensions().get::<AuthContext>().cloned();
        json!({
            "sub": caller.as_ref().map(|caller| caller.subject().to_owned()),
            "dpop": caller.map(|caller| caller.presentation() == Presentation::Dpop),
        })
        .to_string()
    }
    Router::new()
        .route("/api/transfers", post(who).layer(RequireMfa))
        .route("/api/account", get(who))
        .route("/account", get(who))
        .layer(layer)
}

struct Answer {
    status: StatusCode,
    challenges: Vec<String>,
    nonce: Option<String>,
    body: Value,
}

async fn call(service: &Service, request: Request<Body>) -> Answer {
    let response = service.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    if status != StatusCode::OK {
        assert_eq!(headers[CONTENT_TYPE], "application/json", "{status}");
    }
    Answer {
        status,
        challenges: headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect(),
        nonce: headers
            .get("dpop-nonce")
            .map(|value| value.to_str().unwrap().to_owned()),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn request(
    method: &str,
    path: &str,
    authorization: Option<String>,
    proofs: &[&str],
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(authorization) = authorization {
        builder = builder.header("authorization", authorization);
    }
    for proof in proofs {
        builder = builder.header("dpop", *proof);
    }
    builder.body(Body::empty()).unwrap()
}

fn dpop(token: &str, proof: &str, method: &str, path: &str) -> Request<Body> {
    request(method, path, Some(format!("DPoP {token}")), &[proof])
}

fn url(path: &str) -> String {
    format!("{ORIGIN}{path}")
}

/// A refusal with this error code under the `DPoP` scheme.
fn assert_dpop_refusal(answer: &Answer, error: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
    assert_eq!(answer.body["error"], error, "{:?}", answer.body);
    assert_eq!(answer.challenges.len(), 1, "{:?}", answer.challenges);
    let challenge = &answer.challenges[0];
    assert!(
        challenge.starts_with(&format!("DPoP error=\"{error}\"")),
        "{challenge}"
    );
    assert!(challenge.contains(ALGS), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}

fn optional() -> DpopPolicy {
    DpopPolicy::optional(ORIGIN).unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_proof_is_accepted_once_for_every_algorithm_and_its_replay_refused() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    for key in [ClientKey::es256(1), ClientKey::eddsa(2), ClientKey::ps256()] {
        let token = token(&clock, "mfa", Some(&key));
        let proof = key.proof("GET", &url("/api/account"), &token);
        let answer = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}: {:?}",
            key.alg(),
            answer.body
        );
        assert_eq!(answer.body, json!({"sub": "ada", "dpop": true}));

        let replay = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
        assert_dpop_refusal(&replay, "invalid_dpop_proof");
        assert_eq!(
            replay.body["error_description"],
            "the DPoP proof has already been used"
        );

        // A fresh proof by the same key is accepted.
        let again = key.proof("GET", &url("/api/account"), &token);
        let answer = call(&service, dpop(&token, &again, "GET", "/api/account")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", key.alg());
    }
}

#[tokio::test]
async fn a_proof_for_another_url_or_method_is_refused() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::es256(3);
    let token = token(&clock, "mfa", Some(&key));
    for (method, htu) in [
        ("GET", url("/api/other")),
        ("GET", "https://evil.example.com/api/account".to_owned()),
        ("GET", "http://api.example.com/api/account".to_owned()),
        ("GET", url("/api/account/")),
        ("POST", url("/api/account")),
        ("get", url("/api/account")),
    ] {
        let proof = key.proof(method, &htu, &token);
        let answer = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
        assert_dpop_refusal(&answer, "invalid_dpop_proof");
    }
    // Query and fragment are ignored; scheme, host and a default port compare normalized.
    for htu in [
        url("/api/account?page=2"),
        "HTTPS://API.example.com:443/api/account#top".to_owned(),
    ] {
        let proof = key.proof("GET", &htu, &token);
        let answer = call(&service, dpop(&token, &proof, "GET", "/api/account?page=1")).await;
        assert_eq!(answer.status, StatusCode::OK, "{htu}");
    }
}

#[tokio::test]
async fn htu_is_judged_against_the_configured_origin_never_the_host_header() {
    let clock = ManualClock::at_unix(T0);
    // Published by a proxy under a path prefix, the service itself sees `/account`.
    let service = service(
        DpopPolicy::optional("https://example.com/api/").unwrap(),
        &clock,
    );
    let key = ClientKey::eddsa(4);
    let token = token(&clock, "mfa", Some(&key));
    let forwarded = |proof: &str| {
        let mut request = dpop(&token, proof, "GET", "/account");
        let headers = request.headers_mut();
        headers.insert("host", "internal:8080".parse().unwrap());
        headers.insert("x-forwarded-host", "evil.example".parse().unwrap());
        headers.insert("forwarded", "host=evil.example;proto=http".parse().unwrap());
        request
    };
    let good = key.proof("GET", "https://example.com/api/account", &token);
    assert_eq!(
        call(&service, forwarded(&good)).await.status,
        StatusCode::OK
    );
    for htu in [
        "http://internal:8080/account",
        "https://evil.example/api/account",
        "https://example.com/account",
    ] {
        let proof = key.proof("GET", htu, &token);
        assert_dpop_refusal(
            &call(&service, forwarded(&proof)).await,
            "invalid_dpop_proof",
        );
    }
}

#[tokio::test]
async fn a_proof_for_another_token_is_refused() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::es256(5);
    let token = token(&clock, "mfa", Some(&key));
    let other = crate::token(&clock, "pwd", Some(&key));
    let proof = key.proof("GET", &url("/api/account"), &other);
    let answer = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
    assert_dpop_refusal(&answer, "invalid_dpop_proof");
    assert_eq!(
        answer.body["error_description"],
        "the DPoP proof was made for another access token"
    );
    // No `ath` at all.
    let mut claims = ClientKey::claims("GET", &url("/api/account"), &token, T0);
    claims.as_object_mut().unwrap().remove("ath");
    let proof = key.sign_proof(&key.header(), &claims);
    let answer = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
    assert_dpop_refusal(&answer, "invalid_dpop_proof");
}

#[tokio::test]
async fn iat_must_fall_within_60_seconds_past_and_5_seconds_ahead() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::eddsa(6);
    let token = token(&clock, "mfa", Some(&key));
    for (iat, accepted) in [
        (T0 - 61, false),
        (T0 - 60, true),
        (T0, true),
        (T0 + 5, true),
        (T0 + 6, false),
    ] {
        let claims = ClientKey::claims("GET", &url("/api/account"), &token, iat);
        let proof = key.sign_proof(&key.header(), &claims);
        let answer = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
        if accepted {
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "iat T0{:+}",
                iat as i64 - T0 as i64
            );
        } else {
            assert_dpop_refusal(&answer, "invalid_dpop_proof");
            assert_eq!(
                answer.body["error_description"],
                "the DPoP proof's issue time is outside the accepted window"
            );
        }
    }
    // A good proof presented later is too old: the clock judges, not the proof.
    let proof = key.proof("GET", &url("/api/account"), &token);
    clock.advance(Duration::from_secs(61));
    let token_still_valid = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
    assert_dpop_refusal(&token_still_valid, "invalid_dpop_proof");
}

#[tokio::test]
async fn headers_with_a_private_key_a_wrong_type_or_a_refused_algorithm_are_refused() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::es256(7);
    let token = token(&clock, "mfa", Some(&key));
    let claims = || ClientKey::claims("GET", &url("/api/account"), &token, T0);
    let with = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut header = key.header();
        change(header.as_object_mut().unwrap());
        key.sign_proof(&header, &claims())
    };
    let private_d = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let cases: Vec<(String, &str)> = vec![
        (
            with(&|header| {
                header["jwk"]["d"] = json!(private_d);
            }),
            "the DPoP proof's key must be a public key",
        ),
        (
            with(&|header| {
                header.insert("typ".into(), json!("JWT"));
            }),
            "the DPoP proof's type is not dpop+jwt",
        ),
        (
            with(&|header| {
                header.remove("typ");
            }),
            "the DPoP proof's type is not dpop+jwt",
        ),
        (
            with(&|header| {
                header.remove("jwk");
            }),
            "the DPoP proof's key is missing or not accepted",
        ),
        (
            with(&|header| {
                header["jwk"]["crv"] = json!("P-384");
            }),
            "the DPoP proof's key is missing or not accepted",
        ),
        (
            with(&|header| {
                header.insert("jwk".into(), ClientKey::eddsa(1).jwk());
            }),
            "the DPoP proof's key is missing or not accepted",
        ),
        (
            // Signed by this key, naming another one of the same type.
            with(&|header| {
                header.insert("jwk".into(), ClientKey::es256(8).jwk());
            }),
            "the DPoP proof's signature is invalid",
        ),
        (
            with(&|header| {
                header.insert("alg".into(), json!("ES384"));
            }),
            "the DPoP proof's signing algorithm is not accepted",
        ),
    ];
    for (proof, description) in cases {
        let answer = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
        assert_dpop_refusal(&answer, "invalid_dpop_proof");
        assert_eq!(answer.body["error_description"], description, "{proof}");
    }

    // `alg: none` (no signature) and HS256 keyed by a symmetric JWK.
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let none_header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()});
    let none = format!("{}.{}.", encode(&none_header), encode(&claims()));
    let secret = b"a symmetric key of thirty-two bytes!";
    let hs_header = json!({
        "typ": "dpop+jwt",
        "alg": "HS256",
        "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret)},
    });
    let mut hs_jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_jwt_header.typ = Some("dpop+jwt".into());
    stepup_core::token::crypto_provider();
    let hs = jsonwebtoken::encode(
        &hs_jwt_header,
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap();
    let (_, hs_rest) = hs.split_once('.').unwrap();
    let hs = format!("{}.{hs_rest}", encode(&hs_header));
    let rs_header = json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": ClientKey::ps256().jwk()});
    let rs = ClientKey::ps256().sign_proof(&rs_header, &claims());
    for proof in [none, hs, rs] {
        let answer = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
        assert_dpop_refusal(&answer, "invalid_dpop_proof");
        assert_eq!(
            answer.body["error_description"], "the DPoP proof's signing algorithm is not accepted",
            "{proof}"
        );
    }
}

#[tokio::test]
async fn malformed_proofs_are_refused_with_a_json_401_never_a_panic() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::es256(9);
    let token = token(&clock, "mfa", Some(&key));
    let good = key.proof("GET", &url("/api/account"), &token);
    let huge = "a".repeat(9 * 1024);
    let (head, _) = good.rsplit_once('.').unwrap();
    let truncated = format!("{head}.");
    let not_json = format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("not json"));
    let array = format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("[1,2]"));
    let claims_not_json = {
        let header = URL_SAFE_NO_PAD.encode(key.header().to_string());
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode("{\"iat\":\"x\""));
        let signature = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()));
        format!("{input}.{signature}")
    };
    let wrong_types = key.sign_proof(
        &key.header(),
        &json!({"jti": 7, "htm": "GET", "htu": url("/api/account"), "iat": T0}),
    );
    for proof in [
        "",
        "x",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "...",
        &huge,
        &truncated,
        &not_json,
        &array,
        &claims_not_json,
        &wrong_types,
    ] {
        let answer = call(&service, dpop(&token, proof, "GET", "/api/account")).await;
        assert_dpop_refusal(&answer, "invalid_dpop_proof");
    }
    // No proof, two proofs.
    let answer = call(
        &service,
        request("GET", "/api/account", Some(format!("DPoP {token}")), &[]),
    )
    .await;
    assert_dpop_refusal(&answer, "invalid_dpop_proof");
    let other = key.proof("GET", &url("/api/account"), &token);
    let answer = call(
        &service,
        request(
            "GET",
            "/api/account",
            Some(format!("DPoP {token}")),
            &[&good, &other],
        ),
    )
    .await;
    assert_dpop_refusal(&answer, "invalid_dpop_proof");
    // A bad token under the DPoP scheme is an invalid token, answered under DPoP.
    let answer = call(&service, dpop("not-a-token", &good, "GET", "/api/account")).await;
    assert_dpop_refusal(&answer, "invalid_token");
}

#[tokio::test]
async fn binding_is_enforced_both_ways() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::es256(10);
    let bound = token(&clock, "mfa", Some(&key));
    let unbound = token(&clock, "mfa", None);

    // A bound token sent as Bearer (a stolen one, without the key): refused.
    let answer = call(
        &service,
        request("GET", "/api/account", Some(format!("Bearer {bound}")), &[]),
    )
    .await;
    assert_dpop_refusal(&answer, "invalid_token");
    assert_eq!(
        answer.body["error_description"],
        "a DPoP-bound access token must be presented with a DPoP proof"
    );
    // Also with a proof beside it: the Bearer scheme does not read proofs.
    let proof = key.proof("GET", &url("/api/account"), &bound);
    let answer = call(
        &service,
        request(
            "GET",
            "/api/account",
            Some(format!("Bearer {bound}")),
            &[&proof],
        ),
    )
    .await;
    assert_dpop_refusal(&answer, "invalid_token");

    // A token without `cnf` under the DPoP scheme: not bound, refused.
    let proof = key.proof("GET", &url("/api/account"), &unbound);
    let answer = call(&service, dpop(&unbound, &proof, "GET", "/api/account")).await;
    assert_dpop_refusal(&answer, "invalid_token");
    assert_eq!(
        answer.body["error_description"],
        "the access token is not bound to a DPoP key"
    );

    // A token bound to another key, with a good proof by this one.
    let thief = ClientKey::eddsa(11);
    let proof = thief.proof("GET", &url("/api/account"), &bound);
    let answer = call(&service, dpop(&bound, &proof, "GET", "/api/account")).await;
    assert_dpop_refusal(&answer, "invalid_token");
    assert_eq!(
        answer.body["error_description"],
        "the access token is bound to another key"
    );

    // An unbound token as Bearer is still accepted where DPoP is optional.
    let answer = call(
        &service,
        request(
            "GET",
            "/api/account",
            Some(format!("Bearer {unbound}")),
            &[],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!({"sub": "ada", "dpop": false}));
}

#[tokio::test]
async fn where_dpop_is_required_bearer_tokens_are_refused_with_a_dpop_challenge() {
    let clock = ManualClock::at_unix(T0);
    let service = service(DpopPolicy::required(ORIGIN).unwrap(), &clock);
    let unbound = token(&clock, "mfa", None);
    let answer = call(
        &service,
        request(
            "GET",
            "/api/account",
            Some(format!("Bearer {unbound}")),
            &[],
        ),
    )
    .await;
    assert_dpop_refusal(&answer, "invalid_token");
    assert_eq!(
        answer.body["error_description"],
        "a DPoP-bound access token and its proof are required"
    );
    // A bad bearer token: the DPoP scheme too.
    let answer = call(
        &service,
        request("GET", "/api/account", Some("Bearer nope".into()), &[]),
    )
    .await;
    assert_dpop_refusal(&answer, "invalid_token");
    // No token on a protected route: `DPoP algs=…`, no Bearer challenge.
    let answer = call(&service, request("POST", "/api/transfers", None, &[])).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenges,
        [format!(
            "DPoP {ALGS}, resource_metadata=\"{ORIGIN}/.well-known/oauth-protected-resource\""
        )]
    );
    // A bound token with its proof passes.
    let key = ClientKey::ps256();
    let bound = token(&clock, "mfa", Some(&key));
    let proof = key.proof("POST", &url("/api/transfers"), &bound);
    let answer = call(&service, dpop(&bound, &proof, "POST", "/api/transfers")).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
}

#[tokio::test]
async fn where_dpop_is_optional_a_401_offers_both_schemes() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let rm = format!("resource_metadata=\"{ORIGIN}/.well-known/oauth-protected-resource\"");
    let answer = call(&service, request("POST", "/api/transfers", None, &[])).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenges,
        [format!("Bearer {rm}"), format!("DPoP {ALGS}, {rm}")]
    );
    let answer = call(
        &service,
        request("GET", "/api/account", Some("Bearer nope".into()), &[]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["error"], "invalid_token");
    assert!(answer.challenges[0].starts_with("Bearer error=\"invalid_token\""));
    assert_eq!(answer.challenges[1], format!("DPoP {ALGS}, {rm}"));
}

#[tokio::test]
async fn a_step_up_challenge_to_a_dpop_caller_is_made_under_the_dpop_scheme() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::es256(12);
    let token = token(&clock, "pwd", Some(&key));
    let proof = key.proof("POST", &url("/api/transfers"), &token);
    let answer = call(&service, dpop(&token, &proof, "POST", "/api/transfers")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["error"], "insufficient_user_authentication");
    assert_eq!(
        answer.challenges,
        [format!(
            "DPoP error=\"insufficient_user_authentication\", \
             error_description=\"a stronger authentication level is required\", \
             acr_values=\"mfa\", {ALGS}, \
             resource_metadata=\"{ORIGIN}/.well-known/oauth-protected-resource\""
        )]
    );
    // The same token level as a Bearer caller gets the Bearer challenge (and the DPoP offer).
    let unbound = crate::token(&clock, "pwd", None);
    let answer = call(
        &service,
        request(
            "POST",
            "/api/transfers",
            Some(format!("Bearer {unbound}")),
            &[],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenges[0].starts_with("Bearer error=\"insufficient_user_authentication\""));
}

#[tokio::test]
async fn with_nonces_a_proof_without_the_servers_nonce_gets_use_dpop_nonce() {
    let clock = ManualClock::at_unix(T0);
    let nonces = DpopNonces::new(b"a nonce secret shared by the instances")
        .unwrap()
        .with_rotation(Duration::from_secs(60))
        .unwrap();
    let service = service(optional().with_nonces(nonces), &clock);
    let key = ClientKey::eddsa(13);
    let token = token(&clock, "mfa", Some(&key));
    let with_nonce = |nonce: Option<&str>| {
        let mut claims = ClientKey::claims("GET", &url("/api/account"), &token, clock_now(&clock));
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        key.sign_proof(&key.header(), &claims)
    };
    let first = call(
        &service,
        dpop(&token, &with_nonce(None), "GET", "/api/account"),
    )
    .await;
    assert_dpop_refusal(&first, "use_dpop_nonce");
    let nonce = first.nonce.expect("a DPoP-Nonce with use_dpop_nonce");
    for bad in ["forged", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let answer = call(
            &service,
            dpop(&token, &with_nonce(Some(bad)), "GET", "/api/account"),
        )
        .await;
        assert_dpop_refusal(&answer, "use_dpop_nonce");
    }
    let answer = call(
        &service,
        dpop(&token, &with_nonce(Some(&nonce)), "GET", "/api/account"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.nonce, None, "the nonce is current: no new one");

    // One rotation later the nonce is the previous one: accepted, and the answer hands the
    // current one; two rotations later it is stale.
    clock.advance(Duration::from_secs(60));
    let answer = call(
        &service,
        dpop(&token, &with_nonce(Some(&nonce)), "GET", "/api/account"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let current = answer.nonce.expect("a fresh nonce");
    assert_ne!(current, nonce);
    clock.advance(Duration::from_secs(60));
    let answer = call(
        &service,
        dpop(&token, &with_nonce(Some(&nonce)), "GET", "/api/account"),
    )
    .await;
    assert_dpop_refusal(&answer, "use_dpop_nonce");
    assert!(answer.nonce.is_some_and(|fresh| fresh != nonce));
}

fn clock_now(clock: &ManualClock) -> u64 {
    use stepup_core::clock::Clock;
    clock.unix_seconds()
}

/// A replay memory that cannot be reached.
struct Down;

#[async_trait]
impl ProofReplay for Down {
    async fn first_use(&self, _key: &str, _ttl: Duration) -> Result<bool, Unavailable> {
        Err(Unavailable)
    }
}

#[tokio::test]
async fn an_unreachable_replay_memory_fails_closed() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional().with_replay(Down), &clock);
    let key = ClientKey::es256(14);
    let token = token(&clock, "mfa", Some(&key));
    let proof = key.proof("GET", &url("/api/account"), &token);
    let answer = call(&service, dpop(&token, &proof, "GET", "/api/account")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["error"], "temporarily_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_presentations_of_one_proof_are_accepted_once() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::es256(15);
    let token = token(&clock, "mfa", Some(&key));
    let proof = key.proof("GET", &url("/api/account"), &token);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let service = service.clone();
            let request = dpop(&token, &proof, "GET", "/api/account");
            tokio::spawn(async move { call(&service, request).await.status })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap() == StatusCode::OK {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
}

#[tokio::test]
async fn a_grpc_call_is_refused_with_a_grpc_status_and_the_dpop_challenge() {
    let clock = ManualClock::at_unix(T0);
    let service = service(optional(), &clock);
    let key = ClientKey::es256(16);
    let token = token(&clock, "mfa", Some(&key));
    let proof = key.proof("GET", &url("/api/account"), &token);
    let grpc = |proof: &str| {
        let mut request = dpop(&token, proof, "GET", "/api/account");
        request
            .headers_mut()
            .insert(CONTENT_TYPE, "application/grpc".parse().unwrap());
        request
    };
    let first = service.clone().oneshot(grpc(&proof)).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let replay = service.clone().oneshot(grpc(&proof)).await.unwrap();
    assert_eq!(replay.status(), StatusCode::OK, "gRPC answers in trailers");
    assert_eq!(replay.headers()[CONTENT_TYPE], "application/grpc");
    assert_eq!(replay.headers()["grpc-status"], "16");
    let challenge = replay.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("DPoP error=\"invalid_dpop_proof\"") && challenge.contains(ALGS),
        "{challenge}"
    );
}

#[tokio::test]
async fn plain_authenticate_refuses_a_bound_token_as_a_bearer_token() {
    let clock = ManualClock::at_unix(T0);
    let verifier = issuer(&clock).verifier().build().unwrap();
    let service = Router::new()
        .route("/api/account", get(|| async { "reached" }))
        .layer(authenticate(verifier));
    let key = ClientKey::es256(17);
    let bound = token(&clock, "mfa", Some(&key));
    let answer = call(
        &service,
        request("GET", "/api/account", Some(format!("Bearer {bound}")), &[]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["error"], "invalid_token");
    assert_eq!(
        answer.body["error_description"],
        "a DPoP-bound access token must be presented with a DPoP proof"
    );
    assert!(answer.challenges[0].starts_with("Bearer error=\"invalid_token\""));
    // An unbound token still passes.
    let unbound = token(&clock, "mfa", None);
    let answer = call(
        &service,
        request(
            "GET",
            "/api/account",
            Some(format!("Bearer {unbound}")),
            &[],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}
