//! The drop-in routes assembled: which handler answers which path, under which layers. Handlers
//! never import each other: router → handlers → `respond`, `error`, `json`, `path`, `caller`.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{delete, get, patch, post};
use stepup_tower::{PeerAddr, RequireMfa};

use crate::factors::aliases;
use crate::stepup::StepUp;
use crate::{devices, events, factors, login, oauth, recovery};

impl StepUp {
    /// The drop-in routes (see the [crate](crate) docs). Mount with `.merge(stepup.routes())`
    /// under `.layer(stepup.authenticate())`, and serve with the peer address
    /// (`into_make_service_with_connect_info::<SocketAddr>()`): the per-address limits read it.
    pub fn routes(&self) -> Router {
        router(self.clone())
    }
}

fn router(stepup: StepUp) -> Router {
    let fresh = RequireMfa.max_age(stepup.fresh_mfa_max_age());
    let (max, window) = stepup.inner.request_ceiling;
    // A generous ceiling on all requests per address bounds the password hashing and the sends
    // one client can cause; failed logins have their own budget in the engine.
    let ceiling = |name| stepup.ceiling(name, max, window);
    let devices = stepup.remembered_devices();
    Router::new()
        // The login.
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
            "/oauth/authorize/mfa/{kind}/prepare",
            post(login::prepare).layer(ceiling("authorize_mfa")),
        )
        .route(
            "/oauth/authorize/mfa/webauthn/start",
            post(|s, c, b| login::prepare_kind(s, "webauthn", c, b))
                .layer(ceiling("authorize_mfa")),
        )
        .route(
            "/oauth/authorize/mfa/sms/send",
            post(|s, c, b| login::prepare_kind(s, "sms", c, b)).layer(ceiling("authorize_mfa")),
        )
        .route(
            "/oauth/authorize/passkey/start",
            post(login::passkey_start).layer(ceiling("passkey")),
        )
        .route(
            "/oauth/authorize/passkey",
            post(login::passkey_finish).layer(ceiling("passkey")),
        )
        .route("/oauth/token", post(oauth::token).layer(ceiling("token")))
        // Recovery.
        .route(
            "/api/mfa/recovery/request",
            post(recovery::request).layer(ceiling("recovery")),
        )
        .route(
            "/api/mfa/recovery/confirm",
            post(recovery::confirm).layer(ceiling("recovery")),
        )
        // Factors, the same routes for every kind.
        .route("/api/mfa/factors", get(factors::list))
        .route(
            "/api/mfa/factors/{kind}",
            post(factors::start).layer(ceiling("enroll")),
        )
        .route("/api/mfa/factors/{kind}/confirm", post(factors::confirm))
        .route(
            "/api/mfa/factors/{kind}/{id}",
            patch(factors::rename).merge(delete(factors::remove).layer(fresh.clone())),
        )
        .route(
            "/api/mfa/backup-codes/regenerate",
            post(factors::regenerate_backup_codes).layer(fresh.clone()),
        )
        // The earlier per-kind paths, aliases of the routes above.
        .route("/api/mfa/setup", post(aliases::totp_setup))
        .route("/api/mfa/verify-setup", post(aliases::totp_confirm))
        .route(
            "/api/mfa/totp",
            delete(aliases::totp_remove).layer(fresh.clone()),
        )
        .route(
            "/api/mfa/sms/enroll",
            post(aliases::sms_enroll).layer(ceiling("enroll")),
        )
        .route("/api/mfa/sms/verify", post(aliases::sms_confirm))
        .route(
            "/api/mfa/sms",
            delete(aliases::sms_remove).layer(fresh.clone()),
        )
        .route(
            "/api/mfa/webauthn/register/start",
            post(aliases::webauthn_start),
        )
        .route(
            "/api/mfa/webauthn/register/finish",
            post(aliases::webauthn_confirm),
        )
        .route("/api/mfa/webauthn/credentials", get(aliases::webauthn_list))
        .route(
            "/api/mfa/webauthn/credentials/{id}",
            patch(aliases::webauthn_rename).merge(delete(aliases::webauthn_remove).layer(fresh)),
        )
        // Remembered devices and the audit trail.
        .route(
            "/api/mfa/devices",
            get(devices::list)
                .layer::<_, Infallible>(devices)
                .delete(devices::revoke_all),
        )
        .route("/api/mfa/devices/{id}", delete(devices::revoke))
        .route("/api/mfa/events", get(events::list))
        .with_state(stepup.clone())
        // Every route knows its client's address: the engine's per-address limits read it.
        .layer(stepup.client_addresses())
        .layer(axum::middleware::map_request(peer_from_connect_info))
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
