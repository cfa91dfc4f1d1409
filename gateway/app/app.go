// Package app wires the gateway together: store, plugin host, job queue,
// conversation engine, delivery pipeline and HTTP server, and runs them until
// the context ends, then shuts them down in order.
package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/broadcast"
	"github.com/switchboard-gw/switchboard/gateway/cluster"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/conversation"
	"github.com/switchboard-gw/switchboard/gateway/delivery"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/inbound"
	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/queue"
	"github.com/switchboard-gw/switchboard/gateway/retention"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/gateway/webchat"
	"github.com/switchboard-gw/switchboard/sdk"
)

// App is a running gateway node.
type App struct {
	cfg   *config.Config
	log   *slog.Logger
	Store *sqlstore.Store
	// Node holds this process's lease on the work it claims.
	Node     *cluster.Node
	Host     *pluginhost.Host
	Queue    *queue.Runner
	Pipeline *delivery.Pipeline
	Bots     *bot.Cache
	Engine   *conversation.Engine
	// Conversations runs conversation jobs; its Observe hook is where the
	// broadcast APIs learn the outcome of proactive events.
	Conversations *inbound.Handler
	// Broadcasts accepts CSML-style flow triggers.
	Broadcasts *broadcast.Service
	// Audience runs group broadcasts' triggers (App API, admin API).
	Audience *audience.Service
	// Webchat holds the web chat websockets and their outbox.
	Webchat *webchat.Service
	// Cleaner deletes records older than their retention.
	Cleaner *retention.Cleaner
	handler http.Handler
	metrics http.Handler // served by handler, or on metrics.listen
	watch   *channelWatch
	// operators are the operator keys' digests (admin.operator_keys).
	operators auth.OperatorKeys
}

// New builds a gateway from cfg; Run starts it.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	// Plugin processes run in their own directories; relative paths would
	// resolve against those.
	pluginsDir, err := filepath.Abs(cfg.Plugins.Dir)
	if err != nil {
		return nil, fmt.Errorf("plugins dir: %w", err)
	}
	st, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	// A database from before sealing keeps its secrets in plaintext until
	// they are sealed: here, at the first start that can.
	if rep, err := st.ResealSecrets(ctx, true); err != nil {
		st.Close()
		return nil, err
	} else if rep.Plaintext > 0 {
		log.Info("sealed secrets stored in plaintext by an earlier version",
			"channels", rep.ChannelSecrets, "bots", rep.BotSecrets)
	}
	a := &App{cfg: cfg, log: log, Store: st}
	a.Node, err = cluster.New(st, cluster.Options{
		ID:        nodeName(cfg),
		Lease:     cfg.Cluster.Lease,
		Heartbeat: cfg.Cluster.Heartbeat,
		Released:  func(store.Released) { a.Queue.Notify(); a.Pipeline.Notify() },
		Logger:    log,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	a.Host = pluginhost.New(pluginhost.Config{
		Dir:            pluginsDir,
		Env:            PluginEnv(cfg),
		StartTimeout:   cfg.Plugins.StartTimeout,
		HealthInterval: cfg.Plugins.HealthInterval,
		Instances:      a.instances,
		Logger:         log,
	})
	a.Queue = queue.New(st, queue.Options{
		Lease:        a.Node,
		Workers:      cfg.Queue.Workers,
		JobTimeout:   cfg.Queue.JobTimeout,
		PollInterval: cfg.Queue.PollInterval,
		Logger:       log,
	})
	if a.Webchat, err = a.newWebchat(); err != nil {
		st.Close()
		return nil, err
	}
	a.Pipeline = delivery.New(st, a.Webchat.Plugins(a.Host), delivery.Options{
		Workers:      cfg.Delivery.Workers,
		ClaimSize:    cfg.Delivery.ClaimSize,
		BatchSize:    cfg.Delivery.BatchSize,
		MaxAttempts:  cfg.Delivery.MaxAttempts,
		Lease:        a.Node,
		PollInterval: cfg.Delivery.PollInterval,
		Logger:       log,
	})
	a.Bots = bot.NewCache(st, bot.CacheOptions{})
	a.Engine, err = conversation.New(conversation.Options{
		Store:  st,
		Bots:   a.Bots,
		Call:   conversation.CallOptions{Net: netguard.Options{AllowPrivate: cfg.Security.AllowInternalFetch}},
		Logger: log,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	a.Conversations = &inbound.Handler{Store: st, Engine: a.Engine, Delivery: a.Pipeline}
	a.Queue.Handle(inbound.JobKind, a.Conversations.Run)
	a.Queue.OnGiveUp(inbound.JobKind, a.Conversations.GiveUp)
	a.Cleaner = a.newCleaner()
	a.watch = &channelWatch{app: a, seen: map[string]time.Time{}, bots: map[string]time.Time{}}

	if a.operators, err = auth.ParseOperatorKeys(cfg.Admin.OperatorKeys); err != nil {
		st.Close()
		return nil, fmt.Errorf("admin.operator_keys: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, cs := range [][]prometheus.Collector{delivery.Collectors(), cluster.Collectors(), webchat.Collectors(),
		queue.Collectors(), audience.Collectors(), httpapi.Collectors(), retention.Collectors()} {
		reg.MustRegister(cs...)
	}
	reg.MustRegister(newStateCollector(st, a.Host.Status, a.Node.ID()))
	srv := &httpapi.Server{
		Health: &httpapi.Health{Store: st, Plugins: a.pluginStatus, Node: a.Node.ID()},
		Ingress: &httpapi.Ingress{
			Channels:  st,
			Plugins:   a.Host,
			Events:    &inbound.Sink{Store: st, Queue: a.Queue},
			PublicURL: cfg.PublicURL,
			MaxBody:   cfg.API.MaxWebhookBytes,
		},
		Routes: a.routes(),
		Public: httpapi.PublicLimits{
			BodyTimeout: cfg.Server.Public.BodyTimeout,
			Rate:        cfg.Server.Public.RateLimit,
			Burst:       cfg.Server.Public.Burst,
		},
		Logger: log,
	}
	a.metrics = requireToken(cfg.Metrics.Token, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if cfg.Metrics.Listen == "" {
		srv.Metrics = a.metrics
	}
	a.handler = srv.Handler()
	return a, nil
}

// Handler is the gateway's HTTP handler (for tests that serve it themselves).
func (a *App) Handler() http.Handler { return a.handler }

// Run starts the plugins, workers and HTTP server on ln (nil: listen on
// the configured address) and blocks until ctx ends; then it stops taking
// requests, lets in-flight work finish, stops the plugins and closes the
// store.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	defer a.Store.Close()
	if ln == nil {
		var err error
		if ln, err = listen(a.cfg.Listen); err != nil {
			return err
		}
	}
	a.watch.record(ctx)
	if err := a.Host.Start(ctx); err != nil {
		return fmt.Errorf("start plugins: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Plugins.ShutdownTimeout)
		defer cancel()
		a.Host.Stop(stopCtx)
	}()

	// The lease is taken before anything is claimed and given back after
	// every worker has stopped, so nothing runs unheld.
	if err := a.Node.Start(ctx); err != nil {
		return fmt.Errorf("take node lease: %w", err)
	}
	a.log.Info("node lease taken", "node", a.Node.ID(), "lease", a.cfg.Cluster.Lease)
	nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	nodeDone := make(chan struct{})
	go func() {
		defer close(nodeDone)
		if err := a.Node.Run(nodeCtx); err != nil {
			a.log.Error("node lease", "err", err)
		}
	}()
	defer func() { stopNode(); <-nodeDone }()

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{a.Queue.Run, a.Pipeline.Run, a.watch.run, a.closeExpired, a.Cleaner.Run, a.Webchat.Run} {
		wg.Go(func() {
			if err := run(workCtx); err != nil {
				a.log.Error("worker stopped", "err", err)
			}
		})
	}
	defer func() { stopWork(); wg.Wait() }()

	sc := a.cfg.Server
	lim := httpapi.ConnLimits{Max: sc.MaxConnections, PerAddress: sc.MaxConnectionsPerAddress}
	if lim.Max == 0 {
		lim.Max = defaultMaxConnections()
	}
	server := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		ReadTimeout:       sc.ReadTimeout,
		WriteTimeout:      sc.WriteTimeout,
		IdleTimeout:       sc.IdleTimeout,
	}
	errc := make(chan error, 2)
	go func() { errc <- server.Serve(httpapi.LimitListener(ln, lim)) }()
	if addr := a.cfg.Metrics.Listen; addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("metrics listen %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics)
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: sc.ReadHeaderTimeout, WriteTimeout: sc.WriteTimeout}
		go func() { errc <- msrv.Serve(mln) }()
		defer msrv.Close()
		a.log.Info("metrics listening", "addr", mln.Addr().String())
	}
	a.log.Info("http limits", "max_connections", lim.Max, "max_connections_per_address", lim.PerAddress,
		"read_timeout", sc.ReadTimeout, "write_timeout", sc.WriteTimeout, "idle_timeout", sc.IdleTimeout)
	a.log.Info("gateway listening", "addr", ln.Addr().String(), "public_url", a.cfg.PublicURL,
		"database", a.cfg.RedactedDatabase(), "plugins", len(a.Host.Status()))
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Warn("http shutdown", "err", err)
	}
	return nil
}

// PluginEnv is the environment plugin processes get from the config
// (they inherit none): plugins that post to tenant URLs (webhook
// channels) guard them as the gateway guards its own fetches, so they
// must know when internal addresses are allowed. Every process that
// starts plugins (serve, apply, plugins list) passes it.
func PluginEnv(cfg *config.Config) []string {
	if cfg.Security.AllowInternalFetch {
		return []string{netguard.EnvAllowInternal + "=true"}
	}
	return nil
}

// requireToken guards /metrics with a bearer token when one is set.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			httpapi.WriteErrors(w, httpapi.Errf(http.StatusUnauthorized, "unauthorized", "",
				"/metrics needs Authorization: Bearer <metrics.token>"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// instances lists the enabled channels of a plugin type, with secrets, for
// the plugin host to configure.
func (a *App) instances(ctx context.Context, plugin string) ([]sdk.InstanceConfig, error) {
	chs, err := a.Store.ListChannels(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []sdk.InstanceConfig
	for _, ch := range chs {
		if ch.Type != plugin || !ch.Enabled {
			continue
		}
		ic, err := a.instanceConfig(ctx, ch)
		if err != nil {
			return nil, err
		}
		out = append(out, ic)
	}
	return out, nil
}

func (a *App) instanceConfig(ctx context.Context, ch store.Channel) (sdk.InstanceConfig, error) {
	secrets, err := a.Store.GetChannelSecrets(ctx, ch.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return sdk.InstanceConfig{}, fmt.Errorf("channel %s secrets: %w", ch.ID, err)
	}
	return sdk.InstanceConfig{
		ChannelID:  ch.ID,
		WebhookURL: a.cfg.PublicURL + "/channels/" + ch.ID + "/webhook",
		Config:     ch.Config,
		Secrets:    a.Webchat.InstanceSecrets(ch, secrets),
	}, nil
}

func (a *App) pluginStatus() []httpapi.PluginStatus {
	var out []httpapi.PluginStatus
	for _, p := range a.Host.Status() {
		ps := httpapi.PluginStatus{Name: p.Name, Version: p.Version, State: string(p.State),
			Error: p.LastError, Restarts: p.Restarts, Channels: []httpapi.ChannelHealth{}}
		for _, in := range p.Instances {
			ps.Channels = append(ps.Channels, httpapi.ChannelHealth{ID: in.ChannelID, Healthy: in.Healthy, Reason: in.Reason})
		}
		out = append(out, ps)
	}
	return out
}

// closeExpired closes conversations whose expiry passed. (Old records are
// the Cleaner's.)
func (a *App) closeExpired(ctx context.Context) error {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := a.Store.CloseExpired(ctx, time.Now()); err != nil {
			a.log.Error("close expired conversations", "err", err)
		} else if n > 0 {
			a.log.Info("closed expired conversations", "count", n)
		}
	}
}
