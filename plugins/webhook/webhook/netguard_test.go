package webhook_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"

	"github.com/switchboard-gw/switchboard/plugins/webhook/webhook"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
	"github.com/switchboard-gw/switchboard/sdk/netguard"
)

// TestConfigureRefusesInternalURL: without AllowInternal a channel URL
// spelling an internal address is a config error on url, whatever the
// spelling.
func TestConfigureRefusesInternalURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"http://127.0.0.1:8080/hook", "http://[::1%25lo]:8080/", "http://[fe80::1%25eth0]/", "http://[::ffff:127.0.0.1]/",
		"http://[::127.0.0.1]/", "http://2130706433/", "http://0x7f.1/", "http://localhost:9/", "https://169.254.169.254/",
	} {
		err := webhook.New(webhook.Options{}).Configure(t.Context(), validConfig("wh", u))
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) || ce.Fields["url"] == "" {
			t.Errorf("Configure(%s) = %v, want a ConfigError on url", u, err)
		}
		if err := webhook.New(local).Configure(t.Context(), validConfig("wh", u)); err != nil {
			t.Errorf("AllowInternal: Configure(%s) = %v", u, err)
		}
	}
}

// TestSendRefusesNameResolvingInternally: a host name that passes the
// config check but resolves to an internal address is refused when dialled,
// permanently, and the receiver sees nothing.
func TestSendRefusesNameResolvingInternally(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name")
	}
	addrs, err := net.LookupHost(host)
	if err != nil || len(addrs) == 0 {
		t.Skipf("host name %q does not resolve: %v", host, err)
	}
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err != nil || (netguard.Options{}).CheckAddr(ip) == nil {
			t.Skipf("host name %q resolves to %s, not only to internal addresses", host, a)
		}
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ch := webhook.New(webhook.Options{})
	if err := ch.Configure(t.Context(), validConfig("wh", "http://"+host+":"+port+"/")); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	results, err := ch.Send(t.Context(), []sdk.Outbound{{ChannelID: "wh", IdempotencyKey: "k1", Recipient: "u", Content: message.Text("x")}})
	if err != nil {
		t.Fatal(err)
	}
	var se *sdk.SendError
	if !errors.As(results[0].Err, &se) || se.Kind != sdk.KindPermanent || se.Code != "destination_forbidden" {
		// A host name resolving to a public address is no test of the guard.
		t.Fatalf("Send to %s (%v) = %v, want permanent destination_forbidden", host, addrs, results[0].Err)
	}
	if hits.Load() != 0 {
		t.Fatalf("receiver reached %d times", hits.Load())
	}
}
