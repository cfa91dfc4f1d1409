package audience

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchboard-gw/switchboard/gateway/template"
)

// A message or flow action reaches a person at an address on its channel,
// chosen in this order:
//
//  1. the action's to: template, rendered over customer.* and trigger.*,
//     when it has one (it wins over an identity);
//  2. the person's identity on the channel;
//  3. the channel type's default template (defaultTo): Twilio
//     {{ customer.phone }}, webhook {{ customer.id }}. Slack, Telegram and
//     web chat addresses are platform ids that attributes do not hold, so
//     those types have none and need an identity or a to:.
//
// An address from 1 or 3 is checked for the channel type (a Twilio number
// must be E.164); an empty one skips the person with ReasonNoAddress, a
// malformed one with ReasonInvalidAddress, each with a message naming
// where the value came from.

// defaultTo is, per channel type, the template of the address a person
// without an identity there is reached at, and the name of the value it
// reads (for messages).
var defaultTo = map[string]struct{ src, name string }{
	"twilio":  {"{{ customer.phone }}", "customer.phone"},
	"webhook": {"{{ customer.id }}", "customer.id"},
}

// addressRule is how a plan action finds addresses beyond identities.
type addressRule struct {
	tpl *template.Template // nil: identities only
	// name says where the value comes from in skip messages: "to" or the
	// default's variable.
	name string
	// override is set for an action's own to:, which wins over an
	// identity; a channel default only fills in for a missing one.
	override bool
	chType   string
}

// newAddressRule parses the action's to:, or picks its channel type's
// default.
func newAddressRule(tpl *template.Engine, to, chType string) (addressRule, error) {
	r := addressRule{chType: chType}
	src := to
	if to != "" {
		r.name, r.override = "to", true
	} else if d, ok := defaultTo[chType]; ok {
		src, r.name = d.src, d.name
	} else {
		return r, nil
	}
	t, err := tpl.Parse(src)
	if err != nil {
		return r, fmt.Errorf("to: %w", err)
	}
	r.tpl = t
	return r, nil
}

// addressResult is the address an action reaches a person at, or why it
// does not reach them (reason and msg).
type addressResult struct {
	addr string
	// derived is set when addr came from a template, not an identity:
	// the fan-out then links it to the person.
	derived     bool
	reason, msg string
	// renderErr is a to: that failed to render.
	renderErr error
}

// resolve picks the address of one person given their identity on the
// channel (empty if none).
func (r addressRule) resolve(ctx context.Context, identity string, vars *template.Vars) addressResult {
	if identity != "" && !r.override {
		return addressResult{addr: identity}
	}
	if r.tpl == nil {
		return addressResult{reason: ReasonNoAddress,
			msg: fmt.Sprintf("no identity on this %s channel (set to: on the action to derive the address)", r.chType)}
	}
	s, err := r.tpl.Render(ctx, vars)
	if err != nil {
		return addressResult{renderErr: fmt.Errorf("to: %w", err)}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return addressResult{reason: ReasonNoAddress, msg: r.name + " is empty"}
	}
	if err := checkAddress(r.chType, s); err != nil {
		return addressResult{reason: ReasonInvalidAddress, msg: fmt.Sprintf("%s is %q: %v", r.name, s, err)}
	}
	return addressResult{addr: s, derived: true}
}

// checkAddress tells whether a channel type can send to addr: a Twilio
// number must be E.164; other types take any string of bounded length.
func checkAddress(chType, addr string) error {
	if chType == "twilio" && !isE164(addr) {
		return fmt.Errorf("not an E.164 phone number (+ then 8 to 15 digits, e.g. +15551234567)")
	}
	if len(addr) > maxAddressBytes {
		return fmt.Errorf("longer than %d bytes", maxAddressBytes)
	}
	return nil
}

// maxAddressBytes bounds a rendered address: identities are indexed
// strings, not documents.
const maxAddressBytes = 512

func isE164(s string) bool {
	digits := strings.TrimPrefix(s, "+")
	if len(digits) == len(s) || len(digits) < 8 || len(digits) > 15 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
