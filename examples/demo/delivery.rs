//! How the demo delivers SMS and mail: to JSON-lines outbox files for development (read back by
//! the page's development panel and the tests), or by SMTP when `STEPUP_SMTP_URL` is set.

use serde_json::json;
use stepup::clock::SharedClock;
use stepup::mfa::sms::{PhoneNumber, SmsError, SmsSender};

use super::Database;

/// Where the demo writes SMS without `STEPUP_SMS_OUTBOX`: beside the SQLite file
/// (`<database>.sms.jsonl`), or in the working directory for PostgreSQL.
pub(crate) fn default_sms_outbox(database: &Database) -> std::path::PathBuf {
    match database {
        Database::Sqlite(store) => {
            let file = store.pool().connect_options().get_filename().to_owned();
            let mut name = file.into_os_string();
            name.push(".sms.jsonl");
            name.into()
        }
        Database::Postgres(_) => "stepup-demo-postgres.sms.jsonl".into(),
    }
}

/// The demo's SMS delivery without a provider: one JSON line `{"to", "body", "at"}` per message
/// appended to a file (mode `0600`: it holds codes). The log says a message was written, to whom
/// (masked), never the code.
pub(crate) struct SmsOutbox {
    path: std::path::PathBuf,
    clock: SharedClock,
    lock: std::sync::Mutex<()>,
}

impl SmsOutbox {
    pub(crate) fn new(path: std::path::PathBuf, clock: SharedClock) -> Self {
        Self {
            path,
            clock,
            lock: std::sync::Mutex::new(()),
        }
    }
}

#[stepup::policy::async_trait]
impl SmsSender for SmsOutbox {
    async fn send(&self, to: &str, body: &str) -> Result<(), SmsError> {
        use std::io::Write;
        let line = json!({"to": to, "body": body, "at": self.clock.unix_seconds()});
        let written = {
            let _guard = self
                .lock
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut options = std::fs::OpenOptions::new();
            options.append(true).create(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options
                .open(&self.path)
                .and_then(|mut file| writeln!(file, "{line}"))
        };
        let to = PhoneNumber::parse(to).map_or_else(|| "?".to_owned(), |n| n.masked());
        match written {
            Ok(()) => {
                tracing::info!(to, outbox = %self.path.display(), "SMS written to the outbox");
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, outbox = %self.path.display(), "could not write the SMS outbox");
                Err(SmsError::Unavailable("the outbox cannot be written"))
            }
        }
    }
}

/// Where the demo writes mail without `STEPUP_MAIL_OUTBOX`: beside the SQLite file
/// (`<database>.mail.jsonl`), or in the working directory for PostgreSQL.
pub(crate) fn default_mail_outbox(database: &Database) -> std::path::PathBuf {
    match database {
        Database::Sqlite(store) => {
            let file = store.pool().connect_options().get_filename().to_owned();
            let mut name = file.into_os_string();
            name.push(".mail.jsonl");
            name.into()
        }
        Database::Postgres(_) => "stepup-demo-postgres.mail.jsonl".into(),
    }
}

/// The demo's mailer: SMTP when `STEPUP_SMTP_URL` is set (sender `STEPUP_MAIL_FROM`, default
/// `stepup demo <no-reply@localhost>`), else one JSON line `{"to","subject","body","at"}` per mail
/// appended to `STEPUP_MAIL_OUTBOX` (default [`default_mail_outbox`]), whose path comes back too.
#[allow(clippy::type_complexity)] // Spelled out once, here.
pub(super) fn demo_mailer(
    default_outbox: std::path::PathBuf,
    clock: SharedClock,
) -> Result<
    (
        std::sync::Arc<dyn stepup::mail::Mailer>,
        Option<std::path::PathBuf>,
    ),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let setting = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if let Some(url) = setting("STEPUP_SMTP_URL") {
        let from = setting("STEPUP_MAIL_FROM")
            .unwrap_or_else(|| "stepup demo <no-reply@localhost>".to_owned());
        tracing::info!("mail goes out through SMTP");
        let smtp = stepup::mail::SmtpMailer::from_url(&url, &from)?;
        return Ok((std::sync::Arc::new(smtp), None));
    }
    let path = setting("STEPUP_MAIL_OUTBOX")
        .map(std::path::PathBuf::from)
        .unwrap_or(default_outbox);
    tracing::info!(path = %path.display(), "no STEPUP_SMTP_URL: mail is written to the outbox file");
    let outbox = stepup::mail::JsonLinesOutbox::new(path.clone()).with_clock(clock);
    Ok((std::sync::Arc::new(outbox), Some(path)))
}
