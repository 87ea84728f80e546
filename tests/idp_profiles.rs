//! Each identity-provider profile against a fake provider (discovery + JWKS on 127.0.0.1) minting
//! tokens with that provider's exact claims: where the level comes from, scopes, the audience
//! rule, and the challenge dialect answered through `authenticate()` + `RequireAcr`.

mod common;
mod support_oidc;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Answer, bearer, call};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use stepup::clock::ManualClock;
use stepup::profile::IdpProfile;
use stepup::token::JwtVerifier;
use stepup::{AuthContext, RequireAcr, RequireMfa, authenticate};
use support_oidc::{FakeIdp, TestKey};
use tower::{ServiceBuilder, service_fn};

const T0: u64 = 1_800_000_000;

/// The caller as the handler sees it: `sub acr scope`.
async fn describe(
    request: Request<Full<bytes::Bytes>>,
) -> Result<http::Response<Full<bytes::Bytes>>, std::convert::Infallible> {
    let body = match request.extensions().get::<AuthContext>() {
        Some(caller) => format!(
            "{} {} {}",
            caller.subject(),
            caller.acr().unwrap_or("-"),
            caller.scope().unwrap_or("-")
        ),
        None => "anonymous".into(),
    };
    Ok(http::Response::new(Full::new(bytes::Bytes::from(body))))
}

struct Provider {
    idp: FakeIdp,
    key: TestKey,
    verifier: JwtVerifier,
}

impl Provider {
    async fn start(path: &str, audience: &str, profile: IdpProfile, key: TestKey) -> Self {
        let idp = FakeIdp::start(path, &[&key]).await;
        let verifier = JwtVerifier::builder()
            .discover(&idp.issuer)
            .audience(audience)
            .profile(profile)
            .clock(Arc::new(ManualClock::at_unix(T0)))
            .build()
            .unwrap();
        verifier.refresh_keys().await.unwrap();
        Self { idp, key, verifier }
    }

    /// The provider's claims for this issuer, with `extra` merged in.
    fn token(&self, extra: Value) -> String {
        let mut claims = json!({
            "iss": self.idp.issuer,
            "sub": "user-1",
            "iat": T0,
            "exp": T0 + 3_600,
            "auth_time": T0,
        });
        for (name, value) in extra.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        self.key.sign(&claims)
    }

    async fn call(&self, requirement: RequireAcr, token: &str) -> Answer {
        let service = ServiceBuilder::new()
            .layer(authenticate(self.verifier.clone()))
            .layer(requirement)
            .service(service_fn(describe));
        call(&service, bearer(token)).await
    }
}

fn mfa() -> RequireAcr {
    RequireMfa.into()
}

fn phr() -> RequireAcr {
    RequireAcr::level("phr")
}

fn assert_rfc9470(answer: &Answer, acr_values: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    let header = answer.www_authenticate.as_deref().unwrap();
    assert!(
        header.starts_with("Bearer error=\"insufficient_user_authentication\""),
        "{header}"
    );
    assert!(
        header.contains(&format!("acr_values=\"{acr_values}\"")),
        "{header}"
    );
    assert_eq!(answer.json()["acr_values"], acr_values);
}

#[tokio::test]
async fn keycloak_levels_of_assurance() {
    let keycloak = Provider::start(
        "/realms/demo",
        "account",
        IdpProfile::keycloak().acr("gold", "mfa"),
        TestKey::rsa("kc-rs256"),
    )
    .await;
    let base = json!({"aud": "account", "azp": "web-app", "typ": "Bearer",
        "scope": "openid profile email", "session_state": "5c1e…", "sid": "5c1e…"});
    let with = |acr: &str| {
        let mut claims = base.clone();
        claims["acr"] = json!(acr);
        keycloak.token(claims)
    };
    // "1": password only; the challenge asks Keycloak for "2".
    assert_rfc9470(&keycloak.call(mfa(), &with("1")).await, "2");
    // "0": a session reused by SSO cookie counts as a password login, not more.
    assert_rfc9470(&keycloak.call(mfa(), &with("0")).await, "2");
    let answer = keycloak.call(mfa(), &with("2")).await;
    assert_eq!(answer.body, "user-1 mfa openid profile email");
    // A realm's named level, mapped.
    assert_eq!(keycloak.call(mfa(), &with("gold")).await.status, 200);
    // `max_age` passes through: the route demands a fresh authentication.
    let fresh = RequireAcr::level("mfa").max_age(Duration::from_secs(0));
    let mut stale = base.clone();
    stale["acr"] = json!("2");
    stale["auth_time"] = json!(T0 - 60);
    let answer = keycloak.call(fresh, &keycloak.token(stale)).await;
    assert_rfc9470(&answer, "2");
    assert!(
        answer
            .www_authenticate
            .as_deref()
            .unwrap()
            .ends_with("max_age=0")
    );
    assert_rfc9470(&keycloak.call(phr(), &with("2")).await, "3");
}

#[tokio::test]
async fn okta_loa_values_and_scp_arrays() {
    let okta = Provider::start(
        "/oauth2/default",
        "api://default",
        IdpProfile::okta(),
        TestKey::rsa("okta-key"),
    )
    .await;
    let with = |acr: &str| {
        okta.token(json!({"ver": 1, "jti": "AT.x", "aud": "api://default",
            "cid": "0oa1", "uid": "00u1", "scp": ["openid", "email"], "acr": acr,
            "amr": ["pwd", "otp"]}))
    };
    for weak in [
        "urn:okta:loa:1fa:any",
        "urn:okta:loa:1fa:pwd",
        "urn:okta:loa:2fa:any:ifpossible",
    ] {
        assert_rfc9470(&okta.call(mfa(), &with(weak)).await, "urn:okta:loa:2fa:any");
    }
    let answer = okta.call(mfa(), &with("urn:okta:loa:2fa:any")).await;
    assert_eq!(answer.body, "user-1 mfa openid email");
    assert_rfc9470(
        &okta.call(phr(), &with("urn:okta:loa:2fa:any")).await,
        "phr",
    );
    assert_eq!(okta.call(phr(), &with("phr")).await.status, 200);
    assert_eq!(okta.call(phr(), &with("phrh")).await.status, 200);
}

#[tokio::test]
async fn auth0_amr_mfa_and_the_pape_policy() {
    let auth0 = Provider::start(
        "",
        "https://api.example.com",
        IdpProfile::auth0(),
        TestKey::rsa("auth0-key"),
    )
    .await;
    let base = json!({"aud": ["https://api.example.com", "https://tenant.auth0.com/userinfo"],
        "azp": "client-1", "scope": "openid profile read:messages"});
    let password_only = auth0.token(base.clone());
    assert_rfc9470(
        &auth0.call(mfa(), &password_only).await,
        stepup::profile::AUTH0_MFA_ACR,
    );
    let mut with_amr = base.clone();
    with_amr["amr"] = json!(["mfa"]);
    assert_eq!(
        auth0.call(mfa(), &auth0.token(with_amr)).await.body,
        "user-1 mfa openid profile read:messages"
    );
    let mut with_acr = base.clone();
    with_acr["acr"] = json!(stepup::profile::AUTH0_MFA_ACR);
    assert_eq!(auth0.call(mfa(), &auth0.token(with_acr)).await.status, 200);
}

#[tokio::test]
async fn cognito_access_tokens_are_matched_by_client_id_and_token_use() {
    let cognito = Provider::start(
        "/us-east-1_Example",
        "5ab1client",
        IdpProfile::cognito(),
        TestKey::rsa("cognito-key"),
    )
    .await;
    // No `aud` in a Cognito access token.
    let access = |extra: Value| {
        let mut claims = json!({"client_id": "5ab1client", "token_use": "access",
            "scope": "aws.cognito.signin.user.admin", "username": "user-1",
            "origin_jti": "x", "event_id": "y"});
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        cognito.token(claims)
    };
    let answer = cognito
        .call(
            mfa(),
            &access(json!({"acr": "urn:cognito:loa:1", "amr": ["pwd"]})),
        )
        .await;
    assert_rfc9470(&answer, "urn:cognito:loa:2");
    for mfa_claims in [
        json!({"acr": "urn:cognito:loa:2"}),
        json!({"amr": ["pwd", "mfa"]}),
    ] {
        let answer = cognito.call(mfa(), &access(mfa_claims)).await;
        assert_eq!(answer.body, "user-1 mfa aws.cognito.signin.user.admin");
    }
    assert_eq!(
        cognito
            .call(phr(), &access(json!({"acr": "urn:cognito:loa:4"})))
            .await
            .status,
        200
    );
    // Another app client, an ID token, or no `token_use`: refused as a wrong audience.
    for wrong in [
        json!({"client_id": "another-client"}),
        json!({"token_use": "id", "aud": "5ab1client"}),
        json!({"token_use": null}),
    ] {
        cognito
            .call(mfa(), &access(wrong.clone()))
            .await
            .assert_invalid_token("the token's audience is not accepted");
    }
}

#[tokio::test]
async fn entra_authentication_contexts_and_the_claims_challenge() {
    let entra = Provider::start(
        "/tenant-1/v2.0",
        "api://app-id",
        IdpProfile::entra(),
        TestKey::rsa("entra-key"),
    )
    .await;
    let base = json!({"aud": "api://app-id", "ver": "2.0", "tid": "tenant-1", "oid": "o-1",
        "azp": "client-1", "scp": "access_as_user"});
    let with = |extra: Value| {
        let mut claims = base.clone();
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        entra.token(claims)
    };
    // A client that declares `cp1` gets the claims challenge for context c1.
    let answer = entra.call(mfa(), &with(json!({"xms_cc": ["cp1"]}))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    let claims = STANDARD.encode(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);
    assert_eq!(
        answer.www_authenticate.as_deref().unwrap(),
        format!(
            "Bearer realm=\"\", authorization_uri=\"{}/tenant-1/oauth2/v2.0/authorize\", \
             error=\"insufficient_claims\", claims=\"{claims}\"",
            entra.idp.base
        )
    );
    assert_eq!(answer.json()["error"], "insufficient_claims");
    assert_eq!(answer.json()["claims"], claims.as_str());
    // One that does not: a plain 403, no challenge header.
    let answer = entra.call(mfa(), &with(json!({}))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
    assert_eq!(answer.www_authenticate, None);
    // The context met: through, with `scp` as the scope.
    let answer = entra
        .call(mfa(), &with(json!({"acrs": ["c1"], "xms_cc": ["cp1"]})))
        .await;
    assert_eq!(answer.body, "user-1 mfa access_as_user");
    let answer = entra
        .call(phr(), &with(json!({"acrs": ["c1"], "xms_cc": ["cp1"]})))
        .await;
    assert!(
        answer.json()["claims"]
            .as_str()
            .is_some_and(|claims| STANDARD.decode(claims).unwrap().ends_with(br#""c2"}}}"#))
    );
}

#[tokio::test]
async fn the_generic_profile_reads_stepup_values_or_a_configured_map() {
    let mapped = Provider::start(
        "",
        "api",
        IdpProfile::generic()
            .with_acr_map("mfa=urn:example:2fa,phr=urn:example:phr")
            .unwrap(),
        TestKey::ec("generic-es256"),
    )
    .await;
    let with = |acr: &str| mapped.token(json!({"aud": "api", "acr": acr, "scope": "read"}));
    assert_rfc9470(
        &mapped.call(mfa(), &with("urn:example:1fa")).await,
        "urn:example:2fa",
    );
    assert_eq!(
        mapped.call(mfa(), &with("urn:example:2fa")).await.body,
        "user-1 mfa read"
    );
    assert_rfc9470(
        &mapped.call(phr(), &with("urn:example:2fa")).await,
        "urn:example:phr",
    );
    // A token claiming stepup's own word where the provider has its own is not read as it.
    assert_eq!(mapped.call(mfa(), &with("mfa")).await.status, 401);

    let plain = Provider::start("", "api", IdpProfile::generic(), TestKey::ec("generic")).await;
    let answer = plain
        .call(
            mfa(),
            &plain.token(json!({"aud": "api", "amr": ["pwd", "mfa"]})),
        )
        .await;
    assert_eq!(answer.body, "user-1 mfa -");
    assert_rfc9470(
        &plain
            .call(mfa(), &plain.token(json!({"aud": "api", "acr": "pwd"})))
            .await,
        "mfa",
    );
}
