//! The login routes, parsing and answering only: the protocol is the engine's
//! ([`stepup_mfa::login`]).
//!
//! - `POST /oauth/authorize`: a password (or, for a signed-in user asking for `acr_values=mfa`,
//!   their current token), then a token, a `302` with a code, or the MFA challenge; with a
//!   bearer token and a `transaction_id`, the MFA step approving that one operation (it ends in
//!   a transaction grant, see [`stepup_mfa::transactions`]);
//! - `POST /oauth/authorize/mfa`: the `mfa_token` and a second factor (`method` names its kind;
//!   without it, `credential` means `webauthn`, `backup_code` a backup code, `code` TOTP);
//! - `POST /oauth/authorize/mfa/{kind}/prepare`: the step's challenge for that kind (an SMS or
//!   mail code sent, WebAuthn request options);
//! - `POST /oauth/authorize/passkey/start` and `POST /oauth/authorize/passkey`: passwordless
//!   login with a discoverable passkey.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use stepup_core::AuthContext;
use stepup_core::acr::level;
use stepup_core::policy::TrustedDevice;
use stepup_mfa::{LoginStep, PasswordLogin};

use crate::caller::Client;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::oauth::{self, OAuthParams};
use crate::path::Path;
use crate::respond::{conclude_with_session, no_store, secret_json};
use crate::session::session_of;
use crate::stepup::StepUp;

#[derive(Deserialize)]
pub(crate) struct AuthorizeRequest {
    username: Option<String>,
    password: Option<String>,
    acr_values: Option<String>,
    /// A transaction step-up: the `transaction_id` of `RequireTransaction`'s challenge.
    transaction_id: Option<String>,
    #[serde(flatten)]
    oauth: OAuthParams,
}

/// `POST /oauth/authorize`: a password, or a signed-in user's step-up.
pub(crate) async fn authorize(
    State(stepup): State<StepUp>,
    caller: Option<AuthContext>,
    device: Option<Extension<TrustedDevice>>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    JsonBody(request): JsonBody<AuthorizeRequest>,
) -> Result<Response, ApiError> {
    let pending = oauth::pending_of(&stepup, &request.oauth).await?;
    let old_session = session_of(&headers);
    let dpop_jkt = crate::dpop::proof_key(
        &stepup,
        caller.as_ref(),
        &headers,
        "POST",
        "/oauth/authorize",
    )
    .await?;
    let mfa = stepup.mfa();
    match (&request.username, &request.password, &caller) {
        (Some(username), Some(password), _) => {
            let login = PasswordLogin {
                username,
                password,
                device: device.as_ref().map(|Extension(device)| device),
                pending,
            };
            match mfa.sign_in(login, &client).await? {
                LoginStep::Authenticated(login) => {
                    conclude_with_session(
                        &stepup,
                        login,
                        old_session.as_deref(),
                        dpop_jkt.as_deref(),
                    )
                    .await
                }
                LoginStep::MfaRequired(challenge) => Ok(no_store(Json(challenge).into_response())),
                _ => Err(ApiError::server_error()),
            }
        }
        (None, None, Some(caller)) if request.transaction_id.is_some() => {
            let id = request.transaction_id.as_deref().unwrap_or_default();
            let (challenge, details) = mfa.start_transaction_step(caller, id).await?;
            let mut body = serde_json::to_value(challenge).map_err(|_| ApiError::server_error())?;
            body["authorization_details"] = details;
            Ok(no_store(Json(body).into_response()))
        }
        (None, None, Some(caller)) if asks_for_mfa(request.acr_values.as_deref()) => {
            let challenge = mfa.start_step_up(caller, pending).await?;
            Ok(no_store(Json(challenge).into_response()))
        }
        (None, None, None) if request.acr_values.is_some() => Err(ApiError::bearer_required()),
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

/// The MFA step's request: the token, what to do after, and the proof (every other field).
#[derive(Deserialize)]
pub(crate) struct MfaStep {
    mfa_token: String,
    method: Option<String>,
    #[serde(default)]
    remember_device: bool,
    #[serde(flatten)]
    proof: Map<String, Value>,
}

impl MfaStep {
    /// The factor kind the proof is for: `method`, or (the earlier shapes) `credential` for
    /// WebAuthn, `backup_code` for a backup code, `code` for TOTP.
    fn kind(&self) -> Result<String, ApiError> {
        if let Some(method) = &self.method {
            return Ok(method.clone());
        }
        let has = |field: &str| self.proof.contains_key(field);
        match (has("code"), has("backup_code"), has("credential")) {
            (true, false, false) => Ok("totp".to_owned()),
            (false, true, false) => Ok("backup_code".to_owned()),
            (false, false, true) => Ok("webauthn".to_owned()),
            _ => Err(ApiError::invalid_request(
                "send the mfa_token with a method and its proof, or exactly one of code, backup_code and credential",
            )),
        }
    }
}

/// `POST /oauth/authorize/mfa`: the second factor → a token at the level it reached, or a
/// `302` with a code for a waiting client.
pub(crate) async fn authorize_mfa(
    State(stepup): State<StepUp>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    JsonBody(step): JsonBody<MfaStep>,
) -> Result<Response, ApiError> {
    let kind = step.kind()?;
    let dpop_jkt =
        crate::dpop::proof_key(&stepup, None, &headers, "POST", "/oauth/authorize/mfa").await?;
    let proof = Value::Object(step.proof);
    let login = stepup
        .mfa()
        .finish_mfa(
            &step.mfa_token,
            &kind,
            &proof,
            step.remember_device,
            &client,
        )
        .await?;
    let session = session_of(&headers);
    conclude_with_session(&stepup, login, session.as_deref(), dpop_jkt.as_deref()).await
}

#[derive(Deserialize)]
pub(crate) struct Prepare {
    mfa_token: String,
}

/// `POST /oauth/authorize/mfa/{kind}/prepare` `{mfa_token}`: the step's challenge for `kind`.
pub(crate) async fn prepare(
    State(stepup): State<StepUp>,
    Path(kind): Path<String>,
    Client(client): Client,
    JsonBody(body): JsonBody<Prepare>,
) -> Result<Response, ApiError> {
    let answer = stepup
        .mfa()
        .prepare_challenge(&body.mfa_token, &kind, &client)
        .await?;
    Ok(secret_json(answer))
}

/// The earlier path of `prepare` for one kind (`/oauth/authorize/mfa/sms/send`, …).
pub(crate) async fn prepare_kind(
    stepup: State<StepUp>,
    kind: &'static str,
    client: Client,
    body: JsonBody<Prepare>,
) -> Result<Response, ApiError> {
    prepare(stepup, Path(kind.to_owned()), client, body).await
}

/// `POST /oauth/authorize/passkey/start`: request options for any passkey of this site, and the
/// `passkey_token` to send back.
pub(crate) async fn passkey_start(
    State(stepup): State<StepUp>,
    Client(client): Client,
) -> Result<Response, ApiError> {
    Ok(secret_json(
        stepup.mfa().start_sign_in("webauthn", &client).await?,
    ))
}

#[derive(Deserialize)]
pub(crate) struct PasskeyFinish {
    #[serde(flatten)]
    oauth: OAuthParams,
    #[serde(flatten)]
    proof: Map<String, Value>,
}

/// `POST /oauth/authorize/passkey` `{passkey_token, credential, …OAuth parameters}`: a token at
/// `acr` `phr` (or a `302` with a code). No password, so `amr` is `["hwk"]`.
pub(crate) async fn passkey_finish(
    State(stepup): State<StepUp>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<PasskeyFinish>,
) -> Result<Response, ApiError> {
    let pending = oauth::pending_of(&stepup, &body.oauth).await?;
    let dpop_jkt =
        crate::dpop::proof_key(&stepup, None, &headers, "POST", "/oauth/authorize/passkey").await?;
    let login = stepup
        .mfa()
        .finish_sign_in("webauthn", &Value::Object(body.proof), pending, &client)
        .await?;
    let session = session_of(&headers);
    conclude_with_session(&stepup, login, session.as_deref(), dpop_jkt.as_deref()).await
}
