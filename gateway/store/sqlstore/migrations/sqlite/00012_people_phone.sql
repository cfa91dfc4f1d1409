-- A first message from an unknown number on a phone channel (Twilio)
-- belongs to the person whose phone attribute is that number: the lookup
-- (FindPeopleByPhone) goes through this index. The expression must stay
-- the one the query writes (dialect phoneAttr).

-- +goose Up
CREATE INDEX people_phone ON people (workspace_id, json_extract(attributes, '$.phone'));

-- +goose Down
DROP INDEX people_phone;
