//! `GET /api/mfa/events`: the caller's audit trail.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::stepup::StepUp;

/// The caller's 100 most recent events, oldest first.
pub(crate) async fn list(
    State(stepup): State<StepUp>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let events: Vec<_> = stepup
        .mfa()
        .audit()
        .events(&caller.user, 100)
        .await?
        .into_iter()
        .map(|event| {
            let detail: serde_json::Value =
                serde_json::from_str(&event.detail).unwrap_or(serde_json::Value::Null);
            json!({ "kind": event.kind, "at": event.at, "detail": detail })
        })
        .collect();
    Ok(Json(json!({ "events": events })).into_response())
}
