package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// onBothEngines runs test on a fresh SQLite store and, when
// $SWITCHBOARD_TEST_POSTGRES_URL is set, a fresh PostgreSQL one.
func onBothEngines(t *testing.T, test func(t *testing.T, s *sqlstore.Store)) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); test(t, sqlstore.OpenTest(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); test(t, sqlstore.OpenTestPostgres(t)) })
}

func TestWebchat(t *testing.T) { onBothEngines(t, testWebchat) }

func testWebchat(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ch := webchatChannel(t, s)

	// Four deliveries to ann, one to bob.
	var ds []store.Delivery
	for i, user := range []string{"ann", "ann", "ann", "ann", "bob"} {
		ds = append(ds, store.Delivery{WorkspaceID: "ws", ChannelID: ch.ID, Recipient: user,
			Content: message.Text(fmt.Sprint(i)), IdempotencyKey: fmt.Sprintf("k%d", i)})
	}
	_, err := s.EnqueueDeliveries(ctx, ds)
	must(err)
	claimed, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Node: "n", Limit: 10, Now: at})
	must(err)
	if len(claimed) != 2 { // the oldest per recipient
		t.Fatalf("claimed %d deliveries, want 2", len(claimed))
	}

	msg := func(user string, seq int64, key string) store.WebchatMessage {
		return store.WebchatMessage{ChannelID: ch.ID, UserID: user, Seq: seq, IdempotencyKey: key, Frame: []byte(key), CreatedAt: at}
	}
	seqs, err := s.WebchatSeqs(ctx, ch.ID, []string{"ann", "bob"})
	must(err)
	if len(seqs) != 0 {
		t.Fatalf("seqs before any message = %v", seqs)
	}
	ok, err := s.AppendWebchat(ctx, []store.WebchatAppend{
		{WebchatMessage: msg("ann", 1, "k0")},
		{WebchatMessage: msg("bob", 1, "k4"), Offline: true},
	}, at)
	must(err)
	if !reflect.DeepEqual(ok, []bool{true, true}) {
		t.Fatalf("stored = %v", ok)
	}
	// Handed over: sent, no longer pending, and the pipeline's own
	// completion changes nothing.
	must(s.CompleteDeliveries(ctx, "n", []store.DeliveryResult{{ID: claimed[0].ID, Status: store.DeliveryRetrying,
		Reason: "x", NextAttemptAt: at.Add(time.Hour)}}))
	for key, reason := range map[string]string{"k0": store.ReasonAwaitingAck, "k4": store.ReasonPendingConnection} {
		d := delivery(t, s, ds, key)
		if d.Status != store.DeliverySent || d.Reason != reason || d.ProviderID != "seq:1" || d.SentAt == nil {
			t.Fatalf("delivery %s = %s/%q provider %q, want sent/%q", key, d.Status, d.Reason, d.ProviderID, reason)
		}
	}
	// The next of ann's deliveries is claimable now.
	claimed, err = s.ClaimDeliveries(ctx, store.ClaimOptions{Node: "n", Limit: 10, Now: at})
	must(err)
	if len(claimed) != 1 || claimed[0].IdempotencyKey != "k1" {
		t.Fatalf("claimed %+v, want k1", claimed)
	}

	// A taken sequence number or key is skipped; others in the batch go in.
	ok, err = s.AppendWebchat(ctx, []store.WebchatAppend{
		{WebchatMessage: msg("ann", 1, "k1")}, // seq taken
		{WebchatMessage: msg("ann", 2, "k1")}, // must not overtake the skipped one
	}, at)
	must(err)
	if !reflect.DeepEqual(ok, []bool{false, false}) {
		t.Fatalf("stored = %v", ok)
	}
	ok, err = s.AppendWebchat(ctx, []store.WebchatAppend{
		{WebchatMessage: msg("bob", 2, "k0")}, // key taken
		{WebchatMessage: msg("ann", 2, "k1")},
		{WebchatMessage: msg("ann", 5, "k2")}, // gaps are allowed
	}, at)
	must(err)
	if !reflect.DeepEqual(ok, []bool{false, true, true}) {
		t.Fatalf("stored = %v", ok)
	}
	seqs, err = s.WebchatSeqs(ctx, ch.ID, []string{"ann", "bob", "cyd"})
	must(err)
	if !reflect.DeepEqual(seqs, map[string]int64{"ann": 5, "bob": 1}) {
		t.Fatalf("seqs = %v", seqs)
	}
	got, err := s.WebchatByKeys(ctx, []string{"k1", "k4", "nope"})
	must(err)
	if len(got) != 2 {
		t.Fatalf("by keys = %+v", got)
	}
	list, err := s.ListWebchat(ctx, ch.ID, "ann", 1, 10)
	must(err)
	if len(list) != 2 || list[0].Seq != 2 || list[1].Seq != 5 || string(list[1].Frame) != "k2" || !list[1].CreatedAt.Equal(at) {
		t.Fatalf("list after 1 = %+v", list)
	}

	// ann's connection closes: her unacknowledged deliveries wait.
	must(s.MarkWebchatWaiting(ctx, ch.ID, "ann", at))
	if d := delivery(t, s, ds, "k1"); d.Reason != store.ReasonPendingConnection {
		t.Fatalf("k1 reason %q after the connection closed", d.Reason)
	}

	// Acks are cumulative, clamp to the last seq given out, and keep the
	// newest acknowledged messages for history.
	must(s.AckWebchat(ctx, []store.WebchatAck{{ChannelID: ch.ID, UserID: "ann", Seq: 2}, {ChannelID: ch.ID, UserID: "cyd", Seq: 3}}, 1, at))
	for key, want := range map[string]store.DeliveryStatus{"k0": store.DeliveryDelivered, "k1": store.DeliveryDelivered, "k2": store.DeliverySent} {
		if d := delivery(t, s, ds, key); d.Status != want || (want == store.DeliveryDelivered && (d.DeliveredAt == nil || d.Reason != "")) {
			t.Fatalf("delivery %s = %s/%q, want %s", key, d.Status, d.Reason, want)
		}
	}
	list, err = s.ListWebchat(ctx, ch.ID, "ann", 0, 10)
	must(err)
	if len(list) != 2 || list[0].Seq != 2 { // seq 1 deleted, 2 kept as history
		t.Fatalf("after ack 2 keep 1: %+v", list)
	}
	must(s.AckWebchat(ctx, []store.WebchatAck{{ChannelID: ch.ID, UserID: "ann", Seq: 99}}, 0, at))
	if d := delivery(t, s, ds, "k2"); d.Status != store.DeliveryDelivered {
		t.Fatalf("k2 = %s after an ack beyond the last seq", d.Status)
	}
	list, err = s.ListWebchat(ctx, ch.ID, "ann", 0, 10)
	must(err)
	if len(list) != 0 {
		t.Fatalf("after ack 99 keep 0: %+v", list)
	}
	// Numbers are never reused once messages are gone.
	seqs, err = s.WebchatSeqs(ctx, ch.ID, []string{"ann"})
	must(err)
	if seqs["ann"] != 5 {
		t.Fatalf("ann's last seq = %d after deletion, want 5", seqs["ann"])
	}
	// A repeated ack changes nothing; a delivered one is never marked
	// waiting.
	must(s.AckWebchat(ctx, []store.WebchatAck{{ChannelID: ch.ID, UserID: "ann", Seq: 5}}, 0, at))
	must(s.MarkWebchatWaiting(ctx, ch.ID, "ann", at))
	if d := delivery(t, s, ds, "k2"); d.Status != store.DeliveryDelivered || d.Reason != "" {
		t.Fatalf("k2 = %s/%q", d.Status, d.Reason)
	}
}

// TestWebchatAcksInManyChunks acknowledges more users at once than one
// statement takes.
func TestWebchatAcksInManyChunks(t *testing.T) {
	t.Parallel()
	s := sqlstore.OpenTest(t)
	ctx := t.Context()
	ch := webchatChannel(t, s)
	const users = 1234
	ds := make([]store.Delivery, users)
	msgs := make([]store.WebchatAppend, users)
	acks := make([]store.WebchatAck, users)
	for i := range users {
		u, key := fmt.Sprintf("u%d", i), fmt.Sprintf("k%d", i)
		ds[i] = store.Delivery{WorkspaceID: "ws", ChannelID: ch.ID, Recipient: u, Content: message.Text("x"), IdempotencyKey: key}
		msgs[i] = store.WebchatAppend{WebchatMessage: store.WebchatMessage{ChannelID: ch.ID, UserID: u, Seq: 1, IdempotencyKey: key, Frame: []byte("x")}}
		acks[i] = store.WebchatAck{ChannelID: ch.ID, UserID: u, Seq: 1}
	}
	if _, err := s.EnqueueDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Node: "n", Limit: users}); err != nil {
		t.Fatal(err)
	}
	stored, err := s.AppendWebchat(ctx, msgs, time.Time{})
	if err != nil || slices.Contains(stored, false) {
		t.Fatalf("append: %v, stored %v", err, stored)
	}
	if err := s.AckWebchat(ctx, acks, 10, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if got := delivery(t, s, ds, d.IdempotencyKey); got.Status != store.DeliveryDelivered {
			t.Fatalf("delivery %s is %s after its ack", d.IdempotencyKey, got.Status)
		}
	}
}

func delivery(t *testing.T, s *sqlstore.Store, ds []store.Delivery, key string) store.Delivery {
	t.Helper()
	for _, d := range ds {
		if d.IdempotencyKey == key {
			got, err := s.GetDelivery(t.Context(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
	}
	t.Fatalf("no delivery %s", key)
	return store.Delivery{}
}

// webchatChannel makes a workspace, bot and web chat channel.
func webchatChannel(t *testing.T, s *sqlstore.Store) store.Channel {
	t.Helper()
	ctx := t.Context()
	if err := s.UpsertWorkspace(ctx, store.Workspace{ID: "ws", Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	b := store.Bot{WorkspaceID: "ws", Name: "bot", Definition: json.RawMessage(`{"flows":[]}`)}
	if err := s.UpsertBot(ctx, &b); err != nil {
		t.Fatal(err)
	}
	ch := store.Channel{WorkspaceID: "ws", BotID: b.ID, Name: "web", Type: "assistant", Enabled: true}
	if err := s.UpsertChannel(ctx, &ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestWebchatExpiry(t *testing.T) { onBothEngines(t, testWebchatExpiry) }

func testWebchatExpiry(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	ch := webchatChannel(t, s)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	// ann: two old messages, the first acknowledged; bob: one old and
	// offline; cyd: one recent.
	type m struct {
		user, key string
		seq       int64
		created   time.Time
	}
	ms := []m{{"ann", "a1", 1, t0}, {"ann", "a2", 2, t0.Add(time.Minute)}, {"bob", "b1", 1, t0.Add(2 * time.Minute)},
		{"cyd", "c1", 1, t0.Add(time.Hour)}}
	var ds []store.Delivery
	var appends []store.WebchatAppend
	for _, x := range ms {
		ds = append(ds, store.Delivery{WorkspaceID: "ws", ChannelID: ch.ID, Recipient: x.user,
			Content: message.Text(x.key), IdempotencyKey: x.key})
		appends = append(appends, store.WebchatAppend{WebchatMessage: store.WebchatMessage{ChannelID: ch.ID, UserID: x.user,
			Seq: x.seq, IdempotencyKey: x.key, Frame: []byte(x.key), CreatedAt: x.created}, Offline: x.user == "bob"})
	}
	if _, err := s.EnqueueDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	for range 2 { // ann's two go one after the other
		if _, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Node: "n", Limit: 10, Now: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendWebchat(ctx, appends, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AckWebchat(ctx, []store.WebchatAck{{ChannelID: ch.ID, UserID: "ann", Seq: 1}}, 10, t0); err != nil {
		t.Fatal(err)
	}

	// The three old ones go, two per call, oldest first.
	at := t0.Add(8 * 24 * time.Hour)
	before := t0.Add(30 * time.Minute)
	for i, want := range []int{2, 1, 0} {
		n, err := s.ExpireWebchat(ctx, before, 2, at)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("call %d expired %d, want %d", i+1, n, want)
		}
	}
	for key, want := range map[string]store.DeliveryStatus{"a1": store.DeliveryDelivered, "a2": store.DeliveryFailed,
		"b1": store.DeliveryFailed, "c1": store.DeliverySent} {
		d := delivery(t, s, ds, key)
		wantReason := map[store.DeliveryStatus]string{store.DeliveryFailed: store.ReasonExpired,
			store.DeliverySent: store.ReasonAwaitingAck}[want]
		if d.Status != want || d.Reason != wantReason || (want == store.DeliveryFailed && !d.UpdatedAt.Equal(at)) {
			t.Fatalf("delivery %s = %s/%q at %s, want %s/%q", key, d.Status, d.Reason, d.UpdatedAt, want, wantReason)
		}
	}
	for user, want := range map[string]int{"ann": 0, "bob": 0, "cyd": 1} {
		list, err := s.ListWebchat(ctx, ch.ID, user, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != want {
			t.Fatalf("%s has %d messages left, want %d", user, len(list), want)
		}
	}
	// Sequence numbers go on after the expired ones.
	seqs, err := s.WebchatSeqs(ctx, ch.ID, []string{"ann", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if seqs["ann"] != 2 || seqs["bob"] != 1 {
		t.Fatalf("last seqs after expiry = %v", seqs)
	}
}

func TestWebchatNodes(t *testing.T) { onBothEngines(t, testWebchatNodes) }

func testWebchatNodes(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ttl := 30 * time.Second
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	renew := func(node string, until time.Time, wantKnown bool) {
		t.Helper()
		known, err := s.RenewWebchatNode(ctx, node, until)
		must(err)
		if known != wantKnown {
			t.Fatalf("renew %s: known %v, want %v", node, known, wantKnown)
		}
	}
	online := func(except string, now time.Time, want ...string) {
		t.Helper()
		got, err := s.WebchatOnline(ctx, "web", []string{"ann", "bob", "cyd"}, except, now)
		must(err)
		wantSet := map[string]bool{}
		for _, u := range want {
			wantSet[u] = true
		}
		if !reflect.DeepEqual(got, wantSet) {
			t.Fatalf("online except %s at %s = %v, want %v", except, now.Sub(t0), got, wantSet)
		}
	}
	renew("a", t0.Add(ttl), false)
	renew("a", t0.Add(ttl), true)
	renew("b", t0.Add(ttl), false)
	must(s.SetWebchatPresence(ctx, "a", []store.WebchatPresence{{ChannelID: "web", UserID: "ann", Online: true},
		{ChannelID: "web", UserID: "bob", Online: true}, {ChannelID: "other", UserID: "cyd", Online: true}}))
	must(s.SetWebchatPresence(ctx, "b", []store.WebchatPresence{{ChannelID: "web", UserID: "bob", Online: true}}))
	must(s.SetWebchatPresence(ctx, "a", []store.WebchatPresence{{ChannelID: "web", UserID: "ann", Online: true}})) // again: no error
	online("b", t0, "ann", "bob")
	online("a", t0, "bob") // b's
	must(s.SetWebchatPresence(ctx, "a", []store.WebchatPresence{{ChannelID: "web", UserID: "bob", Online: false}}))
	online("b", t0, "ann")

	// a stops renewing: after its lease, its rows count no more, while b
	// renews and stays.
	renew("b", t0.Add(2*ttl), true)
	online("b", t0.Add(ttl-time.Microsecond), "ann")
	online("b", t0.Add(ttl))
	online("a", t0.Add(ttl), "bob")
	gone, err := s.ForgetWebchatNodes(ctx, t0.Add(ttl+time.Microsecond), t0.Add(ttl))
	must(err)
	if !reflect.DeepEqual(gone.Nodes, []string{"a"}) {
		t.Fatalf("forgot nodes %v, want [a]", gone.Nodes)
	}
	// Back, a is unknown and its presence gone until filed again.
	renew("a", t0.Add(3*ttl), false)
	online("b", t0.Add(ttl))
	must(s.SetWebchatPresence(ctx, "a", []store.WebchatPresence{{ChannelID: "web", UserID: "cyd", Online: true}}))
	online("b", t0.Add(ttl), "cyd")
}

func TestWebchatForgetNodeReevaluates(t *testing.T) {
	onBothEngines(t, testWebchatForgetNodeReevaluates)
}

// testWebchatForgetNodeReevaluates: when a dead node is forgotten, the
// unacknowledged messages of its users connected nowhere else wait for a
// connection, those of users connected to a live node are returned to be
// woken there, and acknowledged ones stay delivered.
func testWebchatForgetNodeReevaluates(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ch := webchatChannel(t, s)
	var ds []store.Delivery
	for i, user := range []string{"ann", "bob", "cyd"} {
		ds = append(ds, store.Delivery{WorkspaceID: "ws", ChannelID: ch.ID, Recipient: user,
			Content: message.Text(fmt.Sprint(i)), IdempotencyKey: "k-" + user})
	}
	_, err := s.EnqueueDeliveries(ctx, ds)
	must(err)
	var msgs []store.WebchatAppend
	for _, d := range ds {
		msgs = append(msgs, store.WebchatAppend{WebchatMessage: store.WebchatMessage{ChannelID: ch.ID, UserID: d.Recipient,
			Seq: 1, IdempotencyKey: d.IdempotencyKey, Frame: []byte("f"), CreatedAt: t0}})
	}
	_, err = s.AppendWebchat(ctx, msgs, t0)
	must(err)
	must(s.AckWebchat(ctx, []store.WebchatAck{{ChannelID: ch.ID, UserID: "cyd", Seq: 1}}, 10, t0))
	// Every user is on node a, which dies; bob also on node b, which lives.
	_, err = s.RenewWebchatNode(ctx, "a", t0.Add(time.Second))
	must(err)
	_, err = s.RenewWebchatNode(ctx, "b", t0.Add(time.Minute))
	must(err)
	var onA []store.WebchatPresence
	for _, u := range []string{"ann", "bob", "cyd"} {
		onA = append(onA, store.WebchatPresence{ChannelID: ch.ID, UserID: u, Online: true})
	}
	must(s.SetWebchatPresence(ctx, "a", onA))
	must(s.SetWebchatPresence(ctx, "b", []store.WebchatPresence{{ChannelID: ch.ID, UserID: "bob", Online: true}}))

	gone, err := s.ForgetWebchatNodes(ctx, t0.Add(time.Second-time.Microsecond), t0)
	must(err)
	if len(gone.Nodes) != 0 {
		t.Fatalf("forgot %v before a's lease ran out", gone.Nodes)
	}
	at := t0.Add(2 * time.Second)
	gone, err = s.ForgetWebchatNodes(ctx, at, at)
	must(err)
	want := store.WebchatForgotten{Nodes: []string{"a"}, Waiting: 1,
		Elsewhere: []store.WebchatWake{{ChannelID: ch.ID, UserID: "bob", Seq: 1}}}
	if !reflect.DeepEqual(gone, want) {
		t.Fatalf("forget a = %+v, want %+v", gone, want)
	}
	for user, want := range map[string]string{"ann": "sent/" + store.ReasonPendingConnection,
		"bob": "sent/" + store.ReasonAwaitingAck, "cyd": "delivered/"} {
		if d := delivery(t, s, ds, "k-"+user); string(d.Status)+"/"+d.Reason != want {
			t.Errorf("%s's delivery = %s/%q, want %s", user, d.Status, d.Reason, want)
		}
	}
}

func TestWebchatWakeupsOnlyOnPostgres(t *testing.T) {
	t.Parallel()
	if _, ok := sqlstore.OpenTest(t).WebchatWakeups("a", slog.New(slog.DiscardHandler)); ok {
		t.Fatal("SQLite has web chat wake-ups")
	}
}

// TestWebchatWakeupsPostgres: wake-ups of another node arrive, in order,
// split over several notifications when long; a node's own are not
// delivered to it; a listener whose connection is killed listens again and
// resyncs.
func TestWebchatWakeupsPostgres(t *testing.T) {
	t.Parallel()
	s := sqlstore.OpenTestPostgres(t)
	log := slog.New(slog.DiscardHandler)
	a, _ := s.WebchatWakeups("a-"+t.Name(), log)
	b, ok := s.WebchatWakeups("b-"+t.Name(), log)
	if !ok {
		t.Fatal("PostgreSQL has no web chat wake-ups")
	}
	resyncs := make(chan struct{}, 10)
	got := make(chan []store.WebchatWake, 100)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- b.Listen(ctx, func(context.Context) { resyncs <- struct{}{} }, func(ws []store.WebchatWake) { got <- ws })
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	waitResync := func() {
		t.Helper()
		select {
		case <-resyncs:
		case <-time.After(10 * time.Second):
			t.Fatal("the listener did not start listening")
		}
	}
	waitResync()

	var long []store.WebchatWake
	for i := range 300 {
		long = append(long, store.WebchatWake{ChannelID: "web", UserID: fmt.Sprintf("user-%03d-%s", i, strings.Repeat("x", 40)), Seq: int64(i + 1)})
	}
	if err := b.Wake(t.Context(), []store.WebchatWake{{ChannelID: "web", UserID: "self", Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Wake(t.Context(), long); err != nil {
		t.Fatal(err)
	}
	receive := func(n int) []store.WebchatWake {
		t.Helper()
		var all []store.WebchatWake
		batches := 0
		for len(all) < n {
			select {
			case ws := <-got:
				all = append(all, ws...)
				batches++
			case <-time.After(10 * time.Second):
				t.Fatalf("received %d of %d wake-ups", len(all), n)
			}
		}
		if n == len(long) && batches < 2 {
			t.Fatalf("%d wake-ups of %d bytes came in %d notification", n, len(long[0].UserID), batches)
		}
		return all
	}
	// b's own wake-up, sent first, would come first.
	if all := receive(len(long)); !reflect.DeepEqual(all, long) {
		t.Fatalf("received %d wake-ups, not those sent, in order (first %+v)", len(all), all[0])
	}

	admin, err := sql.Open("pgx", os.Getenv(sqlstore.PostgresTestEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var killed int
	if err := admin.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, sqlstore.ListenerApplicationName("b-"+t.Name())).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener connections, want 1", killed)
	}
	waitResync()
	one := []store.WebchatWake{{ChannelID: "web", UserID: "ann", Seq: 7}}
	if err := a.Wake(t.Context(), one); err != nil {
		t.Fatal(err)
	}
	if all := receive(1); !reflect.DeepEqual(all, one) {
		t.Fatalf("after reconnecting got %+v", all)
	}
}
