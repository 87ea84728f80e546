-- stepup-store schema, version 3: factor-generic durable state.
--
-- The TOTP-specific tables of version 1 become rows of the generic ones, then are dropped:
-- - each `totp_enrollments` row becomes the credential (user, 'totp', 'totp') whose payload is the
--   JSON object {"secret", "algorithm", "digits", "period"} the engine reads;
-- - each `backup_codes` row becomes a code of kind 'backup_code' that never expires.
-- sqlx runs this file in one transaction: a failure leaves version 2 untouched.

-- Durable: every credential of every factor, keyed by (user, kind, id). The payload is opaque to
-- the store (the engine seals secrets before they get here).
CREATE TABLE credentials (
    user_id      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'active')),
    label        TEXT    NULL,
    payload      TEXT    NOT NULL,
    counter      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NULL,
    PRIMARY KEY (user_id, kind, id)
);
CREATE INDEX credentials_kind ON credentials (kind);

-- Durable: unused single-use codes, found by their keyed lookup digest; a code is live while
-- expires_at (Unix seconds) is NULL or after the store's clock.
CREATE TABLE codes (
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    lookup     TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    expires_at INTEGER NULL,
    PRIMARY KEY (user_id, kind, lookup)
);
CREATE INDEX codes_expires_at ON codes (expires_at) WHERE expires_at IS NOT NULL;

-- Durable: each user's streak of consecutive failures of each factor.
CREATE TABLE factor_failures (
    user_id TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    streak  INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- Durable: tokens issued to the user before revoked_before (Unix seconds) are void.
CREATE TABLE token_marks (
    user_id        TEXT    PRIMARY KEY,
    revoked_before INTEGER NOT NULL
);

-- The old state, moved. An `active` flag other than 0 or 1 (which version 1's CHECK forbids)
-- maps to NULL and fails the migration rather than guessing.
INSERT INTO credentials
    (user_id, kind, id, status, label, payload, counter, created_at, last_used_at)
SELECT
    user_id,
    'totp',
    'totp',
    CASE active WHEN 1 THEN 'active' WHEN 0 THEN 'pending' END,
    NULL,
    json_object('secret', sealed_secret, 'algorithm', algorithm, 'digits', digits,
                'period', period),
    COALESCE(last_used_step, 0),
    created_at,
    NULL
FROM totp_enrollments;

INSERT INTO codes (user_id, kind, lookup, hash, expires_at)
SELECT user_id, 'backup_code', lookup, hash, NULL
FROM backup_codes;

DROP TABLE totp_enrollments;
DROP TABLE backup_codes;
