//! The OAuth 2.1 authorization-code flow with PKCE (RFC 6749, RFC 7636): registered clients,
//! exact redirect URIs, S256 only. The codes themselves are the engine's
//! ([`Mfa::issue_authorization_code`](stepup_mfa::Mfa::issue_authorization_code)): single-use,
//! bound to client, redirect URI, challenge and the user's generation.

use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use stepup_mfa::PendingAuthorization;

use crate::caller::Client;
use crate::error::ApiError;
pub use crate::registered_client::OAuthClient;
use crate::respond::secret_json;
use crate::stepup::StepUp;

/// The OAuth parameters of an authorization request, as sent.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OAuthParams {
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: Option<String>,
}

/// Validates the OAuth parameters, if any were sent. Errors are answered directly (never by
/// redirecting), since a redirect URI is only trusted once validated.
pub(crate) fn validate(
    clients: &[OAuthClient],
    params: &OAuthParams,
) -> Result<Option<PendingAuthorization>, ApiError> {
    if params.client_id.is_none()
        && params.redirect_uri.is_none()
        && params.code_challenge.is_none()
    {
        return Ok(None);
    }
    let (Some(client_id), Some(redirect_uri)) = (&params.client_id, &params.redirect_uri) else {
        return Err(ApiError::invalid_request(
            "client_id and redirect_uri are both required",
        ));
    };
    let client = clients
        .iter()
        .find(|client| &client.id == client_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "unknown client_id",
            )
        })?;
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err(ApiError::invalid_request(
            "redirect_uri is not registered for this client",
        ));
    }
    if params.code_challenge_method.as_deref() != Some("S256") {
        return Err(ApiError::invalid_request(
            "PKCE with code_challenge_method=S256 is required",
        ));
    }
    let challenge = params.code_challenge.as_deref().unwrap_or_default();
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(ApiError::invalid_request(
            "code_challenge must be the base64url SHA-256 of the code_verifier",
        ));
    }
    if params
        .state
        .as_ref()
        .is_some_and(|state| state.len() > 1024)
    {
        return Err(ApiError::invalid_request("state is too long"));
    }
    Ok(Some(PendingAuthorization {
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state: params.state.clone(),
        code_challenge: challenge.to_owned(),
    }))
}

/// The token request of RFC 6749 §4.1.3 with PKCE.
#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
}

/// `POST /oauth/token`: exchanges a code and its verifier for a token.
pub(crate) async fn token(
    State(stepup): State<StepUp>,
    Client(client): Client,
    form: Result<axum::Form<TokenRequest>, FormRejection>,
) -> Result<Response, ApiError> {
    let axum::Form(request) = form.map_err(|_| {
        ApiError::invalid_request("expected an application/x-www-form-urlencoded body")
    })?;
    if request.grant_type.as_deref() != Some("authorization_code") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=authorization_code is supported",
        ));
    }
    let (Some(code), Some(verifier), Some(redirect_uri), Some(client_id)) = (
        request.code.as_deref(),
        request.code_verifier.as_deref(),
        request.redirect_uri.as_deref(),
        request.client_id.as_deref(),
    ) else {
        return Err(ApiError::invalid_request(
            "code, code_verifier, redirect_uri and client_id are required",
        ));
    };
    let mfa = stepup.mfa();
    let authentication = mfa
        .redeem_authorization_code(code, client_id, redirect_uri, verifier, &client)
        .await?;
    let token = mfa
        .issue_token(&authentication, "authorization_code")
        .await?;
    Ok(secret_json(
        serde_json::to_value(token).map_err(|_| ApiError::server_error())?,
    ))
}
