package conversation

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/template"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// stateKey is the memory entry holding the engine's own state. Variable names
// must start with a letter (package bot), so it cannot clash, and it is
// hidden from templates and call steps.
const stateKey = "_engine"

// state is the engine's bookkeeping kept in a conversation's memory.
type state struct {
	Event    string         `json:"event,omitempty"`   // key of the last event committed
	Retries  int            `json:"retries,omitempty"` // re-asks of the waiting ask so far
	Metadata map[string]any `json:"metadata,omitempty"`
}

func loadState(memory map[string]any) state {
	var st state
	if raw, ok := memory[stateKey]; ok {
		// Memory comes from JSON; a round trip is the simplest faithful
		// decoding of the nested map.
		if b, err := json.Marshal(raw); err == nil {
			_ = json.Unmarshal(b, &st)
		}
	}
	return st
}

func (st state) value() map[string]any {
	v := map[string]any{"event": st.Event}
	if st.Retries > 0 {
		v["retries"] = st.Retries
	}
	if len(st.Metadata) > 0 {
		v["metadata"] = st.Metadata
	}
	return v
}

// run is one turn in progress: the position, the memory and the messages
// produced so far.
type run struct {
	e   *Engine
	bot *bot.Bot
	in  Input
	now time.Time

	convID string
	memory map[string]any // user variables, without stateKey
	st     state
	vars   *template.Vars

	waitAt *bot.Step // the ask the conversation now waits at
	last   *bot.Step // the last step run, for the position of a closed conversation
	closed bool
	out    []message.Content
	steps  int
}

// resume continues the open conversation c.
func (r *run) resume(c store.Conversation, st state) {
	r.convID, r.st = c.ID, st
	r.memory = make(map[string]any, len(c.Memory))
	for k, v := range c.Memory {
		if k != stateKey {
			r.memory[k] = v
		}
	}
	r.initVars()
}

// start begins a new conversation.
func (r *run) start() {
	r.convID = uuid.Must(uuid.NewV7()).String()
	r.memory, r.st = map[string]any{}, state{}
	r.initVars()
}

func (r *run) initVars() {
	in := r.in
	if len(in.Metadata) > 0 {
		md := maps.Clone(r.st.Metadata)
		if md == nil {
			md = map[string]any{}
		}
		maps.Copy(md, in.Metadata)
		r.st.Metadata = md
	}
	var event map[string]any
	switch in.Kind {
	case KindMessage, KindButton:
		event = map[string]any{"text": in.Content.Text, "payload": in.Content.Payload, "type": string(in.Content.Type)}
	default:
		event = map[string]any{"type": string(in.Kind)}
	}
	user := map[string]any{"id": in.UserID, "person_id": in.PersonID}
	if len(in.Profile) > 0 {
		profile := make(map[string]any, len(in.Profile))
		for k, v := range in.Profile {
			profile[k] = v
		}
		user["profile"] = profile
	}
	r.vars = &template.Vars{
		Memory:   r.memory,
		Event:    event,
		Metadata: r.st.Metadata,
		Customer: in.Customer,
		Trigger:  in.Trigger,
		Channel:  map[string]any{"id": in.ChannelID, "type": in.ChannelType},
		User:     user,
	}
}

// answer applies the user's message to the ask the conversation waits at and
// returns the step to run next. A refused answer re-asks (waitAt set, nil
// returned) until the ask's retries are used up.
func (r *run) answer(ctx context.Context, c store.Conversation) (*bot.Step, error) {
	f := r.bot.Flow(c.FlowID)
	var at *bot.Step
	if f != nil {
		at = f.Step(c.StepID)
	}
	if at == nil {
		// The bot was changed under the conversation: start over rather
		// than strand the user.
		r.e.log.WarnContext(ctx, "conversation waits at a step the bot no longer has; restarting the default flow",
			"conversation", c.ID, "flow", c.FlowID, "step", c.StepID)
		r.st.Retries = 0
		return r.bot.Default().First(), nil
	}
	if at.Kind() != bot.KindAsk {
		return at, nil
	}
	ask := at.Ask
	if v, ok := ask.Accept(r.in.Content.Text, r.in.Content.Payload); ok {
		r.memory[ask.Var] = v
		r.st.Retries = 0
		return at.Next(), nil
	}
	if r.st.Retries >= ask.MaxAttempts() {
		r.st.Retries = 0
		if ask.OnFail != nil {
			return ask.OnFail.To(), nil
		}
		return at.Next(), nil
	}
	r.st.Retries++
	r.last = at
	if err := r.say(ask.RenderRetry(ctx, r.vars)); err != nil {
		return nil, r.stepErr(at, err)
	}
	return nil, r.ask(ctx, at)
}

// runFrom runs steps from s until an ask waits or the flow ends.
func (r *run) runFrom(ctx context.Context, s *bot.Step) error {
	for s != nil {
		r.steps++
		if r.steps > r.e.opts.MaxStepsPerTurn {
			return fmt.Errorf("%w: more than %d steps, the last in flow %q at step %q (a goto loop without an ask?)",
				ErrStepLimit, r.e.opts.MaxStepsPerTurn, s.Flow().ID, s.Key())
		}
		r.last = s
		next, err := r.step(ctx, s)
		if err != nil {
			return r.stepErr(s, err)
		}
		if r.waitAt != nil || r.closed {
			return nil
		}
		s = next
	}
	if r.waitAt == nil {
		r.closed = true // the flow ran to its end
	}
	return nil
}

// step runs one step and returns the next.
func (r *run) step(ctx context.Context, s *bot.Step) (*bot.Step, error) {
	switch s.Kind() {
	case bot.KindSay:
		return s.Next(), r.say(s.Say.Render(ctx, r.vars))
	case bot.KindAsk:
		return nil, r.ask(ctx, s)
	case bot.KindSet:
		vals, err := s.SetValues(ctx, r.vars)
		if err != nil {
			return nil, err
		}
		r.setMemory(vals)
		return s.Next(), nil
	case bot.KindIf:
		ok, err := s.If.Eval(ctx, r.vars)
		if err != nil {
			return nil, err
		}
		return s.Branch(ok), nil
	case bot.KindGoto:
		return s.Goto.To(), nil
	case bot.KindCall:
		return r.call(ctx, s)
	case bot.KindEnd:
		r.closed = true
		return nil, nil
	}
	return nil, fmt.Errorf("unknown step kind %q", s.Kind())
}

// ask sends the ask's prompt and waits at it.
func (r *run) ask(ctx context.Context, s *bot.Step) error {
	r.waitAt = s
	return r.say(s.Ask.RenderPrompt(ctx, r.vars))
}

// say queues a rendered message; ok false means there is nothing to send.
func (r *run) say(c message.Content, ok bool, err error) error {
	if err == nil && ok {
		r.out = append(r.out, c)
	}
	return err
}

// setMemory merges vals into memory; nil deletes.
func (r *run) setMemory(vals map[string]any) {
	for k, v := range vals {
		if v == nil {
			delete(r.memory, k)
		} else {
			r.memory[k] = v
		}
	}
}

func (r *run) stepErr(s *bot.Step, err error) error {
	return fmt.Errorf("%w: bot %q, flow %q, step %q: %w", ErrStep, r.bot.Name, s.Flow().ID, s.Key(), err)
}

// conversation is the state to commit: seen continued, or a new one.
func (r *run) conversation(seen store.Conversation, continued bool) store.Conversation {
	in := r.in
	c := store.Conversation{
		ID: r.convID, WorkspaceID: in.WorkspaceID, BotID: in.BotID, ChannelID: in.ChannelID,
		UserID: in.UserID, CreatedAt: r.now,
	}
	if continued {
		c = seen
	}
	if in.PersonID != "" {
		c.PersonID = in.PersonID
	}
	if in.ReplyTo != "" {
		c.ReplyTo = in.ReplyTo
	}
	pos := r.waitAt
	if pos == nil {
		pos = r.last
	}
	if pos != nil {
		c.FlowID, c.StepID = pos.Flow().ID, pos.Key()
	}
	r.st.Event = in.EventKey
	c.Memory = maps.Clone(r.memory)
	c.Memory[stateKey] = r.st.value()
	c.Status, c.ClosedAt = store.ConversationOpen, nil
	if r.closed {
		c.Status, c.ClosedAt = store.ConversationClosed, &r.now
	}
	ttl := r.bot.ConversationTTL.D()
	if ttl <= 0 {
		ttl = r.e.opts.DefaultTTL
	}
	c.LastInteractionAt, c.ExpiresAt = r.now, r.now.Add(ttl)
	return c
}
