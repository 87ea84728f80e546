//! The conformance suite of [`GrantStore`]: clients as registered, refresh-token families as
//! stored, rotation, reuse detection, revocation, expiry by the store's clock, and 100-way races
//! on registration and rotation.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::{Clock, ManualClock};

use super::{Ids, check, expect, race};
use crate::{ClientRecord, GrantStore, RefreshFamily, Rotation};

/// Runs every check of [`GrantStore`] on `store`, panicking with a description of the first
/// failure.
///
/// `store` must judge expiry by `clock` (the suite moves it forward). The store may hold other
/// data, and the suite may run more than once on it.
pub async fn run<S: GrantStore>(store: Arc<S>, clock: ManualClock) {
    let ids = Ids::new();
    client_lifecycle(&store, &ids, &clock).await;
    family_round_trip(&store, &ids, &clock).await;
    rotation_and_reuse(&store, &ids, &clock).await;
    family_expiry(&store, &ids, &clock).await;
    family_revocation(&store, &ids, &clock).await;
    concurrent_registrations(&store, &ids, &clock).await;
    concurrent_rotations(&store, &ids, &clock).await;
    concurrent_rotations_of_many_families(&store, &ids, &clock).await;
}

fn client(ids: &Ids, check: &str, name: &str, at: u64) -> ClientRecord {
    ClientRecord {
        id: ids.id(check, name),
        metadata: format!(
            r#"{{"client_name":"{name}","redirect_uris":["https://app.example/cb"]}}"#
        ),
        created_at: at,
        registered_by: Some("192.0.2.7".to_owned()),
        revoked: false,
    }
}

fn family(ids: &Ids, check: &str, name: &str, user: &str, now: u64) -> RefreshFamily {
    RefreshFamily {
        id: ids.id(check, name),
        user: user.to_owned(),
        client_id: ids.id(check, "client"),
        acr: "mfa".to_owned(),
        amr: vec!["pwd".to_owned(), "otp".to_owned()],
        auth_time: Some(now.saturating_sub(10)),
        generation: 3,
        scope: Some("offline_access tools".to_owned()),
        resource: Some("https://mcp.example.com/".to_owned()),
        token_hash: ids.id(check, &format!("{name}-token-0")),
        created_at: now,
        expires_at: now + 86_400,
        revoked: false,
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned()),
    }
}

async fn client_lifecycle<S: GrantStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let name = "client-lifecycle";
    let now = clock.unix_seconds();
    let first = client(ids, name, "first", now);
    check(
        expect(store.client(&first.id).await, "client"),
        None,
        "client before it is registered",
    );
    check(
        expect(store.insert_client(first.clone()).await, "insert_client"),
        true,
        "insert_client of a fresh id",
    );
    check(
        expect(store.client(&first.id).await, "client"),
        Some(first.clone()),
        "client as registered",
    );
    let thief = ClientRecord {
        metadata: "{}".to_owned(),
        registered_by: None,
        ..first.clone()
    };
    check(
        expect(store.insert_client(thief).await, "insert_client"),
        false,
        "insert_client with a taken id",
    );
    check(
        expect(store.client(&first.id).await, "client"),
        Some(first.clone()),
        "a refused registration leaves the first one alone",
    );
    // Far in the future of the clock, and later than any earlier run's, so these two are the
    // newest clients of the store.
    static LATER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let at = 20_000_000_000 + 2 * LATER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let later = client(ids, name, "later", at);
    let latest = ClientRecord {
        registered_by: None,
        ..client(ids, name, "latest", at + 1)
    };
    for registered in [&later, &latest] {
        check(
            expect(
                store.insert_client(registered.clone()).await,
                "insert_client",
            ),
            true,
            "insert_client",
        );
    }
    let listed = expect(store.clients(2).await, "clients");
    check(
        listed,
        vec![latest.clone(), later.clone()],
        "clients: newest first, at most the limit",
    );
    check(
        expect(store.revoke_client(&later.id).await, "revoke_client"),
        true,
        "revoke_client of a live registration",
    );
    check(
        expect(store.revoke_client(&later.id).await, "revoke_client"),
        false,
        "revoke_client again",
    );
    check(
        expect(
            store.revoke_client(&ids.id(name, "unknown")).await,
            "revoke_client",
        ),
        false,
        "revoke_client of an unknown id",
    );
    check(
        expect(store.client(&later.id).await, "client").map(|client| client.revoked),
        Some(true),
        "a revoked client is kept, revoked",
    );
}

async fn family_round_trip<S: GrantStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let name = "family-round-trip";
    let user = ids.user(name);
    let now = clock.unix_seconds();
    let full = RefreshFamily {
        generation: (1 << 40) + 7,
        ..family(ids, name, "full", &user, now)
    };
    let bare = RefreshFamily {
        amr: Vec::new(),
        auth_time: None,
        generation: 0,
        scope: None,
        resource: None,
        created_at: now + 1,
        dpop_jkt: None,
        ..family(ids, name, "bare", &user, now)
    };
    for stored in [&full, &bare] {
        expect(store.insert_family(stored.clone()).await, "insert_family");
        check(
            expect(
                store.family_by_token(&stored.token_hash).await,
                "family_by_token",
            ),
            Some(stored.clone()),
            "family_by_token: the family as stored",
        );
    }
    check(
        expect(store.families(&user).await, "families"),
        vec![bare.clone(), full.clone()],
        "families: the user's live families, newest first",
    );
    check(
        expect(store.families(&ids.user("nobody")).await, "families"),
        Vec::new(),
        "families of a user without any",
    );
    check(
        expect(
            store.family_by_token(&ids.id(name, "unknown")).await,
            "family_by_token",
        ),
        None,
        "family_by_token of an unknown hash",
    );
    check(
        store
            .insert_family(RefreshFamily {
                token_hash: ids.id(name, "fresh-token"),
                ..full.clone()
            })
            .await
            .is_err(),
        true,
        "insert_family with a taken id fails",
    );
    check(
        store
            .insert_family(RefreshFamily {
                id: ids.id(name, "fresh-id"),
                ..full.clone()
            })
            .await
            .is_err(),
        true,
        "insert_family with a taken token hash fails",
    );
    check(
        expect(
            store.family_by_token(&ids.id(name, "fresh-token")).await,
            "family_by_token",
        ),
        None,
        "a refused insert stores nothing",
    );
}

async fn rotation_and_reuse<S: GrantStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let name = "rotation";
    let user = ids.user(name);
    let now = clock.unix_seconds();
    let stored = family(ids, name, "family", &user, now);
    expect(store.insert_family(stored.clone()).await, "insert_family");
    let token = |n: usize| ids.id(name, &format!("family-token-{n}"));

    let Rotation::Rotated(first) = expect(
        store.rotate_refresh_token(&token(0), &token(1)).await,
        "rotate_refresh_token",
    ) else {
        panic!("conformance: rotating the current token must rotate it");
    };
    check(
        first.clone(),
        RefreshFamily {
            token_hash: token(1),
            ..stored.clone()
        },
        "a rotation swaps in the replacement and changes nothing else",
    );
    check(
        expect(
            store.rotate_refresh_token(&token(1), &token(2)).await,
            "rotate_refresh_token",
        ),
        Rotation::Rotated(RefreshFamily {
            token_hash: token(2),
            ..stored.clone()
        }),
        "the replacement is the current token",
    );
    check(
        expect(store.family_by_token(&token(0)).await, "family_by_token")
            .map(|family| family.token_hash),
        Some(token(2)),
        "an earlier token still names its family",
    );
    check(
        store
            .rotate_refresh_token(&token(2), &token(1))
            .await
            .is_err(),
        true,
        "a replacement the family held before fails",
    );
    check(
        expect(store.family_by_token(&token(2)).await, "family_by_token")
            .map(|family| (family.token_hash, family.revoked)),
        Some((token(2), false)),
        "a failed rotation changes nothing",
    );
    // A reuse: the first token again.
    check(
        expect(
            store.rotate_refresh_token(&token(0), &token(3)).await,
            "rotate_refresh_token",
        ),
        Rotation::Reused(RefreshFamily {
            token_hash: token(2),
            revoked: true,
            ..stored.clone()
        }),
        "an earlier token revokes the family",
    );
    check(
        expect(
            store.rotate_refresh_token(&token(2), &token(4)).await,
            "rotate_refresh_token",
        ),
        Rotation::Revoked,
        "the current token of a revoked family",
    );
    check(
        expect(
            store.rotate_refresh_token(&token(1), &token(5)).await,
            "rotate_refresh_token",
        ),
        Rotation::Revoked,
        "an earlier token of a revoked family",
    );
    check(
        expect(store.family_by_token(&token(4)).await, "family_by_token"),
        None,
        "a refused rotation stores no replacement",
    );
    check(
        expect(
            store
                .rotate_refresh_token(&ids.id(name, "unknown"), &token(6))
                .await,
            "rotate_refresh_token",
        ),
        Rotation::Unknown,
        "a token no family held",
    );
    check(
        expect(store.families(&user).await, "families"),
        Vec::new(),
        "a revoked family is not listed",
    );
}

async fn family_expiry<S: GrantStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let name = "family-expiry";
    let user = ids.user(name);
    let now = clock.unix_seconds();
    let short = RefreshFamily {
        expires_at: now + 60,
        ..family(ids, name, "short", &user, now)
    };
    expect(store.insert_family(short.clone()).await, "insert_family");
    clock.advance(Duration::from_secs(59));
    check(
        expect(store.families(&user).await, "families").len(),
        1,
        "a family is live until its expiry",
    );
    clock.advance(Duration::from_secs(1));
    check(
        expect(store.families(&user).await, "families"),
        Vec::new(),
        "a family is not listed from its expiry on",
    );
    check(
        expect(
            store
                .rotate_refresh_token(&short.token_hash, &ids.id(name, "next"))
                .await,
            "rotate_refresh_token",
        ),
        Rotation::Revoked,
        "the current token of an expired family",
    );
}

async fn family_revocation<S: GrantStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let name = "family-revocation";
    let user = ids.user(name);
    let other = ids.user("family-revocation-other");
    let now = clock.unix_seconds();
    let one = family(ids, name, "one", &user, now);
    let two = family(ids, name, "two", &user, now);
    let three = family(ids, name, "three", &user, now);
    let others = family(ids, name, "others", &other, now);
    for stored in [&one, &two, &three, &others] {
        expect(store.insert_family(stored.clone()).await, "insert_family");
    }
    check(
        expect(store.revoke_family(&one.id).await, "revoke_family"),
        true,
        "revoke_family of a live family",
    );
    check(
        expect(store.revoke_family(&one.id).await, "revoke_family"),
        false,
        "revoke_family again",
    );
    check(
        expect(
            store
                .rotate_refresh_token(&one.token_hash, &ids.id(name, "r1"))
                .await,
            "rotate_refresh_token",
        ),
        Rotation::Revoked,
        "a revoked family's token",
    );
    check(
        expect(
            store.revoke_user_families(&user).await,
            "revoke_user_families",
        ),
        2,
        "revoke_user_families counts the live ones",
    );
    check(
        expect(store.families(&user).await, "families"),
        Vec::new(),
        "no family of the user is left",
    );
    check(
        expect(store.families(&other).await, "families"),
        vec![others.clone()],
        "another user's family is untouched",
    );
    check(
        expect(
            store.family_by_token(&two.token_hash).await,
            "family_by_token",
        )
        .map(|family| family.revoked),
        Some(true),
        "a revoked family is still found, revoked",
    );
}

async fn concurrent_registrations<S: GrantStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let name = "concurrent-registrations";
    let now = clock.unix_seconds();
    let id = ids.id(name, "client");
    let results = race(store, |store, index| {
        let record = ClientRecord {
            metadata: format!(r#"{{"n":{index}}}"#),
            ..client(ids, name, "client", now)
        };
        async move { expect(store.insert_client(record).await, "insert_client") }
    })
    .await;
    check(
        super::winners(&results),
        1,
        "of 100 concurrent registrations of one id, winners",
    );
    let winner = super::winner(&results);
    check(
        expect(store.client(&id).await, "client").map(|client| client.metadata),
        Some(format!(r#"{{"n":{winner}}}"#)),
        "the stored client is the winner's",
    );
}

async fn concurrent_rotations<S: GrantStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let name = "concurrent-rotations";
    let user = ids.user(name);
    let now = clock.unix_seconds();
    let stored = family(ids, name, "family", &user, now);
    expect(store.insert_family(stored.clone()).await, "insert_family");
    let presented = stored.token_hash.clone();
    let results = race(store, |store, index| {
        let presented = presented.clone();
        let replacement = ids.id(name, &format!("replacement-{index}"));
        async move {
            expect(
                store.rotate_refresh_token(&presented, &replacement).await,
                "rotate_refresh_token",
            )
        }
    })
    .await;
    let rotated: Vec<&RefreshFamily> = results
        .iter()
        .filter_map(|rotation| match rotation {
            Rotation::Rotated(family) => Some(family),
            _ => None,
        })
        .collect();
    check(
        rotated.len(),
        1,
        "of 100 concurrent rotations of one token, rotated",
    );
    check(
        results
            .iter()
            .filter(|rotation| matches!(rotation, Rotation::Reused(_)))
            .count(),
        1,
        "of 100 concurrent rotations of one token, reuses detected",
    );
    check(
        results
            .iter()
            .filter(|rotation| matches!(rotation, Rotation::Revoked))
            .count(),
        98,
        "of 100 concurrent rotations of one token, refused as revoked",
    );
    let winner = rotated[0].token_hash.clone();
    check(
        expect(
            store
                .rotate_refresh_token(&winner, &ids.id(name, "after"))
                .await,
            "rotate_refresh_token",
        ),
        Rotation::Revoked,
        "the winner's token after the losers' reuse",
    );
    check(
        expect(store.families(&user).await, "families"),
        Vec::new(),
        "the family is revoked",
    );
}

async fn concurrent_rotations_of_many_families<S: GrantStore>(
    store: &Arc<S>,
    ids: &Ids,
    clock: &ManualClock,
) {
    let name = "many-families";
    let user = ids.user(name);
    let now = clock.unix_seconds();
    for index in 0..super::RACERS {
        let stored = family(ids, name, &format!("family-{index}"), &user, now);
        expect(store.insert_family(stored).await, "insert_family");
    }
    let results = race(store, |store, index| {
        let presented = ids.id(name, &format!("family-{index}-token-0"));
        let replacement = ids.id(name, &format!("family-{index}-token-1"));
        async move {
            matches!(
                expect(
                    store.rotate_refresh_token(&presented, &replacement).await,
                    "rotate_refresh_token",
                ),
                Rotation::Rotated(_)
            )
        }
    })
    .await;
    check(
        super::winners(&results),
        super::RACERS,
        "100 families rotated at once, each once: rotated",
    );
    check(
        expect(store.families(&user).await, "families").len(),
        super::RACERS,
        "every family still live",
    );
}
