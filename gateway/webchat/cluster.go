package webchat

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Wakeups carries wake-ups between the gateway nodes sharing a store: a node
// that stored messages tells the others, and a node holding connections of
// their users has those connections fetch them from the outbox. The outbox
// stays the truth; a lost wake-up only delays a message to the user's next
// wake-up or reconnect. *sqlstore.WebchatWakeups (PostgreSQL LISTEN/NOTIFY)
// is one.
type Wakeups interface {
	// Wake tells the other nodes these messages are stored. It is called
	// after they are committed.
	Wake(ctx context.Context, ws []store.WebchatWake) error
	// Listen calls wake with the other nodes' wake-ups until ctx ends. It
	// calls resync whenever it starts listening (the first time and after
	// a lost connection), since wake-ups sent meanwhile are lost.
	Listen(ctx context.Context, resync func(context.Context), wake func([]store.WebchatWake)) error
}

// clustered reports whether this node shares its store with others.
func (s *Service) clustered() bool { return s.opts.Wakeups != nil }

// newPresence files this node's users in the store in batches, the latest
// state per user winning.
func newPresence(st store.WebchatNodes, node string, log *slog.Logger) *coalescer[userKey, bool] {
	return &coalescer[userKey, bool]{
		write: func(ctx context.Context, batch map[userKey]bool) error {
			ps := make([]store.WebchatPresence, 0, len(batch))
			for k, online := range batch {
				ps = append(ps, store.WebchatPresence{ChannelID: k.channel, UserID: k.user, Online: online})
			}
			return st.SetWebchatPresence(ctx, node, ps)
		},
		what: "record presence",
		log:  log,
	}
}

// runCluster keeps this node's lease and listens to the other nodes until
// ctx ends.
func (s *Service) runCluster(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.opts.Wakeups.Listen(ctx, s.resync, s.wake); err != nil {
			s.log.Error("web chat: wake-ups stopped", "err", err)
		}
	}()
	t := time.NewTicker(s.limits.NodeTTL / 3)
	defer t.Stop()
	for {
		s.renew(ctx)
		select {
		case <-ctx.Done():
			<-done
			return
		case <-t.C:
		}
	}
}

// renew extends this node's lease and forgets nodes whose lease ran out
// (they stopped or died; their presence counts no more). What those nodes
// were writing is re-evaluated: their users connected elsewhere are woken
// on every node (the dead node may have stored messages without waking
// anyone), and the others' messages wait for a connection
// (pending_connection).
func (s *Service) renew(ctx context.Context) {
	now := s.now()
	known, err := s.opts.Store.RenewWebchatNode(ctx, s.opts.Node, now.Add(s.limits.NodeTTL))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("web chat: renew node lease", "node", s.opts.Node, "err", err)
		}
		return
	}
	if !known {
		// New, or forgotten by another node while this one could not
		// renew: the presence filed under it is gone.
		s.hub.refile()
	}
	gone, err := s.opts.Store.ForgetWebchatNodes(ctx, now, now)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("web chat: forget dead nodes", "err", err)
		}
		return
	}
	if len(gone.Nodes) == 0 {
		return
	}
	s.log.Warn("web chat: nodes whose lease ran out are forgotten; their users' messages re-evaluated",
		"nodes", gone.Nodes, "now_pending_connection", gone.Waiting, "users_elsewhere", len(gone.Elsewhere))
	s.wake(gone.Elsewhere)
	s.wakeOthers(ctx, gone.Elsewhere)
}

// leave ends this node's lease at once, so other nodes stop counting its
// presence without waiting for it to run out.
func (s *Service) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), s.limits.WriteWait)
	defer cancel()
	if _, err := s.opts.Store.RenewWebchatNode(ctx, s.opts.Node, s.now()); err != nil {
		s.log.Warn("web chat: end node lease", "node", s.opts.Node, "err", err)
	}
}

// wake has the connections of woken users fetch their new messages.
func (s *Service) wake(ws []store.WebchatWake) {
	for _, w := range ws {
		s.hub.wake(userKey{w.ChannelID, w.UserID}, w.Seq)
	}
}

// resync wakes every connection whose user has messages newer than the
// last wake-up could have told: one query per channel.
func (s *Service) resync(ctx context.Context) {
	for ch, users := range s.hub.usersByChannel() {
		seqs, err := s.opts.Store.WebchatSeqs(ctx, ch, users)
		if err != nil {
			s.log.Warn("web chat: resync after listening again", "channel", ch, "err", err)
			continue
		}
		for u, seq := range seqs {
			s.hub.wake(userKey{ch, u}, seq)
		}
	}
}

// onlineElsewhere returns which of a channel's users have a connection on
// another live node; none on a single node.
func (s *Service) onlineElsewhere(ctx context.Context, channelID string, users []string) (map[string]bool, error) {
	if !s.clustered() || len(users) == 0 {
		return nil, nil
	}
	return s.opts.Store.WebchatOnline(ctx, channelID, users, s.opts.Node, s.now())
}
