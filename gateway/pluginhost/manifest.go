package pluginhost

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchboard-gw/switchboard/sdk"
)

// ManifestFile is the name of the manifest inside each plugin's directory.
const ManifestFile = "plugin.json"

// Manifest is a plugin's plugin.json, as written by scripts/plugin-manifest.sh:
//
//	{"name": "webhook", "version": "v1.2.0", "protocol_version": 1,
//	 "executable": "webhook", "sha256": "…"}
type Manifest struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	ProtocolVersion int    `json:"protocol_version"`
	// Executable is a file name inside the plugin's directory.
	Executable string `json:"executable"`
	// SHA256 is the hex digest of the executable. The host refuses to start
	// a binary that does not match it.
	SHA256 string `json:"sha256"`
}

// SupportedProtocols are the protocol versions this gateway speaks.
var SupportedProtocols = []int{sdk.ProtocolVersion}

// ErrBadManifest is wrapped by every discovery error about a plugin's
// manifest or executable.
var ErrBadManifest = errors.New("bad plugin manifest")

// discovered is one plugin directory: its manifest and where it lives, or
// why it cannot be used.
type discovered struct {
	name     string // directory name
	dir      string
	manifest Manifest
	checksum []byte
	err      error
}

func (d discovered) executable() string { return filepath.Join(d.dir, d.manifest.Executable) }

// discover scans dir non-recursively. Every subdirectory (dot entries
// skipped) is one plugin; plugins with problems are returned with err set,
// so the host can report them instead of silently ignoring them.
func discover(dir string) ([]discovered, error) {
	// Absolute, because the executable is both checksummed (relative to the
	// gateway's working directory) and exec'd from inside its own directory:
	// a relative path would name two different files.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("plugins dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read plugins dir: %w", err)
	}
	var out []discovered
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		d := discovered{name: e.Name(), dir: filepath.Join(dir, e.Name())}
		d.manifest, d.checksum, d.err = loadManifest(d.dir, d.name)
		out = append(out, d)
	}
	return out, nil
}

// loadManifest reads and checks dir/plugin.json. The checksum itself is
// verified by go-plugin right before each exec (SecureConfig), not here, so
// a binary swapped after discovery is caught too.
func loadManifest(dir, name string) (Manifest, []byte, error) {
	var m Manifest
	bad := func(format string, a ...any) (Manifest, []byte, error) {
		return m, nil, fmt.Errorf("%w: %s: %s", ErrBadManifest, filepath.Join(dir, ManifestFile), fmt.Sprintf(format, a...))
	}
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return bad("%v", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return bad("%v", err)
	}
	switch {
	case m.Name != name:
		return bad("name %q does not match its directory %q", m.Name, name)
	case m.Executable == "" || m.Executable != filepath.Base(m.Executable) || m.Executable == "." || m.Executable == "..":
		return bad("executable %q must be a file name inside the plugin directory", m.Executable)
	case !slices.Contains(SupportedProtocols, m.ProtocolVersion):
		return bad("protocol version %d is not supported (this gateway speaks %v)", m.ProtocolVersion, SupportedProtocols)
	}
	sum, err := hex.DecodeString(m.SHA256)
	if err != nil || len(sum) != 32 {
		return bad("sha256 %q is not a hex SHA-256 digest", m.SHA256)
	}
	info, err := os.Stat(filepath.Join(dir, m.Executable))
	switch {
	case err != nil:
		return bad("executable: %v", err)
	case !info.Mode().IsRegular() || info.Mode()&0o111 == 0:
		return bad("executable %s is not an executable file", m.Executable)
	}
	return m, sum, nil
}

// WriteManifest writes m as dir/plugin.json (what scripts/plugin-manifest.sh
// does at build time); tests and tooling use it.
func WriteManifest(dir string, m Manifest) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ManifestFile), append(raw, '\n'), 0o644)
}
