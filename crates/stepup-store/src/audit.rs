//! [`AuditStore`]: the append-only audit trail.

use crate::{StoreResult, async_trait};

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Unique id of the event, chosen by the caller (random).
    pub id: String,
    /// The user the event is about.
    pub user: String,
    /// What happened, e.g. `totp_enrolled`, `mfa_failed`.
    pub kind: String,
    /// When it happened (Unix seconds).
    pub at: u64,
    /// Details as the text of a JSON object; never secrets.
    pub detail: String,
}

/// The audit trail (durable, append-only).
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an event. Appending an `id` already stored changes nothing, so a retried append is
    /// stored once.
    async fn append_audit(&self, record: AuditRecord) -> StoreResult<()>;

    /// The user's most recent `limit` events (by `at`), oldest first; events with the same `at`
    /// keep the order they were appended in.
    async fn audit_events(&self, user: &str, limit: usize) -> StoreResult<Vec<AuditRecord>>;
}
