package storetest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

func testWorkspaces(t *testing.T, s store.Store) {
	_, err := s.GetWorkspace(ctx(t), "acme")
	wantErr(t, err, store.ErrNotFound)

	must(t, s.UpsertWorkspace(ctx(t), store.Workspace{ID: "zeta", Name: "Zeta", CreatedAt: t0}))
	must(t, s.UpsertWorkspace(ctx(t), store.Workspace{ID: "acme", Name: "Acme", CreatedAt: t0}))
	// An upsert renames and keeps the creation time.
	must(t, s.UpsertWorkspace(ctx(t), store.Workspace{ID: "acme", Name: "Acme Corp", CreatedAt: t0.Add(time.Hour)}))

	w, err := s.GetWorkspace(ctx(t), "acme")
	must(t, err)
	wantEqual(t, "name", w.Name, "Acme Corp")
	wantTime(t, "created", w.CreatedAt, t0)

	all, err := s.ListWorkspaces(ctx(t))
	must(t, err)
	var ids []string
	for _, w := range all {
		ids = append(ids, w.ID)
	}
	wantEqual(t, "workspaces", ids, []string{"acme", "zeta"})

	if err := s.UpsertWorkspace(ctx(t), store.Workspace{Name: "no id"}); err == nil {
		t.Fatal("upsert of a workspace without id succeeded")
	}
}

func testBots(t *testing.T, s store.Store) {
	must(t, s.UpsertWorkspace(ctx(t), store.Workspace{ID: "ws", Name: "WS"}))
	b := store.Bot{WorkspaceID: "ws", Name: "support", Definition: json.RawMessage(`{"default_flow":"main"}`)}
	must(t, s.UpsertBot(ctx(t), &b))
	if b.ID == "" || b.CreatedAt.IsZero() || b.UpdatedAt.IsZero() {
		t.Fatalf("UpsertBot did not fill in id and times: %+v", b)
	}
	firstID, created := b.ID, b.CreatedAt

	// Same name: update in place, id and creation time kept.
	again := store.Bot{WorkspaceID: "ws", Name: "support", Definition: json.RawMessage(`{"default_flow":"other"}`)}
	must(t, s.UpsertBot(ctx(t), &again))
	wantEqual(t, "id after update", again.ID, firstID)
	wantTime(t, "created after update", again.CreatedAt, created)

	got, err := s.GetBot(ctx(t), firstID)
	must(t, err)
	wantJSON(t, "definition", got.Definition, json.RawMessage(`{"default_flow":"other"}`))
	wantEqual(t, "workspace", got.WorkspaceID, "ws")
	byName, err := s.GetBotByName(ctx(t), "ws", "support")
	must(t, err)
	wantEqual(t, "bot by name", byName.ID, firstID)

	// A given id is kept for a new bot; reusing it under another name
	// renames that bot.
	sales := store.Bot{ID: "bot-sales", WorkspaceID: "ws", Name: "sales"}
	must(t, s.UpsertBot(ctx(t), &sales))
	wantEqual(t, "given id", sales.ID, "bot-sales")
	renamed := store.Bot{ID: "bot-sales", WorkspaceID: "ws", Name: "revenue"}
	must(t, s.UpsertBot(ctx(t), &renamed))
	_, err = s.GetBotByName(ctx(t), "ws", "sales")
	wantErr(t, err, store.ErrNotFound)

	bots, err := s.ListBots(ctx(t), "ws")
	must(t, err)
	var names []string
	for _, b := range bots {
		names = append(names, b.Name)
	}
	wantEqual(t, "bots", names, []string{"revenue", "support"})

	for _, tc := range []struct {
		name   string
		bot    store.Bot
		target error
	}{
		{"name taken by another id", store.Bot{ID: "bot-sales", WorkspaceID: "ws", Name: "support"}, store.ErrConflict},
		{"unknown workspace", store.Bot{WorkspaceID: "nope", Name: "x"}, store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.UpsertBot(ctx(t), &tc.bot), tc.target)
		})
	}
	_, err = s.GetBot(ctx(t), "missing")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetBotByName(ctx(t), "ws", "missing")
	wantErr(t, err, store.ErrNotFound)
}

func testChannels(t *testing.T, s store.Store) {
	a := seed(t, s, "a")
	b := seed(t, s, "b")

	c := store.Channel{ID: "ch-sms", WorkspaceID: "a", BotID: a.bot, Name: "sms", Type: "twilio",
		Config: json.RawMessage(`{"from":"+15550100"}`), Enabled: true}
	must(t, s.UpsertChannel(ctx(t), &c))
	wantEqual(t, "given id", c.ID, "ch-sms")

	c.Enabled = false
	c.ID = "" // found by name
	c.Config = json.RawMessage(`{"from":"+15550199"}`)
	must(t, s.UpsertChannel(ctx(t), &c))
	wantEqual(t, "id found by name", c.ID, "ch-sms")

	got, err := s.GetChannel(ctx(t), "ch-sms")
	must(t, err)
	wantEqual(t, "enabled", got.Enabled, false)
	wantEqual(t, "type", got.Type, "twilio")
	wantEqual(t, "bot", got.BotID, a.bot)
	wantJSON(t, "config", got.Config, json.RawMessage(`{"from":"+15550199"}`))

	list, err := s.ListChannels(ctx(t), "a")
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("workspace a has %d channels, want 2", len(list))
	}
	all, err := s.ListChannels(ctx(t), "")
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("all workspaces have %d channels, want 3", len(all))
	}

	for _, tc := range []struct {
		name   string
		ch     store.Channel
		target error
	}{
		{"bot of another workspace", store.Channel{WorkspaceID: "a", BotID: b.bot, Name: "x", Type: "webhook"}, store.ErrNotFound},
		{"unknown bot", store.Channel{WorkspaceID: "a", BotID: "nope", Name: "y", Type: "webhook"}, store.ErrNotFound},
		{"id of another workspace's channel", store.Channel{ID: a.channel, WorkspaceID: "b", BotID: b.bot, Name: "z", Type: "webhook"}, store.ErrConflict},
		{"name taken by another id", store.Channel{ID: "other", WorkspaceID: "a", BotID: a.bot, Name: "sms", Type: "webhook"}, store.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.UpsertChannel(ctx(t), &tc.ch), tc.target)
		})
	}
	_, err = s.GetChannel(ctx(t), "missing")
	wantErr(t, err, store.ErrNotFound)
}

func testChannelSecrets(t *testing.T, s store.Store) {
	a := seed(t, s, "a")

	empty, err := s.GetChannelSecrets(ctx(t), a.channel)
	must(t, err)
	if empty == nil || len(empty) != 0 {
		t.Fatalf("secrets before any were set = %#v, want an empty map", empty)
	}

	must(t, s.SetChannelSecrets(ctx(t), a.channel, map[string]string{"token": "s3cr3t-token", "old": "x"}))
	must(t, s.SetChannelSecrets(ctx(t), a.channel, map[string]string{"token": "s3cr3t-token"}))
	got, err := s.GetChannelSecrets(ctx(t), a.channel)
	must(t, err)
	wantEqual(t, "secrets", got, map[string]string{"token": "s3cr3t-token"})

	// No channel read carries the secrets.
	ch, err := s.GetChannel(ctx(t), a.channel)
	must(t, err)
	list, err := s.ListChannels(ctx(t), "a")
	must(t, err)
	for _, v := range []any{ch, list} {
		b, err := json.Marshal(v)
		must(t, err)
		if bytes.Contains(b, []byte("s3cr3t")) {
			t.Fatalf("channel read leaks a secret: %s", b)
		}
	}

	wantErr(t, s.SetChannelSecrets(ctx(t), "missing", map[string]string{"a": "b"}), store.ErrNotFound)
	_, err = s.GetChannelSecrets(ctx(t), "missing")
	wantErr(t, err, store.ErrNotFound)
}

func testAPIKeys(t *testing.T, s store.Store) {
	a := seed(t, s, "a")
	b := seed(t, s, "b")

	key := store.APIKey{ID: "k1", WorkspaceID: "a", Scope: store.ScopeChannel, ChannelID: a.channel,
		Name: "ci", Hash: []byte{1, 2, 3}, CreatedAt: t0}
	must(t, s.CreateAPIKey(ctx(t), key))
	must(t, s.CreateAPIKey(ctx(t), store.APIKey{ID: "k2", WorkspaceID: "a", Scope: store.ScopeApp, Name: "app", Hash: []byte{4}}))

	got, err := s.GetAPIKeyByHash(ctx(t), []byte{1, 2, 3})
	must(t, err)
	wantEqual(t, "key", got.ID, "k1")
	wantEqual(t, "scope", got.Scope, store.ScopeChannel)
	wantEqual(t, "channel", got.ChannelID, a.channel)
	wantEqual(t, "hash", got.Hash, []byte{1, 2, 3})
	wantTime(t, "created", got.CreatedAt, t0)
	if got.RevokedAt != nil {
		t.Fatalf("new key is revoked at %v", got.RevokedAt)
	}
	app, err := s.GetAPIKeyByHash(ctx(t), []byte{4})
	must(t, err)
	wantEqual(t, "app key channel", app.ChannelID, "")

	for _, tc := range []struct {
		name   string
		key    store.APIKey
		target error
	}{
		{"duplicate hash", store.APIKey{WorkspaceID: "a", Scope: store.ScopeApp, Hash: []byte{1, 2, 3}}, store.ErrConflict},
		{"duplicate id", store.APIKey{ID: "k1", WorkspaceID: "a", Scope: store.ScopeApp, Hash: []byte{9}}, store.ErrConflict},
		{"channel of another workspace", store.APIKey{WorkspaceID: "a", Scope: store.ScopeChannel, ChannelID: b.channel, Hash: []byte{8}}, store.ErrNotFound},
		{"unknown workspace", store.APIKey{WorkspaceID: "nope", Scope: store.ScopeApp, Hash: []byte{7}}, store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.CreateAPIKey(ctx(t), tc.key), tc.target)
		})
	}

	// Another workspace cannot revoke it.
	wantErr(t, s.RevokeAPIKey(ctx(t), "b", "k1"), store.ErrNotFound)
	_, err = s.GetAPIKeyByHash(ctx(t), []byte{1, 2, 3})
	must(t, err)

	must(t, s.RevokeAPIKey(ctx(t), "a", "k1"))
	_, err = s.GetAPIKeyByHash(ctx(t), []byte{1, 2, 3})
	wantErr(t, err, store.ErrNotFound)
	must(t, s.RevokeAPIKey(ctx(t), "a", "k1")) // revoking twice is fine
	wantErr(t, s.RevokeAPIKey(ctx(t), "a", "missing"), store.ErrNotFound)
	_, err = s.GetAPIKeyByHash(ctx(t), []byte{4})
	must(t, err)
}

func testAPIKeyLifecycle(t *testing.T, s store.Store) {
	a := seed(t, s, "a")
	seed(t, s, "b")
	for i, k := range []store.APIKey{
		{ID: "k2", WorkspaceID: "a", Scope: store.ScopeApp, Name: "second", Hash: []byte{2}, CreatedAt: t0.Add(time.Second)},
		{ID: "k1", WorkspaceID: "a", Scope: store.ScopeChannel, ChannelID: a.channel, Name: "first", Hash: []byte{1}, CreatedAt: t0},
		{ID: "kb", WorkspaceID: "b", Scope: store.ScopeApp, Name: "other", Hash: []byte{3}, CreatedAt: t0},
	} {
		if i == 0 {
			exp := t0.Add(time.Hour)
			k.ExpiresAt = &exp
		}
		must(t, s.CreateAPIKey(ctx(t), k))
	}
	must(t, s.RevokeAPIKey(ctx(t), "a", "k1"))

	// Listing: the workspace's keys only, oldest first, revoked included.
	list, err := s.ListAPIKeys(ctx(t), "a")
	must(t, err)
	if len(list) != 2 || list[0].ID != "k1" || list[1].ID != "k2" {
		t.Fatalf("ListAPIKeys(a) = %+v, want k1, k2", list)
	}
	if list[0].RevokedAt == nil || list[0].ChannelID != a.channel || list[0].Name != "first" {
		t.Fatalf("listed k1 = %+v", list[0])
	}
	if list[1].ExpiresAt == nil || !list[1].ExpiresAt.Equal(t0.Add(time.Hour)) || list[1].LastUsedAt != nil {
		t.Fatalf("listed k2 = %+v", list[1])
	}
	none, err := s.ListAPIKeys(ctx(t), "nobody")
	must(t, err)
	wantEqual(t, "keys of an unknown workspace", len(none), 0)

	got, err := s.GetAPIKey(ctx(t), "k1")
	must(t, err)
	if got.RevokedAt == nil || got.WorkspaceID != "a" {
		t.Fatalf("GetAPIKey(k1) = %+v, want the revoked key", got)
	}
	_, err = s.GetAPIKey(ctx(t), "missing")
	wantErr(t, err, store.ErrNotFound)

	// Expiry: an earlier expiry is kept, a later one is not taken.
	must(t, s.ExpireAPIKey(ctx(t), "a", "k2", t0.Add(2*time.Hour)))
	got, err = s.GetAPIKeyByHash(ctx(t), []byte{2})
	must(t, err)
	wantTime(t, "kept expiry", *got.ExpiresAt, t0.Add(time.Hour))
	must(t, s.ExpireAPIKey(ctx(t), "a", "k2", t0.Add(time.Minute)))
	got, err = s.GetAPIKey(ctx(t), "k2")
	must(t, err)
	wantTime(t, "earlier expiry", *got.ExpiresAt, t0.Add(time.Minute))
	wantErr(t, s.ExpireAPIKey(ctx(t), "b", "k2", t0), store.ErrNotFound)
	wantErr(t, s.ExpireAPIKey(ctx(t), "a", "missing", t0), store.ErrNotFound)

	// Last use: recorded when none is, or when the one recorded is not
	// later than since; not otherwise.
	use := func(at, since time.Time) time.Time {
		t.Helper()
		must(t, s.RecordAPIKeyUse(ctx(t), "k2", at, since))
		k, err := s.GetAPIKeyByHash(ctx(t), []byte{2})
		must(t, err)
		if k.LastUsedAt == nil {
			t.Fatal("no last use recorded")
		}
		return *k.LastUsedAt
	}
	wantTime(t, "first use", use(t0, t0.Add(-time.Minute)), t0)
	wantTime(t, "use within the minute", use(t0.Add(30*time.Second), t0.Add(-30*time.Second)), t0)
	wantTime(t, "use a minute later", use(t0.Add(time.Minute), t0), t0.Add(time.Minute))
	must(t, s.RecordAPIKeyUse(ctx(t), "missing", t0, t0)) // a key deleted meanwhile is no error
}
