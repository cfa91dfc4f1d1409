package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// demoWorkspace is configs/examples/demo.yaml pointed at sinkURL, with the
// test secrets.
func demoWorkspace(t *testing.T, sinkURL string) string {
	t.Helper()
	raw, err := os.ReadFile("../../configs/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(raw), "${DEMO_SINK_URL:-http://127.0.0.1:9999/sink}", sinkURL, 1)
	return strings.Replace(doc, "${DEMO_WEBHOOK_SECRET:-whsec_c3dpdGNoYm9hcmQtZGVtby1zZWNyZXQtMzJieXRlcw==}",
		gatewaytest.InboundSecret+"\n      outbound_signing_secret: "+gatewaytest.OutboundSecret, 1)
}

func send(t *testing.T, g *gatewaytest.Gateway, id string, body map[string]any) {
	t.Helper()
	resp := gatewaytest.PostWebhook(t, g.URL+"/channels/demo-webhook/webhook", gatewaytest.InboundSecret, id, body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: status %d", id, resp.StatusCode)
	}
}

func texts(ms []gatewaytest.SinkMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

func TestDemoBotRoundTripThroughTheWebhookPlugin(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	g.Apply(t, demoWorkspace(t, sink.URL))

	// First contact: the welcome flow greets Alice by her stored attribute
	// and offers the menu as buttons.
	send(t, g, "m1", map[string]any{"user_id": "alice", "text": "hi"})
	ms := sink.WaitFor(t, 2, 10*time.Second)
	if !strings.HasPrefix(ms[0].Text, "Hi Alice!") {
		t.Fatalf("first message %q, want the greeting with the customer's first name", ms[0].Text)
	}
	if ms[1].Message.Type != "buttons" || len(ms[1].Message.Buttons) != 3 || ms[1].UserID != "alice" {
		t.Fatalf("second message = %+v, want the menu's 3 buttons for alice", ms[1].Message)
	}
	// A platform retry of the same event (same webhook-id) changes nothing.
	send(t, g, "m1", map[string]any{"user_id": "alice", "text": "hi"})

	// Clicking "Tell me your name" continues the flow; the answer is used.
	send(t, g, "m2", map[string]any{"user_id": "alice", "button": map[string]string{"payload": "name"}})
	sink.WaitFor(t, 3, 10*time.Second)
	send(t, g, "m3", map[string]any{"user_id": "alice", "text": "  bob "})
	ms = sink.WaitFor(t, 5, 10*time.Second)
	got := texts(ms)
	if got[2] != "What's your name?" || got[3] != "Nice to meet you, Bob!" || !strings.HasPrefix(got[4], "Anything else?") {
		t.Fatalf("conversation = %q", got)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate reply would have arrived by now
	if n := len(sink.Messages()); n != 5 {
		t.Fatalf("sink got %d messages, want exactly 5 (the retried event must not be answered twice): %q", n, texts(sink.Messages()))
	}
	// Every message of one conversation went out in order and unique.
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.IdempotencyKey] {
			t.Fatalf("idempotency key %s sent twice", m.IdempotencyKey)
		}
		seen[m.IdempotencyKey] = true
	}
}

func TestMalformedWebhookBodyIsRefused(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	g.Apply(t, demoWorkspace(t, sink.URL))
	resp := gatewaytest.PostWebhook(t, g.URL+"/channels/demo-webhook/webhook", gatewaytest.InboundSecret, "bad1", map[string]any{"text": "no user"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
}
