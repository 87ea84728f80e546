//! Enrollment: `put_pending` under both rules (`Many` ids unique across users), and `activate`
//! with and without a code set.

use std::sync::Arc;

use super::{
    BACKUP, PASSKEY, PHONE, SMS_CODE, T0, TOTP, activated, code_set, count, credential, hash,
    hash_of, ignoring_last_use, listed, lookup, pairs, stored,
};
use crate::conformance::{Ids, check, expect};
use crate::{Credential, CredentialStatus, Enrollment, FactorStore};

/// `credential` made in `generation`.
fn of_generation(credential: Credential, generation: u64) -> Credential {
    Credential {
        generation,
        ..credential
    }
}

/// `put_pending` of a copy of `credential`.
async fn put<S: FactorStore>(store: &Arc<S>, credential: &Credential, rule: Enrollment) -> bool {
    expect(
        store.put_pending(credential.clone(), rule).await,
        "put_pending",
    )
}

/// `credential` as given to `put_pending` by a careless caller: marked active.
fn marked_active(credential: &Credential) -> Credential {
    Credential {
        status: CredentialStatus::Active,
        counter: 9,
        ..credential.clone()
    }
}

pub(super) async fn one_per_user<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("one-per-user");
    let other = ids.user("one-per-user-other");
    let rule = Enrollment::OnePerUser;
    let app1 = credential(&user, TOTP, "app-1", T0);
    let app2 = credential(&user, TOTP, "app-2", T0 + 1);
    let app3 = credential(&user, TOTP, "app-3", T0 + 2);
    let phone1 = credential(&user, PHONE, "phone-1", T0);
    let others = credential(&other, TOTP, "app-1", T0);

    check(
        put(store, &marked_active(&app1), rule).await,
        true,
        "put_pending (one per user) of a new user",
    );
    check(
        stored(store, app1.key()).await,
        Some(Credential {
            counter: 9,
            ..app1.clone()
        }),
        "put_pending stores the credential as given, but pending whatever status was passed",
    );
    check(
        put(store, &others, rule).await,
        true,
        "put_pending (one per user) of the same kind and id for another user",
    );
    check(
        put(store, &phone1, rule).await,
        true,
        "put_pending (one per user) of another kind",
    );
    check(
        put(store, &app2, rule).await,
        true,
        "put_pending (one per user) over a pending credential of the kind",
    );
    check(
        stored(store, app1.key()).await,
        None,
        "the earlier pending credential of the kind is replaced",
    );
    check(
        listed(store, &user).await,
        pairs(&[(PHONE, "phone-1"), (TOTP, "app-2")]),
        "the credentials after replacing a pending one (another kind's pending one is kept)",
    );
    check(
        stored(store, others.key()).await,
        Some(others.clone()),
        "replacing a pending credential leaves another user's alone",
    );

    // Once one is active, the rule refuses another of the kind, whatever its id.
    check(
        put(store, &app3, rule).await,
        true,
        "put_pending (one per user) over a pending credential again",
    );
    check(
        expect(store.activate(app3.key(), 5, None).await, "activate"),
        true,
        "activate",
    );
    let app4 = credential(&user, TOTP, "app-4", T0 + 3);
    check(
        put(store, &app4, rule).await,
        false,
        "put_pending (one per user) while an active credential of the kind exists",
    );
    check(
        stored(store, app4.key()).await,
        None,
        "a refused put_pending stores nothing",
    );
    let app3_again = Credential {
        payload: "another payload".to_owned(),
        ..app3.clone()
    };
    check(
        put(store, &app3_again, rule).await,
        false,
        "put_pending (one per user) of the active credential's own id",
    );
    check(
        ignoring_last_use(stored(store, app3.key()).await),
        Some(activated(&app3, 5)),
        "the active credential after refused put_pending calls",
    );

    // Other kinds, and other users, are not held back by the active credential.
    let phone2 = credential(&user, PHONE, "phone-2", T0 + 4);
    check(
        put(store, &phone2, rule).await,
        true,
        "put_pending (one per user) of another kind while one kind is active",
    );
    check(
        listed(store, &user).await,
        pairs(&[(TOTP, "app-3"), (PHONE, "phone-2")]),
        "the credentials after the refusals and another kind's replacement",
    );
    let others2 = credential(&other, TOTP, "app-5", T0 + 5);
    check(
        put(store, &others2, rule).await,
        true,
        "put_pending (one per user) for another user while the user's is active",
    );
    check(
        listed(store, &other).await,
        pairs(&[(TOTP, "app-5")]),
        "another user's pending credential replaced",
    );
}

/// One per user looks at the generation: only an active credential of the kind made in the same
/// generation as the new one holds the place; every other one of the kind of the same or an older
/// generation is replaced (one of a newer generation refuses the call: see
/// [`one_per_user_never_replaces_a_newer_generation`]).
pub(super) async fn one_per_user_generations<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("one-per-user-generation");
    let other = ids.user("one-per-user-generation-other");
    let rule = Enrollment::OnePerUser;
    let stale = of_generation(credential(&user, TOTP, "app-0", T0), 0);
    let others = of_generation(credential(&other, TOTP, "app-0", T0), 0);
    let phone = of_generation(credential(&user, PHONE, "phone", T0), 0);
    for (given, what) in [(&stale, "the user's"), (&others, "another user's")] {
        check(
            put(store, given, rule).await,
            true,
            "put_pending (one per user)",
        );
        check(
            expect(store.activate(given.key(), 1, None).await, "activate"),
            true,
            &format!("activate of {what} credential in generation 0"),
        );
    }
    check(
        put(store, &phone, rule).await,
        true,
        "put_pending (one per user)",
    );

    let same = of_generation(credential(&user, TOTP, "app-same", T0 + 1), 0);
    check(
        put(store, &same, rule).await,
        false,
        "put_pending (one per user) in the generation of the active credential of the kind",
    );
    check(
        stored(store, same.key()).await,
        None,
        "a refused put_pending stores nothing",
    );

    // The user was reset: the active credential of generation 0 is stale.
    let fresh = of_generation(credential(&user, TOTP, "app-1", T0 + 2), 1);
    check(
        put(store, &fresh, rule).await,
        true,
        "put_pending (one per user) in a later generation than the active credential of the kind",
    );
    check(
        stored(store, stale.key()).await,
        None,
        "the stale active credential of the kind is replaced",
    );
    check(
        stored(store, fresh.key()).await,
        Some(fresh.clone()),
        "the new credential, pending, of its generation",
    );
    check(
        listed(store, &user).await,
        pairs(&[(PHONE, "phone"), (TOTP, "app-1")]),
        "the credentials after replacing a stale active one (another kind's kept)",
    );
    check(
        ignoring_last_use(stored(store, others.key()).await),
        Some(activated(&others, 1)),
        "replacing a stale credential leaves another user's active credential alone",
    );

    // Active in the new generation, it holds the place again.
    check(
        expect(store.activate(fresh.key(), 2, None).await, "activate"),
        true,
        "activate",
    );
    let again = of_generation(credential(&user, TOTP, "app-again", T0 + 3), 1);
    check(
        put(store, &again, rule).await,
        false,
        "put_pending (one per user) in the generation of the new active credential",
    );
    check(
        ignoring_last_use(stored(store, fresh.key()).await),
        Some(activated(&fresh, 2)),
        "the active credential after a refused put_pending",
    );

    // A pending credential of another generation is replaced as well.
    let later = of_generation(credential(&user, TOTP, "app-2", T0 + 4), 2);
    check(
        put(store, &later, rule).await,
        true,
        "put_pending (one per user) in generation 2",
    );
    let latest = of_generation(credential(&user, TOTP, "app-3", T0 + 5), 3);
    check(
        put(store, &latest, rule).await,
        true,
        "put_pending (one per user) over a pending credential of another generation",
    );
    check(
        listed(store, &user).await,
        pairs(&[(PHONE, "phone"), (TOTP, "app-3")]),
        "one credential of the kind is left: the latest",
    );
}

/// A write from before a reset never replaces what was enrolled after it: one per user refuses a
/// credential older than one of the kind the user holds (active, pending or disabled), changing
/// nothing; a credential of the same or a newer generation still replaces what is not active in
/// its own generation.
pub(super) async fn one_per_user_never_replaces_a_newer_generation<S: FactorStore>(
    store: &Arc<S>,
    ids: &Ids,
) {
    let user = ids.user("one-per-user-newer");
    let rule = Enrollment::OnePerUser;
    let fresh = of_generation(credential(&user, TOTP, "app-fresh", T0 + 1), 2);
    check(
        put(store, &fresh, rule).await,
        true,
        "put_pending (one per user) in generation 2",
    );

    // Pending in generation 2: a stale write of generation 1 leaves it alone.
    let stale = of_generation(credential(&user, TOTP, "app-stale", T0 + 2), 1);
    check(
        put(store, &stale, rule).await,
        false,
        "put_pending (one per user) of generation 1 over a pending credential of generation 2",
    );
    check(
        stored(store, fresh.key()).await,
        Some(fresh.clone()),
        "a stale put_pending leaves the newer pending credential as it was",
    );
    check(
        stored(store, stale.key()).await,
        None,
        "a stale put_pending stores nothing",
    );

    // Active in generation 2: the stale write is refused, whatever its id.
    check(
        expect(store.activate(fresh.key(), 4, None).await, "activate"),
        true,
        "activate",
    );
    let stale_same_id = of_generation(credential(&user, TOTP, "app-fresh", T0 + 3), 0);
    for (given, what) in [
        (&stale, "another id"),
        (&stale_same_id, "the active one's id"),
    ] {
        check(
            put(store, given, rule).await,
            false,
            &format!(
                "put_pending (one per user) of an older generation over an active credential of \
                 a newer one, with {what}"
            ),
        );
    }
    check(
        ignoring_last_use(stored(store, fresh.key()).await),
        Some(activated(&fresh, 4)),
        "the newer active credential after stale put_pending calls",
    );

    // Disabled in generation 2: still newer, still not replaced by a stale write.
    check(
        expect(
            store.disable_credential(fresh.key()).await,
            "disable_credential",
        ),
        true,
        "disable_credential",
    );
    check(
        put(store, &stale, rule).await,
        false,
        "put_pending (one per user) of an older generation over a disabled credential of a newer one",
    );
    check(
        stored(store, fresh.key()).await.map(|stored| stored.status),
        Some(CredentialStatus::Disabled),
        "the newer disabled credential after a stale put_pending",
    );

    // Other kinds are not held back by the newer credential of this one.
    let phone = of_generation(credential(&user, PHONE, "phone", T0 + 4), 1);
    check(
        put(store, &phone, rule).await,
        true,
        "put_pending (one per user) of another kind in an older generation",
    );

    // The same generation replaces the disabled credential; a newer one replaces it in turn.
    let again = of_generation(credential(&user, TOTP, "app-again", T0 + 5), 2);
    check(
        put(store, &again, rule).await,
        true,
        "put_pending (one per user) in the generation of a disabled credential of the kind",
    );
    let newest = of_generation(credential(&user, TOTP, "app-newest", T0 + 6), 3);
    check(
        put(store, &newest, rule).await,
        true,
        "put_pending (one per user) in a newer generation",
    );
    check(
        listed(store, &user).await,
        pairs(&[(PHONE, "phone"), (TOTP, "app-newest")]),
        "the credentials after the stale writes were refused and newer ones replaced",
    );
    check(
        put(store, &again, rule).await,
        false,
        "put_pending (one per user) of generation 2 over a pending credential of generation 3",
    );
}

pub(super) async fn many<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("many");
    let rule = Enrollment::Many;
    // Ids of a kind enrolled with `Many` are unique across users: fresh ones for each run.
    let [id1, id2, id3] = ["key-1", "key-2", "key-3"].map(|name| ids.id("many", name));
    let key1 = credential(&user, PASSKEY, &id1, T0);
    let key2 = credential(&user, PASSKEY, &id2, T0 + 1);
    let key3 = credential(&user, PASSKEY, &id3, T0 + 2);

    check(
        put(store, &marked_active(&key1), rule).await,
        true,
        "put_pending (many) of a new user",
    );
    check(
        stored(store, key1.key()).await.map(|stored| stored.status),
        Some(CredentialStatus::Pending),
        "put_pending (many) stores the credential pending whatever status was passed",
    );
    check(
        put(store, &key2, rule).await,
        true,
        "put_pending (many) of a second id",
    );
    check(
        expect(store.activate(key1.key(), 1, None).await, "activate"),
        true,
        "activate",
    );
    check(
        put(store, &key3, rule).await,
        true,
        "put_pending (many) while a credential of the kind is active",
    );
    check(
        listed(store, &user).await,
        pairs(&[(PASSKEY, id1.as_str()), (PASSKEY, &id2), (PASSKEY, &id3)]),
        "put_pending (many) replaces nothing",
    );

    // A duplicate id is refused, pending or active, changing nothing.
    let duplicate = |of: &Credential| Credential {
        payload: "duplicate".to_owned(),
        created_at: T0 + 10,
        ..of.clone()
    };
    check(
        put(store, &duplicate(&key1), rule).await,
        false,
        "put_pending (many) of the id of an active credential",
    );
    check(
        put(store, &duplicate(&key2), rule).await,
        false,
        "put_pending (many) of the id of a pending credential",
    );
    check(
        ignoring_last_use(stored(store, key1.key()).await),
        Some(activated(&key1, 1)),
        "the active credential after a refused duplicate",
    );
    check(
        stored(store, key2.key()).await,
        Some(key2.clone()),
        "the pending credential after a refused duplicate",
    );

    // Ids are unique per kind only.
    let other_kind = credential(&user, PHONE, &id1, T0 + 3);
    check(
        put(store, &other_kind, rule).await,
        true,
        "put_pending (many) of the same id under another kind",
    );
    check(
        stored(store, other_kind.key()).await,
        Some(other_kind.clone()),
        "the credential of the same id under another kind",
    );
}

/// `Many` keeps an id with one user of the kind, whoever stored it; `OnePerUser` lets every user
/// hold the same id.
pub(super) async fn across_users<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let first = ids.user("across-users-1");
    let second = ids.user("across-users-2");
    let id = ids.id("across-users", "key");
    let firsts = credential(&first, PASSKEY, &id, T0);
    let seconds = Credential {
        payload: "the second user's".to_owned(),
        ..credential(&second, PASSKEY, &id, T0 + 1)
    };

    check(
        put(store, &firsts, Enrollment::Many).await,
        true,
        "put_pending (many) of a new id",
    );
    check(
        put(store, &seconds, Enrollment::Many).await,
        false,
        "put_pending (many) of an id another user holds pending",
    );
    check(
        listed(store, &second).await,
        Vec::new(),
        "a put_pending (many) refused for another user's id stores nothing",
    );
    check(
        stored(store, firsts.key()).await,
        Some(firsts.clone()),
        "the holder's credential after another user's refused put_pending (many)",
    );
    check(
        expect(store.activate(firsts.key(), 1, None).await, "activate"),
        true,
        "activate",
    );
    check(
        put(store, &seconds, Enrollment::Many).await,
        false,
        "put_pending (many) of an id another user holds active",
    );
    check(
        ignoring_last_use(stored(store, firsts.key()).await),
        Some(activated(&firsts, 1)),
        "the holder's active credential after another user's refused put_pending (many)",
    );

    // The id is held per kind: under another kind it is free.
    let other_kind = credential(&second, PHONE, &id, T0 + 2);
    check(
        put(store, &other_kind, Enrollment::Many).await,
        true,
        "put_pending (many) of another user's id under another kind",
    );

    // Deleted, the id is free again.
    check(
        expect(
            store.delete_credential(firsts.key()).await,
            "delete_credential",
        ),
        true,
        "delete_credential",
    );
    check(
        put(store, &seconds, Enrollment::Many).await,
        true,
        "put_pending (many) of an id once its holder's credential is deleted",
    );
    check(
        listed(store, &second).await,
        pairs(&[(PASSKEY, id.as_str()), (PHONE, &id)]),
        "the second user's credentials, the freed id among them",
    );

    // Any credential of the kind with the id refuses `Many`, whatever rule stored it; `OnePerUser`
    // does not look at other users.
    let kind = ids.kind("across-users-mixed");
    let by_one = credential(&ids.user("across-users-3"), &kind, "one", T0);
    check(
        put(store, &by_one, Enrollment::OnePerUser).await,
        true,
        "put_pending (one per user)",
    );
    let refused = credential(&ids.user("across-users-4"), &kind, "one", T0);
    check(
        put(store, &refused, Enrollment::Many).await,
        false,
        "put_pending (many) of an id another user holds, stored under one per user",
    );
    check(
        stored(store, refused.key()).await,
        None,
        "a put_pending (many) refused for an id held under one per user stores nothing",
    );
    let by_many = credential(&ids.user("across-users-5"), &kind, "many", T0);
    check(
        put(store, &by_many, Enrollment::Many).await,
        true,
        "put_pending (many) of a new id",
    );
    let alongside = credential(&ids.user("across-users-6"), &kind, "many", T0);
    check(
        put(store, &alongside, Enrollment::OnePerUser).await,
        true,
        "put_pending (one per user) of an id another user holds: other users are not looked at",
    );

    // One per user: every user may hold the same id (TOTP's is `totp`), pending or active.
    let apps: Vec<Credential> = ["across-users-totp-1", "across-users-totp-2"]
        .into_iter()
        .map(|name| credential(&ids.user(name), TOTP, "totp", T0))
        .collect();
    for app in &apps {
        check(
            put(store, app, Enrollment::OnePerUser).await,
            true,
            "put_pending (one per user) of the id every user of the kind has",
        );
    }
    check(
        expect(store.activate(apps[0].key(), 4, None).await, "activate"),
        true,
        "activate",
    );
    check(
        ignoring_last_use(stored(store, apps[0].key()).await),
        Some(activated(&apps[0], 4)),
        "one user's credential of a shared id, activated",
    );
    check(
        stored(store, apps[1].key()).await,
        Some(apps[1].clone()),
        "another user's pending credential of the same shared id",
    );
}

pub(super) async fn activation<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("activation");
    let app = Credential {
        counter: 3,
        ..credential(&user, TOTP, "app", T0)
    };

    check(
        expect(store.activate(app.key(), 42, None).await, "activate"),
        false,
        "activate of an absent credential",
    );
    check(
        stored(store, app.key()).await,
        None,
        "a refused activate creates nothing",
    );
    expect(
        store.put_pending(app.clone(), Enrollment::OnePerUser).await,
        "put_pending",
    );
    let wrong_kind = credential(&user, PASSKEY, "app", T0);
    let wrong_user = credential(&ids.user("activation-other"), TOTP, "app", T0);
    for (absent, what) in [(&wrong_kind, "another kind"), (&wrong_user, "another user")] {
        check(
            expect(store.activate(absent.key(), 42, None).await, "activate"),
            false,
            &format!("activate of the same id under {what}"),
        );
    }
    check(
        stored(store, app.key()).await.map(|stored| stored.status),
        Some(CredentialStatus::Pending),
        "activate of another key leaves the pending credential pending",
    );
    check(
        expect(store.activate(app.key(), 42, None).await, "activate"),
        true,
        "activate of a pending credential",
    );
    check(
        ignoring_last_use(stored(store, app.key()).await),
        Some(activated(&app, 42)),
        "the activated credential: active, with the given counter, the rest as stored",
    );
    check(
        expect(store.activate(app.key(), 43, None).await, "activate"),
        false,
        "activate of an active credential",
    );
    check(
        stored(store, app.key()).await.map(|stored| stored.counter),
        Some(42),
        "a refused activate leaves the counter",
    );

    // Activation at counter 0 of a credential put with a higher one stores 0.
    let zero = Credential {
        counter: 7,
        ..credential(&user, PASSKEY, &ids.id("activation", "zero"), T0)
    };
    expect(
        store.put_pending(zero.clone(), Enrollment::Many).await,
        "put_pending",
    );
    check(
        expect(store.activate(zero.key(), 0, None).await, "activate"),
        true,
        "activate at counter 0",
    );
    check(
        stored(store, zero.key()).await.map(|stored| stored.counter),
        Some(0),
        "the counter given to activate replaces the stored one",
    );
}

/// Activation replaces a code set in the same step, only of its kind; a refused one writes none.
pub(super) async fn activation_codes<S: FactorStore>(store: &Arc<S>, ids: &Ids) {
    let user = ids.user("activation-codes");
    let other = ids.user("activation-codes-other");
    expect(
        store.replace_codes(&user, code_set(BACKUP, "old", 3)).await,
        "replace_codes",
    );
    expect(
        store
            .replace_codes(&user, code_set(SMS_CODE, "sms", 2))
            .await,
        "replace_codes",
    );
    expect(
        store
            .replace_codes(&other, code_set(BACKUP, "old", 4))
            .await,
        "replace_codes",
    );

    let app = credential(&user, TOTP, "app", T0);
    expect(
        store.put_pending(app.clone(), Enrollment::OnePerUser).await,
        "put_pending",
    );
    check(
        expect(
            store
                .activate(app.key(), 1, Some(code_set(BACKUP, "first", 10)))
                .await,
            "activate",
        ),
        true,
        "activate with a code set",
    );
    check(
        count(store, &user, BACKUP).await,
        10,
        "the codes stored by activate",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("first", 4)).await,
        Some(hash("first", 4)),
        "code_hash of a code stored by activate",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("old", 1)).await,
        None,
        "activate replaces the earlier codes of the kind",
    );
    check(
        count(store, &user, SMS_CODE).await,
        2,
        "activate leaves the user's codes of another kind",
    );
    check(
        count(store, &other, BACKUP).await,
        4,
        "activate leaves another user's codes of the kind",
    );

    // Without a code set, codes are untouched.
    let key = credential(&user, PASSKEY, &ids.id("activation-codes", "key"), T0);
    expect(
        store.put_pending(key.clone(), Enrollment::Many).await,
        "put_pending",
    );
    check(
        expect(store.activate(key.key(), 1, None).await, "activate"),
        true,
        "activate without a code set",
    );
    check(
        count(store, &user, BACKUP).await,
        10,
        "activate without a code set leaves the codes",
    );

    // A refused activation writes no code.
    check(
        expect(
            store
                .activate(app.key(), 2, Some(code_set(BACKUP, "second", 3)))
                .await,
            "activate",
        ),
        false,
        "activate of an active credential with a code set",
    );
    check(
        count(store, &user, BACKUP).await,
        10,
        "a refused activate leaves the codes",
    );
    check(
        hash_of(store, &user, BACKUP, &lookup("second", 0)).await,
        None,
        "a refused activate stores none of its codes",
    );
    let nobody = ids.user("activation-codes-nobody");
    check(
        expect(
            store
                .activate(
                    credential(&nobody, TOTP, "app", T0).key(),
                    1,
                    Some(code_set(BACKUP, "third", 3)),
                )
                .await,
            "activate",
        ),
        false,
        "activate of an absent credential with a code set",
    );
    check(
        count(store, &nobody, BACKUP).await,
        0,
        "activate of an absent credential stores none of its codes",
    );
}
