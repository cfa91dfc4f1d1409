package conversation_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/conversation"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// collector appends every answer to memory.log, so the log shows the order
// in which the engine handled the messages.
const collector = `
name: collector
default_flow: main
flows:
  - id: main
    steps:
      - id: wait
        ask: {var: x}
      - set: {log: "{{ memory.log }} {{ memory.x }}"}
      - goto: wait
`

// TestOneConversationUnderConcurrency hammers one conversation from many
// goroutines: every message must be handled exactly once, each sender's
// messages in the order it sent them, and the stored history must match the
// order of handling.
func TestOneConversationUnderConcurrency(t *testing.T) {
	e := newEnv(t, collector)
	e.say("start")
	const senders, each = 8, 12
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := e.handle(conversation.Input{Kind: conversation.KindMessage, Content: message.Text(fmt.Sprintf("g%d.%d", g, i))}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// Meanwhile another user's conversation proceeds independently.
	other := conversation.Input{Kind: conversation.KindMessage, UserID: "u2", Content: message.Text("other")}
	if _, err := e.handle(other); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	conv, ok := e.open()
	if !ok {
		t.Fatal("conversation closed")
	}
	log := strings.Fields(conv.Memory["log"].(string))
	if len(log) != senders*each {
		t.Fatalf("%d answers logged, want %d", len(log), senders*each)
	}
	seen := map[string]bool{}
	last := make([]int, senders)
	for g := range last {
		last[g] = -1
	}
	for _, entry := range log {
		if seen[entry] {
			t.Fatalf("%s handled twice", entry)
		}
		seen[entry] = true
		var g, i int
		fmt.Sscanf(entry, "g%d.%d", &g, &i)
		if i != last[g]+1 {
			t.Fatalf("sender %d: message %d handled after %d", g, i, last[g])
		}
		last[g] = i
	}
	msgs, err := e.st.ListMessages(context.Background(), conv.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var inbound []string
	for _, m := range msgs {
		if m.Direction == store.Inbound {
			inbound = append(inbound, m.Content.Text)
		}
	}
	if got, want := strings.Join(inbound[1:], " "), strings.Join(log, " "); got != want {
		t.Errorf("history order differs from handling order:\n%s\n%s", got, want)
	}
}

// TestConcurrentTriggerWaitsItsTurn: a flow_trigger racing user messages is
// neither dropped nor interleaved within a turn.
func TestConcurrentTriggerWaitsItsTurn(t *testing.T) {
	e := newEnv(t, demoBot(t))
	var wg sync.WaitGroup
	outs := make(chan conversation.Output, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := conversation.Input{Kind: conversation.KindMessage, Content: message.Text("hello")}
			if i%5 == 0 {
				in = conversation.Input{Kind: conversation.KindFlowTrigger, FlowID: "reminder", CloseFlows: true}
			}
			out, err := e.handle(in)
			if err != nil {
				t.Error(err)
				return
			}
			outs <- out
		}()
	}
	wg.Wait()
	close(outs)
	n := 0
	for out := range outs {
		n++
		if len(out.Messages) == 0 {
			t.Errorf("a turn produced nothing: %+v", out)
		}
	}
	if n != 20 {
		t.Errorf("%d of 20 events handled", n)
	}
}

// BenchmarkHandle is one user message answered (ask, say, goto) and
// committed on SQLite: the gateway's share of an inbound reply.
func BenchmarkHandle(b *testing.B) {
	e := newEnv(b, `
name: echo
default_flow: main
flows:
  - id: main
    steps:
      - id: wait
        ask: {var: x}
      - say: "You said {{ memory.x }}"
      - goto: wait
`)
	e.say("start")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.handle(conversation.Input{Kind: conversation.KindMessage, Content: message.Text(fmt.Sprint("m", i))}); err != nil {
			b.Fatal(err)
		}
	}
}

// hookStore runs hook once, right after a turn has read the open
// conversation: the window in which another node could change it.
type hookStore struct {
	conversation.Store
	armed atomic.Bool
	hook  func()
}

func (h *hookStore) GetOpenConversation(ctx context.Context, botID, channelID, userID string) (store.Conversation, error) {
	c, err := h.Store.GetOpenConversation(ctx, botID, channelID, userID)
	if h.armed.CompareAndSwap(true, false) {
		h.hook()
	}
	return c, err
}

// TestConcurrentNodes: another engine (another node, so another lock)
// handles a message between this turn's read and its commit. The commit
// notices, the turn runs again on the new state, and both are kept in order.
func TestConcurrentNodes(t *testing.T) {
	e := newEnv(t, collector)
	hooked := &hookStore{Store: e.st}
	b, _ := bot.Parse([]byte(collector), bot.Options{})
	nodeA, err := conversation.New(conversation.Options{Store: hooked, Bots: staticBots{b}, Now: e.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.say("start")
	msg := func(text string) conversation.Input {
		return conversation.Input{Kind: conversation.KindMessage, WorkspaceID: "ws", BotID: "bot", ChannelID: "chan",
			UserID: "u1", EventKey: text, Content: message.Text(text)}
	}
	hooked.hook = func() {
		if _, err := e.eng.Handle(context.Background(), msg("fromB")); err != nil {
			t.Error(err)
		}
	}
	hooked.armed.Store(true)
	out, err := nodeA.Handle(context.Background(), msg("fromA"))
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Conversation.Memory["log"]; got != " fromB fromA" {
		t.Errorf("log %q, want both messages, B first", got)
	}
}
