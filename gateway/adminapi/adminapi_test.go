package adminapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// resources is a workspace with a bot, a webhook channel, a person and a
// broadcast.
func resources(ws string) string {
	return fmt.Sprintf(`
workspace: {id: %[1]s, name: Workspace %[1]s}
bots:
  - name: %[1]s-bot
    default_flow: main
    flows:
      - id: main
        steps:
          - say: "Hello"
channels:
  - name: %[1]s-hook
    id: %[1]s-hook
    type: webhook
    bot: %[1]s-bot
    config: {url: "http://127.0.0.1:1/hook"}
people:
  - id: %[1]s-person
    email: %[1]s@example.com
    attributes: {on_call: true}
    identities: [{channel: %[1]s-hook, address: "%[1]s-addr"}]
broadcasts:
  - name: %[1]s-news
    active: true
    recipients: {attribute: {field: on_call, operator: exists}}
    actions:
      - type: message
        channel: %[1]s-hook
        message: {text: "News"}
`, ws)
}

// tenant is what the fixture made in one workspace.
type tenant struct {
	ws           string
	adminKey     string
	adminKeyID   string
	conversation string
	deliveries   []int64 // oldest first
	broadcast    int64
	trigger      int64
}

type fixture struct {
	st       *sqlstore.Store
	srv      *httptest.Server
	operator string
	a, b     tenant
	now      time.Time
}

const pluginNode = "node-test"

// newFixture serves the admin API over two workspaces, a and b, each
// with a conversation of two messages, three deliveries and a trigger.
func newFixture(t *testing.T, rate float64) *fixture {
	t.Helper()
	st := sqlstore.OpenTest(t)
	f := &fixture{st: st, now: time.Now()}
	ctx := context.Background()
	aud := audience.New(audience.Options{Store: st, Engine: audience.NewEngine(st, audience.EngineOptions{}),
		Bots: bot.NewCache(st, bot.CacheOptions{}), TriggerInterval: -1, MaxOpenTriggers: -1})
	for _, tn := range []*tenant{&f.a, &f.b} {
		if tn == &f.a {
			tn.ws = "a"
		} else {
			tn.ws = "b"
		}
		gatewaytest.ApplyTo(t, st, resources(tn.ws))
		tn.adminKey = gatewaytest.NewKey(t, st, tn.ws, store.ScopeAdmin, "")
		k, err := st.GetAPIKeyByHash(ctx, auth.Hash(tn.adminKey))
		if err != nil {
			t.Fatal(err)
		}
		tn.adminKeyID = k.ID
		bots, err := st.ListBots(ctx, tn.ws)
		if err != nil {
			t.Fatal(err)
		}
		c := store.Conversation{WorkspaceID: tn.ws, BotID: bots[0].ID, ChannelID: tn.ws + "-hook", UserID: tn.ws + "-addr",
			PersonID: tn.ws + "-person", Status: store.ConversationOpen, FlowID: "main", StepID: "start",
			LastInteractionAt: f.now, ExpiresAt: f.now.Add(time.Hour), CreatedAt: f.now}
		if err := st.CreateConversation(ctx, &c); err != nil {
			t.Fatal(err)
		}
		tn.conversation = c.ID
		ds := make([]store.Delivery, 3)
		for i := range ds {
			ds[i] = store.Delivery{WorkspaceID: tn.ws, ChannelID: tn.ws + "-hook", Recipient: tn.ws + "-addr",
				PersonID: tn.ws + "-person", ConversationID: c.ID, Content: message.Text(fmt.Sprintf("reply %d", i)),
				SourceKind: "reply", SourceID: c.ID}
			if _, err := st.EnqueueDeliveries(ctx, ds[i:i+1]); err != nil {
				t.Fatal(err)
			}
			tn.deliveries = append(tn.deliveries, ds[i].ID)
		}
		if err := st.AppendMessages(ctx, []store.Message{
			{ConversationID: c.ID, Direction: store.Inbound, Content: message.Text("hi")},
			{ConversationID: c.ID, Direction: store.Outbound, Content: message.Text("reply 0"), DeliveryID: ds[0].ID},
		}); err != nil {
			t.Fatal(err)
		}
		b, err := st.GetBroadcastByName(ctx, tn.ws, tn.ws+"-news")
		if err != nil {
			t.Fatal(err)
		}
		tn.broadcast = b.ID
		res, err := aud.Trigger(ctx, tn.ws, b.ID, strings.NewReader(`{"ids":["`+tn.ws+`-person"]}`))
		if err != nil {
			t.Fatal(err)
		}
		tn.trigger = res.Trigger.ID
	}
	// q1 fails, so that filters have something to tell apart.
	if _, err := st.StartNode(ctx, "n1", f.now, time.Hour); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.ClaimDeliveries(ctx, store.ClaimOptions{Node: "n1", Limit: 10, Now: f.now.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range claimed {
		if d.ID == f.a.deliveries[0] {
			if err := st.CompleteDeliveries(ctx, "n1", []store.DeliveryResult{{ID: d.ID, Status: store.DeliveryFailed,
				Reason: "blocked", CountAttempt: true, At: f.now}}); err != nil {
				t.Fatal(err)
			}
		}
	}

	raw, digest, err := auth.NewOperatorKey()
	if err != nil {
		t.Fatal(err)
	}
	f.operator = raw
	ops, err := auth.ParseOperatorKeys([]string{digest})
	if err != nil {
		t.Fatal(err)
	}
	svc := adminapi.NewService(adminapi.Options{Store: st, Audience: aud, Bots: bot.CompileNode, Node: pluginNode,
		Plugins: func() []pluginhost.PluginStatus {
			return []pluginhost.PluginStatus{{Name: "webhook", Version: "1.0", State: pluginhost.StateRunning,
				Instances: []pluginhost.InstanceStatus{{ChannelID: "a-hook", Healthy: true}, {ChannelID: "b-hook", Reason: "sink down"}}}}
		}})
	api := adminapi.NewAPI(adminapi.HTTPOptions{Service: svc, Auth: &auth.Authenticator{Keys: st}, Operators: ops, RateLimit: rate})
	mux := http.NewServeMux()
	for _, r := range api.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) client(key, ws string) *adminapi.Client {
	return &adminapi.Client{BaseURL: f.srv.URL, Key: key, Workspace: ws}
}

// call sends a raw request and returns the status and the error envelope's
// first code and detail (if any).
func (f *fixture) call(t *testing.T, method, path, key, body string) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Errors []struct{ Code, Detail string } `json:"errors"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &env)
	if resp.StatusCode >= 400 && len(env.Errors) == 0 {
		t.Fatalf("%s %s: %d without the error envelope: %s", method, path, resp.StatusCode, raw)
	}
	if len(env.Errors) > 0 {
		return resp.StatusCode, env.Errors[0].Code, env.Errors[0].Detail
	}
	return resp.StatusCode, "", ""
}

func status(err error) int {
	var ae *httpapi.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// TestTenantIsolation: an admin key of workspace b sees none of a's
// objects: gets answer 404 exactly as for a missing object, lists hold b's
// only, and writes into a are refused.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ctx := context.Background()
	b := f.client(f.b.adminKey, "")
	a := f.a

	for name, err := range map[string]error{
		"bot":                       second(b.GetBot(ctx, "", "a-bot")),
		"channel":                   second(b.GetChannel(ctx, "", "a-hook")),
		"person":                    second(b.GetPerson(ctx, "", "a-person")),
		"conversation":              second(b.GetConversation(ctx, "", a.conversation)),
		"delivery":                  second(b.GetDelivery(ctx, "", a.deliveries[0])),
		"trigger":                   second(b.GetTrigger(ctx, "", a.trigger)),
		"key revoke":                second(b.RevokeKey(ctx, "", a.adminKeyID)),
		"key rotate":                second(b.RotateKey(ctx, "", a.adminKeyID, time.Hour)),
		"triggers of a's broadcast": second(b.ListTriggers(ctx, "", adminapi.TriggerQuery{BroadcastID: a.broadcast})),
		"trigger a's broadcast":     second(b.TriggerBroadcast(ctx, "", a.broadcast, json.RawMessage(`{"ids":["b-person"]}`))),
	} {
		if status(err) != http.StatusNotFound {
			t.Errorf("b's admin key, a's %s: err = %v, want 404", name, err)
		}
	}
	// a's key still works: the revoke and rotate above did nothing.
	if _, err := f.client(a.adminKey, "").ListKeys(ctx, "", adminapi.ListOptions{}); err != nil {
		t.Fatalf("a's admin key after b tried to revoke it: %v", err)
	}

	checkOnly := func(what string, ids []string) {
		t.Helper()
		if len(ids) == 0 {
			t.Errorf("b lists no %s", what)
		}
		for _, id := range ids {
			if strings.HasPrefix(id, "a") {
				t.Errorf("b lists a's %s %s", what, id)
			}
		}
	}
	keys, _ := b.ListKeys(ctx, "", adminapi.ListOptions{})
	checkOnly("keys", mapIDs(keys.Data, func(k adminapi.Key) string { return k.WorkspaceID }))
	bots, _ := b.ListBots(ctx, "", adminapi.ListOptions{})
	checkOnly("bots", mapIDs(bots.Data, func(x adminapi.Bot) string { return x.Name }))
	chs, _ := b.ListChannels(ctx, "", adminapi.ListOptions{})
	checkOnly("channels", mapIDs(chs.Data, func(x adminapi.Channel) string { return x.ID }))
	people, _ := b.ListPeople(ctx, "", adminapi.ListOptions{})
	checkOnly("people", mapIDs(people.Data, func(x adminapi.Person) string { return x.ID }))
	convs, _ := b.ListConversations(ctx, "", adminapi.ConversationQuery{})
	checkOnly("conversations", mapIDs(convs.Data, func(x adminapi.Conversation) string { return x.ChannelID }))
	ds, _ := b.ListDeliveries(ctx, "", adminapi.DeliveryQuery{})
	checkOnly("deliveries", mapIDs(ds.Data, func(x adminapi.Delivery) string { return x.ChannelID }))
	ts, _ := b.ListTriggers(ctx, "", adminapi.TriggerQuery{})
	checkOnly("triggers", mapIDs(ts.Data, func(x adminapi.Trigger) string { return x.BroadcastName }))
	ws, _ := b.ListWorkspaces(ctx, adminapi.ListOptions{})
	checkOnly("workspaces", mapIDs(ws.Data, func(x adminapi.Workspace) string { return x.ID }))
	st, _ := b.Status(ctx, "")
	checkOnly("status channels", mapIDs(st.Channels, func(x adminapi.Channel) string { return x.ID }))
	checkOnly("status queue", mapIDs(st.Queue, func(x adminapi.QueueDepth) string { return x.ChannelID }))

	// A delivery cursor is a position, never a way into a's rows; a
	// conversation cursor naming a's conversation is refused.
	page, err := b.ListDeliveries(ctx, "", adminapi.DeliveryQuery{After: 0, ListOptions: adminapi.ListOptions{Limit: 1}})
	if err != nil || page.Next == "" {
		t.Fatalf("b's first delivery page: %v, next %q", err, page.Next)
	}

	// Writing into a: naming it, or applying a's document.
	if code, c, detail := f.call(t, "GET", "/admin/v1/keys?workspace=a", f.b.adminKey, ""); code != http.StatusForbidden || c != "wrong_workspace" ||
		!strings.Contains(detail, `workspace "b" only`) {
		t.Errorf("b's key with ?workspace=a: %d %s %q, want 403 wrong_workspace naming b", code, c, detail)
	}
	_, err = b.Apply(ctx, "", adminapi.ApplyRequest{Documents: []adminapi.ApplyDocument{{Name: "a.yaml", Content: resources("a")}}}, false)
	if status(err) != http.StatusForbidden || !strings.Contains(err.Error(), `describes workspace "a"`) {
		t.Errorf("b applies a's document: %v, want 403 naming the document's workspace", err)
	}
}

func second[T any](_ T, err error) error { return err }

func mapIDs[T any](xs []T, id func(T) string) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

// TestAuthentication: every failure answers in the envelope with what to
// send instead.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	appKey := gatewaytest.NewKey(t, f.st, "a", store.ScopeApp, "")
	bogusOperator := auth.OperatorPrefix + strings.Repeat("x", 43)
	for _, c := range []struct {
		name, method, path, key string
		status                  int
		code, detail            string
	}{
		{"no key", "GET", "/admin/v1/channels", "", 401, "missing_api_key", "Authorization: Bearer"},
		{"app key", "GET", "/admin/v1/channels", appKey, 401, "unauthorized", "not a admin key"},
		{"unknown operator key", "GET", "/admin/v1/workspaces", bogusOperator, 401, "unauthorized", "admin.operator_keys"},
		{"operator key without a workspace", "GET", "/admin/v1/channels", f.operator, 400, "workspace_required", "?workspace="},
		{"admin key creating a workspace", "POST", "/admin/v1/workspaces", f.a.adminKey, 403, "operator_key_required", "keys create --operator"},
		{"unknown channel", "GET", "/admin/v1/channels/nope", f.a.adminKey, 404, "not_found", `no channel "nope"`},
		{"unknown workspace", "GET", "/admin/v1/channels?workspace=zz", f.operator, 404, "not_found", `no workspace "zz"`},
		{"bad delivery status", "GET", "/admin/v1/deliveries?status=lost", f.a.adminKey, 400, "invalid_field", "want one of queued"},
		{"bad cursor", "GET", "/admin/v1/deliveries?cursor=zzz", f.a.adminKey, 400, "invalid_field", "not one this API returned"},
		{"bad limit", "GET", "/admin/v1/bots?limit=501", f.a.adminKey, 400, "invalid_field", "from 1 to 500"},
		{"bad time", "GET", "/admin/v1/deliveries?since=yesterday", f.a.adminKey, 400, "invalid_field", "RFC 3339"},
		{"bad key scope", "POST", "/admin/v1/keys", f.a.adminKey, 400, "invalid_field", "want admin, app, track or channel"},
		{"operator creates a workspace", "POST", "/admin/v1/workspaces", f.operator, 201, "", ""},
		{"operator acts in a", "GET", "/admin/v1/channels?workspace=a", f.operator, 200, "", ""},
	} {
		body := ""
		if c.method == "POST" && strings.HasSuffix(c.path, "/workspaces") {
			body = `{"id":"c","name":"C"}`
		} else if c.method == "POST" {
			body = `{"scope":"root"}`
		}
		code, errCode, detail := f.call(t, c.method, c.path, c.key, body)
		if code != c.status || errCode != c.code || !strings.Contains(detail, c.detail) {
			t.Errorf("%s: %d %s %q, want %d %s containing %q", c.name, code, errCode, detail, c.status, c.code, c.detail)
		}
	}
	// The operator's workspace exists now, and its listing shows all.
	ws, err := f.client(f.operator, "").ListWorkspaces(context.Background(), adminapi.ListOptions{})
	if err != nil || len(ws.Data) != 3 {
		t.Fatalf("operator lists workspaces: %v %+v, want a, b and c", err, ws.Data)
	}
}

// TestRateLimit: a key over its rate gets 429 with Retry-After; another
// key is not held back by it.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	if code, _, _ := f.call(t, "GET", "/admin/v1/bots", f.a.adminKey, ""); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/admin/v1/bots", nil)
	req.Header.Set("Authorization", "Bearer "+f.a.adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second request at once: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _, _ := f.call(t, "GET", "/admin/v1/bots", f.b.adminKey, ""); code != 200 {
		t.Fatalf("another key: %d", code)
	}
}

// TestKeys: create, list, rotate and revoke through the API; the key the
// API creates works on it at once, a revoked one no more.
func TestKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ctx := context.Background()
	c := f.client(f.a.adminKey, "")
	nk, err := c.CreateKey(ctx, "", adminapi.KeyRequest{Scope: "admin", Name: "ops"})
	if err != nil || !strings.HasPrefix(nk.Key, "sbk_") || nk.Info.WorkspaceID != "a" {
		t.Fatalf("create admin key: %v %+v", err, nk)
	}
	ck, err := c.CreateKey(ctx, "", adminapi.KeyRequest{Scope: "channel", Channel: "a-hook"})
	if err != nil || ck.Info.ChannelID != "a-hook" {
		t.Fatalf("create channel key by channel name: %v %+v", err, ck)
	}
	if _, err := c.CreateKey(ctx, "", adminapi.KeyRequest{Scope: "channel", Channel: "b-hook"}); status(err) != 404 {
		t.Fatalf("channel key for b's channel: %v, want 404", err)
	}
	fresh := f.client(nk.Key, "")
	rot, err := fresh.RotateKey(ctx, "", nk.Info.ID, 0)
	if err != nil || rot.Old.ExpiresAt == nil || rot.New.Scope != "admin" {
		t.Fatalf("rotate: %v %+v", err, rot)
	}
	if _, err := fresh.ListKeys(ctx, "", adminapi.ListOptions{}); status(err) != 401 {
		t.Fatalf("the key rotated with no grace: %v, want 401", err)
	}
	rotated := f.client(rot.Key, "")
	if _, err := rotated.RotateKey(ctx, "", nk.Info.ID, time.Hour); status(err) != 409 || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("rotating an expired key: %v, want 409 saying it expired", err)
	}
	if _, err := rotated.RevokeKey(ctx, "", rot.New.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.ListKeys(ctx, "", adminapi.ListOptions{}); status(err) != 401 {
		t.Fatalf("revoked key: %v, want 401", err)
	}
	keys, err := c.ListKeys(ctx, "", adminapi.ListOptions{})
	if err != nil || len(keys.Data) != 4 {
		t.Fatalf("a's keys: %v, %d, want the fixture's, ops, its rotation and the channel key", err, len(keys.Data))
	}
}

// TestPagination: pages of one object follow each other without gaps or
// repeats, in both directions of deliveries.
func TestPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ctx := context.Background()
	c := f.client(f.a.adminKey, "")
	var got []int64
	q := adminapi.DeliveryQuery{ListOptions: adminapi.ListOptions{Limit: 2}}
	for pages := 0; ; pages++ {
		p, err := c.ListDeliveries(ctx, "", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range p.Data {
			got = append(got, d.ID)
		}
		if p.Next == "" {
			if pages != 1 {
				t.Errorf("3 deliveries in pages of 2 took %d pages", pages+1)
			}
			break
		}
		q.Cursor = p.Next
	}
	want := []int64{f.a.deliveries[2], f.a.deliveries[1], f.a.deliveries[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged deliveries = %v, want %v (newest first)", got, want)
	}
	// Following: after the oldest, oldest first, then nothing new.
	p, err := c.ListDeliveries(ctx, "", adminapi.DeliveryQuery{After: f.a.deliveries[0], ListOptions: adminapi.ListOptions{Limit: 1}})
	if err != nil || len(p.Data) != 1 || p.Data[0].ID != f.a.deliveries[1] || p.Next == "" {
		t.Fatalf("after the oldest: %v %+v", err, p)
	}
	p, err = c.ListDeliveries(ctx, "", adminapi.DeliveryQuery{After: f.a.deliveries[0], ListOptions: adminapi.ListOptions{Cursor: p.Next}})
	if err != nil || len(p.Data) != 1 || p.Data[0].ID != f.a.deliveries[2] || p.Next != "" {
		t.Fatalf("following page: %v %+v", err, p)
	}
	// Filters.
	failed, err := c.ListDeliveries(ctx, "", adminapi.DeliveryQuery{Status: "failed", Reason: "blocked", ChannelID: "a-hook", PersonID: "a-person"})
	if err != nil || len(failed.Data) != 1 || failed.Data[0].ID != f.a.deliveries[0] {
		t.Fatalf("failed deliveries: %v %+v", err, failed.Data)
	}
	none, err := c.ListDeliveries(ctx, "", adminapi.DeliveryQuery{Until: f.now.Add(-time.Hour)})
	if err != nil || len(none.Data) != 0 {
		t.Fatalf("deliveries before the fixture: %v %+v", err, none.Data)
	}
	// Keys page by id.
	gatewaytest.NewKey(t, f.st, "a", store.ScopeApp, "")
	first, err := c.ListKeys(ctx, "", adminapi.ListOptions{Limit: 1})
	if err != nil || len(first.Data) != 1 || first.Next == "" {
		t.Fatalf("first key page: %v %+v", err, first)
	}
	rest, err := c.ListKeys(ctx, "", adminapi.ListOptions{Cursor: first.Next})
	if err != nil || len(rest.Data) != 1 || rest.Data[0].ID == first.Data[0].ID || rest.Next != "" {
		t.Fatalf("second key page: %v %+v", err, rest)
	}
}

// TestObjects: gets carry what an operator looks for.
func TestObjects(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ctx := context.Background()
	c := f.client(f.operator, "a")
	conv, err := c.GetConversation(ctx, "", f.a.conversation)
	if err != nil || len(conv.Messages) != 2 {
		t.Fatalf("conversation: %v %+v", err, conv)
	}
	if d := conv.Messages[1].Delivery; d == nil || d.Status != "failed" || d.Reason != "blocked" {
		t.Fatalf("outbound message's delivery = %+v, want failed (blocked)", d)
	}
	if conv.Messages[0].Delivery != nil {
		t.Fatalf("inbound message has a delivery: %+v", conv.Messages[0].Delivery)
	}
	d, err := c.GetDelivery(ctx, "", f.a.deliveries[0])
	if err != nil || d.Content == nil || d.Content.Text != "reply 0" || d.Attempts != 1 {
		t.Fatalf("delivery: %v %+v", err, d)
	}
	p, err := c.GetPerson(ctx, "", "a-person")
	if err != nil || len(p.Identities) != 1 || p.Identities[0].Address != "a-addr" {
		t.Fatalf("person: %v %+v", err, p)
	}
	bt, err := c.GetBot(ctx, "", "a-bot")
	if err != nil || fmt.Sprint(bt.Flows) != "[main]" {
		t.Fatalf("bot by name: %v %+v", err, bt)
	}
	ch, err := c.GetChannel(ctx, "", "a-hook")
	if err != nil || ch.Health == nil || !ch.Health.Healthy || ch.Health.Node != pluginNode {
		t.Fatalf("channel health: %v %+v", err, ch.Health)
	}
	bch, err := f.client(f.b.adminKey, "").GetChannel(ctx, "", "b-hook")
	if err != nil || bch.Health.Healthy || bch.Health.Reason != "sink down" {
		t.Fatalf("unhealthy channel: %v %+v", err, bch.Health)
	}
	tr, err := c.GetTrigger(ctx, "", f.a.trigger)
	if err != nil || tr.BroadcastID != f.a.broadcast || tr.BroadcastName != "a-news" || tr.Status != "queued" {
		t.Fatalf("trigger: %v %+v", err, tr)
	}
	ts, err := c.ListTriggers(ctx, "", adminapi.TriggerQuery{})
	if err != nil || len(ts.Data) != 1 || ts.Data[0].ID != f.a.trigger {
		t.Fatalf("triggers: %v %+v", err, ts.Data)
	}
	st, err := c.Status(ctx, "")
	if err != nil || st.Node != pluginNode || len(st.Nodes) != 1 || !st.Nodes[0].Live || len(st.Plugins) != 1 {
		t.Fatalf("status: %v %+v", err, st)
	}
	// a's outbox: the first delivery failed; the two behind it (same
	// recipient, so never claimed with it) are queued.
	if len(st.Queue) != 1 || st.Queue[0].Status != "queued" || st.Queue[0].Count != 2 || st.Queue[0].ChannelID != "a-hook" {
		t.Fatalf("status queue = %+v, want 2 queued on a-hook", st.Queue)
	}
	dry, err := c.TriggerBroadcast(ctx, "", f.a.broadcast, json.RawMessage(`{"ids":["a-person"],"dry_run":true}`))
	if err != nil || dry.DryRun == nil || dry.DryRun.Matched != 1 || dry.ID != 0 {
		t.Fatalf("dry-run trigger: %v %+v", err, dry)
	}
}

// TestApply: the apply format with its validation, dry run and ${VAR}
// values from the request (never the gateway's environment).
func TestApply(t *testing.T) {
	t.Setenv("ADMIN_TEST_SECRET", "from-the-gateway-env")
	f := newFixture(t, 0)
	ctx := context.Background()
	c := f.client(f.a.adminKey, "")
	doc := `
workspace: {id: a, name: Workspace a}
bots:
  - name: a-bot
    default_flow: main
    flows:
      - id: main
        steps:
          - say: "Hello"
channels:
  - name: extra
    type: webhook
    bot: a-bot
    config: {url: "http://127.0.0.1:1/extra"}
    secrets: {signing_secret: "${ADMIN_TEST_SECRET}"}
`
	req := adminapi.ApplyRequest{Documents: []adminapi.ApplyDocument{{Name: "extra.yaml", Content: doc}}}

	_, err := c.Apply(ctx, "", req, false)
	if status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "ADMIN_TEST_SECRET is not set") {
		t.Fatalf("apply without the variable: %v, want 422: the gateway's own environment is not read", err)
	}
	req.Env = map[string]string{"ADMIN_TEST_SECRET": "s3cret"}
	res, err := c.Apply(ctx, "", req, true)
	if err != nil || !res.DryRun || !containsLine(res.Changes, "channel extra") {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	if _, err := c.GetChannel(ctx, "", "extra"); status(err) != 404 {
		t.Fatalf("after the dry run the channel exists: %v", err)
	}
	if res, err = c.Apply(ctx, "", req, false); err != nil || res.DryRun {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if _, err := c.GetChannel(ctx, "", "extra"); err != nil {
		t.Fatalf("after the apply: %v", err)
	}
	bad := adminapi.ApplyRequest{Documents: []adminapi.ApplyDocument{{Name: "bad.yaml", Content: "workspace: {id: a}\nchannels:\n  - name: x\n    type: webhook\n    bot: nobody\n    colour: red\n"}}}
	if _, err := c.Apply(ctx, "", bad, false); status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("apply of an unknown field: %v, want 422 naming it", err)
	}
}

func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// refuseURL is a plugin that refuses every channel's url.
type refuseURL struct{}

func (refuseURL) ValidateChannel(context.Context, store.Channel, map[string]string) error {
	return &sdk.ConfigError{Fields: map[string]string{"url": "must be https"}}
}

// TestApplyChecksChannelsWithPlugins: with the node's plugins as the
// validator, a configuration the plugin refuses is a 422 naming the field,
// and nothing is written.
func TestApplyChecksChannelsWithPlugins(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	svc := adminapi.NewService(adminapi.Options{Store: st, Bots: bot.CompileNode, Channels: refuseURL{}})
	_, err := svc.Apply(context.Background(), "a", adminapi.ApplyRequest{Documents: []adminapi.ApplyDocument{{Name: "a.yaml", Content: resources("a")}}}, false)
	var probs *adminapi.ApplyProblems
	if !errors.As(err, &probs) || probs.Errors[0].Status != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "url: must be https") {
		t.Fatalf("apply with a refused channel: %v, want a 422 naming url", err)
	}
	if _, err := st.GetWorkspace(context.Background(), "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused apply wrote the workspace: %v", err)
	}
}
