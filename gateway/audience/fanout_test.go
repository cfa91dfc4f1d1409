package audience

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// stepRecorder is a real store that records every committed fan-out step.
type stepRecorder struct {
	*sqlstore.Store
	mu    sync.Mutex
	steps []store.TriggerStep
}

func (r *stepRecorder) WithTx(ctx context.Context, fn func(tx store.Store) error) error {
	return r.Store.WithTx(ctx, func(tx store.Store) error { return fn(recordingTx{tx, r}) })
}

type recordingTx struct {
	store.Store
	r *stepRecorder
}

func (tx recordingTx) AdvanceTrigger(ctx context.Context, st store.TriggerStep) error {
	if err := tx.Store.AdvanceTrigger(ctx, st); err != nil {
		return err
	}
	tx.r.mu.Lock()
	tx.r.steps = append(tx.r.steps, st)
	tx.r.mu.Unlock()
	return nil
}

// fakeClock advances a second every time it is read, so step budgets run
// out after a known number of readings without real waiting.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// fanoutFixture is a workspace with people a and b and an active
// broadcast that sets seen=true on everyone it reaches.
type fanoutFixture struct {
	st    *stepRecorder
	clock *fakeClock
	b     store.Broadcast
}

func newFanoutFixture(t *testing.T) *fanoutFixture {
	t.Helper()
	ctx := context.Background()
	st := &stepRecorder{Store: sqlstore.OpenTest(t)}
	if err := st.UpsertWorkspace(ctx, store.Workspace{ID: "w", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := st.UpsertPerson(ctx, store.Person{WorkspaceID: "w", ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	b := store.Broadcast{WorkspaceID: "w", Name: "seen", Active: true,
		Actions: []store.BroadcastAction{{Type: store.ActionAttributes, Attributes: map[string]any{"seen": true}}}}
	if err := st.CreateBroadcast(ctx, &b); err != nil {
		t.Fatal(err)
	}
	return &fanoutFixture{st: st, clock: &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, b: b}
}

// trigger stores a trigger of the fixture's broadcast for a data file.
func (f *fanoutFixture) trigger(t *testing.T, url string) store.Trigger {
	t.Helper()
	raw, err := json.Marshal(TriggerRequest{DataFileURL: url})
	if err != nil {
		t.Fatal(err)
	}
	tr := store.Trigger{WorkspaceID: "w", BroadcastID: f.b.ID, Request: raw, Broadcast: f.b}
	if err := f.st.CreateTrigger(context.Background(), &tr, store.TriggerLimits{Now: f.clock.now()}); err != nil {
		t.Fatal(err)
	}
	return tr
}

// run runs the trigger's job as the queue would, attempt after attempt
// (a job that returns an error is retried, one that returns nil is
// followed by its continuation), until the trigger is no longer open or
// maxJobs ran. It returns the trigger and the jobs that ran.
func (f *fanoutFixture) run(t *testing.T, e *Engine, tr store.Trigger, maxJobs int) (store.Trigger, int) {
	t.Helper()
	ctx := context.Background()
	payload, _ := json.Marshal(jobPayload{WorkspaceID: "w", TriggerID: tr.ID})
	attempts := 0
	for jobs := 1; jobs <= maxJobs; jobs++ {
		attempts++
		if err := e.Run(ctx, store.Job{Kind: JobKind, Payload: payload, Attempts: attempts}); err == nil {
			attempts = 0 // the next job is the continuation, a new job
		}
		got, err := f.st.GetTrigger(ctx, "w", tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.TriggerQueued && got.State != store.TriggerRunning {
			return got, jobs
		}
	}
	t.Fatalf("trigger %d still open after %d jobs", tr.ID, maxJobs)
	return tr, 0
}

func (f *fanoutFixture) errors(t *testing.T, id int64) []string {
	t.Helper()
	lines, _, err := f.st.ListTriggerErrors(context.Background(), id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func gzipped(t *testing.T, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	for _, p := range parts {
		if _, err := zw.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func serve(t *testing.T, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDataFileOfBlankLinesCheckpoints is row 3 of the hardening issue: a
// gzip file that is mostly newlines. Every step must read a bounded part
// of it and commit its cursor, and a job must hand over at its step
// budget, so the fan-out finishes in many small steps instead of one step
// that runs past the job's lease.
func TestDataFileOfBlankLinesCheckpoints(t *testing.T) {
	const blank = 50 << 20 // 50 MB of newlines, ~220 KB gzipped
	f := newFanoutFixture(t)
	file := gzipped(t, []byte(`{"id":"a"}`+"\n"), bytes.Repeat([]byte("\n"), blank),
		[]byte("garbage\n"+`{"id":"ghost"}`+"\n"+`{"id":"b"}`))
	tr := f.trigger(t, serve(t, file))
	const stepLines = 1 << 20
	e := NewEngine(f.st, EngineOptions{Net: testNet, Now: f.clock.now, StepBudget: 60 * time.Second, StepLines: stepLines})
	got, jobs := f.run(t, e, tr, 100)

	if got.State != store.TriggerProcessed || got.Matched != 2 {
		t.Fatalf("trigger = %s, matched %d; want processed, 2", got.State, got.Matched)
	}
	lines := blank + 4
	wantErrs := []string{
		"line " + strconv.Itoa(lines-2) + ": must be an object with id or email, and data: invalid character 'g' looking for beginning of value",
		"line " + strconv.Itoa(lines-1) + `: no person with id "ghost"`,
	}
	if errs := f.errors(t, tr.ID); strings.Join(errs, "\n") != strings.Join(wantErrs, "\n") {
		t.Fatalf("errors %q, want %q", errs, wantErrs)
	}
	for _, id := range []string{"a", "b"} {
		p, err := f.st.GetPerson(context.Background(), "w", id)
		if err != nil || p.Attributes["seen"] != true {
			t.Fatalf("person %s: %v %v", id, p.Attributes, err)
		}
	}
	// Bounded steps: no step read more than StepLines lines, and the
	// cursor reached the end.
	prev := 0
	for i, st := range f.st.steps {
		cur, _ := strconv.Atoi(st.Cursor)
		if cur-prev > stepLines {
			t.Fatalf("step %d read lines %d to %d, more than %d", i, prev, cur, stepLines)
		}
		prev = cur
	}
	if prev != lines || len(f.st.steps) < blank/stepLines {
		t.Fatalf("%d steps ending at line %d; want at least %d ending at %d", len(f.st.steps), prev, blank/stepLines, lines)
	}
	if jobs < 2 {
		t.Fatalf("one job read the whole file; the step budget should have handed over to continuations")
	}
	t.Logf("%d lines in %d steps over %d jobs", lines, len(f.st.steps), jobs)
}

// TestDataFileLineAndTimeBudgets: a file with more lines than allowed, or
// one that is not read within the time limit, fails the trigger with a
// message that says which limit.
func TestDataFileLineAndTimeBudgets(t *testing.T) {
	t.Run("lines", func(t *testing.T) {
		f := newFanoutFixture(t)
		tr := f.trigger(t, serve(t, gzipped(t, bytes.Repeat([]byte("\n"), 5000))))
		e := NewEngine(f.st, EngineOptions{Net: testNet, Now: f.clock.now, MaxFileLines: 4000, StepLines: 1000})
		got, _ := f.run(t, e, tr, 10)
		if got.State != store.TriggerFailed || got.Error != "data file has more than 4000 lines, the limit" {
			t.Fatalf("trigger = %s %q", got.State, got.Error)
		}
	})
	t.Run("time", func(t *testing.T) {
		f := newFanoutFixture(t)
		tr := f.trigger(t, serve(t, gzipped(t, bytes.Repeat([]byte("\n"), 5000))))
		// The clock moves a second a reading: 20 s run out in a few steps.
		e := NewEngine(f.st, EngineOptions{Net: testNet, Now: f.clock.now, FileTimeout: 20 * time.Second, StepLines: 100})
		got, _ := f.run(t, e, tr, 50)
		if got.State != store.TriggerFailed || got.Error != "data file was not read to its end within the time limit" {
			t.Fatalf("trigger = %s %q", got.State, got.Error)
		}
	})
}

// TestDataFileErrorLinesCapped: a file of bad lines stores at most
// MaxErrorLines of them and one line that says the rest were dropped.
func TestDataFileErrorLinesCapped(t *testing.T) {
	f := newFanoutFixture(t)
	tr := f.trigger(t, serve(t, []byte(strings.Repeat("garbage\n", 30)+`{"id":"a"}`)))
	e := NewEngine(f.st, EngineOptions{Net: testNet, Now: f.clock.now, StepLines: 7, MaxErrorLines: 10})
	got, _ := f.run(t, e, tr, 20)
	errs := f.errors(t, tr.ID)
	if got.State != store.TriggerProcessed || got.Matched != 1 || len(errs) != 11 || got.Errors != 11 {
		t.Fatalf("trigger %s matched %d, %d error lines (%d counted): %q", got.State, got.Matched, len(errs), got.Errors, errs)
	}
	if !strings.HasPrefix(errs[9], "line 10: ") || errs[10] != "more error lines were not kept: a trigger keeps at most 10" {
		t.Fatalf("errors end %q", errs[9:])
	}
}

// TestDataFileServerGoneMidFile: the file server drops the connection in
// the middle of the file. The steps before the cut stay committed, the job
// is retried, and after FetchAttempts the trigger fails with the read
// error instead of running on.
func TestDataFileServerGoneMidFile(t *testing.T) {
	f := newFanoutFixture(t)
	first := []byte(`{"id":"a"}` + "\n" + strings.Repeat("\n", 5000))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(2*len(first)))
		w.Write(first)
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	tr := f.trigger(t, srv.URL)
	e := NewEngine(f.st, EngineOptions{Net: testNet, Now: f.clock.now, StepLines: 1000, FetchAttempts: 3})
	got, jobs := f.run(t, e, tr, 10)
	if got.State != store.TriggerFailed || !strings.Contains(got.Error, "failed to read data file: unexpected EOF") || jobs != 3 {
		t.Fatalf("trigger = %s %q after %d jobs", got.State, got.Error, jobs)
	}
	if got.Matched != 1 || got.Cursor != "5000" {
		t.Fatalf("matched %d, cursor %q: the steps before the cut should stay committed", got.Matched, got.Cursor)
	}
}

// testNet lets the engine fetch from httptest servers on loopback.
var testNet = netguard.Options{AllowHTTP: true, AllowPrivate: true}
