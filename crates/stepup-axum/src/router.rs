//! The drop-in routes assembled: which handler answers which path, under which layers. Handlers
//! never import each other: router → handlers → `respond`, `error`, `json`, `path`, `caller`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};
use stepup_tower::{PeerAddr, RequireMfa};

use crate::factors::{credential, kind, the_one};
use crate::path::Path;
use crate::stepup::StepUp;
use crate::{authorize, devices, events, factors, login, metadata, oauth, recovery};

impl StepUp {
    /// The drop-in routes (see the [crate](crate) docs). Mount with `.merge(stepup.routes())`
    /// under `.layer(stepup.authenticate())`, and serve with the peer address
    /// (`into_make_service_with_connect_info::<SocketAddr>()`): the per-address limits read it.
    pub fn routes(&self) -> Router {
        router(self.clone())
    }
}

fn router(stepup: StepUp) -> Router {
    build(stepup).0
}

/// The routes as served: each `(method, path)` the router answers.
pub(crate) fn served(stepup: &StepUp) -> Vec<(Method, &'static str)> {
    build(stepup.clone()).1
}

/// Routes recorded as they are added, so that what is served can be listed (and held against
/// the OpenAPI document).
struct Routes {
    router: Router<StepUp>,
    served: Vec<(Method, &'static str)>,
}

impl Routes {
    fn at(mut self, path: &'static str, methods: &[Method], handler: MethodRouter<StepUp>) -> Self {
        self.served
            .extend(methods.iter().map(|method| (method.clone(), path)));
        self.router = self.router.route(path, handler);
        self
    }
}

fn build(stepup: StepUp) -> (Router, Vec<(Method, &'static str)>) {
    let fresh = RequireMfa.max_age(stepup.fresh_mfa_max_age());
    let (max, window) = stepup.inner.request_ceiling;
    // A generous ceiling on all requests per address bounds the password hashing and the sends
    // one client can cause; failed logins have their own budget in the engine.
    let ceiling = |name| stepup.ceiling(name, max, window);
    let devices = stepup.remembered_devices();
    let routes = Routes {
        router: Router::new(),
        served: Vec::new(),
    }
    // The login.
    .at(
        "/oauth/authorize",
        &[Method::POST, Method::GET],
        post(login::authorize)
            .route_layer(devices.clone())
            .route_layer(ceiling("authorize"))
            .merge(get(authorize::authorize).route_layer(ceiling("authorize_page"))),
    )
    // The authorization server's sign-in page, its session, and its documents.
    .at(
        "/oauth/authorize/session",
        &[Method::POST],
        post(authorize::session_step).route_layer(ceiling("authorize_page")),
    )
    .at(
        "/oauth/assets/{name}",
        &[Method::GET],
        get(authorize::asset),
    )
    .at(
        "/.well-known/oauth-authorization-server",
        &[Method::GET],
        get(metadata::authorization_server),
    )
    .at(
        "/.well-known/jwks.json",
        &[Method::GET],
        get(metadata::jwks),
    )
    .at(
        "/oauth/register",
        &[Method::POST],
        post(oauth::register).route_layer(ceiling("register_client")),
    )
    .at(
        "/oauth/revoke",
        &[Method::POST],
        post(oauth::revoke).route_layer(ceiling("token")),
    )
    .at(
        "/oauth/authorize/mfa",
        &[Method::POST],
        post(login::authorize_mfa).route_layer(ceiling("authorize_mfa")),
    )
    .at(
        "/oauth/authorize/mfa/{kind}/prepare",
        &[Method::POST],
        post(login::prepare).route_layer(ceiling("authorize_mfa")),
    )
    .at(
        "/oauth/authorize/mfa/webauthn/start",
        &[Method::POST],
        post(|s, c, b| login::prepare_kind(s, "webauthn", c, b))
            .route_layer(ceiling("authorize_mfa")),
    )
    .at(
        "/oauth/authorize/mfa/sms/send",
        &[Method::POST],
        post(|s, c, b| login::prepare_kind(s, "sms", c, b)).route_layer(ceiling("authorize_mfa")),
    )
    .at(
        "/oauth/authorize/passkey/start",
        &[Method::POST],
        post(login::passkey_start).route_layer(ceiling("passkey")),
    )
    .at(
        "/oauth/authorize/passkey",
        &[Method::POST],
        post(login::passkey_finish).route_layer(ceiling("passkey")),
    )
    .at(
        "/oauth/token",
        &[Method::POST],
        post(oauth::token).route_layer(ceiling("token")),
    )
    // Recovery.
    .at(
        "/api/mfa/recovery/request",
        &[Method::POST],
        post(recovery::request).route_layer(ceiling("recovery")),
    )
    .at(
        "/api/mfa/recovery/confirm",
        &[Method::POST],
        post(recovery::confirm).route_layer(ceiling("recovery")),
    )
    // Factors, the same routes for every kind.
    .at("/api/mfa/factors", &[Method::GET], get(factors::list))
    .at(
        "/api/mfa/factors/{kind}",
        &[Method::POST],
        post(factors::start).route_layer(ceiling("enroll")),
    )
    .at(
        "/api/mfa/factors/{kind}/confirm",
        &[Method::POST],
        post(factors::confirm),
    )
    .at(
        "/api/mfa/factors/{kind}/{id}",
        &[Method::PATCH, Method::DELETE],
        patch(factors::rename).merge(delete(factors::remove).route_layer(fresh.clone())),
    )
    .at(
        "/api/mfa/backup-codes/regenerate",
        &[Method::POST],
        post(factors::regenerate_backup_codes).route_layer(fresh.clone()),
    )
    // The earlier per-kind paths: the routes above with the kind fixed, under the same layers.
    .at(
        "/api/mfa/setup",
        &[Method::POST],
        post(|s, c, a, b| factors::start(s, kind("totp"), c, a, b)).route_layer(ceiling("enroll")),
    )
    .at(
        "/api/mfa/verify-setup",
        &[Method::POST],
        post(|s, c, a, b| factors::confirm(s, kind("totp"), c, a, b)),
    )
    .at(
        "/api/mfa/totp",
        &[Method::DELETE],
        delete(|s, c| factors::remove(s, the_one("totp"), c)).route_layer(fresh.clone()),
    )
    .at(
        "/api/mfa/sms/enroll",
        &[Method::POST],
        post(|s, c, a, b| factors::start(s, kind("sms"), c, a, b)).route_layer(ceiling("enroll")),
    )
    .at(
        "/api/mfa/sms/verify",
        &[Method::POST],
        post(|s, c, a, b| factors::confirm(s, kind("sms"), c, a, b)),
    )
    .at(
        "/api/mfa/sms",
        &[Method::DELETE],
        delete(|s, c| factors::remove(s, the_one("sms"), c)).route_layer(fresh.clone()),
    )
    .at(
        "/api/mfa/webauthn/register/start",
        &[Method::POST],
        post(|s, c, a, b| factors::start(s, kind("webauthn"), c, a, b))
            .route_layer(ceiling("enroll")),
    )
    .at(
        "/api/mfa/webauthn/register/finish",
        &[Method::POST],
        post(|s, c, a, b| factors::confirm(s, kind("webauthn"), c, a, b)),
    )
    .at(
        "/api/mfa/webauthn/credentials",
        &[Method::GET],
        get(factors::webauthn_list),
    )
    .at(
        "/api/mfa/webauthn/credentials/{id}",
        &[Method::PATCH, Method::DELETE],
        patch(|s, Path(id): Path<String>, c, b| {
            factors::rename(s, credential("webauthn", id), c, b)
        })
        .merge(
            delete(|s, Path(id): Path<String>, c| {
                factors::remove(s, credential("webauthn", id), c)
            })
            .route_layer(fresh),
        ),
    )
    // Remembered devices and the audit trail.
    .at(
        "/api/mfa/devices",
        &[Method::GET, Method::DELETE],
        get(devices::list)
            .route_layer(devices)
            .delete(devices::revoke_all),
    )
    .at(
        "/api/mfa/devices/{id}",
        &[Method::DELETE],
        delete(devices::revoke),
    )
    .at("/api/mfa/events", &[Method::GET], get(events::list));
    let router = routes
        .router
        .with_state(stepup.clone())
        // Every route knows its client's address: the engine's per-address limits read it.
        .layer(stepup.client_addresses())
        .layer(axum::middleware::map_request(peer_from_connect_info));
    (router, routes.served)
}

/// Middleware (for `axum::middleware::map_request`): axum keeps the TCP peer in `ConnectInfo`,
/// the client-address resolution of `stepup-tower` reads `PeerAddr`. Serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub async fn peer_from_connect_info(mut request: axum::extract::Request) -> axum::extract::Request {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    if let Some(peer) = peer {
        request.extensions_mut().insert(PeerAddr(peer));
    }
    request
}
