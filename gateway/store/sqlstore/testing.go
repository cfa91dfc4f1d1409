package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// PostgresTestEnv names the environment variable holding the PostgreSQL URL
// tests run against, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresTestEnv = "SWITCHBOARD_TEST_POSTGRES_URL"

// OpenTest returns a migrated SQLite store in a file under t.TempDir(),
// closed when the test ends. Other packages' tests use it for a real store.
func OpenTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "switchboard.db"), Options{Migrate: true})
	if err != nil {
		t.Fatalf("open test store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close test store: %v", err)
		}
	})
	return s
}

// OpenTestPostgres returns a migrated store in a fresh schema of the
// database named by $SWITCHBOARD_TEST_POSTGRES_URL, so parallel tests and
// packages never see each other's rows; the schema is dropped when the test
// ends. Without the variable the test is skipped.
func OpenTestPostgres(t testing.TB) *Store {
	t.Helper()
	base := os.Getenv(PostgresTestEnv)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", PostgresTestEnv)
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(base), err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	schema := "switchboard_test_" + randomHex(8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	// Registered before the store's cleanup, so it runs after the store
	// is closed.
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresTestEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := Open(ctx, u.String(), Options{Migrate: true, MaxReadConns: 4})
	if err != nil {
		t.Fatalf("open test store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close test store: %v", err)
		}
	})
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
