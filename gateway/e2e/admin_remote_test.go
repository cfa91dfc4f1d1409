package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/cli"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// remoteResources is workspace "ops" with a webhook channel posting to
// sinkURL, two people on it and a broadcast to them. The outbound secret
// is a ${VAR} the CLI resolves from its own environment.
func remoteResources(sinkURL string) string {
	return fmt.Sprintf(`
workspace: {id: ops, name: Operations}
bots:
  - name: opsbot
    default_flow: main
    flows:
      - id: main
        steps:
          - say: "Hello"
channels:
  - name: alerts
    id: ops-alerts
    type: webhook
    bot: opsbot
    config: {url: %q}
    secrets:
      signing_secret: %s
      outbound_signing_secret: ${E2E_OUTBOUND_SECRET}
people:
  - id: ann
    email: ann@example.com
    attributes: {on_call: true}
    identities: [{channel: alerts, address: ann-addr}]
  - id: bob
    email: bob@example.com
    attributes: {on_call: true}
    identities: [{channel: alerts, address: bob-addr}]
broadcasts:
  - name: outage
    active: true
    recipients: {attribute: {field: on_call, operator: exists}}
    actions:
      - type: message
        channel: alerts
        message: {text: "Outage notice"}
`, sinkURL, gatewaytest.InboundSecret)
}

// remoteCLI runs the switchboard command the way an operator far from the
// database does: the config it is given does not exist, so every command
// must go through the admin API.
type remoteCLI struct {
	t   *testing.T
	cfg string // a path that does not exist
}

func (r remoteCLI) run(ctx context.Context, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	code := cli.Execute(ctx, append(args, "--config", r.cfg), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func (r remoteCLI) must(args ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, errs, code := r.run(ctx, args...)
	if code != 0 {
		r.t.Fatalf("switchboard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func decode[T any](t *testing.T, what, raw string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, raw)
	}
	return v
}

// remoteScenario drives every remote command against gateways at urls (one
// node, or several sharing a database): urls[0] takes the writes, the
// last one answers the reads, so on several nodes each read crosses nodes.
func remoteScenario(t *testing.T, urls []string, operator string, sink *gatewaytest.Sink) {
	r := remoteCLI{t: t, cfg: filepath.Join(t.TempDir(), "no-such-dir", "gateway.yaml")}
	write, read := urls[0], urls[len(urls)-1]

	// Without a key the CLI says what to give; a database command says
	// it is not remote.
	if _, errs, code := r.run(context.Background(), "status", "--url", write); code == 0 || !strings.Contains(errs, "SWITCHBOARD_ADMIN_KEY") {
		t.Fatalf("status without a key: exit %d, %q", code, errs)
	}

	// The operator creates the workspace by applying its resources (the
	// ${VAR} comes from this process's environment), then its admin key.
	res := filepath.Join(t.TempDir(), "ops.yaml")
	if err := os.WriteFile(res, []byte(remoteResources(sink.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_OUTBOUND_SECRET", gatewaytest.OutboundSecret)
	dry := decode[adminapi.ApplyResult](t, "apply --dry-run", r.must("apply", "-f", res, "--dry-run", "-o", "json", "--url", write, "--key", operator))
	if !dry.DryRun || len(dry.Changes) == 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	applied := decode[adminapi.ApplyResult](t, "apply", r.must("apply", "-f", res, "-o", "json", "--url", write, "--key", operator))
	var broadcastID string
	for _, c := range applied.Changes {
		if m := regexp.MustCompile(`^broadcast outage \(id (\d+)`).FindStringSubmatch(c); m != nil {
			broadcastID = m[1]
		}
	}
	if broadcastID == "" {
		t.Fatalf("apply printed no broadcast id: %q", applied.Changes)
	}
	admin := strings.TrimSpace(r.must("keys", "create", "--admin", "--workspace", "ops", "--name", "ops-admin", "--url", write, "--key", operator))
	if !strings.HasPrefix(admin, "sbk_") {
		t.Fatalf("keys create --admin printed %q", admin)
	}

	// From here on the admin key comes from the environment, the URL
	// from a flag.
	t.Setenv(cli.EnvAdminKey, admin)
	remote := func(args ...string) string { t.Helper(); return r.must(append(args, "--url", read)...) }
	wremote := func(args ...string) string { t.Helper(); return r.must(append(args, "--url", write)...) }

	// status: every node live, the plugin and channel healthy on the node
	// that answers (it configures new channels within a poll).
	deadline := time.Now().Add(30 * time.Second)
	var st adminapi.Status
	for {
		st = decode[adminapi.Status](t, "status", remote("status", "-o", "json"))
		if len(st.Channels) == 1 && st.Channels[0].Health != nil && st.Channels[0].Health.Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the channel never became healthy on %s: %+v", read, st.Channels)
		}
		time.Sleep(200 * time.Millisecond)
	}
	live := 0
	for _, n := range st.Nodes {
		if n.Live {
			live++
		}
	}
	if live != len(urls) || st.Node == "" || len(st.Plugins) != 1 || st.Plugins[0].Name != "webhook" || st.Plugins[0].State != "running" {
		t.Fatalf("status = %+v, want %d live nodes and the webhook plugin running", st, len(urls))
	}
	if table := remote("status"); !strings.Contains(table, "ops-alerts") || !strings.Contains(table, "healthy (running)") {
		t.Fatalf("status table:\n%s", table)
	}
	if plugins := decode[[]adminapi.Plugin](t, "plugins list", remote("plugins", "list", "-o", "json")); len(plugins) != 1 {
		t.Fatalf("plugins list = %+v", plugins)
	}

	// Follow deliveries while a trigger fans out and its outcomes come in.
	var tailOut, tailErr bytes.Buffer
	var tailCode int
	var wg sync.WaitGroup
	tailCtx, stopTail := context.WithTimeout(context.Background(), time.Minute)
	defer stopTail()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tailCode = cli.Execute(tailCtx, []string{"deliveries", "tail", "--max", "2", "--interval", "100ms", "-o", "json",
			"--url", read, "--config", r.cfg}, &tailOut, &tailErr)
	}()
	time.Sleep(300 * time.Millisecond) // the tail has its starting point

	out := wremote("broadcast", "trigger", "--broadcast", broadcastID, "--wait")
	if !strings.Contains(out, "processed: matched 2, sent 2") {
		t.Fatalf("broadcast trigger --wait: %s", out)
	}
	sink.WaitFor(t, 2, 30*time.Second)
	wg.Wait()
	if tailCode != 0 {
		t.Fatalf("deliveries tail: exit %d: %s", tailCode, tailErr.String())
	}
	outcomes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(tailOut.String()), "\n") {
		d := decode[adminapi.Delivery](t, "tail line", line)
		if d.Status == "sent" || d.Status == "delivered" {
			outcomes[d.Recipient] = d.Status
		}
	}
	if len(outcomes) != 2 {
		t.Fatalf("deliveries tail printed %q, want both recipients' outcomes", tailOut.String())
	}

	triggers := decode[adminapi.Page[adminapi.Trigger]](t, "list triggers", remote("list", "triggers", "-o", "json"))
	if len(triggers.Data) != 1 || triggers.Data[0].BroadcastName != "outage" {
		t.Fatalf("list triggers = %+v", triggers)
	}
	tr := decode[adminapi.Trigger](t, "triggers show", remote("triggers", "show", fmt.Sprint(triggers.Data[0].ID), "-o", "json"))
	if tr.Counts.Matched != 2 || tr.Counts.Sent != 2 || !tr.Done {
		t.Fatalf("triggers show = %+v", tr)
	}
	if table := remote("triggers", "show", fmt.Sprint(tr.ID)); !strings.Contains(table, "matched 2 → sent 2") {
		t.Fatalf("triggers show table:\n%s", table)
	}

	ds := decode[adminapi.Page[adminapi.Delivery]](t, "list deliveries", remote("list", "deliveries", "--person", "ann", "-o", "json"))
	if len(ds.Data) != 1 || ds.Data[0].Recipient != "ann-addr" {
		t.Fatalf("ann's deliveries = %+v", ds.Data)
	}
	d := decode[adminapi.Delivery](t, "get delivery", remote("get", "delivery", fmt.Sprint(ds.Data[0].ID), "-o", "json"))
	if d.Content == nil || d.Content.Text != "Outage notice" {
		t.Fatalf("get delivery = %+v", d)
	}
	p := decode[adminapi.Person](t, "get person", remote("get", "person", "bob", "-o", "json"))
	if len(p.Identities) != 1 || p.Identities[0].Address != "bob-addr" {
		t.Fatalf("get person = %+v", p)
	}
	if chs := decode[adminapi.Page[adminapi.Channel]](t, "list channels", remote("list", "channels", "-o", "json")); len(chs.Data) != 1 {
		t.Fatalf("list channels = %+v", chs)
	}

	// Keys: list, rotate and revoke remotely; the revoked key is refused
	// by every node at once.
	appKey := strings.TrimSpace(wremote("keys", "create", "--app", "--name", "crm"))
	keys := decode[[]adminapi.Key](t, "keys list", remote("keys", "list", "-o", "json"))
	var appID string
	for _, k := range keys {
		if k.Scope == "app" {
			appID = k.ID
		}
		if strings.Contains(fmt.Sprint(k), appKey) {
			t.Fatal("keys list shows a key")
		}
	}
	rot := decode[adminapi.Rotation](t, "keys rotate", wremote("keys", "rotate", appID, "--grace", "0s", "-o", "json"))
	if !strings.HasPrefix(rot.Key, "sba_") || rot.Old.ExpiresAt == nil {
		t.Fatalf("keys rotate = %+v", rot)
	}
	wremote("keys", "revoke", rot.New.ID)
	for _, u := range urls {
		if code := appAPI(t, u, rot.Key); code != 401 {
			t.Fatalf("the revoked key on %s: %d, want 401", u, code)
		}
	}

	// Another workspace's admin key sees nothing of ops.
	r.must("apply", "-f", writeFile(t, "other.yaml", "workspace: {id: other, name: Other}\n"), "--url", write, "--key", operator)
	other := strings.TrimSpace(r.must("keys", "create", "--admin", "--workspace", "other", "--url", write, "--key", operator))
	if _, errs, code := r.run(context.Background(), "get", "channel", "ops-alerts", "--url", read, "--key", other); code == 0 || !strings.Contains(errs, `no channel "ops-alerts"`) {
		t.Fatalf("other's key gets ops' channel: exit %d %q", code, errs)
	}
	if _, errs, code := r.run(context.Background(), "list", "deliveries", "--workspace", "ops", "--url", read, "--key", other); code == 0 || !strings.Contains(errs, `workspace "other" only`) {
		t.Fatalf("other's key lists ops' deliveries: exit %d %q", code, errs)
	}
}

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// appAPI answers the status of an App API read with key.
func appAPI(t *testing.T, url, key string) int {
	t.Helper()
	c := &cio{t: t, url: url, app: key}
	status, _ := c.once("GET", "/v1/segments", nil, false)
	return status
}

// operatorConfig adds a fresh operator key to cfg and returns the key.
func operatorConfig(t *testing.T, cfg *config.Config) string {
	raw, digest, err := auth.NewOperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.OperatorKeys = append(cfg.Admin.OperatorKeys, digest)
	return raw
}

// TestRemoteCLI drives the CLI in remote mode against a gateway process on
// SQLite whose database (and config) the CLI cannot open.
func TestRemoteCLI(t *testing.T) {
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	operator := operatorConfig(t, cfg)
	g := gatewaytest.StartProcess(t, cfg)
	remoteScenario(t, []string{g.URL}, operator, sink)
}

// TestRemoteCLITwoNodes is the same against two gateway processes sharing
// a PostgreSQL database: writes go to one, reads to the other.
func TestRemoteCLITwoNodes(t *testing.T) {
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	dsn := freshPostgres(t)
	var operator string
	var urls []string
	for i := range 2 {
		cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}, Database: dsn})
		cfg.Cluster.NodeID = fmt.Sprintf("remote-node-%d", i)
		if i == 0 {
			operator = operatorConfig(t, cfg)
		} else {
			cfg.Admin.OperatorKeys = []string{hexDigest(operator)}
		}
		urls = append(urls, gatewaytest.StartProcess(t, cfg).URL)
	}
	remoteScenario(t, urls, operator, sink)
}

func hexDigest(raw string) string { return fmt.Sprintf("%x", auth.Hash(raw)) }
