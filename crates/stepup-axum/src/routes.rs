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
use stepup_core::token::Grant;
use stepup_mfa::{MfaError, Proof};
use stepup_tower::RequireMfa;

use crate::json::{ApiError, JsonBody};
use crate::oauth::{self, GrantParts};
use crate::stepup::StepUp;

pub(crate) fn router(stepup: StepUp) -> Router {
    let fresh = RequireMfa.max_age(stepup.fresh_mfa_max_age());
    Router::new()
        .route("/oauth/authorize", post(authorize))
        .route("/oauth/authorize/mfa", post(authorize_mfa))
        .route("/oauth/token", post(oauth::token))
        .route("/api/mfa/setup", post(setup))
        .route("/api/mfa/verify-setup", post(verify_setup))
        .route("/api/mfa/factors", get(factors))
        .route(
            "/api/mfa/backup-codes/regenerate",
            post(regenerate_backup_codes).layer(fresh.clone()),
        )
        .route("/api/mfa/totp", delete(remove_totp).layer(fresh))
        .with_state(stepup)
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
                auth_time: stepup.now(),
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
            let first: Vec<&str> = caller
                .amr()
                .iter()
                .map(String::as_str)
                .filter(|method| *method != amr::OTP)
                .collect();
            let first = if first.is_empty() {
                vec![amr::PWD]
            } else {
                first
            };
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
}

/// The second step: `mfa_token` plus a TOTP code or a backup code → a token with `acr` `mfa`
/// (or, for a pending authorization, a `302` with a code).
async fn authorize_mfa(
    State(stepup): State<StepUp>,
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
    let grant = GrantParts {
        subject: completed.subject,
        acr: level::MFA,
        amr: completed.amr,
        auth_time: stepup.now(),
    };
    oauth::finish(&stepup, pending, grant, completed.remaining_backup_codes).await
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

pub(crate) fn issue(
    stepup: &StepUp,
    grant: &Grant,
    remaining_codes: Option<usize>,
) -> Result<Response, ApiError> {
    let token = stepup.issuer().issue(grant).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not issue a token",
        )
    })?;
    tracing::info!(event = "token_issued", acr = token.acr.as_deref());
    let mut body = serde_json::to_value(token).map_err(|_| unavailable())?;
    if let Some(remaining) = remaining_codes {
        body["remaining_codes"] = remaining.into();
    }
    Ok(Json(body).into_response())
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
