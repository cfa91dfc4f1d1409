package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// groupMax caps how many transactions one commit carries, so a caller that
// joins a group waits for a bounded amount of others' work.
const groupMax = 64

// groupCommit merges concurrent transactions on SQLite into one.
//
// SQLite runs one write transaction at a time, and at a few hundred
// microseconds of WAL writes per commit, committing is most of what a small
// transaction (a conversation turn, an accepted broadcast) costs. While one
// transaction runs, the others queue here; the next one to run takes the
// whole queue and runs each function in its own savepoint of one
// transaction: a function that fails rolls back to its savepoint and gets
// its error, the others commit together and get nil (or, if the commit
// itself fails, its error: then none of them took effect). Each caller
// returns only after the commit that carried its work, so WithTx keeps its
// meaning; a lone transaction runs as before, without savepoints.
type groupCommit struct {
	mu      sync.Mutex
	running bool
	queue   []*groupTx
	commits atomic.Int64 // transactions begun, for tests and metrics
}

type groupTx struct {
	ctx    context.Context
	fn     func(tx *Store) error
	done   chan struct{}
	lead   bool // set before done is closed: run the next group
	err    error
	panicV any
}

// run runs fn in a transaction, alone or with others queued meanwhile.
func (g *groupCommit) run(ctx context.Context, s *Store, fn func(tx *Store) error) error {
	t := &groupTx{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, t)
	if g.running {
		g.mu.Unlock()
		<-t.done
		if !t.lead {
			return t.result()
		}
	} else {
		g.running = true
		g.mu.Unlock()
	}
	// This caller runs the next group, which includes its own function
	// (it is queued, and groups are taken in order), then hands over.
	for {
		g.mu.Lock()
		n := min(len(g.queue), groupMax)
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		s.commitGroup(batch)
		mine := false
		for _, b := range batch {
			if b == t {
				mine = true
			} else {
				close(b.done)
			}
		}
		if mine {
			break
		}
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		next.lead = true
		close(next.done)
	} else {
		g.running = false
	}
	g.mu.Unlock()
	return t.result()
}

func (t *groupTx) result() error {
	if t.panicV != nil {
		panic(t.panicV)
	}
	return t.err
}

// commitGroup runs batch in one transaction and records each outcome.
func (s *Store) commitGroup(batch []*groupTx) {
	s.conns.group.commits.Add(1)
	// The transaction outlives any one caller's context; each function's
	// statements still run under its own.
	ctx := context.WithoutCancel(batch[0].ctx)
	sqlTx, err := s.conns.write.BeginTx(ctx, nil)
	if err != nil {
		for _, t := range batch {
			t.err = fmt.Errorf("begin: %w", s.d.mapErr(err))
		}
		return
	}
	in := s.inside(sqlTx)
	if len(batch) == 1 {
		t := batch[0]
		if t.err = call(t, in); t.err != nil || t.panicV != nil {
			_ = sqlTx.Rollback() // the function's error says what went wrong
			return
		}
		if err := sqlTx.Commit(); err != nil {
			t.err = fmt.Errorf("commit: %w", s.d.mapErr(err))
		}
		return
	}
	var committed []*groupTx
	// One savepoint name serves every function (each is released before
	// the next begins), so the three statements stay prepared.
	sp := func(stmt string) error {
		_, err := in.writer.exec(ctx, false, stmt)
		return err
	}
	for _, t := range batch {
		if err := sp("SAVEPOINT grouped"); err != nil {
			abort(sqlTx, batch, fmt.Errorf("savepoint: %w", err))
			return
		}
		t.err = call(t, in)
		if t.err == nil && t.panicV == nil {
			if err := sp("RELEASE grouped"); err != nil {
				abort(sqlTx, batch, fmt.Errorf("release savepoint: %w", err))
				return
			}
			committed = append(committed, t)
			continue
		}
		// A statement that failed may have ended the whole transaction
		// (SQLite rolls back on some errors, e.g. an interrupt): then
		// nothing of the group can commit.
		if err := sp("ROLLBACK TO grouped"); err != nil {
			abort(sqlTx, batch, fmt.Errorf("transaction ended by a failed statement: %w", err))
			return
		}
		if err := sp("RELEASE grouped"); err != nil {
			abort(sqlTx, batch, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if err := sqlTx.Commit(); err != nil {
		for _, t := range committed {
			t.err = fmt.Errorf("commit: %w", s.d.mapErr(err))
		}
	}
}

// abort rolls the group back: every function that had not failed by
// itself gets err, since its writes are gone.
func abort(sqlTx *sql.Tx, batch []*groupTx, err error) {
	_ = sqlTx.Rollback()
	for _, t := range batch {
		if t.err == nil && t.panicV == nil {
			t.err = err
		}
	}
}

// call runs t's function, keeping a panic to re-raise in t's caller.
func call(t *groupTx, in *Store) (err error) {
	defer func() {
		if v := recover(); v != nil {
			t.panicV = v
		}
	}()
	return t.fn(in)
}
