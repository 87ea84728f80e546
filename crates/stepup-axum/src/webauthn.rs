//! Passkeys and security keys (WebAuthn): registration and management for the signed-in user,
//! the assertion challenge of an MFA step, and passwordless login. Options go out as browsers'
//! `parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` read them, credentials come
//! back as `PublicKeyCredential.toJSON()` gives them.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stepup_core::acr::level;
use stepup_mfa::webauthn::{PublicKeyCredential, RegisterPublicKeyCredential};
use stepup_mfa::{Authentication, MfaError};
use stepup_tower::ClientAddr;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::login::limited_by_address;
use crate::oauth::{self, OAuthParams};
use crate::respond::{finish, no_store};
use crate::stepup::StepUp;

/// `POST /api/mfa/webauthn/register/start`: creation options and the `registration_token`.
pub(crate) async fn register_start(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    stepup.check_enrollment(&caller).await?;
    let user = caller.subject();
    let name = stepup
        .inner
        .passwords
        .account_label(user)
        .await
        .unwrap_or_else(|| user.to_owned());
    let started = stepup
        .mfa()
        .begin_webauthn_registration(user, &name, &name)
        .await?;
    Ok(no_store(Json(started).into_response()))
}

#[derive(Deserialize)]
pub(crate) struct RegisterFinish {
    registration_token: String,
    credential: RegisterPublicKeyCredential,
    label: Option<String>,
}

/// `POST /api/mfa/webauthn/register/finish`: `{credential_id}`, plus the backup codes (shown
/// once) when this is the first factor.
pub(crate) async fn register_finish(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<RegisterFinish>,
) -> Result<Response, ApiError> {
    stepup.check_enrollment(&caller).await?;
    let enrolled = stepup
        .mfa()
        .finish_webauthn_registration(
            caller.subject(),
            &body.registration_token,
            &body.credential,
            body.label.as_deref(),
        )
        .await
        .map_err(|error| match error {
            // Enrolling is not a login: a credential that does not verify is bad input.
            MfaError::InvalidCode => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_credential",
                "the credential does not verify for this registration",
            ),
            other => other.into(),
        })?;
    let mut answer = json!({ "credential_id": enrolled.credential_id });
    if !enrolled.backup_codes.is_empty() {
        answer["backup_codes"] = json!(enrolled.backup_codes);
    }
    Ok(no_store(Json(answer).into_response()))
}

/// `GET /api/mfa/webauthn/credentials`.
pub(crate) async fn list(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let credentials = stepup.mfa().webauthn_credentials(caller.subject()).await?;
    Ok(Json(json!({ "credentials": credentials })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Rename {
    label: Option<String>,
}

/// `PATCH /api/mfa/webauthn/credentials/{id}` `{label}` (`null` clears it).
pub(crate) async fn rename(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Rename>,
) -> Result<Response, ApiError> {
    if !stepup
        .mfa()
        .rename_webauthn_credential(caller.subject(), &id, body.label.as_deref())
        .await?
    {
        return Err(not_found());
    }
    Ok(Json(json!({ "success": true })).into_response())
}

/// `DELETE /api/mfa/webauthn/credentials/{id}` (fresh MFA).
pub(crate) async fn remove(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !stepup
        .mfa()
        .remove_webauthn_credential(caller.subject(), &id)
        .await?
    {
        return Err(not_found());
    }
    Ok(Json(json!({ "success": true })).into_response())
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such passkey or security key",
    )
}

#[derive(Deserialize)]
pub(crate) struct MfaStart {
    mfa_token: String,
}

/// `POST /oauth/authorize/mfa/webauthn/start` `{mfa_token}`: request options for the user's
/// credentials; answer with `POST /oauth/authorize/mfa` `{mfa_token, method: "webauthn",
/// credential}`.
pub(crate) async fn mfa_start(
    State(stepup): State<StepUp>,
    client: Option<Extension<ClientAddr>>,
    JsonBody(body): JsonBody<MfaStart>,
) -> Result<Response, ApiError> {
    limited_by_address(&stepup, client, async {
        let options = stepup
            .mfa()
            .begin_webauthn_challenge(&body.mfa_token)
            .await?;
        Ok(no_store(Json(options).into_response()))
    })
    .await
}

/// `POST /oauth/authorize/passkey/start`: request options for any passkey of this site, and
/// the `passkey_token` to send back.
pub(crate) async fn passkey_start(State(stepup): State<StepUp>) -> Result<Response, ApiError> {
    let started = stepup.mfa().begin_passkey_login().await?;
    Ok(no_store(Json(started).into_response()))
}

#[derive(Deserialize)]
pub(crate) struct PasskeyFinish {
    passkey_token: String,
    credential: PublicKeyCredential,
    #[serde(flatten)]
    oauth: OAuthParams,
}

/// `POST /oauth/authorize/passkey` `{passkey_token, credential, …OAuth parameters}`: a token at
/// `acr` `phr` (or a `302` with a code). No password, so `amr` is `["hwk"]`.
pub(crate) async fn passkey_finish(
    State(stepup): State<StepUp>,
    client: Option<Extension<ClientAddr>>,
    JsonBody(body): JsonBody<PasskeyFinish>,
) -> Result<Response, ApiError> {
    let pending = oauth::validate(&stepup.inner.clients, &body.oauth)?;
    limited_by_address(&stepup, client, async {
        let signed_in = stepup
            .mfa()
            .complete_passkey_login(&body.passkey_token, &body.credential)
            .await?;
        if !stepup
            .inner
            .passwords
            .account_exists(&signed_in.subject)
            .await?
        {
            return Err(MfaError::InvalidCode.into());
        }
        let authentication = Authentication {
            subject: signed_in.subject,
            acr: if signed_in.user_verified {
                level::PHR
            } else {
                level::MFA
            }
            .to_owned(),
            amr: signed_in.amr,
            auth_time: Some(stepup.now()),
        };
        finish(&stepup, pending, authentication, None).await
    })
    .await
}
