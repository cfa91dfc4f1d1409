package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/cli"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// TestApplyValidatesChannelConfig is row 9 of the hardening issue:
// `switchboard apply` starts the channel plugins and has each validate its
// channels' configuration without installing it, and refuses a bad one
// with the plugin's field errors at the channel's line; nothing is
// written. A channel whose plugin is not installed is noted and accepted.
func TestApplyValidatesChannelConfig(t *testing.T) {
	t.Parallel()
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	cfgPath := gatewaytest.WriteConfig(t, cfg)
	resources := func(url string) string {
		p := filepath.Join(t.TempDir(), "resources.yaml")
		doc := `workspace: {id: acme, name: Acme}
bots:
  - name: b
    default_flow: start
    flows:
      - id: start
        steps:
          - say: hi
channels:
  - name: hook
    type: webhook
    bot: b
    config: {url: "` + url + `", timeout: 1h}
    secrets: {signing_secret: whsec_c3dpdGNoYm9hcmQtZGVtby1zZWNyZXQtMzJieXRlcw==}
  - name: chat
    type: slack
    bot: b
`
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := cli.Execute(ctx, []string{"apply", "--config", cfgPath, "-f", resources("ftp://nowhere")}, &stdout, &stderr)
	out := stdout.String() + stderr.String()
	for _, want := range []string{
		"resources.yaml:10: channels[0]: the webhook plugin refuses the configuration: timeout: must be a duration between",
		"resources.yaml:10: channels[0]: the webhook plugin refuses the configuration: url: must be an absolute http or https URL",
	} {
		if code == 0 || !strings.Contains(out, want) {
			t.Fatalf("exit %d, want %q in:\n%s", code, want, out)
		}
	}
	if strings.Contains(out, "created") {
		t.Fatalf("an invalid apply wrote something:\n%s", out)
	}

	// Fixed, it applies; the slack channel, whose plugin is not here, is
	// noted as not checked.
	stdout.Reset()
	stderr.Reset()
	p := resources("https://example.com/hook")
	raw, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(raw, []byte("timeout: 1h"), []byte("timeout: 5s"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	code = cli.Execute(ctx, []string{"apply", "--config", cfgPath, "-f", p}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "channel chat: configuration not checked: there is no slack plugin in") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
}

// TestApplyDemoOnLoopback is the README's quickstart step: with
// security.allow_internal_fetch (configs/gateway.yaml sets it for the
// local sink), apply's own plugin processes accept a webhook channel that
// posts to 127.0.0.1, as the gateway's do; without it they refuse it.
func TestApplyDemoOnLoopback(t *testing.T) {
	t.Parallel()
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, allow := range []bool{true, false} {
		cfg.Security.AllowInternalFetch = allow
		var stdout, stderr bytes.Buffer
		code := cli.Execute(ctx, []string{"apply", "--config", gatewaytest.WriteConfig(t, cfg), "--dry-run",
			"-f", "../../configs/examples/demo.yaml"}, &stdout, &stderr)
		refused := strings.Contains(stderr.String(), "must not point at an internal address")
		if allow && (code != 0 || refused) || !allow && (code == 0 || !refused) {
			t.Fatalf("allow_internal_fetch %v: exit %d\nstdout: %s\nstderr: %s", allow, code, stdout.String(), stderr.String())
		}
	}
}
