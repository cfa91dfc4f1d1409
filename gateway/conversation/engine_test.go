package conversation_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/conversation"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// staticBots serves one bot.
type staticBots struct{ b *bot.Bot }

func (s staticBots) Bot(context.Context, string) (*bot.Bot, error) { return s.b, nil }

// env is an engine on a real (SQLite) store with a settable clock.
type env struct {
	t   testing.TB
	st  *sqlstore.Store
	eng *conversation.Engine

	mu  sync.Mutex
	now time.Time
	seq int
}

func newEnv(t testing.TB, botYAML string, opts ...func(*conversation.Options)) *env {
	t.Helper()
	b, err := bot.Parse([]byte(botYAML), bot.Options{})
	if err != nil {
		t.Fatalf("bot: %v", err)
	}
	e := &env{t: t, st: sqlstore.OpenTest(t), now: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)}
	o := conversation.Options{Store: e.st, Bots: staticBots{b}, Now: e.clock, Logger: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	if e.eng, err = conversation.New(o); err != nil {
		t.Fatal(err)
	}
	return e
}

func demoBot(t *testing.T) string {
	data, err := os.ReadFile("../bot/testdata/demo-bot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *env) key() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return fmt.Sprintf("ev-%d", e.seq)
}

// handle fills in the ids and an event key when missing.
func (e *env) handle(in conversation.Input) (conversation.Output, error) {
	if in.WorkspaceID == "" {
		in.WorkspaceID = "ws"
	}
	if in.BotID == "" {
		in.BotID = "bot"
	}
	if in.ChannelID == "" {
		in.ChannelID = "chan"
	}
	if in.UserID == "" {
		in.UserID = "u1"
	}
	if in.EventKey == "" {
		in.EventKey = e.key()
	}
	return e.eng.Handle(context.Background(), in)
}

func (e *env) must(in conversation.Input) conversation.Output {
	e.t.Helper()
	out, err := e.handle(in)
	if err != nil {
		e.t.Fatalf("Handle(%+v): %v", in, err)
	}
	return out
}

func (e *env) say(text string) conversation.Output {
	e.t.Helper()
	return e.must(conversation.Input{Kind: conversation.KindMessage, Content: message.Text(text)})
}

func (e *env) trigger(flow, step string, closeFlows bool, md map[string]any) conversation.Output {
	e.t.Helper()
	return e.must(conversation.Input{Kind: conversation.KindFlowTrigger, FlowID: flow, StepID: step, CloseFlows: closeFlows, Metadata: md})
}

// texts renders the output's messages as their text fallbacks.
func texts(out conversation.Output) []string {
	var s []string
	for _, m := range out.Messages {
		s = append(s, m.Content.TextFallback())
	}
	return s
}

func wantTexts(t *testing.T, out conversation.Output, want ...string) {
	t.Helper()
	if got := texts(out); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("messages:\n got %q\nwant %q", got, want)
	}
}

func (e *env) open() (store.Conversation, bool) {
	c, err := e.st.GetOpenConversation(context.Background(), "bot", "chan", "u1")
	if errors.Is(err, store.ErrNotFound) {
		return c, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return c, true
}

const menu = "What would you like to do?\n1. Tell me your name\n2. Show me a card\n3. Nothing"

func TestDemoConversation(t *testing.T) {
	e := newEnv(t, demoBot(t))
	out := e.must(conversation.Input{Kind: conversation.KindMessage, Content: message.Text("hello"),
		Customer: map[string]any{"first_name": "Ada"}})
	wantTexts(t, out, "Hi Ada! I'm the Switchboard demo bot.", menu)
	if out.Closed || out.Conversation.FlowID != "welcome" || out.Conversation.StepID != "menu" {
		t.Fatalf("after greeting: %+v", out.Conversation)
	}
	if !out.Messages[1].Content.QuickReplies {
		t.Error("menu choices are not quick replies")
	}
	convID := out.Conversation.ID

	// A wrong answer re-asks; a number picks a choice (text channels).
	wantTexts(t, e.say("pizza"), "Please pick one of the options (you can type its number).", menu)
	wantTexts(t, e.say("1"), "What's your name?")
	out = e.say("  ada lovelace ")
	wantTexts(t, out, "Nice to meet you, Ada lovelace!", "Anything else?\n1. Back to the menu\n2. No thanks")
	if out.Conversation.ID != convID || out.Conversation.Memory["name"] != "Ada lovelace" {
		t.Errorf("memory: %+v", out.Conversation)
	}
	// A button click answers by payload.
	out = e.must(conversation.Input{Kind: conversation.KindButton, Content: message.Content{Type: message.TypeText, Payload: "bye"}})
	wantTexts(t, out, "Bye for now. Write again any time!")
	if !out.Closed || out.Conversation.Status != store.ConversationClosed {
		t.Errorf("end did not close: %+v", out)
	}
	if _, open := e.open(); open {
		t.Error("a conversation is still open")
	}

	// History and outbox of the conversation.
	msgs, err := e.st.ListMessages(context.Background(), convID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var in, outb int
	for _, m := range msgs {
		if m.Direction == store.Inbound {
			in++
		} else {
			outb++
			d, err := e.st.GetDelivery(context.Background(), m.DeliveryID)
			if err != nil || d.Recipient != "u1" || d.ChannelID != "chan" || d.ConversationID != convID ||
				d.SourceKind != "reply" || d.SourceID != convID || d.Status != store.DeliveryQueued {
				t.Errorf("delivery of message %d: %+v %v", m.ID, d, err)
			}
		}
	}
	if in != 5 || outb != 8 {
		t.Errorf("%d inbound and %d outbound messages stored, want 5 and 8", in, outb)
	}

	// The next message starts the default flow in a new conversation.
	out = e.say("hi again")
	if out.Conversation.ID == convID || out.Conversation.FlowID != "welcome" {
		t.Errorf("new conversation: %+v", out.Conversation)
	}
}

func TestAskRetriesThenFallback(t *testing.T) {
	e := newEnv(t, demoBot(t))
	e.say("hello")
	e.say("no")
	e.say("still no")
	// max_retries is 2: the third refusal goes to on_fail (goodbye).
	out := e.say("nope")
	wantTexts(t, out, "Bye for now. Write again any time!")
	if !out.Closed {
		t.Error("not closed")
	}
}

const logicBot = `
name: logic
default_flow: main
flows:
  - id: main
    steps:
      - id: age
        ask: {var: age, type: number, prompt: "How old are you?", retry: "A number, please.", max_retries: 1}
      - set: {visits: "{{ memory.visits | plus: 1 }}", kind: person, stale: null}
      - if: {value: "{{ memory.age }}", gte: 18}
        then: adult
        else:
          - say: "Minor ({{ memory.age }})."
          - goto: done
      - id: adult
        say: "Adult ({{ memory.age }}), visit {{ memory.visits }}, {{ memory.kind }}."
      - id: done
        if: {value: "{{ memory.age }}", gt: 100}
        then: [{say: "Really?"}, end]
      - say: "Bye {{ user.id }} on {{ channel.id }}."
`

func TestStepKinds(t *testing.T) {
	e := newEnv(t, logicBot)
	wantTexts(t, e.say("hi"), "How old are you?")
	wantTexts(t, e.say("old"), "A number, please.", "How old are you?")
	wantTexts(t, e.say("42"), "Adult (42), visit 1, person.", "Bye u1 on chan.")

	wantTexts(t, e.say("hi"), "How old are you?")
	out := e.say("12")
	wantTexts(t, out, "Minor (12).", "Bye u1 on chan.")
	if !out.Closed {
		t.Error("flow end did not close")
	}
	if _, ok := out.Conversation.Memory["stale"]; ok {
		t.Error("set null did not delete")
	}

	e.say("hi")
	wantTexts(t, e.say("130"), "Adult (130), visit 1, person.", "Really?")

	// Without a number after the retry, the flow carries on with age unset.
	e.say("hi")
	e.say("x")
	wantTexts(t, e.say("y"), "Minor ().", "Bye u1 on chan.")
}

func TestExpiry(t *testing.T) {
	e := newEnv(t, strings.Replace(demoBot(t), "conversation_ttl: 24h", "conversation_ttl: 1h", 1))
	first := e.say("hello").Conversation
	e.advance(59 * time.Minute)
	if got := e.say("1").Conversation; got.ID != first.ID || got.FlowID != "ask_name" {
		t.Fatalf("within the TTL the conversation continues: %+v", got)
	}
	e.advance(61 * time.Minute)
	out := e.say("Bob") // would answer "What's your name?" had it not expired
	wantTexts(t, out, "Hi! I'm the Switchboard demo bot.", menu)
	if out.Conversation.ID == first.ID {
		t.Error("expired conversation continued")
	}
	old, err := e.st.GetConversation(context.Background(), first.ID)
	if err != nil || old.Status != store.ConversationClosed {
		t.Errorf("expired conversation: %+v %v", old, err)
	}
	if want := e.clock().Add(time.Hour); !out.Conversation.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt %v, want %v", out.Conversation.ExpiresAt, want)
	}
}

func TestFlowTrigger(t *testing.T) {
	md := map[string]any{"title": "Dentist", "when": "Monday 9:00"}
	t.Run("close_flows", func(t *testing.T) {
		e := newEnv(t, demoBot(t))
		before := e.say("hello").Conversation
		e.say("1")
		out := e.trigger("reminder", "", true, md)
		wantTexts(t, out, "Reminder: Dentist on Monday 9:00.", "Will you make it?\n1. Yes\n2. No")
		if out.Conversation.ID == before.ID || out.Conversation.FlowID != "reminder" {
			t.Errorf("close_flows did not open a new conversation: %+v", out.Conversation)
		}
		if old, _ := e.st.GetConversation(context.Background(), before.ID); old.Status != store.ConversationClosed {
			t.Error("close_flows left the old conversation open")
		}
		// Metadata stays with the conversation for its next turns.
		wantTexts(t, e.say("yes"), "Great, see you Monday 9:00!")
	})
	t.Run("keep_flows", func(t *testing.T) {
		e := newEnv(t, demoBot(t))
		before := e.say("hello").Conversation
		e.say("1")
		e.say("grace")
		out := e.trigger("Reminder", "", false, md)
		if out.Conversation.ID != before.ID || out.Conversation.FlowID != "reminder" || out.Conversation.Memory["name"] != "Grace" {
			t.Errorf("close_flows=false should re-point the open conversation keeping memory: %+v", out.Conversation)
		}
		wantTexts(t, e.say("2"), "No problem, we'll get in touch to find another time.")
	})
	t.Run("lookup", func(t *testing.T) {
		e := newEnv(t, demoBot(t))
		// By name, case-insensitively, at a step.
		out := e.trigger("ask NAME", "ASK", true, nil)
		wantTexts(t, out, "What's your name?")
		// Unknown flow: the default flow (CSML).
		out = e.trigger("nope", "", true, nil)
		if out.Conversation.FlowID != "welcome" {
			t.Errorf("unknown flow: %+v", out.Conversation)
		}
		if _, err := e.handle(conversation.Input{Kind: conversation.KindFlowTrigger, FlowID: "welcome", StepID: "zzz"}); !errors.Is(err, conversation.ErrUnknownStep) {
			t.Errorf("unknown step: %v", err)
		}
	})
	t.Run("source", func(t *testing.T) {
		e := newEnv(t, demoBot(t))
		out := e.must(conversation.Input{Kind: conversation.KindFlowTrigger, FlowID: "reminder", CloseFlows: true,
			SourceKind: "broadcast", SourceID: "req-1", EventKey: "broadcast:req-1", PersonID: "p1"})
		ds, err := e.st.ListDeliveriesBySource(context.Background(), "broadcast", "req-1")
		if err != nil || len(ds) != 2 {
			t.Fatalf("deliveries: %v %v", ds, err)
		}
		for i, d := range ds {
			if d.IdempotencyKey != fmt.Sprintf("conversation:broadcast:req-1:%d", i) || d.PersonID != "p1" || d.ID != out.Messages[i].DeliveryID {
				t.Errorf("delivery %d: %+v", i, d)
			}
		}
	})
}

func TestStart(t *testing.T) {
	e := newEnv(t, demoBot(t))
	out := e.must(conversation.Input{Kind: conversation.KindStart})
	wantTexts(t, out, "Hi! I'm the Switchboard demo bot.", menu)
	again := e.must(conversation.Input{Kind: conversation.KindStart})
	if len(again.Messages) != 0 || again.Conversation.ID != out.Conversation.ID {
		t.Errorf("start with a conversation open: %+v", again)
	}
}

func TestIdempotentReprocessing(t *testing.T) {
	e := newEnv(t, demoBot(t))
	in := conversation.Input{Kind: conversation.KindMessage, Content: message.Text("hello"), EventKey: "evt-1"}
	first := e.must(in)
	dup := e.must(in)
	if !dup.Duplicate || len(dup.Messages) != 0 {
		t.Errorf("re-run of a committed event: %+v", dup)
	}
	// An event that closed its conversation is recognized too.
	e.say("3") // Nothing → goodbye, closed
	closing := conversation.Input{Kind: conversation.KindMessage, Content: message.Text("hi"), EventKey: "evt-close"}
	e.must(closing)
	e.say("3")
	if out := e.must(closing); !out.Duplicate {
		t.Errorf("re-run after the conversation changed: %+v", out)
	}
	ds, err := e.st.ListDeliveriesBySource(context.Background(), "reply", first.Conversation.ID)
	if err != nil || len(ds) != 3 {
		t.Errorf("deliveries of the first conversation: %d %v, want 3", len(ds), err)
	}
	msgs, _ := e.st.ListMessages(context.Background(), first.Conversation.ID, 0, 100)
	if len(msgs) != 5 {
		t.Errorf("%d messages, want 5 (hello, greeting, menu, 3, goodbye)", len(msgs))
	}
}

func TestStepLimitAndStepErrors(t *testing.T) {
	e := newEnv(t, `
name: loop
default_flow: main
flows:
  - id: main
    steps:
      - id: a
        say: "again {{ memory.n }}"
      - goto: a
`, func(o *conversation.Options) { o.MaxStepsPerTurn = 20 })
	_, err := e.handle(conversation.Input{Kind: conversation.KindMessage, Content: message.Text("go")})
	if !errors.Is(err, conversation.ErrStepLimit) || !strings.Contains(err.Error(), `flow "main" at step`) {
		t.Errorf("loop: %v", err)
	}
	if _, open := e.open(); open {
		t.Error("a failed turn committed a conversation")
	}
	e2 := newEnv(t, `
name: broken
default_flow: main
flows:
  - id: main
    steps:
      - set: {d: 0}
      - id: divide
        say: "{{ 10 | divided_by: memory.d }}"
`)
	_, err = e2.handle(conversation.Input{Kind: conversation.KindMessage, Content: message.Text("go")})
	if !errors.Is(err, conversation.ErrStep) || !strings.Contains(err.Error(), `bot "broken", flow "main", step "divide"`) {
		t.Errorf("runtime template error: %v", err)
	}
}

func TestInvalidInput(t *testing.T) {
	e := newEnv(t, demoBot(t))
	for _, in := range []conversation.Input{
		{Kind: "weird", BotID: "b", ChannelID: "c", UserID: "u", EventKey: "k"},
		{Kind: conversation.KindMessage, BotID: "b", ChannelID: "c", UserID: "u"},
		{Kind: conversation.KindMessage, BotID: "b", UserID: "u", EventKey: "k"},
	} {
		if _, err := e.eng.Handle(context.Background(), in); !errors.Is(err, conversation.ErrInvalidInput) {
			t.Errorf("Handle(%+v) = %v", in, err)
		}
	}
}
