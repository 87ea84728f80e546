//! `RejectRevokedLayer` over a policy: a token the policy says is revoked is refused with `401
//! invalid_token`; one it accepts passes; a policy that cannot answer refuses with the one `503`
//! (fail closed); a request without a caller passes to the requirement layers.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use stepup_core::AuthContext;
use stepup_core::policy::{RevocationCheck, Revoked, async_trait};
use stepup_tower::RejectRevokedLayer;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// Revokes `ada`'s tokens issued before second 1,000, and cannot answer for `eve`. With
/// `in_memory`, it answers for everyone but `eve` at once ([`RevocationCheck::check_now`]), as
/// stepup's engine does from its copy of the generations; it counts the calls to `check`.
#[derive(Clone, Default)]
struct Policy {
    in_memory: bool,
    awaited: Arc<AtomicUsize>,
}

impl Policy {
    fn verdict(caller: &AuthContext) -> Result<(), Revoked> {
        match caller.subject() {
            "eve" => Err(Revoked::Unavailable),
            "ada" if caller.issued_at().unwrap_or(0) < 1_000 => Err(Revoked::Revoked),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl RevocationCheck for Policy {
    async fn check(&self, caller: &AuthContext) -> Result<(), Revoked> {
        self.awaited.fetch_add(1, Ordering::SeqCst);
        Self::verdict(caller)
    }

    fn check_now(&self, caller: &AuthContext) -> Option<Result<(), Revoked>> {
        (self.in_memory && caller.subject() != "eve").then(|| Self::verdict(caller))
    }
}

fn request(user: &str, issued_at: Option<u64>) -> Request<String> {
    let mut context = AuthContext::builder(user).acr("mfa").expires_at(u64::MAX);
    if let Some(issued_at) = issued_at {
        context = context.issued_at(issued_at);
    }
    let mut request = Request::new(String::new());
    request.extensions_mut().insert(context.build());
    request
}

async fn answer(request: Request<String>) -> (StatusCode, Option<String>, String) {
    answer_by(Policy::default(), request).await
}

async fn answer_by(
    policy: Policy,
    request: Request<String>,
) -> (StatusCode, Option<String>, String) {
    let service = ServiceBuilder::new()
        .layer(RejectRevokedLayer::new(policy))
        .service(service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::from("handled")))
        }));
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_others_pass() {
    let (status, challenge, body) = answer(request("ada", Some(999))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    assert!(body.contains("revoked"), "{body}");
    assert_eq!(
        answer(request("ada", None)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(answer(request("ada", Some(1_000))).await.2, "handled");
    assert_eq!(answer(request("bob", Some(1))).await.2, "handled");
}

#[tokio::test]
async fn a_request_without_a_caller_passes_to_the_requirement_layers() {
    assert_eq!(answer(Request::new(String::new())).await.2, "handled");
}

#[tokio::test]
async fn a_policy_that_cannot_answer_fails_closed_with_the_one_503() {
    let (status, _, body) = answer(request("eve", Some(5_000))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], stepup_core::error_body::UNAVAILABLE_CODE);
    assert_eq!(
        body["error_description"],
        stepup_core::error_body::UNAVAILABLE_DESCRIPTION
    );
}

/// A verdict from memory is the same verdict, given without awaiting the policy; where memory
/// cannot tell, the policy is awaited (and still fails closed).
#[tokio::test]
async fn a_verdict_from_memory_is_the_same_and_awaits_nothing() {
    let policy = Policy {
        in_memory: true,
        ..Policy::default()
    };
    let (status, challenge, body) = answer_by(policy.clone(), request("ada", Some(999))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    assert!(body.contains("revoked"), "{body}");
    assert_eq!(
        answer_by(policy.clone(), request("ada", Some(1_000)))
            .await
            .2,
        "handled"
    );
    assert_eq!(
        answer_by(policy.clone(), request("bob", Some(1))).await.2,
        "handled"
    );
    assert_eq!(policy.awaited.load(Ordering::SeqCst), 0, "nothing awaited");

    let (status, _, _) = answer_by(policy.clone(), request("eve", Some(5_000))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        policy.awaited.load(Ordering::SeqCst),
        1,
        "eve's asked the policy"
    );
}
