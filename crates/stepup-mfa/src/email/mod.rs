//! The email factor, kind `email`: a mail address proven by one-time codes mailed to it, through
//! the engine's [`Mailer`]. Like SMS, a NIST SP 800-63B *restricted* authenticator (the engine
//! can refuse it alone), and built only on the factor seam: the codes, the cooldown and the send
//! limits are the shared machinery of [`delivery`](crate::delivery), not a copy of SMS's.
//!
//! Enrollment takes `{}` (the account's own address, as the application keeps it) or
//! `{"email": …}` (another address, proven by the code mailed to it). Its `amr` is `email`: a
//! code by mail is neither `otp` from an app nor `sms`. Answers only ever show the address
//! masked (`a***@example.com`).
//!
//! ```
//! use stepup_mail::MemoryOutbox;
//! use stepup_mfa::email::Email;
//! use stepup_mfa::factor::Factor;
//!
//! let email = Email::new(MemoryOutbox::default());
//! assert_eq!((email.kind(), email.amr(), email.is_restricted()), ("email", "email", true));
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stepup_mail::{Mail, MailError, Mailer};
use stepup_store::Credential;

use crate::delivery::{MAX_CODE_TTL, Purpose, SendPolicy};
use crate::error::{InvalidCode, MfaError, NoPendingEnrollment, NotEnrolled, Unavailable};
use crate::factor::{
    EnrollmentFinish, EnrollmentStart, Factor, FactorContext, NewCredential, Verified, async_trait,
    parse_input,
};

/// The kind of email credentials (the address).
pub const KIND: &str = "email";

/// The id of a user's email credential (there is at most one).
const CREDENTIAL_ID: &str = "email";
/// The longest address.
const MAX_ADDRESS: usize = 254;

/// The email factor: the mailer codes go through, and the send limits.
#[derive(Clone)]
pub struct Email {
    mailer: Arc<dyn Mailer>,
    policy: SendPolicy,
}

impl Email {
    /// Codes mailed through `mailer`, under the default [`SendPolicy`].
    pub fn new(mailer: impl Mailer) -> Self {
        Self::shared(Arc::new(mailer))
    }

    /// Codes mailed through a shared `mailer`.
    pub fn shared(mailer: Arc<dyn Mailer>) -> Self {
        Self {
            mailer,
            policy: SendPolicy::default(),
        }
    }

    /// With `policy`.
    pub fn with_policy(mut self, policy: SendPolicy) -> Self {
        self.policy = policy;
        self
    }

    async fn deliver(
        &self,
        cx: &FactorContext<'_>,
        address: &str,
        purpose: Purpose<'_>,
    ) -> Result<Value, MfaError> {
        let ttl = self.policy.code_ttl.min(MAX_CODE_TTL);
        let code = cx.issue_code(purpose, ttl).await?;
        let minutes = (ttl.as_secs() / 60).max(1);
        let mail = match cx.approving() {
            // A transaction step-up: the mail names what the code approves.
            Some(operation) => Mail::new(
                address,
                format!("Approve {operation}: your code {code}"),
                format!(
                    "You are approving {operation}. Your code is {code}. It expires in {minutes} \
                     minutes.\n\nNever share it: nobody from us will ever ask for it. If you did not \
                     ask for this, do not enter the code and change your password."
                ),
            ),
            None => Mail::new(
                address,
                format!("Your verification code: {code}"),
                format!(
                    "Your verification code is {code}. It expires in {minutes} minutes.\n\n\
                     Never share it: nobody from us will ever ask for it. If you did not try to sign \
                     in, change your password."
                ),
            ),
        };
        self.mailer.send(mail).await.map_err(mail_error)?;
        tracing::info!(target: "stepup::email", to = %masked(address), purpose = purpose.name(), "email code sent");
        cx.code_sent(purpose).await;
        let shown = masked(address);
        Ok(json!({ "message": format!("Code sent to {shown}"), "email": shown }))
    }

    fn address(cx: &FactorContext<'_>, credential: &Credential) -> Result<String, MfaError> {
        let payload: Payload =
            serde_json::from_str(&credential.payload).map_err(MfaError::internal)?;
        String::from_utf8(cx.open(&payload.address)?)
            .map_err(|_| MfaError::internal("a stored mail address is corrupt"))
    }

    fn payload(cx: &FactorContext<'_>, address: &str) -> Result<String, MfaError> {
        let payload = Payload {
            address: cx.seal(address.as_bytes())?,
        };
        serde_json::to_string(&payload).map_err(MfaError::internal)
    }
}

/// The stored payload of an email credential.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The address, sealed for this kind and user.
    address: String,
}

#[derive(Deserialize)]
struct Start {
    email: Option<String>,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

#[async_trait]
impl Factor for Email {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn amr(&self) -> &'static str {
        "email"
    }

    fn noun(&self) -> &'static str {
        "a mail address for sign-in codes"
    }

    fn is_restricted(&self) -> bool {
        true
    }

    /// `{}` for the account's address, or `{email}`: kept pending, and a code mailed to it.
    async fn start_enrollment(
        &self,
        cx: &FactorContext<'_>,
        input: &Value,
    ) -> Result<EnrollmentStart, MfaError> {
        let Start { email } = parse_input(input)?;
        let address = match email {
            Some(email) => normalise(&email)?,
            None => normalise(&cx.account_email().await?.ok_or_else(|| {
                MfaError::invalid_input("missing field email (the account has no mail address)")
            })?)?,
        };
        let destination = cx.digest(&format!("email-address:{address}"));
        let purpose = Purpose::Enrollment {
            destination: &destination,
        };
        cx.admit_send(&self.policy, &address, purpose).await?;
        let pending = NewCredential::new(CREDENTIAL_ID, Self::payload(cx, &address)?);
        let answer = self.deliver(cx, &address, purpose).await?;
        Ok(EnrollmentStart::pending(pending, answer))
    }

    /// `{code}`: the code mailed to the pending address.
    async fn finish_enrollment(
        &self,
        cx: &FactorContext<'_>,
        pending: Option<&Credential>,
        input: &Value,
    ) -> Result<EnrollmentFinish, MfaError> {
        let Code { code } = parse_input(input)?;
        let pending = pending.ok_or(NoPendingEnrollment)?;
        let destination = cx.digest(&format!("email-address:{}", Self::address(cx, pending)?));
        let purpose = Purpose::Enrollment {
            destination: &destination,
        };
        if !cx.consume_code(purpose, &code).await? {
            return Err(InvalidCode.into());
        }
        Ok(EnrollmentFinish::activate(0))
    }

    /// Mails a code for this MFA step: `{message: "Code sent to a***@example.com"}`.
    async fn prepare(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
    ) -> Result<Value, MfaError> {
        let credential = credentials.first().ok_or(NotEnrolled)?;
        let address = Self::address(cx, credential)?;
        cx.admit_send(&self.policy, &address, Purpose::Login)
            .await?;
        let mut answer = self.deliver(cx, &address, Purpose::Login).await?;
        if let Some(object) = answer.as_object_mut() {
            object.remove("email");
        }
        Ok(answer)
    }

    fn check_proof(&self, proof: &Value) -> Result<(), MfaError> {
        parse_input::<Code>(proof).map(drop)
    }

    /// `{code}`: the code mailed for this MFA step, and no other.
    async fn verify(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
        proof: &Value,
    ) -> Result<Verified, MfaError> {
        let Code { code } = parse_input(proof)?;
        let credential = credentials.first().ok_or(NotEnrolled)?;
        if !cx.consume_code(Purpose::Login, &code).await? {
            return Err(InvalidCode.into());
        }
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
        detail.insert(
            "email".into(),
            masked(&Self::address(cx, credential)?).into(),
        );
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
        if cx.is_sealed_with_current_key(&payload.address) {
            return Ok(None);
        }
        Ok(Some(Self::payload(cx, &Self::address(cx, credential)?)?))
    }
}

/// A mail address as kept: trimmed, lower-case domain, one `@`, no spaces or control characters.
fn normalise(raw: &str) -> Result<String, MfaError> {
    let address = raw.trim();
    let well_formed = (3..=MAX_ADDRESS).contains(&address.len())
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if !well_formed {
        return Err(MfaError::invalid_input("field email is not a mail address"));
    }
    let (local, domain) = address.split_once('@').unwrap_or((address, ""));
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// `a***@example.com`: the first character of the local part, the domain.
pub fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

fn mail_error(error: MailError) -> MfaError {
    match error {
        MailError::InvalidAddress => MfaError::invalid_input("field email is not a mail address"),
        other => {
            tracing::warn!(target: "stepup::email", error = %other, "the mailer failed");
            Unavailable::new(other).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{masked, normalise};

    #[test]
    fn addresses_are_normalised_and_masked() {
        assert_eq!(normalise(" Ada@Example.COM ").unwrap(), "Ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "ada@example",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
        assert_eq!(masked("ada@example.com"), "a***@example.com");
    }
}
