//! Credentials once stored: listing, the counter and payload compare-and-sets, labels, deletion.

use std::sync::Arc;

use super::{BACKUP, PASSKEY, PHONE, T0, TOTP, code_set, count, credential, listed, pairs, stored};
use crate::conformance::{Ids, check, expect};
use crate::{Credential, CredentialRef, Enrollment, FactorStore};

/// Puts `credential` pending (any number per kind) and, with `counter`, activates it; returns it
/// as stored.
async fn enroll<S: FactorStore>(
    store: &Arc<S>,
    credential: &Credential,
    counter: Option<u64>,
) -> Credential {
    check(
        expect(
            store
                .put_pending(credential.clone(), Enrollment::Many)
                .await,
            "put_pending",
        ),
        true,
        "put_pending (many) of a new credential",
    );
    if let Some(counter) = counter {
        check(
            expect(
                store.activate(credential.key(), counter, None).await,
                "activate",
            ),
            true,
            "activate of a pending credential",
        );
    }
    match stored(store, credential.key()).await {
        Some(stored) => stored,
        None => panic!("conformance: credential: a credential just stored is absent"),
    }
}

async fn advance<S: FactorStore>(
    store: &Arc<S>,
    key: CredentialRef<'_>,
    counter: u64,
    payload: Option<&str>,
    used_at: u64,
) -> bool {
    expect(
        store.advance_counter(key, counter, payload, used_at).await,
        "advance_counter",
    )
}

async fn replace<S: FactorStore>(
    store: &Arc<S>,
    key: CredentialRef<'_>,
    old: &str,
    new: &str,
) -> bool {
    expect(
        store.replace_payload(key, old, new).await,
        "replace_payload",
    )
}

async fn delete<S: FactorStore>(store: &Arc<S>, credential: &Credential) -> bool {
    expect(
        store.delete_credential(credential.key()).await,
        "delete_credential",
    )
}

pub(super) async fn listing<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("listing");
    let other = ids.user("listing-other");
    check(
        expect(store.credentials(&user).await, "credentials"),
        Vec::new(),
        "credentials of a user without any",
    );

    // Stored in an order matching neither the listing nor its reverse, with ties on created_at.
    let webauthn_b = enroll(store, &credential(&user, PASSKEY, "b", T0 + 200), None).await;
    let totp_z = enroll(store, &credential(&user, TOTP, "z", T0 + 100), None).await;
    enroll(store, &credential(&other, TOTP, "y", T0 + 50), Some(1)).await;
    let webauthn_a = enroll(store, &credential(&user, PASSKEY, "a", T0 + 200), Some(4)).await;
    let sms_c = enroll(store, &credential(&user, PHONE, "c", T0 + 200), None).await;
    enroll(store, &credential(&other, PASSKEY, "a", T0 + 200), None).await;
    let totp_a = enroll(store, &credential(&user, TOTP, "a", T0 + 300), Some(8)).await;

    check(
        expect(store.credentials(&user).await, "credentials"),
        vec![totp_z, sms_c, webauthn_a, webauthn_b, totp_a],
        "credentials: the user's only, pending and active, oldest first, ties by kind then id",
    );
    check(
        listed(store, &other).await,
        pairs(&[(TOTP, "y"), (PASSKEY, "a")]),
        "credentials of another user",
    );
    for (user, kind, id, what) in [
        (user.as_str(), TOTP, "unknown", "an unknown id"),
        (user.as_str(), TOTP, "b", "an id stored under another kind"),
        (other.as_str(), TOTP, "z", "an id stored for another user"),
    ] {
        check(
            stored(store, CredentialRef { user, kind, id }).await,
            None,
            &format!("credential of {what}"),
        );
    }
}

pub(super) async fn of_kind<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let kind = ids.kind("of-kind");
    let other_kind = ids.kind("of-kind-other");
    let first = ids.user("of-kind-1");
    let second = ids.user("of-kind-2");
    let first_a = enroll(store, &credential(&first, &kind, "a", T0 + 2), None).await;
    let first_b = enroll(store, &credential(&first, &kind, "b", T0 + 1), Some(6)).await;
    enroll(store, &credential(&first, &other_kind, "c", T0), None).await;
    let second_a = enroll(store, &credential(&second, &kind, "a", T0), Some(2)).await;

    let mut listed = expect(
        store.credentials_of_kind(&kind).await,
        "credentials_of_kind",
    );
    listed.sort_by(|a, b| (&a.user, &a.id).cmp(&(&b.user, &b.id)));
    check(
        listed,
        vec![first_a, first_b, second_a],
        "credentials_of_kind: every user's credentials of the kind, pending and active (sorted here)",
    );
    check(
        expect(
            store.credentials_of_kind(&ids.kind("of-kind-none")).await,
            "credentials_of_kind",
        ),
        Vec::new(),
        "credentials_of_kind of a kind nobody has",
    );
}

pub(super) async fn advance_counter<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("advance-counter");
    let app = credential(&user, TOTP, "app", T0);
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

    let others = enroll(
        store,
        &credential(&ids.user("advance-other"), TOTP, "app", T0),
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
    let zero = credential(&user, PASSKEY, "zero", T0);
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
    let pending = credential(&user, PASSKEY, "pending", T0);
    check(
        replace(store, pending.key(), &pending.payload, "new").await,
        false,
        "replace_payload of an absent credential",
    );
    let pending = enroll(store, &pending, None).await;
    let others = enroll(
        store,
        &credential(&ids.user("replace-payload-other"), PASSKEY, "pending", T0),
        None,
    )
    .await;
    check(
        replace(store, pending.key(), &pending.payload, "new-p").await,
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
    check(
        replace(store, pending.key(), &pending.payload, "newer-p").await,
        false,
        "replace_payload with a stale payload",
    );
    check(
        stored(store, pending.key())
            .await
            .map(|stored| stored.payload),
        Some("new-p".to_owned()),
        "a refused replace_payload keeps the payload",
    );
    check(
        replace(
            store,
            CredentialRef {
                kind: TOTP,
                ..pending.key()
            },
            "new-p",
            "x",
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

    let active = enroll(store, &credential(&user, TOTP, "active", T0), Some(3)).await;
    check(
        advance(store, active.key(), 4, None, T0 + 4).await,
        true,
        "advance_counter",
    );
    let Some(used) = stored(store, active.key()).await else {
        panic!("conformance: credential: an active credential is absent");
    };
    check(
        replace(store, active.key(), &active.payload, "new-a").await,
        true,
        "replace_payload of an active credential",
    );
    check(
        stored(store, active.key()).await,
        Some(Credential {
            payload: "new-a".to_owned(),
            ..used
        }),
        "replace_payload replaces only the payload (active: counter and last use kept)",
    );
}

pub(super) async fn labels<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("labels");
    let phone = credential(&user, PASSKEY, "phone", T0);
    check(
        expect(
            store.set_label(phone.key(), Some("Phone")).await,
            "set_label",
        ),
        false,
        "set_label of an absent credential",
    );
    check(
        stored(store, phone.key()).await,
        None,
        "a refused set_label creates nothing",
    );
    let phone = enroll(store, &phone, None).await;
    let others = enroll(
        store,
        &credential(&ids.user("labels-other"), PASSKEY, "phone", T0),
        None,
    )
    .await;
    for label in [Some("Phone"), None, Some("Work phone")] {
        check(
            expect(store.set_label(phone.key(), label).await, "set_label"),
            true,
            "set_label of a pending credential",
        );
        check(
            stored(store, phone.key()).await,
            Some(Credential {
                label: label.map(str::to_owned),
                ..phone.clone()
            }),
            &format!("the credential after set_label({label:?}): only the label changed"),
        );
    }
    let active = enroll(store, &credential(&user, TOTP, "app", T0), Some(2)).await;
    check(
        expect(store.set_label(active.key(), None).await, "set_label"),
        true,
        "set_label of an active credential",
    );
    check(
        stored(store, active.key()).await,
        Some(Credential {
            label: None,
            ..active
        }),
        "set_label(None) clears an active credential's label",
    );
    check(
        stored(store, others.key()).await,
        Some(others),
        "set_label leaves another user's credential of the same kind and id",
    );
}

pub(super) async fn deletion<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("delete-credential");
    let app = enroll(store, &credential(&user, TOTP, "app", T0), Some(1)).await;
    let pending = enroll(store, &credential(&user, PASSKEY, "pending", T0 + 1), None).await;
    let active = enroll(
        store,
        &credential(&user, PASSKEY, "active", T0 + 2),
        Some(1),
    )
    .await;
    let same_id = enroll(store, &credential(&user, PHONE, "app", T0 + 3), None).await;
    let others = enroll(
        store,
        &credential(&ids.user("delete-credential-other"), TOTP, "app", T0),
        Some(1),
    )
    .await;
    expect(
        store.replace_codes(&user, code_set(BACKUP, "d", 3)).await,
        "replace_codes",
    );

    check(
        delete(store, &credential(&user, TOTP, "absent", T0)).await,
        false,
        "delete_credential of an absent credential",
    );
    check(
        delete(store, &pending).await,
        true,
        "delete_credential of a pending credential",
    );
    check(
        stored(store, pending.key()).await,
        None,
        "a deleted credential is absent",
    );
    check(
        delete(store, &pending).await,
        false,
        "delete_credential of a deleted credential",
    );
    check(
        delete(store, &app).await,
        true,
        "delete_credential of an active credential",
    );
    check(
        listed(store, &user).await,
        pairs(&[(PASSKEY, "active"), (PHONE, "app")]),
        "delete_credential removes only that credential",
    );
    check(
        stored(store, active.key()).await,
        Some(active),
        "the user's other credential after deletions",
    );
    check(
        stored(store, same_id.key()).await,
        Some(same_id),
        "delete_credential leaves the user's credential of the same id under another kind",
    );
    check(
        count(store, &user, BACKUP).await,
        3,
        "delete_credential leaves the user's codes",
    );
    check(
        stored(store, others.key()).await,
        Some(others),
        "delete_credential leaves another user's credential of the same kind and id",
    );
    check(
        expect(
            store
                .put_pending(
                    credential(&user, TOTP, "app-2", T0 + 3),
                    Enrollment::OnePerUser,
                )
                .await,
            "put_pending",
        ),
        true,
        "put_pending (one per user) once the active credential of the kind is deleted",
    );
}
