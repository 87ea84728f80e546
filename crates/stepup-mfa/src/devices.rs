//! Remembered devices ("remember this device"): after a second factor, a random token in a
//! cookie lets the same user skip the MFA step on that browser. The store keeps only the token's
//! SHA-256; a device vouches only for its own user, is listed and revoked, and is revoked when the
//! user's factors change.

use std::time::Duration;

use stepup_core::tokens;
use stepup_store::DeviceRecord;

use crate::audit::AuditEvent;
use crate::{Mfa, MfaError};

/// Where a request came from, as recorded on a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSeen {
    /// The client address, if known.
    pub address: Option<String>,
    /// The `User-Agent` (at most 256 characters are kept).
    pub user_agent: Option<String>,
}

/// A newly remembered device: its record and the token for the browser's cookie (never stored).
#[derive(Debug, Clone)]
pub struct RememberedDevice {
    /// The stored record.
    pub record: DeviceRecord,
    /// The bearer token for the cookie.
    pub token: String,
}

impl Mfa {
    /// Remembers a device of `user` for `remember_for` (audited).
    pub async fn remember_device(
        &self,
        user: &str,
        remember_for: Duration,
        seen: DeviceSeen,
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
            address: seen.address,
            user_agent: seen
                .user_agent
                .map(|agent| agent.chars().take(256).collect()),
        };
        self.inner
            .stores
            .devices
            .insert_device(record.clone())
            .await?;
        let event = AuditEvent::DeviceRemembered {
            device_id: record.id.clone(),
        };
        self.audit().record(user, event).await;
        Ok(RememberedDevice { record, token })
    }

    /// Records that remembered device `device_id` of `user` skipped the MFA step (audited).
    pub async fn device_used(
        &self,
        user: &str,
        device_id: &str,
        seen: DeviceSeen,
    ) -> Result<(), MfaError> {
        let user_agent = seen
            .user_agent
            .map(|agent| agent.chars().take(256).collect::<String>());
        self.inner
            .stores
            .devices
            .touch_device(
                device_id,
                self.now(),
                seen.address.as_deref(),
                user_agent.as_deref(),
            )
            .await?;
        let event = AuditEvent::DeviceUsed {
            device_id: device_id.to_owned(),
        };
        self.audit().record(user, event).await;
        self.factor_login_succeeded(user).await
    }

    /// The user's live remembered devices, most recently used first.
    pub async fn devices(&self, user: &str) -> Result<Vec<DeviceRecord>, MfaError> {
        Ok(self.inner.stores.devices.devices(user).await?)
    }

    /// Revokes one of the user's devices (audited); `false` when the user has no such device.
    pub async fn revoke_device(&self, user: &str, id: &str) -> Result<bool, MfaError> {
        let revoked = self.inner.stores.devices.delete_device(user, id).await?;
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
        let count = self.inner.stores.devices.delete_devices(user).await?;
        if count > 0 {
            self.audit()
                .record(user, AuditEvent::DevicesRevoked { count })
                .await;
        }
        Ok(count)
    }
}
