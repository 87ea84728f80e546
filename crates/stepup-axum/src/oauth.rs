//! The OAuth 2.1 authorization-code flow with PKCE (RFC 6749, RFC 7636): registered clients,
//! exact redirect URIs, S256 only, single-use codes bound to client, redirect URI and challenge.

use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stepup_core::token::Grant;
use stepup_mfa::tokens;
use subtle::ConstantTimeEq;

use crate::json::ApiError;
use crate::stepup::StepUp;

/// How long an authorization code lives.
pub const CODE_TTL: Duration = Duration::from_secs(60);

/// A registered OAuth client: its id and the redirect URIs it may use, matched exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub(crate) id: String,
    pub(crate) redirect_uris: Vec<String>,
}

impl OAuthClient {
    /// A public client (no secret: PKCE protects its codes).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            redirect_uris: Vec::new(),
        }
    }

    /// Allows `uri` as a redirect URI (compared byte for byte).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }
}

/// The OAuth parameters of a `POST /oauth/authorize`, validated, waiting for the user's
/// authentication (possibly across the MFA step).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
}

/// What an authorization code stands for, in the ephemeral store under the code's hash.
#[derive(Serialize, Deserialize)]
struct CodeGrant {
    sub: String,
    acr: String,
    amr: Vec<String>,
    auth_time: Option<u64>,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
}

/// Validates the OAuth parameters, if any were sent. Errors are answered directly (never by
/// redirecting), since a redirect URI is only trusted once validated.
pub(crate) fn validate(
    clients: &[OAuthClient],
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
    state: Option<&str>,
    code_challenge: Option<&str>,
    code_challenge_method: Option<&str>,
) -> Result<Option<PendingAuthorization>, ApiError> {
    if client_id.is_none() && redirect_uri.is_none() && code_challenge.is_none() {
        return Ok(None);
    }
    let (Some(client_id), Some(redirect_uri)) = (client_id, redirect_uri) else {
        return Err(ApiError::invalid_request(
            "client_id and redirect_uri are both required",
        ));
    };
    let client = clients
        .iter()
        .find(|client| client.id == client_id)
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
    if code_challenge_method != Some("S256") {
        return Err(ApiError::invalid_request(
            "PKCE with code_challenge_method=S256 is required",
        ));
    }
    let challenge = code_challenge.unwrap_or_default();
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(ApiError::invalid_request(
            "code_challenge must be the base64url SHA-256 of the code_verifier",
        ));
    }
    if state.is_some_and(|state| state.len() > 1024) {
        return Err(ApiError::invalid_request("state is too long"));
    }
    Ok(Some(PendingAuthorization {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        state: state.map(str::to_owned),
        code_challenge: challenge.to_owned(),
    }))
}

/// Ends an authentication: a `302` with a code for a pending authorization, else the token.
pub(crate) async fn finish(
    stepup: &StepUp,
    pending: Option<PendingAuthorization>,
    grant: GrantParts,
    remaining_codes: Option<usize>,
) -> Result<Response, ApiError> {
    let Some(pending) = pending else {
        return crate::routes::issue(stepup, &grant, "direct", remaining_codes).await;
    };
    let code = tokens::random_token();
    stepup
        .mfa()
        .audit()
        .record(
            &grant.subject,
            "authorization_code_issued",
            serde_json::json!({ "client_id": pending.client_id }),
        )
        .await;
    let record = CodeGrant {
        sub: grant.subject,
        acr: grant.acr.to_owned(),
        amr: grant.amr,
        auth_time: grant.auth_time,
        client_id: pending.client_id,
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge,
    };
    let record = serde_json::to_vec(&record).map_err(|_| crate::routes::unavailable())?;
    let stored = stepup
        .mfa()
        .ephemeral_store()
        .insert_if_absent(&code_key(&code), &record, CODE_TTL)
        .await
        .map_err(|_| crate::routes::unavailable())?;
    if !stored {
        return Err(crate::routes::unavailable());
    }
    let mut query = vec![("code", code.as_str())];
    if let Some(state) = pending.state.as_deref() {
        query.push(("state", state));
    }
    let query = serde_urlencoded::to_string(query).map_err(|_| crate::routes::unavailable())?;
    let separator = if pending.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{separator}{query}", pending.redirect_uri);
    let location = HeaderValue::from_str(&location)
        .map_err(|_| ApiError::invalid_request("redirect_uri is not a valid header value"))?;
    Ok((
        StatusCode::FOUND,
        [
            (LOCATION, location),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Who authenticated, how and when: what a token or a code will carry.
pub(crate) struct GrantParts {
    pub(crate) subject: String,
    pub(crate) acr: &'static str,
    pub(crate) amr: Vec<String>,
    /// `None` for a remembered-device login: no authentication event vouched for now.
    pub(crate) auth_time: Option<u64>,
}

impl GrantParts {
    pub(crate) fn to_grant(&self) -> Grant {
        let grant = Grant::new(self.subject.clone())
            .acr(self.acr)
            .amr(self.amr.iter().cloned());
        match self.auth_time {
            Some(time) => grant.auth_time(time),
            None => grant.without_auth_time(),
        }
    }
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
    if code.len() > 128 {
        return Err(invalid_grant());
    }
    // Consumed on first presentation, right or wrong: a code is never tried twice.
    let record = stepup
        .mfa()
        .ephemeral_store()
        .take(&code_key(code))
        .await
        .map_err(|_| crate::routes::unavailable())?
        .ok_or_else(invalid_grant)?;
    let record: CodeGrant = serde_json::from_slice(&record).map_err(|_| invalid_grant())?;
    let verifier_ok = verifier_matches(verifier, &record.code_challenge);
    if record.client_id != client_id || record.redirect_uri != redirect_uri || !verifier_ok {
        stepup
            .mfa()
            .audit()
            .record(
                &record.sub,
                "authorization_code_refused",
                serde_json::json!({}),
            )
            .await;
        return Err(invalid_grant());
    }
    let grant = GrantParts {
        subject: record.sub,
        acr: known_level(&record.acr).ok_or_else(invalid_grant)?,
        amr: record.amr,
        auth_time: record.auth_time,
    };
    crate::routes::issue(&stepup, &grant, "authorization_code", None).await
}

/// RFC 7636 §4.1 verifier format, then S256, compared in constant time.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// The `acr` levels a code can carry (the ones this module issues).
fn known_level(acr: &str) -> Option<&'static str> {
    use stepup_core::acr::level;
    [level::PWD, level::MFA, level::PHR]
        .into_iter()
        .find(|known| *known == acr)
}

fn invalid_grant() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "the code is invalid, expired, used, or was issued to another client, redirect_uri or verifier",
    )
}

/// Codes live under their SHA-256 only.
fn code_key(code: &str) -> String {
    format!("authz_code:{}", tokens::digest(code))
}
