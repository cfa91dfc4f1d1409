package gatewaytest

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// RawConn is one client connection from a chosen loopback source address
// (127.0.0.0/8 is all loopback on Linux), spoken to byte by byte: for tests
// of per-address limits, idle keep-alive connections and slow bodies.
type RawConn struct {
	net.Conn
	r *bufio.Reader
}

// DialFrom connects to addr (host:port) from source address src. The
// connection is closed when the test ends.
func DialFrom(t testing.TB, src, addr string) *RawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &RawConn{Conn: c, r: bufio.NewReader(c)}
}

// Get sends one keep-alive GET and reads its answer, body included; nil
// when the connection ended without one. The connection stays open.
func (c *RawConn) Get(path string) *http.Response {
	if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: gateway\r\n\r\n")); err != nil {
		return nil
	}
	return c.ReadResponse()
}

// ReadResponse reads the next answer, body included (nil: none came
// within 10 s, or the connection ended).
func (c *RawConn) ReadResponse() *http.Response {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// Answer describes resp for a failure message ("no answer" for nil, as
// RawConn reports a connection that ended without one).
func Answer(resp *http.Response) string {
	if resp == nil {
		return "no answer (connection closed)"
	}
	return resp.Status
}
