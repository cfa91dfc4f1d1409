package netguard_test

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/sdk/netguard"
)

// internalByStdlib classifies an address with the net package's own
// predicates, independently of netguard's tables: an address is internal
// when it is zoned, or when it, the IPv4 address it maps, or the IPv4
// address a NAT64 prefix carries is not global unicast or is private.
func internalByStdlib(s string) bool {
	host, zone, _ := strings.Cut(s, "%")
	if zone != "" {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	cands := []net.IP{ip}
	if len(ip) == net.IPv6len && ip.To4() == nil && ip[0] == 0 && ip[1] == 0x64 && ip[2] == 0xff && ip[3] == 0x9b &&
		string(ip[4:12]) == "\x00\x00\x00\x00\x00\x00\x00\x00" {
		cands = append(cands, net.IPv4(ip[12], ip[13], ip[14], ip[15]))
	}
	for _, c := range cands {
		if c.IsLoopback() || c.IsPrivate() || c.IsUnspecified() || c.IsMulticast() ||
			c.IsLinkLocalUnicast() || c.IsLinkLocalMulticast() || c.IsInterfaceLocalMulticast() || !c.IsGlobalUnicast() ||
			c.Equal(net.IPv4bcast) {
			return true
		}
	}
	return false
}

func seedAddrs(f *testing.F) {
	for _, s := range internalSpellings {
		f.Add(s)
	}
	for _, s := range publicAddrs {
		f.Add(s)
	}
}

// FuzzCheckAddr: anything the net package calls internal is refused, by
// CheckAddr and by the dial-time Control hook alike, and AllowPrivate
// refuses nothing.
func FuzzCheckAddr(f *testing.F) {
	seedAddrs(f)
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		o := netguard.Options{}
		checkErr := o.CheckAddr(ip)
		if checkErr != nil && !errors.Is(checkErr, netguard.ErrForbidden) {
			t.Fatalf("CheckAddr(%s) = %v, not ErrForbidden", s, checkErr)
		}
		if internalByStdlib(s) && checkErr == nil {
			t.Fatalf("CheckAddr(%s) allowed an internal address", s)
		}
		ctlErr := o.Control("tcp", netip.AddrPortFrom(ip, 443).String(), nil)
		if (ctlErr == nil) != (checkErr == nil) {
			t.Fatalf("Control and CheckAddr disagree on %s: %v vs %v", s, ctlErr, checkErr)
		}
		if err := (netguard.Options{AllowPrivate: true}).CheckAddr(ip); err != nil {
			t.Fatalf("AllowPrivate refused %s: %v", s, err)
		}
	})
}

// atonIPv4 reads host the way inet_aton does (1 to 4 parts, each decimal,
// 0-prefixed octal or 0x hex, the last filling the remaining bytes).
func atonIPv4(host string) (net.IP, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return nil, false
	}
	var v [4]uint64
	for i, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			p, base = p[2:], 16
			if p == "" {
				p = "0"
			}
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		if p == "" || strings.ContainsAny(p, "+-_") {
			return nil, false
		}
		n, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return nil, false
		}
		v[i] = n
	}
	n := len(parts)
	for i := 0; i < n-1; i++ {
		if v[i] > 255 {
			return nil, false
		}
	}
	if v[n-1] >= 1<<(8*(5-n)) {
		return nil, false
	}
	var b [4]byte
	for i := 0; i < n-1; i++ {
		b[i] = byte(v[i])
	}
	last := v[n-1]
	for i := 3; i >= n-1; i-- {
		b[i] = byte(last)
		last >>= 8
	}
	return net.IPv4(b[0], b[1], b[2], b[3]), true
}

// FuzzCheckURL: a URL CheckURL accepts is http(s) without credentials, and
// its host is neither a literal internal address nor a legacy numeric
// spelling of one.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"http://[::1%25lo]:8080/", "http://2130706433/", "http://0x7f.1/", "http://017700000001/", "http://127.1/",
		"https://example.com/x", "http://8.8.8.8:80/", "http://[::ffff:0:127.0.0.1]/", "https://u:p@example.com/",
		"http://localhost./", "ftp://x/", "http://[64:ff9b::a9fe:a9fe]/",
	} {
		f.Add(s)
	}
	o := netguard.Options{AllowHTTP: true}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		err = o.CheckURL(u)
		if err != nil {
			if !errors.Is(err, netguard.ErrForbidden) {
				t.Fatalf("CheckURL(%q) = %v, not ErrForbidden", raw, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.User != nil {
			t.Fatalf("CheckURL(%q) accepted scheme %q / userinfo", raw, u.Scheme)
		}
		host := strings.TrimSuffix(u.Hostname(), ".")
		if internalByStdlib(host) {
			t.Fatalf("CheckURL(%q) accepted internal host %q", raw, host)
		}
		if ip, ok := atonIPv4(host); ok && internalByStdlib(ip.String()) {
			t.Fatalf("CheckURL(%q) accepted %q, which inet_aton reads as %s", raw, host, ip)
		}
		if strings.EqualFold(host, "localhost") {
			t.Fatalf("CheckURL(%q) accepted localhost", raw)
		}
	})
}
