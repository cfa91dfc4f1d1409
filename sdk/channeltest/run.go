package channeltest

import (
	"testing"
)

// check is one conformance property. Checks take testing.TB so the kit's own
// tests can run them against a recorder and prove they fail on broken
// plugins.
type check struct {
	name string
	fn   func(t testing.TB, h Harness)
}

// checks lists every property Run verifies, in order.
var checks = []check{
	{"Describe", checkDescribe},
	{"ConfigureValid", checkConfigureValid},
	{"ConfigureInvalid", checkConfigureInvalid},
	{"ValidateConfig", checkValidateConfig},
	{"Inbound", checkInbound},
	{"InboundRetrySameID", checkInboundRetry},
	{"BadSignatureRefused", checkBadSignature},
	{"StaleSignatureRefused", checkStaleSignature},
	{"ContentTypes", checkContentTypes},
	{"BatchOrder", checkBatchOrder},
	{"RateLimited", checkRateLimited},
	{"PermanentError", checkPermanent},
	{"TransientError", checkTransient},
}

// Run runs every conformance check as a subtest of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if missing := h.missing(); missing != "" {
		t.Fatalf("channeltest: Harness.%s is required", missing)
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

func (h Harness) missing() string {
	switch {
	case h.Channel == nil:
		return "Channel"
	case h.Config == nil:
		return "Config"
	case len(h.InvalidConfigs) == 0:
		return "InvalidConfigs"
	case h.Inbound == nil:
		return "Inbound"
	case h.Tamper == nil:
		return "Tamper"
	case h.Decode == nil:
		return "Decode"
	case h.Respond == nil:
		return "Respond"
	}
	return ""
}
