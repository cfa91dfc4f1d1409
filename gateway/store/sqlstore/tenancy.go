package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/secrets"
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
		if id == "" && b.ID == "" {
			b.ID = uuid.NewString()
		} else if id != "" {
			b.ID = id
		}
		sealed, err := tx.sealBotDefinition(b.ID, def)
		if err != nil {
			return fmt.Errorf("call.secret: %w", err)
		}
		if id == "" {
			b.CreatedAt = now
			_, err = tx.exec(ctx, `INSERT INTO bots (id, workspace_id, name, definition, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?)`, b.ID, b.WorkspaceID, b.Name, sealed, micros(now), micros(now))
		} else {
			var created int64
			err = tx.writer.QueryRowContext(ctx, tx.d.rebind(`UPDATE bots SET name = ?, definition = ?, updated_at = ?
				WHERE id = ? RETURNING created_at`), b.Name, sealed, micros(now), id).Scan(&created)
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

// scanOpenBot scans a bot and opens its sealed call secret.
func (s *Store) scanOpenBot(r scanner) (store.Bot, error) {
	b, err := scanBot(r)
	if err != nil {
		return b, err
	}
	return b, s.openBotDefinition(&b)
}

// GetBot returns one bot.
func (s *Store) GetBot(ctx context.Context, id string) (store.Bot, error) {
	return getOne(ctx, s, "get bot "+id, s.scanOpenBot, `SELECT `+botCols+` FROM bots WHERE id = ?`, id)
}

// GetBotByName returns the workspace's bot of that name.
func (s *Store) GetBotByName(ctx context.Context, workspaceID, name string) (store.Bot, error) {
	return getOne(ctx, s, "get bot "+name, s.scanOpenBot,
		`SELECT `+botCols+` FROM bots WHERE workspace_id = ? AND name = ?`, workspaceID, name)
}

// ListBots lists a workspace's bots by name.
func (s *Store) ListBots(ctx context.Context, workspaceID string) ([]store.Bot, error) {
	return list(ctx, s, "list bots", s.scanOpenBot,
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

// SetChannelSecrets replaces the channel's secrets, sealed.
func (s *Store) SetChannelSecrets(ctx context.Context, channelID string, values map[string]string) error {
	doc, err := jsonMap(values)
	if err != nil {
		return fmt.Errorf("set channel secrets %s: %w", channelID, err)
	}
	sealed, err := s.keys.Seal([]byte(doc), channelSecretsContext(channelID))
	if err != nil {
		return fmt.Errorf("set channel secrets %s: %w", channelID, err)
	}
	_, err = s.exec(ctx, `INSERT INTO channel_secrets (channel_id, secrets) VALUES (?, ?)
		ON CONFLICT (channel_id) DO UPDATE SET secrets = excluded.secrets`, channelID, sealed)
	if err != nil {
		return fmt.Errorf("set channel secrets %s: %w", channelID, err)
	}
	return nil
}

// channelSecretsContext binds a channel's sealed secrets to its row.
func channelSecretsContext(channelID string) string { return "channel_secrets:" + channelID }

// GetChannelSecrets returns the channel's secrets, empty when none were set.
func (s *Store) GetChannelSecrets(ctx context.Context, channelID string) (map[string]string, error) {
	stored, err := getOne(ctx, s, "get channel secrets "+channelID, func(r scanner) (sql.NullString, error) {
		var v sql.NullString
		return v, r.Scan(&v)
	}, `SELECT s.secrets FROM channels c LEFT JOIN channel_secrets s ON s.channel_id = c.id WHERE c.id = ?`, channelID)
	if err != nil {
		return nil, err
	}
	doc, err := s.openChannelSecrets(channelID, stored.String)
	if err != nil {
		return nil, fmt.Errorf("get channel secrets %s: %w", channelID, err)
	}
	values := map[string]string{}
	if err := jsonCol(doc).into(&values); err != nil {
		return nil, fmt.Errorf("get channel secrets %s: %w", channelID, err)
	}
	return values, nil
}

// openChannelSecrets returns the JSON document of a stored channel_secrets
// value: opened when sealed, as it is when plaintext from before sealing.
func (s *Store) openChannelSecrets(channelID, stored string) ([]byte, error) {
	if !secrets.IsSealed(stored) {
		return []byte(stored), nil
	}
	return s.keys.Open(stored, channelSecretsContext(channelID))
}

// botSecretContext binds a bot's sealed call.secret to its row.
func botSecretContext(botID string) string { return "bots.call_secret:" + botID }

// sealBotDefinition returns the stored form of a bot document: its
// call.secret, if any, sealed. This is the one place the store knows the
// bot document's shape; everything else about it is opaque JSON.
func (s *Store) sealBotDefinition(botID, def string) (string, error) {
	out, _, err := editCallSecret([]byte(def), func(v string) (string, error) {
		return s.keys.Seal([]byte(v), botSecretContext(botID))
	})
	return string(out), err
}

// openBotDefinition is the inverse of sealBotDefinition; a plaintext
// call.secret (from before sealing) is returned as it is.
func (s *Store) openBotDefinition(b *store.Bot) error {
	if !bytes.Contains(b.Definition, []byte(`"sb1:`)) {
		return nil // nothing sealed: skip decoding the document
	}
	out, _, err := editCallSecret(b.Definition, func(v string) (string, error) {
		if !secrets.IsSealed(v) {
			return v, nil
		}
		plain, err := s.keys.Open(v, botSecretContext(b.ID))
		return string(plain), err
	})
	if err != nil {
		return fmt.Errorf("bot %s call.secret: %w", b.ID, err)
	}
	b.Definition = out
	return nil
}

// editCallSecret replaces a JSON bot document's non-empty call.secret with
// edit's result; changed says whether the document has one. A document
// without it is returned unchanged.
func editCallSecret(def []byte, edit func(string) (string, error)) (out []byte, changed bool, err error) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(def, &doc) != nil {
		return def, false, nil // not an object: no call.secret
	}
	var call map[string]json.RawMessage
	var secret string
	if raw, ok := doc["call"]; !ok || json.Unmarshal(raw, &call) != nil {
		return def, false, nil
	}
	if raw, ok := call["secret"]; !ok || json.Unmarshal(raw, &secret) != nil || secret == "" {
		return def, false, nil
	}
	v, err := edit(secret)
	if err != nil {
		return nil, false, err
	}
	if call["secret"], err = json.Marshal(v); err != nil {
		return nil, false, err
	}
	if doc["call"], err = json.Marshal(call); err != nil {
		return nil, false, err
	}
	out, err = json.Marshal(doc)
	return out, true, err
}

// ResealSecrets seals every channel secret and bot call secret under the
// current key in one transaction; rows are locked while they are rewritten,
// so a concurrent apply is neither lost nor overwritten.
func (s *Store) ResealSecrets(ctx context.Context, plaintextOnly bool) (store.ResealReport, error) {
	var rep store.ResealReport
	err := s.tx(ctx, func(tx *Store) error {
		rep = store.ResealReport{}
		return errors.Join(tx.resealChannels(ctx, plaintextOnly, &rep), tx.resealBots(ctx, plaintextOnly, &rep))
	})
	if err != nil {
		return store.ResealReport{}, fmt.Errorf("reseal secrets: %w", err)
	}
	return rep, nil
}

type storedRow struct{ id, value string }

func scanStoredRow(r scanner) (storedRow, error) {
	var v storedRow
	var value jsonCol
	err := r.Scan(&v.id, &value)
	v.value = string(value)
	return v, err
}

// reseal decides what ResealSecrets does with one stored value: whether it
// is rewritten, and counts it.
func (s *Store) reseal(stored string, plaintextOnly bool, rep *store.ResealReport) bool {
	switch {
	case s.keys.SealedUnderCurrent(stored):
		rep.Current++
		return false
	case secrets.IsSealed(stored):
		return !plaintextOnly
	}
	rep.Plaintext++
	return true
}

func (s *Store) resealChannels(ctx context.Context, plaintextOnly bool, rep *store.ResealReport) error {
	rows, err := s.queryWrite(ctx, false, `SELECT channel_id, secrets FROM channel_secrets ORDER BY channel_id`+s.d.lockForUpdate())
	if err != nil {
		return err
	}
	all, err := collect(rows, scanStoredRow)
	if err != nil {
		return err
	}
	for _, r := range all {
		if !s.reseal(r.value, plaintextOnly, rep) {
			continue
		}
		doc, err := s.openChannelSecrets(r.id, r.value)
		if err != nil {
			return fmt.Errorf("channel %s secrets: %w", r.id, err)
		}
		sealed, err := s.keys.Seal(doc, channelSecretsContext(r.id))
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, `UPDATE channel_secrets SET secrets = ? WHERE channel_id = ?`, sealed, r.id); err != nil {
			return err
		}
		rep.ChannelSecrets++
	}
	return nil
}

func (s *Store) resealBots(ctx context.Context, plaintextOnly bool, rep *store.ResealReport) error {
	rows, err := s.queryWrite(ctx, false, `SELECT id, definition FROM bots ORDER BY id`+s.d.lockForUpdate())
	if err != nil {
		return err
	}
	all, err := collect(rows, scanStoredRow)
	if err != nil {
		return err
	}
	for _, r := range all {
		// Reseal opens the secret under whichever key sealed it and seals
		// it under the current one; updated_at stays, since the bot did
		// not change.
		out, changed, err := editCallSecret([]byte(r.value), func(v string) (string, error) {
			if !s.reseal(v, plaintextOnly, rep) {
				return v, errUnchanged
			}
			plain := []byte(v)
			if secrets.IsSealed(v) {
				var err error
				if plain, err = s.keys.Open(v, botSecretContext(r.id)); err != nil {
					return "", err
				}
			}
			return s.keys.Seal(plain, botSecretContext(r.id))
		})
		if errors.Is(err, errUnchanged) || !changed {
			continue
		}
		if err != nil {
			return fmt.Errorf("bot %s call.secret: %w", r.id, err)
		}
		if _, err := s.exec(ctx, `UPDATE bots SET definition = ? WHERE id = ?`, string(out), r.id); err != nil {
			return err
		}
		rep.BotSecrets++
	}
	return nil
}

// errUnchanged stops editCallSecret when a secret is left as it is.
var errUnchanged = errors.New("unchanged")

const apiKeyCols = `id, workspace_id, scope, channel_id, name, hash, created_at, revoked_at, last_used_at, expires_at`

func scanAPIKey(r scanner) (store.APIKey, error) {
	var k store.APIKey
	var scope string
	var channel sql.NullString
	var created int64
	var revoked, used, expires sql.NullInt64
	err := r.Scan(&k.ID, &k.WorkspaceID, &scope, &channel, &k.Name, &k.Hash, &created, &revoked, &used, &expires)
	k.Scope, k.ChannelID = store.Scope(scope), channel.String
	k.CreatedAt, k.RevokedAt = fromMicros(created), fromNullMicros(revoked)
	k.LastUsedAt, k.ExpiresAt = fromNullMicros(used), fromNullMicros(expires)
	return k, err
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
	_, err := s.exec(ctx, `INSERT INTO api_keys (`+apiKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.WorkspaceID, string(k.Scope), channel, k.Name, k.Hash, micros(k.CreatedAt), nullMicros(k.RevokedAt),
		nullMicros(k.LastUsedAt), nullMicros(k.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create api key %q: %w", k.Name, err)
	}
	return nil
}

// GetAPIKeyByHash finds a non-revoked key.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	return getOne(ctx, s, "get api key", scanAPIKey,
		`SELECT `+apiKeyCols+` FROM api_keys WHERE hash = ? AND revoked_at IS NULL`, hash)
}

// GetAPIKey returns a key by id, revoked or not.
func (s *Store) GetAPIKey(ctx context.Context, id string) (store.APIKey, error) {
	return getOne(ctx, s, "get api key "+id, scanAPIKey, `SELECT `+apiKeyCols+` FROM api_keys WHERE id = ?`, id)
}

// ListAPIKeys lists a workspace's keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, workspaceID string) ([]store.APIKey, error) {
	return list(ctx, s, "list api keys", scanAPIKey,
		`SELECT `+apiKeyCols+` FROM api_keys WHERE workspace_id = ? ORDER BY created_at, id`, workspaceID)
}

// RevokeAPIKey revokes a key of the workspace; revoking twice keeps the
// first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, workspaceID, id string) error {
	n, err := s.execCount(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?)
		WHERE workspace_id = ? AND id = ?`, micros(s.now()), workspaceID, id)
	return notFoundIfNone(n, err, "revoke api key "+id)
}

// ExpireAPIKey makes a key of the workspace stop working at at, unless it
// expires earlier already.
func (s *Store) ExpireAPIKey(ctx context.Context, workspaceID, id string, at time.Time) error {
	n, err := s.execCount(ctx, `UPDATE api_keys SET expires_at = CASE
			WHEN expires_at IS NOT NULL AND expires_at < ? THEN expires_at ELSE ? END
		WHERE workspace_id = ? AND id = ?`, micros(at), micros(at), workspaceID, id)
	return notFoundIfNone(n, err, "expire api key "+id)
}

// RecordAPIKeyUse records a use of the key unless one after since is
// recorded: the condition is in the UPDATE, so nodes racing on one key write
// once between them.
func (s *Store) RecordAPIKeyUse(ctx context.Context, id string, at, since time.Time) error {
	_, err := s.exec(ctx, `UPDATE api_keys SET last_used_at = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, micros(at), id, micros(since))
	if err != nil {
		return fmt.Errorf("record api key use %s: %w", id, err)
	}
	return nil
}
