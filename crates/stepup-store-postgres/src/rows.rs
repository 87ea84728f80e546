//! Conversions between the stored rows and the records of the traits.
//!
//! PostgreSQL integers are signed 64-bit: a `u64` beyond `i64::MAX` cannot be stored, and a
//! negative stored integer (or an unknown status) is corrupt data, reported, never a panic.

use stepup_store::{
    AuditRecord, Credential, CredentialStatus, DeviceRecord, Generation, StoreError, StoreResult,
};

/// A `u64` as stored.
pub(crate) fn to_db(value: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is out of range")))
}

/// An optional `u64` as stored.
pub(crate) fn to_db_opt(value: Option<u64>, what: &str) -> StoreResult<Option<i64>> {
    value.map(|value| to_db(value, what)).transpose()
}

/// A stored integer read back as `u64`.
pub(crate) fn from_db(value: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("stored {what} is negative")))
}

/// A stored count read back as `usize`.
pub(crate) fn count(value: i64, what: &str) -> StoreResult<usize> {
    usize::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is out of range")))
}

/// A stored credential status.
pub(crate) fn status(name: &str) -> StoreResult<CredentialStatus> {
    CredentialStatus::from_name(name).ok_or_else(|| {
        StoreError::Corrupt(
            "stored credential status is neither pending, active nor disabled".to_owned(),
        )
    })
}

/// The columns of a credential, in the order of [`CredentialRow`] (a literal, for `concat!`).
macro_rules! credential_columns {
    () => {
        "user_id, kind, id, status, label, payload, counter, created_at, last_used_at, \
         generation"
    };
}
pub(crate) use credential_columns;

/// The columns of a device, in the order of [`DeviceRow`] (a literal, for `concat!`).
macro_rules! device_columns {
    () => {
        "id, user_id, token_hash, created_at, last_used_at, expires_at, mfa_at, address, \
         user_agent, generation"
    };
}
pub(crate) use device_columns;

/// A row of `credentials`, in the order of [`Credential`]'s fields.
pub(crate) type CredentialRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
);

/// A credential read back.
pub(crate) fn credential(row: CredentialRow) -> StoreResult<Credential> {
    let (
        user,
        kind,
        id,
        status_name,
        label,
        payload,
        counter,
        created_at,
        last_used_at,
        generation,
    ) = row;
    Ok(Credential {
        user,
        kind,
        id,
        status: status(&status_name)?,
        label,
        payload,
        counter: from_db(counter, "credential counter")?,
        created_at: from_db(created_at, "credential creation time")?,
        last_used_at: last_used_at
            .map(|at| from_db(at, "credential last use time"))
            .transpose()?,
        generation: from_db(generation, "credential generation")?,
    })
}

/// A row of `devices`, in the order of [`DeviceRecord`]'s fields.
pub(crate) type DeviceRow = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    i64,
);

/// A remembered device read back.
pub(crate) fn device(row: DeviceRow) -> StoreResult<DeviceRecord> {
    let (
        id,
        user,
        token_hash,
        created_at,
        last_used_at,
        expires_at,
        mfa_at,
        address,
        user_agent,
        generation,
    ) = row;
    Ok(DeviceRecord {
        id,
        user,
        token_hash,
        created_at: from_db(created_at, "device creation time")?,
        last_used_at: from_db(last_used_at, "device last use time")?,
        expires_at: from_db(expires_at, "device expiry")?,
        mfa_at: from_db(mfa_at, "device second factor time")?,
        address,
        user_agent,
        generation: from_db(generation, "device generation")?,
    })
}

/// A stored generation.
pub(crate) fn generation(value: i64, changed_at: i64) -> StoreResult<Generation> {
    Ok(Generation {
        value: from_db(value, "generation")?,
        changed_at: Some(from_db(changed_at, "generation change time")?),
    })
}

/// A row of `audit_events`, in the order of [`AuditRecord`]'s fields.
pub(crate) type AuditRow = (String, String, String, i64, String);

/// An audit event read back.
pub(crate) fn audit(row: AuditRow) -> StoreResult<AuditRecord> {
    let (id, user, kind, at, detail) = row;
    Ok(AuditRecord {
        id,
        user,
        kind,
        at: from_db(at, "audit event time")?,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_out_of_range_are_errors_not_panics() {
        assert!(matches!(
            to_db(u64::MAX, "step"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(from_db(-1, "step"), Err(StoreError::Corrupt(_))));
        assert!(matches!(count(-1, "count"), Err(StoreError::Corrupt(_))));
        assert_eq!(to_db(7, "step").ok(), Some(7));
        assert_eq!(to_db_opt(None, "step").ok(), Some(None));
        assert_eq!(from_db(7, "step").ok(), Some(7));
    }

    #[test]
    fn unknown_statuses_are_corrupt() {
        assert_eq!(status("active").ok(), Some(CredentialStatus::Active));
        assert_eq!(status("pending").ok(), Some(CredentialStatus::Pending));
        assert_eq!(status("disabled").ok(), Some(CredentialStatus::Disabled));
        assert!(matches!(status("revoked"), Err(StoreError::Corrupt(_))));
    }
}
