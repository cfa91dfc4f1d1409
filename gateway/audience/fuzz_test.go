package audience

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// The seed corpora under testdata/fuzz are the Customer.io doc examples
// the e2e tests send (gateway/e2e/audience_api_test.go) and the shapes
// the hardening issue found (segments of segments).

// fuzzSegments is a fixed workspace of segments: 1 manual, 2 a 999-way or
// (999 conditions), 3 an or of two references to 2 (1,998), 4 a not of 3,
// 5 a chain of 30 nots, 6 a segment that names itself.
type fuzzSegments map[int64]store.Segment

func newFuzzSegments() fuzzSegments {
	wide := &store.Filter{}
	for range 999 {
		wide.Or = append(wide.Or, store.Filter{Attribute: &store.AttributeCond{Field: "n", Operator: store.OpExists}})
	}
	ref := func(id int64) store.Filter { return store.Filter{Segment: &store.SegmentRef{ID: id}} }
	chain := ref(1)
	for range 30 {
		inner := chain
		chain = store.Filter{Not: &inner}
	}
	three, self := ref(3), ref(6)
	return fuzzSegments{
		1: {ID: 1},
		2: {ID: 2, Filter: wide},
		3: {ID: 3, Filter: &store.Filter{Or: []store.Filter{ref(2), ref(2)}}},
		4: {ID: 4, Filter: &store.Filter{Not: &three}},
		5: {ID: 5, Filter: &chain},
		6: {ID: 6, Filter: &self},
	}
}

func (s fuzzSegments) GetSegment(_ context.Context, _ string, id int64) (store.Segment, error) {
	sg, ok := s[id]
	if !ok {
		return store.Segment{}, store.ErrNotFound
	}
	return sg, nil
}

// naiveSize expands f without memo or early exit, counting conditions
// and levels up to cap: the oracle CheckFilter is held to.
func naiveSize(s fuzzSegments, f *store.Filter, depth int, seen map[int64]bool) (conditions, maxDepth int, cyclic bool) {
	const stop = 100_000
	switch {
	case len(f.And) > 0 || len(f.Or) > 0:
		maxDepth = depth
		for _, sub := range append(append([]store.Filter{}, f.And...), f.Or...) {
			c, d, cyc := naiveSize(s, &sub, depth+1, seen)
			conditions, maxDepth, cyclic = min(conditions+c, stop), max(maxDepth, d), cyclic || cyc
		}
		return conditions, maxDepth, cyclic
	case f.Not != nil:
		return naiveSize(s, f.Not, depth+1, seen)
	case f.Segment != nil:
		sg, ok := s[f.Segment.ID]
		if !ok || sg.Filter == nil {
			return 1, depth, false
		}
		if seen[sg.ID] {
			return 0, depth, true
		}
		seen[sg.ID] = true
		defer delete(seen, sg.ID)
		return naiveSize(s, sg.Filter, depth+1, seen)
	}
	return 1, depth, false
}

// FuzzTriggerRequest: parsing never panics; an accepted request encodes
// to a body that parses to the same request (its encoding is stable);
// and its recipients filter passes CheckFilter only if, expanded, it is
// within the limits.
func FuzzTriggerRequest(f *testing.F) {
	segs := newFuzzSegments()
	lim := Limits{MaxListItems: 50, Filter: FilterLimits{MaxLeaves: 1000, MaxDepth: 10, MaxExpandedDepth: 20}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseTriggerRequest(bytes.NewReader(body), lim)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Status < 400 || fe.Status > 499 || fe.Detail == "" {
				t.Fatalf("refusal %v is not a client error with a message", err)
			}
			return
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("accepted request does not encode: %v", err)
		}
		again, err := ParseTriggerRequest(bytes.NewReader(enc), lim)
		if err != nil {
			t.Fatalf("re-encoded request %s is refused: %v", enc, err)
		}
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-parse changed the request:\n%s\n%s", enc, enc2)
		}
		if req.Recipients == nil {
			return
		}
		err = CheckFilter(context.Background(), segs, "w", req.Recipients, "/recipients", lim.Filter)
		conditions, depth, cyclic := naiveSize(segs, req.Recipients, 1, map[int64]bool{})
		var fe *FieldError
		switch {
		case err == nil && (cyclic || conditions > lim.Filter.MaxLeaves || depth > lim.Filter.MaxExpandedDepth):
			t.Fatalf("accepted a filter of %d conditions, %d levels (cyclic %v)", conditions, depth, cyclic)
		case err != nil && (!errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity):
			t.Fatalf("refusal %v is not a 422", err)
		case err != nil && fe.Code == "filter_too_large" && conditions <= lim.Filter.MaxLeaves && depth <= lim.Filter.MaxExpandedDepth:
			t.Fatalf("refused a filter of %d conditions, %d levels: %v", conditions, depth, err)
		}
	})
}

// FuzzBroadcast: broadcast bodies never panic the parser, every refusal
// is a client error with a message, and an accepted broadcast re-encoded
// in the API's shape parses to the same broadcast.
func FuzzBroadcast(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var b store.Broadcast
		if err := ParseBroadcast(body, FilterLimits{}, &b); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Status < 400 || fe.Status > 499 || fe.Detail == "" {
				t.Fatalf("refusal %v is not a client error with a message", err)
			}
			return
		}
		encode := func(b store.Broadcast) []byte {
			enc, err := json.Marshal(map[string]any{"name": b.Name, "description": b.Description,
				"recipients": b.Recipients, "actions": b.Actions, "goal": b.Goal})
			if err != nil {
				t.Fatalf("accepted broadcast does not encode: %v", err)
			}
			return enc
		}
		enc := encode(b)
		var again store.Broadcast
		if err := ParseBroadcast(enc, FilterLimits{}, &again); err != nil {
			t.Fatalf("re-encoded broadcast %s is refused: %v", enc, err)
		}
		if enc2 := encode(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-parse changed the broadcast:\n%s\n%s", enc, enc2)
		}
	})
}
