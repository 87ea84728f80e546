//! `RequireAcr` / `RequireMfa`: level order, freshness, methods, the exact RFC 9470 challenge, and
//! placement on bare tower services and on axum routers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get};
use common::*;
use http::{Request, StatusCode};
use serde_json::json;
use stepup::acr::AcrLevels;
use stepup::middleware::StepUpReason;
use stepup::{AcrRequirement, AuthContext, JwtVerifier, RequireAcr, RequireMfa, authenticate};
use tower::{ServiceBuilder, ServiceExt, service_fn};

fn protected(
    verifier: JwtVerifier,
    requirement: RequireAcr,
) -> impl tower::Service<
    Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<
        stepup::middleware::ResponseBody<
            stepup::middleware::ResponseBody<http_body_util::Full<bytes::Bytes>>,
        >,
    >,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    ServiceBuilder::new()
        .layer(authenticate(verifier))
        .layer(requirement)
        .service(service_fn(echo))
}

fn token_with(acr: &str, amr: &[&str], auth_time: Option<u64>) -> String {
    let mut claims = claims(acr);
    claims["amr"] = json!(amr);
    match auth_time {
        Some(time) => claims["auth_time"] = json!(time),
        None => {
            claims.as_object_mut().unwrap().remove("auth_time");
        }
    }
    hs_token(&claims)
}

#[tokio::test]
async fn a_higher_level_satisfies_a_lower_requirement() {
    let verifier = verifier(&clock());
    let mfa = protected(verifier.clone(), RequireMfa.into());
    let phr = protected(verifier, RequireAcr::level("phr"));
    let cases = [
        ("pwd", StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED),
        ("mfa", StatusCode::OK, StatusCode::UNAUTHORIZED),
        ("phr", StatusCode::OK, StatusCode::OK),
        (
            "urn:unknown:level",
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (acr, on_mfa, on_phr) in cases {
        let token = hs_token(&claims(acr));
        assert_eq!(
            call(&mfa, bearer(&token)).await.status,
            on_mfa,
            "{acr} on mfa"
        );
        assert_eq!(
            call(&phr, bearer(&token)).await.status,
            on_phr,
            "{acr} on phr"
        );
    }
}

#[tokio::test]
async fn a_token_without_acr_meets_no_level() {
    let mut claims = claims("mfa");
    claims.as_object_mut().unwrap().remove("acr");
    let service = protected(verifier(&clock()), RequireAcr::level("pwd"));
    assert_eq!(call(&service, bearer(&hs_token(&claims))).await.status, 401);
}

#[tokio::test]
async fn the_level_order_is_configurable() {
    let custom = JwtVerifier::builder()
        .key(
            stepup::VerifyingKey::hs256(HS_SECRET)
                .unwrap()
                .with_kid("hs"),
        )
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(Arc::new(clock()))
        .acr_levels(AcrLevels::new(["bronze", "silver", "gold"]))
        .build()
        .unwrap();
    let silver = protected(custom, RequireAcr::level("silver"));
    for (acr, expected) in [
        ("bronze", 401),
        ("silver", 200),
        ("gold", 200),
        ("mfa", 401),
    ] {
        let answer = call(&silver, bearer(&hs_token(&claims(acr)))).await;
        assert_eq!(answer.status, expected, "{acr}");
    }
}

#[tokio::test]
async fn the_challenge_is_exactly_rfc_9470_in_header_and_body() {
    let service = protected(
        verifier(&clock()),
        RequireMfa.max_age(Duration::from_secs(300)),
    );
    let answer = call(&service, bearer(&hs_token(&claims("pwd")))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"a stronger authentication level is required\", \
             acr_values=\"mfa\", max_age=300"
        )
    );
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        answer.json(),
        json!({
            "error": "insufficient_user_authentication",
            "error_description": "a stronger authentication level is required",
            "acr_values": "mfa",
            "max_age": 300,
        })
    );

    let without_max_age = protected(verifier(&clock()), RequireMfa.into());
    let answer = call(&without_max_age, bearer(&hs_token(&claims("pwd")))).await;
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"a stronger authentication level is required\", \
             acr_values=\"mfa\""
        )
    );
    assert_eq!(
        answer.json(),
        json!({
            "error": "insufficient_user_authentication",
            "error_description": "a stronger authentication level is required",
            "acr_values": "mfa",
        })
    );
}

#[tokio::test]
async fn the_challenge_echoes_nothing_the_token_says() {
    let marker = "MARKERd1e2f3";
    let service = protected(
        verifier(&clock()),
        RequireMfa.max_age(Duration::from_secs(300)),
    );
    let mut claims = claims(marker);
    claims["amr"] = json!([marker]);
    claims["sub"] = json!(marker);
    let answer = call(&service, bearer(&hs_token(&claims))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let body = answer.json();
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["acr_values", "error", "error_description", "max_age"]
    );
    assert_eq!(body["acr_values"], "mfa");
    assert!(!answer.body.contains(marker), "{}", answer.body);
    assert!(!answer.www_authenticate.unwrap().contains(marker));
}

#[tokio::test]
async fn no_context_gets_a_bare_bearer_challenge() {
    let service = ServiceBuilder::new()
        .layer(RequireMfa)
        .service(service_fn(echo));
    call(&service, None).await.assert_missing_token();
}

#[tokio::test]
async fn max_age_is_met_at_the_boundary_and_missed_one_second_later() {
    let clock = clock();
    let service = protected(
        verifier(&clock),
        RequireMfa.max_age(Duration::from_secs(300)),
    );
    let token = token_with("mfa", &["pwd", "otp"], Some(T0));

    clock.advance(Duration::from_secs(300));
    assert_eq!(call(&service, bearer(&token)).await.status, 200);

    clock.advance(Duration::from_secs(1));
    let answer = call(&service, bearer(&token)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"a more recent authentication is required\", \
             acr_values=\"mfa\", max_age=300"
        )
    );
}

#[tokio::test]
async fn an_auth_time_in_the_future_never_counts_as_fresh() {
    let clock = clock();
    let service = protected(
        verifier(&clock),
        RequireMfa.max_age(Duration::from_secs(300)),
    );
    // An hour ahead: its age would be "zero", fresher than any max_age.
    for ahead in [31, 3600, 10 * 365 * 24 * 3600] {
        let token = token_with("mfa", &["pwd", "otp"], Some(T0 + ahead));
        call(&service, bearer(&token))
            .await
            .assert_invalid_token("the token's authentication time is in the future");
    }
    // Within the verifier's leeway it is clock skew, and fresh.
    let skewed = token_with("mfa", &["pwd", "otp"], Some(T0 + 30));
    assert_eq!(call(&service, bearer(&skewed)).await.status, 200);
    let context = verifier(&clock).verify(&skewed).unwrap();
    assert_eq!(context.leeway(), Duration::from_secs(30));

    // A context that no verifier vouched for is judged the same way.
    let requirement = AcrRequirement::mfa().max_age(Duration::from_secs(300));
    let ahead = |leeway| {
        AuthContext::builder("user-1")
            .acr("mfa")
            .auth_time(T0 + 3600)
            .verified_at(T0)
            .leeway(leeway)
            .build()
    };
    for leeway in [Duration::ZERO, Duration::from_secs(300)] {
        assert_eq!(
            requirement.check(&ahead(leeway)).unwrap_err().reason,
            StepUpReason::TooOld
        );
    }
}

#[tokio::test]
async fn max_age_without_auth_time_fails_closed() {
    let service = protected(
        verifier(&clock()),
        RequireMfa.max_age(Duration::from_secs(300)),
    );
    let token = token_with("phr", &["pwd", "hwk"], None);
    assert_eq!(call(&service, bearer(&token)).await.status, 401);
    // Without a max_age, auth_time is not needed.
    let lenient = protected(verifier(&clock()), RequireMfa.into());
    assert_eq!(call(&lenient, bearer(&token)).await.status, 200);
}

#[tokio::test]
async fn required_amr_values_must_all_be_present() {
    let service = protected(
        verifier(&clock()),
        RequireAcr::level("mfa").amr(["hwk", "user"]),
    );
    let otp = token_with("mfa", &["pwd", "otp"], Some(T0));
    let answer = call(&service, bearer(&otp)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.json()["error_description"],
        "a different authentication method is required"
    );
    let only_hwk = token_with("mfa", &["hwk"], Some(T0));
    assert_eq!(call(&service, bearer(&only_hwk)).await.status, 401);
    let key = token_with("mfa", &["user", "hwk"], Some(T0));
    assert_eq!(call(&service, bearer(&key)).await.status, 200);
}

#[test]
fn builders_compose_one_requirement() {
    let layer = RequireAcr::level("phr")
        .max_age(Duration::from_secs(60))
        .amr(["hwk"]);
    let requirement = layer.requirement();
    assert_eq!(requirement.required_level(), "phr");
    assert_eq!(
        requirement.required_max_age(),
        Some(Duration::from_secs(60))
    );
    assert_eq!(requirement.required_amr(), ["hwk"]);
    let mfa = RequireMfa.max_age(Duration::from_secs(5));
    assert_eq!(mfa.requirement().required_level(), "mfa");
}

// ---- axum ----

async fn whoami(caller: AuthContext) -> String {
    format!("hello {}", caller.subject())
}

async fn maybe(caller: Option<AuthContext>) -> String {
    caller.map_or_else(
        || "anonymous".to_owned(),
        |caller| caller.subject().to_owned(),
    )
}

fn axum_app() -> Router {
    let admin = Router::new()
        .route("/users", get(whoami))
        .route_layer(RequireAcr::level("phr"));
    Router::new()
        .route("/account", delete(whoami).layer(RequireMfa).get(whoami))
        .route("/settings", get(whoami))
        .route_layer(RequireAcr::level("pwd"))
        .route("/maybe", get(maybe))
        .nest("/admin", admin)
        .layer(authenticate(verifier(&clock())))
}

async fn request(app: &Router, method: &str, path: &str, acr: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(acr) = acr {
        request = request.header(
            "authorization",
            format!("Bearer {}", hs_token(&claims(acr))),
        );
    }
    let response = app
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    Answer::read(response).await
}

#[tokio::test]
async fn on_a_method_router_only_that_method_is_protected() {
    let app = axum_app();
    assert_eq!(
        request(&app, "DELETE", "/account", Some("pwd"))
            .await
            .status,
        401
    );
    assert_eq!(
        request(&app, "DELETE", "/account", Some("mfa")).await.body,
        "hello user-1"
    );
    assert_eq!(
        request(&app, "GET", "/account", Some("pwd")).await.status,
        200
    );
}

#[tokio::test]
async fn route_layer_protects_the_routes_above_it() {
    let app = axum_app();
    request(&app, "GET", "/settings", None)
        .await
        .assert_missing_token();
    assert_eq!(
        request(&app, "GET", "/settings", Some("pwd")).await.status,
        200
    );
    // Routes added after the route_layer are not covered, and unknown paths stay 404.
    assert_eq!(request(&app, "GET", "/maybe", None).await.body, "anonymous");
    assert_eq!(
        request(&app, "GET", "/nowhere", Some("pwd")).await.status,
        404
    );
}

#[tokio::test]
async fn nested_routers_keep_their_requirement() {
    let app = axum_app();
    let answer = request(&app, "GET", "/admin/users", Some("mfa")).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["acr_values"], "phr");
    assert_eq!(
        request(&app, "GET", "/admin/users", Some("phr"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn extractors_read_the_context_or_reject_without_one() {
    let app = Router::new()
        .route("/me", get(whoami))
        .route("/maybe", get(maybe))
        .layer(authenticate(verifier(&clock())));
    request(&app, "GET", "/me", None)
        .await
        .assert_missing_token();
    assert_eq!(
        request(&app, "GET", "/me", Some("pwd")).await.body,
        "hello user-1"
    );
    assert_eq!(request(&app, "GET", "/maybe", None).await.body, "anonymous");
    assert_eq!(
        request(&app, "GET", "/maybe", Some("pwd")).await.body,
        "user-1"
    );
    // An invalid token is refused before any handler, even an optional one.
    let answer = app
        .clone()
        .oneshot(
            Request::get("/maybe")
                .header("authorization", "Bearer not.a.token")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    Answer::read(answer)
        .await
        .assert_invalid_token("the bearer token is malformed");
}
