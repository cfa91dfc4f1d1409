-- Secrets sealed at rest and the API key lifecycle.
--
-- channel_secrets.secrets now holds a sealed envelope ("sb1:<kid>:…", see
-- package secrets); rows written before hold plaintext JSON, which the
-- store still reads and seals on the next write, at the gateway's start or
-- by `switchboard secrets rotate` (a migration has no key to seal with).
-- The column is TEXT on SQLite already.
--
-- api_keys: when a key was last used (recorded at most once a minute) and
-- when a rotated key stops working.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN expires_at;
ALTER TABLE api_keys DROP COLUMN last_used_at;
