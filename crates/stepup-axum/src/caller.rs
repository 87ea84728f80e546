//! The extractors of stepup's routes: [`Caller`], the signed-in user checked beyond the token's
//! signature (the engine's rule: the token's generation, and the account still existing), and
//! [`Client`], where the request came from.

use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use stepup_core::AuthContext;
use stepup_core::client::ClientAddr;
use stepup_mfa::ClientInfo;

use crate::error::ApiError;
use crate::stepup::StepUp;

/// The caller of a stepup route: a verified token of the user's current generation, of an
/// account that still exists. Rejects with `401` (`invalid_token` or the bearer challenge).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The verified token.
    pub(crate) context: AuthContext,
    /// The user it stands for ([`Mfa::user_of`](stepup_mfa::Mfa::user_of): an external
    /// provider's user is keyed by issuer and subject).
    pub(crate) user: String,
}

impl FromRequestParts<StepUp> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, stepup: &StepUp) -> Result<Self, ApiError> {
        let context = parts
            .extensions
            .get::<AuthContext>()
            .cloned()
            .ok_or_else(ApiError::bearer_required)?;
        stepup.mfa().check_caller(&context).await?;
        let user = stepup.mfa().user_of(&context).into_owned();
        Ok(Self { context, user })
    }
}

/// Where the request came from: the resolved client address and the `User-Agent`.
#[derive(Debug, Clone)]
pub(crate) struct Client(pub(crate) ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(ClientInfo {
            address: parts
                .extensions
                .get::<ClientAddr>()
                .map(|ClientAddr(ip)| *ip),
            user_agent: parts
                .headers
                .get(USER_AGENT)
                .and_then(|agent| agent.to_str().ok())
                .map(str::to_owned),
        }))
    }
}

impl StepUp {
    /// Enrolling needs a recent authentication (the engine's rule, see
    /// [`Mfa::enrollment_requirement`](stepup_mfa::Mfa::enrollment_requirement)): the RFC 9470
    /// challenge otherwise.
    pub(crate) async fn check_enrollment(&self, caller: &Caller) -> Result<(), ApiError> {
        self.mfa()
            .enrollment_requirement(&caller.user)
            .await?
            .check(&caller.context)
            .map_err(|challenge| stepup_core::AuthRejection::StepUpRequired(challenge).into())
    }
}
