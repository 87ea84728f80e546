//! [`Factor`]: what one kind of second factor is, as one unit. A factor implements only what is
//! its own — its kind and `amr`, whether it is restricted, how it starts and finishes an
//! enrollment, how it prepares and verifies a proof, how it describes a credential — and the
//! engine owns everything every factor shares:
//!
//! - the lifecycle: the pending credential, one change per user at a time, backup codes given
//!   with the first factor and taken with the last, the rule that a restricted factor is never
//!   left alone, remembered devices revoked on removal, the audit trail;
//! - the MFA step: the `mfa_token`, the attempts counted before each check, the per-user and
//!   per-address limits, the 100-failure factor lock, the level reached.
//!
//! A factor is registered on the engine ([`Mfa::with_factor`](crate::Mfa::with_factor)); the
//! application can register its own. It reaches stepup's state only through its
//! [`FactorContext`], scoped to its kind and user.
//!
//! ```
//! use serde::Deserialize;
//! use serde_json::{Value, json};
//! use stepup_mfa::factor::{
//!     EnrollmentFinish, EnrollmentStart, Factor, FactorContext, NewCredential, Verified,
//!     async_trait, parse_input,
//! };
//! use stepup_mfa::{Credential, MfaError, InvalidCode};
//!
//! /// A shared word, known to the user: a toy, to show the shape.
//! struct Password2(&'static str);
//!
//! #[derive(Deserialize)]
//! struct Code { code: String }
//!
//! #[async_trait]
//! impl Factor for Password2 {
//!     fn kind(&self) -> &'static str { "word" }
//!     fn amr(&self) -> &'static str { "kba" }
//!
//!     async fn start_enrollment(&self, _cx: &FactorContext<'_>, _input: &Value)
//!         -> Result<EnrollmentStart, MfaError>
//!     {
//!         Ok(EnrollmentStart::pending(NewCredential::new("word", ""), json!({})))
//!     }
//!
//!     async fn finish_enrollment(&self, _cx: &FactorContext<'_>, _pending: Option<&Credential>,
//!         input: &Value) -> Result<EnrollmentFinish, MfaError>
//!     {
//!         let Code { code } = parse_input(input)?;
//!         if code != self.0 { return Err(InvalidCode.into()); }
//!         Ok(EnrollmentFinish::activate(0))
//!     }
//!
//!     async fn verify(&self, _cx: &FactorContext<'_>, _credentials: &[Credential], proof: &Value)
//!         -> Result<Verified, MfaError>
//!     {
//!         let Code { code } = parse_input(proof)?;
//!         if code == self.0 { Ok(Verified::mfa()) } else { Err(InvalidCode.into()) }
//!     }
//! }
//! ```

mod context;
mod input;
mod registry;

use serde_json::{Map, Value};
use stepup_core::acr::level;
use stepup_store::{Credential, Enrollment};

pub use async_trait::async_trait;
pub use context::{ClientInfo, FactorContext};
pub use input::{parse_input, parse_json};
pub(crate) use registry::Registry;

use crate::error::{InvalidCode, MfaError, PolicyRefusal, Unsupported};

/// One kind of second factor. See the [module](self) for what the engine does around it.
///
/// Every method has a context scoped to the factor's kind and the user; `input` and `proof` are
/// the JSON object the client sent (parse it with [`parse_input`], which names a missing field
/// from the factor's own schema).
#[async_trait]
pub trait Factor: Send + Sync + 'static {
    /// The stable name: in the routes (`/api/mfa/factors/{kind}`), `methods`, the store (the
    /// kind of its credentials, its failure streak) and the audit events (`{kind}_enrolled`).
    /// Lowercase letters, digits and `_`.
    fn kind(&self) -> &'static str;

    /// The RFC 8176 `amr` value a success adds (`otp`, `hwk`, `sms`, …): what was really used.
    fn amr(&self) -> &'static str;

    /// How a notice names a credential of this kind ("an authenticator app").
    fn noun(&self) -> &'static str {
        "a second factor"
    }

    /// Whether NIST SP 800-63B calls this factor *restricted* (SMS, email): the engine can refuse
    /// it as a user's only factor.
    fn is_restricted(&self) -> bool {
        false
    }

    /// How many credentials of this kind a user may hold.
    fn enrollment(&self) -> Enrollment {
        Enrollment::OnePerUser
    }

    /// Whether this factor can be used now (e.g. its provider is configured). An unavailable
    /// factor is not offered and refuses every operation.
    fn is_available(&self) -> bool {
        true
    }

    /// Whether the user enrolls this factor on its own (`false` for backup codes, which the
    /// engine gives with the first factor and which never count as a factor themselves).
    fn is_enrollable(&self) -> bool {
        true
    }

    /// Starts an enrollment: a credential kept pending until [`finish_enrollment`] confirms it
    /// (or none, when the factor keeps its own ceremony state), and the answer for the client.
    ///
    /// [`finish_enrollment`]: Self::finish_enrollment
    async fn start_enrollment(
        &self,
        cx: &FactorContext<'_>,
        input: &Value,
    ) -> Result<EnrollmentStart, MfaError> {
        let _ = (cx, input);
        Err(Unsupported.into())
    }

    /// Finishes an enrollment with its first proof: activate the `pending` credential, or a new
    /// one. A wrong proof is [`InvalidCode`]: it counts against the user's
    /// attempt limit (not the factor's lock, as the factor is not enrolled yet).
    async fn finish_enrollment(
        &self,
        cx: &FactorContext<'_>,
        pending: Option<&Credential>,
        input: &Value,
    ) -> Result<EnrollmentFinish, MfaError> {
        let _ = (cx, pending, input);
        Err(Unsupported.into())
    }

    /// What a wrong first proof of an enrollment answers (it was counted against the user's
    /// attempt limit and audited all the same). Default: `400 invalid_mfa_code`.
    fn enrollment_refusal(&self) -> PolicyRefusal {
        PolicyRefusal::bad_request(InvalidCode::CODE, InvalidCode::DESCRIPTION)
    }

    /// Prepares the MFA step's challenge for this factor (sends a code, or makes WebAuthn
    /// options), bound to the step ([`FactorContext::challenge_id`]). `credentials` are the
    /// user's active ones of this kind. Default: nothing to prepare.
    async fn prepare(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
    ) -> Result<Value, MfaError> {
        let _ = (cx, credentials);
        Err(Unsupported.into())
    }

    /// Checks the shape of `proof` before anything is looked up or counted, so that malformed
    /// input is a `400` that spends no attempt (default: any shape; [`verify`](Self::verify)
    /// parses it again).
    fn check_proof(&self, proof: &Value) -> Result<(), MfaError> {
        let _ = proof;
        Ok(())
    }

    /// Checks `proof` for the MFA step ([`FactorContext::challenge_id`]) against the user's
    /// active `credentials` of this kind. A wrong proof is [`InvalidCode`].
    /// The engine has already counted the attempt and checked the limits and the lock.
    async fn verify(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
        proof: &Value,
    ) -> Result<Verified, MfaError>;

    /// What a credential shows besides its kind, id, label and times, e.g. a masked destination
    /// (`{"phone": "+1*****6789"}`). Never a secret.
    async fn describe(
        &self,
        cx: &FactorContext<'_>,
        credential: &Credential,
    ) -> Result<Map<String, Value>, MfaError> {
        let _ = (cx, credential);
        Ok(Map::new())
    }

    /// Whether the user can use this factor in an MFA step, given their active credentials of
    /// this kind. Default: any credential. Backup codes: any unused code.
    async fn is_offered(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
    ) -> Result<bool, MfaError> {
        let _ = cx;
        Ok(!credentials.is_empty())
    }

    /// Cleans up what the factor keeps beside a credential just removed (e.g. codes in flight).
    async fn removed(
        &self,
        cx: &FactorContext<'_>,
        credential: &Credential,
    ) -> Result<(), MfaError> {
        let _ = (cx, credential);
        Ok(())
    }

    /// The credential's payload sealed again under the keyring's current key, if it holds a
    /// sealed secret under an older one (for [`Mfa::reseal_secrets`](crate::Mfa::reseal_secrets)).
    fn reseal(
        &self,
        cx: &FactorContext<'_>,
        credential: &Credential,
    ) -> Result<Option<String>, MfaError> {
        let _ = (cx, credential);
        Ok(None)
    }

    /// Starts a login with this factor alone, for factors that name their user (discoverable
    /// passkeys). Default: not supported.
    async fn start_sign_in(&self, cx: &FactorContext<'_>) -> Result<Value, MfaError> {
        let _ = cx;
        Err(Unsupported.into())
    }

    /// The credential a sign-in proof claims (its id), before anything is verified: the engine
    /// counts failures per claimed credential and client address, never against the user it
    /// names, until the proof verifies.
    fn claimed_credential(&self, proof: &Value) -> Option<String> {
        let _ = proof;
        None
    }

    /// Finishes a login with this factor alone: the user it names, if the proof verifies, with
    /// the credential that answered ([`Verified::by`]); the engine refuses the login unless that
    /// credential is active and of the user's current generation.
    async fn finish_sign_in(
        &self,
        cx: &FactorContext<'_>,
        proof: &Value,
    ) -> Result<SignedIn, MfaError> {
        let _ = (cx, proof);
        Err(Unsupported.into())
    }
}

/// A credential a factor makes: the engine stores it for the user, pending or active, under the
/// user's current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// Unique among the user's credentials of the kind ([`Enrollment::Many`]: among everyone's).
    pub id: String,
    /// A name the user chose.
    pub label: Option<String>,
    /// The factor's own data; seal secrets with [`FactorContext::seal`].
    pub payload: String,
    /// The counter to start from.
    pub counter: u64,
}

impl NewCredential {
    /// A credential `id` holding `payload`, no label, counter 0.
    pub fn new(id: impl Into<String>, payload: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            label: None,
            payload: payload.into(),
            counter: 0,
        }
    }

    /// With the label `label`.
    pub fn with_label(mut self, label: Option<String>) -> Self {
        self.label = label;
        self
    }
}

/// A started enrollment: what to keep pending, and what to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentStart {
    /// The credential to keep pending until the enrollment is finished, if the factor has one
    /// yet (a passkey has none until its registration is finished).
    pub pending: Option<NewCredential>,
    /// The answer for the client (a QR code, "code sent to +1*****6789", creation options).
    pub answer: Value,
}

impl EnrollmentStart {
    /// Keep `credential` pending; answer `answer`.
    pub fn pending(credential: NewCredential, answer: Value) -> Self {
        Self {
            pending: Some(credential),
            answer,
        }
    }

    /// Nothing pending (the factor keeps its own ceremony state); answer `answer`.
    pub fn ceremony(answer: Value) -> Self {
        Self {
            pending: None,
            answer,
        }
    }
}

/// A finished enrollment: which credential becomes active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentFinish {
    /// `None`: the pending credential, with [`counter`](Self::counter). `Some`: this new one.
    pub credential: Option<NewCredential>,
    /// The pending credential's counter from now on (e.g. the TOTP step just used).
    pub counter: u64,
}

impl EnrollmentFinish {
    /// Activate the pending credential with `counter`.
    pub fn activate(counter: u64) -> Self {
        Self {
            credential: None,
            counter,
        }
    }

    /// Store and activate `credential`.
    pub fn new_credential(credential: NewCredential) -> Self {
        let counter = credential.counter;
        Self {
            credential: Some(credential),
            counter,
        }
    }
}

/// A verified proof: the level it reaches, and what to add to the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The level reached: [`level::MFA`], or [`level::PHR`] for a phishing-resistant proof (a
    /// WebAuthn assertion with user verification).
    pub acr: &'static str,
    /// The credential that answered, if the factor has credentials.
    pub credential_id: Option<String>,
    /// Fields for the client's answer (e.g. `remaining_codes` after a backup code).
    pub answer: Map<String, Value>,
}

impl Verified {
    /// A proof reaching `mfa`.
    pub fn mfa() -> Self {
        Self {
            acr: level::MFA,
            credential_id: None,
            answer: Map::new(),
        }
    }

    /// A phishing-resistant proof, reaching `phr`.
    pub fn phishing_resistant() -> Self {
        Self {
            acr: level::PHR,
            ..Self::mfa()
        }
    }

    /// By credential `id`.
    pub fn by(mut self, id: impl Into<String>) -> Self {
        self.credential_id = Some(id.into());
        self
    }

    /// With `value` under `field` in the answer.
    pub fn with_answer(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.answer.insert(field.to_owned(), value.into());
        self
    }
}

/// A verified login with one factor alone.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedIn {
    /// The user the credential belongs to.
    pub user: String,
    /// What the proof reached.
    pub verified: Verified,
}
