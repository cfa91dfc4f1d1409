package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/secrets"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// SecretsHarness is what the sealing cases need beyond a store.Store:
// stores with chosen keys on one database, and plain SQL to look at (and
// meddle with) what is stored.
type SecretsHarness struct {
	// Open returns a fresh, empty, migrated store sealing with keys (nil:
	// no key).
	Open func(t *testing.T, keys *secrets.Keyring) store.Store
	// Rekey returns a store on st's database sealing with keys, as a
	// gateway restarted with other keys would see it.
	Rekey func(st store.Store, keys *secrets.Keyring) store.Store
	// Query returns the one text value a query written with ?
	// placeholders selects; Exec runs a statement.
	Query func(t *testing.T, st store.Store, query string, args ...any) string
	Exec  func(t *testing.T, st store.Store, query string, args ...any)
}

// RunSecrets runs the sealing cases.
func RunSecrets(t *testing.T, h SecretsHarness) {
	cases := []struct {
		name string
		fn   func(t *testing.T, h SecretsHarness)
	}{
		{"SealedAtRest", testSealedAtRest},
		{"SealedValueBoundToRow", testSealedValueBoundToRow},
		{"WrongKey", testWrongKey},
		{"RotateReseals", testRotateReseals},
		{"PlaintextFromBeforeSealing", testPlaintextFromBeforeSealing},
		{"NoKey", testNoKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, h)
		})
	}
}

const (
	channelSecret = "xoxb-channel-token-123"
	botSecret     = "whsec_c2VjcmV0LWJvdC1zZWNyZXQ="
)

func keyringOf(t *testing.T, current string, previous ...string) *secrets.Keyring {
	t.Helper()
	k, err := secrets.NewKeyring(current, previous...)
	must(t, err)
	return k
}

// seedSecrets is seed plus channel secrets and a bot with a call secret.
func seedSecrets(t *testing.T, s store.Store) tenant {
	t.Helper()
	a := seed(t, s, "a")
	must(t, s.SetChannelSecrets(ctx(t), a.channel, map[string]string{"bot_token": channelSecret}))
	b := store.Bot{WorkspaceID: "a", Name: "caller", Definition: botDoc(botSecret)}
	must(t, s.UpsertBot(ctx(t), &b))
	a.bot = b.ID
	return a
}

func botDoc(secret string) json.RawMessage {
	return json.RawMessage(`{"name":"caller","call":{"secret":"` + secret + `","allow_http":true},"flows":[]}`)
}

// wantReadable checks that s reads back the secrets seedSecrets wrote.
func wantReadable(t *testing.T, s store.Store, a tenant) {
	t.Helper()
	got, err := s.GetChannelSecrets(ctx(t), a.channel)
	must(t, err)
	wantEqual(t, "channel secrets", got, map[string]string{"bot_token": channelSecret})
	b, err := s.GetBot(ctx(t), a.bot)
	must(t, err)
	wantJSON(t, "bot definition", b.Definition, botDoc(botSecret))
	byName, err := s.GetBotByName(ctx(t), "a", "caller")
	must(t, err)
	wantJSON(t, "bot by name", byName.Definition, botDoc(botSecret))
	list, err := s.ListBots(ctx(t), "a")
	must(t, err)
	for _, lb := range list {
		if lb.ID == a.bot {
			wantJSON(t, "listed bot", lb.Definition, botDoc(botSecret))
		}
	}
}

// wantSealed checks with plain SQL that neither secret is stored in
// plaintext, and that both are envelopes under key id kid.
func wantSealed(t *testing.T, h SecretsHarness, s store.Store, a tenant, kid string) {
	t.Helper()
	raw := h.Query(t, s, `SELECT secrets FROM channel_secrets WHERE channel_id = ?`, a.channel)
	def := h.Query(t, s, `SELECT definition FROM bots WHERE id = ?`, a.bot)
	for what, v := range map[string]string{"channel_secrets.secrets": raw, "bots.definition": def} {
		if strings.Contains(v, channelSecret) || strings.Contains(v, botSecret) || strings.Contains(v, "bot_token") {
			t.Fatalf("%s holds plaintext: %s", what, v)
		}
	}
	if !strings.HasPrefix(raw, "sb1:"+kid+":") {
		t.Fatalf("channel_secrets.secrets = %q, want an envelope under key %s", raw, kid)
	}
	var doc struct {
		Call struct{ Secret string } `json:"call"`
	}
	must(t, json.Unmarshal([]byte(def), &doc))
	if !strings.HasPrefix(doc.Call.Secret, "sb1:"+kid+":") {
		t.Fatalf("bots.definition call.secret = %q, want an envelope under key %s", doc.Call.Secret, kid)
	}
}

func testSealedAtRest(t *testing.T, h SecretsHarness) {
	k := keyringOf(t, "key-a")
	s := h.Open(t, k)
	a := seedSecrets(t, s)
	wantSealed(t, h, s, a, k.CurrentID())
	wantReadable(t, s, a)

	// Updating the bot keeps the secret sealed; a bot without one stores
	// its document as given.
	b := store.Bot{WorkspaceID: "a", Name: "caller", Definition: botDoc(botSecret)}
	must(t, s.UpsertBot(ctx(t), &b))
	wantSealed(t, h, s, a, k.CurrentID())
	plain := store.Bot{WorkspaceID: "a", Name: "plain", Definition: json.RawMessage(`{"call":{"allow_http":true}}`)}
	must(t, s.UpsertBot(ctx(t), &plain))
	got, err := s.GetBot(ctx(t), plain.ID)
	must(t, err)
	wantJSON(t, "bot without a secret", got.Definition, plain.Definition)
}

func testSealedValueBoundToRow(t *testing.T, h SecretsHarness) {
	s := h.Open(t, keyringOf(t, "key-a"))
	a := seedSecrets(t, s)
	b := seed(t, s, "b")
	must(t, s.SetChannelSecrets(ctx(t), b.channel, map[string]string{"bot_token": "b's own"}))
	// Copy a's sealed secrets into b's row, as someone with write access
	// to the database but not the key might.
	sealed := h.Query(t, s, `SELECT secrets FROM channel_secrets WHERE channel_id = ?`, a.channel)
	h.Exec(t, s, `UPDATE channel_secrets SET secrets = ? WHERE channel_id = ?`, sealed, b.channel)
	_, err := s.GetChannelSecrets(ctx(t), b.channel)
	wantErr(t, err, secrets.ErrCorrupt)
	// A flipped character is refused the same way.
	flipped := []byte(sealed)
	flipped[len(flipped)-3] ^= 1
	h.Exec(t, s, `UPDATE channel_secrets SET secrets = ? WHERE channel_id = ?`, string(flipped), a.channel)
	_, err = s.GetChannelSecrets(ctx(t), a.channel)
	wantErr(t, err, secrets.ErrCorrupt)
}

func testWrongKey(t *testing.T, h SecretsHarness) {
	s := h.Open(t, keyringOf(t, "key-a"))
	a := seedSecrets(t, s)
	other := h.Rekey(s, keyringOf(t, "key-b"))
	_, err := other.GetChannelSecrets(ctx(t), a.channel)
	wantErr(t, err, secrets.ErrUnknownKey)
	_, err = other.GetBot(ctx(t), a.bot)
	wantErr(t, err, secrets.ErrUnknownKey)
	if err != nil && strings.Contains(err.Error(), botSecret) {
		t.Fatalf("error shows the secret: %v", err)
	}
	// Rotating with the old key unknown fails and changes nothing.
	_, err = other.ResealSecrets(ctx(t), false)
	wantErr(t, err, secrets.ErrUnknownKey)
	wantReadable(t, s, a)
}

func testRotateReseals(t *testing.T, h SecretsHarness) {
	old := keyringOf(t, "key-old")
	s := h.Open(t, old)
	a := seedSecrets(t, s)
	two := seed(t, s, "two")
	must(t, s.SetChannelSecrets(ctx(t), two.channel, map[string]string{"k": "v"}))

	// The new key is current, the old one still known: everything reads
	// (routed by key id) while nothing is re-sealed yet.
	rotated := keyringOf(t, "key-new", "key-old")
	live := h.Rekey(s, rotated)
	wantReadable(t, live, a)
	// New writes seal under the new key at once.
	must(t, live.SetChannelSecrets(ctx(t), two.channel, map[string]string{"k": "v2"}))

	rep, err := live.ResealSecrets(ctx(t), false)
	must(t, err)
	wantEqual(t, "reseal report", rep, store.ResealReport{ChannelSecrets: 1, BotSecrets: 1, Current: 1})
	wantSealed(t, h, live, a, rotated.CurrentID())

	// The old key can go now.
	newOnly := h.Rekey(s, keyringOf(t, "key-new"))
	wantReadable(t, newOnly, a)
	got, err := newOnly.GetChannelSecrets(ctx(t), two.channel)
	must(t, err)
	wantEqual(t, "second channel", got, map[string]string{"k": "v2"})
	rep, err = newOnly.ResealSecrets(ctx(t), false)
	must(t, err)
	wantEqual(t, "second reseal", rep, store.ResealReport{Current: 3})
}

func testPlaintextFromBeforeSealing(t *testing.T, h SecretsHarness) {
	k := keyringOf(t, "key-a")
	s := h.Open(t, k)
	a := seed(t, s, "a")
	// What a database made before sealing holds.
	h.Exec(t, s, `INSERT INTO channel_secrets (channel_id, secrets) VALUES (?, ?)`, a.channel, `{"bot_token":"`+channelSecret+`"}`)
	b := store.Bot{WorkspaceID: "a", Name: "caller", Definition: json.RawMessage(`{}`)}
	must(t, s.UpsertBot(ctx(t), &b))
	h.Exec(t, s, `UPDATE bots SET definition = ? WHERE id = ?`, string(botDoc(botSecret)), b.ID)
	a.bot = b.ID
	wantReadable(t, s, a)

	// Sealing the plaintext leaves sealed values alone.
	c := seed(t, s, "c")
	must(t, s.SetChannelSecrets(ctx(t), c.channel, map[string]string{"k": "v"}))
	rep, err := s.ResealSecrets(ctx(t), true)
	must(t, err)
	wantEqual(t, "reseal report", rep, store.ResealReport{ChannelSecrets: 1, BotSecrets: 1, Plaintext: 2, Current: 1})
	wantSealed(t, h, s, a, k.CurrentID())
	wantReadable(t, s, a)
}

func testNoKey(t *testing.T, h SecretsHarness) {
	s := h.Open(t, nil)
	a := seed(t, s, "a")
	wantErr(t, s.SetChannelSecrets(ctx(t), a.channel, map[string]string{"k": "v"}), secrets.ErrNoKey)
	b := store.Bot{WorkspaceID: "a", Name: "caller", Definition: botDoc(botSecret)}
	err := s.UpsertBot(ctx(t), &b)
	wantErr(t, err, secrets.ErrNoKey)
	if _, err := s.GetBotByName(ctx(t), "a", "caller"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a bot whose secret could not be sealed was stored: %v", err)
	}
	// Nothing else needs a key.
	plain := store.Bot{WorkspaceID: "a", Name: "plain", Definition: json.RawMessage(`{"flows":[]}`)}
	must(t, s.UpsertBot(ctx(t), &plain))
	got, err := s.GetChannelSecrets(ctx(t), a.channel)
	must(t, err)
	wantEqual(t, "secrets", got, map[string]string{})
}
