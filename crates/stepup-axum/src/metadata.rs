//! The authorization server's metadata (RFC 8414) and its public signing keys (a JWKS, RFC 7517),
//! for clients and resource servers to discover it: `GET /.well-known/oauth-authorization-server`
//! and `GET /.well-known/jwks.json`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::stepup::StepUp;

impl StepUp {
    /// The authorization server's metadata document (RFC 8414), as served at
    /// `/.well-known/oauth-authorization-server`.
    pub fn authorization_server_metadata(&self) -> Value {
        let issuer = self.issuer_id();
        let base = issuer.trim_end_matches('/');
        let mfa = self.mfa();
        let mut metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/oauth/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "PS256"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": mfa.scopes(),
            "acr_values_supported": ["pwd", "mfa", "phr"],
            "prompt_values_supported": ["login", "none"],
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": mfa.client_metadata_documents(),
        });
        if !mfa.external_issuers().is_empty() {
            metadata["grant_types_supported"] = json!([
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ]);
        }
        if mfa.dynamic_registration() {
            metadata["registration_endpoint"] = json!(format!("{base}/oauth/register"));
        }
        metadata
    }
}

/// `GET /.well-known/oauth-authorization-server`.
pub(crate) async fn authorization_server(State(stepup): State<StepUp>) -> Response {
    cached(Json(stepup.authorization_server_metadata()).into_response())
}

/// `GET /.well-known/jwks.json`: the issuer's public keys (none for an HS256 issuer).
pub(crate) async fn jwks(State(stepup): State<StepUp>) -> Result<Response, ApiError> {
    let issuer = stepup.mfa().issuer().ok_or_else(ApiError::server_error)?;
    let keys = issuer.jwks().map_err(|_| ApiError::server_error())?;
    Ok(cached(Json(keys).into_response()))
}

/// Public, cacheable for five minutes (a key rotation publishes the new key before using it).
fn cached(mut response: Response) -> Response {
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
