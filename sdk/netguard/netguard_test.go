package netguard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/sdk/netguard"
)

func TestCheckAddr(t *testing.T) {
	refused := []string{
		"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
		"100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
		"64:ff9b::7f00:1", "224.0.0.1", "255.255.255.255",
	}
	for _, s := range refused {
		if err := (netguard.Options{}).CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, netguard.ErrForbidden) {
			t.Errorf("CheckAddr(%s) = %v, want ErrForbidden", s, err)
		}
		if err := (netguard.Options{AllowPrivate: true}).CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("AllowPrivate: CheckAddr(%s) = %v", s, err)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"} {
		if err := (netguard.Options{}).CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want allowed", s, err)
		}
	}
	allow := netguard.Options{Allow: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}
	if err := allow.CheckAddr(netip.MustParseAddr("10.9.1.1")); err != nil {
		t.Errorf("allow-listed prefix refused: %v", err)
	}
	if err := allow.CheckAddr(netip.MustParseAddr("10.8.1.1")); err == nil {
		t.Error("address outside the allow list accepted")
	}
}

func TestCheckURL(t *testing.T) {
	cases := []struct {
		url  string
		o    netguard.Options
		okay bool
	}{
		{"https://example.com/hook", netguard.Options{}, true},
		{"http://example.com/hook", netguard.Options{}, false},
		{"http://example.com/hook", netguard.Options{AllowHTTP: true}, true},
		{"ftp://example.com/x", netguard.Options{AllowHTTP: true}, false},
		{"https://user:pw@example.com/", netguard.Options{}, false},
		{"https://127.0.0.1/", netguard.Options{}, false},
		{"https://[::1]:8443/", netguard.Options{}, false},
		{"https:///nohost", netguard.Options{}, false},
	}
	for _, c := range cases {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.o.CheckURL(u); (err == nil) != c.okay {
			t.Errorf("CheckURL(%s, %+v) = %v, want ok=%v", c.url, c.o, err, c.okay)
		}
	}
}

// TestClientRefusesLoopbackByName dials a loopback server through a host
// name, which only the dial-time check can catch.
func TestClientRefusesLoopbackByName(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	target := "http://localhost:" + u.Port() + "/"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get := func(c *http.Client) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(netguard.Options{AllowHTTP: true}.Client(0, nil)); !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("guarded client reached loopback: %v", err)
	}
	if err := get(netguard.Options{AllowHTTP: true, AllowPrivate: true}.Client(0, nil)); err != nil {
		t.Fatalf("AllowPrivate client: %v", err)
	}
}

func TestClientChecksRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://example.com/", http.StatusFound)
	}))
	defer srv.Close()
	c := netguard.Options{AllowHTTP: true, AllowPrivate: true}.Client(0, nil)
	resp, err := c.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("redirect to ftp: %v, want ErrForbidden", err)
	}
}
