package template

import "github.com/osteele/liquid/values"

// Vars are the names a template can read. Every map must hold plain data
// only (string, bool, numbers, nil, []any, map[string]any and the like, as
// decoded from JSON): liquid invokes methods of structs, so a struct here
// would let a template run Go code. A nil map renders as empty.
//
// Liquid copies the bindings it is given, so Vars may be shared by
// concurrent renders as long as nobody writes to the maps meanwhile.
type Vars struct {
	Memory   map[string]any // memory.*: the conversation's variables
	Event    map[string]any // event.text, event.payload, event.type
	Metadata map[string]any // metadata.*: from the Chat or Broadcasts API
	Customer map[string]any // customer.*: the person's attributes
	Trigger  map[string]any // trigger.*: the data of a broadcast trigger
	Channel  map[string]any // channel.id, channel.type
	User     map[string]any // user.id, user.person_id, user.profile.*
}

// Top-level names, and the fixed property names of event, channel and user.
// Validate rejects any other.
var (
	eventNames   = []string{"text", "payload", "type"}
	channelNames = []string{"id", "type"}
	userNames    = []string{"id", "person_id"} // and profile, free-form
)

func (v *Vars) bindings() map[string]any {
	if v == nil {
		return nil
	}
	return map[string]any{
		"memory":   v.Memory,
		"event":    v.Event,
		"metadata": v.Metadata,
		"customer": v.Customer,
		"trigger":  v.Trigger,
		"channel":  v.Channel,
		"user":     v.User,
	}
}

// validationBindings binds every known name for a strict render: the fixed
// ones as nil, the free-form namespaces as anything, which accepts every
// property path.
func validationBindings() map[string]any {
	fixed := func(names []string) map[string]any {
		m := make(map[string]any, len(names))
		for _, n := range names {
			m[n] = nil
		}
		return m
	}
	user := fixed(userNames)
	user["profile"] = anything{}
	return map[string]any{
		"memory":   anything{},
		"event":    fixed(eventNames),
		"metadata": anything{},
		"customer": anything{},
		"trigger":  anything{},
		"channel":  fixed(channelNames),
		"user":     user,
	}
}

// anything is a liquid value with every property and index, each itself
// anything, rendering as nil. Strict mode then accepts memory.a.b[0] while
// still rejecting an unknown top-level name.
type anything struct{}

var _ values.Value = anything{}

func (anything) Interface() any                          { return nil }
func (anything) Int() int                                { return 0 }
func (anything) Equal(o values.Value) bool               { return o.Interface() == nil }
func (anything) Less(values.Value) bool                  { return false }
func (anything) Contains(values.Value) bool              { return false }
func (anything) IndexValue(values.Value) values.Value    { return anything{} }
func (anything) PropertyValue(values.Value) values.Value { return anything{} }
func (anything) Test() bool                              { return false }
