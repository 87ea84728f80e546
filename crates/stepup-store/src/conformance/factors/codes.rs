//! Single-use codes: whole sets per (user, kind), lookups, consumption, expiry by the clock.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::{Clock, ManualClock};

use super::{BACKUP, SMS_CODE, code_set, codes, count, hash, hash_of, lookup};
use crate::conformance::{Ids, check, expect};
use crate::{CodeHash, CodeSet, FactorStore};

async fn consume<S: FactorStore>(store: &Arc<S>, user: &str, kind: &str, lookup: &str) -> bool {
    expect(store.consume_code(user, kind, lookup).await, "consume_code")
}

pub(super) async fn code_sets<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("codes");
    let other = ids.user("codes-other");

    check(
        count(store, &user, BACKUP).await,
        0,
        "count_codes of a user without codes",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("a", 0)).await,
        None,
        "code_hash of a user without codes",
    );
    check(
        consume(store, &user, BACKUP, &lookup("a", 0)).await,
        false,
        "consume_code of a user without codes",
    );

    expect(
        store.replace_codes(&user, code_set(BACKUP, "a", 10)).await,
        "replace_codes",
    );
    expect(
        store.replace_codes(&user, code_set(SMS_CODE, "s", 2)).await,
        "replace_codes",
    );
    // The same lookups for another user.
    expect(
        store.replace_codes(&other, code_set(BACKUP, "a", 5)).await,
        "replace_codes",
    );

    check(
        count(store, &user, BACKUP).await,
        10,
        "count_codes after storing 10",
    );
    check(
        count(store, &user, SMS_CODE).await,
        2,
        "count_codes of another kind",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("a", 3)).await,
        Some(hash("a", 3)),
        "code_hash of a stored code",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("a", 99)).await,
        None,
        "code_hash of an unknown lookup",
    );
    check(
        hash_of(store, &user, SMS_CODE, &lookup("a", 3)).await,
        None,
        "code_hash of a lookup stored under another kind",
    );
    check(
        consume(store, &user, SMS_CODE, &lookup("a", 3)).await,
        false,
        "consume_code of a lookup stored under another kind",
    );
    check(
        consume(store, &user, BACKUP, &lookup("a", 3)).await,
        true,
        "consume_code of a stored code",
    );
    check(
        consume(store, &user, BACKUP, &lookup("a", 3)).await,
        false,
        "consume_code of a used code",
    );
    check(
        consume(store, &user, BACKUP, &lookup("a", 99)).await,
        false,
        "consume_code of an unknown lookup",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("a", 3)).await,
        None,
        "code_hash of a used code",
    );
    check(
        count(store, &user, BACKUP).await,
        9,
        "count_codes after one use",
    );
    check(
        count(store, &user, SMS_CODE).await,
        2,
        "consume_code leaves another kind's codes",
    );
    check(
        count(store, &other, BACKUP).await,
        5,
        "consume_code leaves another user's codes",
    );
    check(
        hash_of(store, &other, BACKUP, &lookup("a", 3)).await,
        Some(hash("a", 3)),
        "another user's code of the same lookup is still unused",
    );

    // A new set replaces every code of its kind, and only of its kind.
    expect(
        store.replace_codes(&user, code_set(BACKUP, "b", 5)).await,
        "replace_codes",
    );
    check(
        count(store, &user, BACKUP).await,
        5,
        "count_codes after replacing the set",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("a", 4)).await,
        None,
        "code_hash of a code of the replaced set",
    );
    check(
        consume(store, &user, BACKUP, &lookup("a", 4)).await,
        false,
        "consume_code of a code of the replaced set",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("b", 4)).await,
        Some(hash("b", 4)),
        "code_hash of a code of the new set",
    );
    check(
        count(store, &user, SMS_CODE).await,
        2,
        "replace_codes leaves another kind's codes",
    );
    check(
        count(store, &other, BACKUP).await,
        5,
        "replace_codes leaves another user's codes",
    );

    expect(
        store
            .replace_codes(
                &user,
                CodeSet {
                    kind: BACKUP.to_owned(),
                    codes: Vec::new(),
                },
            )
            .await,
        "replace_codes",
    );
    check(
        count(store, &user, BACKUP).await,
        0,
        "count_codes after replacing with an empty set",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("b", 4)).await,
        None,
        "code_hash after replacing with an empty set",
    );
    check(
        count(store, &user, SMS_CODE).await,
        2,
        "an empty set leaves another kind's codes",
    );

    // An empty slow hash (the lookup digest alone decides) is a stored hash, not a missing code.
    let digest_only = CodeHash {
        hash: String::new(),
        ..codes("e", 1, None).remove(0)
    };
    expect(
        store
            .replace_codes(
                &user,
                CodeSet {
                    kind: SMS_CODE.to_owned(),
                    codes: vec![digest_only.clone()],
                },
            )
            .await,
        "replace_codes",
    );
    check(
        hash_of(store, &user, SMS_CODE, &digest_only.lookup).await,
        Some(String::new()),
        "code_hash of a code stored with an empty hash",
    );
    check(
        count(store, &user, SMS_CODE).await,
        1,
        "count_codes of a code with an empty hash",
    );
    check(
        consume(store, &user, SMS_CODE, &digest_only.lookup).await,
        true,
        "consume_code of a code with an empty hash",
    );
}

pub(super) async fn code_expiry<S: FactorStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let user = ids.user("code-expiry");
    let now = clock.unix_seconds();
    let code = |name: &str, expires_at: Option<u64>| CodeHash {
        lookup: format!("{name}-lookup"),
        hash: format!("{name}-hash"),
        expires_at,
    };
    let past = code("past", Some(now.saturating_sub(10)));
    let at_now = code("now", Some(now));
    let soon = code("soon", Some(now + 60));
    let later = code("later", Some(now + 120));
    let never = code("never", None);
    expect(
        store
            .replace_codes(
                &user,
                CodeSet {
                    kind: SMS_CODE.to_owned(),
                    codes: vec![
                        past.clone(),
                        at_now.clone(),
                        soon.clone(),
                        later.clone(),
                        never.clone(),
                    ],
                },
            )
            .await,
        "replace_codes",
    );

    check(
        count(store, &user, SMS_CODE).await,
        3,
        "count_codes counts only live codes",
    );
    for (dead, what) in [(&past, "expired before now"), (&at_now, "expiring now")] {
        check(
            hash_of(store, &user, SMS_CODE, &dead.lookup).await,
            None,
            &format!("code_hash of a code {what} (live only while strictly after now)"),
        );
        check(
            consume(store, &user, SMS_CODE, &dead.lookup).await,
            false,
            &format!("consume_code of a code {what}"),
        );
    }
    check(
        hash_of(store, &user, SMS_CODE, &soon.lookup).await,
        Some(soon.hash.clone()),
        "code_hash of a live code with an expiry",
    );
    check(
        consume(store, &user, SMS_CODE, &later.lookup).await,
        true,
        "consume_code of a live code with an expiry",
    );
    check(
        count(store, &user, SMS_CODE).await,
        2,
        "count_codes after consuming one",
    );

    clock.advance(Duration::from_secs(59));
    check(
        hash_of(store, &user, SMS_CODE, &soon.lookup).await,
        Some(soon.hash.clone()),
        "code_hash one second before the code expires",
    );
    check(
        count(store, &user, SMS_CODE).await,
        2,
        "count_codes one second before an expiry",
    );

    clock.advance(Duration::from_secs(1));
    check(
        hash_of(store, &user, SMS_CODE, &soon.lookup).await,
        None,
        "code_hash once the clock reached the expiry",
    );
    check(
        consume(store, &user, SMS_CODE, &soon.lookup).await,
        false,
        "consume_code once the clock reached the expiry",
    );
    check(
        count(store, &user, SMS_CODE).await,
        1,
        "count_codes once a code expired",
    );
    check(
        hash_of(store, &user, SMS_CODE, &never.lookup).await,
        Some(never.hash.clone()),
        "a code without an expiry stays live",
    );
    check(
        consume(store, &user, SMS_CODE, &never.lookup).await,
        true,
        "consume_code of a code without an expiry",
    );
    check(
        count(store, &user, SMS_CODE).await,
        0,
        "count_codes once every code is used or expired",
    );
}
