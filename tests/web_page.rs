//! The demo's page over HTTP, without a browser: what is served, under which headers, and who may
//! read the development outbox. (`tests/browser.rs` drives the page itself in Chromium.)

#[path = "../examples/demo/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use stepup::clock::ManualClock;
use tower::ServiceExt;

const T0: u64 = 1_800_000_000;

async fn demo(dir: &std::path::Path) -> axum::Router {
    let clock = ManualClock::at_unix(T0);
    let url = format!("sqlite://{}", dir.join("demo.db").display());
    let database = app::Database::open(&url, Arc::new(clock.clone()))
        .await
        .unwrap();
    let secrets = app::Secrets {
        jwt_secret: b"web page test secret, thirty-two bytes at least".to_vec(),
        seal_key_id: "test".into(),
        seal_key: vec![1; 32],
        lookup_key: vec![2; 32],
    };
    let settings = app::Settings {
        outbox_dir: Some(dir.to_owned()),
        ..app::Settings::new(database, secrets, Arc::new(clock))
    };
    app::build(settings).await.unwrap()
}

/// `GET path`, as if from `peer`.
async fn get(router: &axum::Router, path: &str, peer: Option<[u8; 4]>) -> http::Response<Body> {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    if let Some(ip) = peer {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    }
    router.clone().oneshot(request).await.unwrap()
}

async fn json_of(response: http::Response<Body>) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn the_page_and_its_assets_carry_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let router = demo(dir.path()).await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/stepup.js", "text/javascript; charset=utf-8"),
        ("/assets/passkeys.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
        // API answers and errors carry them too.
        ("/healthz", "application/json"),
        ("/assets/../Cargo.toml", "application/json"),
    ] {
        let response = get(&router, path, Some([127, 0, 0, 1])).await;
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            app::web::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
    }
    let policy = app::web::CONTENT_SECURITY_POLICY;
    for rule in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(rule), "the policy has {rule}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
    let page = get(&router, "/", None).await;
    let html = page.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8(html.to_vec()).unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" onclick=") && !html.contains("style=\""),
        "no inline script or style: the policy would block it"
    );
    let missing = get(&router, "/assets/missing.js", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(missing).await["error"], "not_found");
}

#[tokio::test]
async fn the_outbox_panel_answers_loopback_only_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let router = demo(dir.path()).await;
    std::fs::write(
        dir.path().join("demo.sms.jsonl"),
        "{\"to\":\"+15551234567\",\"body\":\"Your code is 123456\",\"at\":1}\n\
         {\"to\":\"+15551234567\",\"body\":\"Your code is 654321\",\"at\":2}\n",
    )
    .unwrap();

    let local = get(&router, "/dev/outbox", Some([127, 0, 0, 1])).await;
    assert_eq!(local.status(), StatusCode::OK);
    assert_eq!(local.headers()[header::CACHE_CONTROL], "no-store");
    let outbox = json_of(local).await;
    assert_eq!(
        outbox["sms"][0]["body"], "Your code is 654321",
        "newest first"
    );
    assert_eq!(outbox["sms"].as_array().unwrap().len(), 2);
    assert_eq!(outbox["mail"], serde_json::json!([]));

    for peer in [Some([192, 0, 2, 10]), None] {
        let remote = get(&router, "/dev/outbox", peer).await;
        assert_eq!(remote.status(), StatusCode::FORBIDDEN, "{peer:?}");
        let body = json_of(remote).await;
        assert_eq!(body["error"], "access_denied");
        assert!(!body.to_string().contains("654321"));
    }
    // A reverse proxy on this machine is a loopback peer too: what it forwards is not local.
    for header in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let mut request = Request::get("/dev/outbox").body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        request
            .headers_mut()
            .insert(header, "198.51.100.7".parse().unwrap());
        let proxied = router.clone().oneshot(request).await.unwrap();
        assert_eq!(proxied.status(), StatusCode::FORBIDDEN, "{header}");
    }

    let outboxes = app::web::Outboxes {
        sms: Some(dir.path().join("demo.sms.jsonl")),
        mail: None,
    };
    let off = app::web::routes(app::web::Outboxes::default());
    assert_eq!(
        get(&off, "/dev/outbox", Some([127, 0, 0, 1]))
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "STEPUP_DEV_PANEL=off removes the panel"
    );
    let on = app::web::routes(outboxes);
    assert_eq!(
        get(&on, "/dev/outbox", Some([127, 0, 0, 1])).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_openapi_document_describes_stepups_routes_and_the_demos() {
    let dir = tempfile::tempdir().unwrap();
    let router = demo(dir.path()).await;
    let response = get(&router, "/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let document = json_of(response).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = &document["paths"];
    // stepup's drop-in routes, with the step-up challenge where a fresh factor is needed…
    assert!(
        paths["/api/mfa/factors/{kind}/{id}"]["delete"]["responses"]["401"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("StepUpRequired")
    );
    assert!(paths["/oauth/token"]["post"].is_object());
    // …and the demo's own, each with its access rule.
    assert!(paths["/api/register"]["post"]["security"].is_null());
    assert!(
        paths["/api/me"]["get"]["responses"]["401"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("BearerRequired")
    );
    for (path, method) in [("/api/account", "delete"), ("/api/vault", "get")] {
        assert!(
            paths[path][method]["responses"]["401"]["$ref"]
                .as_str()
                .unwrap()
                .ends_with("StepUpRequired"),
            "{method} {path}"
        );
    }
    let step_up = &document["components"]["responses"]["StepUpRequired"];
    assert!(
        step_up["headers"]["WWW-Authenticate"].is_object(),
        "{step_up}"
    );
}

/// The demo as `main.rs` starts it without `STEPUP_JWT_SECRET`: an ES256 key with a `kid`.
async fn es256_demo(dir: &std::path::Path, key: stepup::SigningKey) -> axum::Router {
    let clock = ManualClock::at_unix(T0);
    let url = format!("sqlite://{}", dir.join("demo.db").display());
    let database = app::Database::open(&url, Arc::new(clock.clone()))
        .await
        .unwrap();
    let secrets = app::Secrets {
        jwt_secret: b"unused when an ES256 key signs, thirty-two bytes".to_vec(),
        seal_key_id: "test".into(),
        seal_key: vec![1; 32],
        lookup_key: vec![2; 32],
    };
    let settings = app::Settings {
        outbox_dir: Some(dir.to_owned()),
        signing_key: Some(key),
        resources: vec!["https://mcp.example.com/".to_owned()],
        ..app::Settings::new(database, secrets, Arc::new(clock))
    };
    app::build(settings).await.unwrap()
}

#[tokio::test]
async fn the_demo_publishes_its_es256_key_and_its_authorization_server() {
    let dir = tempfile::tempdir().unwrap();
    let generated = stepup::SigningKey::generate_es256("demo-key-1").unwrap();
    let router = es256_demo(dir.path(), generated.key.clone()).await;
    let jwks = json_of(get(&router, "/.well-known/jwks.json", Some([127, 0, 0, 1])).await).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], "demo-key-1");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "no private part");
    // A resource server elsewhere verifies the demo's tokens from the JWKS alone.
    let set: stepup::token::JwkSet = serde_json::from_value(jwks).unwrap();
    let token = stepup::JwtIssuer::new(generated.key)
        .with_issuer(app::DEFAULT_PUBLIC_URL)
        .with_audience("https://mcp.example.com/")
        .with_clock(Arc::new(ManualClock::at_unix(T0)))
        .issue(&stepup::token::Grant::new("u").acr("mfa"))
        .unwrap();
    let verifier = stepup::JwtVerifier::builder()
        .jwk_set(&set)
        .unwrap()
        .issuer(app::DEFAULT_PUBLIC_URL)
        .audience("https://mcp.example.com/")
        .clock(Arc::new(ManualClock::at_unix(T0)))
        .build()
        .unwrap();
    assert_eq!(verifier.verify(&token.access_token).unwrap().subject(), "u");

    let metadata = json_of(
        get(
            &router,
            "/.well-known/oauth-authorization-server",
            Some([127, 0, 0, 1]),
        )
        .await,
    )
    .await;
    assert_eq!(metadata["issuer"], app::DEFAULT_PUBLIC_URL);
    assert_eq!(
        metadata["registration_endpoint"],
        format!("{}/oauth/register", app::DEFAULT_PUBLIC_URL)
    );
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    assert_eq!(metadata["code_challenge_methods_supported"][0], "S256");
    // The sign-in page answers the demo client's authorization request.
    let page = get(
        &router,
        "/oauth/authorize?response_type=code&client_id=demo\
         &redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&state=s\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        Some([127, 0, 0, 1]),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
}
