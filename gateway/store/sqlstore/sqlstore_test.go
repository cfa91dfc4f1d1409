package sqlstore_test

import (
	"testing"

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
