//! The audit trail: every factor change, MFA success and failure, backup-code use, lockout,
//! remembered or revoked device and issued token is one [`Audit::record`] call, which writes a
//! structured `tracing` event (target `stepup::audit`) and, when an [`AuditStore`] is configured,
//! a stored record the user can read back. Details never hold a secret, code or token: callers
//! pass only counts, ids and method names.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use stepup_core::clock::SharedClock;
use stepup_store::{AuditRecord, AuditStore};

/// Event kinds that change a user's factors: the [`Notifier`] hears about these.
pub const FACTOR_CHANGES: &[&str] = &[
    "totp_enrolled",
    "totp_removed",
    "backup_codes_regenerated",
    "device_remembered",
    "device_revoked",
    "devices_revoked",
    "factors_reset",
];

/// Told about factor changes, e.g. to email the user ("an authenticator was added").
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// `change` is one of [`FACTOR_CHANGES`]; `detail` holds no secret.
    async fn factor_changed(&self, user: &str, change: &str, detail: &Value);
}

/// Records audit events. Cheap to clone.
#[derive(Clone, Default)]
pub struct Audit {
    store: Option<Arc<dyn AuditStore>>,
    notifier: Option<Arc<dyn Notifier>>,
    clock: Option<SharedClock>,
}

impl Audit {
    /// Keeps events in `store` too (not only in the log).
    pub fn with_store(mut self, store: Arc<dyn AuditStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Calls `notifier` on factor changes.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    pub(crate) fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Records `kind` about `user`. A store failure is logged, not returned: the operation being
    /// audited has already happened (or been refused) and must not change its answer.
    pub async fn record(&self, user: &str, kind: &'static str, detail: Value) {
        tracing::info!(target: "stepup::audit", event = kind, user, detail = %detail);
        if let Some(store) = &self.store {
            let record = AuditRecord {
                id: crate::tokens::random_id(),
                user: user.to_owned(),
                kind: kind.to_owned(),
                at: self.clock.as_ref().map_or(0, |clock| clock.unix_seconds()),
                detail: detail.to_string(),
            };
            if let Err(error) = store.append_audit(record).await {
                tracing::error!(target: "stepup::audit", %error, event = kind, "audit event not stored");
            }
        }
        if FACTOR_CHANGES.contains(&kind)
            && let Some(notifier) = &self.notifier
        {
            notifier.factor_changed(user, kind, &detail).await;
        }
    }

    /// The user's most recent events, oldest first.
    pub async fn events(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, stepup_store::StoreError> {
        match &self.store {
            Some(store) => store.audit_events(user, limit).await,
            None => Ok(Vec::new()),
        }
    }
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("stored", &self.store.is_some())
            .field("notifier", &self.notifier.is_some())
            .finish()
    }
}
