//! The [`FactorStore`] part of [`MemoryStore`]: credentials, code sets, failure streaks and the
//! users' generations with their change feed.
//!
//! Every call locks the durable mutex once and makes its whole check-and-update under it.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::MemoryStore;
use crate::{
    CodeSet, Credential, CredentialRef, CredentialStatus, Enrollment, FactorStore, Generation,
    GenerationChange, StoreError, StoreResult, async_trait,
};

/// Per-user factor state.
#[derive(Default)]
pub(super) struct Factors {
    /// user → kind → id → credential.
    credentials: HashMap<String, HashMap<String, HashMap<String, Credential>>>,
    /// kind → id → the users holding a credential of that kind and id: the index of
    /// `credentials` by (kind, id), kept in step with it by every change.
    holders: HashMap<String, HashMap<String, HashSet<String>>>,
    /// user → kind → lookup → code.
    codes: HashMap<String, HashMap<String, HashMap<String, StoredCode>>>,
    /// user → kind → consecutive failures.
    failures: HashMap<String, HashMap<String, u64>>,
    /// user → the user's generation and the feed position of its last move.
    generations: HashMap<String, (Generation, u64)>,
    /// feed position → the user whose generation moved there: each user once, at the position of
    /// the last move (only the latest generation of a user matters).
    feed: BTreeMap<u64, String>,
    /// The last feed position handed out (0: none yet).
    last_seq: u64,
}

/// A single-use code as kept under its lookup digest.
struct StoredCode {
    hash: String,
    /// Live while strictly after now, if set.
    expires_at: Option<u64>,
}

impl StoredCode {
    fn live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

/// Removes `outer[key]` if it holds an empty map, so deleted users leave nothing behind.
fn drop_if_empty<K, V>(outer: &mut HashMap<String, HashMap<K, V>>, key: &str) {
    if outer.get(key).is_some_and(HashMap::is_empty) {
        outer.remove(key);
    }
}

impl Factors {
    fn credential(&self, key: CredentialRef<'_>) -> Option<&Credential> {
        self.credentials.get(key.user)?.get(key.kind)?.get(key.id)
    }

    fn credential_mut(&mut self, key: CredentialRef<'_>) -> Option<&mut Credential> {
        self.credentials
            .get_mut(key.user)?
            .get_mut(key.kind)?
            .get_mut(key.id)
    }

    /// The users holding a credential of `kind` with this `id`.
    fn holders(&self, kind: &str, id: &str) -> Option<&HashSet<String>> {
        self.holders.get(kind)?.get(id)
    }

    fn add_holder(&mut self, kind: &str, id: &str, user: &str) {
        self.holders
            .entry(kind.to_owned())
            .or_default()
            .entry(id.to_owned())
            .or_default()
            .insert(user.to_owned());
    }

    fn remove_holder(&mut self, kind: &str, id: &str, user: &str) {
        let Some(ids) = self.holders.get_mut(kind) else {
            return;
        };
        if let Some(users) = ids.get_mut(id) {
            users.remove(user);
            if users.is_empty() {
                ids.remove(id);
            }
        }
        drop_if_empty(&mut self.holders, kind);
    }

    /// The oldest credential of `kind` with this `id`, whoever's it is (ties by user).
    fn credential_by_id(&self, kind: &str, id: &str) -> Option<&Credential> {
        self.holders(kind, id)?
            .iter()
            .filter_map(|user| {
                self.credential(CredentialRef {
                    user: user.as_str(),
                    kind,
                    id,
                })
            })
            .min_by(|a, b| (a.created_at, &a.user).cmp(&(b.created_at, &b.user)))
    }

    fn put_pending(&mut self, credential: Credential, rule: Enrollment) -> bool {
        let refused = match rule {
            // An active credential of the kind and the same generation (a stale one does not hold
            // the place), or any of a newer generation: a write from before a reset never
            // replaces what was enrolled after it.
            Enrollment::OnePerUser => self
                .credentials
                .get(&credential.user)
                .and_then(|kinds| kinds.get(&credential.kind))
                .is_some_and(|of_kind| {
                    of_kind.values().any(|stored| {
                        (stored.status == CredentialStatus::Active
                            && stored.generation == credential.generation)
                            || stored.generation > credential.generation
                    })
                }),
            // Any user's credential of the kind with this id, the caller's included.
            Enrollment::Many => self
                .holders(&credential.kind, &credential.id)
                .is_some_and(|users| !users.is_empty()),
        };
        if refused {
            return false;
        }
        if rule == Enrollment::OnePerUser {
            // Nothing active of this generation and nothing newer (checked above): every
            // credential of the kind is replaced (pending ones, and those of an older
            // generation, active or not).
            let replaced: Vec<String> = self
                .credentials
                .get_mut(&credential.user)
                .and_then(|kinds| kinds.remove(&credential.kind))
                .map(|of_kind| of_kind.into_keys().collect())
                .unwrap_or_default();
            for id in &replaced {
                self.remove_holder(&credential.kind, id, &credential.user);
            }
        }
        self.add_holder(&credential.kind, &credential.id, &credential.user);
        let of_kind = self
            .credentials
            .entry(credential.user.clone())
            .or_default()
            .entry(credential.kind.clone())
            .or_default();
        of_kind.insert(
            credential.id.clone(),
            Credential {
                status: CredentialStatus::Pending,
                ..credential
            },
        );
        true
    }

    fn activate(&mut self, key: CredentialRef<'_>, counter: u64, codes: Option<CodeSet>) -> bool {
        match self.credential_mut(key) {
            Some(credential) if credential.status == CredentialStatus::Pending => {
                credential.status = CredentialStatus::Active;
                credential.counter = counter;
            }
            _ => return false,
        }
        if let Some(set) = codes {
            self.replace_codes(key.user, set);
        }
        true
    }

    fn remove_credential(&mut self, key: CredentialRef<'_>) -> bool {
        let Some(kinds) = self.credentials.get_mut(key.user) else {
            return false;
        };
        let Some(of_kind) = kinds.get_mut(key.kind) else {
            return false;
        };
        let removed = of_kind.remove(key.id).is_some();
        drop_if_empty(kinds, key.kind);
        drop_if_empty(&mut self.credentials, key.user);
        if removed {
            self.remove_holder(key.kind, key.id, key.user);
        }
        removed
    }

    fn replace_codes(&mut self, user: &str, set: CodeSet) {
        let codes: HashMap<String, StoredCode> = set
            .codes
            .into_iter()
            .map(|code| {
                let stored = StoredCode {
                    hash: code.hash,
                    expires_at: code.expires_at,
                };
                (code.lookup, stored)
            })
            .collect();
        if codes.is_empty() {
            if let Some(kinds) = self.codes.get_mut(user) {
                kinds.remove(&set.kind);
            }
            drop_if_empty(&mut self.codes, user);
        } else {
            self.codes
                .entry(user.to_owned())
                .or_default()
                .insert(set.kind, codes);
        }
    }

    fn codes_of(&self, user: &str, kind: &str) -> Option<&HashMap<String, StoredCode>> {
        self.codes.get(user)?.get(kind)
    }

    /// Removes the code, live or expired; `true` if it was live.
    fn consume_code(&mut self, user: &str, kind: &str, lookup: &str, now: u64) -> bool {
        let Some(kinds) = self.codes.get_mut(user) else {
            return false;
        };
        let Some(codes) = kinds.get_mut(kind) else {
            return false;
        };
        let consumed = codes.remove(lookup).is_some_and(|code| code.live(now));
        drop_if_empty(kinds, kind);
        drop_if_empty(&mut self.codes, user);
        consumed
    }

    fn record_failure(&mut self, user: &str, kind: &str) -> u64 {
        let streak = self
            .failures
            .entry(user.to_owned())
            .or_default()
            .entry(kind.to_owned())
            .or_insert(0);
        *streak = streak.saturating_add(1);
        *streak
    }

    fn clear_failures(&mut self, user: &str, kind: &str) {
        if let Some(kinds) = self.failures.get_mut(user) {
            kinds.remove(kind);
        }
        drop_if_empty(&mut self.failures, user);
    }

    fn generation(&self, user: &str) -> Generation {
        self.generations
            .get(user)
            .map_or_else(Generation::default, |(generation, _)| *generation)
    }

    /// Moves the user's generation forward and to the end of the feed; `None`, changing nothing,
    /// if the generation or the feed position cannot move any further.
    fn advance_generation(&mut self, user: &str, at: u64) -> Option<Generation> {
        let seq = self.last_seq.checked_add(1)?;
        let (current, last_seq) = self
            .generations
            .get(user)
            .map_or((Generation::default(), None), |(generation, seq)| {
                (*generation, Some(*seq))
            });
        let advanced = Generation {
            value: current.value.checked_add(1)?,
            changed_at: Some(at),
        };
        if let Some(last_seq) = last_seq {
            self.feed.remove(&last_seq);
        }
        self.feed.insert(seq, user.to_owned());
        self.generations.insert(user.to_owned(), (advanced, seq));
        self.last_seq = seq;
        Some(advanced)
    }

    /// The feed after position `after`, oldest first, at most `limit` changes.
    fn generation_changes(&self, after: u64, limit: usize) -> Vec<GenerationChange> {
        let Some(from) = after.checked_add(1) else {
            return Vec::new();
        };
        self.feed
            .range(from..)
            .take(limit)
            .filter_map(|(seq, user)| {
                let (generation, _) = self.generations.get(user)?;
                Some(GenerationChange {
                    seq: *seq,
                    user: user.clone(),
                    generation: *generation,
                })
            })
            .collect()
    }

    /// Everything of the user but the generation.
    fn delete_user(&mut self, user: &str) {
        if let Some(kinds) = self.credentials.remove(user) {
            for (kind, of_kind) in kinds {
                for id in of_kind.keys() {
                    self.remove_holder(&kind, id, user);
                }
            }
        }
        self.codes.remove(user);
        self.failures.remove(user);
    }
}

#[async_trait]
impl FactorStore for MemoryStore {
    async fn put_pending(&self, credential: Credential, rule: Enrollment) -> StoreResult<bool> {
        Ok(self.durable().factors.put_pending(credential, rule))
    }

    async fn activate(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        codes: Option<CodeSet>,
    ) -> StoreResult<bool> {
        Ok(self.durable().factors.activate(key, counter, codes))
    }

    async fn credential(&self, key: CredentialRef<'_>) -> StoreResult<Option<Credential>> {
        Ok(self.durable().factors.credential(key).cloned())
    }

    async fn credentials(&self, user: &str) -> StoreResult<Vec<Credential>> {
        let mut credentials: Vec<Credential> = self
            .durable()
            .factors
            .credentials
            .get(user)
            .into_iter()
            .flat_map(HashMap::values)
            .flat_map(HashMap::values)
            .cloned()
            .collect();
        credentials.sort_unstable_by(|a, b| {
            (a.created_at, &a.kind, &a.id).cmp(&(b.created_at, &b.kind, &b.id))
        });
        Ok(credentials)
    }

    async fn credentials_of_kind(&self, kind: &str) -> StoreResult<Vec<Credential>> {
        let mut credentials: Vec<Credential> = self
            .durable()
            .factors
            .credentials
            .values()
            .filter_map(|kinds| kinds.get(kind))
            .flat_map(HashMap::values)
            .cloned()
            .collect();
        credentials.sort_unstable_by(|a, b| {
            (&a.user, a.created_at, &a.id).cmp(&(&b.user, b.created_at, &b.id))
        });
        Ok(credentials)
    }

    async fn credential_by_id(&self, kind: &str, id: &str) -> StoreResult<Option<Credential>> {
        Ok(self.durable().factors.credential_by_id(kind, id).cloned())
    }

    async fn advance_counter(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        payload: Option<&str>,
        used_at: u64,
    ) -> StoreResult<bool> {
        let mut durable = self.durable();
        match durable.factors.credential_mut(key) {
            Some(credential)
                if credential.status == CredentialStatus::Active
                    && counter > credential.counter =>
            {
                credential.counter = counter;
                credential.last_used_at = Some(used_at);
                if let Some(payload) = payload {
                    payload.clone_into(&mut credential.payload);
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn replace_payload(
        &self,
        key: CredentialRef<'_>,
        old: &str,
        new: &str,
        used_at: Option<u64>,
    ) -> StoreResult<bool> {
        let mut durable = self.durable();
        match durable.factors.credential_mut(key) {
            Some(credential) if credential.payload == old => {
                new.clone_into(&mut credential.payload);
                if let Some(used_at) = used_at {
                    credential.last_used_at = Some(used_at);
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn disable_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool> {
        let mut durable = self.durable();
        match durable.factors.credential_mut(key) {
            Some(credential) if credential.status == CredentialStatus::Active => {
                credential.status = CredentialStatus::Disabled;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_label(&self, key: CredentialRef<'_>, label: Option<&str>) -> StoreResult<bool> {
        let mut durable = self.durable();
        match durable.factors.credential_mut(key) {
            Some(credential) => {
                credential.label = label.map(str::to_owned);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool> {
        Ok(self.durable().factors.remove_credential(key))
    }

    async fn replace_codes(&self, user: &str, set: CodeSet) -> StoreResult<()> {
        self.durable().factors.replace_codes(user, set);
        Ok(())
    }

    async fn code_hash(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<Option<String>> {
        let now = self.now();
        Ok(self
            .durable()
            .factors
            .codes_of(user, kind)
            .and_then(|codes| codes.get(lookup))
            .filter(|code| code.live(now))
            .map(|code| code.hash.clone()))
    }

    async fn consume_code(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<bool> {
        let now = self.now();
        Ok(self.durable().factors.consume_code(user, kind, lookup, now))
    }

    async fn count_codes(&self, user: &str, kind: &str) -> StoreResult<usize> {
        let now = self.now();
        Ok(self
            .durable()
            .factors
            .codes_of(user, kind)
            .map_or(0, |codes| {
                codes.values().filter(|code| code.live(now)).count()
            }))
    }

    async fn record_failure(&self, user: &str, kind: &str) -> StoreResult<u64> {
        Ok(self.durable().factors.record_failure(user, kind))
    }

    async fn failures(&self, user: &str, kind: &str) -> StoreResult<u64> {
        Ok(self
            .durable()
            .factors
            .failures
            .get(user)
            .and_then(|kinds| kinds.get(kind))
            .copied()
            .unwrap_or(0))
    }

    async fn clear_failures(&self, user: &str, kind: &str) -> StoreResult<()> {
        self.durable().factors.clear_failures(user, kind);
        Ok(())
    }

    async fn generation(&self, user: &str) -> StoreResult<Generation> {
        Ok(self.durable().factors.generation(user))
    }

    async fn advance_generation(&self, user: &str, at: u64) -> StoreResult<Generation> {
        self.durable()
            .factors
            .advance_generation(user, at)
            .ok_or_else(|| StoreError::Corrupt("the generation cannot move any further".to_owned()))
    }

    async fn generation_changes(
        &self,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<GenerationChange>> {
        Ok(self.durable().factors.generation_changes(after, limit))
    }

    async fn delete_user_factors(&self, user: &str) -> StoreResult<()> {
        self.durable().factors.delete_user(user);
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        // The one lock every durable call takes: it can be taken (a poisoned one is recovered).
        drop(self.durable());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CodeHash;

    fn credential(user: &str, kind: &str, id: &str) -> Credential {
        Credential {
            user: user.to_owned(),
            kind: kind.to_owned(),
            id: id.to_owned(),
            status: CredentialStatus::Active,
            label: None,
            payload: "p".to_owned(),
            counter: 0,
            created_at: 1,
            last_used_at: None,
            generation: 0,
        }
    }

    #[tokio::test]
    async fn put_pending_stores_a_pending_credential() {
        let store = MemoryStore::new();
        let given = credential("u", "totp", "a");
        assert!(
            store
                .put_pending(given.clone(), Enrollment::OnePerUser)
                .await
                .unwrap()
        );
        let stored = store.credential(given.key()).await.unwrap().unwrap();
        assert_eq!(stored.status, CredentialStatus::Pending);
    }

    #[test]
    fn deleting_the_last_entries_leaves_no_empty_maps() {
        let mut factors = Factors::default();
        let given = credential("u", "totp", "a");
        assert!(factors.put_pending(given.clone(), Enrollment::Many));
        assert!(factors.remove_credential(given.key()));
        factors.replace_codes(
            "u",
            CodeSet {
                kind: "backup_code".to_owned(),
                codes: vec![CodeHash {
                    lookup: "l".to_owned(),
                    hash: "h".to_owned(),
                    expires_at: None,
                }],
            },
        );
        assert!(factors.consume_code("u", "backup_code", "l", 0));
        factors.record_failure("u", "totp");
        factors.clear_failures("u", "totp");
        assert!(factors.credentials.is_empty());
        assert!(factors.holders.is_empty());
        assert!(factors.codes.is_empty());
        assert!(factors.failures.is_empty());
    }

    #[test]
    fn the_index_by_id_follows_every_change() {
        let mut factors = Factors::default();
        assert!(factors.put_pending(credential("u", "totp", "a"), Enrollment::OnePerUser));
        assert!(factors.put_pending(credential("u", "totp", "b"), Enrollment::OnePerUser));
        assert!(factors.credential_by_id("totp", "a").is_none(), "replaced");
        assert!(factors.put_pending(credential("v", "webauthn", "k"), Enrollment::Many));
        assert!(!factors.put_pending(credential("u", "webauthn", "k"), Enrollment::Many));
        assert!(factors.remove_credential(credential("v", "webauthn", "k").key()));
        assert!(factors.put_pending(credential("u", "webauthn", "k"), Enrollment::Many));
        factors.delete_user("u");
        assert!(factors.holders.is_empty());
        assert!(factors.credentials.is_empty());
    }

    #[test]
    fn the_feed_holds_each_user_once_at_the_last_move() {
        let mut factors = Factors::default();
        for (user, at) in [("a", 10), ("b", 11), ("a", 12)] {
            assert!(factors.advance_generation(user, at).is_some());
        }
        let feed: Vec<(u64, String, u64)> = factors
            .generation_changes(0, usize::MAX)
            .into_iter()
            .map(|change| (change.seq, change.user, change.generation.value))
            .collect();
        assert_eq!(feed, [(2, "b".to_owned(), 1), (3, "a".to_owned(), 2)]);
        assert_eq!(factors.feed.len(), 2, "the first move of a is gone");
        assert!(factors.generation_changes(u64::MAX, 10).is_empty());
        factors.delete_user("a");
        assert_eq!(
            factors.generation("a"),
            Generation {
                value: 2,
                changed_at: Some(12)
            }
        );
    }

    #[test]
    fn a_generation_at_its_end_is_refused_changing_nothing() {
        let mut factors = Factors::default();
        assert!(factors.advance_generation("a", 1).is_some());
        factors.generations.insert(
            "a".to_owned(),
            (
                Generation {
                    value: u64::MAX,
                    changed_at: Some(1),
                },
                1,
            ),
        );
        assert_eq!(factors.advance_generation("a", 2), None);
        assert_eq!(factors.generation("a").value, u64::MAX);
        assert_eq!(factors.last_seq, 1);
    }

    #[test]
    fn consuming_an_expired_code_removes_it_and_fails() {
        let mut factors = Factors::default();
        factors.replace_codes(
            "u",
            CodeSet {
                kind: "sms".to_owned(),
                codes: vec![CodeHash {
                    lookup: "l".to_owned(),
                    hash: String::new(),
                    expires_at: Some(100),
                }],
            },
        );
        assert!(!factors.consume_code("u", "sms", "l", 100));
        assert!(factors.codes.is_empty());
    }
}
