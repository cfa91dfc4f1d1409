package app

import (
	"context"
	"sync"
	"time"
)

// channelWatch notices channels and bots created or changed by `switchboard
// apply` (which writes the store directly, possibly from another process): it
// configures changed channels on their running plugins and drops changed bots
// from the compiled-bot cache.
type channelWatch struct {
	app  *App
	mu   sync.Mutex
	seen map[string]time.Time // channel id → UpdatedAt last configured
	bots map[string]time.Time // bot id → UpdatedAt last seen
}

// SyncChannels configures every channel created or changed since the last
// look, now, instead of at the next periodic scan (tests, and apply through
// the admin API).
func (a *App) SyncChannels(ctx context.Context) {
	a.watch.mu.Lock()
	defer a.watch.mu.Unlock()
	a.watch.scan(ctx, false)
}

// record notes the channels and bots as they are, configuring nothing. Run
// calls it before the plugins start, which configure every channel they
// find: a channel changed after it is configured by the next scan (perhaps
// once more than needed), never skipped as seen.
func (w *channelWatch) record(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.scan(ctx, true)
}

func (w *channelWatch) run(ctx context.Context) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.mu.Lock()
			w.scan(ctx, false)
			w.mu.Unlock()
		}
	}
}

// scan configures changed channels; the first scan (record) only records
// the state, because the host configures every instance when the plugins
// start.
func (w *channelWatch) scan(ctx context.Context, first bool) {
	a := w.app
	w.scanBots(ctx)
	chs, err := a.Store.ListChannels(ctx, "")
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("list channels", "err", err)
		}
		return
	}
	for _, ch := range chs {
		if prev, ok := w.seen[ch.ID]; ok && prev.Equal(ch.UpdatedAt) {
			continue
		}
		w.seen[ch.ID] = ch.UpdatedAt
		if first || !ch.Enabled {
			continue
		}
		ic, err := a.instanceConfig(ctx, ch)
		if err == nil {
			err = a.Host.Configure(ctx, ch.Type, ic)
		}
		if err != nil {
			a.log.Warn("configure channel", "channel", ch.ID, "type", ch.Type, "err", err)
			continue
		}
		a.log.Info("channel configured", "channel", ch.ID, "type", ch.Type)
	}
}

func (w *channelWatch) scanBots(ctx context.Context) {
	a := w.app
	wss, err := a.Store.ListWorkspaces(ctx)
	if err != nil {
		return
	}
	for _, ws := range wss {
		bots, err := a.Store.ListBots(ctx, ws.ID)
		if err != nil {
			return
		}
		for _, b := range bots {
			if prev, ok := w.bots[b.ID]; ok && !prev.Equal(b.UpdatedAt) {
				a.Bots.Invalidate(b.ID)
				a.log.Info("bot reloaded", "bot", b.Name, "id", b.ID)
			}
			w.bots[b.ID] = b.UpdatedAt
		}
	}
}
