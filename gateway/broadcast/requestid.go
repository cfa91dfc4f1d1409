package broadcast

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Request ids are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then
// random bits. The time they carry is how GET /v1/api/broadcasts/{id}
// tells an id whose record the cleaner deleted (expired) from one it
// never gave out, without keeping anything of the deleted request.

// newRequestID returns a UUIDv7 for a request accepted at now (the
// service's clock, so tests control it).
func newRequestID(now time.Time) string {
	id := uuid.New() // version 4: random, the variant already set
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(now.UnixMilli()))
	copy(id[:6], ms[2:])
	id[6] = id[6]&0x0f | 0x70 // version 7
	return id.String()
}

// requestTime is when a request id was given out; false for ids that
// carry no time (other versions, and the version 4 ids of gateways before
// retention).
func requestTime(id string) (time.Time, bool) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return time.Time{}, false
	}
	var ms [8]byte
	copy(ms[2:], u[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(ms[:]))), true
}

// ExpiredError: the request was accepted longer ago than requests are
// kept, and its record is deleted.
type ExpiredError struct {
	RequestID  string
	AcceptedAt time.Time
	Retention  time.Duration
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("broadcast request %q was accepted at %s and expired: requests and their results are kept for %s (retention.flow_triggers)",
		e.RequestID, e.AcceptedAt.UTC().Format(time.RFC3339), e.Retention)
}
