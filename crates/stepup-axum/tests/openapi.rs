//! The OpenAPI document and the router agree, both ways: every route the router serves is
//! documented, every documented route is served, and a method the document does not list is
//! answered `405` by the router.

use std::collections::BTreeSet;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use stepup_axum::StepUp;
use stepup_core::token::JwtIssuer;
use stepup_mfa::{Keyring, PasswordCheck, PasswordCheckFailed};
use stepup_store::MemoryStore;
use tower::ServiceExt;

struct Nobody;

#[stepup_core::policy::async_trait]
impl PasswordCheck for Nobody {
    async fn check(&self, _: &str, _: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok(None)
    }

    async fn account_exists(&self, _: &str) -> Result<bool, PasswordCheckFailed> {
        Ok(false)
    }
}

fn stepup() -> StepUp {
    StepUp::builder()
        .issuer(JwtIssuer::hs256(b"an openapi test secret of 32 bytes+").unwrap())
        .store(MemoryStore::new())
        .keyring(Keyring::new("k1", &[1; 32]).unwrap())
        .lookup_key(&[2; 32])
        .passwords(Nobody)
        .build()
        .unwrap()
}

/// `(method, path)` of every operation in the document.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let stepup = stepup();
    let document = serde_json::to_value(stepup.openapi()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let step_up = &document["components"]["responses"]["StepUpRequired"];
    assert!(step_up["headers"]["WWW-Authenticate"].is_object());
    assert_eq!(
        step_up["content"]["application/json"]["example"]["error"],
        "insufficient_user_authentication"
    );
    let served: BTreeSet<(String, String)> = stepup
        .served_routes()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_owned(), path.to_owned()))
        .collect();
    let documented = documented(&document);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served, not documented: {undocumented:?}"
    );
    assert!(unserved.is_empty(), "documented, not served: {unserved:?}");
    // A route needing a fresh second factor says so with the RFC 9470 answer.
    assert_eq!(
        document["paths"]["/api/mfa/factors/{kind}/{id}"]["delete"]["responses"]["401"]["$ref"],
        "#/components/responses/StepUpRequired"
    );
}

#[tokio::test]
async fn the_router_answers_each_listed_route_and_only_those_methods() {
    let stepup = stepup();
    let router = stepup.routes();
    let served = stepup.served_routes();
    let paths: BTreeSet<&str> = served.iter().map(|(_, path)| *path).collect();
    for path in paths {
        let uri = path.replace("{kind}", "totp").replace("{id}", "x");
        for method in [
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::PUT,
        ] {
            let request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let listed = served.iter().any(|(m, p)| *m == method && *p == path);
            if listed {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
                assert!(
                    !(status == StatusCode::NOT_FOUND && body.is_empty()),
                    "{method} {uri}: no route"
                );
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            }
        }
    }
}
