package config

import (
	"fmt"
	"time"
)

// RetentionConfig is how long the gateway keeps each kind of record before
// the cleaner deletes it (package retention). A zero value takes the
// default; a negative one keeps the records for ever.
type RetentionConfig struct {
	// Interval is the time between cleaner runs. Defaults to 1m.
	Interval time.Duration `yaml:"interval"`
	// BatchSize bounds the records one delete removes. Defaults to 500.
	BatchSize int `yaml:"batch_size"`
	// FailedJobs: jobs that gave up, from their last run (completed
	// jobs are deleted at once). Defaults to 168h.
	FailedJobs time.Duration `yaml:"failed_jobs"`
	// SeenEvents: platform event ids kept to drop the platform's retries,
	// from their arrival. It must outlast every platform's retry window
	// (Telegram keeps an update for up to 24h, Standard Webhooks senders
	// retry for about 3 days). Defaults to 96h.
	SeenEvents time.Duration `yaml:"seen_events"`
	// SentDeliveries: sent, delivered and skipped deliveries, from their
	// last update. Defaults to 720h (30 days).
	SentDeliveries time.Duration `yaml:"sent_deliveries"`
	// FailedDeliveries: failed deliveries (the error lines of group
	// triggers), from their last update. Defaults to 2160h (90 days).
	FailedDeliveries time.Duration `yaml:"failed_deliveries"`
	// Messages: conversation messages, from when they were stored.
	// Defaults to 2160h.
	Messages time.Duration `yaml:"messages"`
	// ClosedConversations: closed conversations with their memory, from
	// when they closed. Defaults to 2160h.
	ClosedConversations time.Duration `yaml:"closed_conversations"`
	// Triggers: finished group triggers with their error lines, from
	// when they finished. Defaults to 2160h.
	Triggers time.Duration `yaml:"triggers"`
	// FlowTriggers: flow_trigger requests, from when they were accepted;
	// GET /v1/api/broadcasts/{id} answers 404 expired after it. Defaults
	// to 720h.
	FlowTriggers time.Duration `yaml:"flow_triggers"`
}

func (r *RetentionConfig) applyDefaults() {
	for _, d := range []struct {
		dst *time.Duration
		v   time.Duration
	}{
		{&r.Interval, time.Minute},
		{&r.FailedJobs, 7 * 24 * time.Hour},
		{&r.SeenEvents, 96 * time.Hour},
		{&r.SentDeliveries, 30 * 24 * time.Hour},
		{&r.FailedDeliveries, 90 * 24 * time.Hour},
		{&r.Messages, 90 * 24 * time.Hour},
		{&r.ClosedConversations, 90 * 24 * time.Hour},
		{&r.Triggers, 90 * 24 * time.Hour},
		{&r.FlowTriggers, 30 * 24 * time.Hour},
	} {
		if *d.dst == 0 {
			*d.dst = d.v
		}
	}
	if r.BatchSize == 0 {
		r.BatchSize = 500
	}
}

// validate refuses retentions under which an answer the gateway still
// gives would lose its parts: a flow_trigger request's result is read
// from its deliveries, a trigger's errors from its failed deliveries.
func (r *RetentionConfig) validate() []error {
	var errs []error
	if r.Interval < 0 {
		errs = append(errs, fmt.Errorf("retention.interval: must be positive, got %s", r.Interval))
	}
	if r.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("retention.batch_size: must be positive, got %d", r.BatchSize))
	}
	for _, c := range []struct {
		name, outlived string
		keep, parts    time.Duration
	}{
		{"flow_triggers", "sent_deliveries", r.FlowTriggers, r.SentDeliveries},
		{"flow_triggers", "failed_deliveries", r.FlowTriggers, r.FailedDeliveries},
		{"triggers", "failed_deliveries", r.Triggers, r.FailedDeliveries},
	} {
		if !outlasts(c.parts, c.keep) {
			errs = append(errs, fmt.Errorf("retention.%s (%s) must not be longer than retention.%s (%s): "+
				"its answers are read from those deliveries (negative: kept for ever)", c.name, forever(c.keep), c.outlived, forever(c.parts)))
		}
	}
	return errs
}

// outlasts reports whether records kept for a are kept at least as long
// as those kept for b (negative: for ever).
func outlasts(a, b time.Duration) bool {
	switch {
	case a < 0:
		return true
	case b < 0:
		return false
	}
	return a >= b
}

func forever(d time.Duration) string {
	if d < 0 {
		return "for ever"
	}
	return d.String()
}
