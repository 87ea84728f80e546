//! RFC 9728 through the facade, on an axum router: `authenticate(…).with_resource_metadata(…)`
//! adds `resource_metadata="…"` to every Bearer challenge that leaves it, the extractor's and a
//! provider dialect's included; `RequireScope` beside `RequireMfa`; challenges stay as they were
//! without the setting, and an answer without a challenge gets none. Exact headers and bodies.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use http::{Request, StatusCode};
use serde_json::json;
use stepup::profile::IdpProfile;
use stepup::resource::{ProtectedResourceMetadata, ResourceMetadataService};
use stepup::{AuthContext, JwtVerifier, RequireMfa, RequireScope, VerifyingKey, authenticate};
use tower::{ServiceBuilder, ServiceExt};

const RM: &str = r#"resource_metadata="https://api.test/.well-known/oauth-protected-resource/mcp""#;

fn metadata() -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::new("https://api.test/mcp")
        .unwrap()
        .with_authorization_server(ISSUER)
        .with_scopes_supported(["vault:read"])
}

/// `/whoami` reads the caller with the extractor; `/vault` needs `vault:read` and `mfa`.
fn app(verifier: JwtVerifier, with_metadata: bool) -> Router {
    let metadata = metadata();
    let mut layer = authenticate(verifier);
    if with_metadata {
        layer = layer.with_resource_metadata(metadata.metadata_url());
    }
    Router::new()
        .route(
            "/whoami",
            get(|caller: AuthContext| async move { caller.subject().to_owned() }),
        )
        .route(
            "/vault",
            get(|| async { "the secret" }).layer(
                ServiceBuilder::new()
                    .layer(RequireScope::all(["vault:read"]))
                    .layer(RequireMfa),
            ),
        )
        .layer(layer)
        .route_service(
            &metadata.well_known_path(),
            ResourceMetadataService::new(&metadata),
        )
}

async fn get_with(app: &Router, path: &str, token: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    Answer::read(response).await
}

fn token(acr: &str, scope: &str) -> String {
    let mut claims = claims(acr);
    claims["scope"] = json!(scope);
    hs_token(&claims)
}

#[tokio::test]
async fn every_challenge_of_the_router_names_the_metadata() {
    let app = app(verifier(&clock()), true);

    // The extractor's 401.
    let answer = get_with(&app, "/whoami", None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(format!("Bearer {RM}").as_str())
    );
    assert_eq!(
        answer.json(),
        json!({"error": "unauthorized", "error_description": "a bearer access token is required"})
    );

    // authenticate()'s own 401: an expired token.
    let mut expired = claims("mfa");
    expired["exp"] = json!(T0 - 3_600);
    let answer = get_with(&app, "/whoami", Some(&hs_token(&expired))).await;
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            format!(
                "Bearer error=\"invalid_token\", error_description=\"the token has expired\", {RM}"
            )
            .as_str()
        )
    );

    // RequireScope's 403, checked before the level (the outer layer).
    let answer = get_with(&app, "/vault", Some(&token("pwd", "openid"))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            format!(
                "Bearer error=\"insufficient_scope\", \
                 error_description=\"the access token does not grant a scope this request needs\", \
                 scope=\"vault:read\", {RM}"
            )
            .as_str()
        )
    );
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        answer.json(),
        json!({
            "error": "insufficient_scope",
            "error_description": "the access token does not grant a scope this request needs",
            "scope": "vault:read",
        })
    );

    // RequireMfa's RFC 9470 401.
    let answer = get_with(&app, "/vault", Some(&token("pwd", "vault:read"))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            format!(
                "Bearer error=\"insufficient_user_authentication\", \
                 error_description=\"a stronger authentication level is required\", \
                 acr_values=\"mfa\", {RM}"
            )
            .as_str()
        )
    );
    assert_eq!(
        answer.json(),
        json!({
            "error": "insufficient_user_authentication",
            "error_description": "a stronger authentication level is required",
            "acr_values": "mfa",
        })
    );

    let answer = get_with(&app, "/vault", Some(&token("mfa", "vault:read"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "the secret");

    // The document, at the path the URL names, past authenticate().
    let answer = get_with(
        &app,
        "/.well-known/oauth-protected-resource/mcp",
        Some("not.a.token"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({
            "resource": "https://api.test/mcp",
            "authorization_servers": [ISSUER],
            "scopes_supported": ["vault:read"],
            "bearer_methods_supported": ["header"],
        })
    );
}

#[tokio::test]
async fn without_the_setting_the_challenges_are_unchanged() {
    let app = app(verifier(&clock()), false);
    let answer = get_with(&app, "/whoami", None).await;
    answer.assert_missing_token();
    let answer = get_with(&app, "/vault", Some(&token("mfa", "openid"))).await;
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            "Bearer error=\"insufficient_scope\", \
             error_description=\"the access token does not grant a scope this request needs\", \
             scope=\"vault:read\""
        )
    );
}

#[tokio::test]
async fn a_provider_dialect_gets_the_parameter_and_a_plain_403_gets_no_challenge() {
    let verifier = JwtVerifier::builder()
        .key(VerifyingKey::hs256(HS_SECRET).unwrap().with_kid("hs"))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .profile(IdpProfile::entra().authorization_uri("https://login.test/authorize"))
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    let app = app(verifier, true);
    let entra = |xms_cc: serde_json::Value| {
        let mut claims = claims("ignored");
        claims.as_object_mut().unwrap().remove("acr");
        claims["scope"] = json!("vault:read");
        claims["acrs"] = json!([]);
        claims["xms_cc"] = xms_cc;
        hs_token(&claims)
    };

    let answer = get_with(&app, "/vault", Some(&entra(json!(["cp1"])))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let claims = STANDARD.encode(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            format!(
                "Bearer realm=\"\", authorization_uri=\"https://login.test/authorize\", \
                 error=\"insufficient_claims\", claims=\"{claims}\", {RM}"
            )
            .as_str()
        )
    );

    // A client that cannot handle a claims challenge: a plain 403, and nothing is added.
    let answer = get_with(&app, "/vault", Some(&entra(json!([])))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.www_authenticate, None);
}
