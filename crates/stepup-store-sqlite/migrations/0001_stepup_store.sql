-- stepup-store schema, version 1.

-- Durable: one TOTP enrollment per user, pending (active = 0) or active (active = 1).
CREATE TABLE IF NOT EXISTS totp_enrollments (
    user_id        TEXT    PRIMARY KEY,
    sealed_secret  TEXT    NOT NULL,
    algorithm      TEXT    NOT NULL,
    digits         INTEGER NOT NULL,
    period         INTEGER NOT NULL,
    active         INTEGER NOT NULL CHECK (active IN (0, 1)),
    last_used_step INTEGER NULL,
    created_at     INTEGER NOT NULL
);

-- Durable: unused backup codes, found by their keyed lookup digest.
CREATE TABLE IF NOT EXISTS backup_codes (
    user_id TEXT NOT NULL,
    lookup  TEXT NOT NULL,
    hash    TEXT NOT NULL,
    PRIMARY KEY (user_id, lookup)
);

-- Ephemeral values; a row is live while expires_at (Unix seconds) is after the store's clock.
CREATE TABLE IF NOT EXISTS ephemeral (
    key        TEXT    PRIMARY KEY,
    value      BLOB    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ephemeral_expires_at ON ephemeral (expires_at);

-- Fixed-window counters; live while expires_at (Unix seconds) is after the store's clock.
CREATE TABLE IF NOT EXISTS counters (
    key        TEXT    PRIMARY KEY,
    count      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS counters_expires_at ON counters (expires_at);
