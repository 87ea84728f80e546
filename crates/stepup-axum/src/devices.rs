//! The signed-in user's remembered devices: list, revoke one, revoke all.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use stepup_core::policy::TrustedDevice;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::path::Path;
use crate::stepup::StepUp;

/// `GET /api/mfa/devices`: live devices, the current one marked.
pub(crate) async fn list(
    State(stepup): State<StepUp>,
    caller: Caller,
    device: Option<Extension<TrustedDevice>>,
) -> Result<Response, ApiError> {
    let current = device.map(|Extension(device)| device.id);
    let devices: Vec<_> = stepup
        .mfa()
        .devices(&caller.user)
        .await?
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

/// `DELETE /api/mfa/devices/{id}`.
pub(crate) async fn revoke(
    State(stepup): State<StepUp>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !stepup.mfa().revoke_device(&caller.user, &id).await? {
        return Err(ApiError::not_found("no such device"));
    }
    Ok(Json(json!({ "success": true })).into_response())
}

/// `DELETE /api/mfa/devices`.
pub(crate) async fn revoke_all(
    State(stepup): State<StepUp>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let revoked = stepup.mfa().revoke_devices(&caller.user).await?;
    Ok(Json(json!({ "success": true, "revoked": revoked })).into_response())
}
