//! Mail for stepup: the [`Mailer`] seam the engine sends recovery codes and notifications
//! through, a [`JsonLinesOutbox`] for development and tests (one JSON object a line), and, with
//! the `smtp` feature, [`SmtpMailer`] on lettre over rustls (no OpenSSL).
//!
//! ```
//! use stepup_mail::{Mail, Mailer, MemoryOutbox};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let outbox = MemoryOutbox::default();
//! outbox
//!     .send(Mail::new("ada@example.com", "Hello", "A body"))
//!     .await
//!     .unwrap();
//! assert_eq!(outbox.mails()[0].to, "ada@example.com");
//! # });
//! ```

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stepup_core::clock::{SharedClock, SystemClock};

#[cfg(feature = "smtp")]
mod smtp;
#[cfg(feature = "smtp")]
pub use smtp::SmtpMailer;

/// One plain-text mail to one address.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

impl Mail {
    /// A mail to `to`.
    pub fn new(to: impl Into<String>, subject: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            body: body.into(),
        }
    }
}

/// The body may hold a recovery code: never printed by `Debug`.
impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a mail was not sent. The text never holds the mail's body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The sender or recipient address is not a valid address.
    #[error("the mail address is invalid")]
    InvalidAddress,
    /// The mail could not be written or handed to the server.
    #[error("the mail could not be delivered: {0}")]
    Transport(String),
}

/// Sends mail. Implementations are cheap to share (`Arc<dyn Mailer>`).
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `mail` (or hands it to a server that will).
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}

#[async_trait]
impl<M: Mailer + ?Sized> Mailer for Arc<M> {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        (**self).send(mail).await
    }
}

/// Hands `mail` to `mailer` without waiting for it, so a slow mail server delays no answer (and
/// cannot tell apart answers that mail from answers that do not). A failure is logged, without
/// the mail's body. Outside a tokio runtime the mail is dropped with a warning.
pub fn send_in_background(mailer: Arc<dyn Mailer>, mail: Mail) {
    let send = async move {
        if let Err(error) = mailer.send(mail).await {
            tracing::warn!(target: "stepup::mail", %error, "a mail was not sent");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(send)),
        Err(_) => tracing::warn!(target: "stepup::mail", "no tokio runtime: a mail was not sent"),
    }
}

/// One line of a [`JsonLinesOutbox`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxLine<'a> {
    to: &'a str,
    subject: &'a str,
    body: &'a str,
    at: u64,
}

/// Appends each mail as one JSON line `{"to","subject","body","at"}` to a file (created with mode
/// `0600`: recovery codes pass through it). For development and tests, where no mail server is
/// configured.
#[derive(Clone)]
pub struct JsonLinesOutbox {
    path: PathBuf,
    clock: SharedClock,
    lock: Arc<Mutex<()>>,
}

impl JsonLinesOutbox {
    /// An outbox appending to `path`, stamping `at` with the system clock.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            clock: Arc::new(SystemClock),
            lock: Arc::default(),
        }
    }

    /// Stamps `at` with `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for JsonLinesOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesOutbox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for JsonLinesOutbox {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let line = OutboxLine {
            to: &mail.to,
            subject: &mail.subject,
            body: &mail.body,
            at: self.clock.unix_seconds(),
        };
        let mut line = serde_json::to_vec(&line)
            .map_err(|_| MailError::Transport("could not encode the mail".into()))?;
        line.push(b'\n');
        let path = self.path.clone();
        let lock = self.lock.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut options = std::fs::OpenOptions::new();
            options.append(true).create(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&path)?.write_all(&line)
        })
        .await
        .map_err(|_| MailError::Transport("the outbox writer stopped".into()))?
        .map_err(|error| MailError::Transport(format!("outbox: {}", error.kind())))
    }
}

/// Keeps mails in memory, for tests.
#[derive(Debug, Clone, Default)]
pub struct MemoryOutbox {
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl MemoryOutbox {
    /// Every mail sent so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[async_trait]
impl Mailer for MemoryOutbox {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        self.mails
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(mail);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_appends_one_json_line_per_mail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.jsonl");
        let outbox = JsonLinesOutbox::new(&path)
            .with_clock(Arc::new(stepup_core::clock::ManualClock::at_unix(42)));
        outbox
            .send(Mail::new("a@example.com", "One", "first"))
            .await
            .unwrap();
        outbox
            .send(Mail::new("b@example.com", "Two", "second\nline"))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["to"], "a@example.com");
        assert_eq!(lines[1]["subject"], "Two");
        assert_eq!(lines[1]["body"], "second\nline");
        assert_eq!(lines[1]["at"], 42);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn debug_never_shows_the_body() {
        let mail = Mail::new("a@example.com", "Code", "secret-code");
        assert!(!format!("{mail:?}").contains("secret-code"));
    }
}
