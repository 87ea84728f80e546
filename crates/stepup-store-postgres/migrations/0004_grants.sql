-- stepup-store-postgres schema, version 4: the authorization server's durable state.
--
-- - `oauth_clients`: clients registered dynamically (RFC 7591), their metadata as a JSON object.
-- - `refresh_families`: one authentication carried forward by rotated refresh tokens; the hash of
--   the current token only, never a token. A rotation locks the family's row (`FOR UPDATE`), so
--   concurrent presentations of one token are served one after the other.
-- - `refresh_tokens`: every token hash a family ever held (the current one included), so that an
--   earlier token presented again is recognised as a reuse.
-- sqlx runs this file in one transaction: a failure leaves version 3 untouched.

CREATE TABLE oauth_clients (
    id            TEXT    PRIMARY KEY,
    metadata      TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    registered_by TEXT    NULL,
    revoked       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX oauth_clients_created ON oauth_clients (created_at);

CREATE TABLE refresh_families (
    id         TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    acr        TEXT    NOT NULL,
    amr        TEXT[]  NOT NULL,
    auth_time  BIGINT  NULL,
    generation BIGINT  NOT NULL,
    scope      TEXT    NULL,
    resource   TEXT    NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
