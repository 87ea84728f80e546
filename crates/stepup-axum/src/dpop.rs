//! DPoP-bound tokens from the authorization server (RFC 9449 §5): a `DPoP` proof sent to
//! `POST /oauth/token`, or with a login answered by a token (`POST /oauth/authorize`,
//! `/oauth/authorize/mfa`, `/oauth/authorize/passkey`), binds the access token to the proof's
//! key: `cnf.jkt` in the token, `token_type: "DPoP"` in the answer. The proof is checked like a
//! resource server's ([`stepup_core::dpop`]) but without `ath` (no token is presented), its
//! `htu` against the issuer identifier followed by the route's path, and it is accepted once
//! (the engine's replay memory, shared by every instance).

use axum::http::{HeaderMap, StatusCode};
use stepup_core::dpop::{DpopError, DpopPolicy};
use stepup_core::policy::ProofReplay;
use stepup_core::{AuthContext, Presentation};

use crate::error::ApiError;
use crate::stepup::StepUp;

/// The RFC 7638 thumbprint of the key a request's `DPoP` proof was signed with, once that proof
/// passed every check and was recorded; `None` without a `DPoP` header. A bad proof is
/// `400 invalid_dpop_proof`; the replay memory unreachable is the `503`.
///
/// A caller who presented a DPoP-bound token (`Authorization: DPoP`, a signed-in user stepping
/// up) had this very proof checked and recorded by `authenticate()`, with `ath` and this URL:
/// its key is the answer, and the proof is not judged a second time (it would be a replay).
pub(crate) async fn proof_key(
    stepup: &StepUp,
    caller: Option<&AuthContext>,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<Option<String>, ApiError> {
    if let Some(caller) = caller.filter(|caller| caller.presentation() == Presentation::Dpop) {
        return Ok(caller.key_thumbprint().map(str::to_owned));
    }
    let mut proofs = headers.get_all("dpop").iter();
    let Some(proof) = proofs.next() else {
        return Ok(None);
    };
    if proofs.next().is_some() {
        return Err(refused(DpopError::MultipleProofs));
    }
    let proof = proof.to_str().map_err(|_| refused(DpopError::Malformed))?;
    let mfa = stepup.mfa();
    let issuer = stepup.issuer_id();
    let policy = DpopPolicy::optional(&issuer)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "this server cannot bind tokens: its issuer is not an https URL",
            )
        })?
        .with_clock(mfa.clock().clone());
    let verified = policy
        .verify_token_request_proof(proof, method, path)
        .map_err(refused)?;
    match mfa
        .first_use(&verified.replay_key(), policy.replay_ttl())
        .await
    {
        Ok(true) => Ok(Some(verified.thumbprint().to_owned())),
        Ok(false) => Err(refused(DpopError::Replayed)),
        Err(_) => Err(ApiError::unavailable()),
    }
}

/// `400 invalid_dpop_proof` (RFC 9449 §5.1) with the refusal's fixed description.
fn refused(error: DpopError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        error.description(),
    )
}
