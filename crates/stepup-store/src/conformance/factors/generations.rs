//! Each user's generation: 0 until a reset, moved forward by one with the time of the move, and
//! the feed of every move, in the order the store made them.
//!
//! The feed is shared by every user of the store, which may hold other runs' changes: the checks
//! read it after the position it ended at when they started ([`feed_end`]), and expect no other
//! writer to move a generation meanwhile.

use std::collections::HashMap;
use std::sync::Arc;

use super::T0;
use crate::conformance::{Ids, check, expect};
use crate::{FactorStore, Generation, GenerationChange};

/// The user's generation.
pub(super) async fn generation_of<S: FactorStore>(store: &Arc<S>, user: &str) -> Generation {
    expect(store.generation(user).await, "generation")
}

/// Moves the user's generation forward at `at`.
pub(super) async fn advance<S: FactorStore>(store: &Arc<S>, user: &str, at: u64) -> Generation {
    expect(
        store.advance_generation(user, at).await,
        "advance_generation",
    )
}

/// The feed after `after`, at most `limit` changes.
pub(super) async fn changes<S: FactorStore>(
    store: &Arc<S>,
    after: u64,
    limit: usize,
) -> Vec<GenerationChange> {
    expect(
        store.generation_changes(after, limit).await,
        "generation_changes",
    )
}

/// How many changes a page of [`feed_after`] asks for.
const PAGE: usize = 256;

/// The whole feed after `after`, read page by page, each page resuming after the last position
/// of the one before (as an instance replaying it would); checks the positions strictly increase.
pub(super) async fn feed_after<S: FactorStore>(
    store: &Arc<S>,
    after: u64,
) -> Vec<GenerationChange> {
    let mut feed: Vec<GenerationChange> = Vec::new();
    let mut last = after;
    loop {
        let page = changes(store, last, PAGE).await;
        check(
            page.len() <= PAGE,
            true,
            "generation_changes returns at most `limit` changes",
        );
        if page.is_empty() {
            return feed;
        }
        for change in &page {
            check(
                change.seq > last,
                true,
                "generation_changes: positions after `after`, strictly increasing",
            );
            last = change.seq;
        }
        feed.extend(page);
    }
}

/// The position the feed ends at now (0 when it is empty).
pub(super) async fn feed_end<S: FactorStore>(store: &Arc<S>) -> u64 {
    feed_after(store, 0)
        .await
        .last()
        .map_or(0, |change| change.seq)
}

/// What a reader of `feed` learns: each user's generation as of the last change listing them.
pub(super) fn replayed(feed: &[GenerationChange]) -> HashMap<String, Generation> {
    feed.iter()
        .map(|change| (change.user.clone(), change.generation))
        .collect()
}

/// The feed's changes of one user, in feed order.
fn of_user<'a>(feed: &'a [GenerationChange], user: &str) -> Vec<&'a GenerationChange> {
    feed.iter().filter(|change| change.user == user).collect()
}

/// A generation moved at `at`.
fn moved(value: u64, at: u64) -> Generation {
    Generation {
        value,
        changed_at: Some(at),
    }
}

pub(super) async fn generations<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("generation");
    let other = ids.user("generation-other");
    check(
        generation_of(store, &user).await,
        Generation {
            value: 0,
            changed_at: None,
        },
        "the generation of a user never reset",
    );
    check(
        advance(store, &user, T0 + 100).await,
        moved(1, T0 + 100),
        "advance_generation from 0 returns the new generation",
    );
    check(
        generation_of(store, &user).await,
        moved(1, T0 + 100),
        "the generation after advance_generation",
    );
    check(
        advance(store, &user, T0 + 250).await,
        moved(2, T0 + 250),
        "advance_generation moves it by one, changed_at to the time given",
    );
    check(
        advance(store, &user, T0 + 250).await,
        moved(3, T0 + 250),
        "advance_generation twice in one second moves it twice",
    );
    check(
        generation_of(store, &user).await,
        moved(3, T0 + 250),
        "the generation after three moves",
    );
    check(
        generation_of(store, &other).await,
        Generation::default(),
        "another user's generation is not moved",
    );
    check(
        advance(store, &other, T0 + 300).await,
        moved(1, T0 + 300),
        "another user's generation moves from 0",
    );
    check(
        generation_of(store, &user).await,
        moved(3, T0 + 250),
        "moving another user's generation leaves the user's",
    );
}

pub(super) async fn generation_feed<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let [a, b, c] = ["feed-a", "feed-b", "feed-c"].map(|name| ids.user(name));
    let start = feed_end(store).await;
    check(
        changes(store, start, 10).await,
        Vec::new(),
        "generation_changes after the end of the feed",
    );

    for (user, at) in [(&a, T0 + 1), (&b, T0 + 2), (&c, T0 + 3)] {
        advance(store, user, at).await;
    }
    let feed = changes(store, start, 10).await;
    check(
        feed.iter()
            .map(|change| (change.user.as_str(), change.generation))
            .collect::<Vec<_>>(),
        vec![
            (a.as_str(), moved(1, T0 + 1)),
            (b.as_str(), moved(1, T0 + 2)),
            (c.as_str(), moved(1, T0 + 3)),
        ],
        "generation_changes: the moves after the position, oldest first",
    );
    let seqs: Vec<u64> = feed.iter().map(|change| change.seq).collect();
    check(
        seqs.first().is_some_and(|first| *first > start)
            && seqs.windows(2).all(|pair| pair[0] < pair[1]),
        true,
        "generation_changes: positions after `after`, strictly increasing",
    );
    let [seq_a, seq_b, seq_c] = [seqs[0], seqs[1], seqs[2]];

    check(
        changes(store, start, 2).await,
        feed[..2].to_vec(),
        "generation_changes with a limit: the oldest `limit` changes",
    );
    check(
        changes(store, start, 0).await,
        Vec::new(),
        "generation_changes with a limit of 0",
    );
    check(
        changes(store, seq_a, 10).await,
        feed[1..].to_vec(),
        "generation_changes resumes after the position given",
    );
    check(
        changes(store, seq_b, 1).await,
        feed[2..].to_vec(),
        "generation_changes resumes after a position, with a limit",
    );
    check(
        changes(store, seq_c, 10).await,
        Vec::new(),
        "generation_changes after the last change",
    );
    if start == 0 {
        check(
            changes(store, 0, 10).await,
            feed.clone(),
            "generation_changes from 0 on a store without earlier changes: from the start",
        );
    }

    // A's second move comes after c's: a reader that stopped after c learns of it, and every
    // reader ends with a's latest generation.
    check(
        advance(store, &a, T0 + 4).await,
        moved(2, T0 + 4),
        "advance_generation",
    );
    let resumed = changes(store, seq_c, 10).await;
    check(
        resumed
            .iter()
            .map(|change| (change.user.as_str(), change.generation))
            .collect::<Vec<_>>(),
        vec![(a.as_str(), moved(2, T0 + 4))],
        "generation_changes after the last position a reader saw lists the next move",
    );
    check(
        resumed.iter().all(|change| change.seq > seq_c),
        true,
        "a later move has a later position",
    );
    let feed = changes(store, start, 10).await;
    let a_changes = of_user(&feed, &a);
    check(
        a_changes.last().map(|change| change.generation),
        Some(moved(2, T0 + 4)),
        "the feed ends, for a user moved twice, with the latest generation",
    );
    check(
        a_changes
            .windows(2)
            .all(|pair| pair[0].generation.value < pair[1].generation.value),
        true,
        "a user listed more than once is listed in the order of the moves",
    );
    check(
        feed.last().map(|change| change.user.as_str()),
        Some(a.as_str()),
        "the feed ends with the latest move",
    );
    check(
        feed.windows(2).all(|pair| pair[0].seq < pair[1].seq),
        true,
        "generation_changes: strictly increasing positions",
    );
    let replayed = replayed(&feed);
    for user in [&a, &b, &c] {
        check(
            replayed.get(user.as_str()).copied(),
            Some(generation_of(store, user).await),
            "replaying the feed gives each user's current generation",
        );
    }
    check(
        feed_after(store, start).await,
        feed,
        "the feed read page by page is the feed read at once",
    );
}
