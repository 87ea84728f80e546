//! [`Caller`]: the signed-in user of a stepup route, checked beyond the token's signature. A
//! token outlives neither its account nor its user's revocation mark: stepup's own routes never
//! enroll or mint for a user the application says is gone, nor for a token issued before the
//! account was deleted, recovered or reset.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use stepup_core::acr::level;
use stepup_core::{AcrRequirement, AuthContext, AuthRejection, TokenError};

use crate::error::ApiError;
use crate::stepup::StepUp;

/// Default: a first factor is enrolled within 10 minutes of the password.
pub const DEFAULT_ENROLLMENT_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// The caller of a stepup route: a verified token, an account that still exists, and a token
/// issued after the user's revocation mark. Rejects with `401` (`invalid_token` or the bearer
/// challenge).
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) AuthContext);

impl FromRequestParts<StepUp> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, stepup: &StepUp) -> Result<Self, ApiError> {
        let context = parts
            .extensions
            .get::<AuthContext>()
            .cloned()
            .ok_or_else(ApiError::bearer_required)?;
        stepup.check_caller(&context).await?;
        Ok(Self(context))
    }
}

impl StepUp {
    /// Refuses a token whose account is gone or that was issued before the user's revocation
    /// mark (`401 invalid_token`, "the token has been revoked").
    pub(crate) async fn check_caller(&self, caller: &AuthContext) -> Result<(), ApiError> {
        let user = caller.subject();
        // A token without `iat` predates any mark.
        let issued_at = caller.issued_at().unwrap_or(0);
        let revoked = self.mfa().is_token_revoked(user, issued_at).await?
            || !self.inner.passwords.account_exists(user).await?;
        if revoked {
            return Err(AuthRejection::InvalidToken(TokenError::Revoked).into());
        }
        Ok(())
    }

    /// Enrolling needs a recent authentication: for a first factor, the password within the
    /// enrollment window (so a stolen password-level token cannot enroll the thief's
    /// authenticator later); with a factor already enrolled, a fresh second factor. Answers the
    /// RFC 9470 challenge otherwise.
    pub(crate) async fn check_enrollment(&self, caller: &AuthContext) -> Result<(), ApiError> {
        let requirement = if self.mfa().is_enrolled(caller.subject()).await? {
            AcrRequirement::mfa().max_age(self.inner.fresh_mfa)
        } else {
            AcrRequirement::level(level::PWD).max_age(self.inner.enrollment_max_age)
        };
        requirement
            .check(caller)
            .map_err(|challenge| AuthRejection::StepUpRequired(challenge).into())
    }
}
