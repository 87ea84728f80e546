//! [`TwilioVerify`]: Twilio Verify v2, the provider that makes, sends and checks the code.
//! Over `reqwest` with rustls: no OpenSSL.
//!
//! Twilio's errors are mapped to [`SmsError`]: 60202 (too many checks) and 20404 (no pending
//! verification: approved, expired or never started) to [`SmsError::VerificationGone`], 60203
//! (too many sends) to [`SmsError::TooManySends`], 20429 to [`SmsError::RateLimited`], 60200 and
//! 21211 (an invalid `To`) to [`SmsError::InvalidNumber`]; anything else is
//! [`SmsError::Unavailable`].

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{SmsError, SmsVerifier};

/// Twilio's API host.
pub const DEFAULT_BASE_URL: &str = "https://verify.twilio.com";

/// A Twilio Verify service. Cheap to clone; its `Debug` shows no credential.
#[derive(Clone)]
pub struct TwilioVerify {
    client: reqwest::Client,
    base: String,
    account_sid: String,
    auth_token: String,
    service_sid: String,
}

#[derive(Deserialize)]
struct Verification {
    status: String,
}

#[derive(Deserialize)]
struct TwilioError {
    code: Option<u64>,
}

impl TwilioVerify {
    /// The Verify service `service_sid` (`VA…`) of account `account_sid` (`AC…`), authenticated
    /// with `auth_token`, at [`DEFAULT_BASE_URL`].
    pub fn new(account_sid: &str, auth_token: &str, service_sid: &str) -> Result<Self, SmsError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|_| SmsError::Unavailable("could not build the HTTP client"))?;
        Ok(Self {
            client,
            base: DEFAULT_BASE_URL.to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            service_sid: service_sid.to_owned(),
        })
    }

    /// Points at another base URL (a test double, a regional edge).
    pub fn with_base_url(mut self, base: &str) -> Self {
        self.base = base.trim_end_matches('/').to_owned();
        self
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<String, SmsError> {
        let url = format!("{}/v2/Services/{}/{path}", self.base, self.service_sid);
        let response = self
            .client
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(form)
            .send()
            .await
            .map_err(|_| SmsError::Unavailable("Twilio could not be reached"))?;
        let status = response.status();
        if status.is_success() {
            let verification: Verification = response
                .json()
                .await
                .map_err(|_| SmsError::Unavailable("Twilio answered something unexpected"))?;
            return Ok(verification.status);
        }
        let code = response
            .json::<TwilioError>()
            .await
            .ok()
            .and_then(|error| error.code);
        tracing::warn!(
            target: "stepup::sms",
            status = status.as_u16(),
            twilio_code = code,
            "Twilio Verify refused a request"
        );
        Err(match code {
            Some(60202 | 20404) => SmsError::VerificationGone,
            Some(60203) => SmsError::TooManySends,
            Some(20429) => SmsError::RateLimited,
            Some(60200 | 21211 | 21614) => SmsError::InvalidNumber,
            _ if status.as_u16() == 404 => SmsError::VerificationGone,
            _ if status.as_u16() == 429 => SmsError::RateLimited,
            _ => SmsError::Unavailable("Twilio refused the request"),
        })
    }
}

#[async_trait]
impl SmsVerifier for TwilioVerify {
    async fn start(&self, to: &str) -> Result<(), SmsError> {
        self.post("Verifications", &[("To", to), ("Channel", "sms")])
            .await
            .map(|_| ())
    }

    async fn check(&self, to: &str, code: &str) -> Result<bool, SmsError> {
        let status = self
            .post("VerificationCheck", &[("To", to), ("Code", code)])
            .await?;
        Ok(status == "approved")
    }
}

impl std::fmt::Debug for TwilioVerify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioVerify")
            .field("base", &self.base)
            .field("service_sid", &self.service_sid)
            .finish_non_exhaustive()
    }
}
