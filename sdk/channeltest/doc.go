// Package channeltest is the conformance kit for channel plugins. A plugin
// fills in a Harness (how to build its configs, how its platform signs
// webhooks, how its platform's send API answers) and calls Run from its own
// tests; Run checks the behaviour the gateway relies on:
//
//   - Describe is complete and speaks sdk.ProtocolVersion;
//   - Configure accepts a valid config and rejects bad ones with a
//     *sdk.ConfigError naming the bad fields, and so does ValidateConfig
//     where the channel has it (sdk.ConfigValidator);
//   - a correctly signed platform request yields events, and a platform
//     retry of the same event yields the same Event.ID (the gateway dedupes
//     on it);
//   - tampered and stale (replayed) requests are refused with 401/403 and
//     no events;
//   - every content type (text, buttons, image, file, card, carousel,
//     typing) is rendered natively, as the plugin's Capabilities claim, or
//     downgraded to exactly message.Content.TextFallback;
//   - Send returns one result per message, in input order, and keeps
//     per-recipient order;
//   - platform answers are classified: rate limits as KindRateLimited with
//     a RetryAfter, permanent failures as KindPermanent, transient ones as
//     KindTransient.
//
// The same harness runs at three depths: on the plugin's Channel value
// directly; through go-plugin and gRPC inside the test process (Serve); and
// against the built binary (BuildPlugin, then Launch), which is what the
// gateway runs:
//
//	func TestConformance(t *testing.T) {
//		h := harness() // channeltest.Harness{Channel: mychannel.New(), ...}
//		t.Run("in-process", func(t *testing.T) { channeltest.Run(t, h) })
//		t.Run("grpc", func(t *testing.T) {
//			h.Channel = channeltest.Serve(t, mychannel.New())
//			channeltest.Run(t, h)
//		})
//	}
//
// The fake platform is an httptest.Server on loopback; a launched binary
// reaches it like the real platform.
package channeltest
