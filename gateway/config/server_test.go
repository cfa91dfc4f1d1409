package config

import (
	"strings"
	"testing"
	"time"
)

func TestServerLimits(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ServerConfig{
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: time.Minute,
		MaxConnectionsPerAddress: 512, Public: PublicLimits{BodyTimeout: 10 * time.Second, RateLimit: 100, Burst: 200},
	}
	if cfg.Server != want {
		t.Errorf("defaults %+v, want %+v", cfg.Server, want)
	}
	cfg, err = Parse([]byte("server:\n  idle_timeout: 5s\n  max_connections: 900\n  max_connections_per_address: -1\n  public: {rate_limit: 10, body_timeout: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.IdleTimeout != 5*time.Second || cfg.Server.MaxConnections != 900 || cfg.Server.MaxConnectionsPerAddress != -1 ||
		cfg.Server.Public.RateLimit != 10 || cfg.Server.Public.Burst != 20 || cfg.Server.Public.BodyTimeout != 2*time.Second {
		t.Errorf("configured %+v", cfg.Server)
	}
	if _, err := Parse([]byte("server: {public: {rate_limit: 5, burst: -1}}\n")); err == nil || !strings.Contains(err.Error(), "server.public.burst") {
		t.Errorf("negative burst: %v", err)
	}
}
