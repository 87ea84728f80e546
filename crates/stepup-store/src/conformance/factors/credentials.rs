//! Credentials once stored: listing, lookup by id, labels, deletion (the compare-and-sets of
//! the counter and the payload are in `compare_and_set`).
//!
//! Credentials are put with [`Enrollment::Many`], whose ids are unique across users, so their ids
//! are fresh for each run ([`Ids::id`]); a credential of another user with the same kind and id is
//! put with [`Enrollment::OnePerUser`], which does not look at other users.

use std::sync::Arc;

use super::{BACKUP, PASSKEY, PHONE, T0, TOTP, code_set, count, credential, listed, pairs, stored};
use crate::conformance::{Ids, check, expect};
use crate::{Credential, CredentialRef, Enrollment, FactorStore};

/// Puts `credential` pending (any number per kind, its id held by no user yet) and, with
/// `counter`, activates it; returns it as stored.
pub(super) async fn enroll<S: FactorStore>(
    store: &Arc<S>,
    credential: &Credential,
    counter: Option<u64>,
) -> Credential {
    enroll_under(store, credential, counter, Enrollment::Many).await
}

/// [`enroll`] of the only credential of its kind of a user, under [`Enrollment::OnePerUser`]: its
/// id may be one another user holds.
pub(super) async fn enroll_one<S: FactorStore>(
    store: &Arc<S>,
    credential: &Credential,
    counter: Option<u64>,
) -> Credential {
    enroll_under(store, credential, counter, Enrollment::OnePerUser).await
}

pub(super) async fn enroll_under<S: FactorStore>(
    store: &Arc<S>,
    credential: &Credential,
    counter: Option<u64>,
    rule: Enrollment,
) -> Credential {
    check(
        expect(
            store.put_pending(credential.clone(), rule).await,
            "put_pending",
        ),
        true,
        &format!("put_pending ({rule:?}) of a new credential"),
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

pub(super) async fn advance<S: FactorStore>(
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

pub(super) async fn replace<S: FactorStore>(
    store: &Arc<S>,
    key: CredentialRef<'_>,
    old: &str,
    new: &str,
    used_at: Option<u64>,
) -> bool {
    expect(
        store.replace_payload(key, old, new, used_at).await,
        "replace_payload",
    )
}

pub(super) async fn by_id<S: FactorStore>(
    store: &Arc<S>,
    kind: &str,
    id: &str,
) -> Option<Credential> {
    expect(store.credential_by_id(kind, id).await, "credential_by_id")
}

pub(super) async fn delete<S: FactorStore>(store: &Arc<S>, credential: &Credential) -> bool {
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

    // Fresh ids, ordered as their names are.
    let [a, b, c, y, z] = ["a", "b", "c", "y", "z"].map(|name| ids.id("listing", name));
    // Stored in an order matching neither the listing nor its reverse, with ties on created_at.
    let webauthn_b = enroll(store, &credential(&user, PASSKEY, &b, T0 + 200), None).await;
    let totp_z = enroll(store, &credential(&user, TOTP, &z, T0 + 100), None).await;
    enroll(store, &credential(&other, TOTP, &y, T0 + 50), Some(1)).await;
    let webauthn_a = enroll(store, &credential(&user, PASSKEY, &a, T0 + 200), Some(4)).await;
    let sms_c = enroll(store, &credential(&user, PHONE, &c, T0 + 200), None).await;
    enroll_one(store, &credential(&other, PASSKEY, &a, T0 + 200), None).await;
    let totp_a = enroll(store, &credential(&user, TOTP, &a, T0 + 300), Some(8)).await;

    check(
        expect(store.credentials(&user).await, "credentials"),
        vec![totp_z, sms_c, webauthn_a, webauthn_b, totp_a],
        "credentials: the user's only, pending and active, oldest first, ties by kind then id",
    );
    check(
        listed(store, &other).await,
        pairs(&[(TOTP, y.as_str()), (PASSKEY, &a)]),
        "credentials of another user",
    );
    let unknown = ids.id("listing", "unknown");
    for (user, kind, id, what) in [
        (user.as_str(), TOTP, unknown.as_str(), "an unknown id"),
        (user.as_str(), TOTP, &b, "an id stored under another kind"),
        (other.as_str(), TOTP, &z, "an id stored for another user"),
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
    // The first user's id: only one per user may share it.
    let second_a = enroll_one(store, &credential(&second, &kind, "a", T0), Some(2)).await;

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

/// `credential_by_id`: any user's credential of the kind with the id, the oldest of a shared id.
pub(super) async fn lookup_by_id<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("by-id");
    let id = ids.id("by-id", "key");
    check(
        by_id(store, PASSKEY, &id).await,
        None,
        "credential_by_id of an id nobody holds",
    );
    let pending = enroll(store, &credential(&user, PASSKEY, &id, T0), None).await;
    check(
        by_id(store, PASSKEY, &id).await,
        Some(pending),
        "credential_by_id of a pending credential: its owner's, as stored",
    );
    check(
        expect(
            store
                .activate(
                    CredentialRef {
                        user: &user,
                        kind: PASSKEY,
                        id: &id,
                    },
                    3,
                    None,
                )
                .await,
            "activate",
        ),
        true,
        "activate",
    );
    let active = stored(
        store,
        CredentialRef {
            user: &user,
            kind: PASSKEY,
            id: &id,
        },
    )
    .await;
    check(
        by_id(store, PASSKEY, &id).await,
        active.clone(),
        "credential_by_id of an active credential: its owner's, as stored",
    );
    check(
        by_id(store, PHONE, &id).await,
        None,
        "credential_by_id of the id under another kind",
    );
    check(
        by_id(store, PASSKEY, &ids.id("by-id", "unknown")).await,
        None,
        "credential_by_id of another id",
    );
    let phone = enroll(store, &credential(&user, PHONE, &id, T0 + 1), None).await;
    check(
        by_id(store, PHONE, &id).await,
        Some(phone),
        "credential_by_id of the same id under the other kind, once stored",
    );
    check(
        by_id(store, PASSKEY, &id).await,
        active,
        "credential_by_id keeps the kinds apart",
    );
    check(
        expect(
            store
                .delete_credential(CredentialRef {
                    user: &user,
                    kind: PASSKEY,
                    id: &id,
                })
                .await,
            "delete_credential",
        ),
        true,
        "delete_credential",
    );
    check(
        by_id(store, PASSKEY, &id).await,
        None,
        "credential_by_id of a deleted credential",
    );

    // An id every user of a one-per-user kind may hold: the oldest, ties by user id (byte order),
    // whatever the order they were stored in.
    let kind = ids.kind("by-id-shared");
    let [first, second, third] =
        ["by-id-shared-1", "by-id-shared-2", "by-id-shared-3"].map(|name| ids.user(name));
    let third_app = enroll_one(store, &credential(&third, &kind, "app", T0 + 1), Some(1)).await;
    let second_app = enroll_one(store, &credential(&second, &kind, "app", T0), None).await;
    let first_app = enroll_one(store, &credential(&first, &kind, "app", T0 + 1), None).await;
    check(
        by_id(store, &kind, "app").await,
        Some(second_app.clone()),
        "credential_by_id of an id several users hold: the oldest",
    );
    expect(
        store.delete_user_factors(&second).await,
        "delete_user_factors",
    );
    check(
        by_id(store, &kind, "app").await,
        Some(first_app),
        "credential_by_id of an id several users hold since the same second: the least user id",
    );
    // One per user: a new pending credential replaces the earlier one, and its id with it.
    enroll_one(store, &credential(&first, &kind, "app-2", T0 + 2), None).await;
    check(
        by_id(store, &kind, "app").await,
        Some(third_app),
        "credential_by_id once a holder's credential is replaced",
    );
    check(
        by_id(store, &kind, "app-2").await.map(|found| found.user),
        Some(first.clone()),
        "credential_by_id of the replacing credential",
    );
}

pub(super) async fn labels<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("labels");
    let phone = credential(&user, PASSKEY, &ids.id("labels", "phone"), T0);
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
    let others = enroll_one(
        store,
        &credential(&ids.user("labels-other"), PASSKEY, &phone.id, T0),
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
    let active = enroll(
        store,
        &credential(&user, TOTP, &ids.id("labels", "app"), T0),
        Some(2),
    )
    .await;
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
    let [app_id, pending_id, active_id] =
        ["app", "pending", "active"].map(|name| ids.id("delete-credential", name));
    let app = enroll(store, &credential(&user, TOTP, &app_id, T0), Some(1)).await;
    let pending = enroll(
        store,
        &credential(&user, PASSKEY, &pending_id, T0 + 1),
        None,
    )
    .await;
    let active = enroll(
        store,
        &credential(&user, PASSKEY, &active_id, T0 + 2),
        Some(1),
    )
    .await;
    let same_id = enroll(store, &credential(&user, PHONE, &app_id, T0 + 3), None).await;
    let others = enroll_one(
        store,
        &credential(&ids.user("delete-credential-other"), TOTP, &app_id, T0),
        Some(1),
    )
    .await;
    expect(
        store.replace_codes(&user, code_set(BACKUP, "d", 3)).await,
        "replace_codes",
    );

    check(
        delete(
            store,
            &credential(&user, TOTP, &ids.id("delete-credential", "absent"), T0),
        )
        .await,
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
        pairs(&[(PASSKEY, active_id.as_str()), (PHONE, &app_id)]),
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

/// The generation a credential was made in is stored as given and kept by every change.
pub(super) async fn generation_round_trip<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("credential-generation");
    let kind = ids.kind("credential-generation");
    let id = ids.id("credential-generation", "key");
    // Beyond 32 bits, within every backend's integers.
    let generation = (1 << 40) + 3;
    let given = Credential {
        generation,
        ..credential(&user, &kind, &id, T0)
    };
    let pending = enroll(store, &given, None).await;
    check(
        pending.clone(),
        given.clone(),
        "credential: the generation stored as given",
    );
    check(
        expect(store.credentials(&user).await, "credentials"),
        vec![given.clone()],
        "credentials: the generation stored as given",
    );
    check(
        expect(
            store.credentials_of_kind(&kind).await,
            "credentials_of_kind",
        ),
        vec![given.clone()],
        "credentials_of_kind: the generation stored as given",
    );
    check(
        by_id(store, &kind, &id).await,
        Some(given.clone()),
        "credential_by_id: the generation stored as given",
    );

    check(
        expect(store.activate(given.key(), 1, None).await, "activate"),
        true,
        "activate",
    );
    check(
        advance(store, given.key(), 2, Some("advanced"), T0 + 2).await,
        true,
        "advance_counter",
    );
    check(
        replace(store, given.key(), "advanced", "replaced", Some(T0 + 3)).await,
        true,
        "replace_payload",
    );
    check(
        expect(store.set_label(given.key(), None).await, "set_label"),
        true,
        "set_label",
    );
    check(
        stored(store, given.key())
            .await
            .map(|stored| stored.generation),
        Some(generation),
        "the generation after activate, advance_counter, replace_payload and set_label",
    );

    // One per user: 0, the generation of a user never reset, is stored too, beside another
    // user's of another generation.
    let zero = Credential {
        generation: 0,
        ..credential(&user, TOTP, "app", T0)
    };
    let other = Credential {
        generation: 9,
        ..credential(&ids.user("credential-generation-other"), TOTP, "app", T0)
    };
    for credential in [&zero, &other] {
        check(
            enroll_one(store, credential, Some(4)).await.generation,
            credential.generation,
            "put_pending (one per user) stores the generation as given",
        );
    }
}
