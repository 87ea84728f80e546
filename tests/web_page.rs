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
