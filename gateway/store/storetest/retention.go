package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// record makes one record of a retention kind, aged at (or, live, one
// still in use although at is old), and returns what says whether it is
// still stored; nil when the kind has no live records, or the store no
// way to look one up (the prune counts check those).
type record func(t *testing.T, at time.Time, live bool) (exists func() bool)

// testRetention checks every kind of Prune on the suite's clock: records
// older than the cut-off go, in batches of the limit; newer ones and
// records still in use stay.
func testRetention(t *testing.T, s store.Store) {
	tn := seed(t, s, "a")
	b := sampleBroadcast("a", "retention")
	must(t, s.CreateBroadcast(ctx(t), &b))
	n := 0
	next := func() string { n++; return fmt.Sprint(n) }
	found := func(err error) bool {
		if err != nil {
			wantErr(t, err, store.ErrNotFound)
			return false
		}
		return true
	}
	// finished stores a delivery sent at at with status st.
	finished := func(t *testing.T, st store.DeliveryStatus, at time.Time) int64 {
		d := delivery("ret-"+next(), "r"+fmt.Sprint(n))
		// Due at once on the store's clock, which is not the suite's.
		d.ChannelID, d.NextAttemptAt = tn.channel, time.Time{}
		claimed, _, err := s.EnqueueClaimedDeliveries(ctx(t), nodeA, []store.Delivery{d})
		must(t, err)
		wantEqual(t, "claimed", len(claimed), 1)
		must(t, s.CompleteDeliveries(ctx(t), nodeA, []store.DeliveryResult{{ID: claimed[0].ID, Status: st,
			Reason: "r", CountAttempt: true, At: at}}))
		return claimed[0].ID
	}
	pending := func() int64 {
		ds := enqueue(t, s, delivery("ret-"+next(), "r"+fmt.Sprint(n)))
		return ds[0].ID
	}
	deliveryExists := func(ids ...int64) func() bool {
		return func() bool {
			for _, id := range ids {
				if _, err := s.GetDelivery(ctx(t), id); !found(err) {
					return false
				}
			}
			return true
		}
	}
	chat := store.Conversation{WorkspaceID: "a", BotID: tn.bot, ChannelID: tn.channel, UserID: "chatty"}
	must(t, s.CreateConversation(ctx(t), &chat))

	kinds := map[store.RetentionKind]record{
		store.RetainFailedJobs: func(t *testing.T, at time.Time, live bool) func() bool {
			j := store.Job{Kind: "k" + next(), RunAt: at}
			must(t, s.EnqueueJob(ctx(t), &j))
			if live { // pending, made last: no later claim takes it
				return func() bool {
					js, err := s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeA, Limit: 10, Now: t0.Add(time.Hour)})
					must(t, err)
					return len(js) == 1 && js[0].ID == j.ID
				}
			}
			js, err := s.ClaimJobs(ctx(t), store.JobClaimOptions{Node: nodeA, Limit: 10, Now: at})
			must(t, err)
			wantEqual(t, "claimed job", len(js), 1)
			must(t, s.FailJob(ctx(t), j.ID, 1, "poison"))
			return nil
		},
		store.RetainSeenEvents: func(t *testing.T, at time.Time, live bool) func() bool {
			if live {
				return nil
			}
			id := "ev-" + next()
			_, err := s.MarkEventSeen(ctx(t), tn.channel, id, at)
			must(t, err)
			return func() bool { // last look: marks a forgotten one again
				isNew, err := s.MarkEventSeen(ctx(t), tn.channel, id, at)
				must(t, err)
				return !isNew
			}
		},
		store.RetainSentDeliveries: func(t *testing.T, at time.Time, live bool) func() bool {
			if live { // failed ones have their own retention
				return deliveryExists(finished(t, store.DeliveryFailed, at), pending())
			}
			return deliveryExists(finished(t, store.DeliverySent, at))
		},
		store.RetainFailedDeliveries: func(t *testing.T, at time.Time, live bool) func() bool {
			if live {
				return deliveryExists(finished(t, store.DeliveryDelivered, at), pending())
			}
			return deliveryExists(finished(t, store.DeliveryFailed, at))
		},
		store.RetainMessages: func(t *testing.T, at time.Time, live bool) func() bool {
			if live { // strictly older than the cut-off goes
				at = t0.Add(time.Hour)
			}
			m := []store.Message{{ConversationID: chat.ID, Direction: store.Inbound, Content: message.Text("hi"), CreatedAt: at}}
			must(t, s.AppendMessages(ctx(t), m))
			return func() bool {
				ms, err := s.ListMessages(ctx(t), chat.ID, m[0].ID-1, 1)
				must(t, err)
				return len(ms) == 1 && ms[0].ID == m[0].ID
			}
		},
		store.RetainClosedConversations: func(t *testing.T, at time.Time, live bool) func() bool {
			c := store.Conversation{WorkspaceID: "a", BotID: tn.bot, ChannelID: tn.channel, UserID: "u" + next(), CreatedAt: at}
			must(t, s.CreateConversation(ctx(t), &c))
			if !live {
				must(t, s.CloseConversation(ctx(t), c.ID, at))
			}
			return func() bool { _, err := s.GetConversation(ctx(t), c.ID); return found(err) }
		},
		store.RetainTriggers: func(t *testing.T, at time.Time, live bool) func() bool {
			tr := store.Trigger{WorkspaceID: "a", BroadcastID: b.ID, Broadcast: b}
			must(t, s.CreateTrigger(ctx(t), &tr, store.TriggerLimits{}))
			if !live {
				must(t, s.AdvanceTrigger(ctx(t), store.TriggerStep{TriggerID: tr.ID, Matched: 1,
					Errors: []string{"line 1: bad"}, Done: true, At: at}))
			}
			return func() bool {
				_, err := s.GetTrigger(ctx(t), "a", tr.ID)
				lines, _, lerr := s.ListTriggerErrors(ctx(t), tr.ID, 0, 10)
				must(t, lerr)
				if !found(err) && len(lines) > 0 {
					t.Fatalf("trigger %d deleted, its error lines kept: %q", tr.ID, lines)
				}
				return err == nil
			}
		},
		store.RetainFlowTriggers: func(t *testing.T, at time.Time, live bool) func() bool {
			ft := store.FlowTrigger{RequestID: "req-" + next(), WorkspaceID: "a", BotID: tn.bot, ChannelID: tn.channel,
				UserID: "u", FlowID: "f", CreatedAt: at}
			must(t, s.CreateFlowTrigger(ctx(t), ft))
			if !live {
				must(t, s.FinishFlowTrigger(ctx(t), ft.RequestID, store.FlowTriggerProcessed, "", "", "", at))
			}
			return func() bool { _, err := s.GetFlowTrigger(ctx(t), tn.channel, ft.RequestID); return found(err) }
		},
	}
	cut := t0.Add(time.Hour)
	for _, kind := range store.RetentionKinds {
		mk := kinds[kind]
		if mk == nil {
			t.Fatalf("no retention case for kind %s", kind)
		}
		t.Run(string(kind), func(t *testing.T) {
			// Records earlier cases keep in use may be this kind's
			// (a failed delivery outlives the sent ones): gone first.
			_, err := s.Prune(ctx(t), kind, t0, 100)
			must(t, err)
			old1, old2 := mk(t, t0, false), mk(t, t0.Add(time.Minute), false)
			fresh := mk(t, cut.Add(time.Hour), false)
			live := mk(t, t0.Add(-time.Hour), true)
			// Only what is older than before goes, a batch at a time.
			for i, step := range []struct {
				before time.Time
				want   int
			}{{t0.Add(30 * time.Second), 1}, {t0.Add(30 * time.Second), 0}, {cut, 1}, {cut, 0}} {
				n, err := s.Prune(ctx(t), kind, step.before, 1)
				must(t, err)
				if n != step.want {
					t.Fatalf("prune %d (before %s) = %d, want %d", i, step.before.Sub(t0), n, step.want)
				}
			}
			for _, r := range []struct {
				what   string
				exists func() bool
				want   bool
			}{{"old", old1, false}, {"second old", old2, false}, {"fresh", fresh, true}, {"in use", live, true}} {
				if r.exists != nil && r.exists() != r.want {
					t.Errorf("%s record: exists = %v, want %v", r.what, !r.want, r.want)
				}
			}
		})
	}
	_, err := s.Prune(ctx(t), "nonsense", cut, 1)
	if err == nil {
		t.Fatal("Prune of an unknown kind succeeded")
	}
}

// testCleanerLease checks that one holder at a time cleans.
func testCleanerLease(t *testing.T, s store.Store) {
	take := func(holder string, at time.Duration, want bool) {
		t.Helper()
		got, err := s.TakeCleanerLease(ctx(t), holder, t0.Add(at), time.Minute)
		must(t, err)
		if got != want {
			t.Fatalf("%s takes the lease at +%s: %v, want %v", holder, at, got, want)
		}
	}
	take(nodeA, 0, true)
	take(nodeB, 30*time.Second, false)
	take(nodeA, 30*time.Second, true) // renewed until +90s
	take(nodeB, 89*time.Second, false)
	must(t, s.ReleaseCleanerLease(ctx(t), nodeB)) // not B's to release
	take(nodeB, 89*time.Second, false)
	take(nodeB, 90*time.Second, true) // A's ran out
	take(nodeA, 91*time.Second, false)
	must(t, s.ReleaseCleanerLease(ctx(t), nodeB))
	take(nodeA, 91*time.Second, true)
}

// testErasePerson checks that deleting a person erases their
// conversations, messages and deliveries, and nobody else's.
func testErasePerson(t *testing.T, s store.Store) {
	tn := seed(t, s, "a")
	type trail struct {
		conv     store.Conversation
		delivery int64
	}
	trailOf := func(person, address string) trail {
		_, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "a", ID: person})
		must(t, err)
		must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: person, ChannelID: tn.channel, Address: address}))
		c := store.Conversation{WorkspaceID: "a", BotID: tn.bot, ChannelID: tn.channel, UserID: address, PersonID: person,
			Memory: map[string]any{"secret": "my address is " + address}}
		must(t, s.CreateConversation(ctx(t), &c))
		must(t, s.AppendMessages(ctx(t), []store.Message{{ConversationID: c.ID, Direction: store.Inbound, Content: message.Text("hi from " + address)}}))
		d := delivery("erase-"+person, address)
		d.ChannelID, d.PersonID, d.ConversationID = tn.channel, person, c.ID
		return trail{conv: c, delivery: enqueue(t, s, d)[0].ID}
	}
	gone, kept := trailOf("p-gone", "addr-gone"), trailOf("p-kept", "addr-kept")
	must(t, s.DeletePerson(ctx(t), "a", "p-gone"))

	_, err := s.GetPerson(ctx(t), "a", "p-gone")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.PersonByIdentity(ctx(t), tn.channel, "addr-gone")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetConversation(ctx(t), gone.conv.ID)
	wantErr(t, err, store.ErrNotFound)
	ms, err := s.ListMessages(ctx(t), gone.conv.ID, 0, 10)
	must(t, err)
	wantEqual(t, "messages of the erased person", len(ms), 0)
	_, err = s.GetDelivery(ctx(t), gone.delivery)
	wantErr(t, err, store.ErrNotFound)

	_, err = s.GetConversation(ctx(t), kept.conv.ID)
	must(t, err)
	ms, err = s.ListMessages(ctx(t), kept.conv.ID, 0, 10)
	must(t, err)
	wantEqual(t, "messages of someone else", len(ms), 1)
	_, err = s.GetDelivery(ctx(t), kept.delivery)
	must(t, err)
	wantErr(t, s.DeletePerson(ctx(t), "a", "p-gone"), store.ErrNotFound)
}
