package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
	"github.com/switchboard-gw/switchboard/sdk/netguard"
)

// Name is the plugin's name; Version its version.
const (
	Name    = "webhook"
	Version = "1.0.0"
)

// Options configure the plugin process (not a channel instance).
type Options struct {
	// Concurrency is how many recipients of one batch are sent to at once.
	// Defaults to 16.
	Concurrency int
	// RateLimits are declared to the gateway in Describe. Defaults to none:
	// the receiving system is the customer's own.
	RateLimits sdk.RateLimits
	// Transport carries outbound POSTs. Defaults to a clone of
	// http.DefaultTransport that keeps more idle connections per host, since
	// every send of an instance goes to the same host, dialling through the
	// netguard dialer. Either way each request's URL passes netguard.
	Transport http.RoundTripper
	// AllowInternal lets channel URLs point at loopback, private and other
	// internal addresses (the gateway's security.allow_internal_fetch,
	// passed as netguard.EnvAllowInternal). Off, a channel URL is a
	// tenant-supplied address like any other and may not reach the
	// gateway's network.
	AllowInternal bool
	// Now is the clock that stamps signatures. Defaults to time.Now.
	Now func() time.Time
}

// Channel is the webhook channel. Create it with New.
type Channel struct {
	opts Options

	mu        sync.RWMutex
	instances map[string]*instance
}

var _ sdk.Channel = (*Channel)(nil)

// New returns a Channel with no instances configured.
func New(opts Options) *Channel {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	guard := opts.guard()
	if opts.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		t.Proxy = nil // a proxy would dial for us, past the guard
		t.DialContext = guard.Dialer().DialContext
		opts.Transport = t
	}
	opts.Transport = guard.Transport(opts.Transport)
	return &Channel{opts: opts, instances: map[string]*instance{}}
}

// guard is what channel URLs may reach: http or https, internal addresses
// only when allowed.
func (o Options) guard() netguard.Options {
	return netguard.Options{AllowHTTP: true, AllowPrivate: o.AllowInternal}
}

// Describe implements sdk.Channel. Every content type is "native": the
// receiver gets the whole Content and its text fallback side by side.
func (c *Channel) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:            Name,
		Version:         Version,
		ProtocolVersion: sdk.ProtocolVersion,
		Capabilities: sdk.Capabilities{
			Buttons:      true,
			QuickReplies: true,
			Images:       true,
			Files:        true,
			Cards:        true,
			Carousel:     true,
			Typing:       true,
		},
		RateLimits:   c.opts.RateLimits,
		ConfigSchema: json.RawMessage(configSchema),
	}, nil
}

// Configure implements sdk.Channel.
func (c *Channel) Configure(_ context.Context, cfg sdk.InstanceConfig) error {
	inst, err := parseConfig(cfg, c.opts.Transport, c.opts.guard())
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.instances[cfg.ChannelID] = inst
	c.mu.Unlock()
	return nil
}

// ValidateConfig implements sdk.ConfigValidator: Configure's checks,
// nothing installed.
func (c *Channel) ValidateConfig(_ context.Context, cfg sdk.InstanceConfig) error {
	_, err := parseConfig(cfg, c.opts.Transport, c.opts.guard())
	return err
}

func (c *Channel) instance(channelID string) (*instance, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	inst, ok := c.instances[channelID]
	return inst, ok
}

// inboundBody is what a sending system POSTs; see the package doc.
type inboundBody struct {
	UserID  string            `json:"user_id"`
	ReplyTo string            `json:"reply_to,omitempty"`
	Profile map[string]string `json:"profile,omitempty"`
	Text    string            `json:"text,omitempty"`
	Button  *struct {
		Payload string `json:"payload"`
		Title   string `json:"title,omitempty"`
	} `json:"button,omitempty"`
	Message *message.Content `json:"message,omitempty"`
}

// HandleHTTP implements sdk.Channel.
func (c *Channel) HandleHTTP(_ context.Context, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	inst, ok := c.instance(req.ChannelID)
	if !ok {
		return errorResponse(http.StatusNotFound, "unknown channel"), nil
	}
	if req.Method != http.MethodPost {
		resp := errorResponse(http.StatusMethodNotAllowed, "use POST")
		resp.Header.Set("Allow", http.MethodPost)
		return resp, nil
	}
	// Verify the raw bytes before parsing anything: re-serialised JSON would
	// not match the signature.
	if err := inst.inbound.Verify(req.Body, req.Header); err != nil {
		return errorResponse(http.StatusUnauthorized, "invalid signature"), nil
	}
	ev, err := parseInbound(req.Body)
	if err != nil {
		return errorResponse(http.StatusBadRequest, err.Error()), nil
	}
	ev.ID = req.Header.Get(standardwebhooks.HeaderWebhookID)
	if ts, err := strconv.ParseInt(req.Header.Get(standardwebhooks.HeaderWebhookTimestamp), 10, 64); err == nil {
		ev.Time = time.Unix(ts, 0)
	}
	return &sdk.HTTPResponse{Status: http.StatusNoContent, Events: []sdk.Event{ev}}, nil
}

func parseInbound(body []byte) (sdk.Event, error) {
	var in inboundBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return sdk.Event{}, fmt.Errorf("body is not a valid message: %w", err)
	}
	if strings.TrimSpace(in.UserID) == "" {
		return sdk.Event{}, errors.New("user_id is required")
	}
	ev := sdk.Event{Type: sdk.EventMessage, UserID: in.UserID, ReplyTo: in.ReplyTo, Profile: in.Profile}
	forms := 0
	if in.Text != "" {
		forms++
		ev.Content = message.Text(in.Text)
	}
	if in.Button != nil {
		forms++
		if in.Button.Payload == "" {
			return sdk.Event{}, errors.New("button.payload is required")
		}
		ev.Type = sdk.EventButton
		ev.Content = message.Content{Type: message.TypeText, Text: in.Button.Title, Payload: in.Button.Payload}
	}
	if in.Message != nil {
		forms++
		ev.Content = *in.Message
	}
	if forms != 1 {
		return sdk.Event{}, errors.New("exactly one of text, button and message is required")
	}
	if err := ev.Content.Validate(); err != nil {
		return sdk.Event{}, err
	}
	return ev, nil
}

func errorResponse(status int, detail string) *sdk.HTTPResponse {
	body, _ := json.Marshal(map[string]string{"error": detail})
	return &sdk.HTTPResponse{
		Status: status,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   body,
	}
}

// Send implements sdk.Channel.
func (c *Channel) Send(ctx context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	results := make([]sdk.SendResult, len(batch))
	// Group by (channel, recipient), keeping input order inside each group.
	type key struct{ channel, recipient string }
	var order []key
	groups := map[key][]int{}
	for i, m := range batch {
		results[i].IdempotencyKey = m.IdempotencyKey
		k := key{m.ChannelID, m.Recipient}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	sem := make(chan struct{}, c.opts.Concurrency)
	var wg sync.WaitGroup
	for _, k := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.sendInOrder(ctx, batch, groups[k], results)
		})
	}
	wg.Wait()
	return results, nil
}

// sendInOrder sends the messages at idx (one recipient's, in order). After a
// retryable failure the rest are not attempted and carry the same error, so
// the gateway retries them after the one that failed, in order.
func (c *Channel) sendInOrder(ctx context.Context, batch []sdk.Outbound, idx []int, results []sdk.SendResult) {
	var held *sdk.SendError
	for _, i := range idx {
		if held != nil {
			results[i].Err = &sdk.SendError{
				Kind: held.Kind, Code: "held_for_order", RetryAfter: held.RetryAfter,
				Message: "not attempted: an earlier message to this recipient failed",
			}
			continue
		}
		err := c.sendOne(ctx, batch[i])
		results[i].Err = err
		if se := (*sdk.SendError)(nil); errors.As(err, &se) && se.Kind != sdk.KindPermanent {
			held = se
		}
	}
}

// outboundBody is what the receiver gets; see the package doc.
type outboundBody struct {
	ChannelID      string          `json:"channel_id"`
	UserID         string          `json:"user_id"`
	ReplyTo        string          `json:"reply_to,omitempty"`
	IdempotencyKey string          `json:"idempotency_key"`
	Attempt        int             `json:"attempt"`
	Message        message.Content `json:"message"`
	Text           string          `json:"text"`
}

func (c *Channel) sendOne(ctx context.Context, m sdk.Outbound) error {
	inst, ok := c.instance(m.ChannelID)
	if !ok {
		return sdk.AuthError("not_configured", "channel "+m.ChannelID+" is not configured")
	}
	if m.IdempotencyKey == "" {
		return sdk.Permanent("no_idempotency_key", "a webhook-id is required to sign the message")
	}
	body, err := json.Marshal(outboundBody{
		ChannelID:      m.ChannelID,
		UserID:         m.Recipient,
		ReplyTo:        m.ReplyTo,
		IdempotencyKey: m.IdempotencyKey,
		Attempt:        m.Attempt,
		Message:        m.Content,
		Text:           m.Content.TextFallback(),
	})
	if err != nil {
		return sdk.Permanent("encode", err.Error())
	}
	// One reading of the clock for the signature and its header: two could
	// straddle a second and make the receiver refuse the message.
	now := c.opts.Now()
	sig, err := inst.outbound.Sign(m.IdempotencyKey, now, body)
	if err != nil {
		return sdk.Permanent("sign", err.Error())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, inst.url, bytes.NewReader(body))
	if err != nil {
		return sdk.Permanent("request", err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(standardwebhooks.HeaderWebhookID, m.IdempotencyKey)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := inst.client.Do(req)
	if errors.Is(err, netguard.ErrForbidden) {
		// The URL's host resolved to an internal address: retrying cannot
		// change that until the channel is reconfigured.
		return sdk.Permanent("destination_forbidden", err.Error())
	}
	if err != nil {
		// Timeouts, refused connections, cancellation: all worth a retry.
		return sdk.Transient("network", err.Error())
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	// Drain (bounded) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return classify(resp, strings.TrimSpace(string(snippet)))
}

// defaultRetryAfter applies to a 429 without a usable Retry-After.
const defaultRetryAfter = 5 * time.Second

// classify maps the receiver's answer to a send outcome (nil = sent).
func classify(resp *http.Response, snippet string) error {
	code := strconv.Itoa(resp.StatusCode)
	msg := resp.Status
	if snippet != "" {
		msg += ": " + snippet
	}
	switch s := resp.StatusCode; {
	case s >= 200 && s <= 299:
		return nil
	case s == http.StatusTooManyRequests:
		return sdk.RateLimited(retryAfter(resp.Header.Get("Retry-After"), time.Now()), code, msg)
	case s == http.StatusRequestTimeout || s >= 500:
		return sdk.Transient(code, msg)
	default: // 410 (endpoint gone), other 4xx, and 3xx, which is never followed
		return sdk.Permanent(code, msg)
	}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h string, now time.Time) time.Duration {
	if secs, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return defaultRetryAfter
}
