//! The WebAuthn factor (passkeys and security keys), on `webauthn-rs`: registration, the
//! assertion as a second factor, and passwordless login with a discoverable credential.
//!
//! Storage touches no backend: a passkey is a credential of kind [`KIND`] whose id is the
//! credential id (base64url), whose payload is the serialised `Passkey` (public key, signature
//! counter, backup flags; no secret) and whose counter is the signature counter, several per
//! user ([`Enrollment::Many`]). Ceremony state (`PasskeyRegistration`, `PasskeyAuthentication`,
//! `DiscoverableAuthentication`) lives only in the ephemeral store, under the SHA-256 of a random
//! token (or of the `mfa_token`), for at most [`CEREMONY_TTL`], and is taken once: a challenge is
//! never answered twice.
//!
//! The signature counter advances by compare-and-set ([`FactorStore::advance_counter`]); a
//! counter that does not move forward (a cloned authenticator) is refused and audited as
//! `webauthn_clone_suspected`. Authenticators whose counter stays 0 (most synced passkeys) have
//! their payload replaced by compare-and-set instead, keeping the backup flags current.
//!
//! Levels: an assertion with user verification is phishing-resistant (`acr` `phr`); `amr` is
//! `hwk`. The user handle given to authenticators is a keyed digest of the user id (never the id
//! itself), so it says nothing about the user to anyone without the lookup key.
//!
//! [`FactorStore::advance_counter`]: stepup_store::FactorStore::advance_counter

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use stepup_core::tokens;
use stepup_store::{CodeSet, Credential, CredentialRef, CredentialStatus, Enrollment};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};

pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url,
};

use crate::audit::AuditEvent;
use crate::{Method, Mfa, MfaError};

/// The store kind of WebAuthn credentials.
pub const KIND: &str = "webauthn";

/// How long a ceremony (registration, passwordless login) waits for its answer.
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// The longest label a credential may have, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// The relying party: its id (a registrable domain) and the origins allowed to answer. Cheap to
/// clone.
#[derive(Clone)]
pub struct RelyingParty {
    webauthn: Arc<Webauthn>,
    rp_id: String,
    origins: Vec<Url>,
}

impl RelyingParty {
    /// A relying party with id `rp_id` (e.g. `example.com` or `localhost`) whose one allowed
    /// origin is `origin` (e.g. `https://login.example.com`); `rp_id` must be the origin's host
    /// or a parent domain of it. Browsers refuse IP-address origins.
    pub fn new(rp_id: &str, origin: &str) -> Result<Self, MfaError> {
        Self::with_origins(rp_id, &[origin])
    }

    /// A relying party allowing several origins (each must be within `rp_id`).
    pub fn with_origins(rp_id: &str, origins: &[&str]) -> Result<Self, MfaError> {
        let invalid = MfaError::Internal("invalid relying party: bad rp_id or origin");
        let origins = origins
            .iter()
            .map(|origin| Url::parse(origin))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| MfaError::Internal("invalid relying party: an origin is not a URL"))?;
        let (first, rest) = origins
            .split_first()
            .ok_or(MfaError::Internal("invalid relying party: no origin given"))?;
        let mut builder = WebauthnBuilder::new(rp_id, first)
            .map_err(|_| MfaError::Internal("invalid relying party: bad rp_id or origin"))?;
        for origin in rest {
            let within = origin
                .domain()
                .is_some_and(|host| host == rp_id || host.ends_with(&format!(".{rp_id}")));
            if !within {
                return Err(invalid);
            }
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder.build().map_err(|_| invalid)?;
        Ok(Self {
            webauthn: Arc::new(webauthn),
            rp_id: rp_id.to_owned(),
            origins,
        })
    }

    /// The relying party id.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The allowed origins.
    pub fn origins(&self) -> &[Url] {
        &self.origins
    }
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("rp_id", &self.rp_id)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

/// A started registration: the options for `navigator.credentials.create()` and the token the
/// client sends back with the new credential.
#[derive(Debug, Clone, Serialize)]
pub struct WebauthnRegistration {
    /// `{"publicKey": …}` creation options, as `parseCreationOptionsFromJSON` reads them.
    #[serde(flatten)]
    pub options: CreationChallengeResponse,
    /// Opaque, single-use, [`CEREMONY_TTL`].
    pub registration_token: String,
}

/// A finished registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebauthnEnrolled {
    /// The new credential's id (base64url).
    pub credential_id: String,
    /// The backup codes, shown this once, when this was the user's first factor (else empty).
    pub backup_codes: Vec<String>,
}

/// A started passwordless login: options for `navigator.credentials.get()` and the token the
/// client sends back with the assertion.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyLogin {
    /// `{"publicKey": …}` request options, as `parseRequestOptionsFromJSON` reads them.
    #[serde(flatten)]
    pub options: RequestChallengeResponse,
    /// Opaque, single-use, [`CEREMONY_TTL`].
    pub passkey_token: String,
}

/// A passwordless login that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySignIn {
    /// The user.
    pub subject: String,
    /// `["hwk"]`.
    pub amr: Vec<String>,
    /// Whether the authenticator verified the user (`acr` `phr`).
    pub user_verified: bool,
}

/// One WebAuthn credential, without its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PasskeyInfo {
    /// The credential id (base64url).
    pub id: String,
    /// A name the user chose.
    pub label: Option<String>,
    /// When it was registered (Unix seconds).
    pub created_at: u64,
    /// When it last completed a login with an advancing counter (Unix seconds).
    pub last_used_at: Option<u64>,
    /// The last signature counter seen (0 for authenticators without one).
    pub counter: u64,
    /// Whether the credential may be synced to other devices (a synced passkey).
    pub backup_eligible: Option<bool>,
    /// Whether it is backed up (synced) now.
    pub backup_state: Option<bool>,
}

/// A registration waiting for its answer.
#[derive(Serialize, Deserialize)]
struct RegistrationState {
    user: String,
    state: PasskeyRegistration,
}

impl Mfa {
    fn webauthn(&self) -> Result<&Webauthn, MfaError> {
        self.inner
            .relying_party
            .as_ref()
            .map(|rp| rp.webauthn.as_ref())
            .ok_or(MfaError::WebauthnNotConfigured)
    }

    /// The user handle authenticators store for `user`: a keyed digest, stable for a given
    /// lookup key.
    fn user_handle(&self, user: &str) -> Uuid {
        let digest = self
            .inner
            .backup
            .lookup(&format!("webauthn-user-handle:{user}"));
        // 32 hex digits are the 16 bytes of a UUID.
        Uuid::try_parse(&digest[..32]).unwrap_or_else(|_| Uuid::nil())
    }

    /// Starts registering a passkey or security key for `user` (`name` and `display_name` are
    /// shown by the authenticator). The user's credentials are excluded.
    pub async fn begin_webauthn_registration(
        &self,
        user: &str,
        name: &str,
        display_name: &str,
    ) -> Result<WebauthnRegistration, MfaError> {
        let webauthn = self.webauthn()?;
        let exclude: Vec<_> = self
            .passkeys(user)
            .await?
            .into_iter()
            .map(|(_, passkey)| passkey.cred_id().clone())
            .collect();
        let (mut options, state) = webauthn
            .start_passkey_registration(
                self.user_handle(user),
                name,
                display_name,
                Some(exclude).filter(|ids| !ids.is_empty()),
            )
            .map_err(|_| MfaError::Internal("could not start a WebAuthn registration"))?;
        // webauthn-rs asks for a non-discoverable credential; passwordless login needs a
        // discoverable one, so prefer it (a security key short of resident slots still
        // registers, as a second factor only). Verification does not depend on it.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Preferred);
        }
        let state = RegistrationState {
            user: user.to_owned(),
            state,
        };
        let token = tokens::random_token();
        self.put_ceremony(&registration_key(&token), &state).await?;
        Ok(WebauthnRegistration {
            options,
            registration_token: token,
        })
    }

    /// Finishes a registration with the authenticator's answer: the credential is stored (active
    /// at once: the attestation is its first proof), with the backup codes when it is the user's
    /// first factor. The ceremony is used up whatever the outcome (unless another change to the
    /// user's factors is running: [`MfaError::FactorChangeInProgress`], and it can be tried again).
    pub async fn finish_webauthn_registration(
        &self,
        user: &str,
        registration_token: &str,
        credential: &RegisterPublicKeyCredential,
        label: Option<&str>,
    ) -> Result<WebauthnEnrolled, MfaError> {
        self.one_factor_change(user, async {
            let webauthn = self.webauthn()?;
            let label = label.map(validate_label).transpose()?;
            let state: RegistrationState = self
                .take_ceremony(&registration_key(registration_token))
                .await?
                .ok_or(MfaError::InvalidCeremony)?;
            if state.user != user {
                return Err(MfaError::InvalidCeremony);
            }
            let passkey = self
                .limited(user, None, "webauthn_setup", async {
                    webauthn
                        .finish_passkey_registration(credential, &state.state)
                        .map_err(|_| MfaError::InvalidCode)
                })
                .await?;
            let id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
            let credential = Credential {
                user: user.to_owned(),
                kind: KIND.to_owned(),
                id: id.clone(),
                status: CredentialStatus::Pending,
                label,
                payload: encode_passkey(&passkey)?,
                counter: 0,
                created_at: self.now(),
                last_used_at: None,
            };
            // A credential id belongs to one account only: the store refuses, in the same atomic
            // step as the insert, an id any user holds.
            if !self
                .factors()
                .put_pending(credential, Enrollment::Many)
                .await?
            {
                return Err(MfaError::CredentialExists);
            }
            let (codes, set): (Vec<String>, Option<CodeSet>) =
                self.first_factor_backup_codes(user).await?;
            if !self
                .factors()
                .activate(passkey_ref(user, &id), 0, set)
                .await?
            {
                return Err(MfaError::InvalidCeremony);
            }
            let event = AuditEvent::WebauthnEnrolled {
                credential_id: id.clone(),
                backup_codes: codes.len(),
            };
            self.audit().record(user, event).await;
            Ok(WebauthnEnrolled {
                credential_id: id,
                backup_codes: codes,
            })
        })
        .await
    }

    /// The user's WebAuthn credentials, without keys, oldest first.
    pub async fn webauthn_credentials(&self, user: &str) -> Result<Vec<PasskeyInfo>, MfaError> {
        let mut list = Vec::new();
        for credential in self.factors().credentials(user).await? {
            if credential.kind != KIND || credential.status != CredentialStatus::Active {
                continue;
            }
            let flags: serde_json::Value =
                serde_json::from_str(&credential.payload).unwrap_or_default();
            let flag = |name: &str| flags["cred"][name].as_bool();
            list.push(PasskeyInfo {
                backup_eligible: flag("backup_eligible"),
                backup_state: flag("backup_state"),
                id: credential.id,
                label: credential.label,
                created_at: credential.created_at,
                last_used_at: credential.last_used_at,
                counter: credential.counter,
            });
        }
        Ok(list)
    }

    /// Renames a credential (`None` clears the label); `false` when there is no such credential.
    pub async fn rename_webauthn_credential(
        &self,
        user: &str,
        id: &str,
        label: Option<&str>,
    ) -> Result<bool, MfaError> {
        let label = label.map(validate_label).transpose()?;
        Ok(self
            .factors()
            .set_label(passkey_ref(user, id), label.as_deref())
            .await?)
    }

    /// Removes a credential; the backup codes go too when no other factor remains, and
    /// remembered devices are revoked. `false` when there was none. Refused with
    /// [`MfaError::SmsWouldBeAlone`] when SMS would be left as the only factor and the policy
    /// forbids that.
    pub async fn remove_webauthn_credential(&self, user: &str, id: &str) -> Result<bool, MfaError> {
        self.one_factor_change(user, async {
            self.check_removal_keeps_sms_company(user, KIND, id).await?;
            let existed = self
                .factors()
                .delete_credential(passkey_ref(user, id))
                .await?;
            if !existed {
                return Ok(false);
            }
            let event = AuditEvent::WebauthnRemoved {
                credential_id: id.to_owned(),
            };
            self.audit().record(user, event).await;
            self.after_factor_removed(user).await?;
            Ok(true)
        })
        .await
    }

    /// Starts the WebAuthn answer to an MFA step: request options for the user's credentials.
    /// The `mfa_token` stays live; the challenge is bound to it and replaced by a later start.
    pub async fn begin_webauthn_challenge(
        &self,
        mfa_token: &str,
    ) -> Result<RequestChallengeResponse, MfaError> {
        let webauthn = self.webauthn()?;
        let ticket = self.challenge_subject(mfa_token).await?;
        let passkeys: Vec<Passkey> = self
            .passkeys(&ticket.sub)
            .await?
            .into_iter()
            .map(|(_, passkey)| passkey)
            .collect();
        if passkeys.is_empty() {
            return Err(MfaError::NotEnrolled);
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|_| MfaError::Internal("could not start a WebAuthn authentication"))?;
        let key = assertion_key(mfa_token);
        self.ephemeral().remove(&key).await?;
        self.put_ceremony(&key, &state).await?;
        Ok(options)
    }

    /// Checks the assertion answering the challenge bound to `mfa_token` (used up whatever the
    /// outcome); `Ok(user_verified)`. Counts against the user's attempt limit and the factor's
    /// failure streak.
    pub(crate) async fn verify_webauthn(
        &self,
        mfa_token: &str,
        user: &str,
        credential: &PublicKeyCredential,
    ) -> Result<bool, MfaError> {
        let webauthn = self.webauthn()?;
        self.limited(user, Some(Method::Webauthn), "webauthn", async {
            let state: PasskeyAuthentication = self
                .take_ceremony(&assertion_key(mfa_token))
                .await?
                .ok_or(MfaError::InvalidCode)?;
            let id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
            let result = webauthn.finish_passkey_authentication(credential, &state);
            self.record_assertion(user, &id, result).await
        })
        .await
    }

    /// Starts a passwordless login: request options for any discoverable credential of this
    /// relying party, and the token to send back with the assertion.
    pub async fn begin_passkey_login(&self) -> Result<PasskeyLogin, MfaError> {
        let webauthn = self.webauthn()?;
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|_| MfaError::Internal("could not start a WebAuthn authentication"))?;
        let token = tokens::random_token();
        self.put_ceremony(&discoverable_key(&token), &state).await?;
        Ok(PasskeyLogin {
            options,
            passkey_token: token,
        })
    }

    /// Finishes a passwordless login: the credential names its user (by its id and user
    /// handle); the assertion must verify the user. The ceremony is used up whatever the outcome.
    pub async fn complete_passkey_login(
        &self,
        passkey_token: &str,
        credential: &PublicKeyCredential,
    ) -> Result<PasskeySignIn, MfaError> {
        let webauthn = self.webauthn()?;
        if passkey_token.is_empty() || passkey_token.len() > 128 {
            return Err(MfaError::InvalidCeremony);
        }
        let state: DiscoverableAuthentication = self
            .take_ceremony(&discoverable_key(passkey_token))
            .await?
            .ok_or(MfaError::InvalidCeremony)?;
        let (handle, raw_id) = webauthn
            .identify_discoverable_authentication(credential)
            .map_err(|_| MfaError::InvalidCode)?;
        let id = URL_SAFE_NO_PAD.encode(raw_id);
        // The assertion names a credential, not a user: the store finds the one account holding
        // the id, whose user handle must be the one the authenticator returned.
        let owner = self
            .factors()
            .credential_by_id(KIND, &id)
            .await?
            .filter(|stored| {
                stored.status == CredentialStatus::Active
                    && self.user_handle(&stored.user) == handle
            })
            .ok_or(MfaError::InvalidCode)?;
        let passkey = decode_passkey(&owner)?;
        let user = owner.user.clone();
        let user_verified = self
            .limited(&user, Some(Method::Webauthn), "webauthn", async {
                let result =
                    webauthn.finish_discoverable_authentication_v2(credential, state, &passkey);
                self.record_assertion(&user, &id, result).await
            })
            .await?;
        if !user_verified {
            return Err(MfaError::InvalidCode);
        }
        self.audit()
            .record(
                &user,
                AuditEvent::MfaSucceeded {
                    method: Method::Webauthn,
                },
            )
            .await;
        self.factor_login_succeeded(&user).await?;
        Ok(PasskeySignIn {
            subject: user,
            amr: vec![Method::Webauthn.amr().to_owned()],
            user_verified,
        })
    }

    /// Stores what a verified assertion teaches (counter, backup flags) and refuses a counter
    /// that did not move forward. `Ok(user_verified)`.
    async fn record_assertion(
        &self,
        user: &str,
        id: &str,
        result: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
    ) -> Result<bool, MfaError> {
        let result = match result {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                self.clone_suspected(user, id).await;
                return Err(MfaError::InvalidCode);
            }
            Err(_) => return Err(MfaError::InvalidCode),
        };
        let key = passkey_ref(user, id);
        let stored = match self.factors().credential(key).await? {
            Some(stored) if stored.status == CredentialStatus::Active => stored,
            _ => return Err(MfaError::InvalidCode),
        };
        let mut passkey = decode_passkey(&stored)?;
        passkey.update_credential(&result);
        let payload = encode_passkey(&passkey)?;
        let counter = u64::from(result.counter());
        if counter > 0 {
            // Compare-and-set across instances: a counter at or below the stored one is a clone
            // (or a concurrent replay that lost).
            if !self
                .factors()
                .advance_counter(key, counter, Some(&payload), self.now())
                .await?
            {
                self.clone_suspected(user, id).await;
                return Err(MfaError::InvalidCode);
            }
        } else if stored.counter > 0 {
            // An authenticator that counted before does not stop counting.
            self.clone_suspected(user, id).await;
            return Err(MfaError::InvalidCode);
        } else {
            // No counter: record the use and keep the backup flags current, in one
            // compare-and-set (the payload may be unchanged); losing this race changes nothing
            // that matters (the winner stored the same kind of news, and its own use).
            self.factors()
                .replace_payload(key, &stored.payload, &payload, Some(self.now()))
                .await?;
        }
        Ok(result.user_verified())
    }

    async fn clone_suspected(&self, user: &str, id: &str) {
        tracing::warn!(target: "stepup::audit", user, credential_id = id, "WebAuthn signature counter went backwards");
        let event = AuditEvent::WebauthnCloneSuspected {
            credential_id: id.to_owned(),
        };
        self.audit().record(user, event).await;
    }

    /// The user's active passkeys with their stored credentials.
    async fn passkeys(&self, user: &str) -> Result<Vec<(Credential, Passkey)>, MfaError> {
        let mut passkeys = Vec::new();
        for credential in self.factors().credentials(user).await? {
            if credential.kind == KIND && credential.status == CredentialStatus::Active {
                let passkey = decode_passkey(&credential)?;
                passkeys.push((credential, passkey));
            }
        }
        Ok(passkeys)
    }

    async fn put_ceremony<T: Serialize>(&self, key: &str, state: &T) -> Result<(), MfaError> {
        let bytes = serde_json::to_vec(state)
            .map_err(|_| MfaError::Internal("could not encode a WebAuthn ceremony"))?;
        if !self
            .ephemeral()
            .insert_if_absent(key, &bytes, CEREMONY_TTL)
            .await?
        {
            return Err(MfaError::Internal("WebAuthn ceremony collision"));
        }
        Ok(())
    }

    async fn take_ceremony<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, MfaError> {
        let Some(bytes) = self.ephemeral().take(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| MfaError::Internal("a stored WebAuthn ceremony is corrupt"))
    }
}

fn passkey_ref<'a>(user: &'a str, id: &'a str) -> CredentialRef<'a> {
    CredentialRef {
        user,
        kind: KIND,
        id,
    }
}

fn encode_passkey(passkey: &Passkey) -> Result<String, MfaError> {
    serde_json::to_string(passkey).map_err(|_| MfaError::Internal("could not encode a passkey"))
}

fn decode_passkey(credential: &Credential) -> Result<Passkey, MfaError> {
    serde_json::from_str(&credential.payload)
        .map_err(|_| MfaError::Internal("a stored passkey is corrupt"))
}

/// A label as stored: trimmed, 1 to [`MAX_LABEL_CHARS`] characters, no control characters.
fn validate_label(label: &str) -> Result<String, MfaError> {
    let label = label.trim();
    let count = label.chars().count();
    if count == 0 || count > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(MfaError::InvalidLabel);
    }
    Ok(label.to_owned())
}

/// Where a registration waits: only the SHA-256 of its token.
fn registration_key(token: &str) -> String {
    format!("webauthn_registration:{}", tokens::digest(token))
}

/// Where the assertion challenge of an MFA step waits: bound to the `mfa_token`'s digest.
fn assertion_key(mfa_token: &str) -> String {
    format!("webauthn_assertion:{}", tokens::digest(mfa_token))
}

/// Where a passwordless login waits.
fn discoverable_key(token: &str) -> String {
    format!("webauthn_discoverable:{}", tokens::digest(token))
}

#[cfg(test)]
mod tests;
