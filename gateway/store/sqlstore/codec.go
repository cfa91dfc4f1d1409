package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// micros encodes a time for storage; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros decodes micros; 0 is the zero time. Times come back in UTC.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// nullMicros encodes an optional time; nil is NULL.
func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil || t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromNullMicros decodes an optional time.
func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// rawJSON encodes a caller-supplied JSON document; empty is {}. It is bound
// as a string because SQLite treats a BLOB as its binary JSONB format.
func rawJSON(m json.RawMessage) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	if !json.Valid(m) {
		return "", fmt.Errorf("invalid JSON document")
	}
	return string(m), nil
}

// toJSON encodes a value as a JSON string for storage.
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// jsonMap encodes a map; nil is stored as {}.
func jsonMap[V any](m map[string]V) (string, error) {
	if m == nil {
		return "{}", nil
	}
	return toJSON(m)
}

// jsonCol scans a JSON column of either engine (TEXT or JSONB).
type jsonCol []byte

func (j *jsonCol) Scan(src any) error {
	switch v := src.(type) {
	case string:
		*j = []byte(v)
	case []byte:
		*j = append((*j)[:0], v...)
	case nil:
		*j = nil
	default:
		return fmt.Errorf("scan JSON column: unexpected %T", src)
	}
	return nil
}

// into decodes the column into v.
func (j jsonCol) into(v any) error {
	if len(j) == 0 {
		return nil
	}
	return json.Unmarshal(j, v)
}
