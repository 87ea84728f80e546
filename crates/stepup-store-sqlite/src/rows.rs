//! The rows of the SQLite tables: the conversions and row shapes every SQL backend shares
//! ([`stepup_store::sql`]), the column lists of this schema, and the mapping of sqlx errors.

use stepup_store::StoreError;
pub(crate) use stepup_store::sql::{
    AuditRow, CredentialRow, DeviceRow, audit, count_from_db, credential, device, from_db,
    generation, to_db,
};

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

/// The columns of `credentials`, in the order of [`CredentialRow`] (a literal, for `concat!`).
macro_rules! credential_columns {
    () => {
        "user_id, kind, id, status, label, payload, counter, created_at, last_used_at, \
         generation"
    };
}
pub(crate) use credential_columns;

/// The columns of `devices`, in the order of [`DeviceRow`] (a literal, for `concat!`).
macro_rules! device_columns {
    () => {
        "id, user_id, token_hash, created_at, last_used_at, expires_at, mfa_at, address, \
         user_agent, generation"
    };
}
pub(crate) use device_columns;

#[cfg(test)]
mod tests {
    use super::*;

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
