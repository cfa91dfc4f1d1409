package webchat

import (
	"sync"

	"github.com/gorilla/websocket"
)

// userKey names a user of a channel.
type userKey struct{ channel, user string }

// hub is this node's registry of connections: every open one, and those
// with a session by user (presence and fan-out).
type hub struct {
	mu     sync.RWMutex
	all    map[*conn]struct{}
	users  map[userKey][]*conn
	closed bool
	wg     sync.WaitGroup // one per admitted connection
	// presence, when set, hears a user's first connection (true) and last
	// (false) on this node. It is called under mu, so the order it hears
	// is the order of connects and disconnects, also against refile.
	presence func(k userKey, online bool)
}

func newHub(presence func(userKey, bool)) *hub {
	return &hub{all: map[*conn]struct{}{}, users: map[userKey][]*conn{}, presence: presence}
}

// admit records a new connection; false once the hub is closed.
func (h *hub) admit(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.all[c] = struct{}{}
	h.wg.Add(1)
	return true
}

// register files a connection under its session's user.
func (h *hub) register(c *conn, k userKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.users[k] = append(h.users[k], c)
	if len(h.users[k]) == 1 && h.presence != nil {
		h.presence(k, true)
	}
}

// remove forgets a connection and reports whether its user has another
// connection left on this node.
func (h *hub) remove(c *conn, k userKey) (others bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.all, c)
	cs := h.users[k]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		if _, had := h.users[k]; had && h.presence != nil {
			h.presence(k, false)
		}
		delete(h.users, k)
	} else {
		h.users[k] = cs
	}
	return len(cs) > 0
}

// release marks an admitted connection's work as finished.
func (h *hub) release() { h.wg.Done() }

// publish hands a stored message to every connection of its user.
func (h *hub) publish(k userKey, seq int64, frame []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.users[k] {
		c.offer(seq, frame)
	}
}

// wake has every connection of a user fetch the stored messages up to seq
// it does not have yet.
func (h *hub) wake(k userKey, seq int64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.users[k] {
		c.fetch(seq)
	}
}

// refile tells presence every user again.
func (h *hub) refile() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for k := range h.users {
		h.presence(k, true)
	}
}

// usersByChannel lists the users with a connection, by channel.
func (h *hub) usersByChannel() map[string][]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := map[string][]string{}
	for k := range h.users {
		out[k.channel] = append(out[k.channel], k.user)
	}
	return out
}

func (h *hub) connected(channelID, userID string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[userKey{channelID, userID}]) > 0
}

func (h *hub) count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.all)
}

// closeAll closes every connection with 1001 (going away), refuses new
// ones, and waits until all have ended.
func (h *hub) closeAll() {
	h.mu.Lock()
	h.closed = true
	for c := range h.all {
		c.shutdown(websocket.CloseGoingAway, "server shutting down", false)
	}
	h.mu.Unlock()
	h.wg.Wait()
}
