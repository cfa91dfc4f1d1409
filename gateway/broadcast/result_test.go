package broadcast

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// noRequests is a store that holds no flow_trigger request.
type noRequests struct{ Store }

func (noRequests) GetFlowTrigger(_ context.Context, _, id string) (store.FlowTrigger, error) {
	return store.FlowTrigger{}, fmt.Errorf("get flow trigger %s: %w", id, store.ErrNotFound)
}

func TestRequestIDCarriesItsTime(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	id := newRequestID(at)
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("request id %q: %v, version %d, variant %v; want an RFC 9562 UUIDv7", id, err, u.Version(), u.Variant())
	}
	if got, ok := requestTime(id); !ok || !got.Equal(at) {
		t.Fatalf("requestTime(%s) = %v, %v; want %v", id, got, ok, at)
	}
	if newRequestID(at) == id {
		t.Fatal("two ids of one millisecond are equal")
	}
}

// TestUnknownRequestExpiredOrNotFound checks, on an injected clock, that
// an id missing from the store is expired only when it is older than the
// retention, and not found otherwise.
func TestUnknownRequestExpiredOrNotFound(t *testing.T) {
	now := time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)
	const keep = 30 * 24 * time.Hour
	s := &Service{Store: noRequests{}, Retention: keep, Now: func() time.Time { return now }}
	old := newRequestID(now.Add(-keep - time.Second))
	_, err := s.Result(t.Context(), "ch", old)
	var expired *ExpiredError
	if !errors.As(err, &expired) || expired.RequestID != old || expired.Retention != keep {
		t.Fatalf("request older than the retention: err = %v, want *ExpiredError", err)
	}
	for name, id := range map[string]string{
		"inside the retention":     newRequestID(now.Add(-keep + time.Second)),
		"a version 4 id":           uuid.NewString(),
		"not a uuid":               "req-1",
		"from the future, unknown": newRequestID(now.Add(time.Hour)),
	} {
		if _, err := s.Result(t.Context(), "ch", id); !errors.Is(err, store.ErrNotFound) || errors.As(err, &expired) {
			t.Errorf("%s: err = %v, want not found", name, err)
		}
	}
	s.Retention = -1 // kept for ever: nothing expires
	if _, err := s.Result(t.Context(), "ch", old); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("kept for ever: err = %v, want not found", err)
	}
}
