package audience

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// fakePeople resolves every id except "ghost"; emails are unknown.
type fakePeople struct{}

func (fakePeople) ListRecipients(_ context.Context, q store.RecipientQuery) ([]store.Recipient, error) {
	var out []store.Recipient
	for _, id := range q.IDs {
		if id != "ghost" {
			out = append(out, store.Recipient{Person: store.Person{ID: id}, Addresses: make([]string, len(q.Channels))})
		}
	}
	return out, nil
}

// testLimits are data file limits that only bound the batch, the line
// and the file's size.
func testLimits(batch, maxLine int, maxBytes int64) fileLimits {
	return fileLimits{batch: batch, stepLines: 1 << 30, stepBytes: 1 << 40, maxLine: maxLine, maxBytes: maxBytes, maxLines: 1 << 30}
}

// drain reads a file source to the end, batch by batch.
func drain(t *testing.T, src source) (ids []string, errs []string, cursors []string) {
	t.Helper()
	for {
		b, err := src.next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range b.items {
			ids = append(ids, it.Person.ID+"="+it.data["v"].(string))
		}
		errs = append(errs, b.errs...)
		cursors = append(cursors, b.cursor)
		if b.done {
			return ids, errs, cursors
		}
	}
}

func TestDataFileLinesGzipAndResume(t *testing.T) {
	long := `{"id":"big","data":{"v":"` + strings.Repeat("x", 200) + `"}}`
	lines := strings.Join([]string{`{"id":"a","data":{"v":"1"}}`, "", "garbage", long,
		`{"id":"ghost","data":{"v":"2"}}`, `{"id":"b","data":{"v":"3"}}`, `{"id":"c","email":"c@x","data":{"v":"4"}}`,
		`{"id":"d","data":{"v":"5"}}`}, "\n") // no final newline
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(lines))
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/raw.gz" {
			w.Header().Set("Content-Type", "application/gzip") // gzip bytes without Content-Encoding
			w.Write(gz.Bytes())
			return
		}
		w.Write([]byte(lines))
	}))
	defer srv.Close()
	res := resolver{st: fakePeople{}, ws: "w", req: &TriggerRequest{}}
	wantIDs := []string{"a=1", "b=3", "d=5"}
	wantErrs := []string{"line 3: must be an object with id or email, and data: invalid character 'g' looking for beginning of value",
		"line 4: longer than 100 bytes", "line 7: give id or email, not both", `line 5: no person with id "ghost"`}
	for _, path := range []string{"/plain", "/raw.gz"} {
		src, err := openFileSource(context.Background(), srv.Client(), res, srv.URL+path, "", testLimits(4, 100, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		ids, errs, cursors := drain(t, src)
		src.close()
		if !reflect.DeepEqual(ids, wantIDs) || !reflect.DeepEqual(errs, wantErrs) {
			t.Fatalf("%s: ids %q errs %q, want %q %q", path, ids, errs, wantIDs, wantErrs)
		}
		if !reflect.DeepEqual(cursors, []string{"8", "8"}) {
			t.Fatalf("%s: cursors %q", path, cursors)
		}
	}
	// Resuming at line 4 skips what was done.
	src, err := openFileSource(context.Background(), srv.Client(), res, srv.URL+"/plain", "4", testLimits(10, 100, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	ids, _, _ := drain(t, src)
	if !reflect.DeepEqual(ids, []string{"b=3", "d=5"}) {
		t.Fatalf("resumed ids %q", ids)
	}
}

func TestDataFileHTTPErrorIsPermanent(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := openFileSource(context.Background(), srv.Client(), resolver{}, srv.URL, "", testLimits(10, 100, 1<<20))
	fe, ok := err.(*fetchError)
	if !ok || !fe.permanent || fe.msg != "failed to download data file, server responded with code 404 Not Found" {
		t.Fatalf("err = %#v", err)
	}
}

func TestDataFileSizeCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 100 {
			w.Write([]byte(`{"id":"a","data":{"v":"1"}}` + "\n"))
		}
	}))
	defer srv.Close()
	src, err := openFileSource(context.Background(), srv.Client(), resolver{st: fakePeople{}, req: &TriggerRequest{}}, srv.URL, "", testLimits(1000, 100, 500))
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	_, err = src.next(context.Background())
	fe, ok := err.(*fetchError)
	if !ok || !fe.permanent || !strings.Contains(fe.msg, "larger than the limit") {
		t.Fatalf("err = %#v, want the size limit", err)
	}
}
