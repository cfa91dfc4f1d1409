// Package netguard keeps outbound HTTP requests made on behalf of tenants
// (bot call steps, data file fetches) away from the gateway's own network:
// loopback, private ranges, link-local (cloud metadata at 169.254.169.254),
// and the other special-purpose blocks.
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

// internal lists the special-purpose blocks (IANA registries) that must not
// be reached by tenant-controlled requests.
var internal = mustPrefixes(
	"0.0.0.0/8",       // "this network"
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
	"::/128",          // unspecified
	"::1/128",         // loopback
	"64:ff9b::/96",    // NAT64: embeds an IPv4 address
	"64:ff9b:1::/48",  // local-use NAT64
	"100::/64",        // discard
	"2001::/32",       // Teredo: embeds an IPv4 address
	"2001:db8::/32",   // documentation
	"2002::/16",       // 6to4: embeds an IPv4 address
	"fc00::/7",        // unique local
	"fe80::/10",       // link-local
	"ff00::/8",        // multicast
)

func mustPrefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// CheckAddr reports whether ip may be connected to.
func (o Options) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if o.AllowPrivate {
		return nil
	}
	for _, p := range o.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbidden)
	}
	for _, p := range internal {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is an internal address (%s)", ErrForbidden, ip, p)
		}
	}
	return nil
}

// CheckURL rejects a URL that can be refused before any connection: a scheme
// other than https (or http when allowed), userinfo, or a literal internal
// address. Host names are checked when dialled (see Control).
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
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: %q has no host", ErrForbidden, u.Redacted())
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(host, ".")); err == nil {
		return o.CheckAddr(ip)
	}
	return nil
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

// Client returns an HTTP client whose every connection, including those of
// redirects, goes through the guarded dialer, with CheckURL applied to each
// redirect. Environment proxies are ignored: a proxy would do the dialling
// and so bypass the guard. tlsConfig may be nil (system roots).
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
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return fmt.Errorf("netguard: stopped after %d redirects", len(via))
			}
			return o.CheckURL(req.URL)
		},
	}
}
