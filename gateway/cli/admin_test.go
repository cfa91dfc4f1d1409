package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/cli"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// TestCommandsOnTheDatabase: status, list and get work on the database
// too, and bad input says what to fix.
func TestCommandsOnTheDatabase(t *testing.T) {
	e := newEnv(t, "")
	st := e.open(t)
	channel := seedWorkspace(t, st, "acme")
	seedWorkspace(t, st, "other")

	var status adminapi.Status
	if err := json.Unmarshal([]byte(e.mustRun(t, "status", "--workspace", "acme", "-o", "json")), &status); err != nil {
		t.Fatal(err)
	}
	if len(status.Channels) != 1 || status.Channels[0].ID != channel || status.Node != "" || len(status.Plugins) != 0 {
		t.Fatalf("status on the database = %+v, want acme's channel and no plugins", status)
	}
	if table := e.mustRun(t, "status", "--workspace", "acme"); !strings.Contains(table, "give --url to see a node's") {
		t.Fatalf("status table does not say plugins need --url:\n%s", table)
	}
	var page adminapi.Page[adminapi.Channel]
	if err := json.Unmarshal([]byte(e.mustRun(t, "list", "channels", "--workspace", "acme", "-o", "json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != channel {
		t.Fatalf("list channels = %+v", page)
	}
	if out := e.mustRun(t, "get", "channel", "web", "--workspace", "other"); !strings.Contains(out, "type webhook") || strings.Contains(out, channel) {
		t.Fatalf("get channel web in other:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "channel", "web"}, "--workspace is required"},
		{[]string{"get", "channel", "nope", "--workspace", "acme"}, `no channel "nope"`},
		{[]string{"get", "widget", "x", "--workspace", "acme"}, "unknown kind \"widget\": want one of workspaces"},
		{[]string{"list", "channels", "--workspace", "acme", "--status", "open"}, "list channels takes no filters"},
		{[]string{"list", "triggers", "--workspace", "acme", "--person", "p"}, "its filters: --broadcast"},
		{[]string{"list", "deliveries", "--workspace", "acme", "--status", "lost"}, "want one of queued"},
		{[]string{"list", "deliveries", "--workspace", "acme", "--since", "yesterday"}, "RFC 3339"},
		{[]string{"list", "deliveries", "--workspace", "acme", "--limit", "9999"}, "from 1 to 500"},
		{[]string{"deliveries", "tail", "--workspace", "acme", "--interval", "0s"}, "must be positive"},
	} {
		if _, errs, code := e.run(t, tc.args...); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error saying %q", tc.args, code, errs, tc.want)
		}
	}
}

// TestOperatorKeyCreation: keys create --operator needs neither a
// database nor a gateway, and prints a key its digest matches.
func TestOperatorKeyCreation(t *testing.T) {
	e := newEnv(t, "")
	e.config = filepath.Join(t.TempDir(), "missing.yaml")
	var out struct {
		Key    string `json:"key"`
		Digest string `json:"sha256"`
	}
	if err := json.Unmarshal([]byte(e.mustRun(t, "keys", "create", "--operator", "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	keys, err := auth.ParseOperatorKeys([]string{out.Digest})
	if err != nil || keys.Match(out.Key) != 0 {
		t.Fatalf("operator key %q does not match its digest %q: %v", out.Key, out.Digest, err)
	}
}

// TestRemoteByEnvironment: SWITCHBOARD_URL and SWITCHBOARD_ADMIN_KEY send
// the keys commands to the admin API (the config does not exist); an
// explicit --url makes database-only commands refuse.
func TestRemoteByEnvironment(t *testing.T) {
	e := newEnv(t, "")
	st := e.open(t)
	seedWorkspace(t, st, "acme")
	admin := gatewaytest.NewKey(t, st, "acme", store.ScopeAdmin, "")
	api := adminapi.NewAPI(adminapi.HTTPOptions{Service: adminapi.NewService(adminapi.Options{Store: st}), Auth: &auth.Authenticator{Keys: st}})
	mux := http.NewServeMux()
	for _, r := range api.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.config = filepath.Join(t.TempDir(), "missing.yaml")

	t.Setenv(cli.EnvURL, srv.URL)
	if _, errs, code := e.run(t, "keys", "list"); code == 0 || !strings.Contains(errs, "needs an admin key") {
		t.Fatalf("without a key: exit %d %q", code, errs)
	}
	t.Setenv(cli.EnvAdminKey, admin)
	var keys []adminapi.Key
	if err := json.Unmarshal([]byte(e.mustRun(t, "keys", "list", "-o", "json")), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Scope != "admin" || keys[0].WorkspaceID != "acme" {
		t.Fatalf("keys list through the API = %+v", keys)
	}
	if _, errs, code := e.run(t, "keys", "list", "--workspace", "other"); code == 0 || !strings.Contains(errs, `acts in workspace "acme" only`) {
		t.Fatalf("another workspace: exit %d %q", code, errs)
	}
	for _, args := range [][]string{{"migrate"}, {"secrets", "rotate"}, {"broadcast", "send", "--channel", "c", "--flow", "f", "--user", "u"}} {
		if _, errs, code := e.run(t, append(args, "--url", srv.URL)...); code == 0 || !strings.Contains(errs, "works on the database only") {
			t.Errorf("%v --url: exit %d %q, want a refusal", args, code, errs)
		}
	}
	t.Setenv(cli.EnvURL, "http://127.0.0.1:1")
	if _, errs, code := e.run(t, "keys", "list"); code == 0 || !strings.Contains(errs, "admin API at http://127.0.0.1:1") {
		t.Fatalf("unreachable gateway: exit %d %q", code, errs)
	}
}
