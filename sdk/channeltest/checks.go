package channeltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"testing"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/grpcplugin"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// setup starts a fake platform and configures a fresh instance against it.
func setup(t testing.TB, h Harness, name string) (sdk.InstanceConfig, *platform) {
	t.Helper()
	p := newPlatform(t, h)
	cfg := h.Config("ct-"+name, p.srv.URL)
	if err := h.Channel.Configure(t.Context(), cfg); err != nil {
		t.Fatalf("Configure(valid config): %v", err)
	}
	return cfg, p
}

func checkDescribe(t testing.TB, h Harness) {
	d, err := h.Channel.Describe(t.Context())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if d.Name == "" || d.Version == "" {
		t.Errorf("Describe: name %q and version %q must both be set", d.Name, d.Version)
	}
	if d.ProtocolVersion != sdk.ProtocolVersion {
		t.Errorf("Describe: protocol version %d, want sdk.ProtocolVersion (%d)", d.ProtocolVersion, sdk.ProtocolVersion)
	}
	if d.MaxBatch < 0 {
		t.Errorf("Describe: MaxBatch %d is negative", d.MaxBatch)
	}
	if len(d.ConfigSchema) > 0 && !json.Valid(d.ConfigSchema) {
		t.Errorf("Describe: ConfigSchema is not valid JSON")
	}
	for name, r := range map[string]sdk.Rate{"Global": d.RateLimits.Global, "PerRecipient": d.RateLimits.PerRecipient} {
		if r.Count < 0 || r.Per < 0 || r.Burst < 0 {
			t.Errorf("Describe: RateLimits.%s %+v has negative values", name, r)
		}
	}
}

func checkConfigureValid(t testing.TB, h Harness) {
	cfg, _ := setup(t, h, "valid")
	if err := h.Channel.Configure(t.Context(), cfg); err != nil {
		t.Errorf("Configure again with the same config (a reconfiguration): %v", err)
	}
}

func checkConfigureInvalid(t testing.TB, h Harness) {
	checkInvalid(t, h, "Configure", h.Channel.Configure)
}

// checkInvalid has call refuse each of the harness's invalid configs with
// a *sdk.ConfigError naming the bad fields.
func checkInvalid(t testing.TB, h Harness, name string, call func(context.Context, sdk.InstanceConfig) error) {
	for _, c := range h.InvalidConfigs {
		cfg := c.Config
		if cfg.ChannelID == "" {
			cfg.ChannelID = "ct-invalid"
		}
		err := call(t.Context(), cfg)
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %s returned %v, want a *sdk.ConfigError", c.Name, name, err)
			continue
		}
		for _, f := range c.Fields {
			if _, ok := ce.Fields[f]; !ok {
				t.Errorf("%s: ConfigError %v does not name field %q", c.Name, ce, f)
			}
		}
	}
}

// checkValidateConfig: a channel that validates configuration without
// installing it (sdk.ConfigValidator) agrees with Configure. A plugin
// without the RPC (built against an older sdk) passes: the gateway
// accepts its configuration unchecked.
func checkValidateConfig(t testing.TB, h Harness) {
	v, ok := h.Channel.(sdk.ConfigValidator)
	if !ok {
		return
	}
	p := newPlatform(t, h)
	err := v.ValidateConfig(t.Context(), h.Config("ct-validate", p.srv.URL))
	if errors.Is(err, grpcplugin.ErrCannotValidate) {
		return
	}
	if err != nil {
		t.Fatalf("ValidateConfig(valid config): %v", err)
	}
	checkInvalid(t, h, "ValidateConfig", v.ValidateConfig)
}

// handle sends a platform request to the channel and fails the test if the
// channel errs instead of answering (the gateway would answer 500).
func handle(t testing.TB, h Harness, req *sdk.HTTPRequest) *sdk.HTTPResponse {
	t.Helper()
	resp, err := h.Channel.HandleHTTP(t.Context(), req)
	if err != nil {
		t.Fatalf("HandleHTTP: %v (answer the platform with a status instead)", err)
	}
	if resp == nil {
		t.Fatalf("HandleHTTP returned no response")
	}
	return resp
}

// oneMessage returns the single message event of resp.
func oneMessage(t testing.TB, resp *sdk.HTTPResponse, msg InboundMessage) sdk.Event {
	t.Helper()
	if resp.Status < 200 || resp.Status > 299 {
		t.Fatalf("signed request answered %d (%s), want 2xx", resp.Status, resp.Body)
	}
	if len(resp.Events) != 1 {
		t.Fatalf("signed request produced %d events, want 1", len(resp.Events))
	}
	ev := resp.Events[0]
	if ev.Type != sdk.EventMessage || ev.UserID != msg.UserID || ev.Content.Text != msg.Text || ev.ID == "" {
		t.Fatalf("event = {Type:%q ID:%q UserID:%q Text:%q}, want a message from %q saying %q with an ID",
			ev.Type, ev.ID, ev.UserID, ev.Content.Text, msg.UserID, msg.Text)
	}
	return ev
}

func checkInbound(t testing.TB, h Harness) {
	cfg, _ := setup(t, h, "inbound")
	msg := InboundMessage{ID: "evt-1", UserID: "user-1", Text: "hello", Time: time.Now()}
	oneMessage(t, handle(t, h, h.Inbound(cfg, msg)), msg)
}

func checkInboundRetry(t testing.TB, h Harness) {
	cfg, _ := setup(t, h, "retry")
	now := time.Now()
	first := InboundMessage{ID: "evt-retry", UserID: "user-1", Text: "once", Time: now.Add(-30 * time.Second)}
	again := first
	again.Time = now
	a := oneMessage(t, handle(t, h, h.Inbound(cfg, first)), first)
	b := oneMessage(t, handle(t, h, h.Inbound(cfg, again)), again)
	if a.ID != b.ID {
		t.Errorf("a platform retry of one event got Event.ID %q then %q; the gateway dedupes on it", a.ID, b.ID)
	}
	other := InboundMessage{ID: "evt-other", UserID: "user-1", Text: "once", Time: now}
	if c := oneMessage(t, handle(t, h, h.Inbound(cfg, other)), other); c.ID == a.ID {
		t.Errorf("two different platform events share Event.ID %q; the second would be dropped", c.ID)
	}
}

// refused fails unless resp refuses the request with 401/403 and no events.
func refused(t testing.TB, resp *sdk.HTTPResponse, what string) {
	t.Helper()
	if resp.Status != 401 && resp.Status != 403 {
		t.Errorf("%s answered %d, want 401 or 403", what, resp.Status)
	}
	if len(resp.Events) > 0 {
		t.Errorf("%s produced %d events, want none", what, len(resp.Events))
	}
}

func checkBadSignature(t testing.TB, h Harness) {
	cfg, _ := setup(t, h, "badsig")
	req := h.Inbound(cfg, InboundMessage{ID: "evt-bad", UserID: "user-1", Text: "forged", Time: time.Now()})
	h.Tamper(req)
	refused(t, handle(t, h, req), "a request with a broken signature")
}

func checkStaleSignature(t testing.TB, h Harness) {
	if !h.Timestamped {
		t.Skip("the platform's signatures carry no timestamp")
	}
	cfg, _ := setup(t, h, "stale")
	req := h.Inbound(cfg, InboundMessage{ID: "evt-stale", UserID: "user-1", Text: "replayed", Time: time.Now().Add(-time.Hour)})
	refused(t, handle(t, h, req), "a request signed an hour ago")
}

// samples has one message of every content type.
func samples() []message.Content {
	buttons := []message.Button{{Title: "Yes", Payload: "YES"}, {Title: "Docs", URL: "https://example.com/docs"}}
	card := func(title string) message.Card {
		return message.Card{Title: title, Subtitle: "Monthly", ImageURL: "https://example.com/" + title + ".png", Buttons: buttons[:1]}
	}
	return []message.Content{
		message.Text("hello"),
		{Type: message.TypeButtons, Text: "Continue?", Buttons: buttons},
		{Type: message.TypeImage, Text: "a cat", Media: &message.Media{URL: "https://example.com/cat.png", MimeType: "image/png"}},
		{Type: message.TypeFile, Text: "the report", Media: &message.Media{URL: "https://example.com/report.pdf", Name: "report.pdf", MimeType: "application/pdf"}},
		{Type: message.TypeCard, Cards: []message.Card{card("basic")}},
		{Type: message.TypeCarousel, Cards: []message.Card{card("basic"), card("pro")}},
		{Type: message.TypeTyping, DurationMS: 500},
	}
}

func native(c sdk.Capabilities, t message.Type) bool {
	switch t {
	case message.TypeText:
		return true
	case message.TypeButtons:
		return c.Buttons || c.QuickReplies
	case message.TypeImage:
		return c.Images
	case message.TypeFile:
		return c.Files
	case message.TypeCard:
		return c.Cards
	case message.TypeCarousel:
		return c.Carousel
	case message.TypeTyping:
		return c.Typing
	}
	return false
}

// outbound builds a batch; recipients[i] gets contents[i]. Keys are unique
// per check so results can be matched to inputs.
func outbound(cfg sdk.InstanceConfig, recipients []string, contents []message.Content) []sdk.Outbound {
	batch := make([]sdk.Outbound, len(contents))
	for i, c := range contents {
		batch[i] = sdk.Outbound{
			ChannelID:      cfg.ChannelID,
			IdempotencyKey: fmt.Sprintf("%s-key-%d", cfg.ChannelID, i),
			Recipient:      recipients[i],
			Content:        c,
			Attempt:        1,
		}
	}
	return batch
}

// send sends batch and checks the results line up with it.
func send(t testing.TB, h Harness, batch []sdk.Outbound) []sdk.SendResult {
	t.Helper()
	results, err := h.Channel.Send(t.Context(), batch)
	if err != nil {
		t.Fatalf("Send failed the whole batch: %v (report failures per message)", err)
	}
	if len(results) != len(batch) {
		t.Fatalf("Send returned %d results for %d messages", len(results), len(batch))
	}
	for i, r := range results {
		if r.IdempotencyKey != batch[i].IdempotencyKey {
			t.Errorf("result %d has key %q, want %q: results must be in input order", i, r.IdempotencyKey, batch[i].IdempotencyKey)
		}
	}
	return results
}

func checkContentTypes(t testing.TB, h Harness) {
	cfg, p := setup(t, h, "content")
	desc, err := h.Channel.Describe(t.Context())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	contents := samples()
	recipients := make([]string, len(contents))
	for i, c := range contents {
		recipients[i] = "user-" + string(c.Type)
	}
	for i, r := range send(t, h, outbound(cfg, recipients, contents)) {
		if r.Err != nil {
			t.Errorf("%s: send failed: %v", contents[i].Type, r.Err)
		}
	}
	for i, c := range contents {
		got := p.to(recipients[i])
		nat := native(desc.Capabilities, c.Type)
		if c.Type == message.TypeTyping && !nat {
			if len(got) > 0 {
				t.Errorf("typing: a channel without typing support must send nothing (its text fallback is empty), sent %+v", got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: %d platform requests, want 1: %+v", c.Type, len(got), got)
			continue
		}
		d := got[0]
		switch {
		case d.Type == c.Type && nat:
			if c.Type == message.TypeText && d.Text != c.Text {
				t.Errorf("text: delivered %q, want %q", d.Text, c.Text)
			}
		case d.Type == c.Type:
			t.Errorf("%s: rendered natively but Capabilities say it is not supported", c.Type)
		case nat:
			t.Errorf("%s: Capabilities claim native support but it was delivered as %s %q", c.Type, d.Type, d.Text)
		case d.Type != message.TypeText || strings.TrimSpace(d.Text) != c.TextFallback():
			t.Errorf("%s: downgraded to %s %q, want text %q (Content.TextFallback)", c.Type, d.Type, d.Text, c.TextFallback())
		}
	}
}

func checkBatchOrder(t testing.TB, h Harness) {
	cfg, p := setup(t, h, "order")
	recipients := []string{"user-a", "user-b", "user-a", "user-c", "user-b", "user-a"}
	contents := make([]message.Content, len(recipients))
	want := map[string][]string{}
	for i, r := range recipients {
		text := fmt.Sprintf("%s message %d", r, len(want[r])+1)
		contents[i] = message.Text(text)
		want[r] = append(want[r], text)
	}
	for i, r := range send(t, h, outbound(cfg, recipients, contents)) {
		if r.Err != nil {
			t.Errorf("message %d: %v", i, r.Err)
		}
	}
	for r, texts := range want {
		var got []string
		for _, d := range p.to(r) {
			got = append(got, d.Text)
		}
		if strings.Join(got, "|") != strings.Join(texts, "|") {
			t.Errorf("%s received %q, want %q in that order", r, got, texts)
		}
	}
}

// failing sends one message to a healthy recipient, one to a recipient the
// platform answers with o, and one more healthy one; it checks the healthy
// ones succeed and returns the error of the middle one.
func failing(t testing.TB, h Harness, name string, o Outcome) error {
	t.Helper()
	cfg, p := setup(t, h, name)
	p.script("user-failing", o)
	recipients := []string{"user-ok-1", "user-failing", "user-ok-2"}
	contents := []message.Content{message.Text("one"), message.Text("two"), message.Text("three")}
	results := send(t, h, outbound(cfg, recipients, contents))
	for _, i := range []int{0, 2} {
		if results[i].Err != nil {
			t.Errorf("message %d to a healthy recipient failed: %v", i, results[i].Err)
		}
	}
	if results[1].Err == nil {
		t.Fatalf("the platform answered %s, but the send reported success", o.Kind)
	}
	return results[1].Err
}

func checkRateLimited(t testing.TB, h Harness) {
	err := failing(t, h, "ratelimit", Outcome{Kind: RateLimited, RetryAfter: 7 * time.Second})
	var se *sdk.SendError
	if !errors.As(err, &se) || se.Kind != sdk.KindRateLimited {
		t.Fatalf("rate limited send: %v, want a *sdk.SendError of kind %s", err, sdk.KindRateLimited)
	}
	if se.RetryAfter <= 0 {
		t.Errorf("rate limited send has no RetryAfter (the platform said %s)", 7*time.Second)
	}
}

func checkPermanent(t testing.TB, h Harness) {
	if err := failing(t, h, "permanent", Outcome{Kind: Permanent}); sdk.KindOf(err) != sdk.KindPermanent {
		t.Errorf("permanently failing send: %v, want kind %s", err, sdk.KindPermanent)
	}
}

func checkTransient(t testing.TB, h Harness) {
	if err := failing(t, h, "transient", Outcome{Kind: Transient}); sdk.KindOf(err) != sdk.KindTransient {
		t.Errorf("transiently failing send: %v, want kind %s", err, sdk.KindTransient)
	}
}
