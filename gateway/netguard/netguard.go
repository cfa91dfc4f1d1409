// Package netguard is the gateway's SSRF guard for user-supplied URLs (bot
// call steps, data file fetches). The address rules live in sdk/netguard, so
// that out-of-process plugins that fetch tenant URLs (the webhook channel)
// apply exactly the same ones; this package keeps the gateway's callers on
// one import path.
package netguard

import "github.com/switchboard-gw/switchboard/sdk/netguard"

// Options say what may be reached; see sdk/netguard.Options.
type Options = netguard.Options

// ErrForbidden is wrapped by every refusal.
var ErrForbidden = netguard.ErrForbidden

// EnvAllowInternal passes security.allow_internal_fetch on to plugins that
// fetch tenant URLs themselves (the webhook channel).
const EnvAllowInternal = netguard.EnvAllowInternal
