package audience

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/template"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// addressFixture is a workspace with a Twilio, a webhook and a Slack
// channel and people known only by their attributes (one also has an
// identity on each channel).
type addressFixture struct {
	*fanoutFixture
	twilio, webhook, slack store.Channel
}

func newAddressFixture(t *testing.T) *addressFixture {
	t.Helper()
	ctx := context.Background()
	f := &addressFixture{fanoutFixture: newFanoutFixture(t)}
	bt := store.Bot{WorkspaceID: "w", Name: "bot", Definition: json.RawMessage(`{"flows":[]}`)}
	if err := f.st.UpsertBot(ctx, &bt); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []*store.Channel{&f.twilio, &f.webhook, &f.slack} {
		ch.WorkspaceID, ch.BotID, ch.Enabled = "w", bt.ID, true
	}
	f.twilio.Name, f.twilio.Type = "sms", "twilio"
	f.webhook.Name, f.webhook.Type = "hook", "webhook"
	f.slack.Name, f.slack.Type = "slack", "slack"
	for _, ch := range []*store.Channel{&f.twilio, &f.webhook, &f.slack} {
		if err := f.st.UpsertChannel(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	people := map[string]map[string]any{
		"p1": {"phone": "+15550000001", "first_name": "Ann", "mobile": "+15559999991"},
		"p2": {"first_name": "Bob"},                     // no phone
		"p3": {"phone": "555-1234", "first_name": "Cy"}, // not E.164
		"p4": {"phone": "+15550000004", "first_name": "Di"},
	}
	for id, attrs := range people {
		if _, err := f.st.UpsertPerson(ctx, store.Person{WorkspaceID: "w", ID: id, Attributes: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	// p4 already has identities: they win over the channel defaults.
	for ch, addr := range map[string]string{f.twilio.ID: "+15551110004", f.webhook.ID: "hook-p4", f.slack.ID: "U4"} {
		if err := f.st.LinkIdentity(ctx, store.Identity{WorkspaceID: "w", PersonID: "p4", ChannelID: ch, Address: addr}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// fire stores a trigger of actions for ids, runs it and returns its
// deliveries by "person/action" and its error lines.
func (f *addressFixture) fire(t *testing.T, actions []store.BroadcastAction, ids ...string) (map[string]store.Delivery, []string, store.Trigger) {
	t.Helper()
	ctx := context.Background()
	f.b.Actions = actions
	if err := f.st.UpdateBroadcast(ctx, &f.b); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(TriggerRequest{IDs: ids})
	tr := store.Trigger{WorkspaceID: "w", BroadcastID: f.b.ID, Request: raw, Broadcast: f.b}
	if err := f.st.CreateTrigger(ctx, &tr, store.TriggerLimits{Now: f.clock.now()}); err != nil {
		t.Fatal(err)
	}
	e := NewEngine(f.st, EngineOptions{Net: testNet, Now: f.clock.now})
	got, _ := f.run(t, e, tr, 5)
	if got.State != store.TriggerProcessed {
		t.Fatalf("trigger %s: %s", got.State, got.Error)
	}
	ds, err := f.st.ListDeliveriesBySource(ctx, "trigger", sourceID(tr.ID))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Delivery{}
	for _, d := range ds {
		i, _ := deliveryAction(tr.ID, d.IdempotencyKey)
		out[d.PersonID+"/"+string(rune('0'+i))] = d
	}
	errs := f.errors(t, tr.ID)
	sort.Strings(errs)
	return out, errs, got
}

func hello() *message.Content {
	return &message.Content{Type: message.TypeText, Text: "Hi {{ customer.first_name }}"}
}

// TestActionAddressDefaults: without to:, a Twilio action reaches a person
// at customer.phone (checked as E.164) and a webhook action at customer.id;
// a Slack action still needs an identity; an identity wins over the
// defaults. Skips name where the value came from.
func TestActionAddressDefaults(t *testing.T) {
	f := newAddressFixture(t)
	ds, errs, _ := f.fire(t, []store.BroadcastAction{
		{Type: store.ActionMessage, Channel: f.twilio.ID, Message: hello()},
		{Type: store.ActionMessage, Channel: f.webhook.ID, Message: hello()},
		{Type: store.ActionMessage, Channel: f.slack.ID, Message: hello()},
	}, "p1", "p2", "p3", "p4")

	type want struct{ status, reason, recipient, text, lastError string }
	q, s := string(store.DeliveryQueued), string(store.DeliverySkipped)
	wants := map[string]want{
		"p1/0": {q, "", "+15550000001", "Hi Ann", ""},
		"p2/0": {s, ReasonNoAddress, "", "", "customer.phone is empty"},
		"p3/0": {s, ReasonInvalidAddress, "", "", `customer.phone is "555-1234": not an E.164 phone number (+ then 8 to 15 digits, e.g. +15551234567)`},
		"p4/0": {q, "", "+15551110004", "Hi Di", ""},
		"p1/1": {q, "", "p1", "Hi Ann", ""},
		"p2/1": {q, "", "p2", "Hi Bob", ""},
		"p3/1": {q, "", "p3", "Hi Cy", ""},
		"p4/1": {q, "", "hook-p4", "Hi Di", ""},
		"p1/2": {s, ReasonNoAddress, "", "", "no identity on this slack channel (set to: on the action to derive the address)"},
		"p2/2": {s, ReasonNoAddress, "", "", "no identity on this slack channel (set to: on the action to derive the address)"},
		"p3/2": {s, ReasonNoAddress, "", "", "no identity on this slack channel (set to: on the action to derive the address)"},
		"p4/2": {q, "", "U4", "Hi Di", ""},
	}
	if len(ds) != len(wants) {
		t.Fatalf("%d deliveries, want %d: %+v", len(ds), len(wants), ds)
	}
	for k, w := range wants {
		d := ds[k]
		got := want{string(d.Status), d.Reason, d.Recipient, d.Content.Text, d.LastError}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", k, got, w)
		}
	}
	wantErrs := []string{
		"person p2: action 0: skipped, no_address: customer.phone is empty",
		`person p3: action 0: skipped, invalid_address: customer.phone is "555-1234": not an E.164 phone number (+ then 8 to 15 digits, e.g. +15551234567)`,
	}
	if strings.Join(errs, "\n") != strings.Join(wantErrs, "\n") {
		t.Fatalf("errors\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(wantErrs, "\n"))
	}
}

// TestActionTo: an action's to: renders over customer.* and trigger.*
// and wins over an identity; an empty result is no_address naming to:.
func TestActionTo(t *testing.T) {
	f := newAddressFixture(t)
	ds, errs, _ := f.fire(t, []store.BroadcastAction{
		{Type: store.ActionMessage, Channel: f.twilio.ID, To: "{{ customer.mobile }}", Message: hello()},
		{Type: store.ActionMessage, Channel: f.slack.ID, To: "{{ customer.first_name | downcase }}", Message: hello()},
	}, "p1", "p4")
	for k, w := range map[string]string{"p1/0": "+15559999991", "p1/1": "ann", "p4/1": "di"} {
		if d := ds[k]; d.Status != store.DeliveryQueued || d.Recipient != w {
			t.Errorf("%s: %s to %q, want queued to %q", k, d.Status, d.Recipient, w)
		}
	}
	if d := ds["p4/0"]; d.Status != store.DeliverySkipped || d.Reason != ReasonNoAddress || d.LastError != "to is empty" {
		t.Errorf("p4/0: %s %s %q; want the identity ignored, to: empty", d.Status, d.Reason, d.LastError)
	}
	if len(errs) != 1 || errs[0] != "person p4: action 0: skipped, no_address: to is empty" {
		t.Fatalf("errors %q", errs)
	}
}

// TestFlowActionLinksAddress: a flow action with a derived address starts
// the conversation there and links it to the person, so the conversation
// (and later replies) find them; an identity it used is left as it was.
func TestFlowActionLinksAddress(t *testing.T) {
	f := newAddressFixture(t)
	ctx := context.Background()
	_, _, tr := f.fire(t, []store.BroadcastAction{
		{Type: store.ActionFlow, Channel: f.twilio.ID, Flow: "welcome"},
	}, "p1", "p2", "p4")
	for addr, want := range map[string]string{"+15550000001": "p1", "+15551110004": "p4"} {
		p, err := f.st.PersonByIdentity(ctx, f.twilio.ID, addr)
		if err != nil || p.ID != want {
			t.Fatalf("identity %s: %q %v, want %s", addr, p.ID, err, want)
		}
	}
	ids, err := f.st.ListIdentities(ctx, "w", "p2")
	if err != nil || len(ids) != 0 {
		t.Fatalf("p2 identities %v %v, want none", ids, err)
	}
	if tr.Flows != 2 {
		t.Fatalf("%d flow events, want 2 (p1 and p4)", tr.Flows)
	}
}

// TestReviewTo: activation review refuses a to: whose Liquid does not
// validate, or a literal address its channel type cannot take; parsing
// refuses to: on an attributes action.
func TestReviewTo(t *testing.T) {
	f := newAddressFixture(t)
	ctx := context.Background()
	b := store.Broadcast{WorkspaceID: "w", Name: "x", Recipients: &store.Filter{},
		Actions: []store.BroadcastAction{
			{Type: store.ActionMessage, Channel: f.twilio.ID, To: "{{ customer.phone | nosuchfilter }}", Message: hello()},
			{Type: store.ActionMessage, Channel: f.twilio.ID, To: "555-1234", Message: hello()},
			{Type: store.ActionMessage, Channel: f.twilio.ID, To: "+15551234567", Message: hello()},
			{Type: store.ActionMessage, Channel: f.webhook.ID, To: "{{ customer.email }}", Message: hello()},
		}}
	probs, err := Review(ctx, f.st, nil, template.New(template.Options{}), b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.Pointer+": "+p.Detail)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "/actions/0/to: broken Liquid: ") ||
		got[1] != `/actions/1/to: "555-1234" on twilio channel "sms": not an E.164 phone number (+ then 8 to 15 digits, e.g. +15551234567)` {
		t.Fatalf("problems %q", got)
	}
	var nb store.Broadcast
	err = ParseBroadcast([]byte(`{"name":"x","actions":[{"type":"attributes","to":"x","attributes":{"a":1}}]}`), FilterLimits{}, &nb)
	if fe := (*FieldError)(nil); !errors.As(err, &fe) || fe.Pointer != "/actions/0" {
		t.Fatalf("attributes action with to: %v", err)
	}
}
