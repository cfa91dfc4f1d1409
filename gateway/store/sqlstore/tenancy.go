package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// UpsertWorkspace creates the workspace or renames it.
func (s *Store) UpsertWorkspace(ctx context.Context, w store.Workspace) error {
	if w.ID == "" {
		return fmt.Errorf("upsert workspace: empty id")
	}
	created := w.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	_, err := s.exec(ctx, `INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name`, w.ID, w.Name, micros(created))
	if err != nil {
		return fmt.Errorf("upsert workspace %s: %w", w.ID, err)
	}
	return nil
}

const workspaceCols = `id, name, created_at`

func scanWorkspace(r scanner) (store.Workspace, error) {
	var w store.Workspace
	var created int64
	err := r.Scan(&w.ID, &w.Name, &created)
	w.CreatedAt = fromMicros(created)
	return w, err
}

// GetWorkspace returns one workspace.
func (s *Store) GetWorkspace(ctx context.Context, id string) (store.Workspace, error) {
	return getOne(ctx, s, "get workspace "+id, scanWorkspace,
		`SELECT `+workspaceCols+` FROM workspaces WHERE id = ?`, id)
}

// ListWorkspaces lists every workspace by id.
func (s *Store) ListWorkspaces(ctx context.Context) ([]store.Workspace, error) {
	return list(ctx, s, "list workspaces", scanWorkspace,
		`SELECT `+workspaceCols+` FROM workspaces ORDER BY id`)
}

// upsertTarget resolves an upsert keyed by (workspaceID, name) with an
// optional id, in table bots or channels: it returns the id of the row to
// update, or "" when a row must be inserted. A given id that names another
// row, or a row of another workspace, is a conflict; a given id whose row
// has another name renames that row.
func (s *Store) upsertTarget(ctx context.Context, table, workspaceID, name, id string) (string, error) {
	rows, err := s.query(ctx, `SELECT id, workspace_id, name FROM `+table+`
		WHERE (workspace_id = ? AND name = ?) OR id = ?`+s.d.lockForUpdate(), workspaceID, name, id)
	if err != nil {
		return "", err
	}
	type row struct{ id, ws, name string }
	found, err := collect(rows, func(r scanner) (row, error) {
		var v row
		return v, r.Scan(&v.id, &v.ws, &v.name)
	})
	if err != nil {
		return "", err
	}
	var byName, byID *row
	for i := range found {
		if found[i].ws == workspaceID && found[i].name == name {
			byName = &found[i]
		}
		if id != "" && found[i].id == id {
			byID = &found[i]
		}
	}
	switch {
	case byName != nil && id != "" && byName.id != id:
		return "", fmt.Errorf("%w: name %q belongs to %s", store.ErrConflict, name, byName.id)
	case byName != nil:
		return byName.id, nil
	case byID != nil && byID.ws != workspaceID:
		return "", fmt.Errorf("%w: id %s belongs to another workspace", store.ErrConflict, id)
	case byID != nil:
		return byID.id, nil
	}
	return "", nil
}

// UpsertBot creates or updates the bot named (WorkspaceID, Name).
func (s *Store) UpsertBot(ctx context.Context, b *store.Bot) error {
	def, err := rawJSON(b.Definition)
	if err != nil {
		return fmt.Errorf("upsert bot %q: %w", b.Name, err)
	}
	now := s.now()
	err = s.tx(ctx, func(tx *Store) error {
		id, err := tx.upsertTarget(ctx, "bots", b.WorkspaceID, b.Name, b.ID)
		if err != nil {
			return err
		}
		if id == "" {
			if b.ID == "" {
				b.ID = uuid.NewString()
			}
			b.CreatedAt = now
			_, err = tx.exec(ctx, `INSERT INTO bots (id, workspace_id, name, definition, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?)`, b.ID, b.WorkspaceID, b.Name, def, micros(now), micros(now))
		} else {
			b.ID = id
			var created int64
			err = tx.writer.QueryRowContext(ctx, tx.d.rebind(`UPDATE bots SET name = ?, definition = ?, updated_at = ?
				WHERE id = ? RETURNING created_at`), b.Name, def, micros(now), id).Scan(&created)
			b.CreatedAt = fromMicros(created)
		}
		b.UpdatedAt = now
		return tx.d.mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("upsert bot %q: %w", b.Name, err)
	}
	return nil
}

const botCols = `id, workspace_id, name, definition, created_at, updated_at`

func scanBot(r scanner) (store.Bot, error) {
	var b store.Bot
	var def jsonCol
	var created, updated int64
	err := r.Scan(&b.ID, &b.WorkspaceID, &b.Name, &def, &created, &updated)
	b.Definition = []byte(def)
	b.CreatedAt, b.UpdatedAt = fromMicros(created), fromMicros(updated)
	return b, err
}

// GetBot returns one bot.
func (s *Store) GetBot(ctx context.Context, id string) (store.Bot, error) {
	return getOne(ctx, s, "get bot "+id, scanBot, `SELECT `+botCols+` FROM bots WHERE id = ?`, id)
}

// GetBotByName returns the workspace's bot of that name.
func (s *Store) GetBotByName(ctx context.Context, workspaceID, name string) (store.Bot, error) {
	return getOne(ctx, s, "get bot "+name, scanBot,
		`SELECT `+botCols+` FROM bots WHERE workspace_id = ? AND name = ?`, workspaceID, name)
}

// ListBots lists a workspace's bots by name.
func (s *Store) ListBots(ctx context.Context, workspaceID string) ([]store.Bot, error) {
	return list(ctx, s, "list bots", scanBot,
		`SELECT `+botCols+` FROM bots WHERE workspace_id = ? ORDER BY name`, workspaceID)
}

// UpsertChannel creates or updates the channel named (WorkspaceID, Name).
func (s *Store) UpsertChannel(ctx context.Context, c *store.Channel) error {
	cfg, err := rawJSON(c.Config)
	if err != nil {
		return fmt.Errorf("upsert channel %q: %w", c.Name, err)
	}
	now := s.now()
	err = s.tx(ctx, func(tx *Store) error {
		id, err := tx.upsertTarget(ctx, "channels", c.WorkspaceID, c.Name, c.ID)
		if err != nil {
			return err
		}
		if id == "" {
			if c.ID == "" {
				c.ID = uuid.NewString()
			}
			c.CreatedAt = now
			_, err = tx.exec(ctx, `INSERT INTO channels
				(id, workspace_id, bot_id, name, type, config, enabled, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				c.ID, c.WorkspaceID, c.BotID, c.Name, c.Type, cfg, c.Enabled, micros(now), micros(now))
		} else {
			c.ID = id
			var created int64
			err = tx.writer.QueryRowContext(ctx, tx.d.rebind(`UPDATE channels
				SET bot_id = ?, name = ?, type = ?, config = ?, enabled = ?, updated_at = ?
				WHERE id = ? RETURNING created_at`),
				c.BotID, c.Name, c.Type, cfg, c.Enabled, micros(now), id).Scan(&created)
			c.CreatedAt = fromMicros(created)
		}
		c.UpdatedAt = now
		return tx.d.mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("upsert channel %q: %w", c.Name, err)
	}
	return nil
}

const channelCols = `id, workspace_id, bot_id, name, type, config, enabled, created_at, updated_at`

func scanChannel(r scanner) (store.Channel, error) {
	var c store.Channel
	var cfg jsonCol
	var created, updated int64
	err := r.Scan(&c.ID, &c.WorkspaceID, &c.BotID, &c.Name, &c.Type, &cfg, &c.Enabled, &created, &updated)
	c.Config = []byte(cfg)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return c, err
}

// GetChannel returns one channel, without its secrets.
func (s *Store) GetChannel(ctx context.Context, id string) (store.Channel, error) {
	return getOne(ctx, s, "get channel "+id, scanChannel,
		`SELECT `+channelCols+` FROM channels WHERE id = ?`, id)
}

// ListChannels lists one workspace's channels, or all with "", by
// workspace and name.
func (s *Store) ListChannels(ctx context.Context, workspaceID string) ([]store.Channel, error) {
	return list(ctx, s, "list channels", scanChannel,
		`SELECT `+channelCols+` FROM channels WHERE ? = '' OR workspace_id = ? ORDER BY workspace_id, name`,
		workspaceID, workspaceID)
}

// SetChannelSecrets replaces the channel's secrets.
func (s *Store) SetChannelSecrets(ctx context.Context, channelID string, secrets map[string]string) error {
	doc, err := jsonMap(secrets)
	if err != nil {
		return fmt.Errorf("set channel secrets %s: %w", channelID, err)
	}
	_, err = s.exec(ctx, `INSERT INTO channel_secrets (channel_id, secrets) VALUES (?, ?)
		ON CONFLICT (channel_id) DO UPDATE SET secrets = excluded.secrets`, channelID, doc)
	if err != nil {
		return fmt.Errorf("set channel secrets %s: %w", channelID, err)
	}
	return nil
}

// GetChannelSecrets returns the channel's secrets, empty when none were set.
func (s *Store) GetChannelSecrets(ctx context.Context, channelID string) (map[string]string, error) {
	doc, err := getOne(ctx, s, "get channel secrets "+channelID, func(r scanner) (jsonCol, error) {
		var doc jsonCol
		return doc, r.Scan(&doc)
	}, `SELECT s.secrets FROM channels c LEFT JOIN channel_secrets s ON s.channel_id = c.id WHERE c.id = ?`, channelID)
	if err != nil {
		return nil, err
	}
	secrets := map[string]string{}
	if err := doc.into(&secrets); err != nil {
		return nil, fmt.Errorf("get channel secrets %s: %w", channelID, err)
	}
	return secrets, nil
}

// CreateAPIKey stores a key; an empty ID is generated.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	if k.ID == "" {
		k.ID = uuid.NewString()
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	channel := sql.NullString{String: k.ChannelID, Valid: k.ChannelID != ""}
	_, err := s.exec(ctx, `INSERT INTO api_keys
		(id, workspace_id, scope, channel_id, name, hash, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.WorkspaceID, string(k.Scope), channel, k.Name, k.Hash, micros(k.CreatedAt), nullMicros(k.RevokedAt))
	if err != nil {
		return fmt.Errorf("create api key %q: %w", k.Name, err)
	}
	return nil
}

// GetAPIKeyByHash finds a non-revoked key.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	return getOne(ctx, s, "get api key", func(r scanner) (store.APIKey, error) {
		var k store.APIKey
		var scope string
		var channel sql.NullString
		var created int64
		var revoked sql.NullInt64
		err := r.Scan(&k.ID, &k.WorkspaceID, &scope, &channel, &k.Name, &k.Hash, &created, &revoked)
		k.Scope, k.ChannelID = store.Scope(scope), channel.String
		k.CreatedAt, k.RevokedAt = fromMicros(created), fromNullMicros(revoked)
		return k, err
	}, `SELECT id, workspace_id, scope, channel_id, name, hash, created_at, revoked_at
		FROM api_keys WHERE hash = ? AND revoked_at IS NULL`, hash)
}

// RevokeAPIKey revokes a key of the workspace; revoking twice keeps the
// first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, workspaceID, id string) error {
	n, err := s.execCount(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?)
		WHERE workspace_id = ? AND id = ?`, micros(s.now()), workspaceID, id)
	return notFoundIfNone(n, err, "revoke api key "+id)
}
