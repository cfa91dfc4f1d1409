package config

import "time"

// WebchatConfig tunes web chat (the Assistant channel).
type WebchatConfig struct {
	// Retention is how long a web chat message stays in the outbox: one
	// no client acknowledged by then expires (its delivery fails with
	// reason expired), and older history is no longer replayed. Defaults
	// to 168h (7 days).
	Retention time.Duration `yaml:"retention"`
}
