//! `examples/grpc` over loopback with tonic's own client: the layers on tonic's tower stack. A
//! method anyone signed in may call; one that needs `mfa` answers `UNAUTHENTICATED` with the RFC
//! 9470 challenge in the `www-authenticate` metadata, the level in the message and in a
//! `google.rpc.ErrorInfo` detail (read with `tonic-types`). Tokens come from the fake OpenID
//! Connect provider; the verifier's clock is a `ManualClock`.

#[path = "../examples/grpc/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;
mod support_oidc;

use std::collections::HashMap;
use std::sync::Arc;

use app::proto::account_client::AccountClient;
use app::proto::{CloseAccountRequest, WhoAmIRequest};
use serde_json::json;
use stepup::clock::ManualClock;
use support_oidc::{FakeIdp, TestKey};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const T0: u64 = 1_800_000_000;

struct Running {
    base: String,
    idp: FakeIdp,
    key: TestKey,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Running {
    /// The example on 127.0.0.1 trusting a fake Keycloak realm.
    async fn start() -> Self {
        let key = TestKey::ec("es-1");
        let idp = FakeIdp::start("/realms/demo", &[&key]).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let env: HashMap<&str, String> = [
            ("OIDC_ISSUER", idp.issuer.clone()),
            ("OIDC_AUDIENCE", "account".to_owned()),
            ("STEPUP_IDP_PROFILE", "keycloak".to_owned()),
            ("STEPUP_GRPC_ADDR", addr.to_string()),
        ]
        .into_iter()
        .collect();
        let settings = app::Settings::from_lookup(|name| env.get(name).cloned()).unwrap();
        let metadata = settings.metadata().unwrap();
        let verifier = settings
            .verifier(Arc::new(ManualClock::at_unix(T0)))
            .unwrap();
        verifier.refresh_keys().await.unwrap();
        let service = app::service(verifier, &metadata);
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .accept_http1(true)
                .serve_with_incoming(
                    service,
                    tonic::transport::server::TcpIncoming::from(listener),
                )
                .await
                .unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            idp,
            key,
            server,
        }
    }

    async fn client(&self) -> AccountClient<Channel> {
        AccountClient::connect(self.base.clone()).await.unwrap()
    }

    /// A Keycloak access token at level `acr` ("1" password, "2" second factor).
    fn token(&self, acr: &str, auth_time: u64) -> String {
        self.key.sign(&json!({
            "iss": self.idp.issuer,
            "aud": "account",
            "sub": "user-1",
            "iat": T0,
            "exp": T0 + 600,
            "auth_time": auth_time,
            "acr": acr,
            "amr": ["pwd"],
        }))
    }

    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource", self.base)
    }
}

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

fn challenge(status: &tonic::Status) -> &str {
    status
        .metadata()
        .get("www-authenticate")
        .expect("a www-authenticate challenge")
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn any_caller_signed_in_may_ask_who_they_are() {
    let server = Running::start().await;
    let mut client = server.client().await;

    let reply = client
        .who_am_i(with_token(WhoAmIRequest {}, Some(&server.token("1", T0))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.subject, "user-1");
    assert_eq!(reply.acr, "pwd");
    assert_eq!(reply.amr, ["pwd"]);

    // No token: the method's own refusal, and the layer names the metadata in it.
    let status = client
        .who_am_i(with_token(WhoAmIRequest {}, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        challenge(&status),
        format!("Bearer resource_metadata=\"{}\"", server.metadata_url())
    );

    // A token that does not verify: authenticate()'s refusal, as a gRPC status.
    let status = client
        .who_am_i(with_token(WhoAmIRequest {}, Some("not.a.token")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "the bearer token is malformed");
    assert_eq!(
        challenge(&status),
        format!(
            "Bearer error=\"invalid_token\", error_description=\"the bearer token is malformed\", \
             resource_metadata=\"{}\"",
            server.metadata_url()
        )
    );
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "INVALID_TOKEN"
    );
}

#[tokio::test]
async fn closing_the_account_needs_a_fresh_second_factor() {
    let server = Running::start().await;
    let mut client = server.client().await;

    let status = client
        .close_account(with_token(
            CloseAccountRequest {},
            Some(&server.token("1", T0)),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // The level in Keycloak's vocabulary: "2".
    assert_eq!(
        challenge(&status),
        format!(
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"a stronger authentication level is required\", \
             acr_values=\"2\", max_age=300, resource_metadata=\"{}\"",
            server.metadata_url()
        )
    );
    assert_eq!(
        status.message(),
        "a stronger authentication level is required: acr_values=\"2\", max_age=\"300\""
    );
    let info = status
        .get_details_error_info()
        .expect("an ErrorInfo detail");
    assert_eq!(info.reason, "INSUFFICIENT_USER_AUTHENTICATION");
    assert_eq!(info.domain, "stepup");
    assert_eq!(
        info.metadata,
        [
            ("error", "insufficient_user_authentication"),
            ("acr_values", "2"),
            ("max_age", "300"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    );

    // A second factor, but 301 s ago: too old.
    let status = client
        .close_account(with_token(
            CloseAccountRequest {},
            Some(&server.token("2", T0 - 301)),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status
            .message()
            .starts_with("a more recent authentication is required"),
        "{status:?}"
    );

    // A fresh second factor: closed. The open method still answers the same token.
    let token = server.token("2", T0 - 300);
    let reply = client
        .close_account(with_token(CloseAccountRequest {}, Some(&token)))
        .await
        .unwrap()
        .into_inner();
    assert!(reply.closed);
    let reply = client
        .who_am_i(with_token(WhoAmIRequest {}, Some(&token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.acr, "mfa");
}

#[tokio::test]
async fn the_resource_metadata_is_served_beside_the_grpc_service() {
    let server = Running::start().await;
    let document: serde_json::Value = reqwest::get(server.metadata_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        document,
        json!({
            "resource": server.base,
            "authorization_servers": [server.idp.issuer],
            "bearer_methods_supported": ["header"],
        })
    );
}
