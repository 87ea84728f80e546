//! [`SmtpMailer`]: mail through an SMTP server, on lettre over rustls.

use std::fmt;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{Mail, MailError, Mailer};

/// Sends through an SMTP server, with TLS by rustls.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for the server at `url`, sending as `from` (e.g. `stepup <no-reply@example.com>`).
    ///
    /// `url` is lettre's connection URL: `smtps://user:password@host:465` (TLS from the start),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS), or `smtp://host:25` (no TLS: only
    /// for a relay on the same machine).
    pub fn from_url(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| MailError::Transport("STEPUP_SMTP_URL is not a valid SMTP URL".into()))?
            .build();
        let from = from.parse().map_err(|_| MailError::InvalidAddress)?;
        Ok(Self { transport, from })
    }
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let to: Mailbox = mail.to.parse().map_err(|_| MailError::InvalidAddress)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|_| MailError::InvalidAddress)?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|error| MailError::Transport(format!("smtp: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_senders_are_checked() {
        assert!(
            SmtpMailer::from_url("smtps://user:pw@mail.example.com:465", "a@example.com").is_ok()
        );
        assert!(SmtpMailer::from_url("smtp://localhost:2525", "stepup <a@example.com>").is_ok());
        assert!(matches!(
            SmtpMailer::from_url("smtps://mail.example.com", "not an address"),
            Err(MailError::InvalidAddress)
        ));
        assert!(SmtpMailer::from_url("http://mail.example.com", "a@example.com").is_err());
    }
}
