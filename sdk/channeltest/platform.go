package channeltest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// platform is the fake platform: an httptest.Server that decodes every send
// request with Harness.Decode, records it and answers with the outcome
// scripted for its recipient (OK unless scripted). Scripting by recipient
// keeps outcomes deterministic when a plugin sends concurrently.
type platform struct {
	srv *httptest.Server

	mu         sync.Mutex
	outcomes   map[string]Outcome
	deliveries []Delivery
}

func newPlatform(t testing.TB, h Harness) *platform {
	p := &platform{outcomes: map[string]Outcome{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("fake platform: read request: %v", err)
			return
		}
		d, err := h.Decode(r, body)
		if err != nil {
			t.Errorf("fake platform: plugin sent a request the platform would reject: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.deliveries = append(p.deliveries, d)
		o := p.outcomes[d.Recipient]
		p.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.Respond(w, r, o)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// script makes every send to recipient end with o.
func (p *platform) script(recipient string, o Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outcomes[recipient] = o
}

// to returns what was delivered to recipient, in arrival order.
func (p *platform) to(recipient string) []Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Delivery
	for _, d := range p.deliveries {
		if d.Recipient == recipient {
			out = append(out, d)
		}
	}
	return out
}
