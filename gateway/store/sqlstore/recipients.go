package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Audience filters compile to one SQL condition on people p, so the
// database walks the audience in id order a page at a time and nothing but
// one page is ever in memory. Both engines must return identical sets; the
// JSON comparison is the one place they differ (filterDialect).

// filterDialect writes attribute conditions. Each returns a condition that
// is true or false, never NULL, so that NOT keeps its meaning for people
// without the attribute.
type filterDialect interface {
	attrExists(c *filterSQL, field string)
	attrEq(c *filterSQL, field string, value any) error
}

// SQLite keeps attributes as JSON text: json_type tells the JSON type
// (true, false, integer, real, text, null), so "1" never equals 1 and true
// never equals 1, and numbers compare as numbers (1 = 1.0).
func (sqliteDialect) attrExists(c *filterSQL, field string) {
	c.write(`COALESCE(json_type(p.attributes, ?) <> 'null', FALSE)`, sqlitePath(field))
}

func (sqliteDialect) attrEq(c *filterSQL, field string, value any) error {
	path := sqlitePath(field)
	switch v := value.(type) {
	case bool:
		want := "false"
		if v {
			want = "true"
		}
		c.write(`COALESCE(json_type(p.attributes, ?) = ?, FALSE)`, path, want)
	case float64:
		c.write(`COALESCE(json_type(p.attributes, ?) IN ('integer', 'real') AND json_extract(p.attributes, ?) = ?, FALSE)`,
			path, path, v)
	case string:
		c.write(`COALESCE(json_type(p.attributes, ?) = 'text' AND json_extract(p.attributes, ?) = ?, FALSE)`,
			path, path, v)
	case nil:
		c.write(`COALESCE(json_type(p.attributes, ?) = 'null', FALSE)`, path)
	default:
		return fmt.Errorf("%w: attribute %q: value must be a JSON scalar", store.ErrInvalidFilter, field)
	}
	return nil
}

// sqlitePath addresses a top-level key; package audience refuses field
// names holding a double quote or a backslash, which a quoted label cannot
// carry.
func sqlitePath(field string) string { return `$."` + field + `"` }

// PostgreSQL keeps attributes as JSONB, whose equality is by type and value
// with numbers compared numerically: the same rules as above.
func (postgresDialect) attrExists(c *filterSQL, field string) {
	c.write(`COALESCE(jsonb_typeof(p.attributes -> CAST(? AS TEXT)) <> 'null', FALSE)`, field)
}

func (postgresDialect) attrEq(c *filterSQL, field string, value any) error {
	switch value.(type) {
	case bool, float64, string, nil:
	default:
		return fmt.Errorf("%w: attribute %q: value must be a JSON scalar", store.ErrInvalidFilter, field)
	}
	doc, err := json.Marshal(value)
	if err != nil {
		return err
	}
	c.write(`COALESCE((p.attributes -> CAST(? AS TEXT)) = CAST(? AS JSONB), FALSE)`, field, string(doc))
	return nil
}

// filterSQL compiles a filter. Segments defined by filters are expanded in
// place; a segment that includes itself, directly or not, is an error.
// The compiled size is bounded whatever the callers checked: package
// audience refuses filters over its configured limits with a message for
// the caller, and these hard limits keep every filter inside what both
// engines can take (SQLite's 32,766 variables and expression depth of
// 1,000), so no request can make the store build unbounded SQL.
type filterSQL struct {
	s          *Store
	workspace  string
	sb         strings.Builder
	args       []any
	expanding  map[int64]bool
	conditions int64
	depth      int64
	// outer is the outermost segment being expanded, which errors name.
	outer int64
}

// Hard limits of a compiled filter: at most 3 variables a condition, and
// groups compile as balanced trees (depth log2 of their width), so these
// stay well inside both engines' limits.
const (
	maxCompiledConditions = 5_000
	maxCompiledDepth      = 40
)

func (c *filterSQL) write(sql string, args ...any) {
	c.sb.WriteString(sql)
	c.args = append(c.args, args...)
}

// compileFilter returns the condition for f (nil: everyone) and its args.
func (s *Store) compileFilter(ctx context.Context, workspaceID string, f *store.Filter) (string, []any, error) {
	if f == nil {
		return "TRUE", nil, nil
	}
	c := &filterSQL{s: s, workspace: workspaceID, expanding: map[int64]bool{}}
	if err := c.node(ctx, f); err != nil {
		return "", nil, err
	}
	return c.sb.String(), c.args, nil
}

func (c *filterSQL) node(ctx context.Context, f *store.Filter) error {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxCompiledDepth {
		return &store.FilterTooLargeError{Segment: c.outer, Levels: true, Got: c.depth, AtLeast: true, Limit: maxCompiledDepth}
	}
	switch {
	case len(f.And) > 0:
		return c.group(ctx, f.And, " AND ")
	case len(f.Or) > 0:
		return c.group(ctx, f.Or, " OR ")
	case f.Not != nil:
		c.write("NOT (")
		if err := c.node(ctx, f.Not); err != nil {
			return err
		}
		c.write(")")
		return nil
	case f.Segment != nil:
		return c.segment(ctx, f.Segment.ID)
	case f.Attribute != nil:
		return c.attribute(f.Attribute)
	}
	return fmt.Errorf("%w: empty filter", store.ErrInvalidFilter)
}

// group writes fs joined by op as a balanced tree, ((a op b) op (c op d)):
// SQLite parses a flat chain into a tree as deep as the chain is long and
// refuses one deeper than 1,000.
func (c *filterSQL) group(ctx context.Context, fs []store.Filter, op string) error {
	if len(fs) == 1 {
		return c.node(ctx, &fs[0])
	}
	mid := len(fs) / 2
	c.write("(")
	if err := c.group(ctx, fs[:mid], op); err != nil {
		return err
	}
	c.write(op)
	if err := c.group(ctx, fs[mid:], op); err != nil {
		return err
	}
	c.write(")")
	return nil
}

// condition counts one leaf against the hard limit.
func (c *filterSQL) condition() error {
	c.conditions++
	if c.conditions > maxCompiledConditions {
		return &store.FilterTooLargeError{Segment: c.outer, Got: maxCompiledConditions, AtLeast: true, Limit: maxCompiledConditions}
	}
	return nil
}

func (c *filterSQL) segment(ctx context.Context, id int64) error {
	sg, err := c.s.GetSegment(ctx, c.workspace, id)
	if err != nil {
		return err
	}
	if sg.Filter == nil {
		if err := c.condition(); err != nil {
			return err
		}
		c.write(`EXISTS (SELECT 1 FROM segment_members m WHERE m.segment_id = ? AND m.person_id = p.id
			AND m.workspace_id = p.workspace_id)`, id)
		return nil
	}
	if c.expanding[id] {
		return fmt.Errorf("%w: segment %d includes itself", store.ErrInvalidFilter, id)
	}
	c.expanding[id] = true
	defer delete(c.expanding, id)
	if len(c.expanding) == 1 {
		c.outer = id
		defer func() { c.outer = 0 }()
	}
	c.write("(")
	if err := c.node(ctx, sg.Filter); err != nil {
		if tl := (*store.FilterTooLargeError)(nil); errors.As(err, &tl) {
			return err // it names the segment already
		}
		return fmt.Errorf("segment %d: %w", id, err)
	}
	c.write(")")
	return nil
}

func (c *filterSQL) attribute(a *store.AttributeCond) error {
	if err := c.condition(); err != nil {
		return err
	}
	d, ok := c.s.d.(filterDialect)
	if !ok {
		return fmt.Errorf("%s store cannot evaluate filters", c.s.d.name())
	}
	switch a.Operator {
	case store.OpExists:
		d.attrExists(c, a.Field)
		return nil
	case store.OpEq:
		var v any
		dec := json.NewDecoder(bytes.NewReader(a.Value))
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%w: attribute %q: value: %w", store.ErrInvalidFilter, a.Field, err)
		}
		return d.attrEq(c, a.Field, v)
	}
	return fmt.Errorf("%w: attribute %q: unknown operator %q", store.ErrInvalidFilter, a.Field, a.Operator)
}

// ListRecipients returns one page of recipients with their addresses on
// q.Channels (the lowest address when a person has several on a channel).
func (s *Store) ListRecipients(ctx context.Context, q store.RecipientQuery) ([]store.Recipient, error) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT p.workspace_id, p.id, p.email, p.attributes, p.created_at, p.updated_at, p.cio_id`)
	for _, ch := range q.Channels {
		b.WriteString(`, COALESCE((SELECT MIN(i.address) FROM identities i WHERE i.workspace_id = p.workspace_id
			AND i.person_id = p.id AND i.channel_id = ?), '')`)
		args = append(args, ch)
	}
	b.WriteString(` FROM people p WHERE p.workspace_id = ?`)
	args = append(args, q.WorkspaceID)
	switch {
	case len(q.IDs) > 0:
		b.WriteString(` AND p.id IN (` + params(len(q.IDs)) + `)`)
		for _, id := range q.IDs {
			args = append(args, id)
		}
	case len(q.Emails) > 0:
		b.WriteString(` AND p.email IN (` + params(len(q.Emails)) + `)`)
		for _, e := range q.Emails {
			args = append(args, strings.ToLower(strings.TrimSpace(e)))
		}
	default:
		cond, fargs, err := s.compileFilter(ctx, q.WorkspaceID, q.Filter)
		if err != nil {
			return nil, fmt.Errorf("list recipients: %w", err)
		}
		b.WriteString(` AND p.id > ? AND ` + cond + ` ORDER BY p.id LIMIT ?`)
		args = append(args, q.After)
		args = append(args, fargs...)
		args = append(args, limitOrDefault(q.Limit))
	}
	n := len(q.Channels)
	return list(ctx, s, "list recipients", func(r scanner) (store.Recipient, error) {
		var rc store.Recipient
		var attrs jsonCol
		var created, updated int64
		var cio sql.NullString
		rc.Addresses = make([]string, n)
		dest := []any{&rc.Person.WorkspaceID, &rc.Person.ID, &rc.Person.Email, &attrs, &created, &updated, &cio}
		for i := range rc.Addresses {
			dest = append(dest, &rc.Addresses[i])
		}
		if err := r.Scan(dest...); err != nil {
			return rc, err
		}
		rc.Person.CreatedAt, rc.Person.UpdatedAt, rc.Person.CioID = fromMicros(created), fromMicros(updated), cio.String
		rc.Person.Attributes = map[string]any{}
		return rc, attrs.into(&rc.Person.Attributes)
	}, b.String(), args...)
}

// CountRecipients counts the people f matches.
func (s *Store) CountRecipients(ctx context.Context, workspaceID string, f *store.Filter) (int64, error) {
	cond, args, err := s.compileFilter(ctx, workspaceID, f)
	if err != nil {
		return 0, fmt.Errorf("count recipients: %w", err)
	}
	var n int64
	err = s.reader.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM people p WHERE p.workspace_id = ? AND `+cond),
		append([]any{workspaceID}, args...)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count recipients: %w", s.d.mapErr(err))
	}
	return n, nil
}

// actionCase is a SQL expression giving the action index of a trigger's
// delivery d from its idempotency key: the key of a message action, or the
// key the conversation engine derives from a flow action's event key (see
// store.TriggerKeyPrefix).
func actionCase(actions int) string {
	if actions <= 0 {
		return "-1"
	}
	var b strings.Builder
	b.WriteString("CASE")
	for i := range actions {
		fmt.Fprintf(&b, ` WHEN d.idempotency_key LIKE ('trigger:' || d.source_id || ':%d:%%')
			OR d.idempotency_key LIKE ('conversation:trigger:' || d.source_id || ':%d:%%') THEN %d`, i, i, i)
	}
	b.WriteString(" ELSE -1 END")
	return b.String()
}

// CountTriggerDeliveries counts deliveries by trigger, action, status and
// reason; the deliveries_source index narrows the scan to the triggers.
func (s *Store) CountTriggerDeliveries(ctx context.Context, triggerIDs []int64, actions int) ([]store.DeliveryCount, error) {
	if len(triggerIDs) == 0 {
		return nil, nil
	}
	return list(ctx, s, "count trigger deliveries", func(r scanner) (store.DeliveryCount, error) {
		var c store.DeliveryCount
		var status string
		err := r.Scan(&c.TriggerID, &c.Action, &status, &c.Reason, &c.N)
		c.Status = store.DeliveryStatus(status)
		return c, err
	}, `SELECT CAST(d.source_id AS BIGINT), `+actionCase(actions)+`, d.status, d.reason, COUNT(*)
		FROM deliveries d WHERE d.source_kind = 'trigger' AND d.source_id IN (`+params(len(triggerIDs))+`)
		GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`, idStrings(triggerIDs)...)
}

// CountConversions counts people who met the goal after a trigger's
// delivery reached them, per action and in all (Action -1). A reply is an
// inbound message in a conversation on the delivery's channel and address;
// reaching a flow is a conversation there at that flow (case-insensitive,
// like flow ids) with its last interaction inside the window: the engine
// keeps the current flow only, so a flow passed through and left is not
// seen.
func (s *Store) CountConversions(ctx context.Context, workspaceID string, triggerIDs []int64, actions int, goal store.Goal, window time.Duration) ([]store.Conversion, error) {
	if len(triggerIDs) == 0 {
		return nil, nil
	}
	w := window.Microseconds()
	var cond string
	var args []any
	switch goal.Type {
	case store.GoalEvent:
		cond = `EXISTS (SELECT 1 FROM person_events e WHERE e.workspace_id = ? AND e.person_id = d.person_id
			AND e.name = ? AND e.at >= d.sent_at AND e.at <= d.sent_at + ?)`
		args = []any{workspaceID, goal.Event, w}
	case store.GoalReply:
		cond = `EXISTS (SELECT 1 FROM conversations c JOIN messages m ON m.conversation_id = c.id
			WHERE c.channel_id = d.channel_id AND c.user_id = d.recipient AND m.direction = 'in'
			AND m.created_at >= d.sent_at AND m.created_at <= d.sent_at + ?)`
		args = []any{w}
	case store.GoalFlow:
		cond = `EXISTS (SELECT 1 FROM conversations c WHERE c.channel_id = d.channel_id AND c.user_id = d.recipient
			AND LOWER(c.flow_id) = LOWER(?) AND c.last_interaction_at >= d.sent_at
			AND c.last_interaction_at <= d.sent_at + ?)`
		args = []any{goal.Flow, w}
	default:
		return nil, fmt.Errorf("count conversions: unknown goal type %q", goal.Type)
	}
	base := ` FROM deliveries d WHERE d.source_kind = 'trigger' AND d.source_id IN (` + params(len(triggerIDs)) + `)
		AND d.status IN ('sent', 'delivered') AND d.sent_at IS NOT NULL AND d.person_id <> '' AND ` + cond
	all := append(idStrings(triggerIDs), args...)
	scan := func(r scanner) (store.Conversion, error) {
		var c store.Conversion
		return c, r.Scan(&c.Action, &c.N)
	}
	per, err := list(ctx, s, "count conversions", scan,
		`SELECT `+actionCase(actions)+`, COUNT(DISTINCT d.person_id)`+base+` GROUP BY 1 ORDER BY 1`, all...)
	if err != nil {
		return nil, err
	}
	total, err := list(ctx, s, "count conversions", scan, `SELECT -1, COUNT(DISTINCT d.person_id)`+base, all...)
	if err != nil {
		return nil, err
	}
	return append(total, per...), nil
}
