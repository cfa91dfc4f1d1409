package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/cli"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// env is a config file on a fresh SQLite database.
type env struct {
	dir, config, db string
}

// newEnv writes a config for a database in a temporary directory; extra is
// appended to it. The secret key variables are cleared so the machine's
// environment does not leak in.
func newEnv(t *testing.T, extra string) env {
	t.Helper()
	t.Setenv(config.EnvSecretKey, "")
	t.Setenv(config.EnvSecretKeysPrevious, "")
	t.Setenv(config.EnvDatabaseURL, "")
	dir := t.TempDir()
	e := env{dir: dir, config: filepath.Join(dir, "gateway.yaml"), db: filepath.Join(dir, "data", "switchboard.db")}
	if err := os.WriteFile(e.config, []byte("database: sqlite://"+e.db+"\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// run runs the switchboard command with --config.
func (e env) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Execute(context.Background(), append(args, "--config", e.config), &out, &errb)
	return out.String(), errb.String(), code
}

// mustRun is run that fails the test on a non-zero exit.
func (e env) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := e.run(t, args...)
	if code != 0 {
		t.Fatalf("switchboard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// open opens the env's store as the gateway would.
func (e env) open(t *testing.T) *sqlstore.Store {
	t.Helper()
	cfg, err := config.Load(e.config)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// seedWorkspace creates workspace w with a channel "web" and returns the
// channel's id.
func seedWorkspace(t *testing.T, st store.Store, w string) string {
	t.Helper()
	ctx := context.Background()
	if err := st.UpsertWorkspace(ctx, store.Workspace{ID: w, Name: w}); err != nil {
		t.Fatal(err)
	}
	b := store.Bot{WorkspaceID: w, Name: "bot", Definition: json.RawMessage(`{"flows":[]}`)}
	if err := st.UpsertBot(ctx, &b); err != nil {
		t.Fatal(err)
	}
	c := store.Channel{WorkspaceID: w, BotID: b.ID, Name: "web", Type: "webhook", Enabled: true}
	if err := st.UpsertChannel(ctx, &c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}
