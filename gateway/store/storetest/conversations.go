package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

func testConversations(t *testing.T, s store.Store) {
	a := seed(t, s, "a")
	_, err := s.GetOpenConversation(ctx(t), a.bot, a.channel, "u1")
	wantErr(t, err, store.ErrNotFound)

	c := store.Conversation{WorkspaceID: "a", BotID: a.bot, ChannelID: a.channel, UserID: "u1", FlowID: "main",
		StepID: "start", Memory: map[string]any{"name": "Ann"}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, s.CreateConversation(ctx(t), &c))
	if c.ID == "" || c.Status != store.ConversationOpen {
		t.Fatalf("CreateConversation did not fill in id and status: %+v", c)
	}

	// One open conversation per (bot, channel, user).
	dup := store.Conversation{WorkspaceID: "a", BotID: a.bot, ChannelID: a.channel, UserID: "u1"}
	wantErr(t, s.CreateConversation(ctx(t), &dup), store.ErrConflict)
	other := store.Conversation{WorkspaceID: "a", BotID: a.bot, ChannelID: a.channel, UserID: "u2"}
	must(t, s.CreateConversation(ctx(t), &other))

	open, err := s.GetOpenConversation(ctx(t), a.bot, a.channel, "u1")
	must(t, err)
	wantEqual(t, "open id", open.ID, c.ID)
	wantEqual(t, "memory", open.Memory, map[string]any{"name": "Ann"})
	wantTime(t, "created", open.CreatedAt, t0)
	wantTime(t, "last interaction defaults to creation", open.LastInteractionAt, t0)
	wantTime(t, "expires", open.ExpiresAt, t0.Add(time.Hour))

	open.StepID, open.PersonID, open.ReplyTo = "ask_email", "p1", "thread-1"
	open.Memory = map[string]any{"name": "Ann", "email": "ann@example.com", "n": 2.0}
	open.LastInteractionAt = t0.Add(time.Minute)
	must(t, s.UpdateConversation(ctx(t), open))
	got, err := s.GetConversation(ctx(t), c.ID)
	must(t, err)
	wantEqual(t, "step", got.StepID, "ask_email")
	wantEqual(t, "person", got.PersonID, "p1")
	wantEqual(t, "reply to", got.ReplyTo, "thread-1")
	wantEqual(t, "memory", got.Memory, open.Memory)
	wantTime(t, "last interaction", got.LastInteractionAt, t0.Add(time.Minute))

	must(t, s.CloseConversation(ctx(t), c.ID, t0.Add(2*time.Minute)))
	must(t, s.CloseConversation(ctx(t), c.ID, t0.Add(3*time.Minute))) // keeps the first time
	closed, err := s.GetConversation(ctx(t), c.ID)
	must(t, err)
	wantEqual(t, "status", closed.Status, store.ConversationClosed)
	if closed.ClosedAt == nil {
		t.Fatal("closed conversation has no ClosedAt")
	}
	wantTime(t, "closed at", *closed.ClosedAt, t0.Add(2*time.Minute))
	_, err = s.GetOpenConversation(ctx(t), a.bot, a.channel, "u1")
	wantErr(t, err, store.ErrNotFound)

	// A new one may open now; the old one cannot be reopened beside it.
	next := store.Conversation{WorkspaceID: "a", BotID: a.bot, ChannelID: a.channel, UserID: "u1"}
	must(t, s.CreateConversation(ctx(t), &next))
	closed.Status = store.ConversationOpen
	wantErr(t, s.UpdateConversation(ctx(t), closed), store.ErrConflict)

	_, err = s.GetConversation(ctx(t), "missing")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.UpdateConversation(ctx(t), store.Conversation{ID: "missing"}), store.ErrNotFound)
	wantErr(t, s.CloseConversation(ctx(t), "missing", t0), store.ErrNotFound)
}

func testConversationListing(t *testing.T, s store.Store) {
	a := seed(t, s, "a")
	mk := func(user string, created time.Time, expires time.Time) store.Conversation {
		c := store.Conversation{WorkspaceID: "a", BotID: a.bot, ChannelID: a.channel, UserID: user,
			CreatedAt: created, ExpiresAt: expires}
		must(t, s.CreateConversation(ctx(t), &c))
		return c
	}
	expired := mk("u1", t0, t0.Add(time.Minute))
	alive := mk("u2", t0.Add(time.Second), t0.Add(time.Hour))
	never := mk("u3", t0.Add(2*time.Second), time.Time{})

	n, err := s.CloseExpired(ctx(t), t0.Add(10*time.Minute))
	must(t, err)
	wantEqual(t, "closed", n, 1)
	got, err := s.GetConversation(ctx(t), expired.ID)
	must(t, err)
	wantEqual(t, "expired status", got.Status, store.ConversationClosed)
	for _, id := range []string{alive.ID, never.ID} {
		got, err := s.GetConversation(ctx(t), id)
		must(t, err)
		wantEqual(t, "status of "+id, got.Status, store.ConversationOpen)
	}
	n, err = s.CloseExpired(ctx(t), t0.Add(10*time.Minute))
	must(t, err)
	wantEqual(t, "closed again", n, 0)

	u1again := mk("u1", t0.Add(3*time.Second), time.Time{})

	ids := func(cs []store.Conversation) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.ConversationFilter
		want []string
	}{
		{"all, newest first", store.ConversationFilter{}, []string{u1again.ID, never.ID, alive.ID, expired.ID}},
		{"by user", store.ConversationFilter{ChannelID: a.channel, UserID: "u1"}, []string{u1again.ID, expired.ID}},
		{"open only", store.ConversationFilter{Status: store.ConversationOpen}, []string{u1again.ID, never.ID, alive.ID}},
		{"closed only", store.ConversationFilter{Status: store.ConversationClosed}, []string{expired.ID}},
		{"limit", store.ConversationFilter{Limit: 2}, []string{u1again.ID, never.ID}},
		{"before", store.ConversationFilter{Before: never.ID, Limit: 2}, []string{alive.ID, expired.ID}},
		{"other channel", store.ConversationFilter{ChannelID: "nope"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListConversations(ctx(t), tc.f)
			must(t, err)
			wantEqual(t, "conversations", ids(got), tc.want)
		})
	}
}

func testMessages(t *testing.T, s store.Store) {
	a := seed(t, s, "a")
	c := store.Conversation{WorkspaceID: "a", BotID: a.bot, ChannelID: a.channel, UserID: "u1"}
	must(t, s.CreateConversation(ctx(t), &c))

	buttons := message.Content{Type: message.TypeButtons, Text: "Pick one",
		Buttons: []message.Button{{Title: "Yes", Payload: "y"}, {Title: "Docs", URL: "https://example.com"}}}
	msgs := []store.Message{
		{ConversationID: c.ID, Direction: store.Inbound, Content: message.Text("hi"), CreatedAt: t0},
		{ConversationID: c.ID, Direction: store.Outbound, Content: buttons, DeliveryID: 42, CreatedAt: t0},
		{ConversationID: c.ID, Direction: store.Inbound, Content: message.Content{Type: message.TypeText, Payload: "y"}},
	}
	must(t, s.AppendMessages(ctx(t), msgs))
	for i := 1; i < len(msgs); i++ {
		if msgs[i].ID <= msgs[i-1].ID {
			t.Fatalf("message ids not increasing: %d then %d", msgs[i-1].ID, msgs[i].ID)
		}
	}
	if msgs[2].CreatedAt.IsZero() {
		t.Fatal("AppendMessages did not fill in CreatedAt")
	}

	all, err := s.ListMessages(ctx(t), c.ID, 0, 10)
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("%d messages, want 3", len(all))
	}
	wantEqual(t, "outbound content", all[1].Content, buttons)
	wantEqual(t, "direction", all[1].Direction, store.Outbound)
	wantEqual(t, "delivery id", all[1].DeliveryID, int64(42))
	wantTime(t, "created", all[0].CreatedAt, t0)

	page, err := s.ListMessages(ctx(t), c.ID, msgs[0].ID, 1)
	must(t, err)
	if len(page) != 1 || page[0].ID != msgs[1].ID {
		t.Fatalf("page after the first message = %+v, want message %d", page, msgs[1].ID)
	}

	err = s.AppendMessages(ctx(t), []store.Message{{ConversationID: "missing", Direction: store.Inbound, Content: message.Text("x")}})
	wantErr(t, err, store.ErrNotFound)
}

func testWithTx(t *testing.T, s store.Store) {
	boom := errors.New("boom")
	err := s.WithTx(ctx(t), func(tx store.Store) error {
		must(t, tx.UpsertWorkspace(ctx(t), store.Workspace{ID: "rolled-back", Name: "x"}))
		// The transaction sees its own writes.
		if _, err := tx.GetWorkspace(ctx(t), "rolled-back"); err != nil {
			t.Errorf("read inside the transaction: %v", err)
		}
		return boom
	})
	wantErr(t, err, boom)
	_, err = s.GetWorkspace(ctx(t), "rolled-back")
	wantErr(t, err, store.ErrNotFound)

	must(t, s.WithTx(ctx(t), func(tx store.Store) error {
		if err := tx.UpsertWorkspace(ctx(t), store.Workspace{ID: "kept", Name: "x"}); err != nil {
			return err
		}
		// A nested WithTx joins the outer transaction.
		return tx.WithTx(ctx(t), func(inner store.Store) error {
			_, err := inner.EnqueueDeliveries(ctx(t), []store.Delivery{{WorkspaceID: "kept", ChannelID: "c",
				Recipient: "r", IdempotencyKey: "tx-1", Content: message.Text("x")}})
			return err
		})
	}))
	_, err = s.GetWorkspace(ctx(t), "kept")
	must(t, err)

	// A failure after a nested success rolls everything back.
	err = s.WithTx(ctx(t), func(tx store.Store) error {
		must(t, tx.WithTx(ctx(t), func(inner store.Store) error {
			return inner.UpsertWorkspace(ctx(t), store.Workspace{ID: "nested", Name: "x"})
		}))
		return boom
	})
	wantErr(t, err, boom)
	_, err = s.GetWorkspace(ctx(t), "nested")
	wantErr(t, err, store.ErrNotFound)

	// A store error inside keeps its kind.
	err = s.WithTx(ctx(t), func(tx store.Store) error {
		_, err := tx.GetWorkspace(ctx(t), "missing")
		return err
	})
	wantErr(t, err, store.ErrNotFound)
}
