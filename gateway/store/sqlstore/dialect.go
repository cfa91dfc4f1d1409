package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// dialect holds what differs between the engines. Queries are written once,
// with ? placeholders and standard SQL (ON CONFLICT, RETURNING, UPDATE …
// FROM (VALUES …)) that both engines accept.
type dialect interface {
	name() string
	goose() goose.Dialect
	// rebind rewrites ? placeholders into the engine's syntax.
	rebind(query string) string
	// lockSkipLocked ends a SELECT that picks rows to claim, so that
	// concurrent claimers never pick the same row. SQLite serializes
	// writers and needs nothing.
	lockSkipLocked() string
	// lockForUpdate ends a SELECT whose rows are about to be updated.
	lockForUpdate() string
	// phoneAttr is a person's phone attribute as text, written as the
	// people_phone index has it.
	phoneAttr() string
	// pinPlan is run in the transaction of a claim or of an outcome
	// update before it, or is empty. See pinned.
	pinPlan() string
	// mapErr wraps constraint violations with store.ErrConflict (unique) or
	// store.ErrNotFound (foreign key: the referenced record is missing).
	mapErr(err error) error
}

type sqliteDialect struct{}

func (sqliteDialect) name() string           { return "sqlite" }
func (sqliteDialect) goose() goose.Dialect   { return goose.DialectSQLite3 }
func (sqliteDialect) rebind(q string) string { return q }
func (sqliteDialect) lockSkipLocked() string { return "" }
func (sqliteDialect) lockForUpdate() string  { return "" }
func (sqliteDialect) pinPlan() string        { return "" }
func (sqliteDialect) phoneAttr() string      { return `json_extract(attributes, '$.phone')` }

func (sqliteDialect) mapErr(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: referenced record missing: %w", store.ErrNotFound, err)
	}
	return err
}

type postgresDialect struct{}

func (postgresDialect) name() string           { return "postgres" }
func (postgresDialect) goose() goose.Dialect   { return goose.DialectPostgres }
func (postgresDialect) lockSkipLocked() string { return " FOR UPDATE SKIP LOCKED" }
func (postgresDialect) lockForUpdate() string  { return " FOR UPDATE" }
func (postgresDialect) phoneAttr() string      { return `(attributes ->> 'phone')` }

// pinPlan leaves the planner one way to run the hot outbox statements:
// walk the due index in order and stop at the limit (claims), and look
// rows up by primary key one at a time (the outcomes of a batch, the rows
// a claim picked). Without it, a planner that thinks the outbox nearly
// empty (never analyzed, or vacuumed after a drain, and autovacuum's
// analyze lags a burst) reads every due row, probes each and sorts them
// all, for every claim, and hashes every row the node is sending for
// every batch's outcomes.
func (postgresDialect) pinPlan() string {
	return "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; " +
		"SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
}

// rebind numbers placeholders $1, $2, …. Queries in this package never hold
// a literal question mark, so no quoting rules are needed.
func (postgresDialect) rebind(q string) string {
	n := strings.Count(q, "?")
	if n == 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + n*5)
	i := 0
	for {
		j := strings.IndexByte(q, '?')
		if j < 0 {
			b.WriteString(q)
			return b.String()
		}
		i++
		b.WriteString(q[:j])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(i))
		q = q[j+1:]
	}
}

func (postgresDialect) mapErr(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case "23503": // foreign_key_violation
		return fmt.Errorf("%w: referenced record missing: %w", store.ErrNotFound, err)
	}
	return err
}

// openSQLite opens the writer connection and the read pool on one file.
func openSQLite(ctx context.Context, path string, opts Options) (*conns, error) {
	if path == "" {
		return nil, errors.New("empty sqlite path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	pragmas := url.Values{}
	pragmas.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	pragmas.Add("_pragma", "foreign_keys(1)")
	pragmas.Add("_pragma", "synchronous(NORMAL)")
	pragmas.Add("_pragma", "cache_size(-65536)")
	pragmas.Add("_pragma", "temp_store(MEMORY)")
	// Every write transaction takes the write lock at BEGIN: a deferred
	// transaction that reads first and then writes can fail with
	// SQLITE_BUSY instead of waiting.
	pragmas.Set("_txlock", "immediate")
	// Checkpoints copy the WAL into the database and sync it; every 4,000
	// pages (16 MB) rather than SQLite's 1,000, a sustained fan-out syncs a
	// quarter as often.
	writeDSN := "file:" + path + "?" + pragmas.Encode() + "&_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(4000)"
	pragmas.Add("_pragma", "query_only(1)")
	readDSN := "file:" + path + "?" + pragmas.Encode()

	write, err := sql.Open("sqlite", writeDSN)
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	// The writer connection is opened first so WAL mode is set before any
	// reader connects.
	if err := write.PingContext(ctx); err != nil {
		return nil, errors.Join(err, write.Close())
	}
	read, err := sql.Open("sqlite", readDSN)
	if err != nil {
		return nil, errors.Join(err, write.Close())
	}
	n := opts.MaxReadConns
	if n <= 0 {
		n = 4
	}
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	return &conns{write: write, read: read, stmts: newStmtCache(), group: &groupCommit{}}, nil
}

// createPrivate creates the database file, empty, readable and writable by
// its owner only (0600 whatever the umask), unless it exists. SQLite gives
// the -wal and -shm files it creates beside it the same mode. An existing
// file keeps its mode: the operator chose it.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if err := errors.Join(f.Chmod(0o600), f.Close()); err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	return nil
}

// openPostgres opens one pool used for reads and writes.
func openPostgres(ctx context.Context, url string, opts Options) (*conns, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	n := opts.MaxReadConns
	if n <= 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return &conns{write: db, read: db}, nil
}
