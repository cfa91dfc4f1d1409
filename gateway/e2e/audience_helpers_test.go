package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// audienceWorkspace is a workspace with a webhook channel "news" posting to
// sinkURL and a bot whose "promo" flow a broadcast can trigger.
func audienceWorkspace(sinkURL string) string {
	return fmt.Sprintf(`
workspace: {id: media, name: Media}
bots:
  - name: newsbot
    default_flow: main
    flows:
      - id: main
        steps:
          - say: "Hello"
      - id: promo
        steps:
          - say: "Promo for {{ customer.first_name }}: {{ trigger.headline }}, code {{ trigger.code }} ({{ metadata.headline }})"
channels:
  - name: news
    id: media-news
    type: webhook
    bot: newsbot
    config: {url: %q}
    secrets:
      signing_secret: %s
      outbound_signing_secret: %s
`, sinkURL, gatewaytest.InboundSecret, gatewaytest.OutboundSecret)
}

// cio is a client of the Customer.io-compatible APIs of one workspace.
type cio struct {
	t        testing.TB
	url      string
	app      string // App API key
	track    string // Track API key
	wsID     string
	store    store.Tenancy
	lastResp *http.Response
}

func newCIO(t testing.TB, g *gatewaytest.Gateway, ws string) *cio {
	return &cio{t: t, url: g.URL, wsID: ws, store: g.Store,
		app:   gatewaytest.NewKey(t, g.Store, ws, store.ScopeApp, ""),
		track: gatewaytest.NewKey(t, g.Store, ws, store.ScopeTrack, "")}
}

// do sends a request and decodes the JSON answer into a map. A read over
// the App API's rate limit is sent again after its Retry-After, as
// Customer.io's clients do.
func (c *cio) do(method, path string, body any, basic bool) (int, map[string]any) {
	c.t.Helper()
	for {
		status, out := c.once(method, path, body, basic)
		if status != http.StatusTooManyRequests || method != http.MethodGet {
			return status, out
		}
		wait, err := strconv.Atoi(c.lastResp.Header.Get("Retry-After"))
		if err != nil || wait <= 0 {
			c.t.Fatalf("GET %s: 429 without a Retry-After: %v", path, out)
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
}

func (c *cio) once(method, path string, body any, basic bool) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if basic {
		req.SetBasicAuth(c.wsID, c.track)
	} else {
		req.Header.Set("Authorization", "Bearer "+c.app)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	c.lastResp = resp
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: status %d, body is not a JSON object: %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// must sends a request that must answer want.
func (c *cio) must(want int, method, path string, body any, basic bool) map[string]any {
	c.t.Helper()
	status, out := c.do(method, path, body, basic)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %v", method, path, status, want, out)
	}
	return out
}

func (c *cio) identify(id string, attrs map[string]any) {
	c.t.Helper()
	c.must(200, http.MethodPut, "/api/v1/customers/"+id, attrs, true)
}

// broadcast creates and activates a broadcast and returns its id.
func (c *cio) broadcast(def map[string]any) int64 {
	c.t.Helper()
	out := c.must(201, http.MethodPost, "/v1/broadcasts", def, false)
	id := int64(out["broadcast"].(map[string]any)["id"].(float64))
	c.must(200, http.MethodPost, fmt.Sprintf("/v1/broadcasts/%d/activate", id), nil, false)
	return id
}

// trigger triggers a broadcast and returns the trigger id.
func (c *cio) trigger(broadcast int64, body any) int64 {
	c.t.Helper()
	out := c.must(200, http.MethodPost, fmt.Sprintf("/v1/campaigns/%d/triggers", broadcast), body, false)
	return int64(out["id"].(float64))
}

// wait polls a trigger until its fan-out ended and nothing is pending.
func (c *cio) wait(broadcast, trigger int64) map[string]any {
	c.t.Helper()
	return c.poll(broadcast, trigger, func(st map[string]any) bool { return st["done"] == true })
}

// poll reads a trigger's status until ready says it is, within a minute,
// at a pace inside the App API's read limit (10 per second per key).
func (c *cio) poll(broadcast, trigger int64, ready func(status map[string]any) bool) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := c.must(200, http.MethodGet, fmt.Sprintf("/v1/campaigns/%d/triggers/%d", broadcast, trigger), nil, false)
		if ready(out) {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("trigger %d not ready: %v", trigger, out)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// triggerErrors returns all error lines of a trigger.
func (c *cio) triggerErrors(broadcast, trigger int64) []string {
	c.t.Helper()
	out := c.must(200, http.MethodGet, fmt.Sprintf("/v1/campaigns/%d/triggers/%d/errors?limit=1000", broadcast, trigger), nil, false)
	var lines []string
	for _, l := range out["errors"].([]any) {
		lines = append(lines, l.(string))
	}
	return lines
}

// triggerTexts returns, by recipient, the texts a trigger's deliveries
// brought to the sink (each idempotency key once).
func triggerTexts(sink *gatewaytest.Sink, trigger int64) map[string]string {
	prefix := fmt.Sprintf("trigger:%d:", trigger)
	out := map[string]string{}
	for _, m := range sink.Messages() {
		if strings.HasPrefix(m.IdempotencyKey, prefix) || strings.HasPrefix(m.IdempotencyKey, "conversation:"+prefix) {
			out[m.UserID] = m.Text
		}
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// firstError returns the first entry of an errors envelope.
func firstError(t testing.TB, out map[string]any) map[string]any {
	t.Helper()
	errs, ok := out["errors"].([]any)
	if !ok || len(errs) == 0 {
		t.Fatalf("no errors envelope in %v", out)
	}
	return errs[0].(map[string]any)
}

func pointer(e map[string]any) string {
	src, _ := e["source"].(map[string]any)
	p, _ := src["pointer"].(string)
	return p
}

// noTriggerInterval lets tests trigger one broadcast back to back.
func noTriggerInterval(cfg *config.Config) { cfg.Audience.TriggerInterval = -1 }
