//! The rows of the PostgreSQL tables: the conversions and row shapes every SQL backend shares
//! ([`stepup_store::sql`]), and the column lists of this schema.

pub(crate) use stepup_store::sql::{
    AuditRow, CredentialRow, DeviceRow, audit, count_from_db, credential, device, from_db,
    generation, status_from_db, to_db, to_db_opt,
};

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
