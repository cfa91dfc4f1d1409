package pluginhost_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost/plugintest"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Binaries built once by TestMain.
var webhookBin, misbehaveBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	webhookBin = filepath.Join(dir, "webhook")
	misbehaveBin = filepath.Join(dir, "misbehave")
	code := 1
	err = errors.Join(
		channeltest.BuildPlugin(plugintest.Webhook, webhookBin),
		channeltest.BuildPlugin("github.com/switchboard-gw/switchboard/gateway/pluginhost/testdata/misbehave", misbehaveBin),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

var secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// sink is a webhook receiver that verifies every POST and records it.
type sink struct {
	*httptest.Server
	mu   sync.Mutex
	got  []map[string]any
	fail atomic.Bool
}

func newSink(t testing.TB) *sink {
	s := &sink{}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("sink: bad signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("sink: %v", err)
		}
		s.mu.Lock()
		s.got = append(s.got, m)
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.got {
		out = append(out, m["text"].(string))
	}
	return out
}

// logBuffer collects the host's log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type env struct {
	dir  string
	host *pluginhost.Host
	logs *logBuffer
	sink *sink
}

// newEnv installs plugins (name → binary) and returns a host for them whose
// webhook instance "wh-1" posts to a verifying sink. Call start.
func newEnv(t testing.TB, plugins map[string]string, tweak func(*pluginhost.Config)) *env {
	e := &env{dir: t.TempDir(), logs: &logBuffer{}, sink: newSink(t)}
	for name, bin := range plugins {
		plugintest.Install(t, e.dir, name, bin)
	}
	cfg := pluginhost.Config{
		Dir: e.dir,
		// The test sink is on loopback, which the webhook plugin refuses
		// unless told otherwise, as the gateway tells it in tests.
		Env:            []string{netguard.EnvAllowInternal + "=true"},
		Logger:         slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PollInterval:   10 * time.Millisecond,
		RestartBackoff: 20 * time.Millisecond,
		HealthInterval: 50 * time.Millisecond,
		StartTimeout:   10 * time.Second,
		Instances: func(_ context.Context, plugin string) ([]sdk.InstanceConfig, error) {
			if plugin != "webhook" {
				return nil, nil
			}
			return []sdk.InstanceConfig{{
				ChannelID: "wh-1",
				Config:    json.RawMessage(`{"url": "` + e.sink.URL + `"}`),
				Secrets:   map[string]string{"signing_secret": secret},
			}}, nil
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e.host = pluginhost.New(cfg)
	return e
}

func (e *env) start(t testing.TB) {
	t.Helper()
	if err := e.host.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.host.Stop(ctx)
		if t.Failed() {
			t.Logf("host log:\n%s", e.logs)
		}
	})
}

func (e *env) status(t testing.TB, name string) pluginhost.PluginStatus {
	t.Helper()
	for _, st := range e.host.Status() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no status for plugin %q", name)
	return pluginhost.PluginStatus{}
}

// waitFor polls cond; it fails the test only if cond never holds within a
// generous bound (this is about liveness, not speed).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func send(t *testing.T, ch sdk.Channel, key, text string) error {
	t.Helper()
	results, err := ch.Send(t.Context(), []sdk.Outbound{{
		ChannelID: "wh-1", IdempotencyKey: key, Recipient: "user-1", Content: message.Text(text), Attempt: 1,
	}})
	if err != nil {
		return err
	}
	return results[0].Err
}

func TestWebhookThroughHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"webhook": webhookBin}, nil)
	e.start(t)

	st := e.status(t, "webhook")
	if st.State != pluginhost.StateRunning || st.PID == 0 || st.Version != "test" {
		t.Fatalf("status = %+v, want running with a pid and the manifest version", st)
	}
	if len(st.Instances) != 1 || !st.Instances[0].Healthy {
		t.Errorf("instances = %+v, want wh-1 configured", st.Instances)
	}
	desc, ok := e.host.Describe("webhook")
	if !ok || desc.Name != "webhook" || desc.ProtocolVersion != sdk.ProtocolVersion {
		t.Errorf("Describe = %+v, %v", desc, ok)
	}
	ch, err := e.host.Channel("webhook")
	if err != nil {
		t.Fatal(err)
	}
	if err := send(t, ch, "k1", "hello"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := e.sink.texts(); len(got) != 1 || got[0] != "hello" {
		t.Errorf("sink got %q", got)
	}

	// Inbound, through the same process.
	body := []byte(`{"user_id": "u-7", "text": "hi bot"}`)
	wh, _ := standardwebhooks.NewWebhook(secret)
	now := time.Now()
	sig, _ := wh.Sign("evt-1", now, body)
	resp, err := ch.HandleHTTP(t.Context(), &sdk.HTTPRequest{
		ChannelID: "wh-1", Method: http.MethodPost, Body: body,
		Header: http.Header{"Webhook-Id": {"evt-1"}, "Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)}, "Webhook-Signature": {sig}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusNoContent || len(resp.Events) != 1 || resp.Events[0].ID != "evt-1" || resp.Events[0].Content.Text != "hi bot" {
		t.Errorf("inbound = %+v", resp)
	}

	// Configure one more instance at run time; a bad one is a ConfigError.
	var ce *sdk.ConfigError
	if err := e.host.Configure(t.Context(), "webhook", sdk.InstanceConfig{ChannelID: "wh-bad", Config: json.RawMessage(`{}`)}); !errors.As(err, &ce) {
		t.Errorf("Configure(bad) = %v, want *sdk.ConfigError", err)
	}
	if _, err := e.host.Channel("nope"); !errors.Is(err, pluginhost.ErrUnknownPlugin) {
		t.Errorf("Channel(nope) = %v, want ErrUnknownPlugin", err)
	}
}

func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"webhook": webhookBin}, nil)
	e.start(t)
	ch, err := e.host.Channel("webhook")
	if err != nil {
		t.Fatal(err)
	}
	if err := send(t, ch, "k1", "before"); err != nil {
		t.Fatal(err)
	}
	old := e.status(t, "webhook").PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a restarted plugin", func() bool {
		st := e.status(t, "webhook")
		return st.State == pluginhost.StateRunning && st.PID != 0 && st.PID != old
	})
	st := e.status(t, "webhook")
	if st.Restarts != 1 || !strings.Contains(st.LastError, "exited") {
		t.Errorf("status after restart = %+v, want 1 restart and the exit as last error", st)
	}
	// The Channel obtained before the crash reaches the new process, and the
	// instance was configured again.
	if err := send(t, ch, "k2", "after"); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	if got := e.sink.texts(); strings.Join(got, ",") != "before,after" {
		t.Errorf("sink got %q", got)
	}
}

func TestTamperedBinaryRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"webhook": webhookBin, "good": misbehaveBin}, nil)
	exe := filepath.Join(e.dir, "webhook", "webhook")
	f, err := os.OpenFile(exe, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	e.start(t)

	st := e.status(t, "webhook")
	if st.State != pluginhost.StateFailed || !strings.Contains(st.LastError, "sha256") || st.PID != 0 {
		t.Errorf("tampered plugin status = %+v, want failed over its sha256", st)
	}
	if _, err := e.host.Channel("webhook"); !errors.Is(err, pluginhost.ErrPluginDown) {
		t.Errorf("Channel(tampered) = %v, want ErrPluginDown", err)
	}
	var ue *pluginhost.UnavailableError
	if err := e.host.Configure(t.Context(), "webhook", sdk.InstanceConfig{}); !errors.As(err, &ue) || ue.State != pluginhost.StateFailed {
		t.Errorf("Configure(tampered) = %v, want *UnavailableError in state failed", err)
	}
	if st := e.status(t, "good"); st.State != pluginhost.StateRunning {
		t.Errorf("the other plugin is %+v, want running", st)
	}
	if !strings.Contains(e.logs.String(), "does not match the sha256") {
		t.Errorf("no log line about the checksum")
	}

	// Reinstalling a good binary and resetting brings it back.
	plugintest.Install(t, e.dir, "webhook", webhookBin)
	if err := e.host.Reset("webhook"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reset plugin to run", func() bool { return e.status(t, "webhook").State == pluginhost.StateRunning })
}

func TestBadManifestsReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"good": misbehaveBin, "nobinary": misbehaveBin, "oldproto": misbehaveBin, "garbage": misbehaveBin, "misnamed": misbehaveBin}, nil)
	os.Remove(filepath.Join(e.dir, "nobinary", "nobinary"))
	rewrite := func(name string, edit func(*pluginhost.Manifest)) {
		raw, _ := os.ReadFile(filepath.Join(e.dir, name, pluginhost.ManifestFile))
		var m pluginhost.Manifest
		json.Unmarshal(raw, &m)
		edit(&m)
		pluginhost.WriteManifest(filepath.Join(e.dir, name), m)
	}
	rewrite("oldproto", func(m *pluginhost.Manifest) { m.ProtocolVersion = 99 })
	rewrite("misnamed", func(m *pluginhost.Manifest) { m.Executable = "../good/good" })
	os.WriteFile(filepath.Join(e.dir, "garbage", pluginhost.ManifestFile), []byte("{"), 0o644)
	os.Mkdir(filepath.Join(e.dir, ".hidden"), 0o755)
	e.start(t)

	want := map[string]string{
		"good":     "",
		"nobinary": "executable",
		"oldproto": "protocol version 99",
		"garbage":  "unexpected end of JSON",
		"misnamed": "must be a file name",
	}
	statuses := e.host.Status()
	if len(statuses) != len(want) {
		t.Errorf("got %d statuses, want %d (dot directories skipped)", len(statuses), len(want))
	}
	for _, st := range statuses {
		reason, ok := want[st.Name]
		switch {
		case !ok:
			t.Errorf("unexpected plugin %q", st.Name)
		case reason == "" && st.State != pluginhost.StateRunning:
			t.Errorf("%s = %+v, want running", st.Name, st)
		case reason != "" && (st.State != pluginhost.StateFailed || !strings.Contains(st.LastError, reason)):
			t.Errorf("%s = %+v, want failed with %q", st.Name, st, reason)
		}
	}
}

func TestMisbehavingPluginsAreIsolated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"good": misbehaveBin, "stdout": misbehaveBin, "panic": misbehaveBin, "early": misbehaveBin, "hang": misbehaveBin},
		func(c *pluginhost.Config) {
			c.StartTimeout = time.Second
			c.CrashLimit = 2
		})
	e.start(t)

	batch := []sdk.Outbound{{ChannelID: "x", IdempotencyKey: "k", Recipient: "u", Content: message.Text("hi")}}

	// Printing to stdout after the handshake is logged, not fatal.
	ch, err := e.host.Channel("stdout")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Send(t.Context(), batch); err != nil {
		t.Errorf("stdout plugin send: %v", err)
	}
	waitFor(t, "the stdout line in the host log", func() bool {
		return strings.Contains(e.logs.String(), "hello from a plugin that prints")
	})

	// A panic inside a call fails that call only.
	ch, err = e.host.Channel("panic")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Send(t.Context(), batch); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("panicking send = %v, want a panic error", err)
	}
	if st := e.status(t, "panic"); st.State != pluginhost.StateRunning || st.Restarts != 0 {
		t.Errorf("after a recovered panic: %+v, want running without restarts", st)
	}
	// A panic outside any call kills the process; the host restarts it.
	if _, err := ch.HandleHTTP(t.Context(), &sdk.HTTPRequest{ChannelID: "x"}); !errors.Is(err, pluginhost.ErrPluginDown) {
		t.Errorf("call cut short by a crash = %v, want ErrPluginDown", err)
	}
	waitFor(t, "the crashed plugin to be restarted", func() bool {
		st := e.status(t, "panic")
		return st.State == pluginhost.StateRunning && st.Restarts >= 1
	})

	// Plugins that never complete a handshake end up failed by the circuit
	// breaker; the others keep running.
	for _, name := range []string{"early", "hang"} {
		waitFor(t, name+" to fail", func() bool { return e.status(t, name).State == pluginhost.StateFailed })
		if st := e.status(t, name); !strings.Contains(st.LastError, "circuit breaker") {
			t.Errorf("%s = %+v, want the circuit breaker as reason", name, st)
		}
	}
	ch, err = e.host.Channel("good")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Send(t.Context(), batch); err != nil {
		t.Errorf("good plugin send: %v", err)
	}
}

func TestHealthChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"good": misbehaveBin}, func(c *pluginhost.Config) {
		c.Instances = func(context.Context, string) ([]sdk.InstanceConfig, error) {
			return []sdk.InstanceConfig{{ChannelID: "fine"}, {ChannelID: "sick"}}, nil
		}
	})
	e.start(t)
	waitFor(t, "a health check to mark the sick instance", func() bool {
		for _, is := range e.status(t, "good").Instances {
			if is.ChannelID == "sick" && !is.Healthy {
				return true
			}
		}
		return false
	})
	st := e.status(t, "good")
	want := []pluginhost.InstanceStatus{{ChannelID: "fine", Healthy: true}, {ChannelID: "sick", Reason: "token revoked"}}
	if fmt.Sprint(st.Instances) != fmt.Sprint(want) {
		t.Errorf("instances = %+v, want %+v", st.Instances, want)
	}
	if st.State != pluginhost.StateRunning {
		t.Errorf("an unhealthy instance changed the plugin's state: %+v", st)
	}
}

func TestStopEndsProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"webhook": webhookBin, "good": misbehaveBin}, nil)
	e.start(t)
	var pids []int
	for _, st := range e.host.Status() {
		pids = append(pids, st.PID)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	e.host.Stop(ctx)
	for _, st := range e.host.Status() {
		if st.State != pluginhost.StateStopped || st.PID != 0 {
			t.Errorf("after Stop: %+v, want stopped", st)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill -0: %v)", pid, err)
		}
	}
	if _, err := e.host.Channel("webhook"); !errors.Is(err, pluginhost.ErrPluginDown) {
		t.Errorf("Channel after Stop = %v, want ErrPluginDown", err)
	}
}

// A relative plugins directory (as in configs) works: the executable that is
// checksummed is the one that runs.
func TestRelativePluginsDir(t *testing.T) {
	dir := t.TempDir()
	plugintest.Install(t, dir, "good", misbehaveBin)
	t.Chdir(dir)
	h := pluginhost.New(pluginhost.Config{Dir: ".", Logger: slog.New(slog.DiscardHandler)})
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer h.Stop(context.Background())
	if st := h.Status(); len(st) != 1 || st[0].State != pluginhost.StateRunning {
		t.Errorf("status = %+v, want good running", st)
	}
}
