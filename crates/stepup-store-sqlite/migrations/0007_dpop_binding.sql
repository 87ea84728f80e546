-- stepup-store schema, version 7: refresh-token families bound to a DPoP key.
--
-- - `refresh_families.dpop_jkt`: the RFC 7638 thumbprint of the key a family's refresh tokens are
--   bound to (RFC 9449 §5), or NULL for an unbound family (every family before this version).
-- sqlx runs this file in one transaction: a failure leaves version 6 untouched.

ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
