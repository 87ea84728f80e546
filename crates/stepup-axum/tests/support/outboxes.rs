//! Where the texts and mails go: outboxes the test reads, and the codes in them.

use super::*;

/// One text the SMS gateway "sent".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub to: String,
    pub body: String,
    /// When, by the test's clock.
    pub at: u64,
}

/// An SMS gateway keeping every text, readable by the test.
#[derive(Clone)]
pub struct SmsOutbox {
    texts: Arc<Mutex<Vec<Text>>>,
    clock: ManualClock,
}

impl SmsOutbox {
    pub(super) fn new(clock: ManualClock) -> Self {
        Self {
            texts: Arc::default(),
            clock,
        }
    }

    /// Every text so far, oldest first.
    pub fn texts(&self) -> Vec<Text> {
        self.texts.lock().unwrap().clone()
    }

    /// The code of the last text.
    pub fn last_code(&self) -> String {
        let texts = self.texts();
        code_in(&texts.last().expect("an SMS was sent").body)
    }
}

#[async_trait]
impl SmsSender for SmsOutbox {
    async fn send(&self, to: &str, body: &str) -> Result<(), SmsError> {
        self.texts.lock().unwrap().push(Text {
            to: to.to_owned(),
            body: body.to_owned(),
            at: self.clock.unix_seconds(),
        });
        Ok(())
    }
}
