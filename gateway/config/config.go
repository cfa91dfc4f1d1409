// Package config loads the gateway's configuration file (configs/gateway.yaml).
//
// Decoding is strict: an unknown key is an error naming the key and its line,
// so a typo never silently falls back to a default. Secrets and DSNs can be
// given through the environment instead of the file (see Env*).
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Environment variables that override the file.
const (
	EnvDatabaseURL = "SWITCHBOARD_DATABASE_URL"
	EnvListen      = "SWITCHBOARD_LISTEN"
	EnvPublicURL   = "SWITCHBOARD_PUBLIC_URL"
	EnvSecretKey   = "SWITCHBOARD_SECRET_KEY"
	// EnvSecretKeysPrevious is a comma-separated list of earlier secret
	// keys, still accepted to open values sealed under them.
	EnvSecretKeysPrevious = "SWITCHBOARD_SECRET_KEY_PREVIOUS"
	EnvLogLevel           = "SWITCHBOARD_LOG_LEVEL"
	EnvMetricsToken       = "SWITCHBOARD_METRICS_TOKEN"
)

// Config is the whole gateway configuration. Zero values take the defaults
// documented on each field (applied by Load).
type Config struct {
	// Listen is the HTTP address. Defaults to 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// PublicURL is how platforms reach this gateway (scheme, host, optional
	// path prefix). Channel webhook URLs, which platform signatures cover,
	// are built from it, never from a request's Host header. Defaults to
	// http://<Listen>, also when Listen is overridden (SetListen).
	PublicURL string `yaml:"public_url"`
	// publicURLFollowsListen: PublicURL was not set, so SetListen moves it.
	publicURLFollowsListen bool
	// Database is sqlite://PATH (relative to the working directory) or a
	// postgres:// URL. Defaults to sqlite://data/switchboard.db.
	Database string `yaml:"database"`
	// SecretKey seals channel and bot secrets at rest and signs
	// gateway-issued tokens (web chat sessions). Give it through
	// SWITCHBOARD_SECRET_KEY in production. When empty, a SQLite gateway
	// uses (and first creates) a key file beside the database; a
	// PostgreSQL one refuses to start.
	SecretKey string          `yaml:"secret_key"`
	Log       LogConfig       `yaml:"log"`
	Plugins   PluginsConfig   `yaml:"plugins"`
	Delivery  DeliveryConfig  `yaml:"delivery"`
	Queue     QueueConfig     `yaml:"queue"`
	API       APIConfig       `yaml:"api"`
	Security  Security        `yaml:"security"`
	Audience  AudienceConfig  `yaml:"audience"`
	Webchat   WebchatConfig   `yaml:"webchat"`
	Cluster   ClusterConfig   `yaml:"cluster"`
	Metrics   MetricsConfig   `yaml:"metrics"`
	Server    ServerConfig    `yaml:"server"`
	Retention RetentionConfig `yaml:"retention"`
	Admin     AdminConfig     `yaml:"admin"`

	// SecretKeysPrevious are earlier secret keys: values sealed under them
	// still open (nothing new is sealed under them), so a key rotates
	// while the gateway runs. SWITCHBOARD_SECRET_KEY_PREVIOUS (comma
	// separated) replaces the list.
	SecretKeysPrevious []string `yaml:"secret_keys_previous"`
}

// MetricsConfig says where /metrics is served and who may read it.
type MetricsConfig struct {
	// Listen, when set, serves /metrics on this address only (e.g. a
	// private interface), not on the API's listener.
	Listen string `yaml:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// /metrics (SWITCHBOARD_METRICS_TOKEN overrides the file).
	Token string `yaml:"token"`
}

// ClusterConfig makes this process a node among those sharing the store.
type ClusterConfig struct {
	// NodeID names this node in the claims it holds. It must be unique
	// among running gateways and stable across restarts of one (a
	// restarted node then takes its own claims back at once). Empty means
	// the host name and the listen port.
	NodeID string `yaml:"node_id"`
	// Lease is how long this node's claims hold without a heartbeat: when
	// the node dies, other nodes take its work over after it. Defaults to
	// 5s.
	Lease time.Duration `yaml:"lease"`
	// Heartbeat is how often the lease is renewed and other nodes'
	// expired leases are swept. Defaults to a fifth of Lease.
	Heartbeat time.Duration `yaml:"heartbeat"`
}

// LogConfig selects the slog handler.
type LogConfig struct {
	// Level is debug, info, warn or error. Defaults to info.
	Level string `yaml:"level"`
	// Format is text or json. Defaults to text.
	Format string `yaml:"format"`
}

// PluginsConfig configures the plugin host.
type PluginsConfig struct {
	// Dir holds one folder per plugin with its plugin.json. Defaults to
	// bin/plugins.
	Dir string `yaml:"dir"`
	// StartTimeout bounds a plugin's start-up handshake. Defaults to 10s.
	StartTimeout time.Duration `yaml:"start_timeout"`
	// HealthInterval is how often channel health is checked. Defaults to 30s.
	HealthInterval time.Duration `yaml:"health_interval"`
	// ShutdownTimeout bounds a plugin's graceful stop before it is killed.
	// Defaults to 5s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DeliveryConfig tunes the outbound pipeline.
type DeliveryConfig struct {
	// Workers is how many Send batches may be in flight at once. Defaults
	// to 8.
	Workers int `yaml:"workers"`
	// ClaimSize is how many deliveries one claim takes. Defaults to 1000.
	ClaimSize int `yaml:"claim_size"`
	// BatchSize caps one Send call (a plugin may ask for less). Defaults
	// to 100.
	BatchSize int `yaml:"batch_size"`
	// MaxAttempts before a transient failure becomes final. Defaults to 10.
	MaxAttempts int `yaml:"max_attempts"`
	// PollInterval is how often the store is polled for due retries when
	// nothing wakes the pipeline. Defaults to 250ms.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// QueueConfig tunes the durable job queue (conversation events, broadcast
// fan-out).
type QueueConfig struct {
	// Workers is how many jobs run at once. Defaults to 64: on SQLite
	// the jobs waiting for the writer commit together (group commit), so
	// more of them in flight means fewer, larger commits.
	Workers int `yaml:"workers"`
	// JobTimeout bounds one run of a job: its context is cancelled then and
	// the run counts as a failed attempt. Defaults to 5m.
	JobTimeout time.Duration `yaml:"job_timeout"`
	// PollInterval bounds how long a due job waits when nothing wakes the
	// queue (jobs enqueued by another node or process). Defaults to 500ms.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// APIConfig tunes the HTTP APIs.
type APIConfig struct {
	// KeyRateLimit is requests per second allowed per API key on the
	// CSML-compatible APIs. Defaults to 50.
	KeyRateLimit float64 `yaml:"key_rate_limit"`
	// MaxBodyBytes caps request bodies on the bot APIs. Defaults to 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxWebhookBytes caps platform webhook bodies. Defaults to 1 MiB.
	MaxWebhookBytes int64 `yaml:"max_webhook_bytes"`
}

// AdminConfig configures the admin API (/admin/v1/).
type AdminConfig struct {
	// OperatorKeys are the SHA-256 digests (hex) of the instance-wide
	// operator keys, which create workspaces and act in any of them;
	// `switchboard keys create --operator` prints a key and its digest.
	// They live in the config, not the database, so that no workspace's
	// data can grant them. Empty: no operator key works.
	OperatorKeys []string `yaml:"operator_keys"`
	// RateLimit is requests per second allowed per key on the admin API.
	// Defaults to 20; negative disables the limit.
	RateLimit float64 `yaml:"rate_limit"`
}

// Security holds switches that trade safety for convenience.
type Security struct {
	// AllowInternalFetch lets the gateway fetch user-supplied URLs (data
	// files, call steps) and the webhook channel post to URLs that resolve
	// to loopback, private, link-local or other internal addresses. Off by
	// default; tests and local demos turn it on.
	AllowInternalFetch bool `yaml:"allow_internal_fetch"`
}

// ServerConfig bounds what clients can hold of the HTTP server, so that no
// one address (no key needed) can exhaust its connections or file
// descriptors. Negative values switch a limit off.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers. Defaults to 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Defaults
	// to 60s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds handling a request and writing its response.
	// Websockets and streamed responses are exempt. Defaults to 60s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request. Defaults to 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps open connections (websockets included); beyond
	// it new ones wait to be accepted. Defaults (0) to three quarters of
	// the open-file limit, the rest left to the store, plugins and
	// outbound requests.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress caps the open connections of one client
	// address (an IPv6 /64 counts as one); beyond it a connection is
	// answered 429 and closed. Behind a proxy every client shares the
	// proxy's address. Defaults to 512.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// Public limits the routes served without a key: platform webhooks,
	// web chat pages and sockets, health.
	Public PublicLimits `yaml:"public"`
}

// PublicLimits apply to the routes served without a key.
type PublicLimits struct {
	// BodyTimeout bounds reading a request body after its headers, so a
	// body trickled byte by byte cannot hold a connection. Defaults to 10s.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// RateLimit is requests per second per client address. Defaults to
	// 100.
	RateLimit float64 `yaml:"rate_limit"`
	// Burst is how many requests above the rate one address may send at
	// once. Defaults to 2 × RateLimit.
	Burst int `yaml:"burst"`
}

// Load reads path, applies environment overrides and defaults, and
// validates the result.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes a configuration document strictly, then applies
// environment overrides and defaults.
func Parse(raw []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	// An empty document (io.EOF) is an empty config: every default applies.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	cfg.applyEnv(os.Getenv)
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// SetListen overrides the listen address (serve --listen). A public_url
// that was not set follows it, as it would have had the address been in
// the file: channel webhook URLs and the CLI's links keep pointing at the
// gateway.
func (c *Config) SetListen(addr string) {
	c.Listen = addr
	if c.publicURLFollowsListen {
		c.PublicURL = "http://" + addr
	}
}

func (c *Config) applyEnv(getenv func(string) string) {
	set := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	set(&c.Database, EnvDatabaseURL)
	set(&c.Listen, EnvListen)
	set(&c.PublicURL, EnvPublicURL)
	set(&c.SecretKey, EnvSecretKey)
	if v := getenv(EnvSecretKeysPrevious); v != "" {
		c.SecretKeysPrevious = strings.Split(v, ",")
	}
	set(&c.Log.Level, EnvLogLevel)
	set(&c.Metrics.Token, EnvMetricsToken)
}

func (c *Config) applyDefaults() {
	def := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	defInt := func(dst *int, v int) {
		if *dst == 0 {
			*dst = v
		}
	}
	defDur := func(dst *time.Duration, v time.Duration) {
		if *dst == 0 {
			*dst = v
		}
	}
	def(&c.Listen, "127.0.0.1:8080")
	c.publicURLFollowsListen = c.PublicURL == ""
	def(&c.PublicURL, "http://"+c.Listen)
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	def(&c.Database, "sqlite://data/switchboard.db")
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "text")
	def(&c.Plugins.Dir, filepath.Join("bin", "plugins"))
	defDur(&c.Plugins.StartTimeout, 10*time.Second)
	defDur(&c.Plugins.HealthInterval, 30*time.Second)
	defDur(&c.Plugins.ShutdownTimeout, 5*time.Second)
	defInt(&c.Delivery.Workers, 8)
	defInt(&c.Delivery.ClaimSize, 1000)
	defInt(&c.Delivery.BatchSize, 100)
	defInt(&c.Delivery.MaxAttempts, 10)
	defDur(&c.Delivery.PollInterval, 250*time.Millisecond)
	defInt(&c.Queue.Workers, 64)
	defDur(&c.Queue.JobTimeout, 5*time.Minute)
	defDur(&c.Cluster.Lease, 5*time.Second)
	if c.Cluster.Heartbeat <= 0 {
		c.Cluster.Heartbeat = c.Cluster.Lease / 5
	}
	defDur(&c.Queue.PollInterval, 500*time.Millisecond)
	defDur(&c.Webchat.Retention, 7*24*time.Hour)
	defDur(&c.Server.ReadHeaderTimeout, 10*time.Second)
	defDur(&c.Server.ReadTimeout, time.Minute)
	defDur(&c.Server.WriteTimeout, time.Minute)
	defDur(&c.Server.IdleTimeout, time.Minute)
	defInt(&c.Server.MaxConnectionsPerAddress, 512)
	defDur(&c.Server.Public.BodyTimeout, 10*time.Second)
	if c.Server.Public.RateLimit == 0 {
		c.Server.Public.RateLimit = 100
	}
	if c.Server.Public.Burst == 0 {
		c.Server.Public.Burst = max(1, int(2*c.Server.Public.RateLimit))
	}
	c.Retention.applyDefaults()
	if c.Admin.RateLimit == 0 {
		c.Admin.RateLimit = 20
	}
	if c.API.KeyRateLimit == 0 {
		c.API.KeyRateLimit = 50
	}
	if c.API.MaxBodyBytes == 0 {
		c.API.MaxBodyBytes = 1 << 20
	}
	if c.API.MaxWebhookBytes == 0 {
		c.API.MaxWebhookBytes = 1 << 20
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("public_url %q: must be an absolute http(s) URL", c.PublicURL))
	}
	if !strings.HasPrefix(c.Database, "sqlite://") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		errs = append(errs, fmt.Errorf("database %q: must start with sqlite:// or postgres://", redactURL(c.Database)))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: must be debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: must be text or json", c.Log.Format))
	}
	for name, v := range map[string]int{
		"delivery.workers": c.Delivery.Workers, "delivery.claim_size": c.Delivery.ClaimSize,
		"delivery.batch_size": c.Delivery.BatchSize, "delivery.max_attempts": c.Delivery.MaxAttempts,
		"queue.workers": c.Queue.Workers,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %d", name, v))
		}
	}
	for i, k := range c.Admin.OperatorKeys {
		if b, err := hex.DecodeString(k); err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("admin.operator_keys[%d]: must be the 64-hex-digit SHA-256 digest `keys create --operator` prints, not the key", i))
		}
	}
	if c.API.KeyRateLimit < 0 {
		errs = append(errs, fmt.Errorf("api.key_rate_limit: must be positive"))
	}
	if c.Server.Public.RateLimit > 0 && c.Server.Public.Burst < 1 {
		errs = append(errs, fmt.Errorf("server.public.burst: must be at least 1 when server.public.rate_limit is set, got %d", c.Server.Public.Burst))
	}
	if c.Webchat.Retention < 0 {
		errs = append(errs, fmt.Errorf("webchat.retention: must be positive, got %s", c.Webchat.Retention))
	}
	if c.Cluster.Lease < 0 || c.Cluster.Heartbeat >= c.Cluster.Lease {
		errs = append(errs, fmt.Errorf("cluster.heartbeat (%s) must be shorter than cluster.lease (%s), which must be positive",
			c.Cluster.Heartbeat, c.Cluster.Lease))
	}
	errs = append(errs, c.Retention.validate()...)
	return errors.Join(errs...)
}

// RedactedDatabase is Database with any password removed, for logs.
func (c *Config) RedactedDatabase() string { return redactURL(c.Database) }

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
