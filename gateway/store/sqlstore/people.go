package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

const personCols = `workspace_id, id, email, attributes, created_at, updated_at, cio_id`

func scanPerson(r scanner) (store.Person, error) {
	var p store.Person
	var attrs jsonCol
	var created, updated int64
	// NULL only inside a rename's transaction.
	var cio sql.NullString
	if err := r.Scan(&p.WorkspaceID, &p.ID, &p.Email, &attrs, &created, &updated, &cio); err != nil {
		return p, err
	}
	p.CreatedAt, p.UpdatedAt, p.CioID = fromMicros(created), fromMicros(updated), cio.String
	p.Attributes = map[string]any{}
	return p, attrs.into(&p.Attributes)
}

// newCioID returns a random cio id: 16 hex digits, like the migration's.
func newCioID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (it crashes the program instead)
	return hex.EncodeToString(b)
}

// UpsertPerson creates the person (ID generated when empty) or merges
// p.Attributes into theirs, a nil value deleting the attribute. The merge is
// done here rather than in SQL so both engines behave identically.
func (s *Store) UpsertPerson(ctx context.Context, p store.Person) (store.Person, error) {
	if p.ID == "" {
		p.ID = uuid.NewString()
	}
	email := strings.ToLower(strings.TrimSpace(p.Email))
	now := micros(s.now())
	var out store.Person
	err := s.tx(ctx, func(tx *Store) error {
		// Insert-if-missing first, so that the row exists and can be
		// locked even when another node creates the same person now.
		if _, err := tx.exec(ctx, `INSERT INTO people (`+personCols+`) VALUES (?, ?, '', '{}', ?, ?, ?)
			ON CONFLICT (workspace_id, id) DO NOTHING`, p.WorkspaceID, p.ID, now, now, newCioID()); err != nil {
			return err
		}
		cur, err := getOne(ctx, tx, "read", scanPerson, `SELECT `+personCols+` FROM people
			WHERE workspace_id = ? AND id = ?`+tx.d.lockForUpdate(), p.WorkspaceID, p.ID)
		if err != nil {
			return err
		}
		attrs := maps.Clone(cur.Attributes)
		if attrs == nil {
			attrs = map[string]any{}
		}
		for k, v := range p.Attributes {
			if v == nil {
				delete(attrs, k)
			} else {
				attrs[k] = v
			}
		}
		if email != "" {
			cur.Email = email
		}
		doc, err := toJSON(attrs)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE people SET email = ?, attributes = ?, updated_at = ?
			WHERE workspace_id = ? AND id = ?`, cur.Email, doc, now, p.WorkspaceID, p.ID); err != nil {
			return err
		}
		cur.Attributes, cur.UpdatedAt = attrs, fromMicros(now)
		out = cur
		return nil
	})
	if err != nil {
		return store.Person{}, fmt.Errorf("upsert person %s: %w", p.ID, err)
	}
	return out, nil
}

// GetPerson returns one person of the workspace.
func (s *Store) GetPerson(ctx context.Context, workspaceID, id string) (store.Person, error) {
	return getOne(ctx, s, "get person "+id, scanPerson,
		`SELECT `+personCols+` FROM people WHERE workspace_id = ? AND id = ?`, workspaceID, id)
}

// GetPersonByCioID returns the workspace's person with that cio id.
func (s *Store) GetPersonByCioID(ctx context.Context, workspaceID, cioID string) (store.Person, error) {
	return getOne(ctx, s, "get person cio_"+cioID, scanPerson,
		`SELECT `+personCols+` FROM people WHERE workspace_id = ? AND cio_id = ?`, workspaceID, cioID)
}

// RenamePerson gives a person a new id. The key cannot be updated in
// place (the foreign keys to it do not cascade updates), so a copy under
// the new id takes over the rows that refer to the person, then the old
// row goes; the cio id is moved last, as it is unique.
func (s *Store) RenamePerson(ctx context.Context, workspaceID, id, newID string) error {
	err := s.tx(ctx, func(tx *Store) error {
		cur, err := getOne(ctx, tx, "read", scanPerson, `SELECT `+personCols+` FROM people
			WHERE workspace_id = ? AND id = ?`+tx.d.lockForUpdate(), workspaceID, id)
		if err != nil {
			return err
		}
		if _, err := tx.GetPerson(ctx, workspaceID, newID); err == nil {
			return fmt.Errorf("id %s is taken: %w", newID, store.ErrConflict)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		steps := []struct {
			query string
			args  []any
		}{
			{`UPDATE people SET cio_id = NULL WHERE workspace_id = ? AND id = ?`, []any{workspaceID, id}},
			{`INSERT INTO people (` + personCols + `) SELECT workspace_id, ?, email, attributes, created_at, ?, NULL
				FROM people WHERE workspace_id = ? AND id = ?`, []any{newID, micros(s.now()), workspaceID, id}},
			{`UPDATE identities SET person_id = ? WHERE workspace_id = ? AND person_id = ?`, []any{newID, workspaceID, id}},
			{`UPDATE segment_members SET person_id = ? WHERE workspace_id = ? AND person_id = ?`, []any{newID, workspaceID, id}},
			{`UPDATE person_events SET person_id = ? WHERE workspace_id = ? AND person_id = ?`, []any{newID, workspaceID, id}},
			{`DELETE FROM people WHERE workspace_id = ? AND id = ?`, []any{workspaceID, id}},
			{`UPDATE people SET cio_id = ? WHERE workspace_id = ? AND id = ?`, []any{cur.CioID, workspaceID, newID}},
		}
		for _, st := range steps {
			if _, err := tx.exec(ctx, st.query, st.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rename person %s: %w", id, err)
	}
	return nil
}

// FindPeopleByEmail returns the workspace's people with that email, oldest
// first.
func (s *Store) FindPeopleByEmail(ctx context.Context, workspaceID, email string) ([]store.Person, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, nil
	}
	return list(ctx, s, "find people by email", scanPerson, `SELECT `+personCols+` FROM people
		WHERE workspace_id = ? AND email = ? AND email <> '' ORDER BY created_at, id`, workspaceID, email)
}

// FindPeopleByPhone returns every person whose phone attribute is phone,
// oldest first, through the people_phone index.
func (s *Store) FindPeopleByPhone(ctx context.Context, workspaceID, phone string) ([]store.Person, error) {
	if phone == "" {
		return nil, nil
	}
	return list(ctx, s, "find people by phone", scanPerson, `SELECT `+personCols+` FROM people
		WHERE workspace_id = ? AND `+s.d.phoneAttr()+` = ? ORDER BY created_at, id`, workspaceID, phone)
}

// DeletePerson deletes the person and erases what is recorded about them
// (see store.People), in one transaction.
func (s *Store) DeletePerson(ctx context.Context, workspaceID, id string) error {
	return s.tx(ctx, func(tx *Store) error {
		// The outbox rows are found through the identities, which the
		// person's deletion removes: first.
		for _, q := range []string{
			`DELETE FROM webchat_messages WHERE (channel_id, user_id) IN (
				SELECT channel_id, address FROM identities WHERE workspace_id = ? AND person_id = ?)`,
			// person_id <> '' lets the partial index deliveries_person
			// serve it (a bound id does not imply it).
			`DELETE FROM deliveries WHERE workspace_id = ? AND person_id = ? AND person_id <> ''`,
			// Their messages go with them (ON DELETE CASCADE).
			`DELETE FROM conversations WHERE workspace_id = ? AND person_id = ?`,
		} {
			if _, err := tx.exec(ctx, q, workspaceID, id); err != nil {
				return fmt.Errorf("delete person %s: erase: %w", id, err)
			}
		}
		// Identities, memberships and events go with the person.
		n, err := tx.execCount(ctx, `DELETE FROM people WHERE workspace_id = ? AND id = ?`, workspaceID, id)
		return notFoundIfNone(n, err, "delete person "+id)
	})
}

// LinkIdentity attaches (ChannelID, Address) to the person. The person and
// the channel must both belong to id.WorkspaceID, or it fails with
// store.ErrNotFound.
func (s *Store) LinkIdentity(ctx context.Context, id store.Identity) error {
	_, err := s.exec(ctx, `INSERT INTO identities (channel_id, address, workspace_id, person_id) VALUES (?, ?, ?, ?)
		ON CONFLICT (channel_id, address) DO UPDATE
		SET workspace_id = excluded.workspace_id, person_id = excluded.person_id`,
		id.ChannelID, id.Address, id.WorkspaceID, id.PersonID)
	if err != nil {
		return fmt.Errorf("link identity %s/%s: %w", id.ChannelID, id.Address, err)
	}
	return nil
}

// PersonByIdentity finds who owns an address on a channel.
func (s *Store) PersonByIdentity(ctx context.Context, channelID, address string) (store.Person, error) {
	return getOne(ctx, s, "person by identity", scanPerson, `SELECT p.workspace_id, p.id, p.email, p.attributes,
		p.created_at, p.updated_at, p.cio_id FROM identities i
		JOIN people p ON p.workspace_id = i.workspace_id AND p.id = i.person_id
		WHERE i.channel_id = ? AND i.address = ?`, channelID, address)
}

// ListIdentities lists a person's identities by channel and address.
func (s *Store) ListIdentities(ctx context.Context, workspaceID, personID string) ([]store.Identity, error) {
	return list(ctx, s, "list identities", func(r scanner) (store.Identity, error) {
		var i store.Identity
		return i, r.Scan(&i.WorkspaceID, &i.PersonID, &i.ChannelID, &i.Address)
	}, `SELECT workspace_id, person_id, channel_id, address FROM identities
		WHERE workspace_id = ? AND person_id = ? ORDER BY channel_id, address`, workspaceID, personID)
}
