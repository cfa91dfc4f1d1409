package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

const (
	// webchatNotifyChannel is the PostgreSQL channel web chat wake-ups go
	// through. Notifications are per database: stores in other schemas of
	// the same database hear them too, and find no connection to wake.
	webchatNotifyChannel = "switchboard_webchat"
	// maxNotifyPayload keeps a notification under PostgreSQL's limit of
	// 8000 bytes.
	maxNotifyPayload = 7900
	// Reconnect backoff of a lost listener.
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
	// listenCloseTimeout bounds closing a listener's connection.
	listenCloseTimeout = 5 * time.Second
)

// WebchatWakeups carries web chat wake-ups between the gateway nodes sharing
// a PostgreSQL database: NOTIFY after the messages are committed, never
// inside the write transaction (a notifying transaction takes a global lock
// at commit), and LISTEN on a connection of its own, outside the pool.
type WebchatWakeups struct {
	s    *Store
	node string
	log  *slog.Logger
}

// WebchatWakeups returns node's wake-ups on PostgreSQL, and false on SQLite,
// whose database one process holds.
func (s *Store) WebchatWakeups(node string, log *slog.Logger) (*WebchatWakeups, bool) {
	if s.d.name() != "postgres" {
		return nil, false
	}
	return &WebchatWakeups{s: s, node: node, log: log}, true
}

// wakeBatch is one notification's payload.
type wakeBatch struct {
	Node  string     `json:"n"`
	Wakes []wireWake `json:"w"`
}

type wireWake struct {
	Channel string `json:"c"`
	User    string `json:"u"`
	Seq     int64  `json:"s"`
}

// Wake notifies every listening node, in one statement of as many
// notifications as the payload limit asks for.
func (w *WebchatWakeups) Wake(ctx context.Context, ws []store.WebchatWake) error {
	if len(ws) == 0 {
		return nil
	}
	payloads, err := w.payloads(ws)
	if err != nil {
		return err
	}
	if _, err := w.s.conns.write.ExecContext(ctx, `SELECT pg_notify($1, p) FROM unnest(CAST($2 AS text[])) AS p`,
		webchatNotifyChannel, payloads); err != nil {
		return fmt.Errorf("notify web chat wake-ups: %w", err)
	}
	return nil
}

// payloads packs wake-ups into as few notifications as fit.
func (w *WebchatWakeups) payloads(ws []store.WebchatWake) ([]string, error) {
	node, err := json.Marshal(w.node)
	if err != nil {
		return nil, err
	}
	prefix := `{"n":` + string(node) + `,"w":[` // a wakeBatch, entries added as they fit
	var out []string
	cur := prefix
	for _, x := range ws {
		e, err := json.Marshal(wireWake{Channel: x.ChannelID, User: x.UserID, Seq: x.Seq})
		if err != nil {
			return nil, err
		}
		if cur != prefix && len(cur)+1+len(e)+2 > maxNotifyPayload {
			out = append(out, cur+"]}")
			cur = prefix
		}
		if cur != prefix {
			cur += ","
		}
		cur += string(e)
	}
	return append(out, cur+"]}"), nil
}

// Listen calls wake with the wake-ups of other nodes until ctx ends. A lost
// connection is opened again with backoff; resync runs each time listening
// starts, since wake-ups sent while nobody listened are lost.
func (w *WebchatWakeups) Listen(ctx context.Context, resync func(context.Context), wake func([]store.WebchatWake)) error {
	backoff := listenMinBackoff
	for {
		listened, err := w.listen(ctx, resync, wake)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = listenMinBackoff
		}
		// Jitter keeps nodes that lost the database together from
		// reconnecting in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		w.log.Warn("web chat wake-ups: listener lost; reconnecting", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listen listens on a new connection until it fails; listened says whether
// LISTEN succeeded.
func (w *WebchatWakeups) listen(ctx context.Context, resync func(context.Context), wake func([]store.WebchatWake)) (listened bool, err error) {
	cfg, err := w.connConfig(ctx)
	if err != nil {
		return false, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), listenCloseTimeout)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+webchatNotifyChannel); err != nil {
		return false, err
	}
	resync(ctx)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		var b wakeBatch
		if err := json.Unmarshal([]byte(n.Payload), &b); err != nil {
			w.log.Warn("web chat wake-ups: unreadable notification", "err", err)
			continue
		}
		if b.Node == w.node || len(b.Wakes) == 0 {
			continue // this node wrote to its connections itself
		}
		ws := make([]store.WebchatWake, len(b.Wakes))
		for i, x := range b.Wakes {
			ws[i] = store.WebchatWake{ChannelID: x.Channel, UserID: x.User, Seq: x.Seq}
		}
		wake(ws)
	}
}

// connConfig is the pool's connection settings (search_path included),
// named so operators can tell the listener in pg_stat_activity.
func (w *WebchatWakeups) connConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	c, err := w.s.conns.write.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var cfg *pgx.ConnConfig
	err = c.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("not a pgx connection")
		}
		cfg = pc.Conn().Config()
		// The copy still delivers notifications to that pool
		// connection; pgx buffers them for the new one when unset.
		cfg.OnNotification = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listener settings: %w", err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = ListenerApplicationName(w.node)
	return cfg, nil
}

// ListenerApplicationName is the application_name of node's listener
// connection.
func ListenerApplicationName(node string) string { return "switchboard-webchat-" + node }
