package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/secrets"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// ErrNoSecretKey is why a PostgreSQL gateway without a secret key does not
// start: its nodes must share one key, so none of them can make it up.
var ErrNoSecretKey = errors.New("no secret key: set SWITCHBOARD_SECRET_KEY (or secret_key in the config) to the key every node shares, " +
	"e.g. the output of `openssl rand -hex 32`; on PostgreSQL the gateway does not generate one")

// OpenStore opens and migrates cfg's database with the keys that seal
// secrets at rest. The current key is cfg.SecretKey; on SQLite without one
// it is the key file beside the database (KeyFile), created on first use,
// and cfg.SecretKey is set to it so everything derived from the secret key
// (web chat tokens) uses it too. On SQLite with a configured key, the key
// file's key, if there is one, stays readable as a previous key: moving
// from the file to a configured key is a `secrets rotate`.
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*sqlstore.Store, error) {
	keys, err := keyring(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := sqlstore.Open(ctx, cfg.Database, sqlstore.Options{Migrate: true, Secrets: keys})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.RedactedDatabase(), err)
	}
	return st, nil
}

// KeyFile is where a SQLite database's generated secret key lives:
// data/switchboard.db has data/switchboard.key. It is "" for PostgreSQL.
func KeyFile(database string) string {
	path, ok := strings.CutPrefix(database, "sqlite://")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".key"
}

func keyring(cfg *config.Config, log *slog.Logger) (*secrets.Keyring, error) {
	previous := cfg.SecretKeysPrevious
	path := KeyFile(cfg.Database)
	switch {
	case cfg.SecretKey == "" && path == "":
		return nil, ErrNoSecretKey
	case cfg.SecretKey == "":
		key, created, err := secrets.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		if created {
			log.Warn("no secret key configured: generated one into the key file beside the database; back it up with the database, since sealed secrets cannot be read without it",
				"key_file", path)
		}
		cfg.SecretKey = key
	case path != "":
		key, err := secrets.ReadKeyFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		previous = append([]string{key}, previous...)
	}
	keys, err := secrets.NewKeyring(cfg.SecretKey, previous...)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	log.Debug("sealing secrets at rest", "key_id", keys.CurrentID(), "key_file", path)
	return keys, nil
}
