//! The TOTP factor (RFC 6238), kind `totp`: enrollment with a locally made QR code, confirmation
//! by a first code, verification accepting each time step at most once per user.
//!
//! The credential is kept under kind [`KIND`], one per user; its payload is the JSON object
//! `{"secret", "algorithm", "digits", "period"}` with the secret sealed by the keyring (bound to
//! the user), and its counter is the last accepted time step, advanced by compare-and-set, so a
//! step accepted by one instance is refused by every other.
//!
//! ```
//! use stepup_mfa::totp::{Totp, TotpConfig};
//! use stepup_mfa::factor::Factor;
//!
//! let totp = Totp::new(TotpConfig { issuer: "Example".into(), ..TotpConfig::default() });
//! assert_eq!((totp.kind(), totp.amr()), ("totp", "otp"));
//! ```

mod key;

pub use key::{InvalidTotp, SECRET_LEN, TotpAlgorithm, TotpConfig, TotpKey};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepup_core::acr::amr;
use stepup_store::Credential;

use crate::error::{InvalidCode, MfaError, NoPendingEnrollment, NotEnrolled};
use crate::factor::{
    EnrollmentFinish, EnrollmentStart, Factor, FactorContext, NewCredential, Verified, async_trait,
    parse_input,
};

/// The kind of TOTP credentials.
pub const KIND: &str = "totp";

/// The id of a user's TOTP credential (there is at most one).
const CREDENTIAL_ID: &str = "totp";

/// The TOTP factor, with the parameters of new enrollments.
#[derive(Debug, Clone, Default)]
pub struct Totp {
    config: TotpConfig,
}

impl Totp {
    /// TOTP with `config` for new enrollments (existing ones keep theirs).
    pub fn new(config: TotpConfig) -> Self {
        Self { config }
    }

    fn key(&self, cx: &FactorContext<'_>, credential: &Credential) -> Result<TotpKey, MfaError> {
        let payload = parse_payload(credential)?;
        let secret = cx.open(&payload.secret)?;
        let algorithm = TotpAlgorithm::from_name(&payload.algorithm)
            .ok_or_else(|| MfaError::internal("unknown stored TOTP algorithm"))?;
        TotpKey::new(
            &secret,
            algorithm,
            payload.digits,
            payload.period,
            self.config.skew,
            &self.config.issuer,
            &credential.user,
        )
        .map_err(MfaError::internal)
    }
}

/// The stored payload of a TOTP credential.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// Sealed by the keyring for this kind and user.
    secret: String,
    algorithm: String,
    digits: u8,
    period: u64,
}

/// A TOTP code.
#[derive(Deserialize)]
struct Code {
    code: String,
}

#[async_trait]
impl Factor for Totp {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn amr(&self) -> &'static str {
        amr::OTP
    }

    fn noun(&self) -> &'static str {
        "an authenticator app"
    }

    /// Answers `{secret, otpauth_uri, qr_code}` (the QR code a `data:image/png` URL made
    /// locally); the secret is shown this once and kept sealed.
    async fn start_enrollment(
        &self,
        cx: &FactorContext<'_>,
        _input: &Value,
    ) -> Result<EnrollmentStart, MfaError> {
        let config = &self.config;
        let secret = TotpKey::generate_secret();
        let label = cx.account_name().await;
        let key = TotpKey::new(
            &secret,
            config.algorithm,
            config.digits,
            config.period,
            config.skew,
            &config.issuer,
            &label,
        )
        .map_err(MfaError::internal)?;
        let answer = json!({
            "secret": key.secret_base32(),
            "otpauth_uri": key.otpauth_uri().map_err(MfaError::internal)?,
            "qr_code": key.qr_code_data_url().map_err(MfaError::internal)?,
        });
        let payload = Payload {
            secret: cx.seal(&secret)?,
            algorithm: config.algorithm.name().to_owned(),
            digits: config.digits,
            period: config.period,
        };
        let payload = serde_json::to_string(&payload).map_err(MfaError::internal)?;
        Ok(EnrollmentStart::pending(
            NewCredential::new(CREDENTIAL_ID, payload),
            answer,
        ))
    }

    /// `{code}`: the first code; its time step counts as used.
    async fn finish_enrollment(
        &self,
        cx: &FactorContext<'_>,
        pending: Option<&Credential>,
        input: &Value,
    ) -> Result<EnrollmentFinish, MfaError> {
        let Code { code } = parse_input(input)?;
        let pending = pending.ok_or(NoPendingEnrollment)?;
        let step = self
            .key(cx, pending)?
            .matching_step(&code, cx.now())
            .ok_or(InvalidCode)?;
        Ok(EnrollmentFinish::activate(step))
    }

    fn check_proof(&self, proof: &Value) -> Result<(), MfaError> {
        parse_input::<Code>(proof).map(drop)
    }

    /// `{code}`: a time step is accepted at most once per user, on every instance.
    async fn verify(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
        proof: &Value,
    ) -> Result<Verified, MfaError> {
        let Code { code } = parse_input(proof)?;
        let credential = credentials.first().ok_or(NotEnrolled)?;
        let step = self
            .key(cx, credential)?
            .matching_step(&code, cx.now())
            .ok_or(InvalidCode)?;
        // The step was already used (a replay, or a concurrent submission that won).
        if !cx.advance_counter(credential, step, None).await? {
            return Err(InvalidCode.into());
        }
        Ok(Verified::mfa().by(&credential.id))
    }

    fn reseal(
        &self,
        cx: &FactorContext<'_>,
        credential: &Credential,
    ) -> Result<Option<String>, MfaError> {
        let mut payload = parse_payload(credential)?;
        if cx.is_sealed_with_current_key(&payload.secret) {
            return Ok(None);
        }
        payload.secret = cx.seal(&cx.open(&payload.secret)?)?;
        Ok(Some(
            serde_json::to_string(&payload).map_err(MfaError::internal)?,
        ))
    }
}

fn parse_payload(credential: &Credential) -> Result<Payload, MfaError> {
    serde_json::from_str(&credential.payload).map_err(MfaError::internal)
}
