//! The SMS factor, kind `sms`: a phone number proven by one-time codes sent to it. NIST SP
//! 800-63B calls SMS a *restricted* authenticator: offer it beside an unrestricted one (the
//! engine can refuse it alone, [`Mfa::with_restricted_factor_alone`](crate::Mfa)).
//!
//! Two kinds of provider ([`SmsProvider`]):
//!
//! - **stepup makes the code** ([`SmsSender`], any gateway): the shared code machinery of
//!   [`delivery`](crate::delivery) (6 digits, a keyed digest bound to what it was sent for, live at
//!   most 10 minutes, consumed once, a new code replacing the earlier one);
//! - **the provider makes and checks the code** ([`SmsVerifier`], e.g. [`TwilioVerify`]): stepup
//!   records what the verification was started for and asks the provider to check.
//!
//! Either way the engine's limits hold (every check under the per-user limit and the 100-failure
//! factor lock) and so do the shared send limits ([`SendPolicy`](crate::delivery::SendPolicy)):
//! a resend waits the cooldown, sends are counted per number, per user and per client address,
//! and sends made to enroll a number count against the enrolling account, never the budget of the
//! number's owner. The number is a credential, one per user, its payload the E.164 number sealed
//! for the user; answers and logs only ever show it masked (`+1*****6789`).
//!
//! ```
//! use stepup_mfa::factor::Factor;
//! use stepup_mfa::sms::{Sms, SmsError, SmsProvider, SmsSender};
//!
//! struct Gateway;
//!
//! #[stepup_mfa::factor::async_trait]
//! impl SmsSender for Gateway {
//!     async fn send(&self, _to: &str, _body: &str) -> Result<(), SmsError> { Ok(()) }
//! }
//!
//! let sms = Sms::new(SmsProvider::sender(Gateway));
//! assert!(sms.is_restricted());
//! ```

mod phone;
mod provider;
#[cfg(feature = "twilio")]
pub mod twilio;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stepup_store::Credential;

pub use phone::{PhoneNumber, Region, UnknownRegion};
pub use provider::{SmsError, SmsPolicy, SmsProvider, SmsSender, SmsVerifier};
#[cfg(feature = "twilio")]
pub use twilio::TwilioVerify;

use crate::delivery::{MAX_CODE_TTL, Purpose};
use crate::error::{
    InvalidCode, MfaError, NoPendingEnrollment, NotEnrolled, PolicyRefusal, Unavailable,
};
use crate::factor::{
    EnrollmentFinish, EnrollmentStart, Factor, FactorContext, NewCredential, Verified, async_trait,
    parse_input,
};

/// The kind of SMS credentials (the phone number).
pub const KIND: &str = "sms";

/// The id of a user's SMS credential (there is at most one).
const CREDENTIAL_ID: &str = "sms";

/// The SMS factor: a provider and its policy.
#[derive(Debug, Clone)]
pub struct Sms {
    provider: SmsProvider,
    policy: SmsPolicy,
}

impl Sms {
    /// SMS codes through `provider`, under the default [`SmsPolicy`].
    pub fn new(provider: SmsProvider) -> Self {
        Self {
            provider,
            policy: SmsPolicy::default(),
        }
    }

    /// With `policy`.
    pub fn with_policy(mut self, policy: SmsPolicy) -> Self {
        self.policy = policy;
        self
    }

    fn check_country(&self, number: &PhoneNumber) -> Result<(), MfaError> {
        let code_allowed = match &self.policy.allowed_country_codes {
            None => true,
            Some(codes) => codes.iter().any(|code| code == number.country_code()),
        };
        let region_allowed = match &self.policy.allowed_regions {
            None => true,
            Some(regions) => number
                .region()
                .is_some_and(|region| regions.contains(&region)),
        };
        let allowed = code_allowed && region_allowed;
        if allowed {
            Ok(())
        } else {
            Err(PolicyRefusal::bad_request(
                "country_not_allowed",
                "SMS to this country is not offered",
            )
            .into())
        }
    }

    /// Sends a code for `purpose` to `number` (or asks the provider to).
    async fn deliver(
        &self,
        cx: &FactorContext<'_>,
        number: &PhoneNumber,
        purpose: Purpose<'_>,
    ) -> Result<Value, MfaError> {
        let ttl = self.policy.sends.code_ttl.min(MAX_CODE_TTL);
        match &self.provider {
            SmsProvider::Sender(sender) => {
                let code = cx.issue_code(purpose, ttl).await?;
                let minutes = (ttl.as_secs() / 60).max(1);
                let body = match cx.approving() {
                    // A transaction step-up: the text names what the code approves.
                    Some(operation) => format!(
                        "Approve {operation}: your code is {code}. It expires in {minutes} minutes. Never share it."
                    ),
                    None => format!(
                        "Your verification code is {code}. It expires in {minutes} minutes. Never share it."
                    ),
                };
                sender
                    .send(number.as_str(), &body)
                    .await
                    .map_err(send_error)?;
            }
            SmsProvider::Verifier(verifier) => {
                verifier.start(number.as_str()).await.map_err(send_error)?;
                let key = verification_key(cx, purpose)?;
                cx.take_state(&key).await?;
                cx.put_state(&key, b"1", ttl).await?;
            }
        }
        tracing::info!(target: "stepup::sms", to = %number.masked(), purpose = purpose.name(), "SMS code sent");
        cx.code_sent(purpose).await;
        let phone = number.masked();
        Ok(json!({ "message": format!("Code sent to {phone}"), "phone": phone }))
    }

    /// Checks `code` for `purpose`: consumed once (stepup's codes) or checked by the provider.
    async fn check(
        &self,
        cx: &FactorContext<'_>,
        number: &PhoneNumber,
        purpose: Purpose<'_>,
        code: &str,
    ) -> Result<(), MfaError> {
        match &self.provider {
            SmsProvider::Sender(_) => {
                if !cx.consume_code(purpose, code).await? {
                    return Err(InvalidCode.into());
                }
            }
            SmsProvider::Verifier(verifier) => {
                let code = crate::delivery::normalise(code).ok_or(InvalidCode)?;
                let key = verification_key(cx, purpose)?;
                // The verification must have been started for this purpose, and is used once.
                if cx.state(&key).await?.is_none() {
                    return Err(InvalidCode.into());
                }
                if !verifier
                    .check(number.as_str(), &code)
                    .await
                    .map_err(check_error)?
                {
                    return Err(InvalidCode.into());
                }
                if cx.take_state(&key).await?.is_none() {
                    return Err(InvalidCode.into());
                }
            }
        }
        Ok(())
    }

    fn number(
        &self,
        cx: &FactorContext<'_>,
        credential: &Credential,
    ) -> Result<PhoneNumber, MfaError> {
        let payload: Payload =
            serde_json::from_str(&credential.payload).map_err(MfaError::internal)?;
        let number = cx.open(&payload.number)?;
        std::str::from_utf8(&number)
            .ok()
            .and_then(PhoneNumber::parse)
            .ok_or_else(|| MfaError::internal("a stored phone number is corrupt"))
    }

    fn payload(cx: &FactorContext<'_>, number: &PhoneNumber) -> Result<String, MfaError> {
        let payload = Payload {
            number: cx.seal(number.as_str().as_bytes())?,
        };
        serde_json::to_string(&payload).map_err(MfaError::internal)
    }
}

/// The stored payload of an SMS credential.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The E.164 number, sealed for this kind and user.
    number: String,
}

#[derive(Deserialize)]
struct Phone {
    phone: String,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

#[async_trait]
impl Factor for Sms {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn amr(&self) -> &'static str {
        "sms"
    }

    fn noun(&self) -> &'static str {
        "a phone number for SMS codes"
    }

    fn is_restricted(&self) -> bool {
        true
    }

    /// `{phone}` (E.164): the number is kept pending and a code sent to it.
    async fn start_enrollment(
        &self,
        cx: &FactorContext<'_>,
        input: &Value,
    ) -> Result<EnrollmentStart, MfaError> {
        let Phone { phone } = parse_input(input)?;
        let number = PhoneNumber::parse(&phone).ok_or_else(|| {
            MfaError::invalid_input(
                "the phone number must be in E.164 form (+ and 8 to 15 digits) and able to receive SMS",
            )
        })?;
        if let Err(refused) = self.check_country(&number) {
            // Audited like every refused send (`sms_refused`): SMS pumping shows in the trail.
            cx.record("refused", json!({ "reason": "country_not_allowed" }))
                .await;
            return Err(refused);
        }
        let destination = cx.digest(&format!("sms-number:{}", number.as_str()));
        let purpose = Purpose::Enrollment {
            destination: &destination,
        };
        cx.admit_send(&self.policy.sends, number.as_str(), purpose)
            .await?;
        let pending = NewCredential::new(CREDENTIAL_ID, Self::payload(cx, &number)?);
        let answer = self.deliver(cx, &number, purpose).await?;
        Ok(EnrollmentStart::pending(pending, answer))
    }

    /// `{code}`: the code sent to the pending number.
    async fn finish_enrollment(
        &self,
        cx: &FactorContext<'_>,
        pending: Option<&Credential>,
        input: &Value,
    ) -> Result<EnrollmentFinish, MfaError> {
        let Code { code } = parse_input(input)?;
        let pending = pending.ok_or(NoPendingEnrollment)?;
        let number = self.number(cx, pending)?;
        let destination = cx.digest(&format!("sms-number:{}", number.as_str()));
        let purpose = Purpose::Enrollment {
            destination: &destination,
        };
        self.check(cx, &number, purpose, &code).await?;
        Ok(EnrollmentFinish::activate(0))
    }

    /// Sends a code for this MFA step: `{message: "Code sent to +1*****6789"}`.
    async fn prepare(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
    ) -> Result<Value, MfaError> {
        let credential = credentials.first().ok_or(NotEnrolled)?;
        let number = self.number(cx, credential)?;
        cx.admit_send(&self.policy.sends, number.as_str(), Purpose::Login)
            .await?;
        let mut answer = self.deliver(cx, &number, Purpose::Login).await?;
        if let Some(object) = answer.as_object_mut() {
            object.remove("phone");
        }
        Ok(answer)
    }

    fn check_proof(&self, proof: &Value) -> Result<(), MfaError> {
        parse_input::<Code>(proof).map(drop)
    }

    /// `{code}`: the code sent for this MFA step, and no other.
    async fn verify(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
        proof: &Value,
    ) -> Result<Verified, MfaError> {
        let Code { code } = parse_input(proof)?;
        let credential = credentials.first().ok_or(NotEnrolled)?;
        let number = self.number(cx, credential)?;
        self.check(cx, &number, Purpose::Login, &code).await?;
        // Record the use; the code itself was the single-use part.
        cx.advance_counter(credential, credential.counter + 1, None)
            .await?;
        Ok(Verified::mfa().by(&credential.id))
    }

    async fn describe(
        &self,
        cx: &FactorContext<'_>,
        credential: &Credential,
    ) -> Result<Map<String, Value>, MfaError> {
        let mut detail = Map::new();
        detail.insert("phone".into(), self.number(cx, credential)?.masked().into());
        Ok(detail)
    }

    async fn removed(
        &self,
        cx: &FactorContext<'_>,
        _credential: &Credential,
    ) -> Result<(), MfaError> {
        cx.clear_codes().await
    }

    fn reseal(
        &self,
        cx: &FactorContext<'_>,
        credential: &Credential,
    ) -> Result<Option<String>, MfaError> {
        let payload: Payload =
            serde_json::from_str(&credential.payload).map_err(MfaError::internal)?;
        if cx.is_sealed_with_current_key(&payload.number) {
            return Ok(None);
        }
        Ok(Some(Self::payload(cx, &self.number(cx, credential)?)?))
    }
}

/// Where a provider-made verification's purpose is recorded.
fn verification_key(cx: &FactorContext<'_>, purpose: Purpose<'_>) -> Result<String, MfaError> {
    Ok(match purpose {
        Purpose::Enrollment { destination } => format!("verification:enroll:{destination}"),
        Purpose::Login => format!("verification:login:{}", cx.challenge_id()?),
    })
}

fn send_error(error: SmsError) -> MfaError {
    match error {
        SmsError::InvalidNumber => MfaError::invalid_input(
            "the phone number must be in E.164 form (+ and 8 to 15 digits) and able to receive SMS",
        ),
        SmsError::TooManySends | SmsError::RateLimited => MfaError::rate_limited(MAX_CODE_TTL),
        SmsError::VerificationGone | SmsError::Unavailable(_) => {
            tracing::warn!(target: "stepup::sms", %error, "the SMS provider failed");
            Unavailable::new(error).into()
        }
    }
}

fn check_error(error: SmsError) -> MfaError {
    match error {
        SmsError::VerificationGone | SmsError::InvalidNumber => InvalidCode.into(),
        SmsError::TooManySends | SmsError::RateLimited => MfaError::rate_limited(MAX_CODE_TTL),
        SmsError::Unavailable(_) => {
            tracing::warn!(target: "stepup::sms", %error, "the SMS provider failed");
            Unavailable::new(error).into()
        }
    }
}
