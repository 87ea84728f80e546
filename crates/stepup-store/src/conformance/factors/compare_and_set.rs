//! The compare-and-sets of a stored credential: the monotonic counter and the payload.

use std::sync::Arc;

use super::credentials::{advance, enroll, enroll_one, replace};
use super::{PASSKEY, T0, TOTP, credential, stored};
use crate::conformance::{Ids, check, expect};
use crate::{Credential, CredentialRef, FactorStore};

pub(super) async fn advance_counter<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("advance-counter");
    let app = credential(&user, TOTP, &ids.id("advance-counter", "app"), T0);
    check(
        advance(store, app.key(), 5, None, T0 + 1).await,
        false,
        "advance_counter of an absent credential",
    );
    let pending = enroll(store, &app, None).await;
    check(
        advance(store, app.key(), 5, Some("new"), T0 + 1).await,
        false,
        "advance_counter of a pending credential",
    );
    check(
        stored(store, app.key()).await,
        Some(pending),
        "a refused advance_counter changes nothing (pending)",
    );

    let others = enroll_one(
        store,
        &credential(&ids.user("advance-other"), TOTP, &app.id, T0),
        Some(10),
    )
    .await;
    check(
        expect(store.activate(app.key(), 10, None).await, "activate"),
        true,
        "activate",
    );
    let base = stored(store, app.key()).await;
    for (counter, what) in [(10, "the same counter"), (9, "a lower counter")] {
        check(
            advance(store, app.key(), counter, Some("new"), T0 + 1).await,
            false,
            &format!("advance_counter to {what}"),
        );
        check(
            stored(store, app.key()).await,
            base.clone(),
            &format!("advance_counter to {what} changes nothing"),
        );
    }
    let Some(base) = base else {
        panic!("conformance: credential: an activated credential is absent");
    };

    check(
        advance(store, app.key(), 11, None, T0 + 11).await,
        true,
        "advance_counter to a greater counter",
    );
    check(
        stored(store, app.key()).await,
        Some(Credential {
            counter: 11,
            last_used_at: Some(T0 + 11),
            ..base.clone()
        }),
        "advance_counter without a payload: counter and last use set, payload kept",
    );
    check(
        advance(store, app.key(), 15, Some("payload-2"), T0 + 15).await,
        true,
        "advance_counter skipping ahead, with a payload",
    );
    let advanced = Credential {
        counter: 15,
        payload: "payload-2".to_owned(),
        last_used_at: Some(T0 + 15),
        ..base.clone()
    };
    check(
        stored(store, app.key()).await,
        Some(advanced.clone()),
        "advance_counter with a payload: counter, payload and last use set",
    );
    for (counter, what) in [
        (12, "a counter between the last two"),
        (15, "the new counter"),
    ] {
        check(
            advance(store, app.key(), counter, Some("payload-3"), T0 + 20).await,
            false,
            &format!("advance_counter to {what}"),
        );
    }
    check(
        stored(store, app.key()).await,
        Some(advanced),
        "refused advance_counter calls change nothing (active)",
    );
    check(
        advance(
            store,
            CredentialRef {
                kind: PASSKEY,
                ..app.key()
            },
            99,
            None,
            T0,
        )
        .await,
        false,
        "advance_counter of the same id under another kind",
    );
    check(
        stored(store, others.key()).await,
        Some(others),
        "advance_counter leaves another user's credential of the same kind and id",
    );

    // From 0, 1 is greater.
    let zero = credential(&user, PASSKEY, &ids.id("advance-counter", "zero"), T0);
    enroll(store, &zero, Some(0)).await;
    check(
        advance(store, zero.key(), 0, None, T0).await,
        false,
        "advance_counter to 0 from 0",
    );
    check(
        advance(store, zero.key(), 1, None, T0).await,
        true,
        "advance_counter to 1 from 0",
    );
}

pub(super) async fn replace_payload<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("replace-payload");
    let pending = credential(&user, PASSKEY, &ids.id("replace-payload", "pending"), T0);
    check(
        replace(store, pending.key(), &pending.payload, "new", None).await,
        false,
        "replace_payload of an absent credential",
    );
    check(
        replace(store, pending.key(), &pending.payload, "new", Some(T0)).await,
        false,
        "replace_payload with a use of an absent credential",
    );
    check(
        stored(store, pending.key()).await,
        None,
        "a refused replace_payload creates nothing",
    );
    let pending = enroll(store, &pending, None).await;
    let others = enroll_one(
        store,
        &credential(&ids.user("replace-payload-other"), PASSKEY, &pending.id, T0),
        None,
    )
    .await;
    check(
        replace(store, pending.key(), &pending.payload, "new-p", None).await,
        true,
        "replace_payload of a pending credential with its stored payload",
    );
    check(
        stored(store, pending.key()).await,
        Some(Credential {
            payload: "new-p".to_owned(),
            ..pending.clone()
        }),
        "replace_payload replaces only the payload (pending)",
    );
    for used_at in [None, Some(T0 + 1)] {
        check(
            replace(store, pending.key(), &pending.payload, "newer-p", used_at).await,
            false,
            &format!("replace_payload with a stale payload (use {used_at:?})"),
        );
    }
    check(
        stored(store, pending.key()).await,
        Some(Credential {
            payload: "new-p".to_owned(),
            ..pending.clone()
        }),
        "a refused replace_payload keeps the payload and the last use",
    );
    check(
        replace(store, pending.key(), "new-p", "newer-p", Some(T0 + 2)).await,
        true,
        "replace_payload with a use of a pending credential",
    );
    check(
        stored(store, pending.key()).await,
        Some(Credential {
            payload: "newer-p".to_owned(),
            last_used_at: Some(T0 + 2),
            ..pending.clone()
        }),
        "replace_payload with a use: payload and last use set, still pending",
    );
    check(
        replace(
            store,
            CredentialRef {
                kind: TOTP,
                ..pending.key()
            },
            "newer-p",
            "x",
            Some(T0 + 3),
        )
        .await,
        false,
        "replace_payload of the same id under another kind",
    );
    check(
        stored(store, others.key()).await,
        Some(others),
        "replace_payload leaves another user's credential of the same kind and id",
    );

    let active = enroll(
        store,
        &credential(&user, TOTP, &ids.id("replace-payload", "active"), T0),
        Some(3),
    )
    .await;
    check(
        advance(store, active.key(), 4, None, T0 + 4).await,
        true,
        "advance_counter",
    );
    let Some(used) = stored(store, active.key()).await else {
        panic!("conformance: credential: an active credential is absent");
    };
    check(
        replace(store, active.key(), &active.payload, "new-a", None).await,
        true,
        "replace_payload of an active credential",
    );
    check(
        stored(store, active.key()).await,
        Some(Credential {
            payload: "new-a".to_owned(),
            ..used.clone()
        }),
        "replace_payload without a use replaces only the payload (active: counter and last use \
         kept)",
    );
    check(
        replace(store, active.key(), "new-a", "newer-a", Some(T0 + 9)).await,
        true,
        "replace_payload with a use of an active credential",
    );
    check(
        stored(store, active.key()).await,
        Some(Credential {
            payload: "newer-a".to_owned(),
            last_used_at: Some(T0 + 9),
            ..used.clone()
        }),
        "replace_payload with a use: payload and last use set, counter and status kept",
    );
    // An unchanged payload records the use alone.
    check(
        replace(store, active.key(), "newer-a", "newer-a", Some(T0 + 12)).await,
        true,
        "replace_payload of the stored payload by itself, with a use",
    );
    check(
        stored(store, active.key()).await,
        Some(Credential {
            payload: "newer-a".to_owned(),
            last_used_at: Some(T0 + 12),
            ..used
        }),
        "replace_payload of the stored payload by itself: only the last use set",
    );
}
