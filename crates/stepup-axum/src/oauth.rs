//! The OAuth 2.1 endpoints besides the sign-in page: the token endpoint (the authorization code
//! with PKCE, RFC 6749 §4.1.3 and RFC 7636; the rotated refresh token, RFC 6749 §6), RFC 7009
//! revocation and RFC 7591 registration. The protocol is the engine's
//! ([`stepup_mfa::refresh`], [`stepup_mfa::clients`]); these parse and answer.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use stepup_mfa::{
    AuthorizationError, AuthorizationParams, CodeExchange, MfaError, PendingAuthorization,
    RefreshRequest,
};

use crate::caller::Client;
use crate::error::ApiError;
use crate::json::JsonBody;
pub use crate::registered_client::OAuthClient;
use crate::respond::{no_store, secret_json};
use crate::stepup::StepUp;

/// The OAuth parameters of a JSON authorization request (`POST /oauth/authorize`), as sent.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OAuthParams {
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) resource: Option<String>,
    /// The sign-in page's request, instead of the parameters.
    pub(crate) request_id: Option<String>,
}

/// The waiting authorization request of a JSON login, if any: the sign-in page's (by its id),
/// or the parameters checked by the engine. Errors are answered directly (never by redirecting).
pub(crate) async fn pending_of(
    stepup: &StepUp,
    params: &OAuthParams,
) -> Result<Option<PendingAuthorization>, ApiError> {
    if let Some(id) = &params.request_id {
        let request = stepup.mfa().saved_authorization_request(id).await?;
        return Ok(Some(request.pending));
    }
    if params.client_id.is_none()
        && params.redirect_uri.is_none()
        && params.code_challenge.is_none()
    {
        return Ok(None);
    }
    let params = AuthorizationParams {
        response_type: Some("code".to_owned()),
        client_id: params.client_id.clone(),
        redirect_uri: params.redirect_uri.clone(),
        state: params.state.clone(),
        scope: params.scope.clone(),
        code_challenge: params.code_challenge.clone(),
        code_challenge_method: params.code_challenge_method.clone(),
        resource: params.resource.iter().cloned().collect(),
        ..AuthorizationParams::default()
    };
    match stepup.mfa().authorization_request(&params).await {
        Ok(request) => Ok(Some(request.pending)),
        Err(AuthorizationError::Unredirectable(MfaError::InvalidClient(_))) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "unknown client_id",
        )),
        Err(AuthorizationError::Unredirectable(error)) => Err(error.into()),
        Err(AuthorizationError::Redirect(redirect)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            redirect.error,
            redirect.description,
        )),
    }
}

/// The token request (RFC 6749 §4.1.3, §6; RFC 8707 `resource`).
#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    acr_values: Option<String>,
}

/// RFC 8693's grant type, and the one kind of subject token exchanged.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `POST /oauth/token`: a code and its verifier, or a refresh token, for tokens; or an external
/// provider's access token for the MFA step (RFC 8693 token exchange, see
/// [`stepup_mfa::external`]).
///
/// With a `DPoP` proof (RFC 9449 §5), the access token is bound to the proof's key (`cnf.jkt`,
/// `token_type: "DPoP"`); a bad proof is `400 invalid_dpop_proof`.
pub(crate) async fn token(
    State(stepup): State<StepUp>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<TokenRequest>, FormRejection>,
) -> Result<Response, ApiError> {
    let axum::Form(request) = form.map_err(|_| {
        ApiError::invalid_request("expected an application/x-www-form-urlencoded body")
    })?;
    let dpop_jkt = crate::dpop::proof_key(&stepup, None, &headers, "POST", "/oauth/token").await?;
    let dpop_jkt = dpop_jkt.as_deref();
    let mfa = stepup.mfa();
    let tokens = match request.grant_type.as_deref() {
        Some("authorization_code") => {
            let (Some(code), Some(code_verifier), Some(redirect_uri), Some(client_id)) = (
                request.code.as_deref(),
                request.code_verifier.as_deref(),
                request.redirect_uri.as_deref(),
                request.client_id.as_deref(),
            ) else {
                return Err(ApiError::invalid_request(
                    "code, code_verifier, redirect_uri and client_id are required",
                ));
            };
            let exchange = CodeExchange {
                code,
                client_id,
                redirect_uri,
                code_verifier,
                resource: request.resource.as_deref(),
            };
            mfa.exchange_authorization_code_bound(exchange, &client, dpop_jkt)
                .await?
        }
        Some("refresh_token") => {
            let (Some(refresh_token), Some(client_id)) = (
                request.refresh_token.as_deref(),
                request.client_id.as_deref(),
            ) else {
                return Err(ApiError::invalid_request(
                    "refresh_token and client_id are required",
                ));
            };
            let refresh = RefreshRequest {
                refresh_token,
                client_id,
                scope: request.scope.as_deref(),
                resource: request.resource.as_deref(),
            };
            mfa.refresh_bound(refresh, &client, dpop_jkt).await?
        }
        Some(TOKEN_EXCHANGE) => return exchange(&stepup, &request).await,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token or \
                 urn:ietf:params:oauth:grant-type:token-exchange",
            ));
        }
    };
    Ok(secret_json(
        serde_json::to_value(tokens).map_err(|_| ApiError::server_error())?,
    ))
}

/// A token exchange: the MFA step's challenge for the subject token's user, answered as the
/// password step's; the step then ends at `POST /oauth/authorize/mfa` with stepup's token.
async fn exchange(stepup: &StepUp, request: &TokenRequest) -> Result<Response, ApiError> {
    let (Some(subject_token), Some(subject_token_type), Some(acr_values)) = (
        request.subject_token.as_deref(),
        request.subject_token_type.as_deref(),
        request.acr_values.as_deref(),
    ) else {
        return Err(ApiError::invalid_request(
            "subject_token, subject_token_type and acr_values are required",
        ));
    };
    if subject_token_type != ACCESS_TOKEN_TYPE {
        return Err(ApiError::invalid_request(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    let subject = stepup
        .verifier()
        .verify_async(subject_token)
        .await
        .map_err(|error| match error {
            // No key set loaded yet: fail closed, as the layers do.
            stepup_core::TokenError::KeysUnavailable => {
                ApiError::from(stepup_core::AuthRejection::InvalidToken(error))
            }
            _ => MfaError::from(stepup_mfa::InvalidSubjectToken).into(),
        })?;
    let challenge = stepup
        .mfa()
        .start_token_exchange(&subject, acr_values)
        .await?;
    Ok(no_store(Json(challenge).into_response()))
}

/// The revocation request (RFC 7009 §2.1).
#[derive(Deserialize)]
pub(crate) struct RevocationRequest {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
}

/// `POST /oauth/revoke`: revokes a refresh token's family; `200` for any other token (§2.2),
/// except an access token (a JWT), which cannot be revoked one by one
/// (`400 unsupported_token_type`, §2.2.1: they live minutes, and a reset voids them).
pub(crate) async fn revoke(
    State(stepup): State<StepUp>,
    form: Result<axum::Form<RevocationRequest>, FormRejection>,
) -> Result<Response, ApiError> {
    let axum::Form(request) = form.map_err(|_| {
        ApiError::invalid_request("expected an application/x-www-form-urlencoded body")
    })?;
    let (Some(token), Some(client_id)) = (request.token.as_deref(), request.client_id.as_deref())
    else {
        return Err(ApiError::invalid_request(
            "token and client_id are required",
        ));
    };
    let revoked = stepup.mfa().revoke_refresh_token(token, client_id).await?;
    // A JWT (three dot-separated parts) is an access token; a refresh token has no dot.
    if !revoked && token.split('.').count() == 3 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            "access tokens cannot be revoked one by one; they expire within minutes",
        ));
    }
    Ok(no_store(StatusCode::OK.into_response()))
}

/// `POST /oauth/register` (RFC 7591): a public client registers; `201` with its `client_id`.
pub(crate) async fn register(
    State(stepup): State<StepUp>,
    Client(client): Client,
    JsonBody(metadata): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let registered = stepup.mfa().register_client(&metadata, &client).await?;
    let body = serde_json::to_value(registered).map_err(|_| ApiError::server_error())?;
    Ok(no_store((StatusCode::CREATED, Json(body)).into_response()))
}
