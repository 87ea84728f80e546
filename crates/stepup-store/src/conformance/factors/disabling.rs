//! Disabled credentials: only an active one is disabled; a disabled one never advances nor
//! activates again, yet is listed and found as stored, until it is deleted.

use std::sync::Arc;

use super::credentials::{advance, by_id, delete, enroll, enroll_one, replace};
use super::{PASSKEY, PHONE, T0, TOTP, credential, listed, pairs, stored};
use crate::conformance::{Ids, check, expect};
use crate::{Credential, CredentialRef, CredentialStatus, Enrollment, FactorStore};

async fn disable<S: FactorStore>(store: &Arc<S>, key: CredentialRef<'_>) -> bool {
    expect(store.disable_credential(key).await, "disable_credential")
}

pub(super) async fn disabling<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("disable");
    let key_id = ids.id("disable", "key");
    let key = credential(&user, PASSKEY, &key_id, T0);

    check(
        disable(store, key.key()).await,
        false,
        "disable_credential of an absent credential",
    );
    check(
        stored(store, key.key()).await,
        None,
        "a refused disable_credential creates nothing",
    );
    let pending = enroll(store, &key, None).await;
    check(
        disable(store, key.key()).await,
        false,
        "disable_credential of a pending credential",
    );
    check(
        stored(store, key.key()).await,
        Some(pending),
        "a refused disable_credential leaves a pending credential pending",
    );

    check(
        expect(store.activate(key.key(), 7, None).await, "activate"),
        true,
        "activate",
    );
    check(
        advance(store, key.key(), 8, Some("payload-8"), T0 + 8).await,
        true,
        "advance_counter",
    );
    let Some(active) = stored(store, key.key()).await else {
        panic!("conformance: credential: an active credential is absent");
    };
    let others = enroll_one(
        store,
        // Younger, so the lookup by id names the user's.
        &credential(&ids.user("disable-other"), PASSKEY, &key_id, T0 + 1),
        Some(1),
    )
    .await;
    check(
        disable(
            store,
            CredentialRef {
                kind: PHONE,
                ..key.key()
            },
        )
        .await,
        false,
        "disable_credential of the same id under another kind",
    );
    check(
        disable(store, key.key()).await,
        true,
        "disable_credential of an active credential",
    );
    let disabled = Credential {
        status: CredentialStatus::Disabled,
        ..active.clone()
    };
    check(
        stored(store, key.key()).await,
        Some(disabled.clone()),
        "the credential after disable_credential: disabled, everything else as stored",
    );
    check(
        stored(store, others.key()).await,
        Some(others),
        "disable_credential leaves another user's credential of the same kind and id",
    );
    check(
        disable(store, key.key()).await,
        false,
        "disable_credential of a disabled credential",
    );

    // Never accepted again.
    check(
        advance(store, key.key(), 100, Some("payload-100"), T0 + 100).await,
        false,
        "advance_counter of a disabled credential",
    );
    check(
        expect(store.activate(key.key(), 200, None).await, "activate"),
        false,
        "activate of a disabled credential",
    );
    check(
        stored(store, key.key()).await,
        Some(disabled.clone()),
        "a disabled credential after refused advance_counter and activate",
    );

    // Listed and found as stored, so its owner sees it.
    check(
        expect(store.credentials(&user).await, "credentials"),
        vec![disabled.clone()],
        "credentials lists a disabled credential with its status",
    );
    check(
        expect(
            store.credentials_of_kind(PASSKEY).await,
            "credentials_of_kind",
        )
        .into_iter()
        .find(|found| found.user == user && found.id == key_id),
        Some(disabled.clone()),
        "credentials_of_kind lists a disabled credential with its status",
    );
    check(
        by_id(store, PASSKEY, &key_id).await,
        Some(disabled.clone()),
        "credential_by_id finds a disabled credential, with its status",
    );
    check(
        expect(
            store
                .put_pending(
                    credential(&ids.user("disable-taker"), PASSKEY, &key_id, T0 + 1),
                    Enrollment::Many,
                )
                .await,
            "put_pending",
        ),
        false,
        "put_pending (many) of the id of a disabled credential",
    );

    // Its label and payload still change (a rename, a re-sealing under a new key); it stays
    // disabled.
    check(
        expect(
            store.set_label(key.key(), Some("suspect")).await,
            "set_label",
        ),
        true,
        "set_label of a disabled credential",
    );
    check(
        replace(store, key.key(), "payload-8", "resealed", None).await,
        true,
        "replace_payload of a disabled credential",
    );
    check(
        stored(store, key.key()).await,
        Some(Credential {
            label: Some("suspect".to_owned()),
            payload: "resealed".to_owned(),
            ..disabled.clone()
        }),
        "a disabled credential after set_label and replace_payload: still disabled",
    );

    // Removed, it is gone.
    check(
        delete(store, &disabled).await,
        true,
        "delete_credential of a disabled credential",
    );
    check(
        stored(store, key.key()).await,
        None,
        "a deleted disabled credential is absent",
    );
    check(
        listed(store, &user).await,
        Vec::new(),
        "credentials after deleting the disabled credential",
    );

    // One per user: a disabled credential of the kind does not hold the place; it is replaced.
    let app = enroll_one(store, &credential(&user, TOTP, "app", T0), Some(3)).await;
    check(
        disable(store, app.key()).await,
        true,
        "disable_credential of an active one-per-user credential",
    );
    let app2 = credential(&user, TOTP, "app-2", T0 + 1);
    check(
        expect(
            store
                .put_pending(app2.clone(), Enrollment::OnePerUser)
                .await,
            "put_pending",
        ),
        true,
        "put_pending (one per user) while the kind's credential is disabled",
    );
    check(
        stored(store, app.key()).await,
        None,
        "the disabled credential of the kind is replaced",
    );
    check(
        listed(store, &user).await,
        pairs(&[(TOTP, "app-2")]),
        "the credentials after replacing a disabled one",
    );
}
