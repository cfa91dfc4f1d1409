package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Rows per multi-row statement: large enough to amortize round trips and
// statement overhead, small enough for any engine's parameter limit.
const batchRows = 1000

// deliveryDataCols are the columns of a store.Delivery but its id.
const deliveryDataCols = `workspace_id, channel_id, recipient, reply_to, person_id, conversation_id, content,
	idempotency_key, status, reason, last_error, attempts, next_attempt_at, provider_id, source_kind, source_id,
	created_at, updated_at, sent_at, delivered_at`

const deliveryCols = `id, ` + deliveryDataCols

// deliveryInsertNCols counts the data columns plus pending and claimed_by,
// which EnqueueDeliveries writes too.
const deliveryInsertNCols = 22

func scanDelivery(r scanner) (store.Delivery, error) {
	var d store.Delivery
	var content jsonCol
	var status string
	var next, created, updated int64
	var sent, delivered sql.NullInt64
	if err := r.Scan(&d.ID, &d.WorkspaceID, &d.ChannelID, &d.Recipient, &d.ReplyTo, &d.PersonID,
		&d.ConversationID, &content, &d.IdempotencyKey, &status, &d.Reason, &d.LastError, &d.Attempts, &next,
		&d.ProviderID, &d.SourceKind, &d.SourceID, &created, &updated, &sent, &delivered); err != nil {
		return d, err
	}
	d.Status = store.DeliveryStatus(status)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromMicros(next), fromMicros(created), fromMicros(updated)
	d.SentAt, d.DeliveredAt = fromNullMicros(sent), fromNullMicros(delivered)
	return d, content.into(&d.Content)
}

// EnqueueDeliveries inserts deliveries in multi-row statements inside one
// transaction, skipping rows whose idempotency key exists. It fills in the
// IDs of inserted rows (skipped rows keep ID 0) and the defaults: an empty
// IdempotencyKey is generated, Status defaults to queued, NextAttemptAt to
// now.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []store.Delivery) (int, error) {
	_, n, err := s.enqueue(ctx, "", ds)
	return n, err
}

// EnqueueClaimedDeliveries inserts like EnqueueDeliveries and claims for
// node the queued deliveries that are next in line for their recipient.
// Which recipients have a pending delivery already is one indexed read per
// chunk and channel, inside the inserting transaction: on SQLite nothing
// can slip in between; on PostgreSQL a concurrent transaction enqueueing
// for the same recipient may be claimed beside it, which only reorders
// messages that were enqueued at the same time anyway.
func (s *Store) EnqueueClaimedDeliveries(ctx context.Context, node string, ds []store.Delivery) ([]store.Delivery, int, error) {
	if node == "" {
		return nil, 0, fmt.Errorf("enqueue claimed deliveries: no node")
	}
	return s.enqueue(ctx, node, ds)
}

func (s *Store) enqueue(ctx context.Context, node string, ds []store.Delivery) ([]store.Delivery, int, error) {
	if len(ds) == 0 {
		return nil, 0, nil
	}
	now := s.now()
	args := make([]any, 0, min(len(ds), batchRows)*deliveryInsertNCols)
	inserted := 0
	var claimed []store.Delivery
	err := s.tx(ctx, func(tx *Store) error {
		for start := 0; start < len(ds); start += batchRows {
			chunk := ds[start:min(start+batchRows, len(ds))]
			args = args[:0]
			for i := range chunk {
				d := &chunk[i]
				d.ID = 0
				if d.IdempotencyKey == "" {
					d.IdempotencyKey = uuid.NewString()
				}
				if d.Status == "" {
					d.Status = store.DeliveryQueued
				}
				if d.NextAttemptAt.IsZero() {
					d.NextAttemptAt = now
				}
				d.CreatedAt, d.UpdatedAt = now, now
			}
			var mine []int // indexes of chunk rows claimed for node
			if node != "" {
				var err error
				if mine, err = tx.nextInLine(ctx, chunk, now); err != nil {
					return err
				}
			}
			for i := range chunk {
				d := &chunk[i]
				content, err := toJSON(d.Content)
				if err != nil {
					return fmt.Errorf("delivery %s: %w", d.IdempotencyKey, err)
				}
				holder := ""
				if d.Status == store.DeliverySending {
					holder = node
				}
				args = append(args, d.WorkspaceID, d.ChannelID, d.Recipient, d.ReplyTo, d.PersonID,
					d.ConversationID, content, d.IdempotencyKey, string(d.Status), d.Reason, d.LastError,
					d.Attempts, micros(d.NextAttemptAt), d.ProviderID, d.SourceKind, d.SourceID,
					micros(now), micros(now), nullMicros(d.SentAt), nullMicros(d.DeliveredAt), pendingFlag(d.Status), holder)
			}
			rows, err := tx.queryWrite(ctx, len(chunk) == batchRows, enqueueQuery(len(chunk)), args...)
			if err != nil {
				return err
			}
			type idKey struct {
				id  int64
				key string
			}
			got, err := collect(rows, func(r scanner) (idKey, error) {
				var v idKey
				return v, r.Scan(&v.id, &v.key)
			})
			if err != nil {
				return err
			}
			// RETURNING has no promised order: match rows by key.
			index := make(map[string]int, len(chunk))
			for i := len(chunk) - 1; i >= 0; i-- {
				index[chunk[i].IdempotencyKey] = i
			}
			for _, g := range got {
				chunk[index[g.key]].ID = g.id
			}
			inserted += len(got)
			for _, i := range mine {
				// A row whose key existed was not inserted (ID 0), so
				// not claimed either.
				if chunk[i].ID != 0 {
					claimed = append(claimed, chunk[i])
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("enqueue deliveries: %w", err)
	}
	return claimed, inserted, nil
}

// nextInLine marks sending the queued rows of chunk that are first in line
// for their recipient: the first of the chunk for that (channel,
// recipient), with no pending delivery stored for it. It returns their
// indexes.
func (s *Store) nextInLine(ctx context.Context, chunk []store.Delivery, now time.Time) ([]int, error) {
	byChannel := map[string][]any{}
	var order []string
	for _, d := range chunk {
		if d.Status != store.DeliveryQueued || d.NextAttemptAt.After(now) {
			continue
		}
		if _, ok := byChannel[d.ChannelID]; !ok {
			order = append(order, d.ChannelID)
		}
		byChannel[d.ChannelID] = append(byChannel[d.ChannelID], d.Recipient)
	}
	type pair struct{ channel, recipient string }
	busy := map[pair]bool{}
	for _, ch := range order {
		recipients := byChannel[ch]
		rows, err := s.queryWrite(ctx, false, `SELECT DISTINCT recipient FROM deliveries
			WHERE channel_id = ? AND pending = 1 AND recipient IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(recipients)), ", ")+`)`,
			append([]any{ch}, recipients...)...)
		if err != nil {
			return nil, fmt.Errorf("pending recipients: %w", err)
		}
		got, err := collect(rows, func(r scanner) (string, error) {
			var v string
			return v, r.Scan(&v)
		})
		if err != nil {
			return nil, fmt.Errorf("pending recipients: %w", err)
		}
		for _, r := range got {
			busy[pair{ch, r}] = true
		}
	}
	var mine []int
	for i := range chunk {
		d := &chunk[i]
		p := pair{d.ChannelID, d.Recipient}
		if d.Status != store.DeliveryQueued || d.NextAttemptAt.After(now) || busy[p] {
			busy[p] = true // later rows of this recipient wait behind it
			continue
		}
		busy[p] = true
		d.Status = store.DeliverySending
		mine = append(mine, i)
	}
	return mine, nil
}

// pendingFlag is the pending column for a status.
func pendingFlag(s store.DeliveryStatus) int {
	switch s {
	case store.DeliveryQueued, store.DeliveryRetrying, store.DeliverySending:
		return 1
	}
	return 0
}

func enqueueQuery(rows int) string {
	return `INSERT INTO deliveries (` + deliveryDataCols + `, pending, claimed_by) VALUES ` + placeholders(rows, deliveryInsertNCols) +
		` ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key`
}

// ClaimDeliveries claims due deliveries for o.Node (earliest due first)
// and returns them in id order. Limit ≤ 0 means 100, a zero Now the
// store's clock. While claimed, NextAttemptAt is the claim time.
//
// The per-(channel, recipient) ordering is a probe for the recipient's
// oldest pending delivery (one descent of deliveries_pending_recipient per
// candidate, LIMIT 1), not an anti-join: whatever the planner believes
// about the table (never analyzed, or vacuumed empty after a drain), a
// claim touches the rows it scans in due order and one index entry per
// candidate, never candidates × pending rows (and on PostgreSQL the plan
// is pinned to the due index's order, see pinPlan, so a claim does
// not read every due row either). On PostgreSQL, rows another
// node is claiming right now are skipped, and their younger siblings wait
// behind them.
func (s *Store) ClaimDeliveries(ctx context.Context, o store.ClaimOptions) ([]store.Delivery, error) {
	if o.Now.IsZero() {
		o.Now = s.now()
	}
	ds, err := claimRows(ctx, s, scanDelivery, claimDeliveriesQuery(s.d, o.Limit),
		micros(o.Now), o.Node, micros(o.Now), micros(o.Now))
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	slices.SortFunc(ds, func(a, b store.Delivery) int { return cmp.Compare(a.ID, b.ID) })
	return ds, nil
}

func claimDeliveriesQuery(d dialect, limit int) string {
	return `WITH picked AS MATERIALIZED (
			SELECT d.id FROM deliveries d
			WHERE d.status IN ('queued', 'retrying') AND d.next_attempt_at <= ?
			AND d.id = (
				SELECT o.id FROM deliveries o
				WHERE o.channel_id = d.channel_id AND o.recipient = d.recipient AND o.pending = 1
				ORDER BY o.channel_id, o.recipient, o.id LIMIT 1)
			ORDER BY d.next_attempt_at, d.id` + claimLimit(limit) + d.lockSkipLocked() + `)
		UPDATE deliveries SET status = 'sending', claimed_by = ?, next_attempt_at = ?, updated_at = ?
		WHERE id IN (SELECT id FROM picked)
		RETURNING ` + deliveryCols
}

// completeNCols is the width of one row of CompleteDeliveries' VALUES list.
const completeNCols = 8

// completeRow casts every value so that PostgreSQL types the VALUES list
// without help from the first row; SQLite accepts the same casts.
const completeRow = `(CAST(? AS BIGINT), ?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS INTEGER), CAST(? AS BIGINT))`

// CompleteDeliveries records send outcomes in batched updates inside one
// transaction. Results for deliveries node no longer holds (released, or
// already final) are ignored. A zero At means now.
func (s *Store) CompleteDeliveries(ctx context.Context, node string, rs []store.DeliveryResult) error {
	if len(rs) == 0 {
		return nil
	}
	for _, r := range rs {
		switch r.Status {
		case store.DeliverySent, store.DeliveryDelivered, store.DeliveryFailed, store.DeliverySkipped:
		case store.DeliveryRetrying:
			if r.NextAttemptAt.IsZero() {
				return fmt.Errorf("complete delivery %d: retrying needs NextAttemptAt", r.ID)
			}
		default:
			return fmt.Errorf("complete delivery %d: invalid result status %q", r.ID, r.Status)
		}
	}
	now := s.now()
	var err error
	switch {
	case s.d.name() == "sqlite":
		err = s.tx(ctx, func(tx *Store) error { return tx.completeGrouped(ctx, node, rs, now) })
	default:
		// Pinned to primary-key lookups: the node's other sending rows
		// must not be read per batch, whatever the statistics say.
		err = s.pinned(ctx, func(tx *Store) error { return tx.completeValues(ctx, node, rs, now) })
	}
	if err != nil {
		return fmt.Errorf("complete deliveries: %w", err)
	}
	return nil
}

// completeValues writes results as UPDATE … FROM (VALUES …) joins of up to
// batchRows rows: one statement carries many rows with different outcomes.
// SQLite's planner, without table statistics, turns that join into a scan
// of every pending delivery, so SQLite uses completeGrouped.
func (s *Store) completeValues(ctx context.Context, node string, rs []store.DeliveryResult, now time.Time) error {
	args := make([]any, 0, min(len(rs), batchRows)*completeNCols)
	for start := 0; start < len(rs); start += batchRows {
		chunk := rs[start:min(start+batchRows, len(rs))]
		args = args[:0]
		for _, r := range chunk {
			at := r.At
			if at.IsZero() {
				at = now
			}
			counted := 0
			if r.CountAttempt {
				counted = 1
			}
			args = append(args, r.ID, string(r.Status), r.ProviderID, r.Reason, r.LastError,
				micros(r.NextAttemptAt), counted, micros(at))
		}
		args = append(args, node)
		if err := s.execBatch(ctx, len(chunk) == batchRows, completeQuery(len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// outcome is what a group of delivery results has in common; each group is
// written by one UPDATE … WHERE id IN (…).
type outcome struct {
	status, reason, lastError string
	next                      int64
	counted                   int
	at                        int64
}

// completeGrouped records results on SQLite as one UPDATE … WHERE id IN (…)
// per outcome (a send batch's results usually share one) rather than one
// statement per row, which cost a quarter more per row. Provider ids, which
// differ per row, are a CASE on the id.
func (s *Store) completeGrouped(ctx context.Context, node string, rs []store.DeliveryResult, now time.Time) error {
	var order []outcome
	groups := map[outcome][]store.DeliveryResult{}
	for _, r := range rs {
		at := r.At
		if at.IsZero() {
			at = now
		}
		o := outcome{status: string(r.Status), reason: r.Reason, lastError: r.LastError, at: micros(at)}
		if r.Status == store.DeliveryRetrying {
			o.next = micros(r.NextAttemptAt)
		}
		if r.CountAttempt {
			o.counted = 1
		}
		if _, ok := groups[o]; !ok {
			order = append(order, o)
		}
		groups[o] = append(groups[o], r)
	}
	const chunkRows = 400 // ids plus provider-id pairs stay under SQLite's 32,766 parameters
	for _, o := range order {
		g := groups[o]
		for start := 0; start < len(g); start += chunkRows {
			chunk := g[start:min(start+chunkRows, len(g))]
			if err := s.completeOutcome(ctx, node, o, chunk); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) completeOutcome(ctx context.Context, node string, o outcome, rs []store.DeliveryResult) error {
	var q strings.Builder
	args := make([]any, 0, 3*len(rs)+8)
	q.WriteString(`UPDATE deliveries SET status = ?, reason = ?, last_error = ?, updated_at = ?, attempts = attempts + ?`)
	args = append(args, o.status, o.reason, o.lastError, o.at, o.counted)
	switch store.DeliveryStatus(o.status) {
	case store.DeliveryRetrying:
		q.WriteString(`, pending = 1, next_attempt_at = ?`)
		args = append(args, o.next)
	case store.DeliveryDelivered:
		q.WriteString(`, pending = 0, sent_at = COALESCE(sent_at, ?), delivered_at = ?`)
		args = append(args, o.at, o.at)
	case store.DeliverySent:
		q.WriteString(`, pending = 0, sent_at = COALESCE(sent_at, ?)`)
		args = append(args, o.at)
	default:
		q.WriteString(`, pending = 0`)
	}
	withProvider := 0
	for _, r := range rs {
		if r.ProviderID != "" {
			withProvider++
		}
	}
	if withProvider > 0 {
		q.WriteString(`, provider_id = CASE id`)
		for _, r := range rs {
			if r.ProviderID != "" {
				q.WriteString(` WHEN ? THEN ?`)
				args = append(args, r.ID, r.ProviderID)
			}
		}
		q.WriteString(` ELSE provider_id END`)
	}
	q.WriteString(` WHERE status = 'sending' AND claimed_by = ? AND id IN (`)
	args = append(args, node)
	for i, r := range rs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("?")
		args = append(args, r.ID)
	}
	q.WriteString(")")
	_, err := s.exec(ctx, q.String(), args...)
	return err
}

func completeQuery(rows int) string {
	return `UPDATE deliveries SET
		status = v.column2,
		pending = CASE WHEN v.column2 = 'retrying' THEN 1 ELSE 0 END,
		provider_id = CASE WHEN v.column3 <> '' THEN v.column3 ELSE deliveries.provider_id END,
		reason = v.column4,
		last_error = v.column5,
		next_attempt_at = CASE WHEN v.column2 = 'retrying' THEN v.column6 ELSE deliveries.next_attempt_at END,
		attempts = deliveries.attempts + v.column7,
		sent_at = CASE WHEN v.column2 IN ('sent', 'delivered') AND deliveries.sent_at IS NULL
			THEN v.column8 ELSE deliveries.sent_at END,
		delivered_at = CASE WHEN v.column2 = 'delivered' THEN v.column8 ELSE deliveries.delivered_at END,
		updated_at = v.column8
		FROM (VALUES ` + strings.TrimSuffix(strings.Repeat(completeRow+", ", rows), ", ") + `) AS v
		WHERE deliveries.id = v.column1 AND deliveries.status = 'sending' AND deliveries.claimed_by = ?`
}

// ApplyReceipt moves the delivery with that provider id to status (sent,
// delivered or failed). A late "sent" receipt never downgrades a delivered
// one; a non-empty reason replaces the stored one.
func (s *Store) ApplyReceipt(ctx context.Context, channelID, providerID string, status store.DeliveryStatus, reason string, at time.Time) error {
	switch status {
	case store.DeliverySent, store.DeliveryDelivered, store.DeliveryFailed:
	default:
		return fmt.Errorf("apply receipt: invalid status %q", status)
	}
	if providerID == "" {
		return fmt.Errorf("apply receipt: empty provider id: %w", store.ErrNotFound)
	}
	if at.IsZero() {
		at = s.now()
	}
	n, err := s.execCount(ctx, `UPDATE deliveries SET status = ?, pending = 0,
		reason = CASE WHEN ? <> '' THEN ? ELSE reason END,
		delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END,
		updated_at = ?
		WHERE channel_id = ? AND provider_id = ? AND NOT (status = 'delivered' AND ? = 'sent')`,
		string(status), reason, reason, string(status), micros(at), micros(at), channelID, providerID, string(status))
	if err != nil {
		return fmt.Errorf("apply receipt %s: %w", providerID, err)
	}
	if n > 0 {
		return nil
	}
	// Nothing changed: either no such delivery, or the receipt is stale.
	_, err = getOne(ctx, s, "apply receipt "+providerID, func(r scanner) (int64, error) {
		var id int64
		return id, r.Scan(&id)
	}, `SELECT id FROM deliveries WHERE channel_id = ? AND provider_id = ?`, channelID, providerID)
	return err
}

// GetDelivery returns one delivery.
func (s *Store) GetDelivery(ctx context.Context, id int64) (store.Delivery, error) {
	return getOne(ctx, s, fmt.Sprintf("get delivery %d", id), scanDelivery,
		`SELECT `+deliveryCols+` FROM deliveries WHERE id = ?`, id)
}

// ListDeliveriesBySource lists what one source produced, in id order.
func (s *Store) ListDeliveriesBySource(ctx context.Context, kind, id string) ([]store.Delivery, error) {
	return list(ctx, s, "list deliveries", scanDelivery, `SELECT `+deliveryCols+` FROM deliveries
		WHERE source_kind = ? AND source_id = ? ORDER BY id`, kind, id)
}

// ListDeliveries lists a workspace's deliveries by id, newest first (or,
// paging with After, oldest first), on the deliveries_workspace index.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	where := []string{"workspace_id = ?"}
	args := []any{f.WorkspaceID}
	for _, c := range []struct{ col, val string }{
		{"status", string(f.Status)},
		{"reason", f.Reason},
		{"channel_id", f.ChannelID},
		{"person_id", f.PersonID},
	} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, micros(f.Until))
	}
	order := "DESC"
	switch {
	case f.After > 0:
		where = append(where, "id > ?")
		args = append(args, f.After)
		order = "ASC"
	case f.Before > 0:
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	args = append(args, limitOrDefault(f.Limit))
	return list(ctx, s, "list deliveries", scanDelivery, `SELECT `+deliveryCols+` FROM deliveries
		WHERE `+strings.Join(where, " AND ")+` ORDER BY id `+order+` LIMIT ?`, args...)
}

// CountPendingDeliveries counts a workspace's pending deliveries by
// channel and status.
func (s *Store) CountPendingDeliveries(ctx context.Context, workspaceID string) ([]store.PendingCount, error) {
	return list(ctx, s, "count pending deliveries", func(r scanner) (store.PendingCount, error) {
		var c store.PendingCount
		var status string
		var oldest int64
		err := r.Scan(&c.ChannelID, &status, &c.N, &oldest)
		c.Status, c.Oldest = store.DeliveryStatus(status), fromMicros(oldest)
		return c, err
	}, `SELECT channel_id, status, COUNT(*), MIN(created_at) FROM deliveries
		WHERE workspace_id = ? AND status IN ('queued', 'retrying', 'sending')
		GROUP BY channel_id, status ORDER BY channel_id, status`, workspaceID)
}
