package e2e

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliofake"
)

// TestAudienceAddressesFromAttributes is issue 18: people identified
// through the Track API with attributes only (no channel identities), as
// someone moving from Customer.io has them, are reached by a broadcast's
// message actions at the addresses their attributes hold: customer.id on
// the webhook channel, customer.phone on the Twilio channel. Without a
// phone a person is skipped with no_address, with a malformed one with
// invalid_address, and the trigger's errors say which value was wrong. The
// Track API is driven over plain HTTP (the same requests customerio-node
// sends: PUT /api/v1/customers/{id} with Basic auth). Replies on Twilio,
// to a message action or a flow action, find the person.
func TestAudienceAddressesFromAttributes(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	sms := twiliofake.New(twiliofake.Options{})
	t.Cleanup(sms.Close)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{"webhook", "twilio"}, Configure: noTriggerInterval})
	g.Apply(t, audienceWorkspace(sink.URL)+smsChannel(sms))
	waitConfigured(t, g, "media-sms")
	c := newCIO(t, g, "media")

	people := map[string]map[string]any{
		"ann": {"email": "ann@example.com", "first_name": "Ann", "phone": "+15550000001", "plan": "pro"},
		"bob": {"email": "bob@example.com", "first_name": "Bob", "plan": "pro"},
		"cy":  {"email": "cy@example.com", "first_name": "Cy", "phone": "555-0100", "plan": "pro"},
		"di":  {"email": "di@example.com", "first_name": "Di", "phone": "+445550000004", "plan": "pro"},
		"zed": {"email": "zed@example.com", "first_name": "Zed", "phone": "+15550000009", "plan": "free"},
	}
	for id, attrs := range people {
		c.identify(id, attrs)
	}
	text := "Hi {{ customer.first_name }}: {{ trigger.headline }}"
	pro := map[string]any{"and": []any{
		map[string]any{"attribute": map[string]any{"field": "first_name", "operator": "exists"}},
		map[string]any{"attribute": map[string]any{"field": "plan", "operator": "eq", "value": "pro"}},
	}}
	b := c.broadcast(map[string]any{"name": "addresses", "recipients": pro,
		"actions": []any{
			map[string]any{"type": "message", "channel": "news", "message": map[string]any{"type": "text", "text": text}},
			map[string]any{"type": "message", "channel": "sms", "message": map[string]any{"type": "text", "text": text}},
		}})
	tr := c.trigger(b, map[string]any{"data": map[string]any{"headline": "sale"}})
	st := c.wait(b, tr)

	counts := st["counts"].(map[string]any)
	if counts["matched"] != 4.0 || counts["sent"] != 6.0 ||
		!reflect.DeepEqual(counts["skipped_by_reason"], map[string]any{"no_address": 1.0, "invalid_address": 1.0}) {
		t.Fatalf("counts %v: want 4 matched, 6 sent, bob no_address and cy invalid_address", counts)
	}
	got := triggerTexts(sink, tr)
	want := map[string]string{"ann": "Hi Ann: sale", "bob": "Hi Bob: sale", "cy": "Hi Cy: sale", "di": "Hi Di: sale"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("webhook sink got %v, want %v (user_id = customer.id)", got, want)
	}
	var texts []string
	for _, m := range sms.Messages() {
		texts = append(texts, m.To+": "+m.Body)
	}
	slices.Sort(texts)
	if wantSMS := []string{"+15550000001: Hi Ann: sale", "+445550000004: Hi Di: sale"}; !slices.Equal(texts, wantSMS) {
		t.Fatalf("Twilio got %q, want %q (To = customer.phone)", texts, wantSMS)
	}
	errs := c.triggerErrors(b, tr)
	slices.Sort(errs)
	wantErrs := []string{
		"person bob: action 1: skipped, no_address: customer.phone is empty",
		`person cy: action 1: skipped, invalid_address: customer.phone is "555-0100": not an E.164 phone number (+ then 8 to 15 digits, e.g. +15551234567)`,
	}
	if !slices.Equal(errs, wantErrs) {
		t.Fatalf("trigger errors %q, want %q", errs, wantErrs)
	}

	// Di was reached by a message action at her phone attribute; her
	// answer on Twilio is hers, not a new person's.
	driver := &twiliofake.Driver{AuthToken: sms.AuthToken(), AccountSID: sms.AccountSID(),
		URL: g.Config.PublicURL + "/channels/media-sms/webhook"}
	di := "+445550000004"
	if resp, err := driver.Post(context.Background(), driver.Inbound(di, "+14155550100", "thanks")); err != nil || resp.Status != 200 {
		t.Fatalf("di's reply: %v %+v", err, resp)
	}
	eventually(t, 10*time.Second, func() string {
		p, err := g.Store.PersonByIdentity(context.Background(), "media-sms", di)
		if err != nil || p.ID != "di" {
			return fmt.Sprintf("the number's owner after di's reply: %q %v, want di", p.ID, err)
		}
		return ""
	})

	// A flow action starts the conversation at the derived number and
	// links it to the person: the flow sees them as customer.*, and their
	// reply on Twilio is theirs, not a new person's.
	flow := c.broadcast(map[string]any{"name": "promo", "recipients": pro,
		"actions": []any{map[string]any{"type": "flow", "channel": "sms", "flow": "promo"}}})
	ftr := c.trigger(flow, map[string]any{"ids": []string{"ann"}, "data": map[string]any{"headline": "flash", "code": "F1"}})
	c.wait(flow, ftr)
	ann := "+15550000001"
	eventually(t, 10*time.Second, func() string {
		if got := smsTo(sms, ann); !slices.Contains(got, "Promo for Ann: flash, code F1 (flash)") {
			return fmt.Sprintf("ann's messages %q lack the promo", got)
		}
		return ""
	})
	if resp, err := driver.Post(context.Background(), driver.Inbound(ann, "+14155550100", "thanks")); err != nil || resp.Status != 200 {
		t.Fatalf("reply: %v %+v", err, resp)
	}
	eventually(t, 10*time.Second, func() string {
		if got := smsTo(sms, ann); len(got) < 3 {
			return fmt.Sprintf("ann's messages %q: no answer to the reply", got)
		}
		return ""
	})
	if p, err := g.Store.PersonByIdentity(context.Background(), "media-sms", ann); err != nil || p.ID != "ann" {
		t.Fatalf("the number's owner after the reply: %q %v, want ann", p.ID, err)
	}
}

// smsChannel is a Twilio channel "sms" (id media-sms) of the
// audienceWorkspace's bot sending through the fake, to append to that
// workspace's channels.
func smsChannel(sms *twiliofake.Server) string {
	return fmt.Sprintf(`
  - name: sms
    id: media-sms
    type: twilio
    bot: newsbot
    config: {from: "+14155550100", mps: 50, api_base: %q}
    secrets: {account_sid: %s, auth_token: %s}
`, sms.URL(), sms.AccountSID(), sms.AuthToken())
}

// smsTo lists the bodies the Twilio fake accepted for a number.
func smsTo(sms *twiliofake.Server, to string) []string {
	var out []string
	for _, m := range sms.Messages() {
		if m.To == to {
			out = append(out, m.Body)
		}
	}
	return out
}
