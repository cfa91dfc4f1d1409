// Package apply implements `switchboard apply`: operators describe a
// workspace (its bots with their flows, channels, people, segments and
// broadcasts) in YAML, and apply creates or updates them.
//
// Apply is all or nothing: every document is decoded strictly (unknown keys
// are errors with their line), every problem is reported at once with its
// location, and the changes are written in one transaction, so a failed apply
// leaves the store exactly as it was. Resources missing from the file are left
// alone: apply never deletes.
package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Document is one resources file. It describes one workspace.
type Document struct {
	Workspace WorkspaceSpec `yaml:"workspace"`
	// Bots are bot documents in the format of package bot (docs/BOTS.md).
	Bots     []yaml.Node   `yaml:"bots"`
	Channels []ChannelSpec `yaml:"channels"`
	People   []PersonSpec  `yaml:"people"`
	// Segments and Broadcasts are group-triggered broadcasts' resources
	// (see audience.go).
	Segments   []SegmentSpec   `yaml:"segments"`
	Broadcasts []BroadcastSpec `yaml:"broadcasts"`
}

// WorkspaceSpec names the workspace.
type WorkspaceSpec struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

// ChannelSpec is a channel: an instance of a plugin type attached to a bot.
type ChannelSpec struct {
	// ID is optional; give one to keep webhook URLs stable across
	// databases (the demo does). Otherwise a UUID is generated once.
	ID      string         `yaml:"id"`
	Name    string         `yaml:"name"`
	Type    string         `yaml:"type"`
	Bot     string         `yaml:"bot"`
	Enabled *bool          `yaml:"enabled"`
	Config  map[string]any `yaml:"config"`
	// Secrets are stored apart from the channel and never shown again.
	// Values may be ${ENV_VAR} references, resolved when applying.
	Secrets map[string]string `yaml:"secrets"`
}

// PersonSpec is a person with optional channel identities.
type PersonSpec struct {
	ID         string         `yaml:"id"`
	Email      string         `yaml:"email"`
	Attributes map[string]any `yaml:"attributes"`
	Identities []struct {
		Channel string `yaml:"channel"` // channel name or id
		Address string `yaml:"address"`
	} `yaml:"identities"`
}

// BotCompiler validates one bot document and returns its name and the
// definition to store. Its error lists every problem found; it decodes the
// node itself so that its errors carry the line numbers of the file.
type BotCompiler func(doc *yaml.Node) (name string, definition json.RawMessage, err error)

// Options configure Apply.
type Options struct {
	Bots BotCompiler
	// Getenv resolves ${VAR} references; defaults to os.Getenv with unset
	// variables reported as errors.
	LookupEnv func(string) (string, bool)
	// DryRun validates and rolls back.
	DryRun bool
	// Out receives one line per object once the changes are committed.
	Out io.Writer
	// Channels asks each channel's plugin to validate its configuration
	// before anything is written; nil skips the check (the gateway still
	// reports a bad configuration when it configures the channel).
	Channels ChannelValidator
	Now      func() time.Time
}

// ChannelValidator checks a channel's configuration with its plugin
// without installing it (sdk.ConfigValidator). ValidateChannel returns a
// *sdk.ConfigError naming the bad fields, an error wrapping
// ErrNotValidated when the plugin cannot say (it is not installed here,
// or has no ValidateConfig), or another error.
type ChannelValidator interface {
	ValidateChannel(ctx context.Context, ch store.Channel, secrets map[string]string) error
}

// ErrNotValidated is wrapped by a ChannelValidator that could not check a
// channel: apply goes on and says so.
var ErrNotValidated = errors.New("configuration not checked")

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	typePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	// ${VAR} or ${VAR:-default}
	envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)
)

// Problems is every problem found in the documents, with locations.
type Problems []string

func (p Problems) Error() string {
	return fmt.Sprintf("%d problem(s):\n  %s", len(p), strings.Join(p, "\n  "))
}

// Parse decodes a resources file strictly.
func Parse(name string, raw []byte) (*Document, *yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	var doc Document
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s: empty document", name)
		}
		return nil, nil, explainTypeErrors(name, &root, err)
	}
	return &doc, &root, nil
}

// File is one parsed resources file.
type File struct {
	Name string
	Doc  *Document
	root *yaml.Node
}

// ParseFile parses one resources file's content; name is used in errors.
func ParseFile(name string, raw []byte) (File, error) {
	doc, root, err := Parse(name, raw)
	if err != nil {
		return File{}, err
	}
	return File{Name: name, Doc: doc, root: root}, nil
}

// ReadFiles reads and parses resources files.
func ReadFiles(paths []string) ([]File, error) {
	var files []File
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := ParseFile(p, raw)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// Store is what Apply writes to.
type Store interface {
	WithTx(ctx context.Context, fn func(tx store.Store) error) error
}

// DryRunNotice is the last line a dry run prints.
const DryRunNotice = "dry run: nothing was written"

// Apply validates every file, then writes them all in one transaction.
func Apply(ctx context.Context, st Store, files []File, opts Options) error {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	plans, probs := plan(ctx, files, opts)
	if len(probs) > 0 {
		return probs
	}
	errDryRun := errors.New("dry run")
	// What was done is told once the transaction committed (or the dry
	// run rolled back): a failed apply wrote nothing and prints nothing
	// done. A retried transaction starts its lines again.
	out := opts.Out
	var done bytes.Buffer
	opts.Out = &done
	err := st.WithTx(ctx, func(tx store.Store) error {
		done.Reset()
		for _, p := range plans {
			if err := p.write(ctx, tx, opts); err != nil {
				return err
			}
			if err := writeAudience(ctx, tx, p.file, opts); err != nil {
				return err
			}
		}
		if opts.DryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		_, err = fmt.Fprintf(out, "%s%s\n", done.Bytes(), DryRunNotice)
		return err
	}
	if err != nil {
		return err
	}
	_, err = out.Write(done.Bytes())
	return err
}

// line finds the line of a list item in a file, for error messages.
func (f File) line(section string, i int) int {
	if f.root == nil || len(f.root.Content) == 0 {
		return 0
	}
	m := f.root.Content[0]
	for k := 0; k+1 < len(m.Content); k += 2 {
		if m.Content[k].Value == section && i < len(m.Content[k+1].Content) {
			return m.Content[k+1].Content[i].Line
		}
	}
	return 0
}

// EnvRefs lists the variables raw's ${VAR} references name, once each,
// so that a client applying remotely can send their values.
func EnvRefs(raw []byte) []string {
	var names []string
	for _, m := range envRef.FindAllSubmatch(raw, -1) {
		if n := string(m[1]); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// expandEnv resolves ${VAR} and ${VAR:-default} references; an unset
// variable without a default is a problem, never an empty value.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		v, ok := lookup(m[1])
		if ok {
			return v
		}
		if strings.Contains(ref, ":-") {
			return m[2]
		}
		missing = append(missing, m[1])
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}
