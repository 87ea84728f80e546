//! The demo's `POST /api/transfers` behind `RequireTransaction` with stepup's own transaction
//! step-up, as a client drives it: the transfer is answered `401` with a `transaction_id` and the
//! operation; the MFA step for that transaction (the caller's token, then a TOTP code) gives a
//! single-use grant for exactly that amount and payee; the retried request passes once.

mod demo_support;

use std::time::Duration;

use demo_support::{Answer, Demo};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn transfer(amount: &str, payee: &str) -> Value {
    json!({"amount": amount, "currency": "EUR", "payee": payee})
}

async fn send(demo: &Demo, token: &str, grant: Option<&str>, body: &Value) -> Answer {
    let mut request = demo
        .request(reqwest::Method::POST, "/api/transfers", Some(token))
        .json(body);
    if let Some(grant) = grant {
        request = request.header("stepup-transaction", grant);
    }
    Answer::read(request).await
}

/// Approves the transfer a `401` named: the grant.
async fn approve(
    demo: &Demo,
    token: &str,
    refused: &Answer,
    key: &stepup::mfa::totp::TotpKey,
) -> String {
    let id = refused.body["transaction_id"]
        .as_str()
        .expect("a transaction_id");
    let step = demo
        .post(
            "/oauth/authorize",
            Some(token),
            json!({"transaction_id": id}),
        )
        .await;
    assert_eq!(step.status, StatusCode::OK, "{step:?}");
    assert_eq!(
        step.body["authorization_details"],
        refused.body["authorization_details"]
    );
    demo.clock.advance(Duration::from_secs(30));
    let approved = demo
        .mfa_step_with_code(step.body["mfa_token"].as_str().unwrap(), key)
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{approved:?}");
    assert!(
        approved.body.get("access_token").is_none(),
        "an approval is not a login"
    );
    assert_eq!(
        approved.body["authorization_details"],
        refused.body["authorization_details"]
    );
    approved.body["transaction_grant"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_approved_for_its_amount_and_payee_once() {
    let demo = Demo::start().await;
    let (_, key, _) = demo.enrolled_user("ada@example.com").await;
    let mfa_token = demo.mfa_token("ada@example.com").await;
    let token = demo.mfa_step_with_code(&mfa_token, &key).await.token();

    // Any recent MFA is not this payment: the 401 names the transaction and the operation.
    let payment = transfer("125.00", "ACME Ltd");
    let refused = send(&demo, &token, None, &payment).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let challenge = refused.challenge.clone().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    let id = refused.body["transaction_id"].as_str().unwrap();
    assert!(
        challenge.contains(&format!("transaction_id=\"{id}\"")),
        "{challenge}"
    );
    assert_eq!(
        refused.body["authorization_details"],
        json!([{"type": "payment", "amount": "125", "currency": "EUR", "payee": "ACME Ltd"}])
    );

    // Approved, the same request passes once; the grant is not a token.
    let grant = approve(&demo, &token, &refused, &key).await;
    assert_eq!(
        demo.get("/api/me", Some(&grant)).await.status,
        StatusCode::UNAUTHORIZED,
        "a grant is no bearer token"
    );
    let sent = send(&demo, &token, Some(&grant), &payment).await;
    assert_eq!(sent.status, StatusCode::OK, "{sent:?}");
    assert_eq!(sent.body["transferred"]["payee"], "ACME Ltd");
    let again = send(&demo, &token, Some(&grant), &payment).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "single use");

    // A grant for 125.00 EUR to ACME does not send 126.00, nor pay another payee.
    for changed in [
        transfer("126.00", "ACME Ltd"),
        transfer("125.00", "Mallory Ltd"),
    ] {
        let refused = send(&demo, &token, None, &payment).await;
        let grant = approve(&demo, &token, &refused, &key).await;
        let answer = send(&demo, &token, Some(&grant), &changed).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{changed}");
        assert_ne!(
            answer.body["transaction_id"],
            refused.body["transaction_id"]
        );
        // …and the grant is spent by the attempt.
        let original = send(&demo, &token, Some(&grant), &payment).await;
        assert_eq!(original.status, StatusCode::UNAUTHORIZED);
    }

    // Another user cannot approve ada's transaction.
    let bob_id = demo.register("bob@example.com").await;
    let refused = send(&demo, &token, None, &payment).await;
    let bob = demo.mint(
        &stepup::token::Grant::new(bob_id)
            .acr("mfa")
            .amr(["pwd", "otp"]),
    );
    let stolen = demo
        .post(
            "/oauth/authorize",
            Some(&bob),
            json!({"transaction_id": refused.body["transaction_id"]}),
        )
        .await;
    stolen.assert_error(StatusCode::BAD_REQUEST, "invalid_request");

    // A body the operation cannot be read from is a named 400.
    let bad = send(
        &demo,
        &token,
        None,
        &json!({"amount": "1e3", "currency": "EUR", "payee": "x"}),
    )
    .await;
    bad.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}
