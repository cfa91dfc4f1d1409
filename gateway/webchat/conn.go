package webchat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

// Timing constants that need no tuning.
const (
	// drainWait is how long a closing connection waits for the client's
	// close frame, reading and discarding, so the client gets ours rather
	// than a TCP reset.
	drainWait = time.Second
	// frameTimeout bounds one HandleFrame call.
	frameTimeout = 10 * time.Second
	// replayPage is how many stored messages one replay query reads.
	replayPage = 500
)

// outItem is work for a connection's writer.
type outItem struct {
	// seq > 0: a stored message, written once, in sequence order; with
	// resume, the resume point; with fetch, a message stored by another
	// node, read from the outbox. 0: a reply, written as is.
	seq    int64
	frame  []byte
	resume bool
	fetch  bool
}

// conn is one websocket. The reader goroutine owns the session fields; the
// writer goroutine is the only one that writes data frames.
type conn struct {
	svc *Service
	ws  *websocket.Conn
	ch  store.Channel
	ctx context.Context // ends with the connection

	out        chan outItem
	done       chan struct{} // closed by shutdown
	writerDone chan struct{}

	mu          sync.Mutex // guards the close fields and the read deadline
	once        sync.Once
	cancel      context.CancelFunc
	closing     bool
	closeCode   int // 0: no close frame to send
	closedWith  int // the close code the client got from the gateway, for metrics
	closeReason string
	drainOut    bool // write what is queued before the close frame

	// Reader-owned.
	key     userKey // zero until the session starts
	profile map[string]string
	acked   int64
	limiter *rate.Limiter // frames processed
	floods  *rate.Limiter // frames dropped over the limit

	// Writer-owned; read by the reader once the writer is done.
	written int64
}

// serveSocket upgrades GET /channels/{channel_id}/ws and runs the
// connection until it ends.
func (s *Service) serveSocket(w http.ResponseWriter, r *http.Request) {
	ch, ok := s.socketChannel(w, r)
	if !ok {
		return
	}
	origins := allowedOrigins(ch.Config)
	up := websocket.Upgrader{
		HandshakeTimeout: s.limits.WriteWait,
		CheckOrigin:      func(r *http.Request) bool { return originAllowed(r, origins) },
		// Memory per idle connection: a small read buffer of its own
		// instead of net/http's 4 KiB one, and write buffers lent from a
		// pool only while writing.
		ReadBufferSize:  readBufferSize,
		WriteBufferPool: writeBuffers,
	}
	// gorilla needs an http.Hijacker; middleware writers only unwrap.
	ws, err := up.Upgrade(hijacker{w}, r, nil)
	if err != nil {
		return // gorilla has answered (403 for a foreign origin, 400 for a bad handshake)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		svc: s, ws: ws, ch: ch, ctx: ctx, cancel: cancel,
		out:        make(chan outItem, s.limits.SendQueue),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		limiter:    rate.NewLimiter(s.limits.FrameRate, s.limits.FrameBurst),
		floods:     rate.NewLimiter(s.limits.FrameRate, s.limits.FrameBurst),
	}
	if !s.hub.admit(c) {
		cancel()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"),
			time.Now().Add(s.limits.WriteWait))
		_ = ws.Close()
		return
	}
	// Both loops get goroutines of their own, and the handler returns: its
	// goroutine's stack, grown deep under net/http, and the request are
	// not kept for the life of the connection.
	connectionsOpen.Inc()
	go c.writeLoop()
	go c.readLoop()
}

// readBufferSize is each connection's read buffer; larger frames are read
// in several fills.
const readBufferSize = 1024

// writeBuffers lends write buffers to connections while they write.
var writeBuffers = &sync.Pool{}

// hijacker exposes the hijacking of a wrapped ResponseWriter (found through
// Unwrap) as the http.Hijacker gorilla asks for.
type hijacker struct{ http.ResponseWriter }

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// allowedOrigins reads allowed_origins from a channel's configuration.
func allowedOrigins(config json.RawMessage) []string {
	var c struct {
		AllowedOrigins []string `json:"allowed_origins"`
	}
	_ = json.Unmarshal(config, &c) // the plugin validated it; unreadable allows none
	return c.AllowedOrigins
}

// originAllowed accepts requests without an Origin (not from a browser),
// from the gateway's own pages (same host) and from the allowed origins.
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// shutdown ends the connection: the writer sends a close frame with code
// (none when 0), after what is queued if drain, and the reader stops
// within drainWait. Only the first call counts.
func (c *conn) shutdown(code int, reason string, drain bool) {
	c.once.Do(func() {
		c.mu.Lock()
		c.closing, c.closeCode, c.closeReason, c.drainOut = true, code, reason, drain
		if code != 0 {
			c.closedWith = code
		}
		// Unblocks the reader; the client's close frame may still come.
		_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(drainWait))
		c.mu.Unlock()
		close(c.done)
		c.cancel()
	})
}

// readDeadline sets the reader's deadline unless the connection is
// closing, whose drain deadline stands.
func (c *conn) readDeadline(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(d))
	}
}

// offer hands a stored message to the writer without waiting: a connection
// whose queue is full is a slow consumer and is closed. Its client resumes
// on reconnect, so nothing is lost.
func (c *conn) offer(seq int64, frame []byte) { c.give(outItem{seq: seq, frame: frame}) }

// fetch has the writer read the stored messages up to seq it lacks, like
// offer.
func (c *conn) fetch(seq int64) { c.give(outItem{seq: seq, fetch: true}) }

func (c *conn) give(it outItem) {
	select {
	case c.out <- it:
	case <-c.done:
	default:
		c.shutdown(websocket.ClosePolicyViolation, "slow consumer", false)
	}
}

// enqueue hands the writer a reply, waiting for room.
func (c *conn) enqueue(it outItem) bool {
	select {
	case c.out <- it:
		return true
	case <-c.done:
		return false
	}
}

func (c *conn) readLoop() {
	l := c.svc.limits
	defer c.end()
	c.ws.SetReadLimit(l.MaxFrameBytes)
	c.readDeadline(l.HelloTimeout)
	c.ws.SetPongHandler(func(string) error { c.extend(); return nil })
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				// gorilla has sent 1009 already.
				c.mu.Lock()
				c.closedWith = websocket.CloseMessageTooBig
				c.mu.Unlock()
				c.shutdown(0, "", false)
				c.svc.log.Debug("web chat frame over the read limit", "channel", c.ch.ID, "limit", l.MaxFrameBytes)
			case c.key.user == "" && isTimeout(err):
				c.shutdown(websocket.ClosePolicyViolation, "no session started", false)
			case websocket.IsUnexpectedCloseError(err, websocket.CloseGoingAway, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived):
				c.svc.log.Debug("web chat connection lost", "channel", c.ch.ID, "user", c.key.user, "err", err)
			}
			return
		}
		select {
		case <-c.done:
			continue // closing: read on until the client's close frame
		default:
		}
		framesTotal.WithLabelValues("in").Inc()
		if !c.limiter.Allow() {
			framesTotal.WithLabelValues("dropped").Inc()
			if !c.floods.Allow() {
				c.shutdown(websocket.ClosePolicyViolation, "too many frames", true)
			}
			continue
		}
		c.handle(data)
		c.extend()
	}
}

// extend pushes the read deadline out once a session runs; before that the
// hello timeout stands.
func (c *conn) extend() {
	if c.key.user != "" {
		c.readDeadline(c.svc.limits.PongWait)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handle runs one client frame through the plugin and acts on the result.
func (c *conn) handle(data []byte) {
	res, err := c.callPlugin(data)
	if err != nil {
		c.pluginFailed(err)
		return
	}
	start := res.Start
	if start != nil && (c.key.user != "" || start.UserID == "") {
		c.svc.log.Warn("web chat plugin started a session it cannot", "channel", c.ch.ID, "user", c.key.user)
		start = nil
	}
	user, profile := c.key.user, c.profile
	if start != nil {
		user, profile = start.UserID, start.Profile
	}
	if err := c.store(res.Events, start, user, profile); err != nil {
		c.svc.log.Error("web chat: store a session's events", "channel", c.ch.ID, "user", user, "err", err)
		c.shutdown(websocket.CloseInternalServerErr, "store unavailable", true)
		return
	}
	var resumeAfter int64
	var reset []byte
	if start != nil {
		if resumeAfter, reset, err = c.resumePoint(user, start.ResumeAfter); err != nil {
			c.pluginFailed(err)
			return
		}
	}
	for _, r := range res.Replies {
		if !c.enqueue(outItem{frame: r}) {
			return
		}
	}
	if reset != nil && !c.enqueue(outItem{frame: reset}) {
		return
	}
	if res.AckSeq > 0 && user != "" {
		c.acked = max(c.acked, res.AckSeq)
		c.svc.acks.add(userKey{c.ch.ID, user}, res.AckSeq)
	}
	if start != nil {
		c.key, c.profile = userKey{c.ch.ID, user}, profile
		// Registered before the resume is queued: a message stored from
		// now on reaches this connection live or through the replay.
		c.svc.hub.register(c, c.key)
		c.enqueue(outItem{seq: resumeAfter, resume: true})
	}
	if cl := res.Close; cl != nil {
		c.shutdown(cl.Code, cl.Reason, true)
	}
}

// pluginFailed ends the connection after a failed plugin call: 1013 (try
// again later) while the plugin is down, else 1011.
func (c *conn) pluginFailed(err error) {
	code, reason := websocket.CloseInternalServerErr, "channel error"
	if errors.Is(err, pluginhost.ErrPluginDown) {
		code, reason = websocket.CloseTryAgainLater, "channel unavailable"
	}
	c.svc.log.Warn("web chat frame failed", "channel", c.ch.ID, "user", c.key.user, "err", err)
	c.shutdown(code, reason, true)
}

// resumePoint is where a starting session resumes: after the sequence
// number its client asked for, unless that is beyond the last one given out
// for the user (a client that kept its state across a database reset, or a
// bug), which would hide every message up to it. Then the session resumes
// after the last one, and reset is the plugin's frame telling the client
// (nil from a plugin without one, sdk.ResumeResetter). A message stored
// meanwhile is replayed, being after the point.
func (c *conn) resumePoint(user string, asked int64) (after int64, reset []byte, err error) {
	if asked <= 0 {
		return asked, nil, nil
	}
	seqs, err := c.svc.opts.Store.WebchatSeqs(c.ctx, c.ch.ID, []string{user})
	if err != nil {
		return 0, nil, fmt.Errorf("web chat resume point: %w", err)
	}
	last := seqs[user]
	if asked <= last {
		return asked, nil, nil
	}
	resumeResetsTotal.Inc()
	p, err := c.svc.opts.Plugins.Channel(c.ch.Type)
	if err != nil {
		return 0, nil, err
	}
	rr, ok := p.(sdk.ResumeResetter)
	if ok {
		ctx, cancel := context.WithTimeout(c.ctx, frameTimeout)
		defer cancel()
		reset, err = rr.RenderResumeReset(ctx, sdk.ResumeReset{ChannelID: c.ch.ID, UserID: user, Requested: asked, LastSeq: last})
	}
	if !ok || errors.Is(err, sdk.ErrNotSupported) {
		c.svc.log.Debug("web chat client resumed beyond the last message; its plugin cannot tell it",
			"channel", c.ch.ID, "user", user, "asked", asked, "last", last)
		return last, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("render resume reset: %w", err)
	}
	return last, reset, nil
}

// store makes a frame's events and conversation start durable; they belong
// to the session's user whatever the plugin said.
func (c *conn) store(events []sdk.Event, start *sdk.SessionStart, user string, profile map[string]string) error {
	if len(events) > 0 && user == "" {
		c.svc.log.Warn("web chat plugin sent events before a session started; dropped", "channel", c.ch.ID, "count", len(events))
		events = nil
	}
	for i := range events {
		events[i].UserID = user
		if len(events[i].Profile) == 0 {
			events[i].Profile = profile
		}
	}
	if len(events) > 0 {
		if err := c.svc.opts.Events.Accept(c.ctx, c.ch, events); err != nil {
			return err
		}
	}
	if start != nil && start.StartID != "" {
		return c.svc.startConversation(c.ctx, c.ch, user, start)
	}
	return nil
}

// callPlugin hands a frame to the channel's plugin, waiting up to
// Limits.PluginWait while the plugin restarts.
func (c *conn) callPlugin(data []byte) (*sdk.FrameResult, error) {
	received := time.Now()
	deadline := received.Add(c.svc.limits.PluginWait)
	backoff := 50 * time.Millisecond
	for {
		res, err := c.callOnce(data, received)
		if err == nil || !errors.Is(err, pluginhost.ErrPluginDown) || time.Now().Add(backoff).After(deadline) {
			return res, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return nil, err
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (c *conn) callOnce(data []byte, received time.Time) (*sdk.FrameResult, error) {
	p, err := c.svc.opts.Plugins.Channel(c.ch.Type)
	if err != nil {
		return nil, err
	}
	sc, ok := p.(sdk.SocketChannel)
	if !ok {
		return nil, sdk.ErrNotSupported
	}
	ctx, cancel := context.WithTimeout(c.ctx, frameTimeout)
	defer cancel()
	return sc.HandleFrame(ctx, &sdk.Frame{ChannelID: c.ch.ID, UserID: c.key.user, Data: data, Received: received})
}

// end runs when the reader stops: it lets the writer finish, forgets the
// connection, and marks the user's unacknowledged messages as waiting when
// this was their last connection on the node.
func (c *conn) end() {
	c.shutdown(0, "", false)
	<-c.writerDone
	c.mu.Lock()
	// gorilla sends 1009 itself when a frame is over the read limit.
	sentClose := c.closeCode != 0 || c.closedWith == websocket.CloseMessageTooBig
	closedWith := c.closedWith
	c.mu.Unlock()
	connectionsOpen.Dec()
	connectionsClosed.WithLabelValues(strconv.Itoa(closedWith)).Inc()
	if sentClose {
		// Read and discard until the client's close or drainWait, so it
		// gets our close frame rather than a reset.
		_, _ = io.Copy(io.Discard, c.ws.NetConn())
	}
	_ = c.ws.Close()
	others := c.svc.hub.remove(c, c.key)
	if c.key.user != "" && !others && c.written > c.acked {
		c.markWaiting()
	}
	c.svc.hub.release()
}

// markWaiting has the deliveries in flight to this connection, the user's
// last on this node, wait for the user's next connection (their status
// says pending_connection), unless the user is connected to another node.
func (c *conn) markWaiting() {
	ctx, cancel := context.WithTimeout(context.Background(), c.svc.limits.WriteWait)
	defer cancel()
	elsewhere, err := c.svc.onlineElsewhere(ctx, c.ch.ID, []string{c.key.user})
	if err == nil && !elsewhere[c.key.user] {
		err = c.svc.opts.Store.MarkWebchatWaiting(ctx, c.ch.ID, c.key.user, time.Time{})
	}
	if err != nil {
		c.svc.log.Warn("web chat: mark deliveries waiting", "channel", c.ch.ID, "user", c.key.user, "err", err)
	}
}

func (c *conn) writeLoop() {
	defer close(c.writerDone)
	l := c.svc.limits
	ping := time.NewTicker(l.PongWait * 9 / 10)
	defer ping.Stop()
	started := false
	for {
		select {
		case it := <-c.out:
			if err := c.write(it, &started); err != nil {
				c.shutdown(0, "", false)
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(l.WriteWait)); err != nil {
				c.shutdown(0, "", false)
				return
			}
		case <-c.done:
			c.flushAndClose(&started)
			return
		}
	}
}

// flushAndClose writes what is queued when asked to, then the close frame.
func (c *conn) flushAndClose(started *bool) {
	c.mu.Lock()
	code, reason, drain := c.closeCode, c.closeReason, c.drainOut
	c.mu.Unlock()
	for drain {
		select {
		case it := <-c.out:
			if c.write(it, started) != nil {
				return
			}
		default:
			drain = false
		}
	}
	if code != 0 {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
			time.Now().Add(c.svc.limits.WriteWait))
	}
}

// write writes one item. Stored messages go out once each and in sequence
// order: nothing before the session's resume point is written, a message
// already written is skipped, and a gap (a message stored but published
// out of order, or while the connection was being registered) is filled
// from the store first. A gap the store cannot fill (messages expired) is
// passed over: sequence numbers may skip values.
func (c *conn) write(it outItem, started *bool) error {
	switch {
	case it.resume:
		*started, c.written = true, it.seq
		return c.replay(0)
	case it.seq == 0:
		return c.send(it.frame)
	case !*started || it.seq <= c.written:
		return nil
	case it.fetch:
		return c.replay(0)
	case it.seq > c.written+1:
		if err := c.replay(it.seq); err != nil {
			return err
		}
	}
	if err := c.send(it.frame); err != nil {
		return err
	}
	c.written = it.seq
	return nil
}

// replay writes the stored messages after c.written and before the
// sequence number before (0: all).
func (c *conn) replay(before int64) error {
	for {
		ms, err := c.svc.opts.Store.ListWebchat(c.ctx, c.ch.ID, c.key.user, c.written, replayPage)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if before > 0 && m.Seq >= before {
				return nil
			}
			if err := c.send(m.Frame); err != nil {
				return err
			}
			c.written = m.Seq
		}
		if len(ms) < replayPage {
			return nil
		}
	}
}

func (c *conn) send(frame []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.svc.limits.WriteWait)); err != nil {
		return err
	}
	framesTotal.WithLabelValues("out").Inc()
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}
