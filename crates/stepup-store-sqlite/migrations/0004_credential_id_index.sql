-- stepup-store schema, version 4: credentials found by (kind, id), whoever's they are.
--
-- A passwordless login names a credential id, not a user, and an enrollment of a kind whose ids
-- are unique across users (passkeys) checks that no user holds the id yet: both look a
-- credential up by (kind, id). This index serves them, and every lookup by kind alone, so the
-- index on kind alone is dropped. It is not UNIQUE: every user's TOTP credential has the id
-- `totp`; the store keeps ids unique where the enrollment rule asks for it.
CREATE INDEX credentials_kind_id ON credentials (kind, id);
DROP INDEX credentials_kind;
