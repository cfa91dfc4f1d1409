package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// countingStore counts the writes Authenticate makes.
type countingStore struct {
	*sqlstore.Store
	uses int
}

func (c *countingStore) RecordAPIKeyUse(ctx context.Context, id string, at, since time.Time) error {
	c.uses++
	return c.Store.RecordAPIKeyUse(ctx, id, at, since)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t testing.TB) (*countingStore, *clock, *auth.Authenticator) {
	t.Helper()
	return setupOn(t, sqlstore.OpenTest(t))
}

func setupOn(t testing.TB, st *sqlstore.Store) (*countingStore, *clock, *auth.Authenticator) {
	t.Helper()
	if err := st.UpsertWorkspace(context.Background(), store.Workspace{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	c := &clock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	return cs, c, &auth.Authenticator{Keys: cs, Now: c.now}
}

func newKey(t testing.TB, st store.Tenancy, now time.Time) (string, store.APIKey) {
	t.Helper()
	raw, k, err := auth.NewKey("w", store.ScopeApp, "", "ci", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return raw, k
}

func TestRevokedKeyIsRefusedAtOnce(t *testing.T) {
	st, c, a := setup(t)
	ctx := context.Background()
	raw, k := newKey(t, st, c.t)
	if _, err := a.Authenticate(ctx, raw, store.ScopeApp); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAPIKey(ctx, "w", k.ID); err != nil {
		t.Fatal(err)
	}
	// The very next request, same instant, same Authenticator.
	if _, err := a.Authenticate(ctx, raw, store.ScopeApp); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("revoked key: %v, want ErrUnauthorized", err)
	}
}

func TestExpiredKeyIsRefused(t *testing.T) {
	st, c, a := setup(t)
	ctx := context.Background()
	raw, k := newKey(t, st, c.t)
	if err := st.ExpireAPIKey(ctx, "w", k.ID, c.t.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(24*time.Hour - time.Second)
	if _, err := a.Authenticate(ctx, raw, store.ScopeApp); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	c.t = c.t.Add(time.Second)
	if _, err := a.Authenticate(ctx, raw, store.ScopeApp); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("at expiry: %v, want ErrUnauthorized", err)
	}
}

// TestLastUseIsRecordedOncePerMinute: a key used on every request is
// written at most once a minute.
func TestLastUseIsRecordedOncePerMinute(t *testing.T) {
	st, c, a := setup(t)
	ctx := context.Background()
	raw, k := newKey(t, st, c.t)
	start := c.t
	for range 100 { // 100 requests, 1 s apart
		if _, err := a.Authenticate(ctx, raw, store.ScopeApp); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(time.Second)
	}
	if st.uses != 2 { // at 0 s and at 60 s
		t.Fatalf("%d writes for 100 requests over 100 s, want 2", st.uses)
	}
	got, err := st.GetAPIKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("last used = %v, want %v", got.LastUsedAt, start.Add(time.Minute))
	}
}

// BenchmarkAuthenticate is the per-request cost of not caching keys: one
// read by a unique index.
func BenchmarkAuthenticate(b *testing.B) {
	for name, open := range map[string]func(testing.TB) *sqlstore.Store{
		"sqlite": sqlstore.OpenTest, "postgres": sqlstore.OpenTestPostgres,
	} {
		b.Run(name, func(b *testing.B) {
			st, c, a := setupOn(b, open(b))
			raw, _ := newKey(b, st, c.t)
			ctx := context.Background()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, raw, store.ScopeApp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestOperatorKeys(t *testing.T) {
	raw, digest, err := auth.NewOperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	other, otherDigest, err := auth.NewOperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, auth.OperatorPrefix) || len(raw) != len(auth.OperatorPrefix)+43 || len(digest) != 64 {
		t.Fatalf("operator key %q digest %q: want sbo_ and 43 digits, 64 hex digits", raw, digest)
	}
	keys, err := auth.ParseOperatorKeys([]string{otherDigest, digest})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys.Match(raw); got != 1 {
		t.Errorf("Match(listed key) = %d, want 1", got)
	}
	if got := keys.Match(other); got != 0 {
		t.Errorf("Match(other listed key) = %d, want 0", got)
	}
	if got := keys.Match(digest); got != -1 {
		t.Errorf("Match(the digest itself) = %d, want -1", got)
	}
	if got := keys.Match(raw + "x"); got != -1 {
		t.Errorf("Match(altered key) = %d, want -1", got)
	}
	if _, err := auth.ParseOperatorKeys([]string{raw}); err == nil {
		t.Error("ParseOperatorKeys accepted a raw key for a digest")
	}
}
