//! The demo's own hardening, replayed over HTTP against the demo: registrations limited per
//! address, the database file's permissions, a JSON 405. (The library's findings are tested in
//! `crates/stepup-axum/tests/hardening.rs`.)

mod demo_support;

use std::time::Duration;

use demo_support::Demo;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_address() {
    let demo = Demo::start().await;
    for index in 0..10 {
        demo.register(&format!("user{index}@example.com")).await;
    }
    let answer = demo
        .post(
            "/api/register",
            None,
            json!({"email": "one-more@example.com", "password": "correct horse"}),
        )
        .await;
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    demo.clock.advance(Duration::from_secs(60 * 60));
    demo.register("one-more@example.com").await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let demo = Demo::start().await;
    demo.register("files@example.com").await;
    let mode = std::fs::metadata(demo.dir.path().join("demo.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_a_json_405() {
    let demo = Demo::start().await;
    for (method, path) in [
        (reqwest::Method::GET, "/oauth/authorize/mfa"),
        (reqwest::Method::PUT, "/api/register"),
        (reqwest::Method::POST, "/api/me"),
    ] {
        let response = demo.request(method, path, None).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed", "{path}");
    }
}
