package apply_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk"
)

// testBots stands in for package bot: a bot is valid when it has a name and
// no "broken" key.
func testBots(doc *yaml.Node) (string, json.RawMessage, error) {
	var m map[string]any
	if err := doc.Decode(&m); err != nil {
		return "", nil, err
	}
	if _, ok := m["broken"]; ok {
		return "", nil, errors.New("flow start: step 1: broken Liquid")
	}
	name, _ := m["name"].(string)
	if name == "" {
		return "", nil, errors.New("name: required")
	}
	def, err := json.Marshal(m)
	return name, def, err
}

const demo = `
workspace:
  id: acme
  name: Acme
bots:
  - name: helper
    flows: [start]
channels:
  - name: hook
    id: acme-hook
    type: webhook
    bot: helper
    config:
      url: ${SINK_URL}
      note: ${UNSET_WITH_DEFAULT:-fallback}
    secrets:
      signing_secret: ${HOOK_SECRET}
people:
  - id: wiley
    email: Wiley@Example.com
    attributes: {plan: pro}
    identities:
      - channel: hook
        address: wiley-1
`

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "res.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func run(t *testing.T, st *sqlstore.Store, content string, dry bool) (string, error) {
	t.Helper()
	files, err := apply.ReadFiles([]string{write(t, content)})
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = apply.Apply(context.Background(), st, files, apply.Options{
		Bots: testBots, Out: &out, DryRun: dry,
		LookupEnv: env(map[string]string{"SINK_URL": "http://127.0.0.1:9/sink", "HOOK_SECRET": "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="}),
	})
	return out.String(), err
}

func TestApplyCreatesThenUpdates(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	ctx := context.Background()
	out, err := run(t, st, demo, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"workspace acme: created", "bot helper", "channel hook (id acme-hook, type webhook): created", "person wiley: created"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ch, err := st.GetChannel(ctx, "acme-hook")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]string
	if err := json.Unmarshal(ch.Config, &cfg); err != nil || cfg["url"] != "http://127.0.0.1:9/sink" || cfg["note"] != "fallback" {
		t.Fatalf("config = %s (%v), want the expanded url", ch.Config, err)
	}
	if strings.Contains(string(ch.Config), "whsec_") {
		t.Fatal("a secret leaked into the channel config")
	}
	secrets, err := st.GetChannelSecrets(ctx, ch.ID)
	if err != nil || secrets["signing_secret"] == "" {
		t.Fatalf("secrets = %v, %v", secrets, err)
	}
	p, err := st.PersonByIdentity(ctx, ch.ID, "wiley-1")
	if err != nil || p.ID != "wiley" || p.Email != "wiley@example.com" {
		t.Fatalf("person by identity = %+v, %v", p, err)
	}

	// The same file again changes nothing, and says so.
	out, err = run(t, st, demo, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"workspace acme: unchanged", "bot helper", "channel hook (id acme-hook, type webhook): unchanged", "person wiley: unchanged"} {
		if !strings.Contains(out, want) || strings.Contains(out, "updated") {
			t.Errorf("second apply output lacks %q or updates:\n%s", want, out)
		}
	}
	changed := strings.NewReplacer("name: Acme", "name: Acme Inc", "note: ${UNSET_WITH_DEFAULT:-fallback}", "note: other",
		"address: wiley-1", "address: wiley-2").Replace(demo)
	out, err = run(t, st, changed, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"workspace acme: updated", "channel hook (id acme-hook, type webhook): updated", "person wiley: updated"} {
		if !strings.Contains(out, want) {
			t.Errorf("third apply output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "): unchanged\n") {
		t.Errorf("third apply output: the bot did not change:\n%s", out)
	}
}

// TestApplyPrintsOnlyWhatCommitted: a file that fails inside the
// transaction, after objects were written, prints none of them.
func TestApplyPrintsOnlyWhatCommitted(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	doc := "workspace: {id: acme}\nchannels:\n  - {name: hook, type: webhook, bot: ghost}\n"
	out, err := run(t, st, doc, false)
	if err == nil || out != "" {
		t.Fatalf("out %q, err %v: want an error and nothing printed", out, err)
	}
}

func TestApplyRejectsUnknownKeysWithTheirLine(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	_, err := run(t, st, "workspace:\n  id: acme\n  colour: blue\n", false)
	if err == nil || !strings.Contains(err.Error(), ".yaml:3: workspace.colour: unknown key; valid keys here: id, name") {
		t.Fatalf("err = %v, want the unknown key, its line and the valid keys", err)
	}
	// A typo in a list item: its path in the file and the keys valid
	// there, never the Go type it decodes into.
	_, err = run(t, st, "workspace: {id: acme}\nchannels:\n  - name: a\n  - name: hook\n    tpye: webhook\n", false)
	want := ".yaml:5: channels[1].tpye: unknown key; valid keys here: id, name, type, bot, enabled, config, secrets"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "ChannelSpec") {
		t.Fatalf("err = %v, want %q", err, want)
	}
	// Nested, in an anonymous Go struct, with a second problem.
	_, err = run(t, st, "workspace: {id: acme}\npeople:\n  - id: a\n    identities:\n      - {chanel: x, address: y}\n"+
		"broadcasts:\n  - {name: b, actvie: true}\n", false)
	for _, want := range []string{".yaml:5: people[0].identities[0].chanel: unknown key; valid keys here: channel, address",
		".yaml:7: broadcasts[0].actvie: unknown key; valid keys here: name, description, active, recipients, actions, goal"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}

func TestApplyReportsEveryProblemAndWritesNothing(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	doc := `
workspace: {id: acme}
bots:
  - name: helper
    broken: true
channels:
  - {name: Bad Name, type: webhook, bot: helper}
  - {name: ok, type: webhook, bot: helper, secrets: {token: "${NOT_SET}"}}
people:
  - {email: nobody@example.com}
`
	_, err := run(t, st, doc, false)
	var probs apply.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want Problems", err)
	}
	want := []string{"bots[0]: flow start: step 1: broken Liquid", `channels[0]: name "Bad Name"`, "secrets.token: environment variable NOT_SET is not set", "people[0]: id: required"}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problems lack %q:\n%v", w, err)
		}
	}
	if !strings.Contains(err.Error(), ".yaml:4:") {
		t.Errorf("problems lack the bot's line:\n%v", err)
	}
	if _, err := st.GetWorkspace(context.Background(), "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("workspace exists after a failed apply: %v", err)
	}
}

func TestApplyIsTransactional(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	// Valid on its own, but the channel's bot exists nowhere: found only
	// inside the transaction, after the workspace was written.
	doc := "workspace: {id: acme}\nchannels:\n  - {name: hook, type: webhook, bot: ghost}\n"
	_, err := run(t, st, doc, false)
	if err == nil || !strings.Contains(err.Error(), `bot "ghost"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := st.GetWorkspace(context.Background(), "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("workspace was written by a failed apply: %v", err)
	}
}

func TestApplyDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	out, err := run(t, st, demo, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "dry run") {
		t.Errorf("output: %s", out)
	}
	if _, err := st.GetWorkspace(context.Background(), "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(fmt.Errorf("dry run wrote the workspace: %w", err))
	}
}

// validator answers for each channel what its test case says.
type validator map[string]error

func (v validator) ValidateChannel(_ context.Context, ch store.Channel, secrets map[string]string) error {
	if ch.Type != "webhook" || secrets["signing_secret"] == "" {
		return fmt.Errorf("unexpected channel %+v", ch)
	}
	return v[ch.Name]
}

// TestApplyAsksPluginsToValidateChannels: with a ChannelValidator, a
// channel its plugin refuses is a problem per field at the channel's
// line and nothing is written; a plugin that cannot say is noted and the
// channel applied.
func TestApplyAsksPluginsToValidateChannels(t *testing.T) {
	st := sqlstore.OpenTest(t)
	files, err := apply.ReadFiles([]string{write(t, demo)})
	if err != nil {
		t.Fatal(err)
	}
	opts := func(v validator, out *bytes.Buffer) apply.Options {
		return apply.Options{Bots: testBots, Out: out, Channels: v,
			LookupEnv: env(map[string]string{"SINK_URL": "ftp://x", "HOOK_SECRET": "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="})}
	}
	var out bytes.Buffer
	err = apply.Apply(context.Background(), st, files, opts(validator{"hook": &sdk.ConfigError{Fields: map[string]string{
		"url": "must be an absolute http or https URL", "timeout": "must be a duration"}}}, &out))
	var probs apply.Problems
	if !errors.As(err, &probs) || len(probs) != 2 ||
		!strings.HasSuffix(probs[0], "res.yaml:9: channels[0]: the webhook plugin refuses the configuration: timeout: must be a duration") ||
		!strings.HasSuffix(probs[1], "res.yaml:9: channels[0]: the webhook plugin refuses the configuration: url: must be an absolute http or https URL") {
		t.Fatalf("err = %v", err)
	}
	if _, err := st.GetWorkspace(context.Background(), "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused apply wrote the workspace: %v", err)
	}
	out.Reset()
	err = apply.Apply(context.Background(), st, files, opts(validator{"hook": fmt.Errorf("%w: no webhook plugin", apply.ErrNotValidated)}, &out))
	if err != nil || !strings.Contains(out.String(), "channel hook: configuration not checked: no webhook plugin\n") {
		t.Fatalf("unvalidated channel: %v\n%s", err, out.String())
	}
}
