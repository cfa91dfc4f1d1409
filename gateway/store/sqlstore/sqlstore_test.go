package sqlstore_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/secrets"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/gateway/store/storetest"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return sqlstore.OpenTest(t) })
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return sqlstore.OpenTestPostgres(t) })
}

// outboxRows is what one BenchmarkOutbox iteration pushes through.
const outboxRows = 100_000

func BenchmarkOutbox(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { storetest.BenchOutbox(b, sqlstore.OpenTest(b), outboxRows) })
	b.Run("postgres", func(b *testing.B) { storetest.BenchOutbox(b, sqlstore.OpenTestPostgres(b), outboxRows) })
}

func TestSecretsSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunSecrets(t, secretsHarness(func(t *testing.T, keys *secrets.Keyring) *sqlstore.Store {
		return sqlstore.OpenTestWith(t, sqlstore.Options{Secrets: keys})
	}))
}

func TestSecretsPostgres(t *testing.T) {
	t.Parallel()
	storetest.RunSecrets(t, secretsHarness(func(t *testing.T, keys *secrets.Keyring) *sqlstore.Store {
		return sqlstore.OpenTestPostgresWith(t, sqlstore.Options{Secrets: keys})
	}))
}

// secretsHarness reads and writes the stored form with plain SQL on the
// store's own write pool.
func secretsHarness(open func(t *testing.T, keys *secrets.Keyring) *sqlstore.Store) storetest.SecretsHarness {
	rebind := func(st store.Store, q string) string {
		if st.(*sqlstore.Store).Dialect() != "postgres" {
			return q
		}
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", "$"+strconv.Itoa(i), 1)
		}
		return q
	}
	return storetest.SecretsHarness{
		Open: func(t *testing.T, keys *secrets.Keyring) store.Store { return open(t, keys) },
		Rekey: func(st store.Store, keys *secrets.Keyring) store.Store {
			return st.(*sqlstore.Store).WithSecrets(keys)
		},
		Query: func(t *testing.T, st store.Store, q string, args ...any) string {
			t.Helper()
			var v string
			if err := st.(*sqlstore.Store).WriteDB().QueryRowContext(t.Context(), rebind(st, q), args...).Scan(&v); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return v
		},
		Exec: func(t *testing.T, st store.Store, q string, args ...any) {
			t.Helper()
			if _, err := st.(*sqlstore.Store).WriteDB().ExecContext(t.Context(), rebind(st, q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
	}
}
