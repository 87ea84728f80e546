//! The conformance suite of [`AuditStore`]: order, limits, user isolation, idempotent appends,
//! and 100 concurrent appends of which none may be lost.

use std::sync::Arc;

use stepup_core::clock::{Clock, ManualClock};

use super::{Ids, RACERS, check, expect, race};
use crate::{AuditRecord, AuditStore};

/// Runs every check of [`AuditStore`] on `store`, panicking with a description of the first
/// failure.
///
/// `clock` is the clock the store was built with; this suite only reads it. The store may hold
/// other data, and the suite may run more than once on it. Run it on a multi-threaded tokio
/// runtime so the race is real.
pub async fn run<S: AuditStore>(store: Arc<S>, clock: ManualClock) {
    let ids = Ids::new();
    audit_order(&store, &ids).await;
    concurrent_append_audit(&store, &ids, &clock).await;
}

/// The names of events made by [`event`], in order.
fn names(events: &[AuditRecord]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.kind.trim_start_matches("kind-"))
        .collect()
}

fn event(ids: &Ids, name: &str, user: &str, at: u64) -> AuditRecord {
    AuditRecord {
        id: ids.id("audit", name),
        user: user.to_owned(),
        kind: format!("kind-{name}"),
        at,
        detail: format!("{{\"name\":\"{name}\"}}"),
    }
}

async fn audit_order<S: AuditStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("audit-order");
    let other = ids.user("audit-order-other");
    check(
        expect(store.audit_events(&user, 10).await, "audit_events"),
        Vec::new(),
        "audit_events of a user without any",
    );
    // Appended out of time order, with a tie at 200, interleaved with another user's events.
    let appended = [
        event(ids, "e0", &user, 100),
        event(ids, "e1", &user, 300),
        event(ids, "x0", &other, 250),
        event(ids, "e2", &user, 200),
        event(ids, "e3", &user, 200),
        event(ids, "x1", &other, 50),
        event(ids, "e4", &user, 400),
    ];
    for record in &appended {
        expect(store.append_audit(record.clone()).await, "append_audit");
    }

    let all = expect(store.audit_events(&user, 10).await, "audit_events");
    check(
        all.first().cloned(),
        Some(appended[0].clone()),
        "an audit event as appended",
    );
    check(
        names(&all),
        vec!["e0", "e2", "e3", "e1", "e4"],
        "audit_events: oldest first, ties in the order appended",
    );
    check(
        names(&expect(store.audit_events(&user, 3).await, "audit_events")),
        vec!["e3", "e1", "e4"],
        "audit_events with a limit keeps the most recent ones",
    );
    check(
        names(&expect(store.audit_events(&user, 4).await, "audit_events")),
        vec!["e2", "e3", "e1", "e4"],
        "audit_events with a limit keeps the most recent ones (splitting no tie)",
    );
    check(
        expect(store.audit_events(&user, 0).await, "audit_events"),
        Vec::new(),
        "audit_events with limit 0",
    );
    check(
        names(&expect(
            store.audit_events(&other, usize::MAX).await,
            "audit_events",
        )),
        vec!["x1", "x0"],
        "audit_events of another user (users isolated)",
    );

    // A retried append is stored once.
    expect(
        store.append_audit(appended[0].clone()).await,
        "append_audit of a stored id",
    );
    check(
        names(&expect(store.audit_events(&user, 10).await, "audit_events")),
        vec!["e0", "e2", "e3", "e1", "e4"],
        "audit_events after appending an id again",
    );
}

async fn concurrent_append_audit<S: AuditStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let user = ids.user("concurrent-audit");
    let now = clock.unix_seconds();
    race(store, |store, index| {
        let record = event(ids, &format!("race-{index}"), &user, now);
        async move { expect(store.append_audit(record).await, "append_audit") }
    })
    .await;
    let stored = expect(store.audit_events(&user, 1000).await, "audit_events");
    check(
        stored.len(),
        RACERS,
        "concurrent append_audit: events stored",
    );
    let mut unique: Vec<&str> = stored.iter().map(|event| event.id.as_str()).collect();
    unique.sort_unstable();
    unique.dedup();
    check(
        unique.len(),
        RACERS,
        "concurrent append_audit: distinct events stored",
    );
}
