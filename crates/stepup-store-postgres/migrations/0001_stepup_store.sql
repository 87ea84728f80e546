-- stepup-store-postgres schema, version 1.
--
-- Every time is in Unix seconds, judged against the store's injected clock (never now()). Tables
-- are created in the first schema of the connection's search_path.

-- Durable: one credential of one factor of one user, keyed by (user, kind, id). The payload is
-- opaque (sealed by the engine where it holds a secret).
CREATE TABLE credentials (
    user_id      TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    status       TEXT   NOT NULL CHECK (status IN ('pending', 'active')),
    label        TEXT   NULL,
    payload      TEXT   NOT NULL,
    counter      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    PRIMARY KEY (user_id, kind, id)
);
CREATE INDEX credentials_kind ON credentials (kind);

-- Durable: unused single-use codes, found by their keyed lookup digest; a code with an expiry is
-- live while expires_at is after the store's clock.
CREATE TABLE codes (
    user_id    TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    lookup     TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    expires_at BIGINT NULL,
    PRIMARY KEY (user_id, kind, lookup)
);
CREATE INDEX codes_expires_at ON codes (expires_at) WHERE expires_at IS NOT NULL;

-- Durable: streaks of consecutive failures per user and factor kind.
CREATE TABLE factor_failures (
    user_id TEXT   NOT NULL,
    kind    TEXT   NOT NULL,
    streak  BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- Durable: tokens issued to the user before revoked_before are void.
CREATE TABLE token_marks (
    user_id        TEXT   PRIMARY KEY,
    revoked_before BIGINT NOT NULL
);

-- Ephemeral values; a row is live while expires_at is after the store's clock.
CREATE TABLE ephemeral (
    key        TEXT   PRIMARY KEY,
    value      BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ephemeral_expires_at ON ephemeral (expires_at);

-- Fixed-window counters; live while expires_at is after the store's clock.
CREATE TABLE counters (
    key        TEXT   PRIMARY KEY,
    count      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX counters_expires_at ON counters (expires_at);

-- Durable: browsers remembered after a second factor; found by the SHA-256 (hex) of their cookie
-- token, never the token. A row is live while expires_at is after the store's clock.
CREATE TABLE devices (
    id           TEXT   PRIMARY KEY,
    user_id      TEXT   NOT NULL,
    token_hash   TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    mfa_at       BIGINT NOT NULL,
    address      TEXT   NULL,
    user_agent   TEXT   NULL
);
CREATE INDEX devices_user_id ON devices (user_id);

-- Durable, append-only: audit events; seq keeps the order they were appended in.
CREATE TABLE audit_events (
    seq     BIGSERIAL PRIMARY KEY,
    id      TEXT      NOT NULL UNIQUE,
    user_id TEXT      NOT NULL,
    kind    TEXT      NOT NULL,
    at      BIGINT    NOT NULL,
    detail  TEXT      NOT NULL
);
CREATE INDEX audit_events_user_id_at_seq ON audit_events (user_id, at, seq);
