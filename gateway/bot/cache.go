package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Loader reads a stored bot; store.Tenancy is one.
type Loader interface {
	GetBot(ctx context.Context, id string) (store.Bot, error)
}

// CacheOptions configure a Cache.
type CacheOptions struct {
	Compile Options
	// MaxAge bounds how long a compiled bot is used without reloading it
	// (default 30s). Invalidate is immediate on this node; MaxAge is what
	// lets other nodes see an apply.
	MaxAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Cache keeps compiled bots by id.
type Cache struct {
	load Loader
	opts CacheOptions

	mu   sync.Mutex
	bots map[string]cached
	// epoch counts invalidations, so that a load that raced with one is
	// not cached (it may have read the old definition).
	epoch uint64
}

type cached struct {
	bot    *Bot
	loaded time.Time
}

// NewCache returns a Cache reading through l.
func NewCache(l Loader, o CacheOptions) *Cache {
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{load: l, opts: o, bots: map[string]cached{}}
}

// Bot returns the compiled bot with that id. Errors from the Loader (such as
// store.ErrNotFound) are wrapped.
func (c *Cache) Bot(ctx context.Context, id string) (*Bot, error) {
	now := c.opts.Now()
	c.mu.Lock()
	e, ok := c.bots[id]
	epoch := c.epoch
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < c.opts.MaxAge {
		return e.bot, nil
	}
	sb, err := c.load.GetBot(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load bot %s: %w", id, err)
	}
	b, err := FromJSON(sb.Definition, c.opts.Compile)
	if err != nil {
		return nil, fmt.Errorf("bot %s: %w", id, err)
	}
	c.mu.Lock()
	if c.epoch == epoch {
		c.bots[id] = cached{bot: b, loaded: now}
	}
	c.mu.Unlock()
	return b, nil
}

// Invalidate drops the bot, so that the next Bot call reloads it. Call it
// after applying a bot.
func (c *Cache) Invalidate(id string) {
	c.mu.Lock()
	delete(c.bots, id)
	c.epoch++
	c.mu.Unlock()
}
