//! stepup's factors for the users of another identity provider: the demo trusts a fake OpenID
//! provider (`STEPUP_OIDC_ISSUER` in the demo), its user enrolls TOTP with the provider's token,
//! and an RFC 8693 token exchange turns the provider's `pwd` token into the demo's `mfa` token
//! for the same `sub`, naming the provider in `act`, which a resource server trusting both
//! issuers accepts.

mod demo_support;
#[path = "support_oidc/mod.rs"]
mod support_oidc;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use demo_support::{Answer, Demo, JWT_SECRET, app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup::clock::Clock;
use stepup::token::{Grant, JwtVerifier, TrustedIssuer, VerifyingKey};
use stepup::{RequireMfa, authenticate};
use support_oidc::{FakeIdp, TestKey};
use tower::{ServiceBuilder, ServiceExt};

/// The audience the provider's tokens name: the demo's API.
const AUDIENCE: &str = app::DEFAULT_PUBLIC_URL;
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

struct Setup {
    idp: FakeIdp,
    key: TestKey,
    demo: Demo,
}

async fn setup() -> Setup {
    let key = TestKey::rsa("idp-1");
    let idp = FakeIdp::start("", &[&key]).await;
    let trusted = TrustedIssuer::new(&idp.issuer)
        .audience(AUDIENCE)
        .discover();
    let demo = Demo::start_with_external_issuer(trusted).await;
    // The demo fetches the provider's keys when it starts; requests wait for nothing after.
    idp.wait_for_jwks_fetches(1).await;
    Setup { idp, key, demo }
}

impl Setup {
    /// The provider's access token for `sub`: a password login, now.
    fn provider_token(&self, sub: &str) -> String {
        let now = self.demo.clock.unix_seconds();
        self.key.sign(&json!({
            "iss": self.idp.issuer, "sub": sub, "aud": AUDIENCE,
            "iat": now, "exp": now + 3600, "auth_time": now,
            "acr": "pwd", "amr": ["pwd"],
        }))
    }

    async fn exchange(&self, subject_token: &str, subject_token_type: &str, acr: &str) -> Answer {
        let form = [
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject_token),
            ("subject_token_type", subject_token_type),
            ("acr_values", acr),
        ];
        Answer::read(
            self.demo
                .request(reqwest::Method::POST, "/oauth/token", None)
                .form(&form),
        )
        .await
    }

    /// Enrolls TOTP for the provider's user, with the provider's token; the key.
    async fn enroll_totp(&self, token: &str) -> stepup::mfa::totp::TotpKey {
        let setup = self
            .demo
            .post("/api/mfa/setup", Some(token), json!({}))
            .await;
        assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
        let secret =
            totp_rs::Secret::try_from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
        let key = stepup::mfa::totp::TotpKey::new(
            secret.as_bytes(),
            stepup::mfa::totp::TotpAlgorithm::Sha1,
            6,
            30,
            1,
            "t",
            "u",
        )
        .unwrap();
        let code = key.code_at(self.demo.clock.unix_seconds());
        let verified = self
            .demo
            .post("/api/mfa/verify-setup", Some(token), json!({"code": code}))
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
        self.demo.clock.advance(Duration::from_secs(30));
        key
    }
}

/// The claims of a JWT, read without checking (the checks are the verifiers' below).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_pwd_token_becomes_an_mfa_token_for_the_same_sub() {
    let setup = setup().await;
    let demo = &setup.demo;
    let alice = setup.provider_token("alice");
    let key = setup.enroll_totp(&alice).await;

    // The exchange answers as the password step does: the MFA challenge.
    let challenge = setup.exchange(&alice, ACCESS_TOKEN, "mfa").await;
    assert_eq!(challenge.status, StatusCode::OK, "{challenge:?}");
    assert_eq!(challenge.body["mfa_required"], true);
    assert_eq!(challenge.cache_control.as_deref(), Some("no-store"));
    let methods = challenge.body["methods"].as_array().unwrap();
    assert!(methods.contains(&json!("totp")), "{methods:?}");
    let mfa_token = challenge.body["mfa_token"].as_str().unwrap();

    // The MFA step issues the demo's token for the same sub, naming the provider in `act`.
    let token = demo.mfa_step_with_code(mfa_token, &key).await.token();
    let claims = claims_of(&token);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], app::DEFAULT_PUBLIC_URL);
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(
        claims["act"],
        json!({"iss": setup.idp.issuer, "sub": "alice"})
    );
    assert_eq!(claims["auth_time"], json!(demo.clock.unix_seconds()));

    // The demo's own routes take it as the provider's user: the factor enrolled above.
    let factors = demo.get("/api/mfa/factors", Some(&token)).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
    assert_eq!(factors.body["factors"][0]["kind"], "totp", "{factors:?}");
    assert_eq!(factors.body["factors"][0]["active"], true, "{factors:?}");

    // A resource server trusting both issuers accepts both tokens for one user; only the
    // exchanged one meets RequireMfa.
    let verifier = JwtVerifier::builder()
        .key(VerifyingKey::hs256(JWT_SECRET).unwrap())
        .issuer(app::DEFAULT_PUBLIC_URL)
        .audience(app::DEFAULT_PUBLIC_URL)
        .trust(
            TrustedIssuer::new(&setup.idp.issuer)
                .audience(AUDIENCE)
                .jwks_url(setup.idp.jwks_url()),
        )
        .clock(std::sync::Arc::new(demo.clock.clone()))
        .build()
        .unwrap();
    assert_eq!(
        verifier.verify_async(&alice).await.unwrap().subject(),
        "alice"
    );
    assert_eq!(
        verifier.verify_async(&token).await.unwrap().subject(),
        "alice"
    );
    let api = ServiceBuilder::new()
        .layer(authenticate(verifier))
        .layer(RequireMfa)
        .service_fn(|request: http::Request<String>| async move {
            let caller = request.extensions().get::<stepup::AuthContext>().unwrap();
            Ok::<_, std::convert::Infallible>(http::Response::new(caller.subject().to_owned()))
        });
    let call = |token: String| {
        let api = api.clone();
        async move {
            let request = http::Request::get("/api/orders")
                .header("authorization", format!("Bearer {token}"))
                .body(String::new())
                .unwrap();
            api.oneshot(request).await.unwrap().status()
        }
    };
    assert_eq!(
        call(alice.clone()).await,
        StatusCode::UNAUTHORIZED,
        "pwd only"
    );
    assert_eq!(call(token.clone()).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_keyed_by_issuer_and_subject() {
    let setup = setup().await;
    let demo = &setup.demo;
    // A local user with TOTP, and the provider's user whose `sub` is that same id.
    let (local_token, _, _) = demo.enrolled_user("local@example.com").await;
    let local_id = claims_of(&local_token)["sub"].as_str().unwrap().to_owned();
    let namesake = setup.provider_token(&local_id);

    // Neither sees the other's factors, nor steps up with them.
    let factors = demo.get("/api/mfa/factors", Some(&namesake)).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
    assert_eq!(factors.body["factors"], json!([]), "{factors:?}");
    setup
        .exchange(&namesake, ACCESS_TOKEN, "mfa")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "mfa_not_enrolled");
    let namesake_key = setup.enroll_totp(&namesake).await;
    let local = demo.get("/api/mfa/factors", Some(&local_token)).await;
    assert_eq!(
        local.body["factors"].as_array().unwrap().len(),
        1,
        "{local:?}"
    );
    // Deleting the namesake's account deletes nothing local.
    let exchanged = {
        let challenge = setup.exchange(&namesake, ACCESS_TOKEN, "mfa").await;
        let mfa_token = challenge.body["mfa_token"].as_str().unwrap().to_owned();
        demo.mfa_step_with_code(&mfa_token, &namesake_key)
            .await
            .token()
    };
    let _ = demo.delete("/api/account", Some(&exchanged)).await;
    let local = demo.get("/api/mfa/factors", Some(&local_token)).await;
    assert_eq!(
        local.status,
        StatusCode::OK,
        "the local user is untouched: {local:?}"
    );
    assert_eq!(
        local.body["factors"].as_array().unwrap().len(),
        1,
        "{local:?}"
    );

    // Another provider's token (a key the demo does not trust) is refused.
    let stranger = TestKey::ec("stranger");
    let now = demo.clock.unix_seconds();
    let foreign = stranger.sign(&json!({
        "iss": "https://idp.example.net", "sub": "alice", "aud": AUDIENCE,
        "iat": now, "exp": now + 3600, "acr": "pwd", "amr": ["pwd"],
    }));
    setup
        .exchange(&foreign, ACCESS_TOKEN, "mfa")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");

    // A provider's token naming someone else in `act` is still its own subject's.
    let bob = setup.key.sign(&json!({
        "iss": setup.idp.issuer, "sub": "bob", "aud": AUDIENCE,
        "iat": now, "exp": now + 3600, "acr": "pwd", "amr": ["pwd"],
        "act": {"iss": setup.idp.issuer, "sub": local_id},
    }));
    let factors = demo.get("/api/mfa/factors", Some(&bob)).await;
    assert_eq!(factors.status, StatusCode::OK, "{factors:?}");
    assert_eq!(factors.body["factors"], json!([]), "bob has no factor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_refuses_what_it_cannot_step_up() {
    let setup = setup().await;
    let demo = &setup.demo;
    let alice = setup.provider_token("alice");

    // No factor yet: nothing to step up with.
    setup
        .exchange(&alice, ACCESS_TOKEN, "mfa")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "mfa_not_enrolled");
    setup.enroll_totp(&alice).await;

    // Only access tokens, only levels above the password, only the provider's own tokens.
    setup
        .exchange(&alice, "urn:ietf:params:oauth:token-type:id_token", "mfa")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    setup
        .exchange(&alice, ACCESS_TOKEN, "pwd")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let own = demo.mint(&Grant::new("someone").acr("pwd").amr(["pwd"]));
    setup
        .exchange(&own, ACCESS_TOKEN, "mfa")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    setup
        .exchange("not.a.token", ACCESS_TOKEN, "mfa")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let missing = Answer::read(
        demo.request(reqwest::Method::POST, "/oauth/token", None)
            .form(&[("grant_type", GRANT_TYPE)]),
    )
    .await;
    missing.assert_error(StatusCode::BAD_REQUEST, "invalid_request");

    // An expired provider token is refused, whatever it once proved.
    demo.clock.advance(Duration::from_secs(2 * 3600));
    setup
        .exchange(&alice, ACCESS_TOKEN, "mfa")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_request");

    // The server's metadata names the grant.
    let metadata = demo
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert!(
        metadata.body["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT_TYPE)),
        "{metadata:?}"
    );
}
