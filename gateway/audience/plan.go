package audience

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/inbound"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/template"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// plan is a broadcast ready to render: its actions' templates parsed once
// per job and the channels whose addresses each recipient needs.
type plan struct {
	triggerID int64
	broadcast store.Broadcast
	channels  []string
	actions   []planAction
	now       func() time.Time
}

type planAction struct {
	store.BroadcastAction
	index   int
	channel int    // index in plan.channels (message and flow)
	botID   string // flow
	address addressRule
	fields  []*template.Template
	attrs   map[string]*template.Template // string attributes; others are set as they are
}

// plan prepares a trigger's broadcast as it was when triggered.
func (e *Engine) plan(ctx context.Context, t store.Trigger) (*plan, error) {
	p, err := e.planFor(ctx, t.Broadcast)
	if err != nil {
		return nil, err
	}
	p.triggerID = t.ID
	return p, nil
}

func (e *Engine) planFor(ctx context.Context, b store.Broadcast) (*plan, error) {
	p := &plan{broadcast: b, now: e.opts.Now}
	chIndex := map[string]int{}
	for i, a := range b.Actions {
		pa := planAction{BroadcastAction: a, index: i, channel: -1}
		if a.Type == store.ActionMessage || a.Type == store.ActionFlow {
			ch, err := e.store.GetChannel(ctx, a.Channel)
			if err != nil {
				return nil, fmt.Errorf("action %d: channel %s: %w", i, a.Channel, err)
			}
			idx, ok := chIndex[ch.ID]
			if !ok {
				idx = len(p.channels)
				chIndex[ch.ID] = idx
				p.channels = append(p.channels, ch.ID)
			}
			pa.channel, pa.botID = idx, ch.BotID
			if pa.address, err = newAddressRule(e.opts.Templates, a.To, ch.Type); err != nil {
				return nil, fmt.Errorf("action %d: %w", i, err)
			}
		}
		if a.Message != nil {
			c := cloneContent(*a.Message)
			for _, f := range contentFields(&c) {
				tpl, err := e.opts.Templates.Parse(*f.value)
				if err != nil {
					return nil, fmt.Errorf("action %d: message%s: %w", i, f.pointer, err)
				}
				pa.fields = append(pa.fields, tpl)
			}
		}
		for name, v := range a.Attributes {
			if s, ok := v.(string); ok {
				tpl, err := e.opts.Templates.Parse(s)
				if err != nil {
					return nil, fmt.Errorf("action %d: attribute %s: %w", i, name, err)
				}
				if pa.attrs == nil {
					pa.attrs = map[string]*template.Template{}
				}
				pa.attrs[name] = tpl
			}
		}
		p.actions = append(p.actions, pa)
	}
	return p, nil
}

// output is what one batch produces.
type output struct {
	deliveries []store.Delivery
	flows      []inbound.Event
	updates    []store.Person
	// links are addresses flow actions derived, linked to their people.
	links []store.Identity
	// addressed counts, per plan channel, the people reached there.
	addressed []int64
	// tallies count, per action, the flows and updates above.
	tallies []store.ActionTally
	errs    []string
}

// render performs every action for every recipient of a batch, each
// message and flow action at the address its rule resolves (address.go). A
// person whose template fails gets a failed delivery with the reason and an
// error line; the others go on.
func (p *plan) render(ctx context.Context, tpl *template.Engine, req *TriggerRequest, items []recipient) output {
	out := output{addressed: make([]int64, len(p.channels)), tallies: make([]store.ActionTally, len(p.actions))}
	src := sourceID(p.triggerID)
	now := p.now()
	reached := make([]bool, len(p.channels))
	for _, it := range items {
		person := it.Person
		vars := &template.Vars{Customer: inbound.CustomerVars(person), Trigger: triggerData(req.Data, it.data)}
		clear(reached)
		for _, a := range p.actions {
			key := store.TriggerDeliveryKey(p.triggerID, a.index, person.ID)
			base := store.Delivery{WorkspaceID: person.WorkspaceID, PersonID: person.ID, IdempotencyKey: key,
				SourceKind: "trigger", SourceID: src}
			var derived bool
			if a.channel >= 0 {
				base.ChannelID = p.channels[a.channel]
				r := a.address.resolve(ctx, it.Addresses[a.channel], vars)
				switch {
				case r.renderErr != nil:
					base.Status, base.Reason, base.LastError = store.DeliveryFailed, ReasonRenderError, r.renderErr.Error()
					out.errs = append(out.errs, fmt.Sprintf("person %s: action %d: %v", person.ID, a.index, r.renderErr))
					out.deliveries = append(out.deliveries, base)
					continue
				case r.addr == "":
					base.Status, base.Reason, base.LastError = store.DeliverySkipped, r.reason, r.msg
					if a.address.tpl != nil {
						// A template's result is worth a line: a wrong
						// to: shows up in the trigger's errors.
						out.errs = append(out.errs, fmt.Sprintf("person %s: action %d: skipped, %s: %s",
							person.ID, a.index, r.reason, r.msg))
					}
					out.deliveries = append(out.deliveries, base)
					continue
				}
				base.Recipient, derived = r.addr, r.derived
				if !reached[a.channel] {
					reached[a.channel] = true
					out.addressed[a.channel]++
				}
			}
			switch a.Type {
			case store.ActionMessage:
				c, err := renderContent(ctx, *a.Message, a.fields, vars)
				if err != nil {
					base.Status, base.Reason, base.LastError = store.DeliveryFailed, ReasonRenderError, err.Error()
					out.errs = append(out.errs, fmt.Sprintf("person %s: action %d: %v", person.ID, a.index, err))
				} else {
					base.Content, base.Status = c, store.DeliveryQueued
				}
				out.deliveries = append(out.deliveries, base)
			case store.ActionFlow:
				// A conversation belongs to a person through their
				// identity: a derived address is linked (in the step's
				// transaction, before the event runs) so that the turn, the
				// replies and later broadcasts find the person. A message
				// action does not link: an identity wins over the default,
				// so linking would pin an address the person may change.
				if derived {
					out.links = append(out.links, store.Identity{WorkspaceID: person.WorkspaceID, PersonID: person.ID,
						ChannelID: base.ChannelID, Address: base.Recipient})
				}
				out.tallies[a.index].Flows++
				out.flows = append(out.flows, inbound.Event{Kind: inbound.KindFlowTrigger, WorkspaceID: person.WorkspaceID,
					BotID: a.botID, ChannelID: base.ChannelID, UserID: base.Recipient, EventKey: key,
					FlowID: a.Flow, StepID: a.Step, CloseFlows: a.CloseFlows, Trigger: vars.Trigger,
					// Also metadata.*, which the conversation keeps for its
					// later turns (trigger.* is for this turn only).
					Metadata:   vars.Trigger,
					SourceKind: "trigger", SourceID: src, Received: now})
			case store.ActionAttributes:
				attrs := make(map[string]any, len(a.Attributes))
				var failed error
				for name, v := range a.Attributes {
					if t, ok := a.attrs[name]; ok {
						s, err := t.Render(ctx, vars)
						if err != nil {
							failed = fmt.Errorf("attribute %s: %w", name, err)
							break
						}
						v = s
					}
					attrs[name] = v
				}
				if failed != nil {
					out.errs = append(out.errs, fmt.Sprintf("person %s: action %d: %v", person.ID, a.index, failed))
					continue
				}
				out.tallies[a.index].Updated++
				out.updates = append(out.updates, store.Person{WorkspaceID: person.WorkspaceID, ID: person.ID, Attributes: attrs})
			}
		}
	}
	return out
}

// renderContent renders a message's templated strings for one person and
// checks the result can be sent.
func renderContent(ctx context.Context, src message.Content, fields []*template.Template, vars *template.Vars) (message.Content, error) {
	c := cloneContent(src)
	for i, f := range contentFields(&c) {
		s, err := fields[i].Render(ctx, vars)
		if err != nil {
			return message.Content{}, fmt.Errorf("message%s: %w", f.pointer, err)
		}
		*f.value = s
	}
	if err := c.Validate(); err != nil {
		return message.Content{}, err
	}
	return c, nil
}
