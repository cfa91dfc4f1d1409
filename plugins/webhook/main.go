// Command webhook is the generic signed-webhook channel plugin. The gateway
// starts it; run by hand it only prints a notice. See package
// plugins/webhook/webhook for the wire format.
//
// SWITCHBOARD_WEBHOOK_RATE_LIMIT (e.g. "100/1s"), passed through the
// gateway's plugin environment, declares a global send rate; by default there
// is none. SWITCHBOARD_ALLOW_INTERNAL_FETCH=true (set by the gateway when
// security.allow_internal_fetch is on) lets channel URLs reach internal
// addresses.
package main

import (
	"os"
	"runtime/debug"

	"github.com/switchboard-gw/switchboard/plugins/webhook/webhook"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/netguard"
)

func main() {
	// Every send allocates its request, body and signature, and the live
	// heap is a few MB: collecting at 200% growth rather than 100% halves
	// the collections. The gateway passes no GOGC to plugins.
	debug.SetGCPercent(200)
	opts := webhook.Options{AllowInternal: netguard.AllowInternalFromEnv(os.Getenv)}
	if s := os.Getenv("SWITCHBOARD_WEBHOOK_RATE_LIMIT"); s != "" {
		rate, err := webhook.ParseRate(s)
		if err != nil {
			sdk.Logger().Error("bad SWITCHBOARD_WEBHOOK_RATE_LIMIT", "error", err)
			os.Exit(1)
		}
		opts.RateLimits.Global = rate
	}
	sdk.Serve(webhook.New(opts))
}
