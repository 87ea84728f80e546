//! stepup's factors for the users of an external identity provider: an API whose IdP has no
//! second factor (or not the one it needs) gets step-up with stepup's.
//!
//! The rules, in one place:
//!
//! - an external user is keyed by issuer **and** subject ([`Mfa::user_of`]): `sub` alone is
//!   only unique within one issuer, so two providers' `alice` never share a factor;
//! - stepup's own token from an exchange names the provider in `act`, and only stepup's own
//!   tokens are read that way;
//! - that key is `external:<issuer>#<sub>`; the application's own user ids may not take that
//!   form (the password step refuses one that does), so no local account can reach an external
//!   user's factors, nor be issued a token in an external user's name;
//! - an external user's token (or stepup's token exchanged for one) is the caller on stepup's
//!   routes; the account belongs to the provider, so stepup does not ask the application
//!   whether it exists, but a reset voids what was issued before it, as for any user;
//! - a token exchange (RFC 8693) takes the provider's access token as the first factor: with a
//!   factor enrolled, the answer is the MFA step's challenge, exactly as after a password; the
//!   MFA step then issues stepup's token **for the same `sub`**, naming the provider in `act`
//!   (`{iss, sub}`), at the level the factor reached, so a resource server that trusts both
//!   issuers sees one user.

use std::borrow::Cow;

use stepup_core::AuthContext;
use stepup_core::acr::{amr, level};

use crate::Mfa;
use crate::challenge::MfaChallenge;
use crate::error::{InvalidSubjectToken, MfaError, MfaNotEnrolled};

/// The start of every external user's key.
const PREFIX: &str = "external:";

/// The identity providers whose users may use stepup's factors.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExternalIssuers(Vec<String>);

impl ExternalIssuers {
    fn contains(&self, issuer: &str) -> bool {
        self.0.iter().any(|known| known == issuer)
    }
}

impl Mfa {
    /// Lets the users of the identity provider `issuer` (its exact `iss`) use stepup's factors:
    /// its access tokens are callers on stepup's routes, keyed by issuer and subject, and
    /// [`start_token_exchange`](Self::start_token_exchange) takes them. The verifier in front
    /// must trust the issuer too. An issuer holding `#` is refused (an issuer identifier has no
    /// fragment).
    pub fn with_external_issuer(self, issuer: impl Into<String>) -> Result<Self, MfaError> {
        let issuer = issuer.into();
        if issuer.is_empty() || issuer.contains('#') {
            return Err(MfaError::invalid_input(
                "an external issuer is a non-empty URL without a fragment",
            ));
        }
        Ok(self.map(|inner| inner.external.0.push(issuer)))
    }

    /// The identity providers whose users may use stepup's factors.
    pub fn external_issuers(&self) -> &[String] {
        &self.inner.external.0
    }

    /// The user a verified token stands for: for an external provider's token, or stepup's
    /// token exchanged for one, the key of that provider's user (see the [module docs](self));
    /// else the token's subject.
    pub fn user_of<'a>(&self, caller: &'a AuthContext) -> Cow<'a, str> {
        let external = &self.inner.external;
        let provider = caller
            .issuer()
            .filter(|issuer| external.contains(issuer))
            .or_else(|| {
                // `act` counts only in stepup's own tokens: another issuer's `act` says nothing
                // about which of stepup's users its subject is.
                let own = self.issuer().map(|issuer| issuer.issuer());
                (caller.issuer().is_some() && caller.issuer() == own)
                    .then(|| caller.exchanged_from())
                    .flatten()
                    .filter(|issuer| external.contains(issuer))
            });
        match provider {
            Some(issuer) => Cow::Owned(format!("{PREFIX}{issuer}#{}", caller.subject())),
            None => Cow::Borrowed(caller.subject()),
        }
    }

    /// The provider and subject of an external user's key; `None` for the application's users.
    pub(crate) fn external_identity<'a>(&self, user: &'a str) -> Option<(&'a str, &'a str)> {
        let (issuer, subject) = user.strip_prefix(PREFIX)?.split_once('#')?;
        self.inner
            .external
            .contains(issuer)
            .then_some((issuer, subject))
    }

    /// Whether `user` has the form of an external user's key (refused as an application's id).
    pub(crate) fn is_external_key(user: &str) -> bool {
        user.starts_with(PREFIX)
    }

    /// A token exchange (RFC 8693) of an external provider's access token, `subject`, for
    /// stepup's at a level of `acr_values` (`mfa` or `phr`): the MFA step's challenge for that
    /// provider's user, whose token stands for the first factor (its `pwd`, if it names one, is
    /// kept in `amr`). [`InvalidSubjectToken`] for a token of no external provider;
    /// [`MfaNotEnrolled`] when the user has no factor yet.
    pub async fn start_token_exchange(
        &self,
        subject: &AuthContext,
        acr_values: &str,
    ) -> Result<MfaChallenge, MfaError> {
        let asks_for_a_factor = acr_values
            .split(' ')
            .any(|value| value == level::MFA || value == level::PHR);
        if !asks_for_a_factor {
            return Err(MfaError::invalid_input(
                "acr_values must ask for mfa or phr: the exchange adds stepup's second factor",
            ));
        }
        let from_provider = subject
            .issuer()
            .is_some_and(|issuer| self.inner.external.contains(issuer));
        if !from_provider {
            return Err(InvalidSubjectToken.into());
        }
        self.check_caller(subject).await?;
        let user = self.user_of(subject);
        if !self.is_enrolled(&user).await? {
            return Err(MfaNotEnrolled.into());
        }
        let first: Vec<&str> = subject
            .amr()
            .iter()
            .map(String::as_str)
            .filter(|method| *method == amr::PWD)
            .collect();
        self.start_challenge(&user, &first, None).await
    }
}
