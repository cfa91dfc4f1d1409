package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

func testFlowTriggers(t *testing.T, st store.Store) {
	ctx := context.Background()
	ten := seed(t, st, "ws-ft")
	chA := store.Channel{ID: ten.channel, BotID: ten.bot}
	chB := store.Channel{WorkspaceID: ten.ws, BotID: ten.bot, Name: "other", Type: "webhook", Enabled: true}
	must(t, st.UpsertChannel(ctx, &chB))
	ws := ten.ws
	at := t0

	ft := store.FlowTrigger{RequestID: "req-1", WorkspaceID: ws, BotID: chA.BotID, ChannelID: chA.ID, UserID: "alice",
		FlowID: "reminder", StepID: "start", CloseFlows: true, Metadata: json.RawMessage(`{"k":"v"}`),
		IdempotencyKey: "key-1", BodyHash: []byte{1, 2, 3}, CreatedAt: at}
	if err := st.CreateFlowTrigger(ctx, ft); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetFlowTrigger(ctx, chA.ID, "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.FlowTriggerQueued || got.UserID != "alice" || !got.CloseFlows || got.StepID != "start" ||
		string(got.BodyHash) != "\x01\x02\x03" || !got.CreatedAt.Equal(at) || got.ProcessedAt != nil {
		t.Fatalf("stored = %+v", got)
	}
	var meta map[string]string
	if err := json.Unmarshal(got.Metadata, &meta); err != nil || meta["k"] != "v" {
		t.Fatalf("metadata = %s (%v)", got.Metadata, err)
	}

	// Tenancy: another channel never sees the request.
	if _, err := st.GetFlowTrigger(ctx, chB.ID, "req-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another channel read the request: %v", err)
	}
	// Idempotency keys are unique per channel, free across channels.
	dup := ft
	dup.RequestID = "req-2"
	if err := st.CreateFlowTrigger(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same key on the same channel: %v, want ErrConflict", err)
	}
	dup.ChannelID, dup.BotID = chB.ID, chB.BotID
	if err := st.CreateFlowTrigger(ctx, dup); err != nil {
		t.Fatalf("same key on another channel: %v", err)
	}
	byKey, err := st.GetFlowTriggerByKey(ctx, chA.ID, "key-1")
	if err != nil || byKey.RequestID != "req-1" {
		t.Fatalf("by key = %+v, %v", byKey, err)
	}
	noKey := ft
	noKey.RequestID, noKey.IdempotencyKey = "req-3", ""
	noKey2 := noKey
	noKey2.RequestID = "req-4"
	if err := st.CreateFlowTrigger(ctx, noKey); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateFlowTrigger(ctx, noKey2); err != nil {
		t.Fatalf("two requests without a key: %v", err)
	}
	if _, err := st.GetFlowTriggerByKey(ctx, chA.ID, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("empty key lookup: %v", err)
	}

	done := at.Add(time.Second)
	if err := st.FinishFlowTrigger(ctx, "req-1", store.FlowTriggerProcessed, "", "", "conv-9", done); err != nil {
		t.Fatal(err)
	}
	got, _ = st.GetFlowTrigger(ctx, chA.ID, "req-1")
	if got.Status != store.FlowTriggerProcessed || got.ConversationID != "conv-9" || got.ProcessedAt == nil || !got.ProcessedAt.Equal(done) {
		t.Fatalf("finished = %+v", got)
	}
	if err := st.FinishFlowTrigger(ctx, "nope", store.FlowTriggerFailed, "flow_error", "boom", "", done); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finish unknown: %v", err)
	}
	if err := st.FinishFlowTrigger(ctx, "req-3", store.FlowTriggerQueued, "", "", "", done); err == nil {
		t.Fatal("finishing as queued was accepted")
	}
}
