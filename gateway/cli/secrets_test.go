package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/secrets"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

const (
	channelSecret = "xoxb-very-secret-token"
	botSecret     = "whsec_c2VjcmV0LWJvdC1zZWNyZXQ="
)

// seedSecrets stores channel secrets and a bot call secret in workspace w.
func seedSecrets(t *testing.T, st store.Store) (channelID, botID string) {
	t.Helper()
	channelID = seedWorkspace(t, st, "acme")
	ctx := context.Background()
	if err := st.SetChannelSecrets(ctx, channelID, map[string]string{"bot_token": channelSecret}); err != nil {
		t.Fatal(err)
	}
	b := store.Bot{WorkspaceID: "acme", Name: "caller", Definition: json.RawMessage(`{"call":{"secret":"` + botSecret + `"}}`)}
	if err := st.UpsertBot(ctx, &b); err != nil {
		t.Fatal(err)
	}
	return channelID, b.ID
}

// stored reads the stored form of the seeded secrets with plain SQL.
func stored(t *testing.T, e env, channelID, botID string) string {
	t.Helper()
	st := e.open(t)
	var sec, def string
	db := st.WriteDB()
	if err := db.QueryRow(`SELECT secrets FROM channel_secrets WHERE channel_id = ?`, channelID).Scan(&sec); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT definition FROM bots WHERE id = ?`, botID).Scan(&def); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sec+def, channelSecret) || strings.Contains(sec+def, botSecret) {
		t.Fatalf("plaintext at rest:\n%s\n%s", sec, def)
	}
	return sec + "\n" + def
}

func kid(t *testing.T, secret string) string {
	t.Helper()
	k, err := secrets.NewKeyring(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k.CurrentID()
}

// TestSQLiteKeyFile: without a configured key a SQLite gateway makes a
// 0600 key file beside the database once, says so, and uses it from then
// on; configuring a key later keeps the file's key readable, so `secrets
// rotate` moves everything to the configured key.
func TestSQLiteKeyFile(t *testing.T) {
	e := newEnv(t, "")
	_, errs, code := e.run(t, "migrate")
	keyFile := filepath.Join(e.dir, "data", "switchboard.key")
	if code != 0 || !strings.Contains(errs, "generated one into the key file") || !strings.Contains(errs, keyFile) ||
		!strings.Contains(errs, "back it up") {
		t.Fatalf("first start: exit %d, stderr %q; want a warning naming the key file", code, errs)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	fileKey, err := secrets.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errs, fileKey) {
		t.Fatal("the log shows the generated key")
	}
	if _, errs, _ = e.run(t, "migrate"); strings.Contains(errs, "generated") {
		t.Fatalf("second start generated a key again: %s", errs)
	}

	channelID, botID := seedSecrets(t, e.open(t))
	if at := stored(t, e, channelID, botID); !strings.Contains(at, "sb1:"+kid(t, fileKey)+":") {
		t.Fatalf("not sealed under the key file's key:\n%s", at)
	}
	again, _ := secrets.ReadKeyFile(keyFile)
	if again != fileKey {
		t.Fatal("the key file changed")
	}

	// Moving to a configured key.
	t.Setenv(config.EnvSecretKey, "configured-key")
	out := e.mustRun(t, "secrets", "rotate")
	if !strings.Contains(out, "re-sealed under key "+kid(t, "configured-key")+": 1 channel secrets, 1 bot call secrets") {
		t.Fatalf("secrets rotate printed %q", out)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	got, err := e.open(t).GetChannelSecrets(context.Background(), channelID)
	if err != nil || got["bot_token"] != channelSecret {
		t.Fatalf("after the move, without the key file: %v, %v", got, err)
	}
}

// TestPostgresRefusesToStartWithoutKey: PostgreSQL nodes must share one
// key, so none generates one; serve and every command that opens the
// database say what to set.
func TestPostgresRefusesToStartWithoutKey(t *testing.T) {
	e := newEnv(t, "")
	url := os.Getenv("SWITCHBOARD_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable" // refused before connecting
	}
	for _, args := range [][]string{{"serve"}, {"keys", "list", "--workspace", "w"}, {"secrets", "rotate"}} {
		_, errs, code := e.run(t, append(args, "--database", url)...)
		if code == 0 || !strings.Contains(errs, "no secret key: set SWITCHBOARD_SECRET_KEY") {
			t.Errorf("%v on PostgreSQL without a key: exit %d, stderr %q", args, code, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "data")); !os.IsNotExist(err) {
		t.Errorf("a key file or database appeared for a PostgreSQL gateway: %v", err)
	}
}

// TestSecretsRotate re-seals under a new key while the old one is still
// known, and refuses (changing nothing, showing nothing) without it.
func TestSecretsRotate(t *testing.T) {
	e := newEnv(t, "secret_key: old-key\n")
	channelID, botID := seedSecrets(t, e.open(t))
	if at := stored(t, e, channelID, botID); !strings.Contains(at, "sb1:"+kid(t, "old-key")+":") {
		t.Fatalf("not sealed under the old key:\n%s", at)
	}

	// The new key without the old one: nothing opens, rotate refuses.
	t.Setenv(config.EnvSecretKey, "new-key")
	out, errs, code := e.run(t, "secrets", "rotate")
	if code == 0 || !strings.Contains(errs, kid(t, "old-key")) || !strings.Contains(errs, "SWITCHBOARD_SECRET_KEY_PREVIOUS") {
		t.Fatalf("rotate without the old key: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if strings.Contains(errs, channelSecret) || strings.Contains(errs, botSecret) || strings.Contains(errs, "new-key") {
		t.Fatalf("error shows a secret: %s", errs)
	}

	t.Setenv(config.EnvSecretKeysPrevious, "some-other-key,old-key")
	out = e.mustRun(t, "secrets", "rotate", "-o", "json")
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"key_id": kid(t, "new-key"), "channel_secrets": 1.0, "bot_secrets": 1.0, "plaintext": 0.0, "already_current": 0.0}
	for k, v := range want {
		if rep[k] != v {
			t.Fatalf("secrets rotate -o json = %s; want %v", out, want)
		}
	}
	if at := stored(t, e, channelID, botID); strings.Contains(at, kid(t, "old-key")) || strings.Count(at, "sb1:"+kid(t, "new-key")+":") != 2 {
		t.Fatalf("not re-sealed under the new key:\n%s", at)
	}

	// The old key is no longer needed.
	t.Setenv(config.EnvSecretKeysPrevious, "")
	out = e.mustRun(t, "secrets", "rotate")
	if !strings.Contains(out, ": 0 channel secrets, 0 bot call secrets (0 of them were plaintext); 2 already under it") {
		t.Fatalf("second rotate printed %q", out)
	}
	st := e.open(t)
	got, err := st.GetChannelSecrets(context.Background(), channelID)
	if err != nil || got["bot_token"] != channelSecret {
		t.Fatalf("after rotation: %v, %v", got, err)
	}
	b, err := st.GetBot(context.Background(), botID)
	if err != nil || !strings.Contains(string(b.Definition), botSecret) {
		t.Fatalf("bot after rotation: %s, %v", b.Definition, err)
	}
}
