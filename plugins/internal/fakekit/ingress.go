package fakekit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
)

// Ingress stands in for the gateway's channel ingress in a plugin's own
// tests: it hands each request, raw, to the plugin the way the gateway does
// (exact body, headers, and the public URL = base + request URI, never
// rebuilt from Host), writes the plugin's answer and records its events.
type Ingress struct {
	srv       *httptest.Server
	ch        sdk.Channel
	channelID string

	mu     sync.Mutex
	events []sdk.Event
}

// NewIngress serves ch for channelID until Close. Its WebhookURL is what the
// test passes as sdk.InstanceConfig.WebhookURL and to the platform driver.
func NewIngress(ch sdk.Channel, channelID string) *Ingress {
	in := &Ingress{ch: ch, channelID: channelID}
	in.srv = httptest.NewServer(http.HandlerFunc(in.serve))
	return in
}

// WebhookURL is the public URL the platform calls for the channel.
func (in *Ingress) WebhookURL() string {
	return in.srv.URL + "/channels/" + in.channelID + "/webhook"
}

// Events returns every event the plugin produced so far.
func (in *Ingress) Events() []sdk.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]sdk.Event(nil), in.events...)
}

// Close stops the server.
func (in *Ingress) Close() { in.srv.Close() }

func (in *Ingress) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	resp, err := in.ch.HandleHTTP(r.Context(), &sdk.HTTPRequest{
		ChannelID: in.channelID,
		Method:    r.Method,
		URL:       in.srv.URL + r.URL.RequestURI(),
		Header:    r.Header.Clone(),
		Body:      body,
		Received:  time.Now(),
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
	in.mu.Lock()
	in.events = append(in.events, resp.Events...)
	in.mu.Unlock()
}
