//! Notices by mail: the user hears of every recovery, admin reset, factor added or removed, and
//! factor lock, at the address the application keeps ([`PasswordCheck::email_of`]). A notice
//! names what happened, never a code or secret.

use std::sync::Arc;

use async_trait::async_trait;
use stepup_mail::{Mail, Mailer, send_in_background};

use crate::accounts::PasswordCheck;
use crate::audit::{AuditEvent, Notifier};

/// The notifier of an engine: the application's, the one that mails, both, or none.
pub fn combined(
    application: Option<Arc<dyn Notifier>>,
    mailer: Option<Arc<dyn Mailer>>,
    passwords: Option<Arc<dyn PasswordCheck>>,
) -> Option<Arc<dyn Notifier>> {
    let mailing = match (mailer, passwords) {
        (Some(mailer), Some(passwords)) => {
            Some(Arc::new(MailNotifier { mailer, passwords }) as Arc<dyn Notifier>)
        }
        _ => None,
    };
    match (application, mailing) {
        (Some(application), Some(mailing)) => Some(Arc::new(Both(application, mailing))),
        (application, mailing) => application.or(mailing),
    }
}

struct Both(Arc<dyn Notifier>, Arc<dyn Notifier>);

#[async_trait]
impl Notifier for Both {
    async fn factor_changed(&self, user: &str, event: &AuditEvent) {
        self.0.factor_changed(user, event).await;
        self.1.factor_changed(user, event).await;
    }
}

/// Mails the user about recoveries, admin resets, factors added or removed and factor locks, at
/// [`PasswordCheck::email_of`]. A notice names what happened, never a code or secret.
pub struct MailNotifier {
    mailer: Arc<dyn Mailer>,
    passwords: Arc<dyn PasswordCheck>,
}

impl MailNotifier {
    /// Mails through `mailer` to the addresses `accounts` gives.
    pub fn new(mailer: Arc<dyn Mailer>, accounts: Arc<dyn PasswordCheck>) -> Self {
        Self {
            mailer,
            passwords: accounts,
        }
    }
}

#[async_trait]
impl Notifier for MailNotifier {
    async fn factor_changed(&self, user: &str, event: &AuditEvent) {
        let Some((subject, text)) = notice(event) else {
            return;
        };
        let address = match self.passwords.email_of(user).await {
            Ok(Some(address)) => address,
            Ok(None) => return,
            Err(_) => {
                tracing::warn!(target: "stepup::mail", "no address for a notice: the password check is unavailable");
                return;
            }
        };
        let body = format!(
            "{text}\n\nIf this was not you, recover your account or contact support right away."
        );
        send_in_background(self.mailer.clone(), Mail::new(address, subject, body));
    }
}

/// The subject and text of the notice of `event`, if it gets one. A recovery request gets none:
/// the mail with its code is the notice. Devices and the reset's own bookkeeping are told as part
/// of the recovery or reset.
fn notice(event: &AuditEvent) -> Option<(&'static str, String)> {
    let notice = match event {
        AuditEvent::RecoveryRequested {}
        | AuditEvent::FactorsReset {}
        | AuditEvent::DeviceRemembered { .. }
        | AuditEvent::DeviceRevoked { .. }
        | AuditEvent::DevicesRevoked { .. } => return None,
        AuditEvent::Enrolled { noun, .. } => (
            "A sign-in factor was added",
            format!("{} was added to your account as a second factor.", capitalised(noun)),
        ),
        AuditEvent::Removed { noun, .. } => (
            "A sign-in factor was removed",
            format!("{} was removed from your account.", capitalised(noun)),
        ),
        AuditEvent::Factor { kind, name, .. } => (
            "Something happened to a sign-in factor",
            format!(
                "Your {kind} factor: {}. If this was not you, recover your account.",
                name.replace('_', " ")
            ),
        ),
        AuditEvent::BackupCodesRegenerated { .. } => (
            "New backup codes were made",
            "A new set of backup codes was made for your account; the old ones no longer work."
                .to_owned(),
        ),
        AuditEvent::FactorLocked { method, .. } => (
            "A sign-in factor was locked",
            format!(
                "Your {method} factor is locked after too many failed attempts in a row. Recover \
                 your account or ask an administrator to unlock it."
            ),
        ),
        AuditEvent::RecoveryPending { due_at } => (
            "Your account recovery is pending",
            format!(
                "A recovery of your account was confirmed. It removes every second factor at the \
                 first password login after {due_at} (Unix time). To cancel it, just sign in with \
                 your authenticator, passkey or a remembered device before then."
            ),
        ),
        AuditEvent::RecoveryCancelled {} => (
            "Your account recovery was cancelled",
            "A pending recovery of your account was cancelled by a sign-in with your second factor."
                .to_owned(),
        ),
        AuditEvent::RecoveryCompleted {} => (
            "Your account was recovered",
            "Your account was recovered: every second factor, backup code and remembered device \
             was removed, and every earlier sign-in ended. Enroll a second factor again."
                .to_owned(),
        ),
        AuditEvent::AdminReset { .. } => (
            "An administrator reset your second factors",
            "An administrator removed every second factor, backup code and remembered device of \
             your account and unlocked it. Enroll a second factor again."
                .to_owned(),
        ),
        AuditEvent::AccountDeleted {} => (
            "Your account was deleted",
            "Your account was deleted.".to_owned(),
        ),
        other => (
            "How you sign in changed",
            format!("A change was made to how you sign in: {}.", other.kind()),
        ),
    };
    Some(notice)
}

/// `noun` with its first letter upper-case ("An authenticator app").
fn capitalised(noun: &str) -> String {
    let mut chars = noun.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
