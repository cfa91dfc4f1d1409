package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.PublicURL != "http://127.0.0.1:8080" ||
		cfg.Database != "sqlite://data/switchboard.db" || cfg.Cluster.Lease != 5*time.Second || cfg.API.KeyRateLimit != 50 {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestParseRejectsUnknownKeysWithTheirLine(t *testing.T) {
	_, err := Parse([]byte("listen: 127.0.0.1:9000\ndelivery:\n  workers: 4\n  wrokers: 5\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "wrokers") {
		t.Fatalf("err = %v, want the unknown key and its line", err)
	}
}

func TestEnvironmentOverridesTheFile(t *testing.T) {
	t.Setenv(EnvDatabaseURL, "postgres://app:s3cret@db:5432/sb")
	t.Setenv(EnvPublicURL, "https://chat.example.com/")
	cfg, err := Parse([]byte("database: sqlite://x.db\npublic_url: http://ignored\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database != "postgres://app:s3cret@db:5432/sb" || cfg.PublicURL != "https://chat.example.com" {
		t.Fatalf("cfg = %+v", cfg)
	}
	if r := cfg.RedactedDatabase(); strings.Contains(r, "s3cret") || !strings.Contains(r, "app:xxxxx@db") {
		t.Fatalf("redacted database %q still shows the password", r)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte("public_url: ftp://x\ndatabase: mysql://x\nlog: {level: loud, format: xml}\n"))
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"public_url", "database", "log.level", "log.format"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
}

func TestAdminOperatorKeysAreDigests(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	cfg, err := Parse([]byte("admin: {operator_keys: [" + digest + "]}\n"))
	if err != nil || len(cfg.Admin.OperatorKeys) != 1 || cfg.Admin.RateLimit != 20 {
		t.Fatalf("a digest: %v %+v", err, cfg)
	}
	_, err = Parse([]byte("admin: {operator_keys: [sbo_notadigest]}\n"))
	if err == nil || !strings.Contains(err.Error(), "admin.operator_keys[0]") || !strings.Contains(err.Error(), "not the key") {
		t.Fatalf("a raw key in operator_keys: err = %v, want it named as not a digest", err)
	}
}

// TestPublicURLFollowsListen: an unset public_url follows the listen
// address, from the file and from serve --listen; a set one stays.
func TestPublicURLFollowsListen(t *testing.T) {
	cfg, err := Parse([]byte("listen: 127.0.0.1:9000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != "http://127.0.0.1:9000" {
		t.Fatalf("public_url = %q, want it to follow listen", cfg.PublicURL)
	}
	cfg.SetListen("127.0.0.1:9001")
	if cfg.Listen != "127.0.0.1:9001" || cfg.PublicURL != "http://127.0.0.1:9001" {
		t.Fatalf("after --listen: listen %q public_url %q, want both on 9001", cfg.Listen, cfg.PublicURL)
	}
	cfg, err = Parse([]byte("listen: 127.0.0.1:9000\npublic_url: https://chat.example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetListen("127.0.0.1:9001")
	if cfg.PublicURL != "https://chat.example.com" {
		t.Fatalf("public_url = %q, want the configured one kept", cfg.PublicURL)
	}
}
