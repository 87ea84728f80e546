//! The drop-in routes assembled: which handler answers which path, under which layers.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{delete, get, patch, post};
use stepup_tower::{
    PeerAddr, RateLimitLayer, RememberedDevicesLayer, RequireMfa, ResolveClientAddrLayer,
};

use crate::stepup::StepUp;
use crate::{devices, events, factors, login, oauth, recovery, sms, webauthn};

pub(crate) fn router(stepup: StepUp) -> Router {
    let fresh = RequireMfa.max_age(stepup.fresh_mfa_max_age());
    let inner = &stepup.inner;
    let (max, window) = inner.request_ceiling;
    let counters = stepup.mfa().stores().ephemeral.clone();
    // A generous ceiling on all requests per address bounds the password hashing one client can
    // cause; failed logins have their own budget in the engine.
    let ceiling = |name| RateLimitLayer::new(counters.clone(), name).with_limit(max, window);
    let devices = RememberedDevicesLayer::new(stepup.mfa().stores().devices.clone());
    let login = Router::new()
        .route(
            "/oauth/authorize",
            post(login::authorize)
                .layer::<_, Infallible>(devices.clone())
                .layer::<_, Infallible>(ceiling("authorize")),
        )
        .route(
            "/oauth/authorize/mfa",
            post(login::authorize_mfa).layer(ceiling("authorize_mfa")),
        )
        .route(
            "/oauth/authorize/mfa/webauthn/start",
            post(webauthn::mfa_start).layer(ceiling("authorize_mfa")),
        )
        .route(
            "/oauth/authorize/passkey/start",
            post(webauthn::passkey_start).layer(ceiling("passkey")),
        )
        .route(
            "/oauth/authorize/passkey",
            post(webauthn::passkey_finish).layer(ceiling("passkey")),
        )
        .route(
            "/oauth/authorize/mfa/sms/send",
            post(sms::send).layer(ceiling("authorize_mfa")),
        )
        // In this group for the client address its sends are counted against.
        .route(
            "/api/mfa/sms/enroll",
            post(sms::enroll).layer(ceiling("sms_enroll")),
        )
        .route("/oauth/token", post(oauth::token).layer(ceiling("token")))
        .route(
            "/api/mfa/recovery/request",
            post(recovery::request).layer(ceiling("recovery")),
        )
        .route(
            "/api/mfa/recovery/confirm",
            post(recovery::confirm).layer(ceiling("recovery")),
        )
        .layer(ResolveClientAddrLayer::new(inner.trusted_proxies.clone()))
        .layer(axum::middleware::map_request(peer_from_connect_info));
    Router::new()
        .merge(login)
        .route("/api/mfa/setup", post(factors::setup))
        .route("/api/mfa/verify-setup", post(factors::verify_setup))
        .route("/api/mfa/factors", get(factors::list))
        .route(
            "/api/mfa/backup-codes/regenerate",
            post(factors::regenerate_backup_codes).layer(fresh.clone()),
        )
        .route(
            "/api/mfa/totp",
            delete(factors::remove_totp).layer(fresh.clone()),
        )
        .route(
            "/api/mfa/webauthn/register/start",
            post(webauthn::register_start),
        )
        .route(
            "/api/mfa/webauthn/register/finish",
            post(webauthn::register_finish),
        )
        .route("/api/mfa/webauthn/credentials", get(webauthn::list))
        .route(
            "/api/mfa/webauthn/credentials/{id}",
            patch(webauthn::rename).merge(delete(webauthn::remove).layer(fresh)),
        )
        .route(
            "/api/mfa/devices",
            get(devices::list)
                .layer::<_, Infallible>(devices)
                .delete(devices::revoke_all),
        )
        .route("/api/mfa/devices/{id}", delete(devices::revoke))
        .route("/api/mfa/sms/verify", post(sms::verify))
        .route(
            "/api/mfa/sms",
            delete(sms::remove).layer(RequireMfa.max_age(stepup.fresh_mfa_max_age())),
        )
        .route("/api/mfa/events", get(events::list))
        .with_state(stepup)
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
