package config

import (
	"strings"
	"testing"
	"time"
)

func TestWebchatRetention(t *testing.T) {
	for doc, want := range map[string]time.Duration{"": 7 * 24 * time.Hour, "webchat: {retention: 36h}\n": 36 * time.Hour} {
		cfg, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Webchat.Retention != want {
			t.Errorf("%q: retention %s, want %s", doc, cfg.Webchat.Retention, want)
		}
	}
	if _, err := Parse([]byte("webchat: {retention: -1h}\n")); err == nil || !strings.Contains(err.Error(), "webchat.retention") {
		t.Fatalf("negative retention: err = %v", err)
	}
}
