-- stepup-store schema, version 2: remembered devices and the audit trail.

-- Durable: browsers remembered after a second factor; found by the SHA-256 (hex) of their cookie
-- token, never the token. A row is live while expires_at (Unix seconds) is after the store's clock.
CREATE TABLE IF NOT EXISTS devices (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    mfa_at       INTEGER NOT NULL,
    address      TEXT    NULL,
    user_agent   TEXT    NULL
);
CREATE INDEX IF NOT EXISTS devices_user_id ON devices (user_id);

-- Durable, append-only: audit events; seq keeps the order they were appended in.
CREATE TABLE IF NOT EXISTS audit_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT    NOT NULL UNIQUE,
    user_id TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    detail  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_user_id_seq ON audit_events (user_id, seq);
