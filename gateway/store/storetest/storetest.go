// Package storetest is the conformance suite every store.Store
// implementation must pass. An implementation's tests call Run with a
// function that opens a fresh, empty, migrated store; the suite then checks
// every method's contract, including the errors (store.ErrNotFound,
// store.ErrConflict) callers branch on.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Run runs the suite. open is called once per top-level case, which run in
// parallel, so each call must return an independent store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Workspaces", testWorkspaces},
		{"Bots", testBots},
		{"Channels", testChannels},
		{"ChannelSecrets", testChannelSecrets},
		{"APIKeys", testAPIKeys},
		{"APIKeyLifecycle", testAPIKeyLifecycle},
		{"People", testPeople},
		{"Identities", testIdentities},
		{"TenantIsolation", testTenantIsolation},
		{"Conversations", testConversations},
		{"ConversationExpiryAndListing", testConversationListing},
		{"Messages", testMessages},
		{"WithTx", testWithTx},
		{"EnqueueDeliveries", testEnqueueDeliveries},
		{"ClaimOrdering", testClaimOrdering},
		{"ClaimDueOrder", testClaimDueOrder},
		{"ClaimConcurrent", testClaimConcurrent},
		{"EnqueueClaimed", testEnqueueClaimed},
		{"NodeRescue", testNodeRescue},
		{"NodeRestart", testNodeRestart},
		{"JobFencing", testJobFencing},
		{"ReleaseOrphans", testReleaseOrphans},
		{"Stats", testStats},
		{"PeopleByPhone", testPeopleByPhone},
		{"CompleteDeliveries", testCompleteDeliveries},
		{"Receipts", testReceipts},
		{"ListDeliveries", testListDeliveries},
		{"CountPendingDeliveries", testCountPendingDeliveries},
		{"ListNodes", testListNodes},
		{"Jobs", testJobs},
		{"JobKeys", testJobKeys},
		{"InboundDedupe", testInboundDedupe},
		{"FlowTriggers", testFlowTriggers},
		{"Retention", testRetention},
		{"CleanerLease", testCleanerLease},
		{"ErasePerson", testErasePerson},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open(t))
		})
	}
}

// t0 is the suite's clock origin, at microsecond precision (what stores
// keep).
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %#v, want %#v", what, got, want)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// wantJSON compares JSON documents by value: stores may reformat them.
func wantJSON(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %q", what, err, got)
	}
	must(t, json.Unmarshal(want, &w))
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

// tenant is a workspace with one bot and one channel.
type tenant struct {
	ws, bot, channel string
}

// seed creates workspace ws with a bot "bot" and a channel "web".
func seed(t *testing.T, s store.Store, ws string) tenant {
	t.Helper()
	must(t, s.UpsertWorkspace(ctx(t), store.Workspace{ID: ws, Name: "Workspace " + ws}))
	b := store.Bot{WorkspaceID: ws, Name: "bot", Definition: json.RawMessage(`{"flows":[]}`)}
	must(t, s.UpsertBot(ctx(t), &b))
	c := store.Channel{WorkspaceID: ws, BotID: b.ID, Name: "web", Type: "webhook", Enabled: true}
	must(t, s.UpsertChannel(ctx(t), &c))
	return tenant{ws: ws, bot: b.ID, channel: c.ID}
}
