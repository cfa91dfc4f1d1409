package pluginhost

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
)

// Config configures a Host. Zero durations and counts take the documented
// defaults.
type Config struct {
	// CrashLimit crashes within CrashWindow open the circuit breaker: the
	// plugin stays failed until Reset or a gateway restart. Defaults to 5.
	CrashLimit int
	// CrashWindow defaults to 10 minutes.
	CrashWindow time.Duration
	// Dir is the plugins directory. Required.
	Dir string
	// Env is the whole environment of plugin processes; the gateway's own
	// is not inherited. Defaults to empty.
	Env []string
	// HealthInterval is how often each plugin is pinged and CheckHealth is
	// called for each of its instances. Defaults to 30 seconds.
	HealthInterval time.Duration
	// Instances lists a plugin's channel instances. The host configures each
	// after every start and restart. Nil means no instances.
	Instances func(ctx context.Context, plugin string) ([]sdk.InstanceConfig, error)
	// Logger receives the host's and the plugins' logs, the latter with a
	// "plugin" attribute. Defaults to slog.Default().
	Logger *slog.Logger
	// MaxRestartBackoff caps the restart delay. Defaults to 1 minute.
	MaxRestartBackoff time.Duration
	// PollInterval is how often the host checks whether a plugin process
	// exited. Defaults to 250 milliseconds.
	PollInterval time.Duration
	// RestartBackoff is the delay before the first restart after a crash;
	// it doubles with each further crash, with ±20% jitter. Defaults to 500
	// milliseconds.
	RestartBackoff time.Duration
	// SocketDir is where plugin sockets are created. Unix socket paths are
	// limited to about 100 bytes, so keep it short. Defaults to /tmp.
	SocketDir string
	// StableAfter is how long a plugin must run for its restart backoff to
	// reset. Defaults to 1 minute.
	StableAfter time.Duration
	// StartTimeout bounds one start: exec, handshake and Describe. Defaults
	// to 10 seconds.
	StartTimeout time.Duration
}

func (c *Config) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.CrashWindow, 10*time.Minute)
	def(&c.HealthInterval, 30*time.Second)
	def(&c.MaxRestartBackoff, time.Minute)
	def(&c.PollInterval, 250*time.Millisecond)
	def(&c.RestartBackoff, 500*time.Millisecond)
	def(&c.StableAfter, time.Minute)
	def(&c.StartTimeout, 10*time.Second)
	if c.CrashLimit <= 0 {
		c.CrashLimit = 5
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SocketDir == "" {
		c.SocketDir = "/tmp"
	}
	if c.Instances == nil {
		c.Instances = func(context.Context, string) ([]sdk.InstanceConfig, error) { return nil, nil }
	}
}

// State is where a plugin is in its lifecycle.
type State string

// Plugin states.
const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateRestarting State = "restarting" // crashed; waiting out the backoff
	StateFailed     State = "failed"     // refused, or circuit breaker open
	StateStopped    State = "stopped"
)

// PluginStatus is a snapshot of one plugin.
type PluginStatus struct {
	Name      string
	Version   string // from the manifest
	State     State
	LastError string
	Restarts  int
	PID       int // 0 when no process runs
	Instances []InstanceStatus
}

// InstanceStatus is a snapshot of one channel instance of a plugin.
type InstanceStatus struct {
	ChannelID string
	// Healthy is false when the instance could not be configured or its last
	// CheckHealth failed; Reason says why.
	Healthy bool
	Reason  string
}

// ErrPluginDown is matched (errors.Is) by every *UnavailableError.
var ErrPluginDown = errors.New("plugin unavailable")

// ErrUnknownPlugin is returned for a plugin name that was not discovered.
var ErrUnknownPlugin = errors.New("unknown plugin")

// UnavailableError reports that a plugin cannot take calls right now.
type UnavailableError struct {
	Plugin string
	State  State
	Reason string
}

func (e *UnavailableError) Error() string {
	s := fmt.Sprintf("plugin %s is %s", e.Plugin, e.State)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is makes errors.Is(err, ErrPluginDown) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrPluginDown }

// Host runs the plugins of one directory. Create it with New, then Start;
// Stop ends every plugin process.
type Host struct {
	cfg Config
	log *slog.Logger

	mu          sync.RWMutex
	supervisors map[string]*supervisor
	cancel      context.CancelFunc
}

// New returns a Host; nothing runs until Start.
func New(cfg Config) *Host {
	cfg.setDefaults()
	return &Host{cfg: cfg, log: cfg.Logger, supervisors: map[string]*supervisor{}}
}

// Start discovers the plugins and launches them, and returns once each has
// finished its first start attempt (running, or failed and reported) or ctx
// ends. It fails only when the plugins directory cannot be read. ctx bounds
// that wait, not the plugins' lifetime: Stop ends them.
func (h *Host) Start(ctx context.Context) error {
	found, err := discover(h.cfg.Dir)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.mu.Lock()
	h.cancel = cancel
	for _, d := range found {
		s := newSupervisor(h, d)
		h.supervisors[d.name] = s
		go s.run(runCtx)
	}
	h.mu.Unlock()
	for _, s := range h.list() {
		select {
		case <-s.firstAttempt:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// Stop stops every plugin in parallel: each gets go-plugin's graceful
// shutdown until ctx ends, and is then killed. Stop returns when all
// processes are gone. A stopped Host cannot be started again.
func (h *Host) Stop(ctx context.Context) {
	h.mu.Lock()
	cancel := h.cancel
	h.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	var wg sync.WaitGroup
	for _, s := range h.list() {
		wg.Go(func() { s.stop(ctx) })
	}
	wg.Wait()
}

func (h *Host) list() []*supervisor {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*supervisor, 0, len(h.supervisors))
	for _, s := range h.supervisors {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *supervisor) int { return cmp.Compare(a.name, b.name) })
	return out
}

func (h *Host) supervisor(name string) (*supervisor, error) {
	h.mu.RLock()
	s, ok := h.supervisors[name]
	h.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPlugin, name)
	}
	return s, nil
}

// Channel returns the channel served by the named plugin. The returned
// value stays valid across plugin restarts: each call goes to the process
// running at that moment, and fails fast with an *UnavailableError while
// none is. Channel itself fails the same way when the plugin is down now.
// It also implements sdk.HealthChecker.
func (h *Host) Channel(name string) (sdk.Channel, error) {
	s, err := h.supervisor(name)
	if err != nil {
		return nil, err
	}
	if _, err := s.current(); err != nil {
		return nil, err
	}
	return &channel{s: s}, nil
}

// Describe returns what the named plugin said about itself at its last
// successful start.
func (h *Host) Describe(name string) (sdk.Description, bool) {
	s, err := h.supervisor(name)
	if err != nil {
		return sdk.Description{}, false
	}
	return s.description()
}

// Configure configures (or reconfigures) one channel instance on the
// running plugin. Invalid configuration is a *sdk.ConfigError. The host does
// not remember cfg: after a restart it asks Config.Instances again, which
// must return the same configuration by then.
func (h *Host) Configure(ctx context.Context, name string, cfg sdk.InstanceConfig) error {
	s, err := h.supervisor(name)
	if err != nil {
		return err
	}
	return (&channel{s: s}).Configure(ctx, cfg)
}

// Reset clears a failed plugin's crash history and starts it again,
// re-reading its manifest (so a fixed binary and manifest are picked up).
// It does nothing to a plugin that is not failed.
func (h *Host) Reset(name string) error {
	s, err := h.supervisor(name)
	if err != nil {
		return err
	}
	s.requestReset()
	return nil
}

// Status reports every discovered plugin, sorted by name.
func (h *Host) Status() []PluginStatus {
	list := h.list()
	out := make([]PluginStatus, len(list))
	for i, s := range list {
		out[i] = s.status()
	}
	return out
}
