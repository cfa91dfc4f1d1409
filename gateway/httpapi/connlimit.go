package httpapi

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// ConnLimits cap the connections a listener keeps open. Zero or negative
// fields switch a cap off.
type ConnLimits struct {
	// Max caps open connections overall, so the process never runs out of
	// file descriptors; a connection beyond it is answered 503 and closed.
	// (Leaving it in the kernel's accept queue instead would make clients
	// wait for a connect timeout, and a full queue drops even their SYNs.)
	Max int
	// PerAddress caps the open connections of one client address (an IPv6
	// /64 counts as one address: one host holds all of it). A connection
	// beyond it is answered 429 and closed, so one address cannot take the
	// whole of Max.
	PerAddress int
}

// LimitListener wraps ln so that it keeps to lim. Hijacked connections
// (websockets) count until they are closed.
func LimitListener(ln net.Listener, lim ConnLimits) net.Listener {
	return &limitListener{
		Listener: ln,
		lim:      lim,
		open:     map[netip.Prefix]int{},
		busy: refusalResponse(Errf(http.StatusServiceUnavailable, "server_busy", "",
			"the gateway has %d connections open (server.max_connections); retry shortly", lim.Max)),
		crowded: refusalResponse(Errf(http.StatusTooManyRequests, "too_many_connections", "",
			"this address already has %d connections open to the gateway (server.max_connections_per_address); reuse or close them", lim.PerAddress)),
	}
}

type limitListener struct {
	net.Listener
	lim           ConnLimits
	busy, crowded []byte // the answers over Max and over PerAddress

	mu    sync.Mutex
	total int
	open  map[netip.Prefix]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addressKey(c.RemoteAddr().String())
		if refusal := l.admit(key); refusal != nil {
			refuse(c, refusal)
			continue
		}
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

// admit counts a connection from key, or returns the answer refusing it.
func (l *limitListener) admit(key netip.Prefix) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Max > 0 && l.total >= l.lim.Max {
		return l.busy
	}
	if l.lim.PerAddress > 0 && l.open[key] >= l.lim.PerAddress {
		return l.crowded
	}
	l.total++
	l.open[key]++
	return nil
}

func (l *limitListener) closed(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// refuseWriteWait bounds writing a refusal; a fresh connection's kernel
// buffer takes it at once, so only a broken peer waits this long.
const refuseWriteWait = 100 * time.Millisecond

// refuse answers a connection over a cap in the error envelope (an HTTP/1
// client reads it as the answer to the request it is sending) and closes
// it.
func refuse(c net.Conn, answer []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(refuseWriteWait))
	_, _ = c.Write(answer)
	_ = c.Close()
}

func refusalResponse(e *APIError) []byte {
	body, _ := json.Marshal(envelope("", []*APIError{e}))
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s", e.Status, http.StatusText(e.Status), len(body), body)
}

// limitedConn gives its slot back when closed (once: net/http may close a
// connection twice).
type limitedConn struct {
	net.Conn
	l    *limitListener
	key  netip.Prefix
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.closed(c.key) })
	return err
}

// addressKey is the unit per-address limits count, for a remote address
// "ip:port": the IPv4 address, or the /64 of an IPv6 one, since one host is
// routinely given a whole /64. Unparseable addresses share one key.
func addressKey(hostport string) netip.Prefix {
	ap, _ := netip.ParseAddrPort(hostport)
	ip := ap.Addr().Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
