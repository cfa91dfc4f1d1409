// Package netguard keeps outbound HTTP requests made on behalf of tenants
// (bot call steps, data file fetches, webhook channel posts) away from the
// gateway's own network: loopback, private ranges, link-local (cloud
// metadata at 169.254.169.254) and the other special-purpose blocks, in
// every spelling (zoned, IPv4-mapped, NAT64, numeric host names).
//
// The check runs in the dialer's Control hook, on the address actually being
// connected to, after DNS resolution. Checking the URL's host name alone is not
// enough: a public name can resolve to 127.0.0.1, or re-resolve to it between
// a check and the dial (DNS rebinding).
package netguard

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// EnvAllowInternal is the plugin environment variable through which the
// gateway passes on security.allow_internal_fetch: when it is "true", a
// plugin that fetches tenant-supplied URLs may reach internal addresses
// (local development and tests). Plugins read it with AllowInternalFromEnv.
const EnvAllowInternal = "SWITCHBOARD_ALLOW_INTERNAL_FETCH"

// AllowInternalFromEnv reports whether getenv (os.Getenv) carries
// EnvAllowInternal=true.
func AllowInternalFromEnv(getenv func(string) string) bool { return getenv(EnvAllowInternal) == "true" }

// ErrForbidden is wrapped by every refusal of this package.
var ErrForbidden = errors.New("netguard: destination not allowed")

// Options say what may be reached. The zero value allows only public
// addresses over https.
type Options struct {
	// AllowHTTP permits plain http URLs (local development).
	AllowHTTP bool
	// AllowPrivate permits every internal address (local development, or
	// endpoints deliberately hosted on a private network).
	AllowPrivate bool
	// Allow lists internal prefixes that are permitted anyway, e.g. one
	// private subnet where a trusted service lives.
	Allow []netip.Prefix
}

// internal4 lists the IPv4 special-purpose blocks (IANA registry) that must
// not be reached by tenant-controlled requests.
var internal4 = mustPrefixes(
	"0.0.0.0/8",       // "this network", unspecified
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // carrier-grade NAT
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, cloud metadata
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation
	"192.88.99.0/24",  // 6to4 relay anycast
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, broadcast
)

// internal6 lists the IPv6 blocks refused inside global unicast (2000::/3);
// everything outside 2000::/3 (loopback, unspecified, IPv4-compatible,
// unique local, link-local, site-local, multicast, discard, unallocated) is
// refused as a whole, and the IPv4-mapped and NAT64 forms are judged by the
// IPv4 address inside them.
var internal6 = mustPrefixes(
	"2001::/23",     // IETF protocol assignments: Teredo (embeds IPv4), benchmarking, ORCHID
	"2001:db8::/32", // documentation
	"2002::/16",     // 6to4: embeds an IPv4 address, reached through relays
	"3fff::/20",     // documentation
)

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	nat64          = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 prefix: IPv4 in the last 32 bits
)

func mustPrefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// CheckAddr reports whether ip may be connected to. Every spelling of an
// internal address is refused: a zone (%eth0) makes an address scoped to an
// interface, never public, so zoned addresses are refused outright (they
// would also slip past netip.Prefix.Contains, which never matches one);
// IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses are
// judged by the IPv4 address they carry.
func (o Options) CheckAddr(ip netip.Addr) error {
	if o.AllowPrivate {
		return nil
	}
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbidden)
	}
	v4 := ip.Unmap()
	if nat64.Contains(v4) {
		b := v4.As16()
		v4 = netip.AddrFrom4([4]byte(b[12:]))
	}
	for _, p := range o.Allow {
		if p.Contains(v4) || p.Contains(ip.WithZone("")) {
			return nil
		}
	}
	if ip.Zone() != "" {
		return fmt.Errorf("%w: %s is scoped to an interface (zoned addresses are never public)", ErrForbidden, ip)
	}
	if v4.Is4() {
		for _, p := range internal4 {
			if p.Contains(v4) {
				return fmt.Errorf("%w: %s is an internal address (%s)", ErrForbidden, ip, p)
			}
		}
		return nil
	}
	if !globalUnicast6.Contains(ip) {
		return fmt.Errorf("%w: %s is not a global unicast address (outside %s)", ErrForbidden, ip, globalUnicast6)
	}
	for _, p := range internal6 {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is an internal address (%s)", ErrForbidden, ip, p)
		}
	}
	return nil
}

// CheckURL rejects a URL that can be refused before any connection: a scheme
// other than https (or http when allowed), userinfo, a literal internal
// address, a numeric host that is not a canonical address, or localhost.
// Other host names are checked when dialled (see Control).
func (o Options) CheckURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && o.AllowHTTP:
	case u.Scheme == "http":
		return fmt.Errorf("%w: %s: only https is allowed", ErrForbidden, u.Redacted())
	default:
		return fmt.Errorf("%w: %s: unsupported scheme %q", ErrForbidden, u.Redacted(), u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: %s: credentials in the URL are not allowed", ErrForbidden, u.Redacted())
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if host == "" {
		return fmt.Errorf("%w: %q has no host", ErrForbidden, u.Redacted())
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := o.CheckAddr(ip); err != nil {
			return fmt.Errorf("%w (in %s)", err, u.Redacted())
		}
		return nil
	}
	// A control character, a space or a percent sign (a host is
	// percent-decoded; only an IPv6 zone, above, holds one) is in no host
	// name. The C resolver would stop at a NUL and look up what comes
	// before it: nothing, the local host.
	if i := strings.IndexFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '%' || r == '\\' }); i >= 0 {
		return fmt.Errorf("%w: %s: host %q holds %q, which no host name does", ErrForbidden, u.Redacted(), host, host[i])
	}
	if o.AllowPrivate {
		return nil
	}
	// A host whose last label is a number is an IPv4 address to browsers and
	// to inet_aton (the C resolver): 2130706433, 0x7f.1, 017700000001 and
	// 127.1 all mean 127.0.0.1. No top-level domain is numeric, so such a
	// host is refused unless it is a canonical dotted quad (handled above).
	labels := strings.Split(host, ".")
	if numericLabel(labels[len(labels)-1]) {
		return fmt.Errorf("%w: %s: host %q is a non-canonical IPv4 address; write it as a dotted quad", ErrForbidden, u.Redacted(), host)
	}
	if strings.EqualFold(labels[len(labels)-1], "localhost") {
		return fmt.Errorf("%w: %s: localhost is the gateway itself", ErrForbidden, u.Redacted())
	}
	return nil
}

// numericLabel reports whether s is a decimal, octal or 0x-hex number, the
// forms inet_aton and the WHATWG URL parser read as IPv4 parts.
func numericLabel(s string) bool {
	digits := "0123456789"
	if len(s) > 1 && (s[:2] == "0x" || s[:2] == "0X") {
		s, digits = s[2:], "0123456789abcdefABCDEF"
		if s == "" {
			return true // "0x" alone is 0 to the URL parser
		}
	}
	return s != "" && strings.Trim(s, digits) == ""
}

// Control is a net.Dialer Control hook refusing internal addresses. It sees
// the resolved address, so DNS names cannot smuggle an internal one in.
func (o Options) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrForbidden, address, err)
	}
	return o.CheckAddr(ap.Addr())
}

// Dialer returns a dialer that refuses internal addresses.
func (o Options) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: o.Control}
}

// Client returns an HTTP client that applies CheckURL to every request it
// sends (the first and each redirect) and dials through the guarded dialer.
// Environment proxies are ignored: a proxy would do the dialling and so
// bypass the guard. tlsConfig may be nil (system roots).
func (o Options) Client(timeout time.Duration, tlsConfig *tls.Config) *http.Client {
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           o.Dialer().DialContext,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: o.Transport(t),
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return fmt.Errorf("netguard: stopped after %d redirects", len(via))
			}
			return nil
		},
	}
}

// Transport wraps next so that every request's URL passes CheckURL before
// next sees it. next should dial through Dialer (or Control): the URL check
// alone cannot see what a host name resolves to.
func (o Options) Transport(next http.RoundTripper) http.RoundTripper {
	return &guardedTransport{o: o, next: next}
}

type guardedTransport struct {
	o    Options
	next http.RoundTripper
}

func (g *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.o.CheckURL(req.URL); err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach next.
func (g *guardedTransport) CloseIdleConnections() {
	if c, ok := g.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
