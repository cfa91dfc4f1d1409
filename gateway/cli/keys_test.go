package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

type listedKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	ChannelID  string     `json:"channel_id"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

func listKeys(t *testing.T, e env, workspace string) ([]listedKey, string) {
	t.Helper()
	out := e.mustRun(t, "keys", "list", "--workspace", workspace, "-o", "json")
	var keys []listedKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("keys list -o json: %v\n%s", err, out)
	}
	return keys, out
}

// TestKeysLifecycle drives keys create, list, rotate and revoke against a
// real SQLite database and checks each with the gateway's Authenticator.
func TestKeysLifecycle(t *testing.T) {
	e := newEnv(t, "")
	st := e.open(t)
	channel := seedWorkspace(t, st, "acme")
	seedWorkspace(t, st, "other")
	ctx := context.Background()
	var now time.Time
	a := &auth.Authenticator{Keys: st, Now: func() time.Time { return now }}

	appKey := strings.TrimSpace(e.mustRun(t, "keys", "create", "--workspace", "acme", "--app", "--name", "crm"))
	chanKey := strings.TrimSpace(e.mustRun(t, "keys", "create", "--workspace", "acme", "--channel", "web"))
	e.mustRun(t, "keys", "create", "--workspace", "other", "--track")

	keys, out := listKeys(t, e, "acme")
	if len(keys) != 2 || keys[0].Scope != "app" || keys[0].Name != "crm" || keys[1].Scope != "channel" || keys[1].ChannelID != channel {
		t.Fatalf("keys list = %s", out)
	}
	if keys[0].LastUsedAt != nil || keys[0].RevokedAt != nil || keys[0].ExpiresAt != nil {
		t.Fatalf("a new key shows use, revocation or expiry: %s", out)
	}
	hash := auth.Hash(appKey)
	for _, secret := range []string{appKey, chanKey, string(hash), "hash"} {
		if strings.Contains(out, secret) {
			t.Fatalf("keys list shows a key or its hash: %s", out)
		}
	}

	// A use shows as last used.
	now = time.Now()
	if _, err := a.Authenticate(ctx, appKey, store.ScopeApp); err != nil {
		t.Fatal(err)
	}
	keys, _ = listKeys(t, e, "acme")
	if keys[0].LastUsedAt == nil || !keys[0].LastUsedAt.Equal(now.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("last used = %v, want %v", keys[0].LastUsedAt, now)
	}

	// Rotation: a new key of the same scope and name; the old one works
	// for the grace period, judged on an injected clock.
	before := time.Now()
	rotatedOut := e.mustRun(t, "keys", "rotate", keys[0].ID, "--grace", "2h", "-o", "json")
	var rotated struct {
		Key string    `json:"key"`
		New listedKey `json:"new"`
		Old listedKey `json:"old"`
	}
	if err := json.Unmarshal([]byte(rotatedOut), &rotated); err != nil {
		t.Fatalf("%v: %s", err, rotatedOut)
	}
	if !strings.HasPrefix(rotated.Key, "sba_") || rotated.New.Scope != "app" || rotated.New.Name != "crm" || rotated.Old.ID != keys[0].ID {
		t.Fatalf("keys rotate = %s", rotatedOut)
	}
	exp := rotated.Old.ExpiresAt
	if exp == nil || exp.Before(before.Add(2*time.Hour)) || exp.After(time.Now().Add(2*time.Hour)) {
		t.Fatalf("old key expires at %v, want 2h after the rotation", exp)
	}
	now = exp.Add(-time.Second)
	for _, raw := range []string{appKey, rotated.Key} {
		if _, err := a.Authenticate(ctx, raw, store.ScopeApp); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
	}
	now = *exp
	if _, err := a.Authenticate(ctx, appKey, store.ScopeApp); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("old key after the grace period: %v, want ErrUnauthorized", err)
	}
	if _, err := a.Authenticate(ctx, rotated.Key, store.ScopeApp); err != nil {
		t.Fatalf("new key after the grace period: %v", err)
	}

	// Revocation: refused at once.
	out = e.mustRun(t, "keys", "revoke", rotated.New.ID)
	if !strings.Contains(out, "revoked app key "+rotated.New.ID) {
		t.Fatalf("keys revoke printed %q", out)
	}
	if _, err := a.Authenticate(ctx, rotated.Key, store.ScopeApp); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("revoked key: %v, want ErrUnauthorized", err)
	}
	if _, errs, code := e.run(t, "keys", "rotate", rotated.New.ID); code == 0 || !strings.Contains(errs, "is revoked") {
		t.Fatalf("rotating a revoked key: exit %d, %s", code, errs)
	}

	// The table says the same, in words.
	table := e.mustRun(t, "keys", "list", "--workspace", "acme")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "LAST USED") ||
		!strings.Contains(lines[1], "expires ") || !strings.Contains(lines[2], "active") || !strings.Contains(lines[3], "revoked ") {
		t.Fatalf("keys list table:\n%s", table)
	}
}

func TestKeysCommandsRefuseBadInput(t *testing.T) {
	e := newEnv(t, "")
	seedWorkspace(t, e.open(t), "acme")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "revoke", "nope"}, `no API key "nope"`},
		{[]string{"keys", "rotate", "nope"}, `no API key "nope"`},
		{[]string{"keys", "rotate", "x", "--grace", "-1h"}, "must not be negative"},
		{[]string{"keys", "list", "--workspace", "nope"}, `workspace "nope"`},
		{[]string{"keys", "list", "--workspace", "acme", "-o", "yaml"}, "want table or json"},
	} {
		if _, errs, code := e.run(t, tc.args...); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error saying %q", tc.args, code, errs, tc.want)
		}
	}
}
