package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliofake"
)

// TestAudienceCustomerIONode runs the official customerio-node client
// (scripts/node, pinned by its lockfile) against a running gateway: identify
// through the Track API, triggerBroadcast and trigger status through the App
// API, errors as the client reports them. The people it creates must then
// get their personalized messages at the sink, and those it identifies with
// attributes only (no _identities) at customer.id on the webhook channel
// and customer.phone on the Twilio one. Without node or the installed
// packages the test skips, except in CI (CI=true), where it fails.
func TestAudienceCustomerIONode(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../scripts/node")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not installed"
	case !exists(filepath.Join(dir, "node_modules", "customerio-node")):
		missing = "scripts/node/node_modules is missing: run scripts/test-deps.sh (npm ci)"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}

	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	sms := twiliofake.New(twiliofake.Options{})
	t.Cleanup(sms.Close)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook", "twilio"},
		Configure: func(cfg *config.Config) { cfg.Audience.TriggerInterval = time.Hour }})
	g.Apply(t, audienceWorkspace(sink.URL)+smsChannel(sms))
	waitConfigured(t, g, "media-sms")
	c := newCIO(t, g, "media")
	var ids []string
	for _, name := range []string{"by ids", "by data", "by filter", "by attributes"} {
		def := newsBroadcast()
		def["name"] = name
		if name == "by attributes" {
			// People without identities: reached at customer.id on the
			// webhook channel and customer.phone on the Twilio one.
			def["actions"] = append(def["actions"].([]any), map[string]any{"type": "message", "channel": "sms",
				"message": map[string]any{"type": "text", "text": newsText}})
		}
		ids = append(ids, fmt.Sprint(c.broadcast(def)))
	}

	cmd := exec.Command(node, "--test", "customerio.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWITCHBOARD_URL="+g.URL, "SWITCHBOARD_SITE_ID=media",
		"SWITCHBOARD_TRACK_KEY="+c.track, "SWITCHBOARD_APP_KEY="+c.app, "SWITCHBOARD_BROADCASTS="+strings.Join(ids, ","))
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node --test: %v", err)
	}

	got := map[string]bool{}
	for _, m := range sink.WaitFor(t, 7, 20*time.Second) {
		got[m.UserID+": "+m.Text] = true
	}
	want := map[string]bool{"ann: Ann: ids": true, "bob: Bob: ids": true, "ann: Ann: users code A1": true,
		"bob: Bob: users code B2": true, "ann: Ann: filter": true, "cal: Cal: attributes": true, "dee: Dee: attributes": true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sink got %v, want %v", got, want)
	}
	eventually(t, 10*time.Second, func() string {
		if got := smsTo(sms, "+15550000003"); !reflect.DeepEqual(got, []string{"Cal: attributes"}) || len(sms.Messages()) != 1 {
			return fmt.Sprintf("Twilio got %+v, want only Cal's message at customer.phone", sms.Messages())
		}
		return ""
	})
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
