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

/// The earlier paths, each one kind's generic route.
pub(crate) mod aliases {
    use super::*;

    /// `POST /api/mfa/setup`: a TOTP enrollment.
    pub(crate) async fn totp_setup(
        stepup: State<StepUp>,
        caller: Caller,
        client: Client,
    ) -> Result<Response, ApiError> {
        start(
            stepup,
            Path("totp".to_owned()),
            caller,
            client,
            Bytes::new(),
        )
        .await
    }

    /// `POST /api/mfa/verify-setup` `{code}`.
    pub(crate) async fn totp_confirm(
        stepup: State<StepUp>,
        caller: Caller,
        client: Client,
        body: JsonBody<Value>,
    ) -> Result<Response, ApiError> {
        confirm(stepup, Path("totp".to_owned()), caller, client, body).await
    }

    /// `DELETE /api/mfa/totp` (fresh MFA).
    pub(crate) async fn totp_remove(
        stepup: State<StepUp>,
        caller: Caller,
    ) -> Result<Response, ApiError> {
        remove(stepup, Path(("totp".to_owned(), "totp".to_owned())), caller).await
    }

    /// `POST /api/mfa/sms/enroll` `{phone}`.
    pub(crate) async fn sms_enroll(
        stepup: State<StepUp>,
        caller: Caller,
        client: Client,
        body: Bytes,
    ) -> Result<Response, ApiError> {
        start(stepup, Path("sms".to_owned()), caller, client, body).await
    }

    /// `POST /api/mfa/sms/verify` `{code}`.
    pub(crate) async fn sms_confirm(
        stepup: State<StepUp>,
        caller: Caller,
        client: Client,
        body: JsonBody<Value>,
    ) -> Result<Response, ApiError> {
        confirm(stepup, Path("sms".to_owned()), caller, client, body).await
    }

    /// `DELETE /api/mfa/sms` (fresh MFA).
    pub(crate) async fn sms_remove(
        stepup: State<StepUp>,
        caller: Caller,
    ) -> Result<Response, ApiError> {
        remove(stepup, Path(("sms".to_owned(), "sms".to_owned())), caller).await
    }

    /// `POST /api/mfa/webauthn/register/start`.
    pub(crate) async fn webauthn_start(
        stepup: State<StepUp>,
        caller: Caller,
        client: Client,
    ) -> Result<Response, ApiError> {
        start(
            stepup,
            Path("webauthn".to_owned()),
            caller,
            client,
            Bytes::new(),
        )
        .await
    }

    /// `POST /api/mfa/webauthn/register/finish` `{registration_token, credential, label?}`.
    pub(crate) async fn webauthn_confirm(
        stepup: State<StepUp>,
        caller: Caller,
        client: Client,
        body: JsonBody<Value>,
    ) -> Result<Response, ApiError> {
        confirm(stepup, Path("webauthn".to_owned()), caller, client, body).await
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

    /// `PATCH /api/mfa/webauthn/credentials/{id}` `{label}`.
    pub(crate) async fn webauthn_rename(
        stepup: State<StepUp>,
        Path(id): Path<String>,
        caller: Caller,
        body: JsonBody<Rename>,
    ) -> Result<Response, ApiError> {
        rename(stepup, Path(("webauthn".to_owned(), id)), caller, body).await
    }

    /// `DELETE /api/mfa/webauthn/credentials/{id}` (fresh MFA).
    pub(crate) async fn webauthn_remove(
        stepup: State<StepUp>,
        Path(id): Path<String>,
        caller: Caller,
    ) -> Result<Response, ApiError> {
        remove(stepup, Path(("webauthn".to_owned(), id)), caller).await
    }
}
