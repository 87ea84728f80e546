//! Factor management for the signed-in user, the same for every kind (`totp`, `webauthn`,
//! `sms`, `email`, and any the application registers):
//!
//! - `POST /api/mfa/factors/{kind}`: start an enrollment (the body is the factor's: `{}` for
//!   TOTP, `{phone}` for SMS, `{}` or `{email}` for email);
//! - `POST /api/mfa/factors/{kind}/confirm`: finish it (`{code}`, or
//!   `{registration_token, credential, label?}` for WebAuthn): the backup codes, shown once, when
//!   it is the first factor;
//! - `PATCH /api/mfa/factors/{kind}/{id}` `{label}`, `DELETE /api/mfa/factors/{kind}/{id}`;
//! - `GET /api/mfa/factors`, `POST /api/mfa/backup-codes/regenerate`.
//!
//! The earlier per-kind paths (`/api/mfa/setup`, `/api/mfa/sms/enroll`,
//! `/api/mfa/webauthn/register/start`, …) are aliases of these. Answers that carry a secret are
//! never cached.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::caller::{Caller, Client};
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::path::Path;
use crate::respond::secret_json;
use crate::stepup::StepUp;

/// `POST /api/mfa/factors/{kind}`: a pending enrollment, and the factor's answer.
pub(crate) async fn start(
    State(stepup): State<StepUp>,
    Path(kind): Path<String>,
    caller: Caller,
    Client(client): Client,
    body: Bytes,
) -> Result<Response, ApiError> {
    stepup.check_enrollment(&caller).await?;
    // The body is optional: most kinds start from nothing.
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        stepup_mfa::factor::parse_json(&body)?
    };
    let answer = stepup
        .mfa()
        .start_enrollment(&caller.user, &kind, &input, &client)
        .await?;
    Ok(secret_json(answer))
}

/// `POST /api/mfa/factors/{kind}/confirm`: the factor active, the backup codes when first.
pub(crate) async fn confirm(
    State(stepup): State<StepUp>,
    Path(kind): Path<String>,
    caller: Caller,
    Client(client): Client,
    JsonBody(input): JsonBody<Value>,
) -> Result<Response, ApiError> {
    stepup.check_enrollment(&caller).await?;
    let enrolled = stepup
        .mfa()
        .finish_enrollment(&caller.user, &kind, &input, &client)
        .await?;
    Ok(secret_json(json!({
        "success": true,
        "enabled": true,
        "kind": enrolled.kind,
        "credential_id": enrolled.credential_id,
        "backup_codes": enrolled.backup_codes,
    })))
}

/// `DELETE /api/mfa/factors/{kind}/{id}` (fresh MFA).
pub(crate) async fn remove(
    State(stepup): State<StepUp>,
    Path((kind, id)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    if !stepup.mfa().remove_factor(&caller.user, &kind, &id).await? {
        return Err(ApiError::not_found("no such factor"));
    }
    Ok(Json(json!({ "success": true })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Rename {
    label: Option<String>,
}

/// `PATCH /api/mfa/factors/{kind}/{id}` `{label}` (`null` clears it).
pub(crate) async fn rename(
    State(stepup): State<StepUp>,
    Path((kind, id)): Path<(String, String)>,
    caller: Caller,
    JsonBody(body): JsonBody<Rename>,
) -> Result<Response, ApiError> {
    if !stepup
        .mfa()
        .rename_factor(&caller.user, &kind, &id, body.label.as_deref())
        .await?
    {
        return Err(ApiError::not_found("no such factor"));
    }
    Ok(Json(json!({ "success": true })).into_response())
}

/// `GET /api/mfa/factors`: the caller's factors, without secrets.
pub(crate) async fn list(
    State(stepup): State<StepUp>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let summary = stepup.mfa().factor_summary(&caller.user).await?;
    Ok(Json(summary).into_response())
}

/// `POST /api/mfa/backup-codes/regenerate` (fresh MFA): a new set, shown once.
pub(crate) async fn regenerate_backup_codes(
    State(stepup): State<StepUp>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let codes = stepup.mfa().regenerate_backup_codes(&caller.user).await?;
    Ok(secret_json(json!({ "backup_codes": codes })))
}

/// The earlier per-kind paths are the generic routes with the kind fixed (the router mounts them
/// under the same layers): `kind("totp")` stands for the `{kind}` of `/api/mfa/factors/{kind}`.
pub(crate) fn kind(kind: &str) -> Path<String> {
    Path(kind.to_owned())
}

/// The `{kind}/{id}` of `/api/mfa/factors/{kind}/{id}` for a fixed kind.
pub(crate) fn credential(kind: &str, id: String) -> Path<(String, String)> {
    Path((kind.to_owned(), id))
}

/// The `{kind}/{id}` of a kind a user holds one of, whose credential is named by its kind.
pub(crate) fn the_one(kind: &str) -> Path<(String, String)> {
    credential(kind, kind.to_owned())
}

/// `GET /api/mfa/webauthn/credentials`: `{credentials: […]}`, the active passkeys.
pub(crate) async fn webauthn_list(
    State(stepup): State<StepUp>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let summary = stepup.mfa().factor_summary(&caller.user).await?;
    let credentials: Vec<_> = summary
        .factors
        .into_iter()
        .filter(|factor| factor.kind == "webauthn" && factor.active)
        .collect();
    Ok(Json(json!({ "credentials": credentials })).into_response())
}
