//! The [`DeviceStore`] part of [`MemoryStore`]: remembered devices and their indexes.

use std::collections::{HashMap, HashSet};

use super::MemoryStore;
use crate::{DeviceRecord, DeviceStore, StoreError, StoreResult, async_trait};

/// Remembered devices, with the indexes their lookups need.
#[derive(Default)]
pub(super) struct Devices {
    /// id → device.
    by_id: HashMap<String, DeviceRecord>,
    /// token hash → id.
    by_token: HashMap<String, String>,
    /// user → ids.
    by_user: HashMap<String, HashSet<String>>,
}

impl Devices {
    fn insert(&mut self, device: DeviceRecord) {
        self.by_token
            .insert(device.token_hash.clone(), device.id.clone());
        self.by_user
            .entry(device.user.clone())
            .or_default()
            .insert(device.id.clone());
        self.by_id.insert(device.id.clone(), device);
    }

    fn remove(&mut self, id: &str) -> Option<DeviceRecord> {
        let device = self.by_id.remove(id)?;
        self.by_token.remove(&device.token_hash);
        if let Some(ids) = self.by_user.get_mut(&device.user) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_user.remove(&device.user);
            }
        }
        Some(device)
    }

    /// Removes every device of `user`, returning them.
    fn remove_user(&mut self, user: &str) -> Vec<DeviceRecord> {
        let ids = self.by_user.remove(user).unwrap_or_default();
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }

    /// The live devices of `user`.
    fn live_of(&self, user: &str, now: u64) -> impl Iterator<Item = &DeviceRecord> {
        self.by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .filter(move |device| device.expires_at > now)
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn insert_device(&self, device: DeviceRecord) -> StoreResult<()> {
        let now = self.now();
        let mut durable = self.durable();
        let devices = &mut durable.devices;
        // The user's expired devices go first (an expired device is absent anyway).
        let expired: Vec<String> = devices
            .by_user
            .get(&device.user)
            .into_iter()
            .flatten()
            .filter(|id| devices.by_id.get(*id).is_some_and(|d| d.expires_at <= now))
            .cloned()
            .collect();
        for id in &expired {
            devices.remove(id);
        }
        if devices.by_id.contains_key(&device.id)
            || devices.by_token.contains_key(&device.token_hash)
        {
            return Err(StoreError::Unavailable(
                "a device with this id or token hash is already stored".to_owned(),
            ));
        }
        devices.insert(device);
        Ok(())
    }

    async fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceRecord>> {
        let now = self.now();
        let durable = self.durable();
        let devices = &durable.devices;
        Ok(devices
            .by_token
            .get(token_hash)
            .and_then(|id| devices.by_id.get(id))
            .filter(|device| device.expires_at > now)
            .cloned())
    }

    async fn touch_device(
        &self,
        id: &str,
        last_used_at: u64,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<bool> {
        let now = self.now();
        let mut durable = self.durable();
        match durable.devices.by_id.get_mut(id) {
            Some(device) if device.expires_at > now => {
                device.last_used_at = last_used_at;
                device.address = address.map(str::to_owned);
                device.user_agent = user_agent.map(str::to_owned);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn devices(&self, user: &str) -> StoreResult<Vec<DeviceRecord>> {
        let now = self.now();
        let mut devices: Vec<DeviceRecord> =
            self.durable().devices.live_of(user, now).cloned().collect();
        devices.sort_unstable_by(|a, b| {
            b.last_used_at
                .cmp(&a.last_used_at)
                .then(b.created_at.cmp(&a.created_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(devices)
    }

    async fn delete_device(&self, user: &str, id: &str) -> StoreResult<bool> {
        let now = self.now();
        let mut durable = self.durable();
        let devices = &mut durable.devices;
        if devices
            .by_id
            .get(id)
            .is_none_or(|device| device.user != user)
        {
            return Ok(false);
        }
        Ok(devices
            .remove(id)
            .is_some_and(|device| device.expires_at > now))
    }

    async fn delete_devices(&self, user: &str) -> StoreResult<usize> {
        let now = self.now();
        Ok(self
            .durable()
            .devices
            .remove_user(user)
            .iter()
            .filter(|device| device.expires_at > now)
            .count())
    }
}
