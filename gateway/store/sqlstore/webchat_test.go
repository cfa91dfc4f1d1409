package sqlstore_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

func TestWebchatSQLite(t *testing.T) {
	t.Parallel()
	testWebchat(t, sqlstore.OpenTest(t))
}

func TestWebchatPostgres(t *testing.T) {
	t.Parallel()
	testWebchat(t, sqlstore.OpenTestPostgres(t))
}

func testWebchat(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.UpsertWorkspace(ctx, store.Workspace{ID: "ws", Name: "ws"}))
	b := store.Bot{WorkspaceID: "ws", Name: "bot", Definition: json.RawMessage(`{"flows":[]}`)}
	must(s.UpsertBot(ctx, &b))
	ch := store.Channel{WorkspaceID: "ws", BotID: b.ID, Name: "web", Type: "assistant", Enabled: true}
	must(s.UpsertChannel(ctx, &ch))

	// Four deliveries to ann, one to bob.
	var ds []store.Delivery
	for i, user := range []string{"ann", "ann", "ann", "ann", "bob"} {
		ds = append(ds, store.Delivery{WorkspaceID: "ws", ChannelID: ch.ID, Recipient: user,
			Content: message.Text(fmt.Sprint(i)), IdempotencyKey: fmt.Sprintf("k%d", i)})
	}
	_, err := s.EnqueueDeliveries(ctx, ds)
	must(err)
	claimed, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Limit: 10, Now: at})
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
	must(s.CompleteDeliveries(ctx, []store.DeliveryResult{{ID: claimed[0].ID, Status: store.DeliveryRetrying,
		Reason: "x", NextAttemptAt: at.Add(time.Hour)}}))
	for key, reason := range map[string]string{"k0": "", "k4": store.ReasonPendingConnection} {
		d := delivery(t, s, ds, key)
		if d.Status != store.DeliverySent || d.Reason != reason || d.ProviderID != "seq:1" || d.SentAt == nil {
			t.Fatalf("delivery %s = %s/%q provider %q, want sent/%q", key, d.Status, d.Reason, d.ProviderID, reason)
		}
	}
	// The next of ann's deliveries is claimable now.
	claimed, err = s.ClaimDeliveries(ctx, store.ClaimOptions{Limit: 10, Now: at})
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
	if _, err := s.ClaimDeliveries(ctx, store.ClaimOptions{Limit: users}); err != nil {
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
