package audience

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/template"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// BroadcastInput is the body that creates or updates a broadcast. Channels
// are named by id or name.
type BroadcastInput struct {
	Name        string                  `json:"name"`
	Description string                  `json:"description"`
	Recipients  json.RawMessage         `json:"recipients"`
	Actions     []store.BroadcastAction `json:"actions"`
	Goal        *store.Goal             `json:"goal"`
}

// maxGoalWindow bounds a goal's window.
const maxGoalWindow = 365 * 24 * time.Hour

// ParseBroadcast decodes and checks the shape of a broadcast body into b
// (keeping b's id, workspace and state). What depends on other resources
// (channels, flows, segments) and on Liquid is checked by Review.
func ParseBroadcast(body []byte, lim FilterLimits, b *store.Broadcast) error {
	var in BroadcastInput
	if err := strictDecode(body, &in); err != nil {
		return &FieldError{Status: http.StatusBadRequest, Code: "bad_request", Detail: "bad request: " + err.Error()}
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 255 {
		return badField("/name", "name is required, at most 255 bytes")
	}
	var recipients *store.Filter
	if r := strings.TrimSpace(string(in.Recipients)); r != "" && r != "null" {
		f, err := ParseFilter(in.Recipients, "/recipients", lim)
		if err != nil {
			return err
		}
		recipients = f
	}
	for i := range in.Actions {
		if err := checkAction(&in.Actions[i], "/actions/"+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	if g := in.Goal; g != nil {
		switch g.Type {
		case store.GoalReply:
		case store.GoalFlow:
			if g.Flow == "" {
				return badField("/goal/flow", "a flow goal names the flow")
			}
		case store.GoalEvent:
			if g.Event == "" {
				return badField("/goal/event", "an event goal names the event")
			}
		default:
			return badField("/goal/type", "goal type must be reply, flow or event")
		}
		if d, err := time.ParseDuration(g.Within); err != nil || d <= 0 || d > maxGoalWindow {
			return badField("/goal/within", "within must be a duration such as \"72h\", at most %s", maxGoalWindow)
		}
	}
	b.Name, b.Description, b.Recipients, b.Actions, b.Goal = in.Name, in.Description, recipients, in.Actions, in.Goal
	return nil
}

func checkAction(a *store.BroadcastAction, ptr string) error {
	switch a.Type {
	case store.ActionMessage:
		if a.Channel == "" {
			return badField(ptr+"/channel", "a message action names its channel")
		}
		if a.Message == nil {
			return badField(ptr+"/message", "a message action has a message")
		}
		if a.Message.Type == "" {
			a.Message.Type = message.TypeText
		}
		if a.Flow != "" || a.Attributes != nil {
			return badField(ptr, "a message action has channel, to and message only")
		}
	case store.ActionFlow:
		if a.Channel == "" || a.Flow == "" {
			return badField(ptr, "a flow action names its channel and flow")
		}
		if a.Message != nil || a.Attributes != nil {
			return badField(ptr, "a flow action has channel, to, flow, step and close_flows only")
		}
	case store.ActionAttributes:
		if len(a.Attributes) == 0 {
			return badField(ptr+"/attributes", "an attributes action sets at least one attribute")
		}
		for name := range a.Attributes {
			if err := checkAttributeName(name); err != nil {
				return badField(ptr+"/attributes", "%v", err)
			}
		}
		if a.Channel != "" || a.To != "" || a.Message != nil || a.Flow != "" {
			return badField(ptr, "an attributes action has attributes only")
		}
	default:
		return badField(ptr+"/type", "action type must be message, flow or attributes, not %q", a.Type)
	}
	if len(a.To) > maxToBytes {
		return badField(ptr+"/to", "to is at most %d bytes", maxToBytes)
	}
	return nil
}

// maxToBytes bounds an action's to: template, which renders one address.
const maxToBytes = 1024

// ReviewStore is what Review reads.
type ReviewStore interface {
	GetChannel(ctx context.Context, id string) (store.Channel, error)
	ListChannels(ctx context.Context, workspaceID string) ([]store.Channel, error)
	GetSegment(ctx context.Context, workspaceID string, id int64) (store.Segment, error)
}

// Bots loads compiled bots (bot.Cache is one).
type Bots interface {
	Bot(ctx context.Context, id string) (*bot.Bot, error)
}

// ResolveChannels replaces channel names in b's actions by ids; names that
// match no channel are left for Review to report.
func ResolveChannels(ctx context.Context, st ReviewStore, b *store.Broadcast) error {
	chs, err := st.ListChannels(ctx, b.WorkspaceID)
	if err != nil {
		return fmt.Errorf("list channels: %w", err)
	}
	for i := range b.Actions {
		a := &b.Actions[i]
		for _, ch := range chs {
			if a.Channel == ch.Name {
				a.Channel = ch.ID
			}
		}
	}
	return nil
}

// Review lists what prevents a broadcast from being activated ("needs
// fixing"): no recipients source, no actions, an unknown or disabled
// channel, an unknown flow or segment, Liquid that does not validate,
// content that cannot be sent.
//
// As in Customer.io, every broadcast defines its recipients (its default
// audience) and a trigger may override them; a broadcast without one would
// refuse every trigger that names none (422 no_recipients), so it is not
// activated.
func Review(ctx context.Context, st ReviewStore, bots Bots, tpl *template.Engine, b store.Broadcast) ([]*FieldError, error) {
	var probs []*FieldError
	fix := func(ptr, format string, a ...any) {
		probs = append(probs, &FieldError{Status: http.StatusUnprocessableEntity, Code: "needs_fixing", Pointer: ptr,
			Detail: fmt.Sprintf(format, a...)})
	}
	if b.Recipients == nil {
		fix("/recipients", "no recipients source: set recipients, the audience a trigger that names none reaches "+
			`(a filter such as {"segment": {"id": 3}}; an empty manual segment reaches nobody); `+
			"a trigger's recipients, ids, emails, per_user_data or data_file_url override it")
	}
	if len(b.Actions) == 0 {
		fix("/actions", "the broadcast has no actions")
	}
	for _, id := range filterSegments(b.Recipients, nil) {
		if _, err := st.GetSegment(ctx, b.WorkspaceID, id); errors.Is(err, store.ErrNotFound) {
			fix("/recipients", "unknown segment %d", id)
		} else if err != nil {
			return nil, err
		}
	}
	for i, a := range b.Actions {
		ptr := "/actions/" + strconv.Itoa(i)
		if a.Type == store.ActionMessage || a.Type == store.ActionFlow {
			ch, err := st.GetChannel(ctx, a.Channel)
			switch {
			case errors.Is(err, store.ErrNotFound) || (err == nil && ch.WorkspaceID != b.WorkspaceID):
				fix(ptr+"/channel", "unknown channel %q", a.Channel)
				continue
			case err != nil:
				return nil, err
			case !ch.Enabled:
				fix(ptr+"/channel", "channel %q is disabled", ch.Name)
			}
			if a.To != "" {
				reviewTo(a.To, ch, func(format string, args ...any) { fix(ptr+"/to", format, args...) }, tpl)
			}
			if a.Type == store.ActionFlow {
				bt, err := bots.Bot(ctx, ch.BotID)
				if err != nil {
					fix(ptr+"/flow", "the bot of channel %q cannot be loaded: %v", ch.Name, err)
				} else if bt.Flow(a.Flow) == nil {
					fix(ptr+"/flow", "unknown flow %q in the bot of channel %q", a.Flow, ch.Name)
				}
			}
		}
		if a.Message != nil {
			c := *a.Message
			for _, f := range contentFields(&c) {
				if err := tpl.Validate(*f.value); err != nil {
					fix(ptr+"/message"+f.pointer, "broken Liquid: %v", err)
				}
			}
			if err := c.Validate(); err != nil {
				fix(ptr+"/message", "%v", err)
			}
		}
		for name, v := range a.Attributes {
			if s, ok := v.(string); ok {
				if err := tpl.Validate(s); err != nil {
					fix(ptr+"/attributes/"+name, "broken Liquid: %v", err)
				}
			}
		}
	}
	return probs, nil
}

// reviewTo checks an action's to: on its channel: its Liquid validates, and
// an address without Liquid is one the channel type can take.
func reviewTo(to string, ch store.Channel, fix func(format string, args ...any), tpl *template.Engine) {
	if err := tpl.Validate(to); err != nil {
		fix("broken Liquid: %v", err)
		return
	}
	if !strings.Contains(to, "{") {
		if err := checkAddress(ch.Type, strings.TrimSpace(to)); err != nil {
			fix("%q on %s channel %q: %v", to, ch.Type, ch.Name, err)
		}
	}
}

// contentField is one templated string of a message.
type contentField struct {
	pointer string
	value   *string
}

// contentFields lists the strings of c that are templates, in a fixed
// order, as pointers into c (which must not share slices with another
// Content being rendered: see cloneContent).
func contentFields(c *message.Content) []contentField {
	out := []contentField{{"/text", &c.Text}}
	button := func(ptr string, b *message.Button) {
		out = append(out, contentField{ptr + "/title", &b.Title}, contentField{ptr + "/payload", &b.Payload},
			contentField{ptr + "/url", &b.URL})
	}
	for i := range c.Buttons {
		button("/buttons/"+strconv.Itoa(i), &c.Buttons[i])
	}
	if c.Media != nil {
		out = append(out, contentField{"/media/url", &c.Media.URL}, contentField{"/media/name", &c.Media.Name})
	}
	for i := range c.Cards {
		card := &c.Cards[i]
		ptr := "/cards/" + strconv.Itoa(i)
		out = append(out, contentField{ptr + "/title", &card.Title}, contentField{ptr + "/subtitle", &card.Subtitle},
			contentField{ptr + "/image_url", &card.ImageURL})
		for j := range card.Buttons {
			button(ptr+"/buttons/"+strconv.Itoa(j), &card.Buttons[j])
		}
	}
	return out
}

// cloneContent copies c deeply enough for contentFields to be written.
func cloneContent(c message.Content) message.Content {
	c.Buttons = append([]message.Button(nil), c.Buttons...)
	if c.Media != nil {
		m := *c.Media
		c.Media = &m
	}
	if c.Cards != nil {
		cards := make([]message.Card, len(c.Cards))
		for i, card := range c.Cards {
			card.Buttons = append([]message.Button(nil), card.Buttons...)
			cards[i] = card
		}
		c.Cards = cards
	}
	return c
}
