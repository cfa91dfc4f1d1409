package channeltest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// refChannel is a small, correct channel for a made-up text-only platform,
// with switches that each break one property the kit checks. Its platform
// signs inbound requests with X-Sig = hex(HMAC-SHA256(secret, ts "." body))
// and X-Ts, and takes sends as POST {api}/send {"to","type","text"}.
type refChannel struct {
	breakage string

	mu  sync.Mutex
	cfg map[string]refConfig
}

type refConfig struct {
	API    string `json:"api"`
	secret string
}

func (c *refChannel) Describe(context.Context) (sdk.Description, error) {
	d := sdk.Description{Name: "ref", Version: "1.0.0", ProtocolVersion: sdk.ProtocolVersion}
	if c.breakage == "wrong protocol" {
		d.ProtocolVersion = 0
	}
	return d, nil
}

func (c *refChannel) Configure(_ context.Context, cfg sdk.InstanceConfig) error {
	var rc refConfig
	bad := map[string]string{}
	if err := json.Unmarshal(cfg.Config, &rc); err != nil || !strings.HasPrefix(rc.API, "http") {
		bad["api"] = "must be an http URL"
	}
	if rc.secret = cfg.Secrets["secret"]; rc.secret == "" {
		bad["secret"] = "is required"
	}
	if len(bad) > 0 && c.breakage != "lenient config" {
		return &sdk.ConfigError{Fields: bad}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == nil {
		c.cfg = map[string]refConfig{}
	}
	c.cfg[cfg.ChannelID] = rc
	return nil
}

func sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (c *refChannel) HandleHTTP(_ context.Context, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	c.mu.Lock()
	rc := c.cfg[req.ChannelID]
	c.mu.Unlock()
	ts := req.Header.Get("X-Ts")
	sigOK := hmac.Equal([]byte(req.Header.Get("X-Sig")), []byte(sign(rc.secret, ts, req.Body)))
	if !sigOK && c.breakage != "accepts bad signatures" {
		return &sdk.HTTPResponse{Status: http.StatusUnauthorized}, nil
	}
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if age := time.Since(time.Unix(sec, 0)); age.Abs() > 5*time.Minute && c.breakage != "accepts stale signatures" {
		return &sdk.HTTPResponse{Status: http.StatusUnauthorized}, nil
	}
	var in struct{ EventID, User, Text string }
	if err := json.Unmarshal(req.Body, &in); err != nil {
		return &sdk.HTTPResponse{Status: http.StatusBadRequest}, nil
	}
	id := in.EventID
	if c.breakage == "new event id per attempt" {
		id = rand.Text()
	}
	return &sdk.HTTPResponse{Status: http.StatusOK, Events: []sdk.Event{{
		Type: sdk.EventMessage, ID: id, UserID: in.User, Content: message.Text(in.Text),
	}}}, nil
}

func (c *refChannel) Send(ctx context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	results := make([]sdk.SendResult, len(batch))
	for i, m := range batch {
		results[i] = sdk.SendResult{IdempotencyKey: m.IdempotencyKey, Err: c.sendOne(ctx, m)}
	}
	if c.breakage == "results out of order" {
		for i, j := 0, len(results)-1; i < j; i, j = i+1, j-1 {
			results[i], results[j] = results[j], results[i]
		}
	}
	return results, nil
}

func (c *refChannel) sendOne(ctx context.Context, m sdk.Outbound) error {
	text := m.Content.TextFallback()
	if m.Content.Type == message.TypeTyping {
		return nil // no typing on this platform, and no text for it
	}
	if c.breakage == "drops rich content" && m.Content.Type != message.TypeText {
		text = m.Content.Text
	}
	c.mu.Lock()
	rc := c.cfg[m.ChannelID]
	c.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"to": m.Recipient, "type": "text", "text": text})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rc.API+"/send", strings.NewReader(string(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sdk.Transient("network", err.Error())
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests && c.breakage == "rate limit as permanent":
		return sdk.Permanent("429", "throttled")
	case resp.StatusCode == http.StatusTooManyRequests && c.breakage == "no retry-after":
		return sdk.RateLimited(0, "429", "throttled")
	case resp.StatusCode == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return sdk.RateLimited(time.Duration(secs)*time.Second, "429", "throttled")
	case resp.StatusCode >= 500 && c.breakage == "transient as permanent":
		return sdk.Permanent(resp.Status, "server error")
	case resp.StatusCode >= 500:
		return sdk.Transient(resp.Status, "server error")
	case resp.StatusCode >= 400:
		return sdk.Permanent(resp.Status, "rejected")
	}
	return nil
}

func refHarness(ch sdk.Channel) Harness {
	const secret = "s3cret"
	return Harness{
		Channel: ch,
		Config: func(channelID, platformURL string) sdk.InstanceConfig {
			return sdk.InstanceConfig{
				ChannelID: channelID,
				Config:    json.RawMessage(`{"api":"` + platformURL + `"}`),
				Secrets:   map[string]string{"secret": secret},
			}
		},
		InvalidConfigs: []InvalidConfig{{Name: "empty", Config: sdk.InstanceConfig{Config: json.RawMessage(`{}`)}, Fields: []string{"api", "secret"}}},
		Inbound: func(cfg sdk.InstanceConfig, msg InboundMessage) *sdk.HTTPRequest {
			body, _ := json.Marshal(map[string]string{"EventID": msg.ID, "User": msg.UserID, "Text": msg.Text})
			ts := strconv.FormatInt(msg.Time.Unix(), 10)
			return &sdk.HTTPRequest{
				ChannelID: cfg.ChannelID, Method: http.MethodPost, Body: body,
				Header: http.Header{"X-Ts": {ts}, "X-Sig": {sign(secret, ts, body)}},
			}
		},
		Tamper:      func(req *sdk.HTTPRequest) { req.Header.Set("X-Sig", "00") },
		Timestamped: true,
		Decode: func(_ *http.Request, body []byte) (Delivery, error) {
			var d struct{ To, Type, Text string }
			err := json.Unmarshal(body, &d)
			return Delivery{Recipient: d.To, Type: message.Type(d.Type), Text: d.Text}, err
		},
		Respond: func(w http.ResponseWriter, _ *http.Request, o Outcome) {
			switch o.Kind {
			case RateLimited:
				w.Header().Set("Retry-After", strconv.Itoa(int(o.RetryAfter.Seconds())))
				w.WriteHeader(http.StatusTooManyRequests)
			case Permanent:
				w.WriteHeader(http.StatusBadRequest)
			case Transient:
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		},
	}
}

// recorder is a testing.TB that records failures instead of failing the
// real test, so the kit can be shown to catch broken plugins. Methods it
// does not override (Cleanup, Context, Logf, TempDir...) go to the real T.
type recorder struct {
	testing.TB

	mu     sync.Mutex
	failed []string
}

func (r *recorder) record(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, msg)
}

func (r *recorder) Helper()                        {}
func (r *recorder) Error(args ...any)              { r.record(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, a ...any) { r.record(fmt.Sprintf(format, a...)) }
func (r *recorder) Fail()                          { r.record("Fail") }
func (r *recorder) FailNow()                       { r.record("FailNow"); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)              { r.Error(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, a ...any) { r.Errorf(format, a...); runtime.Goexit() }
func (r *recorder) Skip(...any)                    { runtime.Goexit() }
func (r *recorder) Skipf(string, ...any)           { runtime.Goexit() }
func (r *recorder) SkipNow()                       { runtime.Goexit() }
func (r *recorder) Failed() bool                   { r.mu.Lock(); defer r.mu.Unlock(); return len(r.failed) > 0 }

// runCheck runs the named check against h on a recorder and returns what it
// recorded.
func runCheck(t *testing.T, name string, h Harness) []string {
	t.Helper()
	for _, c := range checks {
		if c.name != name {
			continue
		}
		rec := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.fn(rec, h)
		}()
		<-done
		return rec.failed
	}
	t.Fatalf("no check %q", name)
	return nil
}

func TestRefChannelConforms(t *testing.T) {
	t.Parallel()
	Run(t, refHarness(&refChannel{}))
}

func TestBrokenChannelsFail(t *testing.T) {
	t.Parallel()
	for breakage, check := range map[string]string{
		"wrong protocol":           "Describe",
		"lenient config":           "ConfigureInvalid",
		"accepts bad signatures":   "BadSignatureRefused",
		"accepts stale signatures": "StaleSignatureRefused",
		"new event id per attempt": "InboundRetrySameID",
		"drops rich content":       "ContentTypes",
		"results out of order":     "BatchOrder",
		"rate limit as permanent":  "RateLimited",
		"no retry-after":           "RateLimited",
		"transient as permanent":   "TransientError",
	} {
		t.Run(breakage, func(t *testing.T) {
			t.Parallel()
			h := refHarness(&refChannel{breakage: breakage})
			if failures := runCheck(t, check, h); len(failures) == 0 {
				t.Errorf("check %s passed a channel that %s", check, breakage)
			} else {
				t.Logf("check %s caught it: %s", check, failures[0])
			}
			// Through go-plugin too: the wire must not mask the breakage.
			h.Channel = Serve(t, h.Channel)
			if failures := runCheck(t, check, h); len(failures) == 0 {
				t.Errorf("over gRPC, check %s passed a channel that %s", check, breakage)
			}
		})
	}
}

func TestRunRejectsIncompleteHarness(t *testing.T) {
	t.Parallel()
	h := refHarness(&refChannel{})
	h.Decode = nil
	if got := h.missing(); got != "Decode" {
		t.Errorf("missing() = %q, want Decode", got)
	}
}
