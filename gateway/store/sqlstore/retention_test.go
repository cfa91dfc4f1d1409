package sqlstore_test

import (
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// TestErasePersonWebchat checks that deleting a person deletes the web
// chat outbox messages to their addresses (the outbox is not part of the
// conformance suite's Store).
func TestErasePersonWebchat(t *testing.T) { onBothEngines(t, testErasePersonWebchat) }

func testErasePersonWebchat(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	ch := webchatChannel(t, s)
	var appends []store.WebchatAppend
	for _, user := range []string{"ann", "bob"} {
		if _, err := s.UpsertPerson(ctx, store.Person{WorkspaceID: "ws", ID: user}); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkIdentity(ctx, store.Identity{WorkspaceID: "ws", PersonID: user, ChannelID: ch.ID, Address: user}); err != nil {
			t.Fatal(err)
		}
		appends = append(appends, store.WebchatAppend{Offline: true, WebchatMessage: store.WebchatMessage{ChannelID: ch.ID,
			UserID: user, Seq: 1, IdempotencyKey: "k-" + user, Frame: []byte("hello " + user), CreatedAt: time.Now()}})
	}
	if _, err := s.AppendWebchat(ctx, appends, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePerson(ctx, "ws", "ann"); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]int{"ann": 0, "bob": 1} {
		ms, err := s.ListWebchat(ctx, ch.ID, user, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != want {
			t.Errorf("%s's web chat messages after ann's deletion: %d, want %d", user, len(ms), want)
		}
	}
}
