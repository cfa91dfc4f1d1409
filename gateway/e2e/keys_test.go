package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/cli"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// TestRevokedKeysAreRefusedAtOnce: `switchboard keys revoke` against the
// database of a running gateway turns a CSML x-api-key and an App API
// Bearer key away on the very next request; `keys rotate` hands out a key
// that works at once while the old one keeps working.
func TestRevokedKeysAreRefusedAtOnce(t *testing.T) {
	t.Parallel()
	e := newCSML(t)
	cfgPath := gatewaytest.WriteConfig(t, e.g.Config)
	appKey := gatewaytest.NewKey(t, e.g.Store, "demo", store.ScopeApp, "")
	keyID := func(raw string) string {
		t.Helper()
		k, err := e.g.Store.GetAPIKeyByHash(context.Background(), auth.Hash(raw))
		if err != nil {
			t.Fatal(err)
		}
		return k.ID
	}
	switchboard := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := cli.Execute(context.Background(), append(args, "--config", cfgPath), &stdout, &stderr); code != 0 {
			t.Fatalf("switchboard %v: exit %d: %s", args, code, stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	csml := func(key string) int {
		t.Helper()
		code, _, _ := e.do(t, "GET", "/v1/api/bot", key, "")
		return code
	}
	app := func(key string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", e.g.URL+"/v1/segments", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	for _, c := range []struct {
		name string
		key  string
		call func(string) int
	}{{"CSML x-api-key", e.key, csml}, {"App API Bearer", appKey, app}} {
		if code := c.call(c.key); code != http.StatusOK {
			t.Fatalf("%s before rotation: %d", c.name, code)
		}
		rotated := switchboard("keys", "rotate", keyID(c.key))
		if code := c.call(rotated); code != http.StatusOK {
			t.Fatalf("%s: rotated key: %d", c.name, code)
		}
		if code := c.call(c.key); code != http.StatusOK {
			t.Fatalf("%s: old key within the grace period: %d", c.name, code)
		}
		for _, raw := range []string{c.key, rotated} {
			switchboard("keys", "revoke", keyID(raw))
			if code := c.call(raw); code != http.StatusUnauthorized {
				t.Fatalf("%s: revoked key answered %d, want 401", c.name, code)
			}
		}
	}

	// Every one of the four keys was used, and keys list says so.
	var keys []struct {
		LastUsedAt *time.Time `json:"last_used_at"`
		RevokedAt  *time.Time `json:"revoked_at"`
	}
	list := switchboard("keys", "list", "--workspace", "demo", "-o", "json")
	if err := json.Unmarshal([]byte(list), &keys); err != nil || len(keys) != 4 {
		t.Fatalf("keys list: %v\n%s", err, list)
	}
	for _, k := range keys {
		if k.LastUsedAt == nil || k.RevokedAt == nil {
			t.Fatalf("keys list: a key without its use or revocation:\n%s", list)
		}
	}
}
