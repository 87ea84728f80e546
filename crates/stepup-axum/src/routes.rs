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
use crate::stepup::StepUp;

pub(crate) fn router(stepup: StepUp) -> Router {
    let fresh = RequireMfa.max_age(stepup.fresh_mfa_max_age());
    Router::new()
        .route("/oauth/authorize", post(authorize))
        .route("/oauth/authorize/mfa", post(authorize_mfa))
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
struct PasswordLogin {
    username: String,
    password: String,
}

/// Password first; then either a token (`acr` `pwd`) or, for an enrolled user, the MFA challenge.
async fn authorize(
    State(stepup): State<StepUp>,
    JsonBody(login): JsonBody<PasswordLogin>,
) -> Result<Response, ApiError> {
    if login.username.len() > 320 || login.password.len() > 1024 {
        return Err(ApiError::invalid_request("username or password too long"));
    }
    let user = stepup
        .inner
        .passwords
        .check(&login.username, &login.password)
        .await
        .map_err(|_| unavailable())?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "invalid username or password",
            )
        })?;
    let mfa = stepup.mfa();
    if mfa.is_enrolled(&user).await.map_err(mfa_error)? {
        let challenge = mfa
            .start_challenge(&user, &[amr::PWD])
            .await
            .map_err(mfa_error)?;
        return Ok(Json(challenge).into_response());
    }
    let grant = Grant::new(user).acr(level::PWD).amr([amr::PWD]);
    issue(&stepup, &grant, None)
}

#[derive(Deserialize)]
struct MfaLogin {
    mfa_token: String,
    code: Option<String>,
    backup_code: Option<String>,
}

/// The second step: `mfa_token` plus a TOTP code or a backup code → a token with `acr` `mfa`.
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
    let grant = Grant::new(completed.subject)
        .acr(level::MFA)
        .amr(completed.amr);
    issue(&stepup, &grant, completed.remaining_backup_codes)
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

fn issue(
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

fn unavailable() -> ApiError {
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
