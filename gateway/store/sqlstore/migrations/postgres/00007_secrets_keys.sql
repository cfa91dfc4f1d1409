-- Secrets sealed at rest and the API key lifecycle.
--
-- channel_secrets.secrets now holds a sealed envelope ("sb1:<kid>:…", see
-- package secrets), which is not JSON: the column becomes TEXT. Rows
-- written before hold plaintext JSON, which the store still reads and seals
-- on the next write, at the gateway's start or by `switchboard secrets
-- rotate` (a migration has no key to seal with).
--
-- api_keys: when a key was last used (recorded at most once a minute) and
-- when a rotated key stops working.

-- +goose Up
ALTER TABLE channel_secrets ALTER COLUMN secrets TYPE TEXT USING secrets::text;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN expires_at;
ALTER TABLE api_keys DROP COLUMN last_used_at;
-- Sealed rows are not JSON: this fails (and changes nothing) while any
-- exists, rather than dropping secrets.
ALTER TABLE channel_secrets ALTER COLUMN secrets TYPE JSONB USING secrets::jsonb;
