-- stepup-store schema, version 5: each user's generation, disabled credentials, the generation of
-- credentials and devices.
--
-- - Every reset of a user moves the user's generation forward; whatever carries an older one (a
--   credential, a remembered device, a token) is void. The generation replaces the token mark: a
--   mark `revoked_before = R` (tokens issued before the second R are void, written as the reset's
--   second + 1) becomes generation 1 changed at R - 1 (tokens issued at or before it are void:
--   the same tokens).
-- - A credential may be disabled (a suspected clone): SQLite cannot alter a CHECK, so the table
--   is rebuilt with the new status and the generation its credential was made in (0 for every
--   existing one: their users were never reset, or the reset removed them).
-- - A remembered device records the generation it was remembered in (0 for existing ones).
-- sqlx runs this file in one transaction: a failure leaves version 4 untouched.

CREATE TABLE credentials_v5 (
    user_id      TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    label        TEXT    NULL,
    payload      TEXT    NOT NULL,
    counter      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NULL,
    generation   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, kind, id)
);
INSERT INTO credentials_v5
    (user_id, kind, id, status, label, payload, counter, created_at, last_used_at, generation)
SELECT user_id, kind, id, status, label, payload, counter, created_at, last_used_at, 0
FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_v5 RENAME TO credentials;
CREATE INDEX credentials_kind_id ON credentials (kind, id);

-- Durable: each user's generation, kept when the user's factors are deleted; a user without a
-- row was never reset (generation 0). `seq` is the position of the user's last move in the feed
-- of moves: every move takes the next position (one more than the greatest), so a reader resuming
-- after the last position it saw finds every later move; each user is listed once, at the last.
CREATE TABLE generations (
    user_id    TEXT    PRIMARY KEY,
    generation INTEGER NOT NULL,
    changed_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL UNIQUE
);

-- The marks, moved in a stable order. A mark at 0 voided nothing: its generation changed at 0.
INSERT INTO generations (user_id, generation, changed_at, seq)
SELECT
    user_id,
    1,
    CASE WHEN revoked_before = 0 THEN 0 ELSE revoked_before - 1 END,
    ROW_NUMBER() OVER (ORDER BY revoked_before, user_id)
FROM token_marks;
DROP TABLE token_marks;

ALTER TABLE devices ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
