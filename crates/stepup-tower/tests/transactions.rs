//! `RequireTransaction` on an axum route, as an API moving money uses it: a transfer goes
//! through only with a token whose `authorization_details` (RFC 9396) approve that amount, that
//! currency and that payee; any change of one is `403 insufficient_authorization_details` naming
//! the operation to approve. Tokens are signed and verified for real; time is a `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use stepup_core::clock::ManualClock;
use stepup_core::token::{Grant, JwtIssuer, SigningKey};
use stepup_tower::authenticate;
use stepup_tower::require_transaction::{Operation, OperationError, RequireTransaction};
use tower::ServiceExt;

const T0: u64 = 1_800_000_000;

fn issuer(clock: &ManualClock) -> JwtIssuer {
    JwtIssuer::new(SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap())
        .with_issuer("https://auth.example.com")
        .with_audience("https://bank.example.com")
        .with_clock(Arc::new(clock.clone()))
}

/// The operation of `POST /api/transfers`: `{amount, currency, payee}`.
fn transfer(_: &http::request::Parts, body: &[u8]) -> Result<Operation, OperationError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|_| OperationError::new("the body must be JSON"))?;
    Operation::new("payment")
        .with_amount("amount", &body["amount"])?
        .with_currency("currency", &body["currency"])?
        .with_text("payee", &body["payee"])
}

fn app(clock: &ManualClock) -> Router {
    let verifier = issuer(clock)
        .verifier()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    Router::new()
        .route(
            "/api/transfers",
            post(|body: String| async move {
                // The handler sees the very bytes the layer judged.
                let body: Value = serde_json::from_str(&body).unwrap();
                json!({"sent": body}).to_string()
            })
            .layer(RequireTransaction::new(transfer).max_age(Duration::from_secs(300))),
        )
        .layer(authenticate(verifier))
}

fn approved(amount: &str, payee: &str) -> Value {
    json!([{"type": "payment", "amount": amount, "currency": "EUR", "payee": payee}])
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

async fn send(app: &Router, token: Option<&str>, body: &str) -> Answer {
    let mut request = Request::post("/api/transfers").header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        challenge,
        body: serde_json::from_slice(&bytes).unwrap(),
    }
}

#[tokio::test]
async fn a_transfer_goes_through_only_as_approved() {
    let clock = ManualClock::at_unix(T0);
    let app = app(&clock);
    let token = |acr: &str, details: Value| {
        let grant = Grant::new("ada")
            .acr(acr)
            .amr(["pwd", "otp"])
            .authorization_details(details);
        issuer(&clock).issue(&grant).unwrap().access_token
    };
    let approved_token = token("mfa", approved("125.00", "ACME Ltd"));
    let transfer = |amount: &str, payee: &str| {
        json!({"amount": amount, "currency": "eur", "payee": payee}).to_string()
    };

    // As approved (the amount in another spelling is the same amount): through, body intact.
    let sent = send(&app, Some(&approved_token), &transfer("125", "ACME Ltd")).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.body["sent"]["amount"], "125");

    // Another amount, another payee, another currency: refused, naming what to approve.
    for (body, required) in [
        (
            transfer("126.00", "ACME Ltd"),
            json!({"type": "payment", "amount": "126", "currency": "EUR", "payee": "ACME Ltd"}),
        ),
        (
            transfer("125.00", "Mallory Ltd"),
            json!({"type": "payment", "amount": "125", "currency": "EUR", "payee": "Mallory Ltd"}),
        ),
        (
            json!({"amount": "125.00", "currency": "USD", "payee": "ACME Ltd"}).to_string(),
            json!({"type": "payment", "amount": "125", "currency": "USD", "payee": "ACME Ltd"}),
        ),
    ] {
        let refused = send(&app, Some(&approved_token), &body).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            refused.challenge.as_deref(),
            Some(
                "Bearer error=\"insufficient_authorization_details\", \
                 error_description=\"the access token does not authorize this operation\""
            )
        );
        assert_eq!(refused.body["error"], "insufficient_authorization_details");
        assert_eq!(refused.body["authorization_details"], json!([required]));
    }

    // A token of "any recent MFA" authorizes no transfer.
    let any_mfa = issuer(&clock)
        .issue(&Grant::new("ada").acr("mfa").amr(["pwd", "otp"]))
        .unwrap()
        .access_token;
    let refused = send(&app, Some(&any_mfa), &transfer("125", "ACME Ltd")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Approved details under a password alone: the level is asked for first (RFC 9470).
    let pwd = token("pwd", approved("125.00", "ACME Ltd"));
    let refused = send(&app, Some(&pwd), &transfer("125", "ACME Ltd")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["error"], "insufficient_user_authentication");

    // Six minutes later the approval is too old for this route's max_age.
    clock.advance(Duration::from_secs(360));
    let refused = send(&app, Some(&approved_token), &transfer("125", "ACME Ltd")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["max_age"], 300);
}

#[tokio::test]
async fn bad_requests_are_named_4xx_never_echoed() {
    let clock = ManualClock::at_unix(T0);
    let app = app(&clock);
    let token = issuer(&clock)
        .issue(
            &Grant::new("ada")
                .acr("mfa")
                .authorization_details(approved("125", "ACME Ltd")),
        )
        .unwrap()
        .access_token;

    let no_token = send(&app, None, "{}").await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.challenge.as_deref(), Some("Bearer"));

    for (body, message) in [
        ("not json <script>", "the body must be JSON"),
        (
            r#"{"amount": "1e3", "currency": "EUR", "payee": "x"}"#,
            "amount must be a non-negative decimal amount, e.g. \"125.00\"",
        ),
        (
            r#"{"amount": "-5", "currency": "EUR", "payee": "x"}"#,
            "amount must be a non-negative decimal amount, e.g. \"125.00\"",
        ),
        (
            r#"{"amount": "5", "currency": "EURO", "payee": "x"}"#,
            "currency must be a three-letter ISO 4217 currency code",
        ),
        (
            r#"{"amount": "5", "currency": "EUR"}"#,
            "payee must be a non-empty string of at most 256 bytes, no control characters",
        ),
    ] {
        let refused = send(&app, Some(&token), body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(refused.body["error"], "invalid_request");
        assert_eq!(refused.body["error_description"], message);
    }

    let huge = format!(r#"{{"payee": "{}"}}"#, "x".repeat(100 * 1024));
    let refused = send(&app, Some(&token), &huge).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(refused.body["error"], "invalid_request");
}

/// Approvals that count what they are asked: every operation recorded as `tx-1`.
#[derive(Default)]
struct Counted(std::sync::atomic::AtomicUsize);

#[stepup_core::policy::async_trait]
impl stepup_core::policy::TransactionApprovals for Counted {
    async fn request_approval(
        &self,
        _: &stepup_core::AuthContext,
        _: &str,
    ) -> Result<String, stepup_core::policy::Unavailable> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok("tx-1".to_owned())
    }

    async fn redeem_approval(
        &self,
        _: &stepup_core::AuthContext,
        _: &str,
        _: &str,
    ) -> Result<bool, stepup_core::policy::Unavailable> {
        Ok(false)
    }
}

/// An operation whose canonical JSON is over the 4096 bytes the engine records is a `400` that
/// says so, before any approval is asked for (not a `503`, as a store refusing it would be).
#[tokio::test]
async fn an_operation_too_large_to_approve_is_a_400_before_any_approval() {
    let clock = ManualClock::at_unix(T0);
    let verifier = issuer(&clock)
        .verifier()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    // Twenty notes of up to 256 bytes each: an operation of about 5 kB.
    let notes = |_: &http::request::Parts, body: &[u8]| {
        let body: Value = serde_json::from_slice(body)
            .map_err(|_| OperationError::new("the body must be JSON"))?;
        (0..20).try_fold(Operation::new("notes"), |operation, n| {
            operation.with_text(&format!("note{n}"), &body[format!("note{n}")])
        })
    };
    let approvals = Arc::new(Counted::default());
    let app = Router::new()
        .route(
            "/api/transfers",
            post(|| async { "sent" })
                .layer(RequireTransaction::new(notes).with_approvals(approvals.clone())),
        )
        .layer(authenticate(verifier));
    let token = issuer(&clock)
        .issue(&Grant::new("ada").acr("mfa"))
        .unwrap()
        .access_token;
    let notes_of = |text: &str| {
        let notes: serde_json::Map<String, Value> =
            (0..20).map(|n| (format!("note{n}"), json!(text))).collect();
        Value::Object(notes).to_string()
    };

    let refused = send(&app, Some(&token), &notes_of(&"n".repeat(250))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["error"], "invalid_request");
    assert_eq!(
        refused.body["error_description"],
        "the operation is too large to approve (at most 4096 bytes)"
    );
    let asked = || approvals.0.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(asked(), 0, "nothing recorded");

    // A small one is recorded and challenged.
    let challenged = send(&app, Some(&token), &notes_of("n")).await;
    assert_eq!(challenged.status, StatusCode::UNAUTHORIZED);
    assert!(
        challenged
            .challenge
            .unwrap()
            .contains("transaction_id=\"tx-1\"")
    );
    assert_eq!(asked(), 1);
}
