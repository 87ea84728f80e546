//! The WebAuthn factor, kind `webauthn` (passkeys and security keys), on `webauthn-rs`:
//! registration, the assertion as a second factor, and passwordless login with a discoverable
//! credential.
//!
//! A passkey is a credential whose id is the credential id (base64url), whose payload is the
//! serialised `Passkey` (public key, signature counter, backup flags; no secret) and whose counter
//! is the signature counter, several per user ([`Enrollment::Many`], each id held by one user).
//! Ceremony state (`PasskeyRegistration`, `PasskeyAuthentication`, `DiscoverableAuthentication`)
//! lives only in the ephemeral store, under the SHA-256 of a random token (or of the `mfa_token`),
//! for at most [`CEREMONY_TTL`], and is taken once: a challenge is never answered twice.
//!
//! The signature counter advances by compare-and-set; a counter that does not move forward (a
//! cloned authenticator) is refused, audited as `webauthn_clone_suspected`, and the credential is
//! disabled (listed as such, never accepted again until removed and registered anew).
//! Authenticators whose counter stays 0 (most synced passkeys) have their payload replaced by
//! compare-and-set instead, keeping the backup flags current.
//!
//! Levels: an assertion with user verification is phishing-resistant (`acr` `phr`); `amr` is
//! `hwk`. The user handle given to authenticators is a keyed digest of the user id (never the id
//! itself), so it says nothing about the user to anyone without the lookup key.
//!
//! In a transaction step-up (the MFA step approving one operation) the assertion's challenge is
//! SHA-256 of a fresh server nonce and the operation's canonical JSON (`transaction_challenge`),
//! with user verification required: the authenticator signs the operation itself, and an
//! assertion made for one operation verifies for no other.
//!
//! ```
//! use stepup_mfa::factor::Factor;
//! use stepup_mfa::webauthn::{RelyingParty, Webauthn};
//!
//! let passkeys = Webauthn::new(RelyingParty::new("example.com", "https://example.com")?);
//! assert_eq!((passkeys.kind(), passkeys.amr()), ("webauthn", "hwk"));
//! # Ok::<(), stepup_mfa::MfaError>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use stepup_core::acr::amr;
use stepup_core::tokens;
use stepup_store::{Credential, Enrollment};
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, Uuid, WebauthnBuilder, WebauthnError,
};

pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url,
};

use crate::error::{InvalidCeremony, InvalidCode, MfaError, NotEnrolled, PolicyRefusal};
use crate::factor::{
    EnrollmentFinish, EnrollmentStart, Factor, FactorContext, NewCredential, SignedIn, Verified,
    async_trait, parse_input,
};
use crate::lifecycle::validate_label;

/// The store kind of WebAuthn credentials.
pub const KIND: &str = "webauthn";

/// How long a ceremony (registration, passwordless login) waits for its answer.
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// The relying party: its id (a registrable domain) and the origins allowed to answer. Cheap to
/// clone.
#[derive(Clone)]
pub struct RelyingParty {
    webauthn: Arc<webauthn_rs::Webauthn>,
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
        let invalid = || MfaError::internal("invalid relying party: bad rp_id or origin");
        let origins = origins
            .iter()
            .map(|origin| Url::parse(origin))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| MfaError::internal("invalid relying party: an origin is not a URL"))?;
        let (first, rest) = origins
            .split_first()
            .ok_or_else(|| MfaError::internal("invalid relying party: no origin given"))?;
        let mut builder = WebauthnBuilder::new(rp_id, first).map_err(|_| invalid())?;
        for origin in rest {
            let within = origin
                .domain()
                .is_some_and(|host| host == rp_id || host.ends_with(&format!(".{rp_id}")));
            if !within {
                return Err(invalid());
            }
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder.build().map_err(|_| invalid())?;
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

/// The WebAuthn factor for one relying party.
#[derive(Debug, Clone)]
pub struct Webauthn {
    relying_party: RelyingParty,
}

impl Webauthn {
    /// Passkeys and security keys for `relying_party`.
    pub fn new(relying_party: RelyingParty) -> Self {
        Self { relying_party }
    }

    /// The relying party.
    pub fn relying_party(&self) -> &RelyingParty {
        &self.relying_party
    }

    fn webauthn(&self) -> &webauthn_rs::Webauthn {
        &self.relying_party.webauthn
    }

    /// Stores what a verified assertion teaches (counter, backup flags) and refuses a counter
    /// that did not move forward (the credential is then distrusted). `Ok(user_verified)`.
    async fn record_assertion(
        &self,
        cx: &FactorContext<'_>,
        stored: &Credential,
        result: Result<AuthenticationResult, WebauthnError>,
    ) -> Result<bool, MfaError> {
        let result = match result {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                cx.distrust(stored, "clone_suspected").await;
                return Err(InvalidCode.into());
            }
            Err(_) => return Err(InvalidCode.into()),
        };
        let mut passkey = decode_passkey(stored)?;
        passkey.update_credential(&result);
        let payload = encode_passkey(&passkey)?;
        let counter = u64::from(result.counter());
        if counter > 0 {
            // Compare-and-set across instances: a counter at or below the stored one is a clone
            // (or a concurrent replay that lost).
            if !cx.advance_counter(stored, counter, Some(&payload)).await? {
                cx.distrust(stored, "clone_suspected").await;
                return Err(InvalidCode.into());
            }
        } else if stored.counter > 0 {
            // An authenticator that counted before does not stop counting.
            cx.distrust(stored, "clone_suspected").await;
            return Err(InvalidCode.into());
        } else {
            // No counter: record the use and keep the backup flags current, in one
            // compare-and-set (the payload may be unchanged); losing this race changes nothing
            // that matters (the winner stored the same kind of news, and its own use).
            cx.replace_payload(stored, &payload, true).await?;
        }
        Ok(result.user_verified())
    }
}

/// The user handle authenticators store for `user`: a keyed digest, stable for a given lookup
/// key.
fn user_handle(cx: &FactorContext<'_>, user: &str) -> Uuid {
    let digest = cx.digest(&format!("webauthn-user-handle:{user}"));
    // 32 hex digits are the 16 bytes of a UUID.
    Uuid::try_parse(&digest[..32]).unwrap_or_else(|_| Uuid::nil())
}

/// A registration waiting for its answer.
#[derive(Serialize, Deserialize)]
struct RegistrationState {
    user: String,
    /// The user's generation when it started: a reset since voids it.
    #[serde(default)]
    generation: u64,
    state: PasskeyRegistration,
}

#[derive(Deserialize)]
struct RegisterFinish {
    registration_token: String,
    credential: RegisterPublicKeyCredential,
    label: Option<String>,
}

/// An MFA step's assertion ceremony, waiting for its answer: webauthn-rs's state (whose challenge
/// the signed clientDataJSON must carry) and, in a transaction step-up, the server nonce that
/// challenge was derived from (base64url), kept beside it so the binding can be recomputed. A
/// login's is stored as the bare state.
#[derive(Serialize, Deserialize)]
struct AssertionState {
    #[serde(flatten)]
    state: PasskeyAuthentication,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transaction_nonce: Option<String>,
}

impl AssertionState {
    fn login(state: PasskeyAuthentication) -> Self {
        Self {
            state,
            transaction_nonce: None,
        }
    }
}

/// The WebAuthn challenge of a transaction step-up: SHA-256(nonce ‖ 0x00 ‖ operation), where the
/// nonce is the 32 random bytes webauthn-rs drew for the step and the operation is its canonical
/// JSON (UTF-8). The authenticator signs clientDataJSON, which carries this challenge, so a valid
/// assertion commits to this operation: the same approval is no proof for another amount or
/// payee. This is the one place the rule is written.
fn transaction_challenge(nonce: &[u8; 32], operation: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(nonce)
        .chain_update([0x00])
        .chain_update(operation.as_bytes())
        .finalize()
        .into()
}

/// Binds the request options and their state to `operation`: both get
/// [`transaction_challenge`] of the random challenge webauthn-rs drew (the server nonce) and the
/// operation. Fails closed (an internal error) if the state is not shaped as expected, so options
/// whose challenge differs from the state's are never sent.
fn bind_to_operation(
    mut options: RequestChallengeResponse,
    state: PasskeyAuthentication,
    operation: &str,
) -> Result<(RequestChallengeResponse, AssertionState), MfaError> {
    let unexpected = || MfaError::internal("unexpected WebAuthn authentication state");
    let nonce: [u8; 32] = options
        .public_key
        .challenge
        .as_slice()
        .try_into()
        .map_err(|_| unexpected())?;
    let challenge = transaction_challenge(&nonce, operation);
    // The serialised state is `{"ast": {…, "challenge": "<base64url>", …}}` (webauthn-rs's
    // `danger-allow-state-serialisation`): its challenge must be the nonce just drawn.
    let mut value = serde_json::to_value(&state).map_err(MfaError::internal)?;
    let drawn = value.pointer_mut("/ast/challenge").ok_or_else(unexpected)?;
    if drawn.as_str() != Some(URL_SAFE_NO_PAD.encode(nonce).as_str()) {
        return Err(unexpected());
    }
    *drawn = URL_SAFE_NO_PAD.encode(challenge).into();
    let state: PasskeyAuthentication = serde_json::from_value(value).map_err(MfaError::internal)?;
    // Read back: the state now expects exactly the challenge the options carry.
    let stored = serde_json::to_value(&state).map_err(MfaError::internal)?;
    if stored.pointer("/ast/challenge").and_then(Value::as_str)
        != Some(URL_SAFE_NO_PAD.encode(challenge).as_str())
    {
        return Err(unexpected());
    }
    options.public_key.challenge = challenge.to_vec();
    let state = AssertionState {
        state,
        transaction_nonce: Some(URL_SAFE_NO_PAD.encode(nonce)),
    };
    Ok((options, state))
}

#[derive(Deserialize)]
struct Assertion {
    credential: PublicKeyCredential,
}

#[derive(Deserialize)]
struct PasskeyFinish {
    passkey_token: String,
    credential: PublicKeyCredential,
}

#[async_trait]
impl Factor for Webauthn {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn amr(&self) -> &'static str {
        amr::HWK
    }

    fn noun(&self) -> &'static str {
        "a passkey or security key"
    }

    fn enrollment(&self) -> Enrollment {
        Enrollment::Many
    }

    fn enrollment_refusal(&self) -> PolicyRefusal {
        PolicyRefusal::bad_request(
            "invalid_credential",
            "the credential does not verify for this registration",
        )
    }

    /// Creation options (`{"publicKey": …}`) and the `registration_token` to send back; the
    /// user's credentials are excluded.
    async fn start_enrollment(
        &self,
        cx: &FactorContext<'_>,
        _input: &Value,
    ) -> Result<EnrollmentStart, MfaError> {
        let user = cx.user();
        let exclude = cx
            .mfa
            .credentials_of(user, KIND)
            .await?
            .iter()
            .map(|credential| decode_passkey(credential).map(|passkey| passkey.cred_id().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let name = cx.account_name().await;
        let (mut options, state) = self
            .webauthn()
            .start_passkey_registration(
                user_handle(cx, user),
                &name,
                &name,
                Some(exclude).filter(|ids| !ids.is_empty()),
            )
            .map_err(MfaError::internal)?;
        // webauthn-rs asks for a non-discoverable credential; passwordless login needs a
        // discoverable one, so prefer it (a security key short of resident slots still
        // registers, as a second factor only). Verification does not depend on it.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Preferred);
        }
        let state = RegistrationState {
            user: user.to_owned(),
            generation: cx.generation(),
            state,
        };
        let token = tokens::random_token();
        put_ceremony(cx, &registration_key(&token), &state).await?;
        let mut answer = serde_json::to_value(&options).map_err(MfaError::internal)?;
        answer["registration_token"] = token.into();
        Ok(EnrollmentStart::ceremony(answer))
    }

    /// `{registration_token, credential, label?}`: the authenticator's answer, to a ceremony of
    /// this user and generation. The ceremony is used up whatever the outcome.
    async fn finish_enrollment(
        &self,
        cx: &FactorContext<'_>,
        _pending: Option<&Credential>,
        input: &Value,
    ) -> Result<EnrollmentFinish, MfaError> {
        let finish: RegisterFinish = parse_input(input)?;
        let label = finish.label.as_deref().map(validate_label).transpose()?;
        let state: RegistrationState =
            take_ceremony(cx, &registration_key(&finish.registration_token))
                .await?
                .ok_or(InvalidCeremony)?;
        // Another user's ceremony, or one started before a reset: a registration that raced a
        // recovery never lands in the user's new generation.
        if state.user != cx.user() || state.generation != cx.generation() {
            return Err(InvalidCeremony.into());
        }
        // A registration that does not verify is a wrong proof: counted and audited by the
        // engine, answered with `enrollment_refusal`.
        let passkey = self
            .webauthn()
            .finish_passkey_registration(&finish.credential, &state.state)
            .map_err(|_| InvalidCode)?;
        let id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        let credential = NewCredential::new(id, encode_passkey(&passkey)?).with_label(label);
        Ok(EnrollmentFinish::new_credential(credential))
    }

    /// Request options for the user's credentials (user verification required), bound to this
    /// MFA step; a later prepare replaces them. In a transaction step-up the challenge is
    /// `transaction_challenge` of a fresh server nonce and the operation, so the authenticator
    /// signs the operation itself.
    async fn prepare(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
    ) -> Result<Value, MfaError> {
        let passkeys = credentials
            .iter()
            .map(decode_passkey)
            .collect::<Result<Vec<_>, _>>()?;
        if passkeys.is_empty() {
            return Err(NotEnrolled.into());
        }
        let (options, state) = self
            .webauthn()
            .start_passkey_authentication(&passkeys)
            .map_err(MfaError::internal)?;
        let (options, state) = match cx.transaction.as_deref() {
            Some(operation) => bind_to_operation(options, state, operation)?,
            None => (options, AssertionState::login(state)),
        };
        let state = serde_json::to_vec(&state).map_err(MfaError::internal)?;
        let key = assertion_key(cx.challenge_id()?);
        cx.replace_state(&key, &state, CEREMONY_TTL).await?;
        serde_json::to_value(&options).map_err(MfaError::internal)
    }

    fn check_proof(&self, proof: &Value) -> Result<(), MfaError> {
        parse_input::<Assertion>(proof).map(drop)
    }

    /// `{credential}`: the assertion answering this step's challenge (used up whatever the
    /// outcome); `phr` with user verification, `mfa` without.
    async fn verify(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
        proof: &Value,
    ) -> Result<Verified, MfaError> {
        let Assertion { credential } = parse_input(proof)?;
        // webauthn-rs checks the signed clientDataJSON's challenge against the state's: in a
        // transaction step-up that is the challenge derived from the operation.
        let AssertionState { state, .. } = take_ceremony(cx, &assertion_key(cx.challenge_id()?))
            .await?
            .ok_or(InvalidCode)?;
        let id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
        let stored = credentials
            .iter()
            .find(|stored| stored.id == id)
            .ok_or(InvalidCode)?;
        let result = self
            .webauthn()
            .finish_passkey_authentication(&credential, &state);
        let user_verified = self.record_assertion(cx, stored, result).await?;
        let verified = if user_verified {
            Verified::phishing_resistant()
        } else {
            Verified::mfa()
        };
        Ok(verified.by(id))
    }

    async fn describe(
        &self,
        _cx: &FactorContext<'_>,
        credential: &Credential,
    ) -> Result<Map<String, Value>, MfaError> {
        let flags: Value = serde_json::from_str(&credential.payload).unwrap_or_default();
        let flag = |name: &str| flags["cred"][name].as_bool();
        let mut detail = Map::new();
        detail.insert("counter".into(), credential.counter.into());
        detail.insert("backup_eligible".into(), json!(flag("backup_eligible")));
        detail.insert("backup_state".into(), json!(flag("backup_state")));
        Ok(detail)
    }

    /// Request options for any discoverable credential of this relying party, and the
    /// `passkey_token` to send back with the assertion.
    async fn start_sign_in(&self, cx: &FactorContext<'_>) -> Result<Value, MfaError> {
        let (options, state) = self
            .webauthn()
            .start_discoverable_authentication()
            .map_err(MfaError::internal)?;
        let token = tokens::random_token();
        put_ceremony(cx, &discoverable_key(&token), &state).await?;
        let mut answer = serde_json::to_value(&options).map_err(MfaError::internal)?;
        answer["passkey_token"] = token.into();
        Ok(answer)
    }

    /// The credential the assertion is checked against (its `rawId`, as stored): whatever the
    /// client puts in `id`, failures count against the credential the assertion really names.
    fn claimed_credential(&self, proof: &Value) -> Option<String> {
        let credential: PublicKeyCredential =
            serde_json::from_value(proof.get("credential")?.clone()).ok()?;
        let id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
        (id.len() <= 1024).then_some(id)
    }

    /// `{passkey_token, credential}`: the credential names its user (by its id and user
    /// handle); the assertion must verify the user. The ceremony is used up whatever the outcome.
    async fn finish_sign_in(
        &self,
        cx: &FactorContext<'_>,
        proof: &Value,
    ) -> Result<SignedIn, MfaError> {
        let PasskeyFinish {
            passkey_token,
            credential,
        } = parse_input(proof)?;
        if passkey_token.is_empty() || passkey_token.len() > 128 {
            return Err(InvalidCeremony.into());
        }
        let state: DiscoverableAuthentication =
            take_ceremony(cx, &discoverable_key(&passkey_token))
                .await?
                .ok_or(InvalidCeremony)?;
        let (handle, raw_id) = self
            .webauthn()
            .identify_discoverable_authentication(&credential)
            .map_err(|_| InvalidCode)?;
        let id = URL_SAFE_NO_PAD.encode(raw_id);
        // The assertion names a credential, not a user: the store finds the one account holding
        // the id, whose user handle must be the one the authenticator returned.
        let owner = cx
            .credential_by_id(&id)
            .await?
            .filter(|stored| {
                stored.status == stepup_store::CredentialStatus::Active
                    && user_handle(cx, &stored.user) == handle
            })
            .ok_or(InvalidCode)?;
        let passkey = decode_passkey(&owner)?;
        let result =
            self.webauthn()
                .finish_discoverable_authentication_v2(&credential, state, &passkey);
        if !self.record_assertion(cx, &owner, result).await? {
            // Passwordless needs the user verified: a touch alone is not a login.
            return Err(InvalidCode.into());
        }
        Ok(SignedIn {
            user: owner.user.clone(),
            verified: Verified::phishing_resistant().by(id),
        })
    }
}

async fn put_ceremony<T: Serialize>(
    cx: &FactorContext<'_>,
    key: &str,
    state: &T,
) -> Result<(), MfaError> {
    let bytes = serde_json::to_vec(state).map_err(MfaError::internal)?;
    if !cx.put_state(key, &bytes, CEREMONY_TTL).await? {
        return Err(MfaError::internal("WebAuthn ceremony collision"));
    }
    Ok(())
}

async fn take_ceremony<T: for<'de> Deserialize<'de>>(
    cx: &FactorContext<'_>,
    key: &str,
) -> Result<Option<T>, MfaError> {
    let Some(bytes) = cx.take_state(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(MfaError::internal)
}

fn encode_passkey(passkey: &Passkey) -> Result<String, MfaError> {
    serde_json::to_string(passkey).map_err(MfaError::internal)
}

fn decode_passkey(credential: &Credential) -> Result<Passkey, MfaError> {
    serde_json::from_str(&credential.payload).map_err(MfaError::internal)
}

/// Where a registration waits.
fn registration_key(token: &str) -> String {
    format!("registration:{token}")
}

/// Where the assertion challenge of an MFA step waits: bound to the step.
fn assertion_key(challenge_id: &str) -> String {
    format!("assertion:{challenge_id}")
}

/// Where a passwordless login waits.
fn discoverable_key(token: &str) -> String {
    format!("discoverable:{token}")
}

#[cfg(test)]
mod tests;
