package sqlstore_test

import (
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/gateway/store/storetest"
)

// The audience cases run on both engines with the same expectations, which
// is what proves filter parity between SQLite and PostgreSQL.

func TestSQLiteAudience(t *testing.T) {
	t.Parallel()
	storetest.RunAudience(t, func(t *testing.T) store.Store { return sqlstore.OpenTest(t) })
}

func TestPostgresAudience(t *testing.T) {
	t.Parallel()
	storetest.RunAudience(t, func(t *testing.T) store.Store { return sqlstore.OpenTestPostgres(t) })
}
