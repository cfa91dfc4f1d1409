package pluginhost

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/grpcplugin"
)

// maxPingFailures consecutive failed pings count as a crash (Mattermost's
// choice): one slow answer under load is not a reason to restart.
const maxPingFailures = 3

// errFatal marks start failures that a restart cannot fix (a checksum
// mismatch, a plugin that is not what its manifest says).
var errFatal = errors.New("refused")

// supervisor owns one plugin: it launches the process, watches it and
// restarts it. Only run's goroutine starts or replaces processes; the
// fields under mu are what other goroutines read.
type supervisor struct {
	h     *Host
	name  string
	dir   discovered
	log   *slog.Logger
	reset chan struct{}
	// firstAttempt is closed once the first start attempt has an outcome.
	firstAttempt chan struct{}
	firstOnce    sync.Once
	// done is closed when run returns and no process is left.
	done chan struct{}

	mu        sync.Mutex
	state     State
	lastErr   string
	restarts  int
	pid       int
	ch        *grpcplugin.Client
	desc      *sdk.Description
	instances map[string]instanceState
}

// instanceState is an instance's status plus whether it is configured
// (only configured instances are health-checked).
type instanceState struct {
	InstanceStatus
	configured bool
}

func newSupervisor(h *Host, d discovered) *supervisor {
	return &supervisor{
		h:            h,
		name:         d.name,
		dir:          d,
		log:          h.log.With("plugin", d.name),
		reset:        make(chan struct{}, 1),
		firstAttempt: make(chan struct{}),
		done:         make(chan struct{}),
		state:        StateStarting,
		instances:    map[string]instanceState{},
	}
}

// run is the supervision loop: start, watch, and on a crash back off and
// start again, until ctx ends or the circuit breaker opens.
func (s *supervisor) run(ctx context.Context) {
	defer close(s.done)
	var crashes []time.Time // within CrashWindow
	streak := 0             // consecutive crashes since the last stable run
	for {
		if s.dir.err != nil {
			s.fail(s.dir.err)
			if !s.waitReset(ctx) {
				return
			}
			crashes, streak = nil, 0
			continue
		}
		started := time.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			s.setState(StateStopped, nil)
			return
		}
		if time.Since(started) >= s.h.cfg.StableAfter {
			streak = 0
		}
		now := time.Now()
		crashes = append(slices.DeleteFunc(crashes, func(t time.Time) bool {
			return now.Sub(t) > s.h.cfg.CrashWindow
		}), now)
		streak++
		if errors.Is(err, errFatal) || len(crashes) >= s.h.cfg.CrashLimit {
			if !errors.Is(err, errFatal) {
				err = fmt.Errorf("circuit breaker open after %d crashes within %s: %w", len(crashes), s.h.cfg.CrashWindow, err)
			}
			s.fail(err)
			if !s.waitReset(ctx) {
				return
			}
			crashes, streak = nil, 0
			continue
		}
		delay := backoff(s.h.cfg.RestartBackoff, s.h.cfg.MaxRestartBackoff, streak)
		s.log.Warn("plugin crashed; restarting", "error", err, "in", delay)
		s.setState(StateRestarting, err)
		select {
		case <-ctx.Done():
			s.setState(StateStopped, nil)
			return
		case <-time.After(delay):
		}
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
	}
}

// backoff is base·2^(streak-1), capped, with ±20% jitter so plugins that
// crashed together do not restart in lockstep.
func backoff(base, maxDelay time.Duration, streak int) time.Duration {
	d := base
	for i := 1; i < streak && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// fail parks the plugin in StateFailed.
func (s *supervisor) fail(err error) {
	s.log.Error("plugin failed; it stays down until reset or gateway restart", "error", err)
	s.setState(StateFailed, err)
	s.firstOnce.Do(func() { close(s.firstAttempt) })
}

// waitReset blocks until Reset is called (true) or ctx ends (false). A reset
// re-reads the manifest.
func (s *supervisor) waitReset(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		s.setState(StateStopped, nil)
		return false
	case <-s.reset:
		s.log.Info("plugin reset")
		m, sum, err := loadManifest(s.dir.dir, s.name)
		s.mu.Lock() // status reads the manifest's version
		s.dir.manifest, s.dir.checksum, s.dir.err = m, sum, err
		s.state = StateStarting
		s.mu.Unlock()
		return true
	}
}

func (s *supervisor) requestReset() {
	select {
	case s.reset <- struct{}{}:
	default: // one pending reset is enough
	}
}

// runOnce starts a process and watches it until it dies or ctx ends. The
// returned error says why the process is gone.
func (s *supervisor) runOnce(ctx context.Context) error {
	s.setState(StateStarting, nil)
	client := s.newClient()
	defer func() {
		// Graceful (go-plugin closes the connection, waits up to 2 s for
		// the process to exit) then forced. Also removes the socket dir.
		client.Kill()
		s.mu.Lock()
		s.ch, s.pid = nil, 0
		s.mu.Unlock()
	}()
	err := s.start(ctx, client)
	s.firstOnce.Do(func() { close(s.firstAttempt) })
	if err != nil {
		return err
	}
	return s.watch(ctx, client)
}

func (s *supervisor) newClient() *plugin.Client {
	cmd := exec.Command(s.dir.executable())
	cmd.Dir = s.dir.dir
	cmd.Env = s.h.cfg.Env
	setPdeathsig(cmd)
	return plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  grpcplugin.Handshake,
		VersionedPlugins: grpcplugin.VersionedPlugins(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  grpcplugin.DialOptions(),
		AutoMTLS:         true,
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: s.dir.checksum, Hash: sha256.New()},
		SkipHostEnv:      true,
		StartTimeout:     s.h.cfg.StartTimeout,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: s.h.cfg.SocketDir},
		Logger:           newHCLog(s.log),
		// After the handshake the plugin's stdout and stderr are pipes that
		// go-plugin forwards here. Nothing should arrive: plugins log with
		// sdk.Logger. What does is logged rather than lost.
		SyncStdout: &lineLogger{log: s.log, level: slog.LevelWarn, msg: "plugin wrote to stdout (use sdk.Logger)"},
		SyncStderr: &lineLogger{log: s.log, level: slog.LevelInfo, msg: "plugin stderr"},
	})
}

// start execs the plugin, checks what it is, and configures its instances.
func (s *supervisor) start(ctx context.Context, client *plugin.Client) error {
	began := time.Now()
	rpc, err := client.Client()
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		return fmt.Errorf("%w: executable %s does not match the sha256 in its manifest", errFatal, s.dir.executable())
	}
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	raw, err := rpc.Dispense(grpcplugin.PluginName)
	if err != nil {
		return fmt.Errorf("dispense: %w", err)
	}
	ch, ok := raw.(*grpcplugin.Client)
	if !ok {
		return fmt.Errorf("%w: dispensed %T, not a channel", errFatal, raw)
	}
	dctx, cancel := context.WithTimeout(ctx, s.h.cfg.StartTimeout)
	desc, err := ch.Describe(dctx)
	cancel()
	if err != nil {
		return err
	}
	if desc.Name != s.name {
		return fmt.Errorf("%w: plugin in directory %q describes itself as %q", errFatal, s.name, desc.Name)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	s.mu.Lock()
	s.ch, s.pid, s.desc = ch, pid, &desc
	s.mu.Unlock()
	s.configureAll(ctx, ch)
	s.setState(StateRunning, nil)
	s.log.Info("plugin running", "version", desc.Version, "pid", pid, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// configureAll installs every instance. One bad instance does not stop the
// others, nor the plugin: it is reported in the instance's status.
func (s *supervisor) configureAll(ctx context.Context, ch *grpcplugin.Client) {
	cfgs, err := s.h.cfg.Instances(ctx, s.name)
	if err != nil {
		s.log.Error("cannot list channel instances; plugin runs unconfigured", "error", err)
		return
	}
	s.mu.Lock()
	s.instances = make(map[string]instanceState, len(cfgs))
	s.mu.Unlock()
	for _, cfg := range cfgs {
		cctx, cancel := context.WithTimeout(ctx, s.h.cfg.StartTimeout)
		err := ch.Configure(cctx, cfg)
		cancel()
		if err != nil {
			s.log.Error("cannot configure channel", "channel", cfg.ChannelID, "error", err)
		}
		s.setInstance(cfg.ChannelID, err)
	}
}

// watch returns when the process exits, stops answering pings, or ctx ends.
func (s *supervisor) watch(ctx context.Context, client *plugin.Client) error {
	poll := time.NewTicker(s.h.cfg.PollInterval)
	defer poll.Stop()
	health := time.NewTicker(s.h.cfg.HealthInterval)
	defer health.Stop()
	failedPings := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
			if client.Exited() {
				return errors.New("plugin process exited")
			}
		case <-health.C:
			if err := ping(client); err != nil {
				failedPings++
				s.log.Warn("plugin did not answer ping", "error", err, "failures", failedPings)
				if failedPings >= maxPingFailures {
					return fmt.Errorf("plugin stopped answering pings: %w", err)
				}
				continue
			}
			failedPings = 0
			s.checkHealth(ctx)
		}
	}
}

func ping(client *plugin.Client) error {
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	return rpc.Ping()
}

// checkHealth asks the plugin about every configured instance.
func (s *supervisor) checkHealth(ctx context.Context) {
	s.mu.Lock()
	ch := s.ch
	var ids []string
	for id, st := range s.instances {
		if st.configured {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	for _, id := range ids {
		hctx, cancel := context.WithTimeout(ctx, s.h.cfg.HealthInterval/2)
		h, err := ch.CheckHealth(hctx, id)
		cancel()
		st := InstanceStatus{ChannelID: id, Healthy: err == nil && h.OK, Reason: h.Reason}
		if err != nil {
			st.Reason = err.Error()
		}
		s.mu.Lock()
		// Configure may have replaced the instance meanwhile.
		if cur, ok := s.instances[id]; ok && cur.configured {
			s.instances[id] = instanceState{InstanceStatus: st, configured: true}
		}
		s.mu.Unlock()
	}
}

// stop waits for run to end (the caller cancelled its context, and run's
// deferred Kill shuts the process down gracefully); past ctx's deadline it
// SIGKILLs the process, then still waits for run to clean up.
func (s *supervisor) stop(ctx context.Context) {
	select {
	case <-s.done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	pid := s.pid
	s.mu.Unlock()
	if pid > 0 {
		s.log.Warn("plugin did not stop in time; killing it", "pid", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-s.done
}

// current returns the running plugin's client, or why there is none.
func (s *supervisor) current() (*grpcplugin.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateRunning || s.ch == nil {
		return nil, &UnavailableError{Plugin: s.name, State: s.state, Reason: s.lastErr}
	}
	return s.ch, nil
}

func (s *supervisor) setState(st State, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
	if err != nil {
		s.lastErr = err.Error()
	}
}

func (s *supervisor) setInstance(channelID string, configErr error) {
	st := instanceState{InstanceStatus: InstanceStatus{ChannelID: channelID, Healthy: configErr == nil}, configured: configErr == nil}
	if configErr != nil {
		st.Reason = configErr.Error()
	}
	s.mu.Lock()
	s.instances[channelID] = st
	s.mu.Unlock()
}

func (s *supervisor) description() (sdk.Description, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desc == nil {
		return sdk.Description{}, false
	}
	return *s.desc, true
}

func (s *supervisor) status() PluginStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := PluginStatus{
		Name:      s.name,
		Version:   s.dir.manifest.Version,
		State:     s.state,
		LastError: s.lastErr,
		Restarts:  s.restarts,
		PID:       s.pid,
	}
	for _, is := range s.instances {
		st.Instances = append(st.Instances, is.InstanceStatus)
	}
	slices.SortFunc(st.Instances, func(a, b InstanceStatus) int { return cmp.Compare(a.ChannelID, b.ChannelID) })
	return st
}
