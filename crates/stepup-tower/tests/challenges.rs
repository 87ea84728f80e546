//! Every challenge the layers send, exactly, with `authenticate(…).with_resource_metadata(…)`:
//! header and body over HTTP, the status over gRPC; `RequireScope`'s `403 insufficient_scope`;
//! the RFC 9728 document served by the service and by the layer. Time is a `ManualClock`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use stepup_core::AuthContext;
use stepup_core::clock::ManualClock;
use stepup_core::policy::{RevocationCheck, Revoked, async_trait};
use stepup_core::resource::ProtectedResourceMetadata;
use stepup_core::token::{Grant, JwtIssuer, SigningKey};
use stepup_tower::{
    RejectRevokedLayer, RequireMfa, RequireScope, ResourceMetadataLayer, ResourceMetadataService,
    authenticate,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const T0: u64 = 1_800_000_000;
const METADATA_URL: &str = "https://api.example.com/.well-known/oauth-protected-resource";
const RM: &str =
    r#"resource_metadata="https://api.example.com/.well-known/oauth-protected-resource""#;

fn metadata() -> ProtectedResourceMetadata {
    ProtectedResourceMetadata::new("https://api.example.com")
        .unwrap()
        .with_authorization_server("https://auth.example.com")
        .with_scopes_supported(["vault:read", "vault:write"])
        .with_resource_documentation("https://docs.example.com/api")
}

fn issuer() -> JwtIssuer {
    JwtIssuer::new(SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap())
        .with_issuer("https://auth.example.com")
        .with_audience("https://api.example.com")
        .with_clock(Arc::new(ManualClock::at_unix(T0)))
}

fn token(acr: &str, scope: &str) -> String {
    let grant = Grant::new("ada")
        .acr(acr)
        .amr(["pwd"])
        .auth_time(T0)
        .scope(scope);
    issuer().issue(&grant).unwrap().access_token
}

/// Revokes every token of `eve`.
struct EveIsRevoked;

#[async_trait]
impl RevocationCheck for EveIsRevoked {
    async fn check(&self, caller: &AuthContext) -> Result<(), Revoked> {
        if caller.subject() == "eve" {
            Err(Revoked::Revoked)
        } else {
            Ok(())
        }
    }
}

/// The vault: `vault:read` and `mfa` within 5 minutes, behind `authenticate()` naming the
/// metadata, the revocation check, and the metadata layer outside everything.
fn vault() -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<impl http_body::Body<Data = Bytes, Error = Infallible>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    let verifier = issuer().verifier().build().unwrap();
    ServiceBuilder::new()
        .layer(ResourceMetadataLayer::new(&metadata()))
        .layer(authenticate(verifier).with_resource_metadata(metadata().metadata_url()))
        .layer(RejectRevokedLayer::new(EveIsRevoked))
        .layer(RequireScope::all(["vault:read"]))
        .layer(RequireMfa.max_age(Duration::from_secs(300)))
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("the secret"))))
        }))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn challenge(&self) -> &str {
        self.headers[WWW_AUTHENTICATE].to_str().unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

async fn ask(
    service: &(
         impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<impl http_body::Body<Data = Bytes, Error = Infallible>>,
        Error = Infallible,
    > + Clone
     ),
    request: Request<Full<Bytes>>,
) -> Answer {
    let response = service.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn request(bearer: Option<&str>, grpc: bool) -> Request<Full<Bytes>> {
    let mut builder = Request::post("/vault.Vault/Read");
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if grpc {
        builder = builder.header(CONTENT_TYPE, "application/grpc");
    }
    builder.body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn every_http_challenge_names_the_resource_metadata() {
    let vault = vault();

    // No token: the bare challenge, with the metadata as its one parameter.
    let answer = ask(&vault, request(None, false)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge(), format!("Bearer {RM}"));
    assert_eq!(
        answer.json(),
        json!({"error": "unauthorized", "error_description": "a bearer access token is required"})
    );

    // A token that does not verify: authenticate()'s own 401.
    let answer = ask(&vault, request(Some("not.a.token"), false)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge(),
        format!(
            "Bearer error=\"invalid_token\", error_description=\"the bearer token is malformed\", {RM}"
        )
    );
    assert_eq!(
        answer.json(),
        json!({"error": "invalid_token", "error_description": "the bearer token is malformed"})
    );

    // A revoked token: RejectRevoked's 401.
    let revoked = issuer()
        .issue(&Grant::new("eve").acr("mfa").scope("vault:read"))
        .unwrap()
        .access_token;
    let answer = ask(&vault, request(Some(&revoked), false)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge(),
        format!(
            "Bearer error=\"invalid_token\", error_description=\"the token has been revoked\", {RM}"
        )
    );

    // The scope is missing: 403 insufficient_scope, every scope the route needs.
    let answer = ask(&vault, request(Some(&token("mfa", "openid")), false)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge(),
        format!(
            "Bearer error=\"insufficient_scope\", \
             error_description=\"the access token does not grant a scope this request needs\", \
             scope=\"vault:read\", {RM}"
        )
    );
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    assert_eq!(
        answer.json(),
        json!({
            "error": "insufficient_scope",
            "error_description": "the access token does not grant a scope this request needs",
            "scope": "vault:read",
        })
    );

    // The scope is there, the level is not: RFC 9470.
    let answer = ask(&vault, request(Some(&token("pwd", "vault:read")), false)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge(),
        format!(
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"a stronger authentication level is required\", \
             acr_values=\"mfa\", max_age=300, {RM}"
        )
    );
    assert_eq!(
        answer.json(),
        json!({
            "error": "insufficient_user_authentication",
            "error_description": "a stronger authentication level is required",
            "acr_values": "mfa",
            "max_age": 300,
        })
    );

    // Both: the secret, and no challenge.
    let answer = ask(
        &vault,
        request(Some(&token("mfa", "openid vault:read")), false),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "the secret");
    assert!(!answer.headers.contains_key(WWW_AUTHENTICATE));
}

#[tokio::test]
async fn a_handler_s_own_challenge_gets_the_parameter_too_and_other_schemes_do_not() {
    let verifier = issuer().verifier().build().unwrap();
    let service = ServiceBuilder::new()
        .layer(authenticate(verifier).with_resource_metadata(metadata().metadata_url()))
        .service(service_fn(|request: Request<Full<Bytes>>| async move {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            let challenge = if request.uri().path() == "/basic" {
                "Basic realm=\"x\""
            } else {
                "Bearer realm=\"app\", error=\"invalid_token\""
            };
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, challenge.parse().unwrap());
            Ok::<_, Infallible>(response)
        }));
    let answer = ask(&service, Request::new(Full::new(Bytes::new()))).await;
    assert_eq!(
        answer.challenge(),
        format!("Bearer realm=\"app\", error=\"invalid_token\", {RM}")
    );
    let basic = Request::get("/basic")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(ask(&service, basic).await.challenge(), "Basic realm=\"x\"");
}

#[tokio::test]
async fn every_grpc_refusal_is_a_status_with_the_same_challenge() {
    let vault = vault();
    let cases = [
        (None, "16", format!("Bearer {RM}")),
        (
            Some("not.a.token".to_owned()),
            "16",
            format!(
                "Bearer error=\"invalid_token\", error_description=\"the bearer token is malformed\", {RM}"
            ),
        ),
        (
            Some(token("mfa", "openid")),
            "7",
            format!(
                "Bearer error=\"insufficient_scope\", \
                 error_description=\"the access token does not grant a scope this request needs\", \
                 scope=\"vault:read\", {RM}"
            ),
        ),
        (
            Some(token("pwd", "vault:read")),
            "16",
            format!(
                "Bearer error=\"insufficient_user_authentication\", \
                 error_description=\"a stronger authentication level is required\", \
                 acr_values=\"mfa\", max_age=300, {RM}"
            ),
        ),
    ];
    for (bearer, code, challenge) in cases {
        let answer = ask(&vault, request(bearer.as_deref(), true)).await;
        assert_eq!(answer.status, StatusCode::OK, "{challenge}");
        assert_eq!(answer.headers[CONTENT_TYPE], "application/grpc");
        assert_eq!(answer.headers["grpc-status"], code, "{challenge}");
        assert_eq!(answer.challenge(), challenge);
        assert!(answer.headers.contains_key("grpc-status-details-bin"));
        assert_eq!(answer.body, "", "trailers-only: no body");
    }
    let answer = ask(&vault, request(Some(&token("pwd", "vault:read")), true)).await;
    assert_eq!(
        answer.headers["grpc-message"],
        "a%20stronger%20authentication%20level%20is%20required:%20\
         acr_values=\"mfa\",%20max_age=\"300\""
    );
}

#[tokio::test]
async fn the_metadata_is_served_by_the_layer_and_by_the_service() {
    let expected = json!({
        "resource": "https://api.example.com",
        "authorization_servers": ["https://auth.example.com"],
        "scopes_supported": ["vault:read", "vault:write"],
        "bearer_methods_supported": ["header"],
        "resource_documentation": "https://docs.example.com/api",
    });
    let get = || {
        Request::get("/.well-known/oauth-protected-resource")
            .header("authorization", "Bearer not.a.token")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };

    // Outside authenticate(): a bad token does not hide the public document.
    let answer = ask(&vault(), get()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), expected);
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    assert_eq!(answer.headers["cache-control"], "public, max-age=3600");
    assert_eq!(answer.headers["access-control-allow-origin"], "*");

    let service = ResourceMetadataService::new(&metadata()).with_max_age(60);
    let answer = ask(&service, get()).await;
    assert_eq!(answer.json(), expected);
    assert_eq!(answer.headers["cache-control"], "public, max-age=60");
    let post = Request::post("/.well-known/oauth-protected-resource")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = ask(&service, post).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers["allow"], "GET, HEAD");
    let head = Request::builder()
        .method(Method::HEAD)
        .uri("/.well-known/oauth-protected-resource")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(ask(&service, head).await.status, StatusCode::OK);

    assert_eq!(metadata().metadata_url().as_str(), METADATA_URL);
}
