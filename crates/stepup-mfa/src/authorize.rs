//! The authorization endpoint's protocol (RFC 6749 §4.1 with PKCE, RFC 7636; `resource`,
//! RFC 8707; `iss`, RFC 9207), whatever carries it:
//!
//! - [`AuthorizationParams`] are the request's parameters as sent (each at most once, except
//!   `resource`); [`Mfa::authorization_request`] checks them: an unknown client or a redirect URI
//!   it did not register is told to the user, never redirected to
//!   ([`AuthorizationError::Unredirectable`]); every other error goes back to the client's
//!   redirect URI with `error`, `state` and `iss` ([`AuthorizationError::Redirect`]);
//! - the sign-in page keeps the checked request under a random id
//!   ([`Mfa::save_authorization_request`]) that its JSON calls send back;
//! - the **sign-in session** ([`Mfa::start_session`]): after a sign-in through the page, the
//!   browser holds a random cookie whose SHA-256 names, in the ephemeral store, who signed in, at
//!   which level, when, and under which generation; [`Mfa::session_decision`] says what a later
//!   request needs: nothing more (a code at once, for the application's own clients), only the
//!   missing factor (a step-up: `acr_values`, `max_age`), or the whole sign-in (`prompt=login`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stepup_core::AcrLevels;
use stepup_core::acr::amr;
use stepup_core::tokens;

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::authorization::{Authentication, PendingAuthorization, with_query};
use crate::challenge::MfaChallenge;
use crate::clients::{Client, is_scope_syntax};
use crate::error::{InvalidClient, MfaError, UnknownAuthorizationRequest};

/// How long the sign-in page keeps an authorization request.
pub const PAGE_REQUEST_TTL: Duration = Duration::from_secs(10 * 60);
/// Default: a sign-in session lasts 12 hours.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The longest `state` accepted.
const MAX_STATE: usize = 1024;

/// The parameters of an authorization request, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationParams {
    /// `response_type` (`code` only).
    pub response_type: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `code_challenge`.
    pub code_challenge: Option<String>,
    /// `code_challenge_method` (`S256` only).
    pub code_challenge_method: Option<String>,
    /// Every `resource` (RFC 8707; at most one is accepted).
    pub resource: Vec<String>,
    /// `acr_values`: the levels wanted, space-separated.
    pub acr_values: Option<String>,
    /// `max_age` in seconds.
    pub max_age: Option<String>,
    /// `prompt` (`login` or `none`).
    pub prompt: Option<String>,
    /// A parameter sent more than once (RFC 6749 §3.1 forbids it), if any.
    pub repeated: Option<String>,
}

impl AuthorizationParams {
    /// The parameters of a query string's pairs, noting the first one repeated.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut params = Self::default();
        for (name, value) in pairs {
            let slot = match name {
                "response_type" => &mut params.response_type,
                "client_id" => &mut params.client_id,
                "redirect_uri" => &mut params.redirect_uri,
                "state" => &mut params.state,
                "scope" => &mut params.scope,
                "code_challenge" => &mut params.code_challenge,
                "code_challenge_method" => &mut params.code_challenge_method,
                "acr_values" => &mut params.acr_values,
                "max_age" => &mut params.max_age,
                "prompt" => &mut params.prompt,
                "resource" => {
                    params.resource.push(value.to_owned());
                    continue;
                }
                _ => continue,
            };
            if slot.is_some() {
                if params.repeated.is_none() {
                    params.repeated = Some(name.to_owned());
                }
                continue;
            }
            *slot = Some(value.to_owned());
        }
        params
    }
}

/// What the request asks of the sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// A live session may answer.
    #[default]
    Default,
    /// Sign in again, whatever the session (`prompt=login`).
    Login,
    /// Never show the page: answer from the session or fail (`prompt=none`).
    None,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// What the code will be bound to.
    pub pending: PendingAuthorization,
    /// The client.
    pub client: Client,
    /// The levels wanted (any one satisfies), weakest first as sent.
    pub acr_values: Vec<String>,
    /// How recent the authentication must be, in seconds.
    pub max_age: Option<u64>,
    /// What the request asks of the sign-in.
    pub prompt: Prompt,
}

/// An error to send back to the client (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    /// The client's (valid) redirect URI.
    pub redirect_uri: String,
    /// The client's `state`, returned as is.
    pub state: Option<String>,
    /// The error code.
    pub error: &'static str,
    /// What is wrong (never the client's input).
    pub description: &'static str,
}

impl ErrorRedirect {
    /// The redirect URI with `error`, `error_description`, `state` and `iss` (RFC 9207).
    pub fn location(&self, issuer: &str) -> String {
        let mut query = vec![
            ("error", self.error),
            ("error_description", self.description),
        ];
        if let Some(state) = self.state.as_deref() {
            query.push(("state", state));
        }
        query.push(("iss", issuer));
        with_query(&self.redirect_uri, &query)
    }
}

/// Why an authorization request is refused.
#[derive(Debug)]
pub enum AuthorizationError {
    /// The client or its redirect URI cannot be trusted: tell the user, never redirect.
    Unredirectable(MfaError),
    /// Send the error back to the client's redirect URI.
    Redirect(ErrorRedirect),
}

/// What a request needs of the sign-in, given the browser's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionDecision {
    /// The session satisfies the request: a code at once (for a third-party client, once the
    /// user confirms on the page).
    Satisfied(Authentication),
    /// The session is the user's, but a factor is missing or stale: only the second factor.
    StepUp {
        /// The user.
        user: String,
        /// The first factors the session vouches for (`pwd`).
        first_factors: Vec<String>,
    },
    /// The whole sign-in.
    SignIn,
    /// `prompt=none` and the session cannot answer: `login_required`.
    LoginRequired,
}

/// A sign-in session as stored, under the SHA-256 of its cookie.
#[derive(Serialize, Deserialize)]
struct StoredSession {
    authentication: Authentication,
    created_at: u64,
}

impl Mfa {
    /// How long sign-in sessions last (default 12 hours).
    pub fn with_session_lifetime(self, lifetime: Duration) -> Self {
        self.map(|inner| inner.authorization.session_lifetime = lifetime)
    }

    /// How long sign-in sessions last.
    pub fn session_lifetime(&self) -> Duration {
        self.inner.authorization.session_lifetime
    }

    /// Checks an authorization request: the client and its exact redirect URI first (refused
    /// unredirectably), then `response_type=code`, PKCE S256, `state`, `scope`, `resource`,
    /// `acr_values`, `max_age` and `prompt` (refused to the redirect URI).
    pub async fn authorization_request(
        &self,
        params: &AuthorizationParams,
    ) -> Result<AuthorizationRequest, AuthorizationError> {
        let unredirectable = |error: MfaError| AuthorizationError::Unredirectable(error);
        let client_id = params
            .client_id
            .as_deref()
            .ok_or_else(|| unredirectable(MfaError::invalid_input("client_id is required")))?;
        let client = self
            .client(client_id)
            .await
            .map_err(unredirectable)?
            .ok_or_else(|| unredirectable(InvalidClient.into()))?;
        let redirect_uri = params
            .redirect_uri
            .as_deref()
            .ok_or_else(|| unredirectable(MfaError::invalid_input("redirect_uri is required")))?;
        if !client.allows_redirect(redirect_uri) {
            return Err(unredirectable(MfaError::invalid_input(
                "redirect_uri is not registered for this client",
            )));
        }
        let state = params
            .state
            .clone()
            .filter(|state| !state.is_empty() && state.len() <= MAX_STATE);
        let refuse = |error: &'static str, description: &'static str| {
            AuthorizationError::Redirect(ErrorRedirect {
                redirect_uri: redirect_uri.to_owned(),
                state: state.clone(),
                error,
                description,
            })
        };
        if params.repeated.is_some() {
            return Err(refuse(
                "invalid_request",
                "a parameter was sent more than once",
            ));
        }
        if params.state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
            return Err(refuse("invalid_request", "state is too long"));
        }
        match params.response_type.as_deref() {
            Some("code") => {}
            None => return Err(refuse("invalid_request", "response_type is required")),
            Some(_) => {
                return Err(refuse(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        if params.code_challenge_method.as_deref() != Some("S256") {
            return Err(refuse(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            ));
        }
        let challenge = params.code_challenge.as_deref().unwrap_or_default();
        if !is_s256_challenge(challenge) {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the code_verifier",
            ));
        }
        let scope = match params.scope.as_deref() {
            None | Some("") => None,
            Some(scope) if is_scope_syntax(scope) && self.scopes_allowed(scope) => {
                Some(scope.to_owned())
            }
            Some(_) => return Err(refuse("invalid_scope", "the scope is unknown")),
        };
        let resource = match params.resource.as_slice() {
            [] => None,
            [resource] if self.is_resource(resource) => Some(resource.clone()),
            [_] => {
                return Err(refuse(
                    "invalid_target",
                    "the resource is not one this server issues tokens for",
                ));
            }
            _ => {
                return Err(refuse(
                    "invalid_target",
                    "at most one resource may be asked for",
                ));
            }
        };
        let levels = AcrLevels::default();
        let acr_values: Vec<String> = params
            .acr_values
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .collect();
        if acr_values.iter().all(|value| levels.rank(value).is_none()) && !acr_values.is_empty() {
            return Err(refuse(
                "invalid_request",
                "acr_values names no level this server knows (pwd, mfa, phr)",
            ));
        }
        let max_age =
            match params.max_age.as_deref() {
                None => None,
                Some(text) => Some(text.parse::<u64>().map_err(|_| {
                    refuse("invalid_request", "max_age must be a number of seconds")
                })?),
            };
        let prompt = match params.prompt.as_deref() {
            None | Some("") => Prompt::Default,
            Some("login") => Prompt::Login,
            Some("none") => Prompt::None,
            Some(_) => {
                return Err(refuse("invalid_request", "prompt may be login or none"));
            }
        };
        Ok(AuthorizationRequest {
            pending: PendingAuthorization {
                client_id: client.id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                state,
                code_challenge: challenge.to_owned(),
                scope,
                resource,
                from_page: false,
            },
            client,
            acr_values,
            max_age,
            prompt,
        })
    }

    /// Keeps a checked request for the sign-in page ([`PAGE_REQUEST_TTL`]); returns the id the
    /// page sends back. The kept request's codes are answered to the page (`from_page`).
    pub async fn save_authorization_request(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<String, MfaError> {
        let id = tokens::random_token();
        let mut request = request.clone();
        request.pending.from_page = true;
        let value = serde_json::to_vec(&request).map_err(MfaError::internal)?;
        if !self
            .ephemeral()
            .insert_if_absent(&page_key(&id), &value, PAGE_REQUEST_TTL)
            .await?
        {
            return Err(MfaError::internal("authorization request id collision"));
        }
        Ok(id)
    }

    /// The request the sign-in page with `id` carries; [`UnknownAuthorizationRequest`] when it
    /// expired or never was. A client revoked since is refused.
    pub async fn saved_authorization_request(
        &self,
        id: &str,
    ) -> Result<AuthorizationRequest, MfaError> {
        if id.is_empty() || id.len() > 128 {
            return Err(UnknownAuthorizationRequest.into());
        }
        let value = self
            .ephemeral()
            .get(&page_key(id))
            .await?
            .ok_or(UnknownAuthorizationRequest)?;
        let request: AuthorizationRequest =
            serde_json::from_slice(&value).map_err(MfaError::internal)?;
        if self.client(&request.client.id).await?.is_none() {
            return Err(InvalidClient.into());
        }
        Ok(request)
    }

    /// Starts a sign-in session for `authentication` (audited): the random value for the
    /// browser's cookie. Only its SHA-256 is stored, with the authentication, for
    /// [`session_lifetime`](Self::session_lifetime).
    pub async fn start_session(&self, authentication: &Authentication) -> Result<String, MfaError> {
        let token = tokens::random_token();
        let stored = StoredSession {
            authentication: authentication.clone(),
            created_at: self.now(),
        };
        let value = serde_json::to_vec(&stored).map_err(MfaError::internal)?;
        if !self
            .ephemeral()
            .insert_if_absent(&session_key(&token), &value, self.session_lifetime())
            .await?
        {
            return Err(MfaError::internal("session collision"));
        }
        let event = AuditEvent::SessionStarted {
            acr: authentication.acr.clone(),
        };
        self.audit().record(&authentication.subject, event).await;
        Ok(token)
    }

    /// The authentication the session cookie `token` stands for, while it lives and is of the
    /// user's current generation and the account exists.
    pub async fn session(&self, token: &str) -> Result<Option<Authentication>, MfaError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(value) = self.ephemeral().get(&session_key(token)).await? else {
            return Ok(None);
        };
        let stored: StoredSession = serde_json::from_slice(&value).map_err(MfaError::internal)?;
        let user = &stored.authentication.subject;
        if self.current_generation(user).await?.value != stored.authentication.generation
            || !self.accounts().account_exists(user).await?
        {
            self.ephemeral().remove(&session_key(token)).await?;
            return Ok(None);
        }
        Ok(Some(stored.authentication))
    }

    /// Ends the session of cookie `token` (a newer one replaced it, or the user signed out).
    pub async fn end_session(&self, token: &str) -> Result<(), MfaError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(());
        }
        Ok(self.ephemeral().remove(&session_key(token)).await?)
    }

    /// What `request` needs, given the browser's session cookie (if any): see
    /// [`SessionDecision`]. `prompt=login` always signs in again; a session satisfies a request
    /// when its level meets one of `acr_values` and its authentication is within `max_age`; a
    /// session that does not, of a user with a second factor, needs only that factor.
    pub async fn session_decision(
        &self,
        session: Option<&str>,
        request: &AuthorizationRequest,
    ) -> Result<SessionDecision, MfaError> {
        if request.prompt == Prompt::Login {
            return Ok(SessionDecision::SignIn);
        }
        let none = || {
            if request.prompt == Prompt::None {
                SessionDecision::LoginRequired
            } else {
                SessionDecision::SignIn
            }
        };
        let Some(token) = session else {
            return Ok(none());
        };
        let Some(authentication) = self.session(token).await? else {
            return Ok(none());
        };
        let levels = AcrLevels::default();
        let level_ok = request.acr_values.is_empty()
            || request
                .acr_values
                .iter()
                .any(|wanted| levels.satisfies(Some(&authentication.acr), wanted));
        let fresh_ok = match request.max_age {
            None => true,
            Some(max_age) => authentication
                .auth_time
                .is_some_and(|at| self.now().saturating_sub(at) <= max_age),
        };
        if level_ok && fresh_ok {
            return Ok(SessionDecision::Satisfied(authentication));
        }
        if request.prompt == Prompt::None || !self.is_enrolled(&authentication.subject).await? {
            return Ok(none());
        }
        let first_factors = authentication
            .amr
            .iter()
            .filter(|method| *method == amr::PWD)
            .cloned()
            .collect();
        Ok(SessionDecision::StepUp {
            user: authentication.subject,
            first_factors,
        })
    }

    /// Starts the MFA step of a [`SessionDecision::StepUp`]: only the second factor.
    pub async fn start_session_step_up(
        &self,
        user: &str,
        first_factors: &[String],
        pending: PendingAuthorization,
    ) -> Result<MfaChallenge, MfaError> {
        let first: Vec<&str> = first_factors.iter().map(String::as_str).collect();
        self.start_challenge(user, &first, Some(pending)).await
    }
}

/// A well-formed S256 challenge: 43 base64url characters.
pub(crate) fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn page_key(id: &str) -> String {
    format!("authz_request:{}", tokens::digest(id))
}

fn session_key(token: &str) -> String {
    format!("as_session:{}", tokens::digest(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_noted_but_resources_may_repeat() {
        let params = AuthorizationParams::from_pairs([
            ("client_id", "a"),
            ("resource", "https://one"),
            ("resource", "https://two"),
            ("state", "x"),
            ("state", "y"),
            ("unknown", "1"),
            ("unknown", "2"),
        ]);
        assert_eq!(params.client_id.as_deref(), Some("a"));
        assert_eq!(params.resource, ["https://one", "https://two"]);
        assert_eq!(params.state.as_deref(), Some("x"));
        assert_eq!(params.repeated.as_deref(), Some("state"));
    }

    #[test]
    fn error_redirects_carry_state_and_iss() {
        let redirect = ErrorRedirect {
            redirect_uri: "https://app.example/cb?x=1".into(),
            state: Some("s t".into()),
            error: "invalid_scope",
            description: "the scope is unknown",
        };
        assert_eq!(
            redirect.location("https://as.example"),
            "https://app.example/cb?x=1&error=invalid_scope&error_description=the+scope+is+unknown\
             &state=s+t&iss=https%3A%2F%2Fas.example"
        );
    }
}
