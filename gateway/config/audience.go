package config

import "time"

// AudienceConfig tunes group-triggered broadcasts (the Customer.io-compatible
// App and Track APIs). Zero values take Customer.io's limits and the
// fan-out's defaults.
type AudienceConfig struct {
	// TriggerInterval is the least time between two triggers of one
	// broadcast (default 10s; negative disables the limit).
	TriggerInterval time.Duration `yaml:"trigger_interval"`
	// MaxOpenTriggers caps queued and running triggers per workspace
	// (default 5; negative disables the limit).
	MaxOpenTriggers int `yaml:"max_open_triggers"`
	// MaxTriggerBytes caps a trigger request body (default 25 MB).
	MaxTriggerBytes int64 `yaml:"max_trigger_bytes"`
	// MaxDataBytes caps a trigger's data object (default 50,000).
	MaxDataBytes int `yaml:"max_data_bytes"`
	// MaxListItems caps ids, emails and per_user_data (default 10,000).
	MaxListItems int `yaml:"max_list_items"`
	// MaxFilterDepth and MaxFilterLeaves bound audience filters (default
	// 10 levels, 1,000 conditions).
	MaxFilterDepth  int `yaml:"max_filter_depth"`
	MaxFilterLeaves int `yaml:"max_filter_leaves"`
	// BatchSize is how many recipients one fan-out step handles (default
	// 1000).
	BatchSize int `yaml:"batch_size"`
	// StepBudget is how long one fan-out job runs before handing over to a
	// continuation job (default: a third of the queue lease).
	StepBudget time.Duration `yaml:"step_budget"`
	// ReadRateLimit is how many App API reads (GET) one key may make per
	// second (default 10; negative disables the limit).
	ReadRateLimit float64 `yaml:"read_rate_limit"`

	// Hardening limits (issue 12).

	// MaxFilterExpandedDepth bounds the levels of a filter with its
	// segments expanded (default 20); MaxFilterLeaves bounds its
	// conditions after expansion too.
	MaxFilterExpandedDepth int `yaml:"max_filter_expanded_depth"`
	// DataFileTimeout is how long after a trigger was made its data file
	// must have been read to the end (default 2h).
	DataFileTimeout time.Duration `yaml:"data_file_timeout"`
	// DataFileMaxLines caps a data file's lines, blank ones included
	// (default 100,000,000).
	DataFileMaxLines int `yaml:"data_file_max_lines"`
	// MaxInflight caps the triggers (dry runs included) and segment
	// counts one workspace may have running at once (default 2; negative
	// disables).
	MaxInflight int `yaml:"max_inflight"`
}
