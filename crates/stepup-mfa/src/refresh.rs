//! The token endpoint's protocol: the authorization code exchanged for tokens (RFC 6749 §4.1.3,
//! PKCE), refresh tokens with rotation and reuse detection (RFC 6749 §6, OAuth 2.1 §4.3, the
//! security BCP §4.14), resource indicators (RFC 8707) and revocation (RFC 7009).
//!
//! - Every client is public, so every refresh token is **rotated**: a refresh answers a new
//!   refresh token and the presented one becomes an earlier token of its family. An earlier token
//!   presented again is a **reuse**: the whole family is revoked, the new token with it
//!   ([`GrantStore::rotate_refresh_token`](stepup_store::GrantStore::rotate_refresh_token), one
//!   atomic call: of concurrent refreshes with one token exactly one succeeds).
//! - A refresh token is issued with every token response of a client that may use the
//!   `refresh_token` grant (configured clients unless they opt out; registered clients that
//!   registered it, which they do by default), whether or not it asked for `offline_access`.
//! - A refreshed access token carries the authentication of its family unchanged: `acr`, `amr`,
//!   `auth_time` and the user's generation. It never gains a level, and a route's `max_age` still
//!   asks for a fresh factor. A reset of the user (a new generation) voids every family.
//! - `resource` becomes the access token's `aud`; it must be one of the configured resources,
//!   and a refresh may not change it.

use std::time::Duration;

use serde::Serialize;
use stepup_core::token::{Grant, IssuedToken};
use stepup_core::tokens;
use stepup_store::{RefreshFamily, Rotation};

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::authorization::Authentication;
use crate::error::{InvalidGrant, InvalidScope, InvalidTarget, MfaError};
use crate::factor::ClientInfo;

/// Default: a refresh-token family lives 30 days from the authentication it carries.
pub const DEFAULT_REFRESH_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The longest refresh token looked at.
const MAX_TOKEN: usize = 128;

/// The authorization server's settings beyond clients: resources, scopes, refresh tokens,
/// sessions.
#[derive(Clone)]
pub(crate) struct AuthorizationSettings {
    pub(crate) resources: Vec<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) refresh_lifetime: Duration,
    pub(crate) session_lifetime: Duration,
}

impl Default for AuthorizationSettings {
    fn default() -> Self {
        Self {
            resources: Vec::new(),
            scopes: vec!["offline_access".to_owned()],
            refresh_lifetime: DEFAULT_REFRESH_LIFETIME,
            session_lifetime: crate::authorize::DEFAULT_SESSION_LIFETIME,
        }
    }
}

/// A token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The access token, its type, lifetime and `acr`.
    #[serde(flatten)]
    pub token: IssuedToken,
    /// The refresh token (rotated: each refresh answers a new one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scope granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A refresh request (RFC 6749 §6).
#[derive(Debug, Clone, Copy)]
pub struct RefreshRequest<'a> {
    /// The refresh token.
    pub refresh_token: &'a str,
    /// The public client's id (required: RFC 6749 §3.2.1).
    pub client_id: &'a str,
    /// A narrower scope, if asked for.
    pub scope: Option<&'a str>,
    /// The resource, if named: it must be the family's.
    pub resource: Option<&'a str>,
}

/// A code exchange (RFC 6749 §4.1.3, RFC 7636 §4.5).
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    /// The code.
    pub code: &'a str,
    /// The public client's id.
    pub client_id: &'a str,
    /// The redirect URI of the authorization request.
    pub redirect_uri: &'a str,
    /// The PKCE verifier.
    pub code_verifier: &'a str,
    /// The resource, if named: it must be the code's.
    pub resource: Option<&'a str>,
}

impl Mfa {
    /// Accepts `resource` (an absolute URI, RFC 8707 §2) as a token audience. The issuer's own
    /// audience is always accepted.
    pub fn with_resource(self, resource: impl Into<String>) -> Self {
        let resource = resource.into();
        self.map(|inner| inner.authorization.resources.push(resource))
    }

    /// Accepts `scope` in authorization requests (`offline_access` always is).
    pub fn with_scope(self, scope: impl Into<String>) -> Self {
        let scope = scope.into();
        self.map(|inner| {
            if !inner.authorization.scopes.contains(&scope) {
                inner.authorization.scopes.push(scope);
            }
        })
    }

    /// How long a refresh-token family lives (default 30 days).
    pub fn with_refresh_lifetime(self, lifetime: Duration) -> Self {
        self.map(|inner| inner.authorization.refresh_lifetime = lifetime)
    }

    /// The resources tokens may be issued for (besides the issuer's own audience).
    pub fn resources(&self) -> &[String] {
        &self.inner.authorization.resources
    }

    /// The scopes authorization requests may ask for.
    pub fn scopes(&self) -> &[String] {
        &self.inner.authorization.scopes
    }

    /// Whether every scope token of `scope` is accepted.
    pub(crate) fn scopes_allowed(&self, scope: &str) -> bool {
        scope.split(' ').all(|token| {
            self.inner
                .authorization
                .scopes
                .iter()
                .any(|known| known == token)
        })
    }

    /// Whether tokens may be issued for `resource`.
    pub(crate) fn is_resource(&self, resource: &str) -> bool {
        let own = self
            .issuer()
            .is_some_and(|issuer| issuer.audience() == resource);
        own || self
            .inner
            .authorization
            .resources
            .iter()
            .any(|known| known == resource)
    }

    /// Exchanges an authorization code for tokens: the access token (its `aud` the code's
    /// resource), and a refresh token starting a family when the client may refresh.
    pub async fn exchange_authorization_code(
        &self,
        exchange: CodeExchange<'_>,
        client: &ClientInfo,
    ) -> Result<TokenResponse, MfaError> {
        self.exchange_authorization_code_bound(exchange, client, None)
            .await
    }

    /// [`exchange_authorization_code`](Self::exchange_authorization_code), the access token
    /// bound to the DPoP key with RFC 7638 thumbprint `dpop_jkt` when given (`cnf.jkt`,
    /// `token_type: "DPoP"`), and the refresh-token family too: it refreshes only with a proof
    /// by the same key.
    pub async fn exchange_authorization_code_bound(
        &self,
        exchange: CodeExchange<'_>,
        client: &ClientInfo,
        dpop_jkt: Option<&str>,
    ) -> Result<TokenResponse, MfaError> {
        let redeemed = self
            .redeem_code(
                exchange.code,
                exchange.client_id,
                exchange.redirect_uri,
                exchange.code_verifier,
                client,
            )
            .await?;
        // The code was issued to this client; a client revoked since gets nothing.
        let known = self.client(exchange.client_id).await?.ok_or(InvalidGrant)?;
        if exchange
            .resource
            .is_some_and(|resource| redeemed.resource.as_deref() != Some(resource))
        {
            return Err(InvalidTarget.into());
        }
        let token = self
            .mint(
                &redeemed.authentication,
                redeemed.scope.as_deref(),
                redeemed.resource.as_deref(),
                "authorization_code",
                dpop_jkt,
            )
            .await?;
        let refresh_token = if known.refresh_tokens {
            Some(
                self.start_family(
                    &redeemed.authentication,
                    &known.id,
                    redeemed.scope.clone(),
                    redeemed.resource.clone(),
                    dpop_jkt,
                )
                .await?,
            )
        } else {
            None
        };
        Ok(TokenResponse {
            token,
            refresh_token,
            scope: redeemed.scope,
        })
    }

    /// A refresh (RFC 6749 §6): the presented token is rotated (a new refresh token answered),
    /// and an access token carrying the family's authentication unchanged is issued. Refused
    /// with [`InvalidGrant`] (counted against the client address's failure budget) when the
    /// token is unknown, of a revoked or expired family, of another client, or an earlier token
    /// of its family (which revokes the family); when the user was reset since; when the client
    /// was revoked.
    pub async fn refresh(
        &self,
        request: RefreshRequest<'_>,
        client: &ClientInfo,
    ) -> Result<TokenResponse, MfaError> {
        self.refresh_bound(request, client, None).await
    }

    /// [`refresh`](Self::refresh), the access token bound to the DPoP key with RFC 7638
    /// thumbprint `dpop_jkt` when given. A family bound to a key (its first token was obtained
    /// with a proof) is refused ([`InvalidGrant`], nothing rotated) unless `dpop_jkt` names that
    /// key; an unbound family stays unbound.
    pub async fn refresh_bound(
        &self,
        request: RefreshRequest<'_>,
        client: &ClientInfo,
        dpop_jkt: Option<&str>,
    ) -> Result<TokenResponse, MfaError> {
        self.limited_by_address(client, self.refresh_now(request, dpop_jkt))
            .await
    }

    async fn refresh_now(
        &self,
        request: RefreshRequest<'_>,
        dpop_jkt: Option<&str>,
    ) -> Result<TokenResponse, MfaError> {
        if request.refresh_token.is_empty() || request.refresh_token.len() > MAX_TOKEN {
            return Err(InvalidGrant.into());
        }
        let presented = tokens::digest(request.refresh_token);
        // The client first, by the family the token names: a token presented by another client
        // is refused without rotating (or revoking) anything.
        let family = self
            .grants()
            .family_by_token(&presented)
            .await?
            .ok_or(InvalidGrant)?;
        if family.client_id != request.client_id {
            return Err(InvalidGrant.into());
        }
        // A family bound to a DPoP key refreshes only with a proof by that key (RFC 9449 §5):
        // a stolen refresh token is useless without it. Refused before anything rotates.
        if let Some(bound) = family.dpop_jkt.as_deref()
            && dpop_jkt != Some(bound)
        {
            return Err(InvalidGrant.into());
        }
        // What is asked of the family is checked before the token is rotated: a refused request
        // leaves the presented token current (a family's resource and scope never change).
        if let Some(resource) = request.resource
            && family.resource.as_deref() != Some(resource)
        {
            return Err(InvalidTarget.into());
        }
        let scope = match request.scope {
            None => family.scope.clone(),
            Some(asked) => {
                let granted: Vec<&str> = family.scope.as_deref().unwrap_or("").split(' ').collect();
                if asked.is_empty() || !asked.split(' ').all(|token| granted.contains(&token)) {
                    return Err(InvalidScope.into());
                }
                Some(asked.to_owned())
            }
        };
        let replacement = tokens::random_token();
        let rotated = match self
            .grants()
            .rotate_refresh_token(&presented, &tokens::digest(&replacement))
            .await?
        {
            Rotation::Rotated(family) => family,
            Rotation::Reused(family) => {
                let event = AuditEvent::RefreshTokenReused {
                    client_id: family.client_id.clone(),
                    family_id: family.id.clone(),
                };
                self.audit().record(&family.user, event).await;
                return Err(InvalidGrant.into());
            }
            _ => return Err(InvalidGrant.into()),
        };
        // Rotated: from here a refusal also revokes the family, which can never serve again.
        let refuse = async |error: MfaError, reason: &'static str| {
            self.revoke_family_audited(&rotated, reason).await?;
            Err::<TokenResponse, MfaError>(error)
        };
        let current = self.current_generation(&rotated.user).await?.value;
        if rotated.generation != current || !self.accounts().account_exists(&rotated.user).await? {
            return refuse(InvalidGrant.into(), "reset").await;
        }
        if self.client(&rotated.client_id).await?.is_none() {
            return refuse(InvalidGrant.into(), "client_revoked").await;
        }
        let authentication = Authentication {
            subject: rotated.user.clone(),
            acr: rotated.acr.clone(),
            amr: rotated.amr.clone(),
            auth_time: rotated.auth_time,
            generation: rotated.generation,
        };
        let token = self
            .mint(
                &authentication,
                scope.as_deref(),
                rotated.resource.as_deref(),
                "refresh_token",
                dpop_jkt,
            )
            .await?;
        Ok(TokenResponse {
            token,
            refresh_token: Some(replacement),
            scope,
        })
    }

    /// Revokes the family of a refresh token (RFC 7009 §2.1) presented by `client_id`; `true`
    /// when a live family was revoked. A token that is not a refresh token of this client
    /// revokes nothing (and is not an error: §2.2).
    pub async fn revoke_refresh_token(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<bool, MfaError> {
        if token.is_empty() || token.len() > MAX_TOKEN {
            return Ok(false);
        }
        let Some(family) = self
            .grants()
            .family_by_token(&tokens::digest(token))
            .await?
        else {
            return Ok(false);
        };
        if family.client_id != client_id {
            return Ok(false);
        }
        self.revoke_family_audited(&family, "revocation").await
    }

    /// The user's live refresh-token families (the clients holding a session), newest first.
    pub async fn refresh_families(&self, user: &str) -> Result<Vec<RefreshFamily>, MfaError> {
        let generation = self.current_generation(user).await?.value;
        let mut families = self.grants().families(user).await?;
        families.retain(|family| family.generation == generation);
        Ok(families)
    }

    /// Revokes one of the user's refresh-token families (audited); `false` when the user has no
    /// such live family.
    pub async fn revoke_refresh_family(&self, user: &str, id: &str) -> Result<bool, MfaError> {
        let families = self.grants().families(user).await?;
        let Some(family) = families.iter().find(|family| family.id == id) else {
            return Ok(false);
        };
        self.revoke_family_audited(family, "user").await
    }

    async fn revoke_family_audited(
        &self,
        family: &RefreshFamily,
        reason: &'static str,
    ) -> Result<bool, MfaError> {
        let revoked = self.grants().revoke_family(&family.id).await?;
        if revoked {
            let event = AuditEvent::RefreshFamilyRevoked {
                family_id: family.id.clone(),
                reason,
            };
            self.audit().record(&family.user, event).await;
        }
        Ok(revoked)
    }

    /// Starts a refresh-token family carrying `authentication` for `client_id` (audited),
    /// bound to the DPoP key `dpop_jkt` names when given; returns its first token.
    async fn start_family(
        &self,
        authentication: &Authentication,
        client_id: &str,
        scope: Option<String>,
        resource: Option<String>,
        dpop_jkt: Option<&str>,
    ) -> Result<String, MfaError> {
        let now = self.now();
        let token = tokens::random_token();
        let family = RefreshFamily {
            id: tokens::random_id(),
            user: authentication.subject.clone(),
            client_id: client_id.to_owned(),
            acr: authentication.acr.clone(),
            amr: authentication.amr.clone(),
            auth_time: authentication.auth_time,
            generation: authentication.generation,
            scope,
            resource,
            token_hash: tokens::digest(&token),
            created_at: now,
            expires_at: now.saturating_add(self.inner.authorization.refresh_lifetime.as_secs()),
            revoked: false,
            dpop_jkt: dpop_jkt.map(str::to_owned),
        };
        let event = AuditEvent::RefreshFamilyStarted {
            client_id: client_id.to_owned(),
            family_id: family.id.clone(),
        };
        self.grants().insert_family(family).await?;
        self.audit().record(&authentication.subject, event).await;
        Ok(token)
    }

    /// Signs an access token for `authentication` with `scope`, for `resource` (its `aud`),
    /// bound to the DPoP key `dpop_jkt` names (when given), audited as issued `via`.
    async fn mint(
        &self,
        authentication: &Authentication,
        scope: Option<&str>,
        resource: Option<&str>,
        via: &'static str,
        dpop_jkt: Option<&str>,
    ) -> Result<IssuedToken, MfaError> {
        self.issue_token_with(authentication, via, |grant: Grant| {
            let grant = crate::login::bind(grant, dpop_jkt);
            let grant = match scope {
                Some(scope) => grant.scope(scope),
                None => grant,
            };
            match resource {
                Some(resource) => grant.audience(resource),
                None => grant,
            }
        })
        .await
    }
}
