package channeltest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// SocketHarness describes a websocket channel (Capabilities.Websocket, an
// sdk.SocketChannel such as web chat) for RunSocket. Such a channel has no
// platform webhook or send API: the gateway holds its clients' websockets
// and passes their frames to HandleFrame, and renders outbound messages
// with RenderOutbound. Every field is required except ResumeReset.
type SocketHarness struct {
	// Channel is the channel under test (the plugin's own value, or one
	// returned by Serve or Launch); it must implement sdk.SocketChannel.
	Channel sdk.Channel
	// Config returns a valid configuration for instance channelID.
	Config func(channelID string) sdk.InstanceConfig
	// InvalidConfigs must each be refused with a *sdk.ConfigError naming
	// at least the listed fields. At least one is required.
	InvalidConfigs []InvalidConfig
	// Hello returns a frame that starts a session on a new connection.
	Hello func() []byte
	// Message returns a frame in which the user writes text; requestID is
	// the client's id of the message, the same when the client resends it.
	Message func(requestID, text string) []byte
	// Ack returns a frame acknowledging every message up to seq.
	Ack func(seq int64) []byte
	// Malformed are frames the channel must answer with an error reply,
	// keeping the connection. At least one is required.
	Malformed [][]byte
	// ResumeReset, optional, reads the frame the channel renders for a
	// client that resumes beyond the last sequence number
	// (sdk.ResumeResetter) and returns the number it tells the client to
	// count from. Set, the kit checks the frame carries the right one;
	// unset, only that the frame changes with it. A channel that renders
	// no such frame (built against an earlier sdk) skips the check unless
	// ResumeReset is set.
	ResumeReset func(frame []byte) (lastSeq int64, err error)
}

// socketChecks lists every property RunSocket verifies, in order.
var socketChecks = []struct {
	name string
	fn   func(t testing.TB, h SocketHarness)
}{
	{"Describe", checkSocketDescribe},
	{"ConfigureValid", func(t testing.TB, h SocketHarness) { checkConfigureValid(t, h.harness()) }},
	{"ConfigureInvalid", func(t testing.TB, h SocketHarness) { checkConfigureInvalid(t, h.harness()) }},
	{"ValidateConfig", func(t testing.TB, h SocketHarness) { checkValidateConfig(t, h.harness()) }},
	{"SessionStart", checkSessionStart},
	{"NothingBeforeSession", checkNothingBeforeSession},
	{"MessageEvent", checkMessageEvent},
	{"Ack", checkAck},
	{"MalformedKeepsConnection", checkMalformed},
	{"RenderEveryContentType", checkRender},
	{"RenderRefusesInvalidContent", checkRenderInvalid},
	{"ResumeFromTheFuture", checkResumeReset},
}

// RunSocket runs every websocket conformance check as a subtest of t:
//
//   - Describe is complete and claims Capabilities.Websocket;
//   - Configure accepts a valid config and refuses bad ones field by field;
//   - a hello frame starts a session for a user;
//   - before a session, a frame means nothing (no events, no ack);
//   - a message frame is one message event of the session's user whose ID
//     is the same when the client resends the frame, and differs for
//     another message or another user (the gateway dedupes on it);
//   - an ack frame acknowledges its sequence number;
//   - a malformed frame gets an error reply, and the connection stays;
//   - every content type renders to a frame that carries its sequence
//     number, and invalid content is a permanent error;
//   - a resume beyond the last sequence number given out renders a frame
//     telling the client the last one (skipped for a channel without
//     sdk.ResumeResetter, unless SocketHarness.ResumeReset is set).
func RunSocket(t *testing.T, h SocketHarness) {
	t.Helper()
	if missing := h.missing(); missing != "" {
		t.Fatalf("channeltest: SocketHarness.%s is required", missing)
	}
	for _, c := range socketChecks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

func (h SocketHarness) missing() string {
	switch {
	case h.Channel == nil:
		return "Channel"
	case h.Config == nil:
		return "Config"
	case len(h.InvalidConfigs) == 0:
		return "InvalidConfigs"
	case h.Hello == nil:
		return "Hello"
	case h.Message == nil:
		return "Message"
	case h.Ack == nil:
		return "Ack"
	case len(h.Malformed) == 0:
		return "Malformed"
	}
	return ""
}

// harness adapts h to the checks shared with Run.
func (h SocketHarness) harness() Harness {
	return Harness{
		Channel:        h.Channel,
		Config:         func(channelID, _ string) sdk.InstanceConfig { return h.Config(channelID) },
		InvalidConfigs: h.InvalidConfigs,
	}
}

// socket configures a fresh instance and returns its id and the channel.
func (h SocketHarness) socket(t testing.TB, name string) (string, sdk.SocketChannel) {
	t.Helper()
	sc, ok := h.Channel.(sdk.SocketChannel)
	if !ok {
		t.Fatalf("%T is not an sdk.SocketChannel", h.Channel)
	}
	cfg := h.Config("ct-" + name)
	if err := h.Channel.Configure(t.Context(), cfg); err != nil {
		t.Fatalf("Configure(valid config): %v", err)
	}
	return cfg.ChannelID, sc
}

func handleFrame(t testing.TB, sc sdk.SocketChannel, channelID, userID string, data []byte) *sdk.FrameResult {
	t.Helper()
	res, err := sc.HandleFrame(t.Context(), &sdk.Frame{ChannelID: channelID, UserID: userID, Data: data})
	if err != nil {
		t.Fatalf("HandleFrame(%s): %v (answer bad frames with a reply instead)", data, err)
	}
	if res == nil {
		t.Fatalf("HandleFrame(%s) returned no result", data)
	}
	return res
}

func checkSocketDescribe(t testing.TB, h SocketHarness) {
	checkDescribe(t, h.harness())
	if d, err := h.Channel.Describe(t.Context()); err == nil && !d.Capabilities.Websocket {
		t.Errorf("Describe: Capabilities.Websocket is false; the gateway serves no websocket for the channel")
	}
}

func checkSessionStart(t testing.TB, h SocketHarness) {
	id, sc := h.socket(t, "hello")
	res := handleFrame(t, sc, id, "", h.Hello())
	if res.Start == nil || res.Start.UserID == "" {
		t.Fatalf("hello started no session: %+v", res)
	}
	if res.Close != nil {
		t.Errorf("hello closed the connection: %+v", res.Close)
	}
}

func checkNothingBeforeSession(t testing.TB, h SocketHarness) {
	id, sc := h.socket(t, "nosession")
	for _, data := range [][]byte{h.Message("req-1", "hello"), h.Ack(3)} {
		if res := handleFrame(t, sc, id, "", data); len(res.Events) > 0 || res.AckSeq != 0 || res.Start != nil {
			t.Errorf("before a session, %s meant %+v; want nothing", data, res)
		}
	}
}

// oneEvent returns the single message event of res.
func oneEvent(t testing.TB, res *sdk.FrameResult, userID, text string) sdk.Event {
	t.Helper()
	if len(res.Events) != 1 {
		t.Fatalf("message frame produced %d events, want 1", len(res.Events))
	}
	ev := res.Events[0]
	if ev.Type != sdk.EventMessage || ev.Content.Text != text || ev.ID == "" || (ev.UserID != "" && ev.UserID != userID) {
		t.Fatalf("event = {Type:%q ID:%q UserID:%q Text:%q}, want a message of %q saying %q with an ID",
			ev.Type, ev.ID, ev.UserID, ev.Content.Text, userID, text)
	}
	return ev
}

func checkMessageEvent(t testing.TB, h SocketHarness) {
	id, sc := h.socket(t, "message")
	a := oneEvent(t, handleFrame(t, sc, id, "user-1", h.Message("req-1", "hello")), "user-1", "hello")
	if again := oneEvent(t, handleFrame(t, sc, id, "user-1", h.Message("req-1", "hello")), "user-1", "hello"); again.ID != a.ID {
		t.Errorf("a resent message got Event.ID %q then %q; the gateway dedupes on it", a.ID, again.ID)
	}
	if other := oneEvent(t, handleFrame(t, sc, id, "user-1", h.Message("req-2", "hello")), "user-1", "hello"); other.ID == a.ID {
		t.Errorf("two messages share Event.ID %q; the second would be dropped", a.ID)
	}
	if b := oneEvent(t, handleFrame(t, sc, id, "user-2", h.Message("req-1", "hello")), "user-2", "hello"); b.ID == a.ID {
		t.Errorf("two users' messages with the same client id share Event.ID %q: one user could suppress another's message", a.ID)
	}
}

func checkAck(t testing.TB, h SocketHarness) {
	id, sc := h.socket(t, "ack")
	if res := handleFrame(t, sc, id, "user-1", h.Ack(7)); res.AckSeq != 7 || len(res.Events) > 0 {
		t.Errorf("ack of 7 meant %+v; want AckSeq 7 and no events", res)
	}
}

func checkMalformed(t testing.TB, h SocketHarness) {
	id, sc := h.socket(t, "malformed")
	for _, data := range h.Malformed {
		res := handleFrame(t, sc, id, "user-1", data)
		if len(res.Events) > 0 || res.Start != nil || res.AckSeq != 0 {
			t.Errorf("malformed frame %q meant %+v; want nothing", data, res)
		}
		if res.Close != nil {
			t.Errorf("malformed frame %q closed the connection; answer it and keep it", data)
		}
		if len(res.Replies) == 0 {
			t.Errorf("malformed frame %q got no reply; tell the client what was wrong", data)
		}
	}
}

func checkRender(t testing.TB, h SocketHarness) {
	id, sc := h.socket(t, "render")
	contents := samples()
	batch := make([]sdk.SequencedOutbound, 0, len(contents)+1)
	for i, c := range contents {
		batch = append(batch, sdk.SequencedOutbound{Seq: int64(i + 1),
			Outbound: sdk.Outbound{ChannelID: id, IdempotencyKey: "k-" + string(c.Type), Recipient: "user-1", Content: c, Attempt: 1}})
	}
	// The first message again under another number.
	again := batch[0]
	again.Seq = int64(len(contents) + 1)
	batch = append(batch, again)
	frames, err := sc.RenderOutbound(t.Context(), batch)
	if err != nil {
		t.Fatalf("RenderOutbound: %v", err)
	}
	if len(frames) != len(batch) {
		t.Fatalf("RenderOutbound returned %d frames for %d messages", len(frames), len(batch))
	}
	for i, f := range frames {
		if f.Err != nil || len(f.Frame) == 0 {
			t.Errorf("%s message: frame %q, error %v; want a frame", batch[i].Content.Type, f.Frame, f.Err)
		}
	}
	if bytes.Equal(frames[0].Frame, frames[len(frames)-1].Frame) {
		t.Errorf("one message rendered under sequence numbers 1 and %d gives the same frame; a resuming client needs the number", again.Seq)
	}
}

func checkRenderInvalid(t testing.TB, h SocketHarness) {
	id, sc := h.socket(t, "invalid")
	frames, err := sc.RenderOutbound(t.Context(), []sdk.SequencedOutbound{{Seq: 1,
		Outbound: sdk.Outbound{ChannelID: id, IdempotencyKey: "k", Recipient: "user-1", Content: message.Content{Type: message.TypeImage}}}})
	if err != nil {
		t.Fatalf("RenderOutbound: %v (report bad content per message)", err)
	}
	if len(frames) != 1 || sdk.KindOf(frames[0].Err) != sdk.KindPermanent {
		t.Errorf("an image without media rendered as %+v; want a permanent error", frames)
	}
}

func checkResumeReset(t testing.TB, h SocketHarness) {
	id, sc := h.socket(t, "resume")
	rr, ok := sc.(sdk.ResumeResetter)
	render := func(last int64) []byte {
		t.Helper()
		f, err := rr.RenderResumeReset(t.Context(), sdk.ResumeReset{ChannelID: id, UserID: "user-1", Requested: 1000, LastSeq: last})
		if errors.Is(err, sdk.ErrNotSupported) {
			ok = false
			return nil
		}
		if err != nil || len(f) == 0 {
			t.Fatalf("RenderResumeReset(last %d): frame %q, error %v; want a frame", last, f, err)
		}
		return f
	}
	var five, zero []byte
	if ok {
		five = render(5)
	}
	if !ok {
		if h.ResumeReset != nil {
			t.Fatalf("%T renders no resume reset (sdk.ResumeResetter), though SocketHarness.ResumeReset reads one", h.Channel)
		}
		t.Skip("the channel renders no resume reset: the gateway resumes such a client after the last sequence number without telling it")
	}
	zero = render(0)
	if h.ResumeReset == nil {
		if bytes.Equal(five, zero) {
			t.Errorf("resume resets to 5 and to 0 render the same frame %q; the client needs the number to count from", five)
		}
		return
	}
	for want, f := range map[int64][]byte{5: five, 0: zero} {
		if got, err := h.ResumeReset(f); err != nil || got != want {
			t.Errorf("resume reset to %d rendered %q, read as %d (error %v)", want, f, got, err)
		}
	}
}
