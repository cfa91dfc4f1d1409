package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// TestServerLimitsPerAddress drives the row 4 against a running
// gateway: idle keep-alive connections from one address beyond
// server.max_connections_per_address are answered 429 and closed while
// another address is served, and a webhook body trickled slower than
// server.public.body_timeout is cut off. Client sources 127.0.0.3 and
// 127.0.0.4 keep the test's own HTTP client (127.0.0.1) out of the count.
func TestServerLimitsPerAddress(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook"}, Configure: func(cfg *config.Config) {
		cfg.Server.MaxConnectionsPerAddress = 3
		cfg.Server.Public.BodyTimeout = 200 * time.Millisecond
	}})
	g.Apply(t, demoWorkspace(t, sink.URL))
	addr := strings.TrimPrefix(g.URL, "http://")

	for i := range 3 {
		if resp := gatewaytest.DialFrom(t, "127.0.0.3", addr).Get("/healthz"); resp == nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("idle connection %d within the cap not served: %v", i, gatewaytest.Answer(resp))
		}
	}
	over := gatewaytest.DialFrom(t, "127.0.0.3", addr).Get("/healthz")
	if over == nil || over.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("connection over the per-address cap: %s, want 429", gatewaytest.Answer(over))
	}
	if body, _ := io.ReadAll(over.Body); !strings.Contains(string(body), `"code":"too_many_connections"`) {
		t.Fatalf("429 body %s, want the error envelope with too_many_connections", body)
	}
	if resp := gatewaytest.DialFrom(t, "127.0.0.4", addr).Get("/healthz"); resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("another address not served: %s", gatewaytest.Answer(resp))
	}

	slow := gatewaytest.DialFrom(t, "127.0.0.4", addr)
	// One byte of a 200-byte signed-webhook body; the rest never comes.
	if _, err := io.WriteString(slow, "POST /channels/demo-webhook/webhook HTTP/1.1\r\nHost: gateway\r\n"+
		"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	if resp := slow.ReadResponse(); resp == nil || resp.StatusCode < 400 {
		t.Fatalf("slow webhook body: %s, want an error answer before the client finished", gatewaytest.Answer(resp))
	}
}
