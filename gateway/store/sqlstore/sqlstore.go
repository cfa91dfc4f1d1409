// Package sqlstore implements store.Store on SQL databases: SQLite (the
// embedded default, through modernc.org/sqlite) and PostgreSQL (through pgx).
//
// One implementation serves both engines; the few real differences
// (placeholders, row locking, constraint error codes, connection setup) sit
// behind a small dialect value. Schemas are goose migrations embedded per
// dialect under migrations/.
//
// Storage conventions shared by both dialects: timestamps are integer
// microseconds since the Unix epoch, with 0 meaning unset (time.Time{}); JSON
// is TEXT on SQLite and JSONB on PostgreSQL, so JSON read back from
// PostgreSQL is semantically equal to what was written but not byte-equal.
//
// SQLite concurrency: every write and every transaction goes through one
// writer connection (SQLite has one writer anyway, and its busy handler is not
// fair between connections), while plain reads use a separate read-only pool.
// A consequence: inside WithTx, use only the Store passed to fn; writing
// through the outer Store from inside fn would wait for the connection fn
// holds.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/secrets"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// Migrate applies pending migrations before Open returns.
	Migrate bool
	// MaxReadConns bounds the SQLite read pool, or the whole PostgreSQL
	// pool. Default 4 for SQLite, 16 for PostgreSQL.
	MaxReadConns int
	// BusyTimeout is how long a SQLite statement waits for a lock held by
	// another process. Default 5 s.
	BusyTimeout time.Duration
	// Now is the clock used for timestamps the caller left zero. Default
	// time.Now.
	Now func() time.Time
	// Secrets seals channel secrets and bot call secrets at rest. Without
	// it, writing a secret fails with secrets.ErrNoKey and only
	// plaintext from before sealing can be read.
	Secrets *secrets.Keyring
}

// Store is store.Store on SQLite or PostgreSQL.
type Store struct {
	d      dialect
	conns  *conns
	now    func() time.Time
	writer conn // every write; the transaction inside WithTx
	reader conn // plain reads; the transaction inside WithTx
	inTx   bool
	keys   *secrets.Keyring
}

var _ store.Store = (*Store)(nil)

// dbtx is what *sql.DB and *sql.Tx have in common.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conns owns the connection pools; on PostgreSQL write and read are the same
// pool.
type conns struct {
	write *sql.DB
	read  *sql.DB
	stmts *stmtCache   // nil on PostgreSQL
	group *groupCommit // nil on PostgreSQL, where transactions run side by side
}

func (c *conns) close() error {
	var err error
	if c.stmts != nil {
		err = c.stmts.close()
	}
	err = errors.Join(err, c.write.Close())
	if c.read != c.write {
		err = errors.Join(err, c.read.Close())
	}
	return err
}

// Open connects to url, which is sqlite://PATH (relative or absolute; the
// parent directory is created) or postgres://… (also postgresql://…).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	var (
		d   dialect
		c   *conns
		err error
	)
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		d = sqliteDialect{}
		c, err = openSQLite(ctx, strings.TrimPrefix(url, "sqlite://"), opts)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		d = postgresDialect{}
		c, err = openPostgres(ctx, url, opts)
	default:
		return nil, fmt.Errorf("open store: unsupported database url %q (want sqlite://PATH or postgres://...)", redact(url))
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redact(url), err)
	}
	// Stored times have microsecond precision; the clock matches, so what
	// a method fills in equals what a later read returns.
	clock := func() time.Time { return opts.Now().UTC().Truncate(time.Microsecond) }
	s := &Store{d: d, conns: c, now: clock, keys: opts.Secrets,
		writer: conn{db: c.write, cache: c.stmts}, reader: conn{db: c.read, cache: c.stmts}}
	if opts.Migrate {
		if err := s.Migrate(ctx); err != nil {
			return nil, errors.Join(err, c.close())
		}
	}
	return s, nil
}

// redact hides a password in a database URL for error messages.
func redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return url
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return url
}

// Close releases the connections. Closing a Store obtained inside WithTx is
// a no-op.
func (s *Store) Close() error {
	if s.inTx {
		return nil
	}
	return s.conns.close()
}

// SecretKeyID is the id of the key secrets are sealed under, "" without
// one.
func (s *Store) SecretKeyID() string { return s.keys.CurrentID() }

// Dialect names the engine: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name() }

// WriteDB is the pool every write must use: on SQLite the single writer
// connection, on PostgreSQL the shared pool. Components that need raw SQL on
// the same database (e.g. a job queue library) must write through it, never
// through a second pool.
func (s *Store) WriteDB() *sql.DB { return s.conns.write }

// WithTx runs fn in one transaction. A Store already inside a transaction
// runs fn in that same transaction.
func (s *Store) WithTx(ctx context.Context, fn func(tx store.Store) error) error {
	return s.tx(ctx, func(tx *Store) error { return fn(tx) })
}

// tx is WithTx for this package's own multi-statement operations. On
// SQLite concurrent transactions commit in groups (see groupCommit).
func (s *Store) tx(ctx context.Context, fn func(tx *Store) error) (err error) {
	if s.inTx {
		return fn(s)
	}
	if s.conns.group != nil {
		err = s.conns.group.run(ctx, s, fn)
	} else {
		err = s.commitOne(ctx, fn)
	}
	if s.conns.stmts != nil {
		s.conns.stmts.preparePending(context.WithoutCancel(ctx), s.conns.write)
	}
	return err
}

// commitOne runs fn in a transaction of its own.
func (s *Store) commitOne(ctx context.Context, fn func(tx *Store) error) (err error) {
	sqlTx, err := s.conns.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", s.d.mapErr(err))
	}
	defer func() {
		if err != nil {
			// The rollback error adds nothing to fn's error.
			_ = sqlTx.Rollback()
		} else if err = sqlTx.Commit(); err != nil {
			err = fmt.Errorf("commit: %w", s.d.mapErr(err))
		}
	}()
	return fn(s.inside(sqlTx))
}

// inside is the Store that runs on sqlTx.
func (s *Store) inside(sqlTx *sql.Tx) *Store {
	in := *s
	in.writer = conn{db: s.conns.write, tx: sqlTx, cache: s.conns.stmts}
	in.reader, in.inTx = in.writer, true
	return &in
}

// exec runs a write written with ? placeholders. On SQLite a write outside
// a transaction joins the next group commit rather than committing alone.
func (s *Store) exec(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	return s.execHot(ctx, false, query, args...)
}

func (s *Store) execHot(ctx context.Context, hot bool, query string, args ...any) (res sql.Result, err error) {
	if !s.inTx && s.conns.group != nil {
		err = s.tx(ctx, func(tx *Store) error {
			res, err = tx.execHot(ctx, hot, query, args...)
			return err
		})
		return res, err
	}
	res, err = s.writer.exec(ctx, hot, s.d.rebind(query), args...)
	return res, s.d.mapErr(err)
}

// execCount runs a write and returns the number of rows it affected.
func (s *Store) execCount(ctx context.Context, query string, args ...any) (int, error) {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// query runs a read.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := s.reader.query(ctx, false, s.d.rebind(query), args...)
	return rows, s.d.mapErr(err)
}

// queryWrite runs a write that returns rows (RETURNING); hot says whether
// the query text recurs even though it is long (see stmtCache).
func (s *Store) queryWrite(ctx context.Context, hot bool, query string, args ...any) (*sql.Rows, error) {
	rows, err := s.writer.query(ctx, hot, s.d.rebind(query), args...)
	return rows, s.d.mapErr(err)
}

// execBatch runs a write; hot says whether the query text recurs even
// though it is long (see stmtCache).
func (s *Store) execBatch(ctx context.Context, hot bool, query string, args ...any) error {
	_, err := s.execHot(ctx, hot, query, args...)
	return err
}

// claimRows runs a claim (an UPDATE … RETURNING of the rows it picks),
// plan pinned, and collects what it returns.
func claimRows[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := s.pinned(ctx, func(tx *Store) error {
		rows, err := tx.queryWrite(ctx, true, query, args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scan)
		return err
	})
	return out, err
}

// pinned runs fn, where the dialect pins the plans of hot outbox
// statements, in a transaction of its own after the pin; elsewhere as it
// is.
func (s *Store) pinned(ctx context.Context, fn func(tx *Store) error) error {
	pin := s.d.pinPlan()
	if pin == "" {
		return fn(s)
	}
	return s.tx(ctx, func(tx *Store) error {
		if _, err := tx.writer.exec(ctx, false, pin); err != nil {
			return fmt.Errorf("pin plan: %w", err)
		}
		return fn(tx)
	})
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// getOne reads a single row with scan; no row is store.ErrNotFound.
func getOne[T any](ctx context.Context, s *Store, what string, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(s.reader.QueryRowContext(ctx, s.d.rebind(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("%s: %w", what, s.d.mapErr(err))
	}
	return v, nil
}

// collect reads every row of rows with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// list runs a read and collects its rows.
func list[T any](ctx context.Context, s *Store, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := collect(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// notFoundIfNone turns "no row affected" into store.ErrNotFound.
func notFoundIfNone(n int, err error, what string) error {
	return noneIs(store.ErrNotFound, n, err, what)
}

// noneIs turns "no row affected" into sentinel.
func noneIs(sentinel error, n int, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, sentinel)
	}
	return nil
}

// placeholders returns "(?, ?, …), (…)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(row) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// limitOrDefault applies the default page size of list methods.
func limitOrDefault(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

const defaultLimit = 100

// claimLimit is the LIMIT clause of a claim's subquery, written as a
// literal: SQLite recompiles a statement whose subquery has a bound LIMIT
// every time it runs (a bound value there may change the plan), which cost
// more than the claim itself. Limits above 64 are rounded down to a power
// of two (at most 1,024), so a bounded set of texts is prepared; a claim
// may take fewer rows than asked, never more.
func claimLimit(n int) string {
	p := min(limitOrDefault(n), 1024)
	if p > 64 {
		p = 1 << (bits.Len(uint(p)) - 1)
	}
	return " LIMIT " + strconv.Itoa(p)
}
