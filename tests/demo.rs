//! The demo's HTTP contract (SPEC §2), end to end over a real socket.

#[allow(dead_code)]
#[path = "../examples/demo/app.rs"]
mod app;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use stepup::{Grant, JwtIssuer, amr, level};

const SECRET: &[u8] = b"demo test secret, thirty-two bytes at least";

struct Demo {
    base: String,
    client: Client,
    issuer: JwtIssuer,
}

impl Demo {
    async fn start() -> Self {
        let issuer = JwtIssuer::hs256(SECRET)
            .unwrap()
            .with_issuer("demo-test")
            .with_audience("demo-test");
        let verifier = issuer.verifier().build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = app::router(issuer.clone(), verifier);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            base,
            client: Client::new(),
            issuer,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    async fn post_raw(&self, path: &str, body: &str, content_type: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        read(response).await
    }

    async fn delete_account(&self, token: &str) -> (StatusCode, Option<String>, Value) {
        let response = self
            .client
            .delete(format!("{}/api/account", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_owned());
        let (status, body) = read(response).await;
        (status, challenge, body)
    }

    async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/oauth/authorize",
            json!({"username": email, "password": password}),
        )
        .await
    }
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{status}"
    );
    (status, response.json().await.unwrap())
}

fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{:?}", answer.1);
    assert_eq!(answer.1["error"], code, "{:?}", answer.1);
    assert!(
        answer.1["error_description"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
}

#[tokio::test]
async fn register_login_step_up_and_delete() {
    let demo = Demo::start().await;

    let (status, body) = demo
        .post(
            "/api/register",
            json!({"email": "Ada@Example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let user_id = body["user_id"].as_str().unwrap().to_owned();

    let (status, token) = demo.login("ada@example.com", "correct horse").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["acr"], "pwd");
    assert_eq!(token["expires_in"], 900);
    let password_token = token["access_token"].as_str().unwrap();

    let (status, challenge, body) = demo.delete_account(password_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.as_deref(),
        Some(
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"a stronger authentication level is required\", \
             acr_values=\"mfa\", max_age=300"
        )
    );
    assert_eq!(body["acr_values"], "mfa");
    assert_eq!(body["max_age"], 300);

    // The MFA step lands with the TOTP issue; until then the test's issuer stands in for it.
    let mfa_token = demo
        .issuer
        .issue(
            &Grant::new(&user_id)
                .acr(level::MFA)
                .amr([amr::PWD, amr::OTP]),
        )
        .unwrap()
        .access_token;
    let (status, _, body) = demo.delete_account(&mfa_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"success": true}));

    assert_error(
        &demo.login("ada@example.com", "correct horse").await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    );
    let (status, _, _) = demo.delete_account(&mfa_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_old_second_factor_does_not_delete_the_account() {
    let demo = Demo::start().await;
    let (_, body) = demo
        .post(
            "/api/register",
            json!({"email": "old@example.com", "password": "correct horse"}),
        )
        .await;
    let user_id = body["user_id"].as_str().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale = demo
        .issuer
        .issue(&Grant::new(user_id).acr(level::MFA).auth_time(now - 3600))
        .unwrap()
        .access_token;
    let (status, challenge, _) = demo.delete_account(&stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("max_age=300"));
    let (status, _) = demo.login("old@example.com", "correct horse").await;
    assert_eq!(status, StatusCode::OK, "the user must still exist");
}

#[tokio::test]
async fn registration_refuses_bad_input_and_duplicates() {
    let demo = Demo::start().await;
    let ok = json!({"email": "grace@example.com", "password": "long enough"});
    assert_eq!(
        demo.post("/api/register", ok.clone()).await.0,
        StatusCode::CREATED
    );
    assert_error(
        &demo.post("/api/register", ok).await,
        StatusCode::CONFLICT,
        "email_taken",
    );
    let same_email_other_case = json!({"email": " GRACE@example.com ", "password": "long enough"});
    assert_error(
        &demo.post("/api/register", same_email_other_case).await,
        StatusCode::CONFLICT,
        "email_taken",
    );

    let bad_bodies = [
        json!({"email": "not-an-email", "password": "long enough"}),
        json!({"email": "x@example.com", "password": "short"}),
        json!({"email": "x@example.com", "password": "p".repeat(257)}),
        json!({"email": "x@example.com"}),
        json!({"email": 5, "password": "long enough"}),
        json!([]),
    ];
    for body in bad_bodies {
        assert_error(
            &demo.post("/api/register", body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
    }
    assert_error(
        &demo
            .post_raw("/api/register", "{not json", "application/json")
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        &demo
            .post_raw(
                "/api/register",
                "email=x",
                "application/x-www-form-urlencoded",
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    // Nothing half-registered: the refused email is still free.
    let (status, _) = demo
        .post(
            "/api/register",
            json!({"email": "x@example.com", "password": "long enough"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn login_refuses_wrong_passwords_and_unknown_users_alike() {
    let demo = Demo::start().await;
    demo.post(
        "/api/register",
        json!({"email": "lin@example.com", "password": "correct horse"}),
    )
    .await;
    let wrong_password = demo.login("lin@example.com", "wrong horse").await;
    let unknown_user = demo.login("nobody@example.com", "correct horse").await;
    assert_error(&wrong_password, StatusCode::UNAUTHORIZED, "invalid_grant");
    assert_eq!(wrong_password, unknown_user);
    assert_error(
        &demo
            .post("/oauth/authorize", json!({"username": "lin@example.com"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

#[tokio::test]
async fn me_reports_the_token_and_health_needs_no_token() {
    let demo = Demo::start().await;
    demo.post(
        "/api/register",
        json!({"email": "me@example.com", "password": "correct horse"}),
    )
    .await;
    let (_, token) = demo.login("me@example.com", "correct horse").await;
    let response = demo
        .client
        .get(format!("{}/api/me", demo.base))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (status, me) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["acr"], "pwd");
    assert_eq!(me["amr"], json!(["pwd"]));
    assert!(me["auth_time"].as_u64().is_some());

    let response = demo
        .client
        .get(format!("{}/api/me", demo.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(read(response).await.0, StatusCode::UNAUTHORIZED);

    let response = demo
        .client
        .get(format!("{}/healthz", demo.base))
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await.0, StatusCode::OK);
}
