package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// TestGroupCommit runs transactions side by side while one holds the
// writer, so the rest queue and commit as one group: each function's
// outcome is its own (an error or a panic rolls back only its writes), and
// fewer transactions are begun than functions run.
func TestGroupCommit(t *testing.T) {
	s := OpenTest(t)
	ctx := context.Background()
	if _, err := s.exec(ctx, `CREATE TABLE scratch (n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	insert := func(tx *Store, n int) error {
		_, err := tx.exec(ctx, `INSERT INTO scratch (n) VALUES (?)`, n)
		return err
	}
	errOdd := errors.New("odd numbers fail")
	const n = 40
	holding, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.tx(ctx, func(tx *Store) error {
			close(holding)
			<-release
			return insert(tx, 1000)
		})
	}()
	<-holding
	before := s.conns.group.commits.Load()

	var wg sync.WaitGroup
	errs := make([]error, n)
	panics := make([]any, n)
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			errs[i] = s.tx(ctx, func(tx *Store) error {
				if err := insert(tx, i); err != nil {
					return err
				}
				switch {
				case i == 7:
					panic("seven panics")
				case i%2 == 1:
					return errOdd
				case i == 10:
					return insert(tx, 1000) // a conflict with the holder's row
				}
				return nil
			})
		})
	}
	// Let every function queue behind the holder before it commits.
	for {
		s.conns.group.mu.Lock()
		queued := len(s.conns.group.queue)
		s.conns.group.mu.Unlock()
		if queued == n {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()

	for i := range n {
		switch {
		case i == 7:
			if panics[i] != "seven panics" {
				t.Errorf("function 7: panic %v reached its caller, want \"seven panics\"", panics[i])
			}
		case i%2 == 1:
			if !errors.Is(errs[i], errOdd) {
				t.Errorf("function %d: err %v, want its own error", i, errs[i])
			}
		case i == 10:
			if errs[i] == nil {
				t.Errorf("function 10: inserted a duplicate key without error")
			}
		default:
			if errs[i] != nil || panics[i] != nil {
				t.Errorf("function %d: err %v, panic %v", i, errs[i], panics[i])
			}
		}
	}
	rows, err := s.query(ctx, `SELECT n FROM scratch ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(rows, func(r scanner) (int, error) {
		var v int
		return v, r.Scan(&v)
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := 0; i < n; i += 2 {
		if i != 10 {
			want = append(want, i)
		}
	}
	want = append(want, 1000)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("committed rows %v, want %v", got, want)
	}
	if began := s.conns.group.commits.Load() - before; began >= n {
		t.Errorf("%d functions took %d transactions: none were grouped", n, began)
	}
}
