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

	"github.com/switchboard-gw/switchboard/gateway/secrets"
)

// PostgresTestEnv names the environment variable holding the PostgreSQL URL
// tests run against, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresTestEnv = "SWITCHBOARD_TEST_POSTGRES_URL"

// OpenTest returns a migrated SQLite store in a file under t.TempDir(),
// sealing with a random key, closed when the test ends. Other packages'
// tests use it for a real store.
func OpenTest(t testing.TB) *Store {
	t.Helper()
	return OpenTestWith(t, Options{Secrets: TestKeyring(t)})
}

// TestKeyring returns a keyring of one random key.
func TestKeyring(t testing.TB) *secrets.Keyring {
	t.Helper()
	k, err := secrets.NewKeyring(secrets.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// WithSecrets returns a Store on s's connections that seals with keys, as
// the same database opened with other keys would. Tests use it to rotate
// keys; closing it closes s's connections.
func (s *Store) WithSecrets(keys *secrets.Keyring) *Store {
	c := *s
	c.keys = keys
	return &c
}

// OpenTestWith is OpenTest with opts (migrated; opts.Secrets as given, nil
// included).
func OpenTestWith(t testing.TB, opts Options) *Store {
	t.Helper()
	opts.Migrate = true
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "switchboard.db"), opts)
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
// packages never see each other's rows, sealing with a random key; the
// schema is dropped when the test ends. Without the variable the test is
// skipped.
func OpenTestPostgres(t testing.TB) *Store {
	t.Helper()
	return OpenTestPostgresWith(t, Options{Secrets: TestKeyring(t)})
}

// OpenTestPostgresWith is OpenTestPostgres with opts (migrated, at most 4
// connections; opts.Secrets as given, nil included).
func OpenTestPostgresWith(t testing.TB, opts Options) *Store {
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
	opts.Migrate, opts.MaxReadConns = true, 4
	s, err := Open(ctx, u.String(), opts)
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
