package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// Statement cache bounds. A query with more arguments than cacheMaxArgs is
// a variable-length list (VALUES rows, IN lists) and is cached only when its
// caller says the exact text recurs; beyond cacheMaxStmts texts per pool
// (compiled audience filters are open-ended) statements run unprepared.
const (
	cacheMaxArgs  = 64
	cacheMaxStmts = 512
)

// stmtCache keeps prepared statements by query text for SQLite, whose driver
// compiles every unprepared statement again (a quarter of a conversation
// turn's CPU went to compiling the same few statements). PostgreSQL's driver
// caches prepared statements per connection itself and gets no cache.
//
// Inside a transaction a statement can only be prepared on the
// transaction's connection, and preparing on the pool would wait for that
// very connection (SQLite has one writer); so a text first seen inside a
// transaction runs unprepared and is prepared on the pool once the
// transaction ends.
type stmtCache struct {
	mu      sync.Mutex
	pools   map[*sql.DB]map[string]*sql.Stmt
	pending map[string]bool // first seen inside a transaction on the writer
}

func newStmtCache() *stmtCache {
	return &stmtCache{pools: map[*sql.DB]map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

func (c *stmtCache) lookup(db *sql.DB, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pools[db][query]
}

// prepare returns db's statement for query, preparing it unless the pool's
// cache is full (then nil: run it unprepared).
func (c *stmtCache) prepare(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	if st := c.lookup(db, query); st != nil {
		return st, nil
	}
	c.mu.Lock()
	full := len(c.pools[db]) >= cacheMaxStmts
	c.mu.Unlock()
	if full {
		return nil, nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.pools[db]
	if m == nil {
		m = map[string]*sql.Stmt{}
		c.pools[db] = m
	}
	if prev, ok := m[query]; ok { // another goroutine prepared it first
		_ = st.Close()
		return prev, nil
	}
	m[query] = st
	return st, nil
}

// prepareLater remembers a text seen inside a transaction on the writer.
func (c *stmtCache) prepareLater(query string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) < cacheMaxStmts {
		c.pending[query] = true
	}
}

// preparePending prepares, on the writer pool, the texts first seen inside
// transactions. Call it when no transaction of this goroutine holds the
// writer.
func (c *stmtCache) preparePending(ctx context.Context, writer *sql.DB) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(c.pending))
	for q := range c.pending {
		queries = append(queries, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	for _, q := range queries {
		// A text that does not prepare fails where it runs, with its
		// caller's context; here it simply stays uncached.
		_, _ = c.prepare(ctx, writer, q)
	}
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for _, m := range c.pools {
		for _, st := range m {
			if e := st.Close(); e != nil && err == nil {
				err = e
			}
		}
	}
	return err
}

// conn is what a Store runs its statements on: a pool, or the transaction
// inside WithTx (tx set, db the writer pool it runs on). It is a dbtx that
// goes through the statement cache when the store has one.
type conn struct {
	db    *sql.DB
	tx    *sql.Tx
	cache *stmtCache // nil: no caching
}

var _ dbtx = conn{}

// statement returns the prepared statement to run query with, or nil to
// run it unprepared. Hot says the exact text recurs whatever its length.
func (c conn) statement(ctx context.Context, hot bool, query string, nargs int) (*sql.Stmt, error) {
	if c.cache == nil || (!hot && nargs > cacheMaxArgs) {
		return nil, nil
	}
	if c.tx == nil {
		return c.cache.prepare(ctx, c.db, query)
	}
	st := c.cache.lookup(c.db, query)
	if st == nil {
		c.cache.prepareLater(query)
		return nil, nil
	}
	return c.tx.StmtContext(ctx, st), nil
}

func (c conn) on() dbtx {
	if c.tx != nil {
		return c.tx
	}
	return c.db
}

func (c conn) exec(ctx context.Context, hot bool, query string, args ...any) (sql.Result, error) {
	st, err := c.statement(ctx, hot, query, len(args))
	if err != nil {
		return nil, err
	}
	if st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.on().ExecContext(ctx, query, args...)
}

func (c conn) query(ctx context.Context, hot bool, query string, args ...any) (*sql.Rows, error) {
	st, err := c.statement(ctx, hot, query, len(args))
	if err != nil {
		return nil, err
	}
	if st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.on().QueryContext(ctx, query, args...)
}

func (c conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.exec(ctx, false, query, args...)
}

func (c conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.query(ctx, false, query, args...)
}

func (c conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.statement(ctx, false, query, len(args))
	if st != nil && err == nil {
		return st.QueryRowContext(ctx, args...)
	}
	// A failed prepare is reported by running the statement unprepared,
	// which fails the same way and returns the error through the Row.
	return c.on().QueryRowContext(ctx, query, args...)
}
