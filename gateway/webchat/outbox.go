package webchat

import (
	"context"
	"fmt"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

// Plugins returns next with web chat delivery added: the channels of
// websocket plugins send through the service's outbox instead of the
// plugin's Send. Give it to the delivery pipeline.
func (s *Service) Plugins(next Plugins) Plugins { return outboxPlugins{next: next, svc: s} }

type outboxPlugins struct {
	next Plugins
	svc  *Service
}

func (p outboxPlugins) Channel(name string) (sdk.Channel, error) {
	ch, err := p.next.Channel(name)
	if err != nil {
		return nil, err
	}
	sc, ok := ch.(sdk.SocketChannel)
	if d, described := p.next.Describe(name); !ok || !described || !d.Capabilities.Websocket {
		return ch, nil
	}
	return outboxChannel{Channel: ch, socket: sc, svc: p.svc}, nil
}

func (p outboxPlugins) Describe(name string) (sdk.Description, bool) { return p.next.Describe(name) }

// outboxChannel is a websocket plugin's channel whose Send goes to the
// outbox.
type outboxChannel struct {
	sdk.Channel
	socket sdk.SocketChannel
	svc    *Service
}

// Send stores each message under its user's next sequence number, with the
// frame the plugin renders for it, and writes it to the user's connections
// on this node at once. The deliveries are handed over in the same
// transaction (sent; pending_connection for a user without connection).
func (c outboxChannel) Send(ctx context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	return c.svc.deliver(ctx, c.socket, batch)
}

func (s *Service) deliver(ctx context.Context, sc sdk.SocketChannel, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	results := make([]sdk.SendResult, len(batch))
	byChannel := map[string][]string{}
	for _, m := range batch {
		byChannel[m.ChannelID] = append(byChannel[m.ChannelID], m.Recipient)
	}
	next := map[userKey]int64{}
	for ch, users := range byChannel {
		seqs, err := s.opts.Store.WebchatSeqs(ctx, ch, users)
		if err != nil {
			return nil, fmt.Errorf("web chat sequence numbers: %w", err)
		}
		for u, seq := range seqs {
			next[userKey{ch, u}] = seq
		}
	}
	seqd := make([]sdk.SequencedOutbound, len(batch))
	for i, m := range batch {
		k := userKey{m.ChannelID, m.Recipient}
		next[k]++
		seqd[i] = sdk.SequencedOutbound{Outbound: m, Seq: next[k]}
	}
	frames, err := sc.RenderOutbound(ctx, seqd)
	if err != nil {
		return nil, err
	}
	elsewhere := map[userKey]bool{}
	for ch, users := range byChannel {
		var away []string
		for _, u := range users {
			if !s.hub.connected(ch, u) {
				away = append(away, u)
			}
		}
		on, err := s.onlineElsewhere(ctx, ch, away)
		if err != nil {
			return nil, fmt.Errorf("web chat presence: %w", err)
		}
		for u := range on {
			elsewhere[userKey{ch, u}] = true
		}
	}
	var appends []store.WebchatAppend
	var idx []int // batch index of each append
	for i, f := range frames {
		results[i].IdempotencyKey = batch[i].IdempotencyKey
		if f.Err != nil {
			results[i].Err = f.Err
			continue
		}
		m := seqd[i]
		appends = append(appends, store.WebchatAppend{
			WebchatMessage: store.WebchatMessage{ChannelID: m.ChannelID, UserID: m.Recipient, Seq: m.Seq,
				IdempotencyKey: m.IdempotencyKey, Frame: f.Frame},
			Offline: !s.hub.connected(m.ChannelID, m.Recipient) && !elsewhere[userKey{m.ChannelID, m.Recipient}],
		})
		idx = append(idx, i)
	}
	stored, err := s.opts.Store.AppendWebchat(ctx, appends, s.now())
	if err != nil {
		return nil, err
	}
	var missing []string
	var wakes []store.WebchatWake
	for j, a := range appends {
		i := idx[j]
		if stored[j] {
			s.hub.publish(userKey{a.ChannelID, a.UserID}, a.Seq, a.Frame)
			results[i].ProviderID = store.WebchatProviderID(a.Seq)
			wakes = append(wakes, store.WebchatWake{ChannelID: a.ChannelID, UserID: a.UserID, Seq: a.Seq})
			continue
		}
		missing = append(missing, a.IdempotencyKey)
	}
	s.wakeOthers(ctx, wakes)
	if len(missing) > 0 {
		s.settleSkipped(ctx, batch, results, missing)
	}
	return results, nil
}

// wakeOthers tells the other nodes about stored messages, after the commit.
// Every stored message, not only those of users the presence says are
// connected elsewhere: a user whose connection registers while the message
// is being stored is not filed yet, and without the wake-up would miss it
// until reconnecting.
func (s *Service) wakeOthers(ctx context.Context, wakes []store.WebchatWake) {
	if !s.clustered() || len(wakes) == 0 {
		return
	}
	if err := s.opts.Wakeups.Wake(ctx, wakes); err != nil {
		s.log.Warn("web chat: wake other nodes; their users get these messages on the next wake-up or reconnect",
			"count", len(wakes), "err", err)
	}
}

// settleSkipped decides the messages AppendWebchat skipped: one stored
// already (a concurrent attempt after a lease ran out) succeeded; the others
// lost their sequence number to another message and are retried, rendered
// again under the next one.
func (s *Service) settleSkipped(ctx context.Context, batch []sdk.Outbound, results []sdk.SendResult, keys []string) {
	found, err := s.opts.Store.WebchatByKeys(ctx, keys)
	byKey := map[string]int64{}
	for _, m := range found {
		byKey[m.IdempotencyKey] = m.Seq
	}
	skipped := map[string]bool{}
	for _, k := range keys {
		skipped[k] = true
	}
	for i, m := range batch {
		if !skipped[m.IdempotencyKey] {
			continue
		}
		if seq, ok := byKey[m.IdempotencyKey]; ok && err == nil {
			results[i].ProviderID = store.WebchatProviderID(seq)
			continue
		}
		results[i].Err = sdk.Transient("sequence_conflict", "another message took the sequence number; rendering again")
	}
}
