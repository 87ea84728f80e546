//! The [`GrantStore`] part of [`MemoryStore`]: registered clients and refresh-token families.

use std::collections::HashMap;

use super::MemoryStore;
use crate::{
    ClientRecord, GrantStore, RefreshFamily, Rotation, StoreError, StoreResult, async_trait,
};

/// Clients and families, with the index of every token hash a family ever held.
#[derive(Default)]
pub(super) struct Grants {
    clients: HashMap<String, ClientRecord>,
    families: HashMap<String, RefreshFamily>,
    /// token hash (current or earlier) → family id.
    tokens: HashMap<String, String>,
}

impl Grants {
    fn family_of(&self, token_hash: &str) -> Option<&RefreshFamily> {
        self.tokens
            .get(token_hash)
            .and_then(|id| self.families.get(id))
    }
}

fn is_live(family: &RefreshFamily, now: u64) -> bool {
    !family.revoked && family.expires_at > now
}

#[async_trait]
impl GrantStore for MemoryStore {
    async fn insert_client(&self, client: ClientRecord) -> StoreResult<bool> {
        let mut durable = self.durable();
        let clients = &mut durable.grants.clients;
        if clients.contains_key(&client.id) {
            return Ok(false);
        }
        clients.insert(client.id.clone(), client);
        Ok(true)
    }

    async fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>> {
        Ok(self.durable().grants.clients.get(id).cloned())
    }

    async fn clients(&self, limit: usize) -> StoreResult<Vec<ClientRecord>> {
        let mut clients: Vec<ClientRecord> =
            self.durable().grants.clients.values().cloned().collect();
        clients.sort_unstable_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        clients.truncate(limit);
        Ok(clients)
    }

    async fn revoke_client(&self, id: &str) -> StoreResult<bool> {
        let mut durable = self.durable();
        match durable.grants.clients.get_mut(id) {
            Some(client) if !client.revoked => {
                client.revoked = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn insert_family(&self, family: RefreshFamily) -> StoreResult<()> {
        let mut durable = self.durable();
        let grants = &mut durable.grants;
        if grants.families.contains_key(&family.id)
            || grants.tokens.contains_key(&family.token_hash)
        {
            return Err(StoreError::Unavailable(
                "a family with this id or token hash is already stored".to_owned(),
            ));
        }
        grants
            .tokens
            .insert(family.token_hash.clone(), family.id.clone());
        grants.families.insert(family.id.clone(), family);
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &str,
        replacement: &str,
    ) -> StoreResult<Rotation> {
        let now = self.now();
        let mut durable = self.durable();
        let grants = &mut durable.grants;
        let Some(id) = grants.tokens.get(presented).cloned() else {
            return Ok(Rotation::Unknown);
        };
        if grants.tokens.contains_key(replacement) {
            return Err(StoreError::Unavailable(
                "the replacement token hash is already stored".to_owned(),
            ));
        }
        let Some(family) = grants.families.get_mut(&id) else {
            return Ok(Rotation::Unknown);
        };
        if !is_live(family, now) {
            return Ok(Rotation::Revoked);
        }
        if family.token_hash != presented {
            family.revoked = true;
            return Ok(Rotation::Reused(family.clone()));
        }
        family.token_hash = replacement.to_owned();
        let rotated = family.clone();
        grants.tokens.insert(replacement.to_owned(), id);
        Ok(Rotation::Rotated(rotated))
    }

    async fn family_by_token(&self, token_hash: &str) -> StoreResult<Option<RefreshFamily>> {
        Ok(self.durable().grants.family_of(token_hash).cloned())
    }

    async fn revoke_family(&self, id: &str) -> StoreResult<bool> {
        let now = self.now();
        let mut durable = self.durable();
        match durable.grants.families.get_mut(id) {
            Some(family) if is_live(family, now) => {
                family.revoked = true;
                Ok(true)
            }
            Some(family) => {
                family.revoked = true;
                Ok(false)
            }
            None => Ok(false),
        }
    }

    async fn revoke_user_families(&self, user: &str) -> StoreResult<usize> {
        let now = self.now();
        let mut durable = self.durable();
        let mut live = 0;
        for family in durable.grants.families.values_mut() {
            if family.user == user {
                if is_live(family, now) {
                    live += 1;
                }
                family.revoked = true;
            }
        }
        Ok(live)
    }

    async fn families(&self, user: &str) -> StoreResult<Vec<RefreshFamily>> {
        let now = self.now();
        let mut families: Vec<RefreshFamily> = self
            .durable()
            .grants
            .families
            .values()
            .filter(|family| family.user == user && is_live(family, now))
            .cloned()
            .collect();
        families.sort_unstable_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(families)
    }
}
