//! Factor management for the signed-in user: TOTP enrollment and removal, the factor list,
//! backup-code regeneration. Answers that carry a secret are never cached.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stepup_mfa::MfaError;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::respond::no_store;
use crate::stepup::StepUp;

/// `POST /api/mfa/setup`: a pending TOTP enrollment (secret, URI, QR code).
pub(crate) async fn setup(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    stepup.check_enrollment(&caller).await?;
    let user = caller.subject();
    let label = stepup
        .inner
        .passwords
        .account_label(user)
        .await
        .unwrap_or_else(|| user.to_owned());
    let enrollment = stepup.mfa().begin_totp_enrollment(user, &label).await?;
    Ok(no_store(Json(enrollment).into_response()))
}

#[derive(Deserialize)]
pub(crate) struct CodeBody {
    code: String,
}

/// `POST /api/mfa/verify-setup`: confirms the enrollment; the backup codes, shown once.
pub(crate) async fn verify_setup(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<Response, ApiError> {
    stepup.check_enrollment(&caller).await?;
    let confirmed = stepup
        .mfa()
        .confirm_totp_enrollment(caller.subject(), &body.code)
        .await;
    enrollment_confirmed(confirmed)
}

/// The answer to a confirmed enrollment (TOTP, SMS): the backup codes, shown once (none when the
/// user had a factor already).
pub(crate) fn enrollment_confirmed(
    confirmed: Result<Vec<String>, MfaError>,
) -> Result<Response, ApiError> {
    let codes = confirmed.map_err(|error| match error {
        // Enrolling is not a login: a wrong code here is bad input.
        MfaError::InvalidCode => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_mfa_code",
            "the code is invalid",
        ),
        other => other.into(),
    })?;
    let body = json!({ "success": true, "enabled": true, "backup_codes": codes });
    Ok(no_store(Json(body).into_response()))
}

/// `GET /api/mfa/factors`: the caller's factors, without secrets.
pub(crate) async fn list(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let summary = stepup.mfa().factor_summary(caller.subject()).await?;
    Ok(Json(summary).into_response())
}

/// `POST /api/mfa/backup-codes/regenerate` (fresh MFA): a new set, shown once.
pub(crate) async fn regenerate_backup_codes(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let codes = stepup
        .mfa()
        .regenerate_backup_codes(caller.subject())
        .await?;
    Ok(no_store(
        Json(json!({ "backup_codes": codes })).into_response(),
    ))
}

/// `DELETE /api/mfa/totp` (fresh MFA).
pub(crate) async fn remove_totp(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    if !stepup.mfa().remove_totp(caller.subject()).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_enrolled",
            "no authenticator app is enrolled",
        ));
    }
    Ok(Json(json!({ "success": true })).into_response())
}
