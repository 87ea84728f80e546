//! Remembered devices ("remember this device"): after a second factor, a random token in a
//! cookie lets the same user skip the MFA step on that browser. The store keeps only the token's
//! SHA-256; a device vouches only for its own user and generation (a reset voids it), is listed
//! and revoked, and is revoked when the user's factors change.

use std::time::Duration;

use stepup_core::policy::{DeviceVouching, TrustedDevice, Unavailable, async_trait};
use stepup_core::tokens;
use stepup_store::DeviceRecord;

use crate::audit::AuditEvent;
use crate::factor::ClientInfo;
use crate::{Mfa, MfaError};

/// The longest `User-Agent` kept.
const MAX_USER_AGENT_CHARS: usize = 256;

/// A newly remembered device: its record and the token for the browser's cookie (never stored).
#[derive(Debug, Clone)]
pub struct RememberedDevice {
    /// The stored record.
    pub record: DeviceRecord,
    /// The bearer token for the cookie.
    pub token: String,
}

impl Mfa {
    /// Remembers a device of `user` for `remember_for`, under the generation the login that
    /// earned it was made in (audited).
    pub(crate) async fn remember_device(
        &self,
        user: &str,
        generation: u64,
        remember_for: Duration,
        client: &ClientInfo,
    ) -> Result<RememberedDevice, MfaError> {
        let now = self.now();
        let token = tokens::random_token();
        let record = DeviceRecord {
            id: tokens::random_id(),
            user: user.to_owned(),
            token_hash: tokens::digest(&token),
            created_at: now,
            last_used_at: now,
            expires_at: now.saturating_add(remember_for.as_secs()),
            mfa_at: now,
            address: client.address.map(|address| address.to_string()),
            user_agent: user_agent(client),
            generation,
        };
        self.devices_store().insert_device(record.clone()).await?;
        let event = AuditEvent::DeviceRemembered {
            device_id: record.id.clone(),
        };
        self.audit().record(user, event).await;
        Ok(RememberedDevice { record, token })
    }

    /// The live device of the current generation whose cookie holds `token`.
    pub async fn device(&self, token: &str) -> Result<Option<TrustedDevice>, MfaError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(device) = self
            .devices_store()
            .device_by_token(&tokens::digest(token))
            .await?
        else {
            return Ok(None);
        };
        if self.current_generation(&device.user).await?.value != device.generation {
            return Ok(None);
        }
        Ok(Some(TrustedDevice {
            id: device.id,
            user: device.user,
            mfa_at: device.mfa_at,
        }))
    }

    /// Whether `user`'s remembered device `id` is of `generation`.
    pub(crate) async fn device_of_generation(
        &self,
        user: &str,
        id: &str,
        generation: u64,
    ) -> Result<bool, MfaError> {
        let devices = self.devices_store().devices(user).await?;
        Ok(devices
            .iter()
            .any(|device| device.id == id && device.generation == generation))
    }

    /// Records that remembered device `device_id` of `user` skipped the MFA step (audited).
    pub(crate) async fn device_used(
        &self,
        user: &str,
        device_id: &str,
        client: &ClientInfo,
    ) -> Result<(), MfaError> {
        let address = client.address.map(|address| address.to_string());
        self.devices_store()
            .touch_device(
                device_id,
                self.now(),
                address.as_deref(),
                user_agent(client).as_deref(),
            )
            .await?;
        let event = AuditEvent::DeviceUsed {
            device_id: device_id.to_owned(),
        };
        self.audit().record(user, event).await;
        self.factor_login_succeeded(user).await
    }

    /// The user's live remembered devices of the current generation, most recently used first.
    pub async fn devices(&self, user: &str) -> Result<Vec<DeviceRecord>, MfaError> {
        let generation = self.current_generation(user).await?.value;
        let mut devices = self.devices_store().devices(user).await?;
        devices.retain(|device| device.generation == generation);
        Ok(devices)
    }

    /// Revokes one of the user's devices (audited); `false` when the user has no such device.
    pub async fn revoke_device(&self, user: &str, id: &str) -> Result<bool, MfaError> {
        let revoked = self.devices_store().delete_device(user, id).await?;
        if revoked {
            let event = AuditEvent::DeviceRevoked {
                device_id: id.to_owned(),
            };
            self.audit().record(user, event).await;
        }
        Ok(revoked)
    }

    /// Revokes every remembered device of the user; returns how many (audited when any).
    pub async fn revoke_devices(&self, user: &str) -> Result<usize, MfaError> {
        let count = self.devices_store().delete_devices(user).await?;
        if count > 0 {
            self.audit()
                .record(user, AuditEvent::DevicesRevoked { count })
                .await;
        }
        Ok(count)
    }
}

fn user_agent(client: &ClientInfo) -> Option<String> {
    client
        .user_agent
        .as_ref()
        .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect())
}

/// The engine vouches for remembered-device cookies (for `RememberedDevicesLayer`).
#[async_trait]
impl DeviceVouching for Mfa {
    async fn device(&self, token: &str) -> Result<Option<TrustedDevice>, Unavailable> {
        Mfa::device(self, token).await.map_err(|error| {
            tracing::warn!(%error, "device lookup failed");
            Unavailable
        })
    }
}
