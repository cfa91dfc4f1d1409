package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// RunAudience runs the conformance cases of store.Audience: segments,
// broadcasts, triggers with their limits and steps, recipient filters (the
// same expected sets on every engine, which is what makes SQLite and
// PostgreSQL agree), delivery counts and conversions.
func RunAudience(t *testing.T, open func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Segments", testSegments},
		{"Broadcasts", testBroadcasts},
		{"TriggerLimits", testTriggerLimits},
		{"TriggerSteps", testTriggerSteps},
		{"FilterParity", testFilterParity},
		{"RecipientPages", testRecipientPages},
		{"TriggerCounts", testTriggerCounts},
		{"TriggerFailures", testTriggerFailures},
		{"CioIDs", testCioIDs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open(t))
		})
	}
}

func person(t *testing.T, s store.Store, ws, id, email string, attrs map[string]any) {
	t.Helper()
	_, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: ws, ID: id, Email: email, Attributes: attrs})
	must(t, err)
}

func testSegments(t *testing.T, s store.Store) {
	seed(t, s, "a")
	seed(t, s, "b")
	person(t, s, "a", "p1", "", nil)
	person(t, s, "a", "p2", "", nil)
	person(t, s, "b", "q1", "", nil)

	manual := store.Segment{WorkspaceID: "a", Name: "vip", Description: "hand-picked"}
	must(t, s.CreateSegment(ctx(t), &manual))
	if manual.ID == 0 || manual.CreatedAt.IsZero() {
		t.Fatalf("CreateSegment did not fill in id and times: %+v", manual)
	}
	dup := store.Segment{WorkspaceID: "a", Name: "vip"}
	wantErr(t, s.CreateSegment(ctx(t), &dup), store.ErrConflict)
	other := store.Segment{WorkspaceID: "b", Name: "vip"}
	must(t, s.CreateSegment(ctx(t), &other))

	got, err := s.GetSegment(ctx(t), "a", manual.ID)
	must(t, err)
	wantEqual(t, "segment", got, manual)
	_, err = s.GetSegment(ctx(t), "b", manual.ID)
	wantErr(t, err, store.ErrNotFound)
	byName, err := s.GetSegmentByName(ctx(t), "b", "vip")
	must(t, err)
	wantEqual(t, "by name", byName.ID, other.ID)

	// People of another workspace and unknown people are not added.
	missing, err := s.AddSegmentMembers(ctx(t), "a", manual.ID, []string{"p1", "p2", "q1", "ghost", "p1"})
	must(t, err)
	slices.Sort(missing)
	wantEqual(t, "missing", missing, []string{"ghost", "q1"})
	n, err := s.CountRecipients(ctx(t), "a", &store.Filter{Segment: &store.SegmentRef{ID: manual.ID}})
	must(t, err)
	wantEqual(t, "members", n, int64(2))
	must(t, s.RemoveSegmentMembers(ctx(t), "a", manual.ID, []string{"p2"}))
	n, err = s.CountRecipients(ctx(t), "a", &store.Filter{Segment: &store.SegmentRef{ID: manual.ID}})
	must(t, err)
	wantEqual(t, "members after removal", n, int64(1))
	// Deleting a person removes their memberships.
	must(t, s.DeletePerson(ctx(t), "a", "p1"))
	n, err = s.CountRecipients(ctx(t), "a", &store.Filter{Segment: &store.SegmentRef{ID: manual.ID}})
	must(t, err)
	wantEqual(t, "members after person deletion", n, int64(0))

	filtered := store.Segment{WorkspaceID: "a", Name: "pro", Filter: &store.Filter{Attribute: &store.AttributeCond{
		Field: "plan", Operator: store.OpEq, Value: json.RawMessage(`"pro"`)}}}
	must(t, s.CreateSegment(ctx(t), &filtered))
	_, err = s.AddSegmentMembers(ctx(t), "a", filtered.ID, []string{"p2"})
	wantErr(t, err, store.ErrConflict)
	filtered.Name = "pro users"
	must(t, s.UpdateSegment(ctx(t), filtered))
	list, err := s.ListSegments(ctx(t), "a")
	must(t, err)
	if len(list) != 2 || list[1].Name != "pro users" || list[1].Filter == nil || list[1].Filter.Attribute.Field != "plan" {
		t.Fatalf("ListSegments = %+v", list)
	}
	must(t, s.DeleteSegment(ctx(t), "a", manual.ID))
	wantErr(t, s.DeleteSegment(ctx(t), "a", manual.ID), store.ErrNotFound)
}

func sampleBroadcast(ws, name string) store.Broadcast {
	return store.Broadcast{WorkspaceID: ws, Name: name, Description: "d",
		Recipients: &store.Filter{Attribute: &store.AttributeCond{Field: "plan", Operator: store.OpExists}},
		Actions: []store.BroadcastAction{
			{Type: store.ActionMessage, Channel: "c1", Message: &message.Content{Type: message.TypeText, Text: "Hi {{customer.name}}"}},
			{Type: store.ActionAttributes, Attributes: map[string]any{"notified": true}},
		},
		Goal: &store.Goal{Type: store.GoalEvent, Event: "purchase", Within: "72h"},
	}
}

func testBroadcasts(t *testing.T, s store.Store) {
	seed(t, s, "a")
	b := sampleBroadcast("a", "news")
	must(t, s.CreateBroadcast(ctx(t), &b))
	if b.ID == 0 {
		t.Fatal("no id")
	}
	dup := sampleBroadcast("a", "news")
	wantErr(t, s.CreateBroadcast(ctx(t), &dup), store.ErrConflict)
	got, err := s.GetBroadcast(ctx(t), "a", b.ID)
	must(t, err)
	wantEqual(t, "broadcast", got, b)
	got, err = s.GetBroadcastByID(ctx(t), b.ID)
	must(t, err)
	wantEqual(t, "by id", got.Name, "news")
	_, err = s.GetBroadcast(ctx(t), "other", b.ID)
	wantErr(t, err, store.ErrNotFound)

	b.Active, b.Recipients, b.Goal, b.Name = true, nil, nil, "news 2"
	must(t, s.UpdateBroadcast(ctx(t), &b))
	got, err = s.GetBroadcastByName(ctx(t), "a", "news 2")
	must(t, err)
	if !got.Active || got.Recipients != nil || got.Goal != nil || len(got.Actions) != 2 {
		t.Fatalf("updated broadcast = %+v", got)
	}
	missing := store.Broadcast{WorkspaceID: "a", ID: b.ID + 100, Name: "x"}
	wantErr(t, s.UpdateBroadcast(ctx(t), &missing), store.ErrNotFound)
	all, err := s.ListBroadcasts(ctx(t), "a")
	must(t, err)
	wantEqual(t, "list", len(all), 1)
}

func testTriggerLimits(t *testing.T, s store.Store) {
	seed(t, s, "a")
	var bs []store.Broadcast
	for i := range 7 {
		b := sampleBroadcast("a", fmt.Sprintf("b%d", i))
		must(t, s.CreateBroadcast(ctx(t), &b))
		bs = append(bs, b)
	}
	lim := store.TriggerLimits{Interval: 10 * time.Second, MaxOpen: 5, Now: t0}
	first := store.Trigger{WorkspaceID: "a", BroadcastID: bs[0].ID, Request: json.RawMessage(`{"ids":["x"]}`), Broadcast: bs[0]}
	must(t, s.CreateTrigger(ctx(t), &first, lim))
	if first.ID == 0 || first.State != store.TriggerQueued || !first.CreatedAt.Equal(t0) {
		t.Fatalf("created trigger = %+v", first)
	}

	again := store.Trigger{WorkspaceID: "a", BroadcastID: bs[0].ID, Broadcast: bs[0]}
	lim.Now = t0.Add(4 * time.Second)
	var le *store.TriggerLimitError
	if err := s.CreateTrigger(ctx(t), &again, lim); !errors.As(err, &le) || le.Limit != "interval" || le.RetryAfter != 6*time.Second {
		t.Fatalf("second trigger within 10 s: err = %v, want the interval limit with 6 s to wait", err)
	}
	lim.Now = t0.Add(10 * time.Second)
	must(t, s.CreateTrigger(ctx(t), &again, lim))

	// Two open so far; three more broadcasts fill the queue of five.
	for _, b := range bs[1:4] {
		tr := store.Trigger{WorkspaceID: "a", BroadcastID: b.ID, Broadcast: b}
		must(t, s.CreateTrigger(ctx(t), &tr, lim))
	}
	over := store.Trigger{WorkspaceID: "a", BroadcastID: bs[4].ID, Broadcast: bs[4]}
	if err := s.CreateTrigger(ctx(t), &over, lim); !errors.As(err, &le) || le.Limit != "queue" || le.Max != 5 {
		t.Fatalf("sixth open trigger: err = %v, want the queue limit", err)
	}
	// A finished trigger frees its place.
	must(t, s.FailTrigger(ctx(t), first.ID, "data file", []string{"failed to download"}, t0))
	must(t, s.CreateTrigger(ctx(t), &over, lim))

	hist, err := s.ListTriggers(ctx(t), "a", bs[0].ID, 0, 10)
	must(t, err)
	if len(hist) != 2 || hist[0].ID != again.ID || hist[1].ID != first.ID || hist[1].State != store.TriggerFailed ||
		hist[1].Error != "data file" || hist[1].ProcessedAt == nil || hist[1].Errors != 1 {
		t.Fatalf("history newest first = %+v", hist)
	}
	wantEqual(t, "snapshot", hist[0].Broadcast.Actions, bs[0].Actions)
	older, err := s.ListTriggers(ctx(t), "a", bs[0].ID, again.ID, 10)
	must(t, err)
	wantEqual(t, "page before", len(older), 1)

	// Broadcast 0 lists the workspace's triggers of every broadcast; not
	// another workspace's.
	all, err := s.ListTriggers(ctx(t), "a", 0, 0, 10)
	must(t, err)
	wantEqual(t, "every broadcast's triggers", len(all), 6)
	if all[0].ID != over.ID || all[5].ID != first.ID {
		t.Fatalf("every broadcast's triggers not newest first: %d … %d", all[0].ID, all[5].ID)
	}
	page, err := s.ListTriggers(ctx(t), "a", 0, all[1].ID, 2)
	must(t, err)
	wantEqual(t, "page of every broadcast's triggers", []int64{page[0].ID, page[1].ID}, []int64{all[2].ID, all[3].ID})
	other, err := s.ListTriggers(ctx(t), "b", 0, 0, 10)
	must(t, err)
	wantEqual(t, "another workspace's triggers", len(other), 0)
}

func testTriggerSteps(t *testing.T, s store.Store) {
	seed(t, s, "a")
	b := sampleBroadcast("a", "b")
	must(t, s.CreateBroadcast(ctx(t), &b))
	tr := store.Trigger{WorkspaceID: "a", BroadcastID: b.ID, Broadcast: b}
	must(t, s.CreateTrigger(ctx(t), &tr, store.TriggerLimits{}))

	must(t, s.AdvanceTrigger(ctx(t), store.TriggerStep{TriggerID: tr.ID, Steps: 0, Cursor: "p100", Matched: 100,
		Errors: []string{"line 1: bad json", "line 2: no id"}}))
	// A second worker that read the same step loses.
	err := s.AdvanceTrigger(ctx(t), store.TriggerStep{TriggerID: tr.ID, Steps: 0, Cursor: "p100", Matched: 100})
	wantErr(t, err, store.ErrConflict)
	var errs []string
	for i := range 5 {
		errs = append(errs, fmt.Sprintf("line %d: x", i+3))
	}
	must(t, s.AdvanceTrigger(ctx(t), store.TriggerStep{TriggerID: tr.ID, Steps: 1, Cursor: "p150", Matched: 50, Flows: 3,
		Errors: errs, Done: true, At: t0}))
	got, err := s.GetTrigger(ctx(t), "a", tr.ID)
	must(t, err)
	if got.State != store.TriggerProcessed || got.Cursor != "p150" || got.Steps != 2 || got.Matched != 150 ||
		got.Flows != 3 || got.Errors != 7 || got.ProcessedAt == nil || !got.ProcessedAt.Equal(t0) {
		t.Fatalf("trigger after steps = %+v", got)
	}
	// A processed trigger takes no more steps and cannot fail.
	wantErr(t, s.AdvanceTrigger(ctx(t), store.TriggerStep{TriggerID: tr.ID, Steps: 2}), store.ErrConflict)
	wantErr(t, s.FailTrigger(ctx(t), tr.ID, "late", nil, t0), store.ErrNotFound)

	page, next, err := s.ListTriggerErrors(ctx(t), tr.ID, 0, 3)
	must(t, err)
	wantEqual(t, "first page", page, []string{"line 1: bad json", "line 2: no id", "line 3: x"})
	wantEqual(t, "next", next, 3)
	page, next, err = s.ListTriggerErrors(ctx(t), tr.ID, 3, 10)
	must(t, err)
	wantEqual(t, "last page", len(page), 4)
	wantEqual(t, "no next", next, 0)
	_, err = s.GetTrigger(ctx(t), "other", tr.ID)
	wantErr(t, err, store.ErrNotFound)
}

// audiencePeople are the people filters are checked against.
var audiencePeople = []struct {
	id    string
	email string
	attrs map[string]any
}{
	{"ann", "ann@example.com", map[string]any{"first_name": "Ann", "likes_baseball": true, "age": 30.0, "code": "1"}},
	{"bob", "bob@example.com", map[string]any{"first_name": "Bob", "likes_baseball": false, "age": 30.5, "code": 1.0}},
	{"cat", "", map[string]any{"likes_baseball": true, "age": 41.0, "nested": map[string]any{"x": 1.0}}},
	{"dan", "dan@example.com", map[string]any{"first_name": "", "likes_baseball": "true"}},
	{"eve", "eve@example.com", map[string]any{}},
}

func attr(field, op, value string) store.Filter {
	a := &store.AttributeCond{Field: field, Operator: op}
	if value != "" {
		a.Value = json.RawMessage(value)
	}
	return store.Filter{Attribute: a}
}

func testFilterParity(t *testing.T, s store.Store) {
	seed(t, s, "a")
	seed(t, s, "b")
	for _, p := range audiencePeople {
		person(t, s, "a", p.id, p.email, p.attrs)
	}
	person(t, s, "b", "ann", "", map[string]any{"likes_baseball": true})
	seg3 := store.Segment{WorkspaceID: "a", Name: "manual"}
	must(t, s.CreateSegment(ctx(t), &seg3))
	_, err := s.AddSegmentMembers(ctx(t), "a", seg3.ID, []string{"ann", "cat", "eve"})
	must(t, err)
	older := attr("age", "eq", "30")
	seg4 := store.Segment{WorkspaceID: "a", Name: "thirty", Filter: &store.Filter{Or: []store.Filter{older, {Segment: &store.SegmentRef{ID: seg3.ID}}}}}
	must(t, s.CreateSegment(ctx(t), &seg4))
	seg := func(id int64) store.Filter { return store.Filter{Segment: &store.SegmentRef{ID: id}} }
	not := func(f store.Filter) store.Filter { return store.Filter{Not: &f} }

	for _, tc := range []struct {
		name   string
		filter store.Filter
		want   []string
	}{
		// The examples of Customer.io's API-triggered broadcast doc.
		{"and: first_name exists and likes_baseball eq true",
			store.Filter{And: []store.Filter{attr("first_name", "exists", ""), attr("likes_baseball", "eq", "true")}}, []string{"ann"}},
		{"or: segment or likes_baseball", store.Filter{Or: []store.Filter{seg(seg3.ID), attr("likes_baseball", "eq", "true")}},
			[]string{"ann", "cat", "eve"}},
		{"not: and of segment and attribute",
			not(store.Filter{And: []store.Filter{seg(seg3.ID), attr("likes_baseball", "eq", "true")}}), []string{"bob", "dan", "eve"}},
		{"segment", seg(seg3.ID), []string{"ann", "cat", "eve"}},
		{"attribute eq true", attr("likes_baseball", "eq", "true"), []string{"ann", "cat"}},
		// Scalars compare by type and value.
		{"eq false is not missing", attr("likes_baseball", "eq", "false"), []string{"bob"}},
		{"eq string true is not boolean", attr("likes_baseball", "eq", `"true"`), []string{"dan"}},
		{"number 30 equals 30.0", attr("age", "eq", "30.0"), []string{"ann"}},
		{"number 30.5", attr("age", "eq", "30.5"), []string{"bob"}},
		{"number 1 is not string 1", attr("code", "eq", "1"), []string{"bob"}},
		{"string 1 is not number 1", attr("code", "eq", `"1"`), []string{"ann"}},
		{"empty string exists", attr("first_name", "exists", ""), []string{"ann", "bob", "dan"}},
		{"empty string equals empty", attr("first_name", "eq", `""`), []string{"dan"}},
		{"object exists", attr("nested", "exists", ""), []string{"cat"}},
		{"not of missing attribute keeps people without it", not(attr("first_name", "exists", "")), []string{"cat", "eve"}},
		{"not eq includes missing", not(attr("likes_baseball", "eq", "true")), []string{"bob", "dan", "eve"}},
		{"filter segment expands with nested segment", seg(seg4.ID), []string{"ann", "cat", "eve"}},
		{"deep nesting", store.Filter{And: []store.Filter{
			{Or: []store.Filter{not(not(attr("age", "exists", ""))), attr("code", "exists", "")}},
			{Not: &store.Filter{And: []store.Filter{attr("age", "eq", "41")}}},
		}}, []string{"ann", "bob"}},
		{"field with dots and spaces", attr("a.b c", "exists", ""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.filter
			got := recipientIDs(t, s, "a", &f)
			wantEqual(t, "recipients", got, tc.want)
			n, err := s.CountRecipients(ctx(t), "a", &f)
			must(t, err)
			wantEqual(t, "count", n, int64(len(tc.want)))
		})
	}

	_, err = s.CountRecipients(ctx(t), "a", &store.Filter{Segment: &store.SegmentRef{ID: 999999}})
	wantErr(t, err, store.ErrNotFound)
	// Segments are per workspace.
	_, err = s.CountRecipients(ctx(t), "b", &store.Filter{Segment: &store.SegmentRef{ID: seg3.ID}})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CountRecipients(ctx(t), "a", &store.Filter{})
	wantErr(t, err, store.ErrInvalidFilter)
	loop := store.Segment{WorkspaceID: "a", Name: "loop"}
	must(t, s.CreateSegment(ctx(t), &loop))
	loop.Filter = &store.Filter{Or: []store.Filter{seg(loop.ID), attr("age", "exists", "")}}
	must(t, s.UpdateSegment(ctx(t), loop))
	_, err = s.CountRecipients(ctx(t), "a", &store.Filter{Segment: &store.SegmentRef{ID: loop.ID}})
	wantErr(t, err, store.ErrInvalidFilter)
	n, err := s.CountRecipients(ctx(t), "a", nil)
	must(t, err)
	wantEqual(t, "everyone", n, int64(len(audiencePeople)))
}

// recipientIDs pages through a filter's recipients two at a time.
func recipientIDs(t *testing.T, s store.Store, ws string, f *store.Filter) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		page, err := s.ListRecipients(ctx(t), store.RecipientQuery{WorkspaceID: ws, Filter: f, After: after, Limit: 2})
		must(t, err)
		for _, r := range page {
			ids = append(ids, r.Person.ID)
		}
		if len(page) < 2 {
			slices.Sort(ids)
			return ids
		}
		after = page[len(page)-1].Person.ID
	}
}

func testRecipientPages(t *testing.T, s store.Store) {
	tn := seed(t, s, "a")
	other := store.Channel{WorkspaceID: "a", BotID: tn.bot, Name: "other", Type: "webhook", Enabled: true}
	must(t, s.UpsertChannel(ctx(t), &other))
	for i := range 25 {
		id := fmt.Sprintf("p%02d", i)
		person(t, s, "a", id, id+"@example.com", map[string]any{"n": float64(i)})
		if i%2 == 0 {
			must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: id, ChannelID: tn.channel, Address: "addr-" + id}))
		}
	}
	must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: "p00", ChannelID: tn.channel, Address: "a-first"}))
	must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: "p01", ChannelID: other.ID, Address: "o1"}))

	var seen []string
	after := ""
	for {
		page, err := s.ListRecipients(ctx(t), store.RecipientQuery{WorkspaceID: "a", After: after, Limit: 10,
			Channels: []string{tn.channel, other.ID}})
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			seen = append(seen, r.Person.ID)
			switch r.Person.ID {
			case "p00":
				wantEqual(t, "lowest address of several", r.Addresses, []string{"a-first", ""})
			case "p01":
				wantEqual(t, "address on the other channel", r.Addresses, []string{"", "o1"})
			case "p02":
				wantEqual(t, "address", r.Addresses, []string{"addr-p02", ""})
				wantEqual(t, "attributes", r.Person.Attributes, map[string]any{"n": 2.0})
				wantEqual(t, "email", r.Person.Email, "p02@example.com")
			}
		}
		after = page[len(page)-1].Person.ID
	}
	if len(seen) != 25 || !slices.IsSorted(seen) {
		t.Fatalf("pages = %v, want 25 people in id order", seen)
	}

	byID, err := s.ListRecipients(ctx(t), store.RecipientQuery{WorkspaceID: "a", IDs: []string{"p03", "ghost", "p04"},
		Channels: []string{tn.channel}})
	must(t, err)
	if len(byID) != 2 || byID[0].Person.ID != "p03" || byID[1].Addresses[0] != "addr-p04" {
		t.Fatalf("by ids = %+v", byID)
	}
	person(t, s, "a", "twin", "P05@Example.com", nil)
	byEmail, err := s.ListRecipients(ctx(t), store.RecipientQuery{WorkspaceID: "a", Emails: []string{"p05@EXAMPLE.com", "nobody@x"}})
	must(t, err)
	ids := []string{}
	for _, r := range byEmail {
		ids = append(ids, r.Person.ID)
	}
	slices.Sort(ids)
	wantEqual(t, "by email, with a shared email", ids, []string{"p05", "twin"})
}

func testTriggerCounts(t *testing.T, s store.Store) {
	tn := seed(t, s, "a")
	for _, id := range []string{"p1", "p2", "p3"} {
		person(t, s, "a", id, "", nil)
	}
	b := sampleBroadcast("a", "b")
	must(t, s.CreateBroadcast(ctx(t), &b))
	tr := store.Trigger{WorkspaceID: "a", BroadcastID: b.ID, Broadcast: b}
	must(t, s.CreateTrigger(ctx(t), &tr, store.TriggerLimits{}))
	src := fmt.Sprint(tr.ID)
	d := func(key, person string, status store.DeliveryStatus, reason string) store.Delivery {
		return store.Delivery{WorkspaceID: "a", ChannelID: tn.channel, Recipient: "addr-" + person, PersonID: person,
			Content: message.Text("hi"), IdempotencyKey: key, Status: status, Reason: reason, SourceKind: "trigger", SourceID: src}
	}
	_, err := s.EnqueueDeliveries(ctx(t), []store.Delivery{
		d(store.TriggerDeliveryKey(tr.ID, 0, "p1"), "p1", store.DeliveryQueued, ""),
		d(store.TriggerDeliveryKey(tr.ID, 0, "p2"), "p2", store.DeliveryQueued, ""),
		d(store.TriggerDeliveryKey(tr.ID, 0, "p3"), "p3", store.DeliverySkipped, "no_address"),
		// What the conversation engine writes for a flow action.
		d("conversation:"+store.TriggerDeliveryKey(tr.ID, 1, "p1")+":0", "p1", store.DeliveryQueued, ""),
		d("other-key", "p1", store.DeliveryQueued, ""),
	})
	must(t, err)
	// One recipient's deliveries go out one at a time: claim until done.
	for {
		claimed, err := s.ClaimDeliveries(ctx(t), store.ClaimOptions{Node: nodeA, Limit: 10, Now: t0})
		must(t, err)
		if len(claimed) == 0 {
			break
		}
		var results []store.DeliveryResult
		for _, c := range claimed {
			r := store.DeliveryResult{ID: c.ID, Status: store.DeliverySent, At: t0}
			if c.PersonID == "p2" {
				r.Status, r.Reason = store.DeliveryFailed, "channel_rejected"
			}
			results = append(results, r)
		}
		must(t, s.CompleteDeliveries(ctx(t), nodeA, results))
	}

	counts, err := s.CountTriggerDeliveries(ctx(t), []int64{tr.ID}, 2)
	must(t, err)
	want := []store.DeliveryCount{
		{TriggerID: tr.ID, Action: -1, Status: store.DeliverySent, N: 1},
		{TriggerID: tr.ID, Action: 0, Status: store.DeliveryFailed, Reason: "channel_rejected", N: 1},
		{TriggerID: tr.ID, Action: 0, Status: store.DeliverySent, N: 1},
		{TriggerID: tr.ID, Action: 0, Status: store.DeliverySkipped, Reason: "no_address", N: 1},
		{TriggerID: tr.ID, Action: 1, Status: store.DeliverySent, N: 1},
	}
	wantEqual(t, "counts", counts, want)

	// p1 buys within the window, p3 (never reached) too: only p1 converts,
	// once overall and once per action that reached them.
	must(t, s.RecordPersonEvent(ctx(t), store.PersonEvent{WorkspaceID: "a", PersonID: "p1", Name: "purchase", At: t0.Add(time.Hour)}))
	must(t, s.RecordPersonEvent(ctx(t), store.PersonEvent{WorkspaceID: "a", PersonID: "p3", Name: "purchase", At: t0.Add(time.Hour)}))
	must(t, s.RecordPersonEvent(ctx(t), store.PersonEvent{WorkspaceID: "a", PersonID: "p1", Name: "purchase", At: t0.Add(-time.Hour)}))
	conv, err := s.CountConversions(ctx(t), "a", []int64{tr.ID}, 2, store.Goal{Type: store.GoalEvent, Event: "purchase"}, 72*time.Hour)
	must(t, err)
	wantEqual(t, "conversions", conv, []store.Conversion{{Action: -1, N: 1}, {Action: -1, N: 1}, {Action: 0, N: 1}, {Action: 1, N: 1}})
	conv, err = s.CountConversions(ctx(t), "a", []int64{tr.ID}, 2, store.Goal{Type: store.GoalEvent, Event: "purchase"}, 30*time.Minute)
	must(t, err)
	wantEqual(t, "conversions outside the window", conv, []store.Conversion{{Action: -1, N: 0}})
	for _, g := range []store.Goal{{Type: store.GoalReply}, {Type: store.GoalFlow, Flow: "Welcome"}} {
		conv, err = s.CountConversions(ctx(t), "a", []int64{tr.ID}, 2, g, time.Hour)
		must(t, err)
		wantEqual(t, "no "+g.Type+" conversions", conv, []store.Conversion{{Action: -1, N: 0}})
	}
}

func testTriggerFailures(t *testing.T, s store.Store) {
	tn := seed(t, s, "a")
	b := sampleBroadcast("a", "b")
	must(t, s.CreateBroadcast(ctx(t), &b))
	var triggers []store.Trigger
	for range 2 {
		tr := store.Trigger{WorkspaceID: "a", BroadcastID: b.ID, Broadcast: b}
		must(t, s.CreateTrigger(ctx(t), &tr, store.TriggerLimits{}))
		triggers = append(triggers, tr)
	}
	tr, other := triggers[0], triggers[1]
	d := func(tr store.Trigger, person string, status store.DeliveryStatus, reason string) store.Delivery {
		return store.Delivery{WorkspaceID: "a", ChannelID: tn.channel, Recipient: "addr-" + person, PersonID: person,
			Content: message.Text("hi"), IdempotencyKey: store.TriggerDeliveryKey(tr.ID, 0, person), Status: status,
			Reason: reason, SourceKind: "trigger", SourceID: fmt.Sprint(tr.ID)}
	}
	_, err := s.EnqueueDeliveries(ctx(t), []store.Delivery{
		d(tr, "p0", store.DeliveryFailed, "render_error"), // failed by the fan-out: excepted
		d(tr, "p1", store.DeliveryQueued, ""),
		d(tr, "p2", store.DeliveryQueued, ""),
		d(tr, "p3", store.DeliveryQueued, ""),
		d(tr, "p4", store.DeliveryQueued, ""),
		d(other, "p1", store.DeliveryQueued, ""),
	})
	must(t, err)
	claimed, err := s.ClaimDeliveries(ctx(t), store.ClaimOptions{Node: nodeA, Limit: 10, Now: t0})
	must(t, err)
	// p1 fails last, p3 first: the list follows the failures, not the ids.
	outcome := map[string]store.DeliveryResult{
		"p1": {Status: store.DeliveryFailed, Reason: "unknown_user", LastError: "permanent (unknown_user): chat not found", At: t0.Add(3 * time.Second)},
		"p2": {Status: store.DeliverySent, At: t0},
		"p3": {Status: store.DeliveryFailed, Reason: "channel_rejected", LastError: "permanent (400): bad", At: t0.Add(time.Second)},
		"p4": {Status: store.DeliveryFailed, Reason: "retries_exhausted", LastError: "transient: 503", At: t0.Add(2 * time.Second)},
	}
	var results []store.DeliveryResult
	for _, c := range claimed {
		r := outcome[c.PersonID]
		if c.SourceID != fmt.Sprint(tr.ID) {
			r = store.DeliveryResult{Status: store.DeliveryFailed, Reason: "unknown_user", At: t0}
		}
		r.ID, r.CountAttempt = c.ID, true
		results = append(results, r)
	}
	must(t, s.CompleteDeliveries(ctx(t), nodeA, results))

	people := func(ds []store.Delivery) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.PersonID+" "+d.Reason+" "+d.LastError)
		}
		return out
	}
	all, err := s.ListTriggerFailures(ctx(t), tr.ID, "render_error", 0, 10)
	must(t, err)
	wantEqual(t, "failures", people(all), []string{"p3 channel_rejected permanent (400): bad",
		"p4 retries_exhausted transient: 503", "p1 unknown_user permanent (unknown_user): chat not found"})
	page, err := s.ListTriggerFailures(ctx(t), tr.ID, "render_error", 1, 1)
	must(t, err)
	wantEqual(t, "second page", people(page), []string{"p4 retries_exhausted transient: 503"})
	page, err = s.ListTriggerFailures(ctx(t), tr.ID, "render_error", 3, 10)
	must(t, err)
	wantEqual(t, "past the end", people(page), []string{})
	with, err := s.ListTriggerFailures(ctx(t), tr.ID, "", 0, 1)
	must(t, err)
	wantEqual(t, "nothing excepted", people(with), []string{"p0 render_error "})
}

func testCioIDs(t *testing.T, s store.Store) {
	tn := seed(t, s, "a")
	seed(t, s, "b")
	person(t, s, "a", "p1", "ann@example.com", map[string]any{"plan": "pro"})
	person(t, s, "a", "p2", "", nil)
	p1, err := s.GetPerson(ctx(t), "a", "p1")
	must(t, err)
	p2, err := s.GetPerson(ctx(t), "a", "p2")
	must(t, err)
	if len(p1.CioID) != 16 || p1.CioID == p2.CioID {
		t.Fatalf("cio ids %q and %q, want two different 16-digit ids", p1.CioID, p2.CioID)
	}
	again, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "a", ID: "p1", Attributes: map[string]any{"seats": 2.0}})
	must(t, err)
	wantEqual(t, "cio id after an update", again.CioID, p1.CioID)
	byCio, err := s.GetPersonByCioID(ctx(t), "a", p1.CioID)
	must(t, err)
	wantEqual(t, "person by cio id", byCio.ID, "p1")
	_, err = s.GetPersonByCioID(ctx(t), "b", p1.CioID)
	wantErr(t, err, store.ErrNotFound)

	// Everything that refers to p1 follows it to its new id.
	must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: "p1", ChannelID: tn.channel, Address: "u1"}))
	manual := store.Segment{WorkspaceID: "a", Name: "manual"}
	must(t, s.CreateSegment(ctx(t), &manual))
	_, err = s.AddSegmentMembers(ctx(t), "a", manual.ID, []string{"p1"})
	must(t, err)
	must(t, s.RecordPersonEvent(ctx(t), store.PersonEvent{WorkspaceID: "a", PersonID: "p1", Name: "purchase", At: t0.Add(time.Minute)}))
	must(t, s.RenamePerson(ctx(t), "a", "p1", "p9"))
	_, err = s.GetPerson(ctx(t), "a", "p1")
	wantErr(t, err, store.ErrNotFound)
	p9, err := s.GetPersonByCioID(ctx(t), "a", p1.CioID)
	must(t, err)
	if p9.ID != "p9" || p9.Email != "ann@example.com" || !p9.CreatedAt.Equal(p1.CreatedAt) ||
		!reflect.DeepEqual(p9.Attributes, map[string]any{"plan": "pro", "seats": 2.0}) {
		t.Fatalf("renamed person = %+v, want p9 with p1's cio id, email, attributes and creation", p9)
	}
	owner, err := s.PersonByIdentity(ctx(t), tn.channel, "u1")
	must(t, err)
	wantEqual(t, "identity owner", owner.ID, "p9")
	wantEqual(t, "manual segment", recipientIDs(t, s, "a", &store.Filter{Segment: &store.SegmentRef{ID: manual.ID}}), []string{"p9"})
	// The event moved too: it converts a delivery that reached p9.
	b := sampleBroadcast("a", "b")
	must(t, s.CreateBroadcast(ctx(t), &b))
	tr := store.Trigger{WorkspaceID: "a", BroadcastID: b.ID, Broadcast: b}
	must(t, s.CreateTrigger(ctx(t), &tr, store.TriggerLimits{}))
	_, err = s.EnqueueDeliveries(ctx(t), []store.Delivery{{WorkspaceID: "a", ChannelID: tn.channel, Recipient: "u1",
		PersonID: "p9", Content: message.Text("hi"), IdempotencyKey: store.TriggerDeliveryKey(tr.ID, 0, "p9"),
		Status: store.DeliveryQueued, SourceKind: "trigger", SourceID: fmt.Sprint(tr.ID)}})
	must(t, err)
	claimed, err := s.ClaimDeliveries(ctx(t), store.ClaimOptions{Node: nodeA, Limit: 1, Now: t0})
	must(t, err)
	must(t, s.CompleteDeliveries(ctx(t), nodeA, []store.DeliveryResult{{ID: claimed[0].ID, Status: store.DeliverySent, At: t0}}))
	conv, err := s.CountConversions(ctx(t), "a", []int64{tr.ID}, 1, store.Goal{Type: store.GoalEvent, Event: "purchase"}, time.Hour)
	must(t, err)
	wantEqual(t, "conversions", conv, []store.Conversion{{Action: -1, N: 1}, {Action: 0, N: 1}})

	wantErr(t, s.RenamePerson(ctx(t), "a", "p9", "p2"), store.ErrConflict)
	wantErr(t, s.RenamePerson(ctx(t), "a", "ghost", "p3"), store.ErrNotFound)
	got, err := s.ListRecipients(ctx(t), store.RecipientQuery{WorkspaceID: "a", IDs: []string{"p2"}})
	must(t, err)
	wantEqual(t, "recipient's cio id", got[0].Person.CioID, p2.CioID)
}
