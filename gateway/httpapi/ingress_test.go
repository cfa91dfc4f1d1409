package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

type oneChannel struct{ store.Channel }

func (c oneChannel) GetChannel(_ context.Context, id string) (store.Channel, error) {
	if id != c.ID {
		return store.Channel{}, store.ErrNotFound
	}
	return c.Channel, nil
}

// failingPlugin fails every request as a plugin does for a channel it
// has no configuration for, with internals in the message.
type failingPlugin struct{ sdk.Channel }

var errInternals = errors.New(`rpc error: code = FailedPrecondition desc = channel is not configured: "ch-1" (token xoxb-secret)`)

func (failingPlugin) HandleHTTP(context.Context, *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	return nil, errInternals
}

type plugins struct {
	ch  sdk.Channel
	err error
}

func (p plugins) Channel(string) (sdk.Channel, error) { return p.ch, p.err }

// TestIngressErrorsHideInternals is row 9 of the hardening issue: a
// webhook to a channel whose plugin fails (or is down) answers 503 with a
// generic message and the request id, in the body and the X-Request-Id
// header; the plugin's error goes to the log under that id.
func TestIngressErrorsHideInternals(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	for _, tc := range []struct {
		name    string
		plugins plugins
		code    string
	}{
		{"plugin error", plugins{ch: failingPlugin{}}, "plugin_error"},
		{"plugin down", plugins{err: errInternals}, "plugin_down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			srv := &Server{Ingress: &Ingress{Channels: oneChannel{store.Channel{ID: "ch-1", Type: "slack", Enabled: true}},
				Plugins: tc.plugins, MaxBody: 1 << 20}}
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/channels/ch-1/webhook", strings.NewReader("{}")))

			id := w.Header().Get(RequestIDHeader)
			var out struct {
				Errors []struct {
					Status, Code, Detail string
				}
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if w.Code != http.StatusServiceUnavailable || len(id) != 24 || out.RequestID != id || len(out.Errors) != 1 ||
				out.Errors[0].Code != tc.code {
				t.Fatalf("answer %d %s (header id %q)", w.Code, w.Body, id)
			}
			want := "channel ch-1 cannot take requests now; retry later (the gateway log has the details under request id " + id + ")"
			if tc.code == "plugin_error" {
				want = "channel ch-1 could not handle the request; retry later (the gateway log has the details under request id " + id + ")"
			}
			if out.Errors[0].Detail != want {
				t.Fatalf("detail %q, want %q", out.Errors[0].Detail, want)
			}
			if strings.Contains(w.Body.String(), "rpc error") || strings.Contains(w.Body.String(), "secret") {
				t.Fatalf("answer shows internals: %s", w.Body)
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line["request_id"] != id || line["err"] != errInternals.Error() {
				t.Fatalf("log %s (%v): want the error under request id %s", logs.Bytes(), err, id)
			}
		})
	}
	// Every answer has its own id.
	srv := &Server{}
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	srv.Handler().ServeHTTP(a, httptest.NewRequest(http.MethodGet, "/nowhere", nil))
	srv.Handler().ServeHTTP(b, httptest.NewRequest(http.MethodGet, "/nowhere", nil))
	if a.Header().Get(RequestIDHeader) == "" || a.Header().Get(RequestIDHeader) == b.Header().Get(RequestIDHeader) ||
		!strings.Contains(a.Body.String(), `"request_id":"`+a.Header().Get(RequestIDHeader)+`"`) {
		t.Fatalf("ids %q %q, body %s", a.Header().Get(RequestIDHeader), b.Header().Get(RequestIDHeader), a.Body)
	}
}
