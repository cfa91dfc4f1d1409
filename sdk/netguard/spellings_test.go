package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/sdk/netguard"
)

// internalSpellings are addresses that reach (or may reach) the gateway's
// own network, each written in a way a naive prefix check misses.
var internalSpellings = []string{
	"::1%lo", "::1%1", "fe80::1%eth0", "fe80::1", "2606:4700:4700::1111%eth0", // zoned
	"::127.0.0.1", "::10.0.0.1", "::8.8.8.8", // IPv4-compatible (deprecated, never public)
	"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:7f00:1", // IPv4-mapped
	"::ffff:0:127.0.0.1", "::ffff:0:8.8.8.8", // IPv4-translated (SIIT)
	"64:ff9b::127.0.0.1", "64:ff9b::10.1.1.1", "64:ff9b::a9fe:a9fe", // NAT64 with an internal IPv4 inside
	"64:ff9b:1::1", "64:ff9b:1:2::8.8.8.8", // local-use NAT64
	"2002:7f00:1::1", "2002:0a00:0001::", "2002:0808:0808::1", // 6to4 (deprecated relays)
	"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::1", // Teredo
	"0.0.0.0", "::", "0.1.2.3", // unspecified, "this network"
	"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2", "ff0e::1", // multicast
	"255.255.255.255", "240.0.0.1", // broadcast, reserved
	"169.254.169.254", "169.254.0.1", "fe80::a:b", "febf::1", // link-local
	"fec0::1",                       // site-local (deprecated)
	"100.64.0.1", "100.127.255.254", // carrier-grade NAT
	"198.18.0.1", "198.19.255.255", "2001:2::1", // benchmarking
	"192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "3fff::1", // documentation
	"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fd00::1", "fc00::1", // private, unique local
	"192.0.0.8", "192.88.99.1", "100::1", "5f00::1", "4000::1", "::2", "1::", // IETF, relay, discard, SRv6, unallocated
	"127.0.0.1", "127.255.255.254", "::1", // loopback
}

// publicAddrs must stay reachable: a guard that refuses them is useless.
var publicAddrs = []string{
	"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.169.0.1",
	"198.20.0.1", "223.255.255.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2001:4860:4860::8888",
	"::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "64:ff9b::5db8:d822",
}

func TestCheckAddrSpellings(t *testing.T) {
	for _, s := range internalSpellings {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("bad test address %q: %v", s, err)
		}
		if err := (netguard.Options{}).CheckAddr(ip); !errors.Is(err, netguard.ErrForbidden) {
			t.Errorf("CheckAddr(%s) = %v, want ErrForbidden", s, err)
		}
		if err := (netguard.Options{AllowPrivate: true}).CheckAddr(ip); err != nil {
			t.Errorf("AllowPrivate: CheckAddr(%s) = %v", s, err)
		}
	}
	for _, s := range publicAddrs {
		if err := (netguard.Options{}).CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want allowed", s, err)
		}
	}
}

// TestAllowListDoesNotOpenZones: an allow-listed prefix is matched on the
// address without its zone, and the zone does not make other addresses pass.
func TestAllowListSeesThroughSpellings(t *testing.T) {
	o := netguard.Options{Allow: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}
	for _, s := range []string{"10.9.1.1", "::ffff:10.9.1.1"} {
		if err := o.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("allow-listed %s refused: %v", s, err)
		}
	}
	for _, s := range []string{"10.8.1.1", "::ffff:10.8.1.1", "::1%lo", "64:ff9b::10.8.1.1"} {
		if err := o.CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, netguard.ErrForbidden) {
			t.Errorf("CheckAddr(%s) = %v, want ErrForbidden", s, err)
		}
	}
}

func TestCheckURLSpellings(t *testing.T) {
	refused := []string{
		"http://[::1%25lo]:8080/", "http://[fe80::1%25eth0]/", "http://[::127.0.0.1]/", "http://[::ffff:0:127.0.0.1]/",
		"http://[::ffff:127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/",
		"http://2130706433/", "http://0x7f.1/", "http://017700000001/", "http://127.1/", "http://0x7f000001/",
		"http://0177.0.0.1/", "http://127.0.0.1./", "http://0/", "http://1.2.3.0x4/", "http://134744072/",
		"http://localhost/", "http://LOCALHOST./", "http://api.localhost/", "http://[::]/", "http://0.0.0.0:8080/",
	}
	o := netguard.Options{AllowHTTP: true}
	for _, s := range refused {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("bad test URL %q: %v", s, err)
		}
		if err := o.CheckURL(u); !errors.Is(err, netguard.ErrForbidden) {
			t.Errorf("CheckURL(%s) = %v, want ErrForbidden", s, err)
		}
	}
	for _, s := range []string{"http://8.8.8.8/", "http://[2606:4700:4700::1111]/", "http://example.com/", "http://1password.com/", "http://123.example/", "http://a.b.c.d/"} {
		u, _ := url.Parse(s)
		if err := o.CheckURL(u); err != nil {
			t.Errorf("CheckURL(%s) = %v, want allowed", s, err)
		}
	}
}

// fetch GETs target with c and reports the error (nil: the server answered).
func fetch(t *testing.T, c *http.Client, target string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// listen starts a server on a loopback address of the given network and
// returns its port; the test is skipped only when the host has no such
// loopback (no IPv6).
func listen(t *testing.T, network, addr string, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestClientRefusesSpellingsOfLoopback fetches a real server on [::1] and
// 127.0.0.1 through zoned and mapped spellings of its address.
func TestClientRefusesSpellingsOfLoopback(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	p6 := listen(t, "tcp6", "[::1]:0", ok)
	p4 := listen(t, "tcp4", "127.0.0.1:0", ok)
	targets := []string{
		"http://[::1%25lo]:" + p6 + "/",
		"http://[::1%251]:" + p6 + "/",
		"http://[::ffff:127.0.0.1]:" + p4 + "/",
		"http://[::ffff:7f00:1]:" + p4 + "/",
	}
	for _, target := range targets {
		if err := fetch(t, netguard.Options{AllowHTTP: true}.Client(0, nil), target); !errors.Is(err, netguard.ErrForbidden) {
			t.Errorf("guarded client fetched %s: %v", target, err)
		}
		// The same spelling does reach the server when allowed: the
		// refusal above is the guard's, not a dead address.
		if err := fetch(t, netguard.Options{AllowHTTP: true, AllowPrivate: true}.Client(0, nil), target); err != nil {
			t.Errorf("AllowPrivate client: %s: %v", target, err)
		}
	}
}

// TestDialerRefusesZonedLoopback: the dial-time check alone (no URL check
// before it) refuses a zoned address.
func TestDialerRefusesZonedLoopback(t *testing.T) {
	p6 := listen(t, "tcp6", "[::1]:0", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	c, err := netguard.Options{}.Dialer().DialContext(t.Context(), "tcp", "[::1%lo]:"+p6)
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("dial [::1%%lo]: %v, want ErrForbidden", err)
	}
}

// TestClientChecksRedirectSpellings: a permitted server redirecting to a
// zoned spelling of loopback is not followed.
func TestClientChecksRedirectSpellings(t *testing.T) {
	reached := false
	p6 := listen(t, "tcp6", "[::1]:0", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	p4 := listen(t, "tcp4", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://[::1%25lo]:"+p6+"/", http.StatusFound)
	}))
	o := netguard.Options{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if err := fetch(t, o.Client(0, nil), "http://127.0.0.1:"+p4+"/"); !errors.Is(err, netguard.ErrForbidden) || reached {
		t.Fatalf("redirect to zoned loopback: err %v, reached %v; want ErrForbidden", err, reached)
	}
}

// TestClientChecksFirstURL: the client refuses a numeric spelling of
// loopback in the URL it is given, before any resolver could read it.
func TestClientChecksFirstURL(t *testing.T) {
	p4 := listen(t, "tcp4", "127.0.0.1:0", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, host := range []string{"127.1", "2130706433", "0x7f.1", "017700000001", "localhost"} {
		target := "http://" + host + ":" + p4 + "/"
		if err := fetch(t, netguard.Options{AllowHTTP: true}.Client(0, nil), target); !errors.Is(err, netguard.ErrForbidden) {
			t.Errorf("guarded client: %s: %v, want ErrForbidden", target, err)
		}
	}
}
