package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// echoWorkspace is a workspace with one bot on one webhook channel posting
// to sinkURL.
func echoWorkspace(sinkURL string) string {
	return fmt.Sprintf(`
workspace: {id: acme, name: Acme}
bots:
  - name: echo
    default_flow: main
    flows:
      - id: main
        steps:
          - say: "You said: {{ event.text }}"
channels:
  - name: hook
    id: acme-hook
    type: webhook
    bot: echo
    config: {url: %q}
    secrets:
      signing_secret: %s
      outbound_signing_secret: %s
`, sinkURL, gatewaytest.InboundSecret, gatewaytest.OutboundSecret)
}

func TestIngressRefusesUnsignedAndUnknown(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	g.Apply(t, echoWorkspace(sink.URL))
	url := g.URL + "/channels/acme-hook/webhook"
	body := map[string]string{"user_id": "alice", "text": "hi"}

	cases := []struct {
		name, url, secret string
		want              int
	}{
		{"unsigned", url, "", http.StatusUnauthorized},
		{"signed with another secret", url, gatewaytest.OutboundSecret, http.StatusUnauthorized},
		{"unknown channel", g.URL + "/channels/nope/webhook", gatewaytest.InboundSecret, http.StatusNotFound},
	}
	for i, c := range cases {
		id := fmt.Sprintf("msg_refused_%d", i)
		resp := gatewaytest.PostWebhook(t, c.url, c.secret, id, body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
		// Nothing refused was recorded: the id is still unseen.
		first, err := g.Store.MarkEventSeen(context.Background(), "acme-hook", "in:acme-hook:"+id, time.Now())
		if err != nil || !first {
			t.Errorf("%s: event was recorded although refused (%v)", c.name, err)
		}
	}
	resp := gatewaytest.PostWebhook(t, url, gatewaytest.InboundSecret, "msg_ok", body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("signed request: status %d", resp.StatusCode)
	}
	if first, err := g.Store.MarkEventSeen(context.Background(), "acme-hook", "in:acme-hook:msg_ok", time.Now()); err != nil || first {
		t.Fatalf("accepted event was not recorded before the answer (first=%v, %v)", first, err)
	}
}

func TestTamperedPluginIsRefusedAndTheGatewayRuns(t *testing.T) {
	t.Parallel()
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	exe := filepath.Join(cfg.Plugins.Dir, "webhook", "webhook")
	f, err := os.OpenFile(exe, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("tampered"))
	f.Close()

	g := gatewaytest.StartDegraded(t, cfg)
	var state, lastErr string
	for _, p := range g.App.Host.Status() {
		if p.Name == "webhook" {
			state, lastErr = string(p.State), p.LastError
		}
	}
	if state != "failed" || !strings.Contains(lastErr, "sha256") {
		t.Fatalf("webhook plugin state %q (%s), want failed on its sha256", state, lastErr)
	}
	resp, err := http.Get(g.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("gateway not serving: %v", err)
	}
	resp.Body.Close()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	gatewaytest.ApplyTo(t, g.Store, echoWorkspace(sink.URL))
	resp = gatewaytest.PostWebhook(t, g.URL+"/channels/acme-hook/webhook", gatewaytest.InboundSecret, "m1", map[string]string{"user_id": "a", "text": "x"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("webhook to a channel whose plugin is refused: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestPluginKilledMidDeliveryLosesNothing(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	sink.Handler = func(http.ResponseWriter, gatewaytest.SinkMessage) bool {
		time.Sleep(2 * time.Millisecond) // keep the fan-out in flight long enough to kill it
		return false
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	g.Apply(t, echoWorkspace(sink.URL))
	const n = 400
	ds := make([]store.Delivery, n)
	for i := range ds {
		ds[i] = store.Delivery{WorkspaceID: "acme", ChannelID: "acme-hook", Recipient: fmt.Sprintf("user-%d", i),
			Content: message.Text(fmt.Sprintf("hello %d", i)), IdempotencyKey: fmt.Sprintf("kill-test-%d", i),
			Status: store.DeliveryQueued, SourceKind: "test", SourceID: "kill"}
	}
	if _, err := g.Store.EnqueueDeliveries(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	g.App.Pipeline.Notify()
	sink.WaitFor(t, 50, 30*time.Second)
	pid := 0
	for _, p := range g.App.Host.Status() {
		if p.Name == "webhook" {
			pid = p.PID
		}
	}
	if pid == 0 {
		t.Fatal("no webhook plugin process")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	msgs := sink.WaitFor(t, n, 60*time.Second)
	got := map[string]int{}
	for _, m := range msgs {
		got[m.IdempotencyKey]++
	}
	if len(got) != n {
		t.Fatalf("sink got %d distinct messages, want %d", len(got), n)
	}
	dups := len(msgs) - n
	t.Logf("killed plugin pid %d mid-delivery: %d messages, %d distinct, %d re-sent with their original idempotency key", pid, len(msgs), len(got), dups)
	deadline := time.Now().Add(30 * time.Second)
	for {
		final, err := g.Store.ListDeliveriesBySource(context.Background(), "test", "kill")
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
		for _, d := range final {
			if d.Status == store.DeliverySent {
				sent++
			}
		}
		if sent == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries recorded as sent", sent, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var restarts int
	for _, p := range g.App.Host.Status() {
		if p.Name == "webhook" {
			restarts = p.Restarts
		}
	}
	if restarts < 1 {
		t.Fatalf("plugin restarts = %d, want the host to have restarted it", restarts)
	}
}
