package config

import (
	"strings"
	"testing"
	"time"
)

func TestRetentionDefaultsAndOverrides(t *testing.T) {
	cfg, err := Parse([]byte("retention: {seen_events: 48h, messages: -1s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Retention
	if r.SeenEvents != 48*time.Hour || r.Messages != -time.Second || r.SentDeliveries != 30*24*time.Hour ||
		r.FailedDeliveries != 90*24*time.Hour || r.FlowTriggers != 30*24*time.Hour || r.Interval != time.Minute || r.BatchSize != 500 {
		t.Fatalf("retention = %+v", r)
	}
}

func TestRetentionRefusesResultsOutlivingTheirDeliveries(t *testing.T) {
	for doc, want := range map[string]string{
		"retention: {flow_triggers: 800h}\n":                                       "retention.flow_triggers (800h0m0s) must not be longer than retention.sent_deliveries",
		"retention: {flow_triggers: -1s}\n":                                        "retention.flow_triggers (for ever) must not be longer than retention.sent_deliveries",
		"retention: {triggers: 100h, failed_deliveries: 50h, flow_triggers: 1h}\n": "retention.triggers (100h0m0s) must not be longer than retention.failed_deliveries (50h0m0s)",
		"retention: {batch_size: -3}\n":                                            "retention.batch_size: must be positive",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", doc, err, want)
		}
	}
	if _, err := Parse([]byte("retention: {flow_triggers: -1s, sent_deliveries: -1s, failed_deliveries: -1s, triggers: -1s}\n")); err != nil {
		t.Fatalf("everything kept for ever: %v", err)
	}
}
