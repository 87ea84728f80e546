//! The [`AuditStore`] part of [`MemoryStore`].

use std::collections::{HashMap, HashSet};

use super::MemoryStore;
use crate::{AuditRecord, AuditStore, StoreResult, async_trait};

/// The audit trail.
#[derive(Default)]
pub(super) struct Audit {
    /// user → events, sorted by `at`, ties in the order appended.
    events: HashMap<String, Vec<AuditRecord>>,
    /// Every audit event id ever appended.
    ids: HashSet<String>,
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, record: AuditRecord) -> StoreResult<()> {
        let mut durable = self.durable();
        let audit = &mut durable.audit;
        if !audit.ids.insert(record.id.clone()) {
            return Ok(());
        }
        let events = audit.events.entry(record.user.clone()).or_default();
        // After every event at or before it: ties keep the order appended.
        let position = events.partition_point(|event| event.at <= record.at);
        events.insert(position, record);
        Ok(())
    }

    async fn audit_events(&self, user: &str, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        let durable = self.durable();
        let events = durable
            .audit
            .events
            .get(user)
            .map_or(&[][..], Vec::as_slice);
        Ok(events[events.len().saturating_sub(limit)..].to_vec())
    }
}
