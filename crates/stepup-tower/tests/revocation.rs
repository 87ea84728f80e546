//! `RejectRevokedLayer`: a token issued before its user's revocation mark is refused; one
//! issued after it, or another user's, passes; a store that fails refuses (fail closed).

use std::convert::Infallible;
use std::sync::Arc;

use async_trait::async_trait;
use http::{Request, Response, StatusCode};
use stepup_core::AuthContext;
use stepup_store::{
    CodeSet, Credential, CredentialRef, Enrollment, FactorStore, MemoryStore, StoreError,
    StoreResult,
};
use stepup_tower::RejectRevokedLayer;
use tower::{ServiceBuilder, ServiceExt, service_fn};

fn request(user: &str, issued_at: Option<u64>) -> Request<String> {
    let mut context = AuthContext::builder(user).acr("mfa").expires_at(u64::MAX);
    if let Some(issued_at) = issued_at {
        context = context.issued_at(issued_at);
    }
    let mut request = Request::new(String::new());
    request.extensions_mut().insert(context.build());
    request
}

async fn status(factors: Arc<dyn FactorStore>, request: Request<String>) -> StatusCode {
    let service = ServiceBuilder::new()
        .layer(RejectRevokedLayer::new(factors))
        .service(service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::from("handled")))
        }));
    service.oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn tokens_issued_before_the_mark_are_refused() {
    let store = Arc::new(MemoryStore::new());
    store.revoke_tokens_before("ada", 1_000).await.unwrap();
    let factors: Arc<dyn FactorStore> = store;
    assert_eq!(
        status(factors.clone(), request("ada", Some(999))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(factors.clone(), request("ada", None)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(factors.clone(), request("ada", Some(1_000))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(factors.clone(), request("bob", Some(1))).await,
        StatusCode::OK
    );
    // No caller: nothing to check here (the requirement layers answer it).
    assert_eq!(
        status(factors, Request::new(String::new())).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_refusal_is_an_invalid_token_challenge_in_json() {
    let store = Arc::new(MemoryStore::new());
    store.revoke_tokens_before("ada", 1_000).await.unwrap();
    let service = ServiceBuilder::new()
        .layer(RejectRevokedLayer::new(store))
        .service(service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let response = service.oneshot(request("ada", Some(10))).await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\", error_description=\"the token has been revoked\""
    );
    assert_eq!(response.headers()["content-type"], "application/json");
}

/// A store whose every call fails.
struct Down;

#[async_trait]
impl FactorStore for Down {
    async fn put_pending(&self, _: Credential, _: Enrollment) -> StoreResult<bool> {
        Err(down())
    }
    async fn activate(
        &self,
        _: CredentialRef<'_>,
        _: u64,
        _: Option<CodeSet>,
    ) -> StoreResult<bool> {
        Err(down())
    }
    async fn credential(&self, _: CredentialRef<'_>) -> StoreResult<Option<Credential>> {
        Err(down())
    }
    async fn credentials(&self, _: &str) -> StoreResult<Vec<Credential>> {
        Err(down())
    }
    async fn credentials_of_kind(&self, _: &str) -> StoreResult<Vec<Credential>> {
        Err(down())
    }
    async fn credential_by_id(&self, _: &str, _: &str) -> StoreResult<Option<Credential>> {
        Err(down())
    }
    async fn advance_counter(
        &self,
        _: CredentialRef<'_>,
        _: u64,
        _: Option<&str>,
        _: u64,
    ) -> StoreResult<bool> {
        Err(down())
    }
    async fn replace_payload(
        &self,
        _: CredentialRef<'_>,
        _: &str,
        _: &str,
        _: Option<u64>,
    ) -> StoreResult<bool> {
        Err(down())
    }
    async fn set_label(&self, _: CredentialRef<'_>, _: Option<&str>) -> StoreResult<bool> {
        Err(down())
    }
    async fn delete_credential(&self, _: CredentialRef<'_>) -> StoreResult<bool> {
        Err(down())
    }
    async fn replace_codes(&self, _: &str, _: CodeSet) -> StoreResult<()> {
        Err(down())
    }
    async fn code_hash(&self, _: &str, _: &str, _: &str) -> StoreResult<Option<String>> {
        Err(down())
    }
    async fn consume_code(&self, _: &str, _: &str, _: &str) -> StoreResult<bool> {
        Err(down())
    }
    async fn count_codes(&self, _: &str, _: &str) -> StoreResult<usize> {
        Err(down())
    }
    async fn record_failure(&self, _: &str, _: &str) -> StoreResult<u64> {
        Err(down())
    }
    async fn failures(&self, _: &str, _: &str) -> StoreResult<u64> {
        Err(down())
    }
    async fn clear_failures(&self, _: &str, _: &str) -> StoreResult<()> {
        Err(down())
    }
    async fn revoke_tokens_before(&self, _: &str, _: u64) -> StoreResult<()> {
        Err(down())
    }
    async fn tokens_revoked_before(&self, _: &str) -> StoreResult<Option<u64>> {
        Err(down())
    }
    async fn delete_user_factors(&self, _: &str) -> StoreResult<()> {
        Err(down())
    }
    async fn ping(&self) -> StoreResult<()> {
        Err(down())
    }
}

fn down() -> StoreError {
    StoreError::Unavailable("down".into())
}

#[tokio::test]
async fn a_store_that_is_down_refuses_with_503() {
    assert_eq!(
        status(Arc::new(Down), request("ada", Some(10))).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
