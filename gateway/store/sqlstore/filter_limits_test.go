package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// engines runs a test on SQLite and PostgreSQL.
func engines(t *testing.T, test func(t *testing.T, s *sqlstore.Store)) {
	for name, open := range map[string]func(testing.TB) *sqlstore.Store{
		"sqlite": sqlstore.OpenTest, "postgres": sqlstore.OpenTestPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
}

func attrEq(field string, v int) store.Filter {
	return store.Filter{Attribute: &store.AttributeCond{Field: field, Operator: store.OpEq, Value: []byte(fmt.Sprint(v))}}
}

// wideOr is an or of n filters made by item.
func wideOr(n int, item func(i int) store.Filter) *store.Filter {
	f := &store.Filter{}
	for i := range n {
		f.Or = append(f.Or, item(i))
	}
	return f
}

func setup(t *testing.T, s *sqlstore.Store) context.Context {
	ctx := context.Background()
	if err := s.UpsertWorkspace(ctx, store.Workspace{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// TestWideFilterCompiles: a 1,000-way or (the audience API's limit)
// compiles to SQL both engines take: groups are balanced trees, where a
// flat chain is as deep as it is long (SQLite refuses depth 1,000).
func TestWideFilterCompiles(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := setup(t, s)
		if _, err := s.UpsertPerson(ctx, store.Person{WorkspaceID: "w", ID: "p", Attributes: map[string]any{"n": 999}}); err != nil {
			t.Fatal(err)
		}
		n, err := s.CountRecipients(ctx, "w", wideOr(1000, func(i int) store.Filter { return attrEq("n", i) }))
		if err != nil || n != 1 {
			t.Fatalf("count = %d, %v; want 1", n, err)
		}
	})
}

// TestSegmentExpansionBounded is row 5 of the hardening issue at the
// compile level: segments of segments that expand to tens of thousands of
// conditions (30-way ors, 3 levels: 27,000), or nest deeper than the
// engines allow, are refused with a FilterTooLargeError naming the
// outermost segment, before any SQL is built or run.
func TestSegmentExpansionBounded(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := setup(t, s)
		prev := &store.Segment{WorkspaceID: "w", Name: "s1", Filter: wideOr(30, func(i int) store.Filter { return attrEq("n", i) })}
		if err := s.CreateSegment(ctx, prev); err != nil {
			t.Fatal(err)
		}
		for level := 2; level <= 3; level++ {
			id := prev.ID
			prev = &store.Segment{WorkspaceID: "w", Name: fmt.Sprint("s", level),
				Filter: wideOr(30, func(int) store.Filter { return store.Filter{Segment: &store.SegmentRef{ID: id}} })}
			if err := s.CreateSegment(ctx, prev); err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.CountRecipients(ctx, "w", &store.Filter{Segment: &store.SegmentRef{ID: prev.ID}})
		var tl *store.FilterTooLargeError
		if !errors.As(err, &tl) || tl.Segment != prev.ID || tl.Levels || !errors.Is(err, store.ErrInvalidFilter) {
			t.Fatalf("err = %v, want a FilterTooLargeError for segment %d", err, prev.ID)
		}
		if want := fmt.Sprintf("segment %d expands to more than 5,000 conditions; the limit is 5,000", prev.ID); tl.Error() != want {
			t.Fatalf("message %q, want %q", tl.Error(), want)
		}
		_, err = s.ListRecipients(ctx, store.RecipientQuery{WorkspaceID: "w", Limit: 10,
			Filter: &store.Filter{And: []store.Filter{{Segment: &store.SegmentRef{ID: prev.ID}}}}})
		if !errors.As(err, &tl) {
			t.Fatalf("list: err = %v, want a FilterTooLargeError", err)
		}

		deep := attrEq("n", 1)
		for range 60 {
			inner := deep
			deep = store.Filter{Not: &inner}
		}
		_, err = s.CountRecipients(ctx, "w", &deep)
		if !errors.As(err, &tl) || !tl.Levels || tl.Segment != 0 {
			t.Fatalf("deep: err = %v, want a FilterTooLargeError for depth", err)
		}
	})
}
