-- stepup-store-postgres schema, version 3: each user's generation, disabled credentials, the
-- generation of credentials and devices.
--
-- - Every reset of a user moves the user's generation forward; whatever carries an older one (a
--   credential, a remembered device, a token) is void. The generation replaces the token mark: a
--   mark `revoked_before = R` (tokens issued before the second R are void, written as the reset's
--   second + 1) becomes generation 1 changed at R - 1 (tokens issued at or before it are void:
--   the same tokens).
-- - A credential may be disabled (a suspected clone); each records the generation it was made in
--   (0 for every existing one: their users were never reset, or the reset removed them).
-- - A remembered device records the generation it was remembered in (0 for existing ones).
-- sqlx runs this file in one transaction: a failure leaves version 2 untouched.

ALTER TABLE credentials ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE credentials DROP CONSTRAINT credentials_status_check;
ALTER TABLE credentials ADD CONSTRAINT credentials_status_check
    CHECK (status IN ('pending', 'active', 'disabled'));

-- Durable: each user's generation, kept when the user's factors are deleted; a user without a
-- row was never reset (generation 0). `seq` is the position of the user's last move in the feed
-- of moves, taken from `generation_seq` by a move holding a transaction-scoped advisory lock that
-- every move takes: moves commit one at a time, in the order of their positions, so a reader
-- resuming after the last position it saw finds every later move. Each user is listed once, at
-- the last.
CREATE SEQUENCE generation_seq AS BIGINT MINVALUE 1;
CREATE TABLE generations (
    user_id    TEXT   PRIMARY KEY,
    generation BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    seq        BIGINT NOT NULL UNIQUE
);

-- The marks, moved in a stable order. A mark at 0 voided nothing: its generation changed at 0.
INSERT INTO generations (user_id, generation, changed_at, seq)
SELECT
    user_id,
    1,
    CASE WHEN revoked_before = 0 THEN 0 ELSE revoked_before - 1 END,
    ROW_NUMBER() OVER (ORDER BY revoked_before, user_id COLLATE "C")
FROM token_marks;
-- The next position follows the moved marks (the first is 1 when there were none).
SELECT setval('generation_seq', COALESCE((SELECT MAX(seq) FROM generations), 0) + 1, false);
DROP TABLE token_marks;

ALTER TABLE devices ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
