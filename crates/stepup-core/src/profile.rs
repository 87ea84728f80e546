//! Identity-provider profiles: how a provider's access token says how the user authenticated, and
//! how to ask that provider for more.
//!
//! Routes keep stepup's one vocabulary (`RequireMfa`, `RequireAcr::level("phr")`, levels `pwd` <
//! `mfa` < `phr`). A profile translates both ways: at verification it reads the provider's claims
//! (`acr`, `acrs` or `amr`; `scope` or `scp`; Cognito's `client_id` and `token_use`) into a stepup
//! level on the [`AuthContext`](crate::AuthContext); at refusal it names the required level in the
//! provider's own vocabulary, so a client can pass `acr_values` straight back to the provider, or
//! answers in the provider's own dialect (Entra ID's claims challenge).
//!
//! | profile | level read from | `acr_values` asked for `mfa` / `phr` |
//! |---|---|---|
//! | [`keycloak`](IdpProfile::keycloak) | `acr` `"0"`, `"1"` → `pwd`, `"2"` → `mfa`, `"3"` → `phr` (or names mapped with [`IdpProfile::acr`]) | `2` / `3` |
//! | [`okta`](IdpProfile::okta) | `acr` `urn:okta:loa:1fa:any`, `1fa:pwd`, `2fa:any:ifpossible` → `pwd`; `2fa:any` → `mfa`; `phr`, `phrh` → `phr` | `urn:okta:loa:2fa:any` / `phr` |
//! | [`auth0`](IdpProfile::auth0) | `amr` containing `mfa`, or the PAPE multi-factor `acr` → `mfa`; else `pwd` | the PAPE multi-factor policy / (none: `phr`) |
//! | [`cognito`](IdpProfile::cognito) | `acr` `urn:cognito:loa:1` → `pwd`, `2`, `3` → `mfa`, `4` → `phr`; `amr` `mfa` → `mfa`; else `pwd` | `urn:cognito:loa:2` / `urn:cognito:loa:4` |
//! | [`entra`](IdpProfile::entra) | `acrs` (authentication contexts): `c1` → `mfa`, `c2` → `phr` by default ([`IdpProfile::context`]); else `pwd` | claims challenge for `c1` / `c2` |
//! | [`generic`](IdpProfile::generic) | `acr` through a configurable map (default stepup's own `pwd`, `mfa`, `phr`); without `acr`, `amr` `mfa` → `mfa` | the mapped value |
//!
//! ```
//! use stepup_core::profile::IdpProfile;
//!
//! let okta = IdpProfile::okta();
//! assert_eq!(okta.level_for_acr("urn:okta:loa:2fa:any").as_deref(), Some("mfa"));
//! assert_eq!(okta.acr_values_for("mfa"), "urn:okta:loa:2fa:any");
//!
//! let generic = IdpProfile::generic().with_acr_map("mfa=urn:example:2fa,phr=urn:example:phr")?;
//! assert_eq!(generic.level_for_acr("urn:example:phr").as_deref(), Some("phr"));
//! assert_eq!(generic.acr_values_for("mfa"), "urn:example:2fa");
//! # Ok::<(), stepup_core::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Error;
use crate::acr::{ChallengeDialect, ClaimsChallenge, StepUpChallenge, StepUpReason, level};

/// The PAPE multi-factor policy URI Auth0 sets as `acr` after a second factor.
pub const AUTH0_MFA_ACR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// Which provider dialect a profile speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileKind {
    /// Keycloak: `acr` levels of assurance `"0"`…`"3"` or mapped names.
    Keycloak,
    /// Okta: `urn:okta:loa:*` and `phr`/`phrh` in `acr`, scopes in `scp` (an array).
    Okta,
    /// Auth0: `amr` containing `mfa`, or the PAPE multi-factor `acr`.
    Auth0,
    /// Amazon Cognito: `urn:cognito:loa:1`…`4`; access tokens carry `client_id` and
    /// `token_use`, no `aud`.
    Cognito,
    /// Microsoft Entra ID (v2 access tokens): authentication contexts in `acrs`; the claims
    /// challenge.
    Entra,
    /// Any other issuer, stepup included: a configurable `acr` map.
    Generic,
}

/// Where the audience of a token is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudienceRule {
    /// The `aud` claim must name one of the configured audiences (RFC 7519).
    Aud,
    /// Cognito access tokens: `client_id` must be one of the configured audiences and
    /// `token_use` must be `access` (they carry no `aud`).
    CognitoClientId,
}

/// How one provider expresses authentication levels; see the [module docs](self). Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpProfile {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    kind: ProfileKind,
    /// Provider `acr` (or, for Entra, authentication context) → stepup level, for reading.
    read: Vec<(String, String)>,
    /// Stepup level → provider value, for challenges (the first mapping of a level wins).
    write: Vec<(String, String)>,
    /// The level of a verified token that names none this profile knows (`None`: no level).
    base: Option<&'static str>,
    /// Whether `amr` containing `mfa` raises the level to `mfa`.
    amr_mfa: bool,
    authorization_uri: Option<String>,
}

impl IdpProfile {
    fn new(kind: ProfileKind, pairs: &[(&str, &str)], base: Option<&'static str>) -> Self {
        let mut profile = Self {
            inner: Arc::new(Inner {
                kind,
                read: Vec::new(),
                write: Vec::new(),
                base,
                amr_mfa: false,
                authorization_uri: None,
            }),
        };
        for (provider, stepup) in pairs {
            profile = profile.acr(*provider, *stepup);
        }
        profile
    }

    /// Keycloak: `acr` `"0"` (a session reused without a new login) and `"1"` are `pwd`, `"2"` is
    /// `mfa`, `"3"` is `phr`; challenges ask for `2` or `3`. A realm that maps levels to names
    /// (`acr.loa.map`, e.g. `{"silver": 1, "gold": 2}`) adds them with [`acr`](Self::acr):
    /// `IdpProfile::keycloak().acr("gold", "mfa")`. A Keycloak level configured with max age 0
    /// is met by "this authentication only": the route's `max_age` is passed in the challenge.
    pub fn keycloak() -> Self {
        Self::new(
            ProfileKind::Keycloak,
            &[
                ("1", level::PWD),
                ("0", level::PWD),
                ("2", level::MFA),
                ("3", level::PHR),
            ],
            None,
        )
    }

    /// Okta: `urn:okta:loa:1fa:any`, `urn:okta:loa:1fa:pwd` and `urn:okta:loa:2fa:any:ifpossible`
    /// (a second factor only if the user has one: not a guarantee) are `pwd`;
    /// `urn:okta:loa:2fa:any` is `mfa`; `phr` and `phrh` (phishing-resistant, hardware-bound) are
    /// `phr`. Scopes come from `scp` (an array).
    pub fn okta() -> Self {
        Self::new(
            ProfileKind::Okta,
            &[
                ("urn:okta:loa:1fa:any", level::PWD),
                ("urn:okta:loa:1fa:pwd", level::PWD),
                ("urn:okta:loa:2fa:any:ifpossible", level::PWD),
                ("urn:okta:loa:2fa:any", level::MFA),
                ("phr", level::PHR),
                ("phrh", level::PHR),
            ],
            None,
        )
    }

    /// Auth0: `mfa` when `amr` contains `mfa` or `acr` is the PAPE multi-factor policy
    /// ([`AUTH0_MFA_ACR`]), else `pwd`. Auth0 has no phishing-resistant level: a `phr`
    /// challenge names `phr`, which Auth0 cannot grant.
    pub fn auth0() -> Self {
        let mut profile = Self::new(
            ProfileKind::Auth0,
            &[(AUTH0_MFA_ACR, level::MFA)],
            Some(level::PWD),
        );
        Arc::make_mut(&mut profile.inner).amr_mfa = true;
        profile
    }

    /// Amazon Cognito: `urn:cognito:loa:1` is `pwd`, `2` and `3` are `mfa`, `4` is `phr`; `amr`
    /// containing `mfa` is `mfa`; else `pwd`. Access tokens carry no `aud`: the configured
    /// audiences are the app client ids, checked against `client_id`, and `token_use` must be
    /// `access`.
    pub fn cognito() -> Self {
        let mut profile = Self::new(
            ProfileKind::Cognito,
            &[
                ("urn:cognito:loa:1", level::PWD),
                ("urn:cognito:loa:2", level::MFA),
                ("urn:cognito:loa:3", level::MFA),
                ("urn:cognito:loa:4", level::PHR),
            ],
            Some(level::PWD),
        );
        Arc::make_mut(&mut profile.inner).amr_mfa = true;
        profile
    }

    /// Microsoft Entra ID, v2 access tokens: no `acr`; the authentication contexts met are in
    /// `acrs` (`c1`…`c99`, defined per tenant). By default `c1` stands for `mfa` and `c2` for
    /// `phr`; name yours with [`context`](Self::context). A token with none of them is `pwd`.
    ///
    /// A refusal is Entra's claims challenge (`401`, `error="insufficient_claims"`, `claims` the
    /// base64 of `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`) when the token's
    /// `xms_cc` contains `cp1` (the client can handle one), else a plain `403`. The challenge's
    /// `authorization_uri` is set with [`authorization_uri`](Self::authorization_uri), or
    /// derived from a `https://login.microsoftonline.com/{tenant}/v2.0` issuer.
    pub fn entra() -> Self {
        Self::new(
            ProfileKind::Entra,
            &[("c1", level::MFA), ("c2", level::PHR)],
            Some(level::PWD),
        )
    }

    /// Any other issuer, stepup's own included: `acr` values `pwd`, `mfa` and `phr` as
    /// themselves, or the map given with [`acr`](Self::acr) / [`with_acr_map`](Self::with_acr_map);
    /// a token without `acr` whose `amr` contains `mfa` is `mfa`.
    pub fn generic() -> Self {
        let mut profile = Self::new(ProfileKind::Generic, &[], None);
        Arc::make_mut(&mut profile.inner).amr_mfa = true;
        profile
    }

    /// The profile named `name` (`keycloak`, `okta`, `auth0`, `cognito`, `entra`, `generic`), as
    /// a `STEPUP_IDP_PROFILE` setting would name it.
    pub fn named(name: &str) -> Result<Self, Error> {
        match name.trim().to_ascii_lowercase().as_str() {
            "keycloak" => Ok(Self::keycloak()),
            "okta" => Ok(Self::okta()),
            "auth0" => Ok(Self::auth0()),
            "cognito" => Ok(Self::cognito()),
            "entra" | "entra-id" | "azure" => Ok(Self::entra()),
            "generic" | "" => Ok(Self::generic()),
            _ => Err(Error::Config(
                "unknown identity-provider profile (keycloak, okta, auth0, cognito, entra, generic)",
            )),
        }
    }

    /// Maps the provider's `acr` value `provider` to the stepup level `stepup` (both ways: a
    /// token carrying `provider` is at `stepup`; a challenge for `stepup` asks for `provider`,
    /// unless an earlier mapping of `stepup` exists). For Entra, `provider` is an authentication
    /// context (see [`context`](Self::context)).
    pub fn acr(mut self, provider: impl Into<String>, stepup: impl Into<String>) -> Self {
        let (provider, stepup) = (provider.into(), stepup.into());
        let inner = Arc::make_mut(&mut self.inner);
        inner.read.retain(|(known, _)| *known != provider);
        inner.read.push((provider.clone(), stepup.clone()));
        if !inner.write.iter().any(|(level, _)| *level == stepup) {
            inner.write.push((stepup, provider));
        }
        self
    }

    /// Entra ID: the authentication context `context` (`c1`…`c99`) stands for the stepup level
    /// `stepup`, replacing the default meaning of that level.
    pub fn context(mut self, context: impl Into<String>, stepup: impl Into<String>) -> Self {
        let (context, stepup) = (context.into(), stepup.into());
        let inner = Arc::make_mut(&mut self.inner);
        inner
            .read
            .retain(|(known, level)| *known != context && *level != stepup);
        inner.write.retain(|(level, _)| *level != stepup);
        inner.read.push((context.clone(), stepup.clone()));
        inner.write.push((stepup, context));
        self
    }

    /// Adds the mappings of a `level=provider,level=provider` list (the `STEPUP_ACR_MAP`
    /// format, e.g. `mfa=urn:example:2fa,phr=urn:example:phr`).
    pub fn with_acr_map(mut self, map: &str) -> Result<Self, Error> {
        for pair in map
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let Some((stepup, provider)) = pair.split_once('=') else {
                return Err(Error::Config(
                    "an acr map is a comma-separated list of level=value pairs",
                ));
            };
            let (stepup, provider) = (stepup.trim(), provider.trim());
            if stepup.is_empty() || provider.is_empty() {
                return Err(Error::Config("an acr map entry has an empty side"));
            }
            self = self.acr(provider, stepup);
        }
        Ok(self)
    }

    /// Entra ID: the `authorization_uri` named in claims challenges (the tenant's
    /// `…/oauth2/v2.0/authorize` endpoint).
    pub fn authorization_uri(mut self, uri: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).authorization_uri = Some(uri.into());
        self
    }

    /// Which provider this profile reads.
    pub fn kind(&self) -> ProfileKind {
        self.inner.kind
    }

    /// Where the audience is checked: `aud`, or Cognito's `client_id` + `token_use`.
    pub fn audience_rule(&self) -> AudienceRule {
        match self.inner.kind {
            ProfileKind::Cognito => AudienceRule::CognitoClientId,
            _ => AudienceRule::Aud,
        }
    }

    /// The stepup level of a provider `acr` value (or Entra authentication context), if mapped.
    /// The generic profile without a map reads `pwd`, `mfa` and `phr` as themselves.
    pub fn level_for_acr(&self, acr: &str) -> Option<String> {
        if let Some((_, stepup)) = self.inner.read.iter().find(|(known, _)| known == acr) {
            return Some(stepup.clone());
        }
        let identity = self.inner.kind == ProfileKind::Generic
            && matches!(acr, level::PWD | level::MFA | level::PHR)
            && !self.inner.write.iter().any(|(stepup, _)| stepup == acr);
        identity.then(|| acr.to_owned())
    }

    /// The value a challenge asks the provider for, for the stepup level `stepup`: its mapping,
    /// or the level itself when the provider has none.
    pub fn acr_values_for(&self, stepup: &str) -> String {
        self.inner
            .write
            .iter()
            .find(|(level, _)| level == stepup)
            .map_or_else(|| stepup.to_owned(), |(_, provider)| provider.clone())
    }

    /// The stepup level of a verified token: `acr` (Entra: the strongest context in `acrs`),
    /// raised to `mfa` by an `amr` containing `mfa` where the provider says so, else the
    /// profile's base level. An `acr` the profile does not know is kept as it is (it then meets
    /// only a requirement spelled exactly the same), unless it spells a stepup level.
    pub(crate) fn level_of(
        &self,
        acr: Option<&str>,
        acrs: &[String],
        amr: &[String],
        order: &crate::AcrLevels,
    ) -> Option<String> {
        let mut found: Option<String> = if self.inner.kind == ProfileKind::Entra {
            acrs.iter()
                .filter_map(|context| self.level_for_acr(context))
                .max_by_key(|level| order.rank(level))
        } else {
            // An unknown value is kept as it is (it then meets only a requirement spelled the
            // same), unless it spells one of stepup's levels: a provider with its own words
            // cannot reach a level by writing stepup's.
            acr.and_then(|acr| {
                self.level_for_acr(acr).or_else(|| {
                    let remapped = self.inner.write.iter().any(|(level, _)| level == acr);
                    let keep = match order.rank(acr) {
                        None => true,
                        // The generic profile reads the levels of the order as themselves.
                        Some(_) => self.inner.kind == ProfileKind::Generic && !remapped,
                    };
                    keep.then(|| acr.to_owned())
                })
            })
        };
        if self.inner.amr_mfa && amr.iter().any(|method| method == "mfa") {
            let below_mfa = found
                .as_deref()
                .is_none_or(|level| order.rank(level) < order.rank(level::MFA));
            if below_mfa && (acr.is_none() || self.inner.kind != ProfileKind::Generic) {
                found = Some(level::MFA.to_owned());
            }
        }
        found.or_else(|| self.inner.base.map(str::to_owned))
    }

    /// The refusal for a caller below `required`, in this provider's dialect. `claims_capable`
    /// says whether the token declared it can handle a claims challenge (Entra `xms_cc` `cp1`).
    pub(crate) fn challenge(
        &self,
        required: &str,
        max_age: Option<u64>,
        reason: StepUpReason,
        claims_capable: bool,
        issuer: Option<&str>,
    ) -> StepUpChallenge {
        let acr_values = self.acr_values_for(required);
        if self.inner.kind != ProfileKind::Entra {
            return StepUpChallenge::new(acr_values, max_age, reason);
        }
        let challenge = StepUpChallenge::new(acr_values.clone(), max_age, reason);
        if !claims_capable {
            return challenge.with_dialect(ChallengeDialect::Forbidden);
        }
        let claims = serde_json::json!({
            "access_token": {"acrs": {"essential": true, "value": acr_values}}
        });
        challenge.with_claims_challenge(ClaimsChallenge {
            authorization_uri: self
                .inner
                .authorization_uri
                .clone()
                .or_else(|| issuer.and_then(entra_authorization_uri))
                .unwrap_or_default(),
            claims: STANDARD.encode(claims.to_string()),
        })
    }
}

/// `https://login.microsoftonline.com/{tenant}/v2.0` → `…/{tenant}/oauth2/v2.0/authorize`.
fn entra_authorization_uri(issuer: &str) -> Option<String> {
    let base = issuer.strip_suffix("/v2.0")?;
    Some(format!("{base}/oauth2/v2.0/authorize"))
}

impl fmt::Debug for IdpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpProfile")
            .field("kind", &self.inner.kind)
            .field("acr", &self.inner.read)
            .finish_non_exhaustive()
    }
}

impl Default for IdpProfile {
    fn default() -> Self {
        Self::generic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AcrLevels;

    fn level(
        profile: &IdpProfile,
        acr: Option<&str>,
        acrs: &[&str],
        amr: &[&str],
    ) -> Option<String> {
        let acrs: Vec<String> = acrs.iter().map(|s| (*s).to_owned()).collect();
        let amr: Vec<String> = amr.iter().map(|s| (*s).to_owned()).collect();
        profile.level_of(acr, &acrs, &amr, &AcrLevels::default())
    }

    #[test]
    fn each_provider_reads_its_own_values() {
        let keycloak = IdpProfile::keycloak();
        assert_eq!(
            level(&keycloak, Some("0"), &[], &[]).as_deref(),
            Some("pwd")
        );
        assert_eq!(
            level(&keycloak, Some("1"), &[], &[]).as_deref(),
            Some("pwd")
        );
        assert_eq!(
            level(&keycloak, Some("2"), &[], &[]).as_deref(),
            Some("mfa")
        );
        assert_eq!(level(&keycloak, None, &[], &["mfa"]), None);
        let named = IdpProfile::keycloak().acr("gold", "mfa");
        assert_eq!(
            level(&named, Some("gold"), &[], &[]).as_deref(),
            Some("mfa")
        );
        assert_eq!(named.acr_values_for("mfa"), "2");

        let okta = IdpProfile::okta();
        for (acr, expected) in [
            ("urn:okta:loa:1fa:any", "pwd"),
            ("urn:okta:loa:1fa:pwd", "pwd"),
            ("urn:okta:loa:2fa:any:ifpossible", "pwd"),
            ("urn:okta:loa:2fa:any", "mfa"),
            ("phr", "phr"),
            ("phrh", "phr"),
        ] {
            assert_eq!(
                level(&okta, Some(acr), &[], &[]).as_deref(),
                Some(expected),
                "{acr}"
            );
        }
        assert_eq!(okta.acr_values_for("phr"), "phr");

        let auth0 = IdpProfile::auth0();
        assert_eq!(
            level(&auth0, None, &[], &["pwd", "mfa"]).as_deref(),
            Some("mfa")
        );
        assert_eq!(
            level(&auth0, Some(AUTH0_MFA_ACR), &[], &[]).as_deref(),
            Some("mfa")
        );
        assert_eq!(level(&auth0, None, &[], &["pwd"]).as_deref(), Some("pwd"));
        assert_eq!(auth0.acr_values_for("mfa"), AUTH0_MFA_ACR);

        let cognito = IdpProfile::cognito();
        assert_eq!(
            level(&cognito, Some("urn:cognito:loa:1"), &[], &[]).as_deref(),
            Some("pwd")
        );
        assert_eq!(
            level(&cognito, Some("urn:cognito:loa:1"), &[], &["pwd", "mfa"]).as_deref(),
            Some("mfa")
        );
        assert_eq!(
            level(&cognito, Some("urn:cognito:loa:4"), &[], &[]).as_deref(),
            Some("phr")
        );
        assert_eq!(cognito.acr_values_for("mfa"), "urn:cognito:loa:2");
        assert_eq!(cognito.audience_rule(), AudienceRule::CognitoClientId);

        let entra = IdpProfile::entra();
        assert_eq!(level(&entra, None, &["c1"], &[]).as_deref(), Some("mfa"));
        assert_eq!(
            level(&entra, None, &["c1", "c2"], &[]).as_deref(),
            Some("phr")
        );
        assert_eq!(level(&entra, None, &["c7"], &[]).as_deref(), Some("pwd"));
        assert_eq!(level(&entra, None, &[], &[]).as_deref(), Some("pwd"));
        let custom = IdpProfile::entra().context("c7", "mfa");
        assert_eq!(level(&custom, None, &["c1"], &[]).as_deref(), Some("pwd"));
        assert_eq!(level(&custom, None, &["c7"], &[]).as_deref(), Some("mfa"));
        assert_eq!(custom.acr_values_for("mfa"), "c7");
    }

    #[test]
    fn the_generic_profile_reads_stepup_values_or_its_map() {
        let generic = IdpProfile::generic();
        assert_eq!(
            level(&generic, Some("phr"), &[], &[]).as_deref(),
            Some("phr")
        );
        assert_eq!(
            level(&generic, None, &[], &["pwd", "mfa"]).as_deref(),
            Some("mfa")
        );
        assert_eq!(
            level(&generic, Some("pwd"), &[], &["mfa"]).as_deref(),
            Some("pwd")
        );
        assert_eq!(level(&generic, None, &[], &["pwd"]), None);
        // An unknown value is kept as it is.
        assert_eq!(
            level(&generic, Some("gold"), &[], &[]).as_deref(),
            Some("gold")
        );

        let mapped = IdpProfile::generic()
            .with_acr_map("mfa=urn:example:2fa, phr=urn:example:phr")
            .unwrap();
        assert_eq!(
            level(&mapped, Some("urn:example:2fa"), &[], &[]).as_deref(),
            Some("mfa")
        );
        assert_eq!(mapped.acr_values_for("phr"), "urn:example:phr");
        // A mapped level is no longer read under its stepup name.
        assert_eq!(mapped.level_for_acr("mfa"), None);
        assert_eq!(mapped.level_for_acr("pwd").as_deref(), Some("pwd"));
        for bad in ["mfa", "=x", "mfa="] {
            assert!(IdpProfile::generic().with_acr_map(bad).is_err(), "{bad}");
        }
        assert!(IdpProfile::named("okta").is_ok());
        assert!(IdpProfile::named("ping").is_err());
    }

    #[test]
    fn entra_challenges_with_claims_only_when_the_client_can() {
        let entra = IdpProfile::entra();
        let issuer = "https://login.microsoftonline.com/tenant-1/v2.0";
        let capable = entra.challenge("mfa", None, StepUpReason::LevelTooLow, true, Some(issuer));
        assert_eq!(capable.dialect, ChallengeDialect::EntraClaims);
        let ClaimsChallenge {
            authorization_uri,
            claims,
        } = capable.claims_challenge.as_deref().unwrap();
        assert_eq!(
            authorization_uri,
            "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/authorize"
        );
        let decoded = STANDARD.decode(claims).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&decoded).unwrap(),
            serde_json::json!({"access_token": {"acrs": {"essential": true, "value": "c1"}}})
        );
        let plain = entra.challenge("mfa", None, StepUpReason::LevelTooLow, false, Some(issuer));
        assert_eq!(plain.dialect, ChallengeDialect::Forbidden);
        let okta = IdpProfile::okta().challenge("mfa", Some(300), StepUpReason::TooOld, true, None);
        assert_eq!(okta.dialect, ChallengeDialect::Rfc9470);
        assert_eq!(okta.acr_values, "urn:okta:loa:2fa:any");
    }
}
