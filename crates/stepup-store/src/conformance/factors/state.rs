//! Per-user state beside the credentials: failure streaks, deleting a user (which keeps the
//! generation).

use std::sync::Arc;

use super::generations::{advance, generation_of};
use super::{BACKUP, PASSKEY, SMS_CODE, T0, TOTP, code_set, count, credential, hash_of, lookup};
use crate::conformance::{Ids, check, expect};
use crate::{Enrollment, FactorStore, Generation};

async fn failures<S: FactorStore>(store: &Arc<S>, user: &str, kind: &str) -> u64 {
    expect(store.failures(user, kind).await, "failures")
}

async fn record<S: FactorStore>(store: &Arc<S>, user: &str, kind: &str) -> u64 {
    expect(store.record_failure(user, kind).await, "record_failure")
}

pub(super) async fn failure_streaks<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("failures");
    let other = ids.user("failures-other");
    check(
        failures(store, &user, TOTP).await,
        0,
        "failures of a user without any",
    );
    for streak in 1..=3 {
        check(
            record(store, &user, TOTP).await,
            streak,
            "record_failure returns the new streak",
        );
    }
    check(
        failures(store, &user, TOTP).await,
        3,
        "failures after three",
    );
    check(
        record(store, &user, PASSKEY).await,
        1,
        "record_failure of another kind starts at 1",
    );
    check(
        failures(store, &user, TOTP).await,
        3,
        "another kind's failure leaves the streak",
    );
    check(
        failures(store, &other, TOTP).await,
        0,
        "failures of another user",
    );
    check(
        record(store, &other, TOTP).await,
        1,
        "record_failure of another user starts at 1",
    );

    expect(store.clear_failures(&user, TOTP).await, "clear_failures");
    check(
        failures(store, &user, TOTP).await,
        0,
        "failures after clear_failures",
    );
    check(
        failures(store, &user, PASSKEY).await,
        1,
        "clear_failures leaves another kind's streak",
    );
    check(
        failures(store, &other, TOTP).await,
        1,
        "clear_failures leaves another user's streak",
    );
    check(
        record(store, &user, TOTP).await,
        1,
        "record_failure after clear_failures starts at 1",
    );
    expect(
        store.clear_failures(&ids.user("failures-none"), TOTP).await,
        "clear_failures of a user without a streak",
    );
}

pub(super) async fn delete_user_factors<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("delete-user");
    let other = ids.user("delete-user-other");
    for someone in [&user, &other] {
        let app = credential(someone, TOTP, "app", T0);
        expect(
            store.put_pending(app.clone(), Enrollment::OnePerUser).await,
            "put_pending",
        );
        expect(
            store
                .activate(app.key(), 3, Some(code_set(BACKUP, "d", 4)))
                .await,
            "activate",
        );
        expect(
            store
                .put_pending(
                    credential(someone, PASSKEY, &ids.id("delete-user", someone), T0),
                    Enrollment::Many,
                )
                .await,
            "put_pending",
        );
        expect(
            store
                .replace_codes(someone, code_set(SMS_CODE, "s", 2))
                .await,
            "replace_codes",
        );
        for kind in [TOTP, TOTP, PASSKEY] {
            record(store, someone, kind).await;
        }
        advance(store, someone, T0 + 500).await;
    }

    expect(
        store.delete_user_factors(&user).await,
        "delete_user_factors",
    );
    check(
        expect(store.credentials(&user).await, "credentials"),
        Vec::new(),
        "credentials after delete_user_factors",
    );
    check(
        expect(
            store
                .credential(credential(&user, TOTP, "app", T0).key())
                .await,
            "credential",
        ),
        None,
        "credential after delete_user_factors",
    );
    check(
        count(store, &user, BACKUP).await,
        0,
        "codes after delete_user_factors",
    );
    check(
        count(store, &user, SMS_CODE).await,
        0,
        "codes of another kind after delete_user_factors",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("d", 0)).await,
        None,
        "code_hash after delete_user_factors",
    );
    check(
        failures(store, &user, TOTP).await,
        0,
        "failures after delete_user_factors",
    );
    check(
        failures(store, &user, PASSKEY).await,
        0,
        "failures of another kind after delete_user_factors",
    );
    let kept = Generation {
        value: 1,
        changed_at: Some(T0 + 500),
    };
    check(
        generation_of(store, &user).await,
        kept,
        "delete_user_factors keeps the generation",
    );
    check(
        advance(store, &user, T0 + 600).await,
        Generation {
            value: 2,
            changed_at: Some(T0 + 600),
        },
        "after delete_user_factors the generation moves on from where it was",
    );

    check(
        expect(
            store
                .credential_by_id(PASSKEY, &ids.id("delete-user", &user))
                .await,
            "credential_by_id",
        ),
        None,
        "credential_by_id of a credential removed by delete_user_factors",
    );
    check(
        expect(store.credentials(&other).await, "credentials").len(),
        2,
        "delete_user_factors leaves another user's credentials",
    );
    check(
        expect(
            store
                .credential_by_id(PASSKEY, &ids.id("delete-user", &other))
                .await,
            "credential_by_id",
        )
        .map(|found| found.user),
        Some(other.clone()),
        "credential_by_id of another user's credential after delete_user_factors",
    );
    check(
        count(store, &other, BACKUP).await,
        4,
        "delete_user_factors leaves another user's codes",
    );
    check(
        count(store, &other, SMS_CODE).await,
        2,
        "delete_user_factors leaves another user's codes",
    );
    check(
        failures(store, &other, TOTP).await,
        2,
        "delete_user_factors leaves another user's streak",
    );
    check(
        generation_of(store, &other).await,
        kept,
        "delete_user_factors leaves another user's generation",
    );

    check(
        expect(
            store
                .put_pending(credential(&user, TOTP, "app-2", T0), Enrollment::OnePerUser)
                .await,
            "put_pending",
        ),
        true,
        "put_pending (one per user) after delete_user_factors",
    );
    expect(
        store
            .delete_user_factors(&ids.user("delete-user-none"))
            .await,
        "delete_user_factors of a user without factors",
    );
}
