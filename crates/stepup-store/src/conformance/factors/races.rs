//! 100 tasks, released together, on each atomic call of [`FactorStore`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::generations::{changes, feed_after, feed_end, generation_of, replayed};
use super::{BACKUP, PASSKEY, T0, TOTP, code_set, count, credential, hash_of, lookup, stored};
use crate::conformance::{Ids, RACERS, check, expect, race, winner, winners};
use crate::{
    CodeHash, CodeSet, Credential, CredentialStatus, Enrollment, FactorStore, Generation,
    GenerationChange,
};

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

pub(super) async fn concurrent_disable<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-disable");
    let key = credential(&user, PASSKEY, &ids.id("concurrent-disable", "key"), T0);
    enroll_active(store, &key, 3).await;
    let results = race(store, |store, _| {
        let key = key.clone();
        async move {
            expect(
                store.disable_credential(key.key()).await,
                "disable_credential",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent disable_credential of one active credential: number of winners",
    );
    check(
        stored(store, key.key()).await.map(|stored| stored.status),
        Some(CredentialStatus::Disabled),
        "the credential after concurrent disable_credential",
    );
}

pub(super) async fn concurrent_advance_generation<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("concurrent-generation");
    let start = feed_end(store).await;
    let mut values: Vec<u64> = race(store, |store, index| {
        let user = user.clone();
        async move {
            let generation = expect(
                store.advance_generation(&user, T0 + offset(index)).await,
                "advance_generation",
            );
            check(
                generation.changed_at,
                Some(T0 + offset(index)),
                "advance_generation returns its own time as changed_at",
            );
            generation.value
        }
    })
    .await;
    values.sort_unstable();
    check(
        values,
        (1..=offset(RACERS)).collect::<Vec<_>>(),
        "concurrent advance_generation: the generations returned (sorted), each its own",
    );
    let current = generation_of(store, &user).await;
    check(
        current.value,
        offset(RACERS),
        "the generation after concurrent advance_generation (no move lost)",
    );
    let feed = feed_after(store, start).await;
    check(
        feed.iter().all(|change| change.user == user),
        true,
        "the feed after concurrent advance_generation of one user lists only that user",
    );
    check(
        feed.last().map(|change| change.generation),
        Some(current),
        "the feed after concurrent advance_generation ends with the user's generation",
    );
    check(
        feed.windows(2)
            .all(|pair| pair[0].generation.value < pair[1].generation.value),
        true,
        "the feed lists one user's moves in the order they were made",
    );
}

/// Users the racers of [`concurrent_advance_generation_across_users`] share.
const USERS: usize = 7;

/// Replays the feed from `after` while `racing`, resuming each time after the last position
/// seen, as an instance keeping its copy current does; then once more after the race. Returns
/// what it learned.
async fn replay_while<S: FactorStore>(
    store: Arc<S>,
    after: u64,
    racing: Arc<AtomicBool>,
) -> HashMap<String, Generation> {
    let mut learned: Vec<GenerationChange> = Vec::new();
    let mut last = after;
    loop {
        // Read before looking at the flag, so a final pass follows the last racer.
        let done = !racing.load(Ordering::Acquire);
        let page = changes(&store, last, 5).await;
        for change in &page {
            check(
                change.seq > last,
                true,
                "generation_changes during concurrent moves: strictly increasing positions",
            );
            last = change.seq;
        }
        let drained = page.is_empty();
        learned.extend(page);
        if done && drained {
            return replayed(&learned);
        }
        tokio::task::yield_now().await;
    }
}

pub(super) async fn concurrent_advance_generation_across_users<S: FactorStore>(
    store: &Arc<S>,
    ids: &Ids,
) {
    let user = |index: usize| ids.user(&format!("concurrent-generations-{}", index % USERS));
    let start = feed_end(store).await;
    let racing = Arc::new(AtomicBool::new(true));
    let reader = tokio::spawn(replay_while(Arc::clone(store), start, Arc::clone(&racing)));
    let results = race(store, |store, index| {
        let user = user(index);
        async move {
            let generation = expect(
                store.advance_generation(&user, T0 + offset(index)).await,
                "advance_generation",
            );
            (user, generation.value)
        }
    })
    .await;
    racing.store(false, Ordering::Release);
    let learned = match reader.await {
        Ok(learned) => learned,
        Err(error) => panic!("conformance: the feed reader failed: {error}"),
    };

    let mut returned: HashMap<String, Vec<u64>> = HashMap::new();
    for (user, value) in results {
        returned.entry(user).or_default().push(value);
    }
    let feed = feed_after(store, start).await;
    let final_feed = replayed(&feed);
    for index in 0..USERS {
        let user = user(index);
        let moves = offset((0..RACERS).filter(|racer| racer % USERS == index).count());
        let mut values = returned.remove(&user).unwrap_or_default();
        values.sort_unstable();
        check(
            values,
            (1..=moves).collect::<Vec<_>>(),
            "concurrent advance_generation of several users: each user's generations returned \
             (sorted)",
        );
        let current = generation_of(store, &user).await;
        check(
            current.value,
            moves,
            "each user's generation after concurrent advance_generation (no move lost)",
        );
        check(
            final_feed.get(&user).copied(),
            Some(current),
            "the feed after concurrent advance_generation ends, for each user, with the user's \
             generation",
        );
        check(
            learned.get(&user).copied(),
            Some(current),
            "a reader resuming after the last position it saw, during concurrent \
             advance_generation, ends with each user's generation (no change became visible \
             after a later one)",
        );
    }
    check(
        feed.iter()
            .all(|change| (0..USERS).any(|index| user(index) == change.user)),
        true,
        "the feed after concurrent advance_generation lists only the racing users",
    );
}
