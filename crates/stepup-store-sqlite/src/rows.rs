//! Conversions between the traits' values and SQLite rows, and the mapping of sqlx errors.
//!
//! SQLite integers are signed 64-bit: a `u64` beyond `i64::MAX` cannot be stored, and a negative
//! stored integer cannot be read back; both are [`StoreError::Corrupt`], never a panic. No error
//! message carries a bound or stored value.

use stepup_store::{AuditRecord, Credential, CredentialStatus, DeviceRecord, StoreError};

use stepup_store::StoreResult;

/// A database failure, described without any bound value.
///
/// A stored value of the wrong type (decoding failed) is corruption; anything else (I/O, locks,
/// constraint violations, a closed pool) means the store is unavailable. sqlx's messages name
/// columns and constraints, never the values bound to a statement.
pub(crate) fn db_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { index, .. } => {
            StoreError::Corrupt(format!("stored column {index} has an unexpected type"))
        }
        sqlx::Error::Decode(_) => StoreError::Corrupt("a stored value is unreadable".to_owned()),
        error => StoreError::Unavailable(error.to_string()),
    }
}

/// A `u64` as stored (SQLite integers are signed 64-bit).
pub(crate) fn to_db(value: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is out of range")))
}

/// A stored integer read back as `u64`.
pub(crate) fn from_db(value: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("stored {what} is negative")))
}

/// A stored count read back as `usize`.
pub(crate) fn count_from_db(value: i64, what: &str) -> StoreResult<usize> {
    usize::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is out of range")))
}

/// The stored status named `name`.
pub(crate) fn status_from_db(name: &str) -> StoreResult<CredentialStatus> {
    CredentialStatus::from_name(name).ok_or_else(|| {
        StoreError::Corrupt(
            "stored credential status is neither pending, active nor disabled".to_owned(),
        )
    })
}

/// The columns of `credentials`, in the order of [`CredentialRow`] (a literal, for `concat!`).
macro_rules! credential_columns {
    () => {
        "user_id, kind, id, status, label, payload, counter, created_at, last_used_at, \
         generation"
    };
}
pub(crate) use credential_columns;

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

/// The credential a row of `credentials` holds.
pub(crate) fn credential(row: CredentialRow) -> StoreResult<Credential> {
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

/// The columns of `devices`, in the order of [`DeviceRow`] (a literal, for `concat!`).
macro_rules! device_columns {
    () => {
        "id, user_id, token_hash, created_at, last_used_at, expires_at, mfa_at, address, \
         user_agent, generation"
    };
}
pub(crate) use device_columns;

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

/// The device a row of `devices` holds.
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

/// A row of `audit_events`, in the order of [`AuditRecord`]'s fields.
pub(crate) type AuditRow = (String, String, String, i64, String);

/// The event a row of `audit_events` holds.
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

    fn is_corrupt<T>(result: StoreResult<T>) -> bool {
        matches!(result, Err(StoreError::Corrupt(_)))
    }

    #[test]
    fn integers_out_of_range_are_errors_not_panics() {
        assert!(is_corrupt(to_db(u64::MAX, "step")));
        assert!(is_corrupt(to_db(1 << 63, "step")));
        assert_eq!(to_db(i64::MAX as u64, "step").ok(), Some(i64::MAX));
        assert!(is_corrupt(from_db(-1, "step")));
        assert!(is_corrupt(from_db(i64::MIN, "step")));
        assert_eq!(from_db(7, "step").ok(), Some(7));
        assert!(is_corrupt(count_from_db(-1, "count")));
        assert_eq!(count_from_db(3, "count").ok(), Some(3));
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

    #[test]
    fn decode_failures_are_corruption_and_others_unavailability() {
        let decode = sqlx::Error::ColumnDecode {
            index: "3".to_owned(),
            source: "mismatched types".into(),
        };
        assert!(matches!(db_error(decode), StoreError::Corrupt(_)));
        assert!(matches!(
            db_error(sqlx::Error::PoolClosed),
            StoreError::Unavailable(_)
        ));
    }
}
