package gatewaytest

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-gw/switchboard/gateway/app"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// Process is a gateway running as a child process (bin/switchboard serve),
// for tests that kill it.
type Process struct {
	URL  string
	cmd  *exec.Cmd
	path string // config file
	t    testing.TB
}

// WriteConfig writes cfg to a file for `switchboard --config`.
func WriteConfig(t testing.TB, cfg *config.Config) string {
	t.Helper()
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// StartProcess runs `switchboard serve` with cfg and waits until it is
// ready. The process is killed when the test ends.
func StartProcess(t testing.TB, cfg *config.Config) *Process {
	t.Helper()
	p := &Process{URL: "http://" + cfg.Listen, path: WriteConfig(t, cfg), t: t}
	p.start()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

func (p *Process) start() {
	p.t.Helper()
	p.cmd = exec.Command(GatewayBinary(p.t), "serve", "--config", p.path)
	p.cmd.Stdout, p.cmd.Stderr = testWriter{p.t}, testWriter{p.t}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	WaitReady(p.t, p.URL)
}

// Kill SIGKILLs the gateway (its plugins die with it through their
// parent-death signal) and waits for it to exit.
func (p *Process) Kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// PID is the gateway process's id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Restart starts the gateway again on the same config and database.
func (p *Process) Restart() {
	p.t.Helper()
	p.start()
}

// OpenStore opens the store of cfg (migrated), e.g. to apply resources for
// a gateway running as a process.
func OpenStore(t testing.TB, cfg *config.Config) *sqlstore.Store {
	t.Helper()
	st, err := app.OpenStore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
