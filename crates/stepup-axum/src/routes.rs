//! The drop-in handlers. Each maps the engine's answer onto SPEC §2's contract.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use stepup_core::AuthContext;
use stepup_core::acr::{amr, level};
use stepup_mfa::{MfaError, Proof};
use stepup_tower::RequireMfa;

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Path};
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE, USER_AGENT};
use stepup_tower::{ClientAddr, PeerAddr, RateLimitLayer, ResolveClientAddrLayer};

use crate::devices::{self, RememberedDevicesLayer, TrustedDevice};
use crate::json::{ApiError, JsonBody};
use crate::oauth::{self, GrantParts};
use crate::stepup::StepUp;

pub(crate) fn router(stepup: StepUp) -> Router {
    let fresh = RequireMfa.max_age(stepup.fresh_mfa_max_age());
    let inner = &stepup.inner;
    let (max, window) = inner.address_limit;
    let counters = stepup.mfa().ephemeral_store().clone();
    let limit = |name| RateLimitLayer::new(counters.clone(), name).with_limit(max, window);
    let devices = RememberedDevicesLayer::new(inner.devices.clone());
    // The login endpoints: limited per client address, whatever the user or outcome.
    let login = Router::new()
        .route(
            "/oauth/authorize",
            post(authorize)
                .layer::<_, Infallible>(devices.clone())
                .layer::<_, Infallible>(limit("authorize")),
        )
        .route(
            "/oauth/authorize/mfa",
            post(authorize_mfa).layer(limit("authorize_mfa")),
        )
        .route("/oauth/token", post(oauth::token).layer(limit("token")))
        .layer(ResolveClientAddrLayer::new(inner.trusted_proxies.clone()))
        .layer(axum::middleware::map_request(peer_from_connect_info));
    Router::new()
        .merge(login)
        .route("/api/mfa/setup", post(setup))
        .route("/api/mfa/verify-setup", post(verify_setup))
        .route("/api/mfa/factors", get(factors))
        .route(
            "/api/mfa/backup-codes/regenerate",
            post(regenerate_backup_codes).layer(fresh.clone()),
        )
        .route("/api/mfa/totp", delete(remove_totp).layer(fresh))
        .route(
            "/api/mfa/devices",
            get(list_devices)
                .layer::<_, Infallible>(devices)
                .delete(revoke_devices),
        )
        .route("/api/mfa/devices/{id}", delete(revoke_device))
        .route("/api/mfa/events", get(events))
        .with_state(stepup)
}

/// axum keeps the TCP peer in `ConnectInfo`; the address resolution reads `PeerAddr`.
async fn peer_from_connect_info(mut request: axum::extract::Request) -> axum::extract::Request {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    if let Some(peer) = peer {
        request.extensions_mut().insert(PeerAddr(peer));
    }
    request
}

#[derive(Deserialize)]
struct AuthorizeRequest {
    username: Option<String>,
    password: Option<String>,
    acr_values: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `POST /oauth/authorize`: the first factor (a password, or for a signed-in user asking for
/// `acr_values=mfa`, their current token), then a token, a `302` with a code, or the MFA challenge.
/// An enrolled user gets nothing but the challenge on every path (SPEC §3 invariant 8).
async fn authorize(
    State(stepup): State<StepUp>,
    caller: Option<AuthContext>,
    device: Option<Extension<TrustedDevice>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<AuthorizeRequest>,
) -> Result<Response, ApiError> {
    let pending = oauth::validate(
        &stepup.inner.clients,
        request.client_id.as_deref(),
        request.redirect_uri.as_deref(),
        request.state.as_deref(),
        request.code_challenge.as_deref(),
        request.code_challenge_method.as_deref(),
    )?;
    let context = match &pending {
        Some(pending) => Some(serde_json::to_value(pending).map_err(|_| unavailable())?),
        None => None,
    };
    let mfa = stepup.mfa();

    match (&request.username, &request.password, &caller) {
        (Some(username), Some(password), _) => {
            if username.len() > 320 || password.len() > 1024 {
                return Err(ApiError::invalid_request("username or password too long"));
            }
            let user = stepup
                .inner
                .passwords
                .check(username, password)
                .await
                .map_err(|_| unavailable())?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid_grant",
                        "invalid username or password",
                    )
                })?;
            if mfa.is_enrolled(&user).await.map_err(mfa_error)? {
                if let Some(Extension(device)) = device.filter(|device| device.user == user) {
                    return remembered_login(&stepup, device, pending, &headers, client).await;
                }
                let challenge = mfa
                    .start_challenge(&user, &[amr::PWD], context)
                    .await
                    .map_err(mfa_error)?;
                return Ok(Json(challenge).into_response());
            }
            let grant = GrantParts {
                subject: user,
                acr: level::PWD,
                amr: vec![amr::PWD.to_owned()],
                auth_time: Some(stepup.now()),
            };
            oauth::finish(&stepup, pending, grant, None).await
        }
        (None, None, Some(caller)) if asks_for_mfa(request.acr_values.as_deref()) => {
            // Step-up of a signed-in user: the current token stands for the first factor.
            let user = caller.subject();
            if !mfa.is_enrolled(user).await.map_err(mfa_error)? {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "mfa_not_enrolled",
                    "enroll a second factor first (POST /api/mfa/setup)",
                ));
            }
            // The new token's `amr` keeps what the current token says was used (and nothing it
            // does not say); the MFA step adds `otp`.
            let first: Vec<&str> = caller
                .amr()
                .iter()
                .map(String::as_str)
                .filter(|method| *method != amr::OTP)
                .collect();
            let challenge = mfa
                .start_challenge(user, &first, context)
                .await
                .map_err(mfa_error)?;
            Ok(Json(challenge).into_response())
        }
        (None, None, None) if request.acr_values.is_some() => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "step-up needs the current bearer token",
        )),
        _ => Err(ApiError::invalid_request(
            "send username and password, or a bearer token with acr_values=mfa",
        )),
    }
}

/// A password login on a remembered device of the same user: no MFA step. See
/// [`devices`](crate::devices) for the `acr`/`amr`/`auth_time` it gets and why.
async fn remembered_login(
    stepup: &StepUp,
    device: TrustedDevice,
    pending: Option<oauth::PendingAuthorization>,
    headers: &HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Result<Response, ApiError> {
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|agent| agent.to_str().ok());
    let address = client.map(|Extension(ClientAddr(address))| address.to_string());
    stepup
        .inner
        .devices
        .touch_device(&device.id, stepup.now(), address.as_deref(), user_agent)
        .await
        .map_err(|_| unavailable())?;
    stepup
        .mfa()
        .audit()
        .record(
            &device.user,
            "device_used",
            json!({ "device_id": device.id }),
        )
        .await;
    let grant = GrantParts {
        subject: device.user,
        acr: level::MFA,
        amr: vec![amr::PWD.to_owned()],
        auth_time: None,
    };
    oauth::finish(stepup, pending, grant, None).await
}

/// Whether `acr_values` asks for more than a password.
fn asks_for_mfa(acr_values: Option<&str>) -> bool {
    acr_values.is_some_and(|values| {
        values
            .split(' ')
            .any(|value| value == level::MFA || value == level::PHR)
    })
}

#[derive(Deserialize)]
struct MfaLogin {
    mfa_token: String,
    code: Option<String>,
    backup_code: Option<String>,
    #[serde(default)]
    remember_device: bool,
}

/// The second step: `mfa_token` plus a TOTP code or a backup code → a token with `acr` `mfa`
/// (or, for a pending authorization, a `302` with a code).
async fn authorize_mfa(
    State(stepup): State<StepUp>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    JsonBody(login): JsonBody<MfaLogin>,
) -> Result<Response, ApiError> {
    let proof = match (&login.code, &login.backup_code) {
        (Some(code), None) => Proof::Totp(code),
        (None, Some(code)) => Proof::BackupCode(code),
        _ => {
            return Err(ApiError::invalid_request(
                "send exactly one of code and backup_code",
            ));
        }
    };
    let completed = stepup
        .mfa()
        .complete_challenge(&login.mfa_token, proof)
        .await
        .map_err(mfa_error)?;
    let pending = completed
        .context
        .and_then(|context| serde_json::from_value(context).ok());
    let cookie = if login.remember_device {
        let address = client.map(|Extension(ClientAddr(address))| address.to_string());
        let (device, cookie) = devices::remember(
            &completed.subject,
            stepup.now(),
            stepup.inner.remember_for,
            &headers,
            address,
        )
        .ok_or_else(unavailable)?;
        let device_id = device.id.clone();
        stepup
            .inner
            .devices
            .insert_device(device)
            .await
            .map_err(|_| unavailable())?;
        stepup
            .mfa()
            .audit()
            .record(
                &completed.subject,
                "device_remembered",
                json!({ "device_id": device_id }),
            )
            .await;
        Some(cookie)
    } else {
        None
    };
    let grant = GrantParts {
        subject: completed.subject,
        acr: level::MFA,
        amr: completed.amr,
        auth_time: Some(stepup.now()),
    };
    let mut response =
        oauth::finish(&stepup, pending, grant, completed.remaining_backup_codes).await?;
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

async fn setup(State(stepup): State<StepUp>, caller: AuthContext) -> Result<Response, ApiError> {
    let user = caller.subject();
    let label = stepup
        .inner
        .passwords
        .account_label(user)
        .await
        .unwrap_or_else(|| user.to_owned());
    let enrollment = stepup
        .mfa()
        .begin_totp_enrollment(user, &label)
        .await
        .map_err(mfa_error)?;
    Ok(Json(enrollment).into_response())
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}

async fn verify_setup(
    State(stepup): State<StepUp>,
    caller: AuthContext,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<Response, ApiError> {
    let codes = stepup
        .mfa()
        .confirm_totp_enrollment(caller.subject(), &body.code)
        .await
        .map_err(|error| match error {
            MfaError::InvalidCode => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_mfa_code",
                "the code is invalid",
            ),
            other => mfa_error(other),
        })?;
    Ok(Json(json!({ "success": true, "enabled": true, "backup_codes": codes })).into_response())
}

async fn factors(State(stepup): State<StepUp>, caller: AuthContext) -> Result<Response, ApiError> {
    let summary = stepup
        .mfa()
        .factors(caller.subject())
        .await
        .map_err(mfa_error)?;
    Ok(Json(summary).into_response())
}

async fn regenerate_backup_codes(
    State(stepup): State<StepUp>,
    caller: AuthContext,
) -> Result<Response, ApiError> {
    let codes = stepup
        .mfa()
        .regenerate_backup_codes(caller.subject())
        .await
        .map_err(mfa_error)?;
    Ok(Json(json!({ "backup_codes": codes })).into_response())
}

async fn remove_totp(
    State(stepup): State<StepUp>,
    caller: AuthContext,
) -> Result<Response, ApiError> {
    let removed = stepup
        .mfa()
        .remove_totp(caller.subject())
        .await
        .map_err(mfa_error)?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_enrolled",
            "no authenticator app is enrolled",
        ));
    }
    Ok(Json(json!({ "success": true })).into_response())
}

async fn list_devices(
    State(stepup): State<StepUp>,
    caller: AuthContext,
    device: Option<Extension<TrustedDevice>>,
) -> Result<Response, ApiError> {
    let current = device.map(|Extension(device)| device.id);
    let devices = stepup
        .inner
        .devices
        .devices(caller.subject())
        .await
        .map_err(|_| unavailable())?;
    let devices: Vec<_> = devices
        .into_iter()
        .map(|device| {
            json!({
                "id": device.id,
                "created_at": device.created_at,
                "last_used_at": device.last_used_at,
                "expires_at": device.expires_at,
                "address": device.address,
                "user_agent": device.user_agent,
                "current": current.as_deref() == Some(device.id.as_str()),
            })
        })
        .collect();
    Ok(Json(json!({ "devices": devices })).into_response())
}

async fn revoke_device(
    State(stepup): State<StepUp>,
    caller: AuthContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let revoked = stepup
        .inner
        .devices
        .delete_device(caller.subject(), &id)
        .await
        .map_err(|_| unavailable())?;
    if !revoked {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such device",
        ));
    }
    stepup
        .mfa()
        .audit()
        .record(
            caller.subject(),
            "device_revoked",
            json!({ "device_id": id }),
        )
        .await;
    Ok(Json(json!({ "success": true })).into_response())
}

async fn revoke_devices(
    State(stepup): State<StepUp>,
    caller: AuthContext,
) -> Result<Response, ApiError> {
    let revoked = stepup
        .mfa()
        .revoke_devices(caller.subject())
        .await
        .map_err(mfa_error)?;
    Ok(Json(json!({ "success": true, "revoked": revoked })).into_response())
}

async fn events(State(stepup): State<StepUp>, caller: AuthContext) -> Result<Response, ApiError> {
    let events = stepup
        .mfa()
        .audit()
        .events(caller.subject(), 100)
        .await
        .map_err(|_| unavailable())?;
    let events: Vec<_> = events
        .into_iter()
        .map(|event| {
            let detail: serde_json::Value =
                serde_json::from_str(&event.detail).unwrap_or(serde_json::Value::Null);
            json!({ "kind": event.kind, "at": event.at, "detail": detail })
        })
        .collect();
    Ok(Json(json!({ "events": events })).into_response())
}

/// Signs a token for `grant` and answers it as the OAuth token response (audited).
pub(crate) async fn issue(
    stepup: &StepUp,
    grant: &GrantParts,
    via: &'static str,
    remaining_codes: Option<usize>,
) -> Result<Response, ApiError> {
    let token = stepup.issuer().issue(&grant.to_grant()).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not issue a token",
        )
    })?;
    stepup
        .mfa()
        .audit()
        .record(
            &grant.subject,
            "token_issued",
            json!({ "acr": grant.acr, "amr": grant.amr, "via": via }),
        )
        .await;
    let mut body = serde_json::to_value(token).map_err(|_| unavailable())?;
    if let Some(remaining) = remaining_codes {
        body["remaining_codes"] = remaining.into();
    }
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub(crate) fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the service cannot verify this now; try again shortly",
    )
}

/// One mapping from engine errors to HTTP, so every route answers alike.
fn mfa_error(error: MfaError) -> ApiError {
    match error {
        MfaError::InvalidCode => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_mfa_code",
            "the code is invalid",
        ),
        MfaError::InvalidMfaToken => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_mfa_token",
            "the mfa_token is invalid or expired; log in again",
        ),
        MfaError::NotEnrolled => ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_enrolled",
            "no authenticator app is enrolled",
        ),
        MfaError::AlreadyEnrolled => ApiError::new(
            StatusCode::CONFLICT,
            "already_enrolled",
            "an authenticator app is already enrolled; remove it first",
        ),
        MfaError::NoPendingEnrollment => ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_pending_enrollment",
            "start with POST /api/mfa/setup",
        ),
        MfaError::RateLimited { retry_after } => ApiError::too_many_requests(retry_after),
        MfaError::Unavailable(error) => {
            tracing::error!(%error, "store unavailable");
            unavailable()
        }
        other => {
            tracing::error!(error = %other, "internal error");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "an internal error occurred",
            )
        }
    }
}
