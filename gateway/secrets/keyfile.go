package secrets

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NewSecret returns a new random secret in the recommended form: 32 bytes,
// hex-encoded.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// LoadOrCreateKeyFile returns the secret stored in path, creating the file
// (mode 0600, whatever the umask; its directory too) with a new random
// secret when it does not exist; created says which. The file appears whole
// or not at all, so two processes starting at once agree on one secret.
func LoadOrCreateKeyFile(path string) (secret string, created bool, err error) {
	secret, err = ReadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return secret, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", false, fmt.Errorf("create key file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".switchboard-key-*")
	if err != nil {
		return "", false, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	secret = NewSecret()
	// CreateTemp makes the file 0600 already; Chmod states the intent.
	if err := errors.Join(tmp.Chmod(0o600), writeSync(tmp, secret+"\n"), tmp.Close()); err != nil {
		return "", false, fmt.Errorf("create key file: %w", err)
	}
	// Link, unlike Rename, fails when path exists: a process that lost
	// the race reads the winner's secret.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			secret, err = ReadKeyFile(path)
			return secret, false, err
		}
		return "", false, fmt.Errorf("create key file: %w", err)
	}
	return secret, true, nil
}

func writeSync(f *os.File, s string) error {
	if _, err := f.WriteString(s); err != nil {
		return err
	}
	return f.Sync()
}

// ReadKeyFile returns the secret stored in path; a missing file is an
// error matching fs.ErrNotExist.
func ReadKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read key file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("key file %s is empty: restore it from a backup, or delete it only if nothing was sealed with it", path)
	}
	return s, nil
}
