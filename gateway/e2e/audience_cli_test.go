package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/cli"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
)

// TestAudienceCLITriggerWait runs `switchboard broadcast trigger --wait`
// against the database of a running gateway: the command queues the
// trigger, the gateway fans it out, and the command reports the final
// counts once every delivery is final.
func TestAudienceCLITriggerWait(t *testing.T) {
	t.Parallel()
	g, sink, c, seg := startAudience(t, gatewaytest.Options{Configure: noTriggerInterval})
	news := c.broadcast(newsBroadcast())
	cfgPath := gatewaytest.WriteConfig(t, g.Config)
	recipients := filepath.Join(t.TempDir(), "recipients.json")
	if err := os.WriteFile(recipients, []byte(fmt.Sprintf(`{"segment": {"id": %d}}`, int64(seg))), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := cli.Execute(ctx, []string{"broadcast", "trigger", "--config", cfgPath, "--broadcast", fmt.Sprint(news),
		"--recipients", recipients, "--data", `{"headline": "from the CLI"}`, "--wait"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "trigger 1 queued for broadcast") ||
		lines[1] != "trigger 1 processed: matched 2, sent 2 (delivered 0), failed 0, skipped 0, errors 0" {
		t.Fatalf("stdout = %q", lines)
	}
	if !strings.Contains(stderr.String(), "matched") {
		t.Fatalf("no progress on stderr: %q", stderr.String())
	}
	want := map[string]string{"ann": "Ann: from the CLI", "wiley": "Wiley: from the CLI"}
	if got := triggerTexts(sink, 1); !reflect.DeepEqual(got, want) {
		t.Fatalf("sink = %q, want %q", got, want)
	}

	// A dry run prints the counts and sends nothing.
	stdout.Reset()
	code = cli.Execute(ctx, []string{"broadcast", "trigger", "--config", cfgPath, "--broadcast", fmt.Sprint(news), "--dry-run"}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), `"matched": 2`) {
		t.Fatalf("dry run: exit %d, %s %s", code, stdout.String(), stderr.String())
	}
}
