//! 100 tasks, released together, on each atomic call of [`FactorStore`].

use std::sync::Arc;

use super::{BACKUP, PASSKEY, T0, TOTP, code_set, count, credential, hash_of, lookup, stored};
use crate::conformance::{Ids, RACERS, check, expect, race, winner, winners};
use crate::{CodeHash, CodeSet, Credential, CredentialStatus, Enrollment, FactorStore};

/// `index` as a counter or timestamp offset.
fn offset(index: usize) -> u64 {
    u64::try_from(index).unwrap_or(u64::MAX)
}

/// Puts `credential` pending and activates it at `counter`.
async fn enroll_active<S: FactorStore>(store: &Arc<S>, credential: &Credential, counter: u64) {
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
    check(
        expect(
            store.activate(credential.key(), counter, None).await,
            "activate",
        ),
        true,
        "activate of a pending credential",
    );
}

pub(super) async fn concurrent_put_pending<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    // Many: the same id, each with its own payload.
    let user = ids.user("concurrent-put-many");
    let key = credential(&user, PASSKEY, &ids.id("concurrent-put-many", "key"), T0);
    let results = race(store, |store, index| {
        let credential = Credential {
            payload: format!("payload-{index}"),
            ..key.clone()
        };
        async move {
            expect(
                store.put_pending(credential, Enrollment::Many).await,
                "put_pending",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent put_pending (many) of one id: number of winners",
    );
    check(
        stored(store, key.key()).await.map(|stored| stored.payload),
        Some(format!("payload-{}", winner(&results))),
        "the credential after concurrent put_pending (many) is the winner's",
    );

    // One per user: each its own id; each replaces the pending one, so one is left.
    let user = ids.user("concurrent-put-one");
    let results = race(store, |store, index| {
        let credential = credential(&user, TOTP, &format!("app-{index}"), T0);
        async move {
            expect(
                store.put_pending(credential, Enrollment::OnePerUser).await,
                "put_pending",
            )
        }
    })
    .await;
    check(
        winners(&results),
        RACERS,
        "concurrent put_pending (one per user) without an active credential: all succeed",
    );
    let left = expect(store.credentials(&user).await, "credentials");
    check(
        left.iter()
            .map(|credential| (credential.kind.as_str(), credential.status))
            .collect::<Vec<_>>(),
        vec![(TOTP, CredentialStatus::Pending)],
        "after concurrent put_pending (one per user), one pending credential of the kind is left",
    );
}

/// 100 users put the same (kind, id) with `Many`: one holds it, the others store nothing.
pub(super) async fn concurrent_put_pending_across_users<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let id = ids.id("concurrent-put-across", "key");
    let user = |index: usize| ids.user(&format!("concurrent-put-across-{index}"));
    let results = race(store, |store, index| {
        let credential = Credential {
            payload: format!("payload-{index}"),
            ..credential(&user(index), PASSKEY, &id, T0 + offset(index))
        };
        async move {
            expect(
                store.put_pending(credential, Enrollment::Many).await,
                "put_pending",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent put_pending (many) of one id by different users: number of winners",
    );
    let winner = winner(&results);
    check(
        expect(
            store.credential_by_id(PASSKEY, &id).await,
            "credential_by_id",
        )
        .map(|stored| (stored.user, stored.payload)),
        Some((user(winner), format!("payload-{winner}"))),
        "the credential of the id after concurrent put_pending (many) by different users is the \
         winner's",
    );
    for index in (0..RACERS).filter(|index| *index != winner) {
        check(
            expect(store.credentials(&user(index)).await, "credentials").len(),
            0,
            "a user who lost concurrent put_pending (many) of an id holds nothing",
        );
    }
}

pub(super) async fn concurrent_activate<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-activate");
    let app = credential(&user, TOTP, "app", T0);
    expect(
        store.put_pending(app.clone(), Enrollment::OnePerUser).await,
        "put_pending",
    );
    let results = race(store, |store, index| {
        let app = app.clone();
        // Each activation brings its own code set of one code.
        let codes = CodeSet {
            kind: BACKUP.to_owned(),
            codes: vec![CodeHash {
                lookup: lookup("racer", index),
                hash: format!("racer-hash-{index}"),
                expires_at: None,
            }],
        };
        async move {
            expect(
                store
                    .activate(app.key(), 700 + offset(index), Some(codes))
                    .await,
                "activate",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent activate of one pending credential: number of winners",
    );
    let winner = winner(&results);
    check(
        stored(store, app.key())
            .await
            .map(|stored| (stored.status, stored.counter)),
        Some((CredentialStatus::Active, 700 + offset(winner))),
        "the credential after concurrent activate (the winner's counter)",
    );
    check(
        count(store, &user, BACKUP).await,
        1,
        "codes after concurrent activate: one set",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("racer", winner)).await,
        Some(format!("racer-hash-{winner}")),
        "the code set after concurrent activate is the winner's",
    );
}

pub(super) async fn concurrent_advance_counter<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-advance");
    let app = credential(&user, TOTP, &ids.id("concurrent-advance", "app"), T0);
    enroll_active(store, &app, 500).await;
    let results = race(store, |store, index| {
        let app = app.clone();
        async move {
            let payload = format!("payload-{index}");
            expect(
                store
                    .advance_counter(app.key(), 501, Some(&payload), T0 + offset(index))
                    .await,
                "advance_counter",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent advance_counter to one counter: number of winners",
    );
    let winner = winner(&results);
    check(
        stored(store, app.key())
            .await
            .map(|stored| (stored.counter, stored.payload, stored.last_used_at)),
        Some((501, format!("payload-{winner}"), Some(T0 + offset(winner)))),
        "the credential after concurrent advance_counter (the winner's payload and use)",
    );
}

pub(super) async fn concurrent_replace_payload<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-replace");
    let key = credential(&user, PASSKEY, &ids.id("concurrent-replace", "key"), T0);
    enroll_active(store, &key, 1).await;
    // Half record a use, half do not.
    let used_at = |index: usize| index.is_multiple_of(2).then(|| T0 + 1 + offset(index));
    let results = race(store, |store, index| {
        let key = key.clone();
        async move {
            let new = format!("new-{index}");
            expect(
                store
                    .replace_payload(key.key(), &key.payload, &new, used_at(index))
                    .await,
                "replace_payload",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent replace_payload of one payload: number of winners",
    );
    let winner = winner(&results);
    check(
        stored(store, key.key())
            .await
            .map(|stored| (stored.payload, stored.last_used_at)),
        Some((format!("new-{winner}"), used_at(winner))),
        "the payload and last use after concurrent replace_payload are the winner's",
    );
}

pub(super) async fn concurrent_consume_code<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-consume");
    expect(
        store.replace_codes(&user, code_set(BACKUP, "c", 10)).await,
        "replace_codes",
    );
    let results = race(store, |store, _| {
        let user = user.clone();
        async move {
            expect(
                store.consume_code(&user, BACKUP, &lookup("c", 7)).await,
                "consume_code",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent consume_code of one code: number of winners",
    );
    check(
        count(store, &user, BACKUP).await,
        9,
        "count_codes after concurrent consume_code",
    );
}

pub(super) async fn concurrent_record_failure<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-failures");
    let mut streaks = race(store, |store, _| {
        let user = user.clone();
        async move { expect(store.record_failure(&user, TOTP).await, "record_failure") }
    })
    .await;
    streaks.sort_unstable();
    check(
        streaks,
        (1..=offset(RACERS)).collect::<Vec<_>>(),
        "concurrent record_failure: the streaks returned (sorted)",
    );
    check(
        expect(store.failures(&user, TOTP).await, "failures"),
        offset(RACERS),
        "failures after concurrent record_failure (no update lost)",
    );
}
