//! One-time codes sent to a destination (a phone, a mail address, anything a factor delivers
//! to), the machinery every such factor shares through its
//! [`crate::factor::FactorContext`]:
//!
//! - **the code**: 6 random digits, stored only as a keyed digest that covers what the code was
//!   sent for ([`Purpose`]: an enrollment of one destination, or one MFA step), live at most
//!   [`MAX_CODE_TTL`] by the injected clock, consumed once; a new code replaces the earlier one,
//!   so a code is never accepted for another purpose or after a resend;
//! - **the limits** ([`SendPolicy`]): a resend waits the cooldown; sends are counted per
//!   destination, per user and per client address, per hour and per day; a refused send is
//!   audited as `{kind}_refused` with its reason, never the code or the destination. Sends made to
//!   enroll a destination nobody has proven yet count against the enrolling user and address and
//!   an enrollment budget of the destination, never the budget its owner's login codes draw on.
//!   Sending a new code never resets any failure count.

use std::time::Duration;

use rand::Rng;
use stepup_core::tokens;
use stepup_store::{CodeHash, CodeSet};

use crate::audit::AuditEvent;
use crate::error::MfaError;
use crate::factor::FactorContext;

/// The longest a sent code lives, whatever the policy says.
pub const MAX_CODE_TTL: Duration = Duration::from_secs(10 * 60);

const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// What a code is sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// To prove a destination being enrolled (a digest of it, e.g. from
    /// [`FactorContext::digest`]).
    Enrollment {
        /// The destination's digest.
        destination: &'a str,
    },
    /// To answer the MFA step of the context ([`FactorContext::challenge_id`]).
    Login,
}

impl Purpose<'_> {
    /// `enrollment` or `login`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Enrollment { .. } => "enrollment",
            Self::Login => "login",
        }
    }

    /// What the code's digest is bound to.
    fn binding(&self, cx: &FactorContext<'_>) -> Result<String, MfaError> {
        Ok(match self {
            Self::Enrollment { destination } => format!("enroll:{destination}"),
            Self::Login => format!("login:{}", cx.challenge_id()?),
        })
    }
}

/// At most `max` sends per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimit {
    /// Sends allowed per window.
    pub max: u64,
    /// The window.
    pub window: Duration,
}

impl SendLimit {
    /// `hour` an hour and `day` a day.
    pub fn hourly_and_daily(hour: u64, day: u64) -> Vec<Self> {
        vec![
            Self {
                max: hour,
                window: HOUR,
            },
            Self {
                max: day,
                window: DAY,
            },
        ]
    }
}

/// How long codes live and how often they may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPolicy {
    /// How long a code lives (default and most: [`MAX_CODE_TTL`]).
    pub code_ttl: Duration,
    /// The wait between two sends to one user (default 30 s).
    pub resend_cooldown: Duration,
    /// Sends per destination (default 5 an hour, 10 a day), counted apart for enrollments and
    /// logins.
    pub per_destination: Vec<SendLimit>,
    /// Sends per user (default 5 an hour, 10 a day).
    pub per_user: Vec<SendLimit>,
    /// Sends per client address (default 20 an hour, 50 a day).
    pub per_address: Vec<SendLimit>,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            code_ttl: MAX_CODE_TTL,
            resend_cooldown: Duration::from_secs(30),
            per_destination: SendLimit::hourly_and_daily(5, 10),
            per_user: SendLimit::hourly_and_daily(5, 10),
            per_address: SendLimit::hourly_and_daily(20, 50),
        }
    }
}

pub(crate) async fn admit_send(
    cx: &FactorContext<'_>,
    policy: &SendPolicy,
    destination: &str,
    purpose: Purpose<'_>,
) -> Result<(), MfaError> {
    let ephemeral = cx.mfa.ephemeral();
    let kind = cx.kind();
    let cooldown = policy.resend_cooldown;
    if !cooldown.is_zero() {
        let key = format!("{kind}_cooldown:{}", cx.user());
        let until = cx.now().saturating_add(cooldown.as_secs());
        if !ephemeral
            .insert_if_absent(&key, &until.to_be_bytes(), cooldown)
            .await?
        {
            let until = ephemeral
                .get(&key)
                .await?
                .and_then(|value| <[u8; 8]>::try_from(value.as_slice()).ok())
                .map_or(until, u64::from_be_bytes);
            refused(cx, "cooldown").await;
            let wait = until.saturating_sub(cx.now()).max(1);
            return Err(MfaError::rate_limited(Duration::from_secs(wait)));
        }
    }
    let destination_key = format!(
        "{}:{}",
        purpose.name(),
        cx.digest(&format!("{kind}-destination:{destination}"))
    );
    let address = cx.mfa.address_key(cx.client().address);
    let scopes: [(&'static str, &str, &[SendLimit]); 3] = [
        (
            "destination_limit",
            &destination_key,
            &policy.per_destination,
        ),
        ("user_limit", cx.user(), &policy.per_user),
        ("address_limit", &address, &policy.per_address),
    ];
    for (reason, id, limits) in scopes {
        for limit in limits {
            let window = limit.window.as_secs();
            let key = format!("{kind}_sends:{reason}:{window}:{id}");
            if ephemeral.increment(&key, limit.window).await? > limit.max {
                refused(cx, reason).await;
                return Err(MfaError::rate_limited(limit.window));
            }
        }
    }
    Ok(())
}

async fn refused(cx: &FactorContext<'_>, reason: &'static str) {
    tracing::info!(target: "stepup::delivery", kind = cx.kind(), reason, "a code send was refused");
    let event = AuditEvent::factor(
        cx.kind(),
        "refused",
        serde_json::json!({ "reason": reason }),
    );
    cx.mfa.audit().record(cx.user(), event).await;
}

pub(crate) async fn issue_code(
    cx: &FactorContext<'_>,
    purpose: Purpose<'_>,
    ttl: Duration,
) -> Result<String, MfaError> {
    let ttl = ttl.min(MAX_CODE_TTL);
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let set = CodeSet {
        kind: code_kind(cx),
        codes: vec![CodeHash {
            lookup: lookup(cx, &purpose.binding(cx)?, &code),
            hash: String::new(),
            expires_at: Some(cx.now().saturating_add(ttl.as_secs())),
        }],
    };
    // A new code replaces the earlier one; failure counts stay as they are.
    cx.mfa.factors().replace_codes(cx.user(), set).await?;
    Ok(code)
}

pub(crate) async fn consume_code(
    cx: &FactorContext<'_>,
    purpose: Purpose<'_>,
    code: &str,
) -> Result<bool, MfaError> {
    let Some(code) = normalise(code) else {
        return Ok(false);
    };
    let lookup = lookup(cx, &purpose.binding(cx)?, &code);
    Ok(cx
        .mfa
        .factors()
        .consume_code(cx.user(), &code_kind(cx), &lookup)
        .await?)
}

pub(crate) async fn clear_codes(cx: &FactorContext<'_>) -> Result<(), MfaError> {
    let none = CodeSet {
        kind: code_kind(cx),
        codes: Vec::new(),
    };
    Ok(cx.mfa.factors().replace_codes(cx.user(), none).await?)
}

/// The code set of a factor's sent codes: `{kind}_code` (`sms_code`).
fn code_kind(cx: &FactorContext<'_>) -> String {
    format!("{}_code", cx.kind())
}

/// The keyed digest a code is stored under: the code and what it was sent for.
fn lookup(cx: &FactorContext<'_>, binding: &str, code: &str) -> String {
    cx.digest(&format!(
        "{}-code:{binding}:{}",
        cx.kind(),
        tokens::digest(code)
    ))
}

/// Six ASCII digits, spaces and dashes ignored.
pub(crate) fn normalise(code: &str) -> Option<String> {
    if code.len() > 32 {
        return None;
    }
    let digits: String = code.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(normalise("123 456").as_deref(), Some("123456"));
        assert_eq!(normalise("123-456").as_deref(), Some("123456"));
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }
}
