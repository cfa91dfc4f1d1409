// Package gatewaytest runs a real gateway for end-to-end tests: the app
// wired as in production, on a fresh SQLite (or PostgreSQL) store, with the
// real plugin binaries built from plugins/ and launched through go-plugin.
package gatewaytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk"
)

const module = "github.com/switchboard-gw/switchboard"

var (
	buildMu sync.Mutex
	built   = map[string]string{} // what → path, shared by a test binary's tests
	tmpRoot string
)

func root() (string, error) {
	if tmpRoot == "" {
		d, err := os.MkdirTemp("", "sbtest")
		if err != nil {
			return "", err
		}
		tmpRoot = d
	}
	return tmpRoot, nil
}

// build compiles a main package once per test binary.
func build(pkg, name string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p, nil
	}
	r, err := root()
	if err != nil {
		return "", err
	}
	out := filepath.Join(r, "build", name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out, nil
}

// PluginsDir builds the named plugins (once per test binary) and returns a
// fresh plugins directory holding them with their manifests. Each call gets
// its own directory, so a test may tamper with it.
func PluginsDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		bin, err := build(module+"/plugins/"+n, "plugin-"+n)
		if err != nil {
			t.Fatal(err)
		}
		pdir := filepath.Join(dir, n)
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(pdir, n)
		raw, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, raw, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		if err := pluginhost.WriteManifest(pdir, pluginhost.Manifest{Name: n, Version: "test",
			ProtocolVersion: sdk.ProtocolVersion, Executable: n, SHA256: hex.EncodeToString(sum[:])}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// GatewayBinary builds bin/switchboard once per test binary (for tests that
// run the gateway as a process, e.g. to kill it).
func GatewayBinary(t testing.TB) string {
	t.Helper()
	p, err := build(module+"/gateway/cmd/switchboard", "switchboard")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Options configure Start.
type Options struct {
	// Plugins to build and load.
	Plugins []string
	// Database defaults to a SQLite file in t.TempDir().
	Database string
	// Configure adjusts the config before start.
	Configure func(*config.Config)
}

// Gateway is a running in-process gateway.
type Gateway struct {
	URL    string
	Config *config.Config
	App    *app.App
	Store  *sqlstore.Store
	stop   func()
}

// Config returns the test configuration Start uses, listening on a free
// loopback port (also for gateways run as processes).
func Config(t testing.TB, opts Options) *config.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	db := opts.Database
	if db == "" {
		db = "sqlite://" + filepath.Join(t.TempDir(), "switchboard.db")
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf("listen: %s\ndatabase: %s\nsecret_key: test-secret\nsecurity: {allow_internal_fetch: true}\n", addr, db)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Plugins.Dir = PluginsDir(t, opts.Plugins...)
	cfg.Plugins.HealthInterval = time.Second
	cfg.Delivery.PollInterval = 50 * time.Millisecond
	cfg.Queue.PollInterval = 50 * time.Millisecond
	// A short node lease: tests that kill a node wait it out.
	cfg.Cluster.Lease = 3 * time.Second
	cfg.Cluster.Heartbeat = 500 * time.Millisecond
	// Every test client shares 127.0.0.1, and benches hold thousands of
	// connections from it: no per-address limits unless a test sets them.
	cfg.Server.MaxConnectionsPerAddress = -1
	cfg.Server.Public.RateLimit = -1
	if opts.Configure != nil {
		opts.Configure(cfg)
	}
	return cfg
}

// Start runs a gateway in-process and stops it when the test ends.
func Start(t testing.TB, opts Options) *Gateway {
	t.Helper()
	cfg := Config(t, opts)
	return StartWith(t, cfg)
}

// StartWith runs a gateway with cfg and waits until every plugin runs.
func StartWith(t testing.TB, cfg *config.Config) *Gateway {
	t.Helper()
	g := start(t, cfg)
	WaitReady(t, g.URL)
	return g
}

// StartDegraded runs a gateway with cfg and waits only until it serves
// HTTP: for tests of plugins that are meant to fail.
func StartDegraded(t testing.TB, cfg *config.Config) *Gateway {
	t.Helper()
	g := start(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(g.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway does not serve: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func start(t testing.TB, cfg *config.Config) *Gateway {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, ln) }()
	g := &Gateway{URL: "http://" + ln.Addr().String(), Config: cfg, App: a, Store: a.Store}
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway run: %v", err)
			}
		})
	}
	t.Cleanup(g.stop)
	return g
}

// Stop stops the gateway gracefully (also done at cleanup).
func (g *Gateway) Stop() { g.stop() }

// WaitReady polls /readyz until every plugin runs.
func WaitReady(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), `"status":"ok"`) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway not ready: %s", body)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Apply applies a resources document and waits until the running gateway
// has configured its channels.
func (g *Gateway) Apply(t testing.TB, resources string) {
	t.Helper()
	ApplyTo(t, g.Store, resources)
	g.App.SyncChannels(context.Background())
}

// ApplyTo applies a resources document to a store.
func ApplyTo(t testing.TB, st apply.Store, resources string) {
	t.Helper()
	doc, err := apply.ParseFile("test.yaml", []byte(resources))
	if err != nil {
		t.Fatal(err)
	}
	if err := apply.Apply(context.Background(), st, []apply.File{doc}, apply.Options{Bots: bot.CompileNode, LookupEnv: func(string) (string, bool) { return "", false }}); err != nil {
		t.Fatal(err)
	}
}

// NewKey creates an API key.
func NewKey(t testing.TB, st store.Tenancy, workspace string, scope store.Scope, channelID string) string {
	t.Helper()
	raw, k, err := auth.NewKey(workspace, scope, channelID, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return raw
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
