//! SMS codes: enrollment of a phone number for the signed-in user, and the code sent for an MFA
//! step. Numbers only ever leave masked (`+1*****6789`); sends are counted against the client
//! address too.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stepup_tower::ClientAddr;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::factors::enrollment_confirmed;
use crate::json::JsonBody;
use crate::login::{address_key, limited_by_address};
use crate::respond::no_store;
use crate::stepup::StepUp;

#[derive(Deserialize)]
pub(crate) struct Enroll {
    phone: String,
}

fn address(stepup: &StepUp, client: Option<&Extension<ClientAddr>>) -> Option<String> {
    client.map(|Extension(ClientAddr(ip))| address_key(*ip, stepup.inner.ipv6_prefix))
}

/// `POST /api/mfa/sms/enroll` `{phone}` (Bearer): a pending number and a code sent to it.
pub(crate) async fn enroll(
    State(stepup): State<StepUp>,
    client: Option<Extension<ClientAddr>>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<Enroll>,
) -> Result<Response, ApiError> {
    stepup.check_enrollment(&caller).await?;
    let address = address(&stepup, client.as_ref());
    let sent = stepup
        .mfa()
        .begin_sms_enrollment(caller.subject(), &body.phone, address.as_deref())
        .await?;
    Ok(no_store(
        Json(json!({ "message": sent.message, "phone": sent.phone })).into_response(),
    ))
}

#[derive(Deserialize)]
pub(crate) struct Verify {
    code: String,
}

/// `POST /api/mfa/sms/verify` `{code}` (Bearer): the number is confirmed and the factor active;
/// the backup codes, shown once, when it is the first factor.
pub(crate) async fn verify(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<Verify>,
) -> Result<Response, ApiError> {
    stepup.check_enrollment(&caller).await?;
    let confirmed = stepup
        .mfa()
        .confirm_sms_enrollment(caller.subject(), &body.code)
        .await;
    enrollment_confirmed(confirmed)
}

/// `DELETE /api/mfa/sms` (fresh MFA).
pub(crate) async fn remove(
    State(stepup): State<StepUp>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    if !stepup.mfa().remove_sms(caller.subject()).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_enrolled",
            "no phone number is enrolled",
        ));
    }
    Ok(Json(json!({ "success": true })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct Send {
    mfa_token: String,
}

/// `POST /oauth/authorize/mfa/sms/send` `{mfa_token}`: `{message: "Code sent to +1*****6789"}`;
/// answer with `POST /oauth/authorize/mfa` `{mfa_token, method: "sms", code}`.
pub(crate) async fn send(
    State(stepup): State<StepUp>,
    client: Option<Extension<ClientAddr>>,
    JsonBody(body): JsonBody<Send>,
) -> Result<Response, ApiError> {
    let address = address(&stepup, client.as_ref());
    limited_by_address(&stepup, client, async {
        let sent = stepup
            .mfa()
            .send_sms_challenge(&body.mfa_token, address.as_deref())
            .await?;
        Ok(no_store(
            Json(json!({ "message": sent.message })).into_response(),
        ))
    })
    .await
}
