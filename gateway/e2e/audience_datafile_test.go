package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// TestAudienceDataFileOfBlankLines is row 3 of the hardening issue through
// the App API: a gzip data file that is almost all newlines (20 MB, 21 KB
// compressed) fans out in many committed steps (at most 100,000 lines
// each), not one step that reads the whole file past its job's lease, and
// the trigger finishes with the file's two people and its one bad line.
func TestAudienceDataFileOfBlankLines(t *testing.T) {
	t.Parallel()
	g, sink, c, _ := startAudience(t, gatewaytest.Options{Configure: func(cfg *config.Config) {
		cfg.Audience.TriggerInterval = -1
	}})
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write([]byte(`{"id":"ann","data":{"voucher_code":"A1"}}` + "\n"))
	zw.Write(bytes.Repeat([]byte("\n"), 20<<20))
	zw.Write([]byte("not json\n" + `{"id":"cat","data":{"voucher_code":"C3"}}` + "\n"))
	zw.Close()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(gz.Bytes()) }))
	t.Cleanup(files.Close)

	news := c.broadcast(newsBroadcast())
	id := c.trigger(news, map[string]any{"data": map[string]any{"headline": "Blank"}, "data_file_url": files.URL + "/blank.jsonl.gz"})
	st := c.wait(news, id)
	counts := st["counts"].(map[string]any)
	if st["status"] != "processed" || counts["matched"] != 2.0 || st["error_count"] != 1.0 {
		t.Fatalf("trigger: %v", st)
	}
	if lines := c.triggerErrors(news, id); len(lines) != 1 || lines[0] != "line 20971522: must be an object with id or email, and data: invalid character 'o' in literal null (expecting 'u')" {
		t.Fatalf("errors = %q", lines)
	}
	want := map[string]string{"ann": "Ann: Blank code A1", "cat": "friend: Blank code C3"}
	if got := triggerTexts(sink, id); !reflect.DeepEqual(got, want) {
		t.Fatalf("sink = %q, want %q", got, want)
	}
	tr, err := g.Store.GetTrigger(context.Background(), "media", id)
	if err != nil {
		t.Fatal(err)
	}
	if lines := int64(20<<20 + 3); tr.Steps < lines/100_000 || tr.Cursor != "20971523" {
		t.Fatalf("%d steps ending at line %s: want at least %d steps of at most 100,000 lines, ending at %d", tr.Steps, tr.Cursor, lines/100_000, lines)
	}
}
