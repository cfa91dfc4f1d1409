package storetest

import (
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

func testPeople(t *testing.T, s store.Store) {
	seed(t, s, "a")

	p, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "a", ID: "p1", Email: " Ann@Example.COM ",
		Attributes: map[string]any{"plan": "pro", "seats": 3.0, "ghost": nil}})
	must(t, err)
	wantEqual(t, "email", p.Email, "ann@example.com")
	wantEqual(t, "attributes", p.Attributes, map[string]any{"plan": "pro", "seats": 3.0})
	if p.CreatedAt.IsZero() || p.UpdatedAt.IsZero() {
		t.Fatalf("times not filled in: %+v", p)
	}

	for _, tc := range []struct {
		name      string
		in        store.Person
		wantEmail string
		wantAttrs map[string]any
	}{
		{"merge keeps other attributes", store.Person{Attributes: map[string]any{"city": "Oslo"}},
			"ann@example.com", map[string]any{"plan": "pro", "seats": 3.0, "city": "Oslo"}},
		{"nil deletes, value replaces", store.Person{Attributes: map[string]any{"plan": nil, "seats": 5.0}},
			"ann@example.com", map[string]any{"seats": 5.0, "city": "Oslo"}},
		{"email replaced when given", store.Person{Email: "ann@new.example"},
			"ann@new.example", map[string]any{"seats": 5.0, "city": "Oslo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.WorkspaceID, tc.in.ID = "a", "p1"
			got, err := s.UpsertPerson(ctx(t), tc.in)
			must(t, err)
			wantEqual(t, "email", got.Email, tc.wantEmail)
			wantEqual(t, "attributes", got.Attributes, tc.wantAttrs)
			read, err := s.GetPerson(ctx(t), "a", "p1")
			must(t, err)
			wantEqual(t, "stored email", read.Email, tc.wantEmail)
			wantEqual(t, "stored attributes", read.Attributes, tc.wantAttrs)
		})
	}

	generated, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "a", Email: "ANN@new.example"})
	must(t, err)
	if generated.ID == "" {
		t.Fatal("UpsertPerson did not generate an id")
	}
	same, err := s.FindPeopleByEmail(ctx(t), "a", "Ann@New.Example")
	must(t, err)
	if len(same) != 2 || same[0].ID != "p1" || same[1].ID != generated.ID {
		t.Fatalf("FindPeopleByEmail = %+v, want p1 then %s", same, generated.ID)
	}
	none, err := s.FindPeopleByEmail(ctx(t), "a", "nobody@example.com")
	must(t, err)
	wantEqual(t, "people without match", len(none), 0)

	_, err = s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "missing", ID: "x"})
	wantErr(t, err, store.ErrNotFound)

	must(t, s.DeletePerson(ctx(t), "a", "p1"))
	_, err = s.GetPerson(ctx(t), "a", "p1")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeletePerson(ctx(t), "a", "p1"), store.ErrNotFound)
}

func testIdentities(t *testing.T, s store.Store) {
	a := seed(t, s, "a")
	b := seed(t, s, "b")
	for _, id := range []string{"p1", "p2"} {
		_, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "a", ID: id})
		must(t, err)
	}
	_, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "b", ID: "pb"})
	must(t, err)

	must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: "p1", ChannelID: a.channel, Address: "+1555"}))
	must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: "p1", ChannelID: a.channel, Address: "+1666"}))
	who, err := s.PersonByIdentity(ctx(t), a.channel, "+1555")
	must(t, err)
	wantEqual(t, "owner", who.ID, "p1")

	// Linking an owned address moves it.
	must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: "p2", ChannelID: a.channel, Address: "+1555"}))
	who, err = s.PersonByIdentity(ctx(t), a.channel, "+1555")
	must(t, err)
	wantEqual(t, "owner after move", who.ID, "p2")
	ids, err := s.ListIdentities(ctx(t), "a", "p1")
	must(t, err)
	wantEqual(t, "p1 identities", ids, []store.Identity{{WorkspaceID: "a", PersonID: "p1", ChannelID: a.channel, Address: "+1666"}})

	for _, tc := range []struct {
		name string
		id   store.Identity
	}{
		{"person of another workspace", store.Identity{WorkspaceID: "a", PersonID: "pb", ChannelID: a.channel, Address: "x"}},
		{"channel of another workspace", store.Identity{WorkspaceID: "a", PersonID: "p1", ChannelID: b.channel, Address: "x"}},
		{"unknown person", store.Identity{WorkspaceID: "a", PersonID: "nope", ChannelID: a.channel, Address: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.LinkIdentity(ctx(t), tc.id), store.ErrNotFound)
		})
	}
	_, err = s.PersonByIdentity(ctx(t), a.channel, "unknown")
	wantErr(t, err, store.ErrNotFound)

	// Deleting a person deletes their identities.
	must(t, s.DeletePerson(ctx(t), "a", "p2"))
	_, err = s.PersonByIdentity(ctx(t), a.channel, "+1555")
	wantErr(t, err, store.ErrNotFound)
	ids, err = s.ListIdentities(ctx(t), "a", "p2")
	must(t, err)
	wantEqual(t, "identities of a deleted person", len(ids), 0)
}

// testTenantIsolation checks that ids of one workspace never reach another
// workspace's data through the methods scoped by workspace.
func testTenantIsolation(t *testing.T, s store.Store) {
	a := seed(t, s, "a")
	seed(t, s, "b")
	_, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "a", ID: "shared-id", Email: "a@example.com",
		Attributes: map[string]any{"tenant": "a"}})
	must(t, err)
	must(t, s.LinkIdentity(ctx(t), store.Identity{WorkspaceID: "a", PersonID: "shared-id", ChannelID: a.channel, Address: "addr"}))
	must(t, s.CreateAPIKey(ctx(t), store.APIKey{ID: "ka", WorkspaceID: "a", Scope: store.ScopeApp, Hash: []byte("ka")}))
	conv := store.Conversation{WorkspaceID: "a", BotID: a.bot, ChannelID: a.channel, UserID: "addr"}
	must(t, s.CreateConversation(ctx(t), &conv))

	_, err = s.GetPerson(ctx(t), "b", "shared-id")
	wantErr(t, err, store.ErrNotFound)
	found, err := s.FindPeopleByEmail(ctx(t), "b", "a@example.com")
	must(t, err)
	wantEqual(t, "b's people with a's email", len(found), 0)
	ids, err := s.ListIdentities(ctx(t), "b", "shared-id")
	must(t, err)
	wantEqual(t, "b's identities for a's person", len(ids), 0)
	wantErr(t, s.DeletePerson(ctx(t), "b", "shared-id"), store.ErrNotFound)
	wantErr(t, s.RevokeAPIKey(ctx(t), "b", "ka"), store.ErrNotFound)

	// The same person id in b is a different person.
	pb, err := s.UpsertPerson(ctx(t), store.Person{WorkspaceID: "b", ID: "shared-id", Attributes: map[string]any{"x": 1.0}})
	must(t, err)
	wantEqual(t, "b's attributes", pb.Attributes, map[string]any{"x": 1.0})
	pa, err := s.GetPerson(ctx(t), "a", "shared-id")
	must(t, err)
	wantEqual(t, "a's attributes", pa.Attributes, map[string]any{"tenant": "a"})

	bBot, err := s.GetBotByName(ctx(t), "b", "bot")
	must(t, err)
	if bBot.ID == a.bot {
		t.Fatal("b's bot by name returned a's bot")
	}
	bots, err := s.ListBots(ctx(t), "b")
	must(t, err)
	chans, err := s.ListChannels(ctx(t), "b")
	must(t, err)
	for _, c := range chans {
		if c.WorkspaceID != "b" {
			t.Fatalf("ListChannels(b) returned %+v", c)
		}
	}
	for _, b := range bots {
		if b.WorkspaceID != "b" {
			t.Fatalf("ListBots(b) returned %+v", b)
		}
	}
	convs, err := s.ListConversations(ctx(t), store.ConversationFilter{WorkspaceID: "b"})
	must(t, err)
	wantEqual(t, "b's conversations", len(convs), 0)
	convs, err = s.ListConversations(ctx(t), store.ConversationFilter{WorkspaceID: "a"})
	must(t, err)
	wantEqual(t, "a's conversations", len(convs), 1)
}

// testPeopleByPhone finds people by their phone attribute, in their
// workspace only.
func testPeopleByPhone(t *testing.T, s store.Store) {
	for _, ws := range []string{"a", "b"} {
		must(t, s.UpsertWorkspace(ctx(t), store.Workspace{ID: ws, Name: ws}))
	}
	for _, p := range []store.Person{
		{WorkspaceID: "a", ID: "ann", Attributes: map[string]any{"phone": "+15550000001"}},
		{WorkspaceID: "a", ID: "ann2", Attributes: map[string]any{"phone": "+15550000001"}},
		{WorkspaceID: "a", ID: "bob", Attributes: map[string]any{"phone": "+15550000002"}},
		{WorkspaceID: "a", ID: "num", Attributes: map[string]any{"phone": 15550000003.0}},
		{WorkspaceID: "b", ID: "other", Attributes: map[string]any{"phone": "+15550000001"}},
	} {
		_, err := s.UpsertPerson(ctx(t), p)
		must(t, err)
	}
	ids := func(phone string) []string {
		ps, err := s.FindPeopleByPhone(ctx(t), "a", phone)
		must(t, err)
		out := []string{}
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	wantEqual(t, "shared number, oldest first", ids("+15550000001"), []string{"ann", "ann2"})
	wantEqual(t, "one owner", ids("+15550000002"), []string{"bob"})
	wantEqual(t, "unknown", ids("+15550000009"), []string{})
	wantEqual(t, "empty", ids(""), []string{})
}
