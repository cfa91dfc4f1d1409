package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-gw/switchboard/sdk/message"
)

// SinkMessage is one message the webhook plugin posted to a Sink.
type SinkMessage struct {
	ChannelID      string          `json:"channel_id"`
	UserID         string          `json:"user_id"`
	IdempotencyKey string          `json:"idempotency_key"`
	Attempt        int             `json:"attempt"`
	Message        message.Content `json:"message"`
	Text           string          `json:"text"`
	At             time.Time       `json:"-"`
}

// Sink is a bot developer's endpoint for a webhook channel: it verifies
// every request's Standard Webhooks signature and records the messages.
type Sink struct {
	URL string
	// Handler, when set, answers instead of 204 (after recording).
	Handler func(w http.ResponseWriter, m SinkMessage) bool

	mu       sync.Mutex
	msgs     []SinkMessage
	refused  int
	arrived  chan struct{}
	verifier *standardwebhooks.Webhook
}

// NewSink starts a sink that verifies signatures with secret (whsec_…).
func NewSink(t testing.TB, secret string) *Sink {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{verifier: wh, arrived: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/sink"
	return s
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := s.verifier.Verify(body, r.Header); err != nil {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m SinkMessage
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m.At = time.Now()
	if s.Handler != nil && s.Handler(w, m) {
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// Messages returns what arrived so far.
func (s *Sink) Messages() []SinkMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SinkMessage(nil), s.msgs...)
}

// Refused counts requests with bad signatures.
func (s *Sink) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// WaitFor waits until messages with at least n distinct idempotency keys
// arrived (re-sends of one message count once) and returns all of them.
func (s *Sink) WaitFor(t testing.TB, n int, timeout time.Duration) []SinkMessage {
	t.Helper()
	deadline := time.After(timeout)
	for {
		ms := s.Messages()
		if distinct(ms) >= n {
			return ms
		}
		select {
		case <-s.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("sink got %d distinct messages, want %d, within %s", distinct(ms), n, timeout)
		}
	}
}

func distinct(ms []SinkMessage) int {
	keys := map[string]bool{}
	for _, m := range ms {
		keys[m.IdempotencyKey] = true
	}
	return len(keys)
}
