package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

// serve runs h on a loopback listener limited by lim and returns its
// address.
func serve(t *testing.T, h http.Handler, lim httpapi.ConnLimits, configure func(*http.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if configure != nil {
		configure(srv)
	}
	go func() { _ = srv.Serve(httpapi.LimitListener(ln, lim)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// errorCode is the code of the first error of an envelope.
func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var env struct {
		Errors []struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || len(env.Errors) == 0 {
		t.Fatalf("status %d without an error envelope: %v", resp.StatusCode, err)
	}
	return env.Errors[0].Code
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

// TestConnectionCapPerAddress: idle keep-alive connections from one
// address beyond its cap are answered 429 and closed, while another
// address (127.0.0.2) is still served, and a closed connection frees its
// place.
func TestConnectionCapPerAddress(t *testing.T) {
	const perAddress = 3
	addr := serve(t, ok, httpapi.ConnLimits{PerAddress: perAddress}, nil)
	var idle []*gatewaytest.RawConn
	for range perAddress {
		c := gatewaytest.DialFrom(t, "127.0.0.1", addr)
		if resp := c.Get("/"); resp == nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("connection within the cap not served: %v", gatewaytest.Answer(resp))
		}
		idle = append(idle, c) // kept open and idle
	}
	over := gatewaytest.DialFrom(t, "127.0.0.1", addr)
	resp := over.Get("/")
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("connection over the cap: %v, want 429 with Retry-After", gatewaytest.Answer(resp))
	}
	if code := errorCode(t, resp); code != "too_many_connections" {
		t.Fatalf("code %q, want too_many_connections", code)
	}
	if over.Get("/") != nil {
		t.Fatal("the refused connection stayed open")
	}
	if resp := gatewaytest.DialFrom(t, "127.0.0.2", addr).Get("/"); resp == nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("another address not served while the first is at its cap: %v", gatewaytest.Answer(resp))
	}
	// Closing one idle connection frees a place; the server notices the
	// close asynchronously, so a few attempts are allowed.
	_ = idle[0].Close()
	for attempt := 0; ; attempt++ {
		resp := gatewaytest.DialFrom(t, "127.0.0.1", addr).Get("/")
		if resp != nil && resp.StatusCode == http.StatusNoContent {
			break
		}
		if attempt == 50 {
			t.Fatalf("no place freed after closing a connection: %v", gatewaytest.Answer(resp))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnectionCapOverall: beyond Max open connections a new one is
// answered 503 and closed.
func TestConnectionCapOverall(t *testing.T) {
	addr := serve(t, ok, httpapi.ConnLimits{Max: 2}, nil)
	for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
		if resp := gatewaytest.DialFrom(t, src, addr).Get("/"); resp == nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("connection within the cap not served: %v", gatewaytest.Answer(resp))
		}
	}
	resp := gatewaytest.DialFrom(t, "127.0.0.3", addr).Get("/")
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection over the overall cap: %v, want 503", gatewaytest.Answer(resp))
	}
	if code := errorCode(t, resp); code != "server_busy" {
		t.Fatalf("code %q, want server_busy", code)
	}
}

type oneChannel struct{}

func (oneChannel) GetChannel(_ context.Context, id string) (store.Channel, error) {
	return store.Channel{ID: id, Type: "webhook", Enabled: true}, nil
}

type noPlugins struct{}

func (noPlugins) Channel(string) (sdk.Channel, error) {
	return nil, errors.New("no plugins in this test")
}

// TestSlowWebhookBodyCutOff: a webhook body trickled slower than the body
// timeout allows is cut off: the server answers before the client has sent
// it all.
func TestSlowWebhookBodyCutOff(t *testing.T) {
	s := &httpapi.Server{
		Ingress: &httpapi.Ingress{Channels: oneChannel{}, Plugins: noPlugins{}, MaxBody: 1 << 20},
		Public:  httpapi.PublicLimits{BodyTimeout: 100 * time.Millisecond},
	}
	addr := serve(t, s.Handler(), httpapi.ConnLimits{}, nil)
	c := gatewaytest.DialFrom(t, "127.0.0.1", addr)
	// One byte of a 100-byte body; the other 99 never come.
	if _, err := io.WriteString(c, "POST /channels/c1/webhook HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	resp := c.ReadResponse()
	if resp == nil {
		t.Fatal("the server did not cut the slow body off: no answer while the client was still sending")
	}
	if resp.StatusCode < 400 {
		t.Fatalf("slow body answered %d", resp.StatusCode)
	}
}

// TestPublicRateLimit: public routes are limited per client address (an
// IPv6 /64 is one address) with 429, Retry-After and the error envelope;
// keyed routes and other addresses are not affected; the bucket refills
// with the clock.
func TestPublicRateLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := &httpapi.Server{
		Routes: []httpapi.Route{
			{Pattern: "GET /hook", Handler: ok, Public: true},
			{Pattern: "GET /keyed", Handler: ok},
		},
		Public: httpapi.PublicLimits{Rate: 1, Burst: 2, Now: func() time.Time { return now }},
	}
	h := s.Handler()
	get := func(path, remote string) *http.Response {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	for i := range 2 {
		if r := get("/hook", "192.0.2.1:1000"); r.StatusCode != http.StatusNoContent {
			t.Fatalf("request %d within the burst: %d", i, r.StatusCode)
		}
	}
	r := get("/hook", "192.0.2.1:1001")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the rate: %d, Retry-After %q; want 429, 1", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if code := errorCode(t, r); code != "rate_limited" {
		t.Fatalf("code %q, want rate_limited", code)
	}
	if r := get("/", "192.0.2.1:1002"); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("unknown routes are public too: %d", r.StatusCode)
	}
	if r := get("/keyed", "192.0.2.1:1003"); r.StatusCode != http.StatusNoContent {
		t.Fatalf("keyed route limited by the public rate: %d", r.StatusCode)
	}
	if r := get("/hook", "192.0.2.2:1000"); r.StatusCode != http.StatusNoContent {
		t.Fatalf("another address limited: %d", r.StatusCode)
	}
	for i, remote := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::ffff]:1", "[2001:db8:1:2:3::]:1"} {
		want := http.StatusNoContent
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if r := get("/hook", remote); r.StatusCode != want {
			t.Fatalf("%s (same /64): %d, want %d", remote, r.StatusCode, want)
		}
	}
	now = now.Add(time.Second)
	if r := get("/hook", "192.0.2.1:1004"); r.StatusCode != http.StatusNoContent {
		t.Fatalf("after a second: %d, want a refilled token", r.StatusCode)
	}
}

// TestStreamRouteLiftsWriteTimeout: a Stream route can write after the
// server's write deadline has passed; an ordinary route cannot. With a
// write timeout of 1ns the deadline has passed before any handler runs, so
// no waiting is involved.
func TestStreamRouteLiftsWriteTimeout(t *testing.T) {
	s := &httpapi.Server{Routes: []httpapi.Route{
		{Pattern: "GET /stream", Handler: ok, Stream: true},
		{Pattern: "GET /plain", Handler: ok},
	}}
	addr := serve(t, s.Handler(), httpapi.ConnLimits{}, func(srv *http.Server) { srv.WriteTimeout = time.Nanosecond })
	if resp := gatewaytest.DialFrom(t, "127.0.0.1", addr).Get("/stream"); resp == nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("stream route past the write timeout: %v", gatewaytest.Answer(resp))
	}
	if resp := gatewaytest.DialFrom(t, "127.0.0.1", addr).Get("/plain"); resp != nil {
		t.Fatalf("plain route answered %d past the write timeout: the timeout is not in force", resp.StatusCode)
	}
}
