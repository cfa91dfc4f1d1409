package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

func TestKeyFile(t *testing.T) {
	for db, want := range map[string]string{
		"sqlite://data/switchboard.db": "data/switchboard.key",
		"sqlite:///var/lib/sb/prod":    "/var/lib/sb/prod.key",
		"postgres://db/sb":             "",
	} {
		if got := app.KeyFile(db); got != want {
			t.Errorf("KeyFile(%q) = %q, want %q", db, got, want)
		}
	}
}

// TestStartSealsPlaintextSecrets: a database from before sealing has its
// channel secrets and bot call secrets sealed by the gateway's first start.
func TestStartSealsPlaintextSecrets(t *testing.T) {
	t.Setenv(config.EnvSecretKey, "")
	db := filepath.Join(t.TempDir(), "switchboard.db")
	cfg, err := config.Parse([]byte("database: sqlite://" + db + "\nsecret_key: the-key\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Written as an older gateway did: plaintext, straight into the tables.
	old, err := sqlstore.Open(ctx, cfg.Database, sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(old.UpsertWorkspace(ctx, store.Workspace{ID: "w", Name: "w"}))
	b := store.Bot{WorkspaceID: "w", Name: "b", Definition: json.RawMessage(`{}`)}
	must(old.UpsertBot(ctx, &b))
	c := store.Channel{WorkspaceID: "w", BotID: b.ID, Name: "c", Type: "webhook", Enabled: true}
	must(old.UpsertChannel(ctx, &c))
	_, err = old.WriteDB().Exec(`INSERT INTO channel_secrets (channel_id, secrets) VALUES (?, '{"token":"plain-token"}')`, c.ID)
	must(err)
	_, err = old.WriteDB().Exec(`UPDATE bots SET definition = '{"call":{"secret":"whsec_cGxhaW4="}}' WHERE id = ?`, b.ID)
	must(err)
	must(old.Close())

	var log bytes.Buffer
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(&log, nil)))
	must(err)
	defer a.Store.Close()
	var sec, def string
	must(a.Store.WriteDB().QueryRow(`SELECT secrets FROM channel_secrets`).Scan(&sec))
	must(a.Store.WriteDB().QueryRow(`SELECT definition FROM bots`).Scan(&def))
	if strings.Contains(sec+def, "plain-token") || strings.Contains(sec+def, "whsec_cGxhaW4=") {
		t.Fatalf("plaintext after start:\n%s\n%s", sec, def)
	}
	if !strings.Contains(log.String(), "sealed secrets stored in plaintext") || !strings.Contains(log.String(), "channels=1 bots=1") {
		t.Fatalf("start did not report what it sealed: %s", log.String())
	}
	got, err := a.Store.GetChannelSecrets(ctx, c.ID)
	if err != nil || got["token"] != "plain-token" {
		t.Fatalf("secrets after start: %v, %v", got, err)
	}
}
