//! What the SQL backends (SQLite, PostgreSQL) share about their rows: the integer conversions
//! and the shapes of the rows that hold the traits' records, so that both read stored data the
//! same way.
//!
//! Both databases' integers are signed 64-bit: a `u64` beyond `i64::MAX` cannot be stored, and a
//! negative stored integer (or an unknown status) is corrupt data, [`StoreError::Corrupt`], never
//! a panic. No error message carries a bound or stored value.
//!
//! ```
//! use stepup_store::StoreError;
//! use stepup_store::sql::{from_db, to_db};
//!
//! assert_eq!(to_db(7, "counter").ok(), Some(7));
//! assert!(matches!(to_db(u64::MAX, "counter"), Err(StoreError::Corrupt(_))));
//! assert!(matches!(from_db(-1, "counter"), Err(StoreError::Corrupt(_))));
//! ```

use crate::{
    AuditRecord, Credential, CredentialStatus, DeviceRecord, Generation, StoreError, StoreResult,
};

/// A `u64` as stored; `what` names it in the error.
pub fn to_db(value: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is out of range")))
}

/// An optional `u64` as stored.
pub fn to_db_opt(value: Option<u64>, what: &str) -> StoreResult<Option<i64>> {
    value.map(|value| to_db(value, what)).transpose()
}

/// A stored integer read back as `u64`.
pub fn from_db(value: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("stored {what} is negative")))
}

/// A stored count read back as `usize`.
pub fn count_from_db(value: i64, what: &str) -> StoreResult<usize> {
    usize::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is out of range")))
}

/// The stored credential status named `name`.
pub fn status_from_db(name: &str) -> StoreResult<CredentialStatus> {
    CredentialStatus::from_name(name).ok_or_else(|| {
        StoreError::Corrupt(
            "stored credential status is neither pending, active nor disabled".to_owned(),
        )
    })
}

/// A row of `credentials`, in the order of [`Credential`]'s fields: user, kind, id, status,
/// label, payload, counter, created at, last used at, generation.
pub type CredentialRow = (
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

/// The credential a row of `credentials` holds.
pub fn credential(row: CredentialRow) -> StoreResult<Credential> {
    let (user, kind, id, status, label, payload, counter, created_at, last_used_at, generation) =
        row;
    Ok(Credential {
        user,
        kind,
        id,
        status: status_from_db(&status)?,
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

/// A row of `devices`, in the order of [`DeviceRecord`]'s fields: id, user, token hash, created
/// at, last used at, expires at, second factor at, address, user agent, generation.
pub type DeviceRow = (
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

/// The device a row of `devices` holds.
pub fn device(row: DeviceRow) -> StoreResult<DeviceRecord> {
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

/// A user's stored generation and the time it last changed.
pub fn generation(value: i64, changed_at: i64) -> StoreResult<Generation> {
    Ok(Generation {
        value: from_db(value, "generation")?,
        changed_at: Some(from_db(changed_at, "generation change time")?),
    })
}

/// A row of `audit_events`, in the order of [`AuditRecord`]'s fields: id, user, kind, at,
/// detail.
pub type AuditRow = (String, String, String, i64, String);

/// The event a row of `audit_events` holds.
pub fn audit(row: AuditRow) -> StoreResult<AuditRecord> {
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

    fn is_corrupt<T>(result: StoreResult<T>) -> bool {
        matches!(result, Err(StoreError::Corrupt(_)))
    }

    #[test]
    fn integers_out_of_range_are_errors_not_panics() {
        assert!(is_corrupt(to_db(u64::MAX, "step")));
        assert!(is_corrupt(to_db(1 << 63, "step")));
        assert_eq!(to_db(i64::MAX as u64, "step").ok(), Some(i64::MAX));
        assert_eq!(to_db_opt(None, "step").ok(), Some(None));
        assert!(is_corrupt(to_db_opt(Some(u64::MAX), "step")));
        assert!(is_corrupt(from_db(-1, "step")));
        assert!(is_corrupt(from_db(i64::MIN, "step")));
        assert_eq!(from_db(7, "step").ok(), Some(7));
        assert!(is_corrupt(count_from_db(-1, "count")));
        assert_eq!(count_from_db(3, "count").ok(), Some(3));
        assert!(is_corrupt(generation(-1, 0)));
        assert!(is_corrupt(generation(0, -1)));
    }

    #[test]
    fn statuses_round_trip_and_others_are_corrupt() {
        for status in [
            CredentialStatus::Pending,
            CredentialStatus::Active,
            CredentialStatus::Disabled,
        ] {
            assert_eq!(status_from_db(status.as_str()).ok(), Some(status));
        }
        assert!(is_corrupt(status_from_db("ACTIVE")));
        assert!(is_corrupt(status_from_db("revoked")));
        assert!(is_corrupt(status_from_db("")));
    }

    fn credential_row() -> CredentialRow {
        (
            "u".to_owned(),
            "totp".to_owned(),
            "totp".to_owned(),
            "active".to_owned(),
            Some("phone".to_owned()),
            "{}".to_owned(),
            7,
            1,
            Some(2),
            3,
        )
    }

    #[test]
    fn credential_rows_convert_and_report_corruption() {
        let read = credential(credential_row()).ok();
        assert_eq!(
            read,
            Some(Credential {
                user: "u".to_owned(),
                kind: "totp".to_owned(),
                id: "totp".to_owned(),
                status: CredentialStatus::Active,
                label: Some("phone".to_owned()),
                payload: "{}".to_owned(),
                counter: 7,
                created_at: 1,
                last_used_at: Some(2),
                generation: 3,
            })
        );
        let mut row = credential_row();
        row.3 = "revoked".to_owned();
        assert!(is_corrupt(credential(row)));
        let mut row = credential_row();
        row.6 = -1;
        assert!(is_corrupt(credential(row)));
        let mut row = credential_row();
        row.7 = -1;
        assert!(is_corrupt(credential(row)));
        let mut row = credential_row();
        row.8 = Some(-1);
        assert!(is_corrupt(credential(row)));
        let mut row = credential_row();
        row.9 = -1;
        assert!(is_corrupt(credential(row)));
    }
}
