//! [`PasswordCheck`]: what the engine asks of the application's own accounts. stepup never
//! stores passwords or mail addresses; it asks.

use async_trait::async_trait;

use crate::error::{MfaError, Unavailable};

/// The application's accounts: its password check, and what stepup needs to know of an account.
#[async_trait]
pub trait PasswordCheck: Send + Sync + 'static {
    /// The user id these credentials belong to, or `None` when they are wrong. Implementations
    /// should take as long for an unknown user as for a wrong password.
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed>;

    /// Whether the account `user` still exists. stepup refuses every token of a user for whom
    /// this is `false`: it never enrolls a factor or mints a token for an account the
    /// application has deleted.
    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed>;

    /// The user id `username` belongs to, if the application will tell: used only to record a
    /// failed password in that user's audit trail (default: none).
    async fn user_of(&self, username: &str) -> Result<Option<String>, PasswordCheckFailed> {
        let _ = username;
        Ok(None)
    }

    /// The mail address of `user`, where recovery codes, notifications and email codes go
    /// (default: none, so stepup mails nothing).
    async fn email_of(&self, user: &str) -> Result<Option<String>, PasswordCheckFailed> {
        let _ = user;
        Ok(None)
    }

    /// The user whose mail address is `email`, for a recovery request (default: none, so
    /// recovery is never offered). Implementations should take as long for an unknown address.
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, PasswordCheckFailed> {
        let _ = email;
        Ok(None)
    }

    /// The account name shown in the authenticator app and for passkeys (default: the user id).
    async fn account_label(&self, user: &str) -> Option<String> {
        let _ = user;
        None
    }
}

/// The password check could not run (its database is down): answered `503`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the password check is unavailable")]
pub struct PasswordCheckFailed;

impl From<PasswordCheckFailed> for MfaError {
    fn from(failed: PasswordCheckFailed) -> Self {
        Self::Unavailable(Unavailable::new(failed))
    }
}

/// The accounts of an engine the application told nothing of: no password is ever right, and
/// every account exists (only the user's generation decides whether a token stands).
pub(crate) struct NoAccounts;

#[async_trait]
impl PasswordCheck for NoAccounts {
    async fn check(&self, _: &str, _: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok(None)
    }

    async fn account_exists(&self, _: &str) -> Result<bool, PasswordCheckFailed> {
        Ok(true)
    }
}
