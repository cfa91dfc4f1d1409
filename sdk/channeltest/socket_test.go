package channeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// refSocket is a small, correct websocket channel with switches that each
// break one property RunSocket checks. Its frames: {"t":"hello"},
// {"t":"msg","id":…,"text":…}, {"t":"ack","seq":…}; outbound
// {"seq":…,"content":…}.
type refSocket struct {
	refChannel
	breakage string
	frames   int
}

func (s *refSocket) Describe(ctx context.Context) (sdk.Description, error) {
	d, err := s.refChannel.Describe(ctx)
	d.Capabilities.Websocket = s.breakage != "no websocket capability"
	return d, err
}

func (s *refSocket) HandleFrame(_ context.Context, f *sdk.Frame) (*sdk.FrameResult, error) {
	s.frames++
	var in struct {
		T    string `json:"t"`
		ID   string `json:"id"`
		Text string `json:"text"`
		Seq  int64  `json:"seq"`
	}
	if err := json.Unmarshal(f.Data, &in); err != nil || in.T == "" {
		res := &sdk.FrameResult{Replies: [][]byte{[]byte(`{"error":"bad frame"}`)}}
		if s.breakage == "malformed closes" {
			res.Close = &sdk.SocketClose{Code: 1008}
		}
		return res, nil
	}
	if in.T == "hello" {
		if s.breakage == "no session" {
			return &sdk.FrameResult{}, nil
		}
		return &sdk.FrameResult{Start: &sdk.SessionStart{UserID: "u-1"}}, nil
	}
	if f.UserID == "" && s.breakage != "events before session" {
		return &sdk.FrameResult{Replies: [][]byte{[]byte(`{"error":"no session"}`)}}, nil
	}
	if in.T == "ack" {
		return &sdk.FrameResult{AckSeq: in.Seq}, nil
	}
	id := f.UserID + "/" + in.ID
	switch s.breakage {
	case "new id per frame":
		id = strconv.Itoa(s.frames)
	case "ids not scoped to the user":
		id = in.ID
	}
	return &sdk.FrameResult{Events: []sdk.Event{{Type: sdk.EventMessage, ID: id, UserID: f.UserID, Content: message.Text(in.Text)}}}, nil
}

func (s *refSocket) RenderOutbound(_ context.Context, batch []sdk.SequencedOutbound) ([]sdk.RenderedFrame, error) {
	out := make([]sdk.RenderedFrame, len(batch))
	for i, m := range batch {
		if err := m.Content.Validate(); err != nil && s.breakage != "renders invalid content" {
			out[i].Err = sdk.Permanent("invalid_content", err.Error())
			continue
		}
		seq := m.Seq
		if s.breakage == "seq not rendered" {
			seq = 0
		}
		b, _ := json.Marshal(map[string]any{"seq": seq, "content": m.Content})
		out[i].Frame = b
	}
	return out, nil
}

func (s *refSocket) RenderResumeReset(_ context.Context, r sdk.ResumeReset) ([]byte, error) {
	last := r.LastSeq
	if s.breakage == "resume reset without seq" {
		last = 0
	}
	return fmt.Appendf(nil, `{"reset":%d}`, last), nil
}

// legacySocket is refSocket as built against an sdk without
// sdk.ResumeResetter.
type legacySocket struct {
	sdk.Channel
	sdk.SocketChannel
}

func newLegacySocket() legacySocket { s := &refSocket{}; return legacySocket{s, s} }

func refSocketHarness(ch sdk.Channel) SocketHarness {
	h := refHarness(ch)
	return SocketHarness{
		Channel:        ch,
		Config:         func(id string) sdk.InstanceConfig { return h.Config(id, "http://127.0.0.1:1") },
		InvalidConfigs: h.InvalidConfigs,
		Hello:          func() []byte { return []byte(`{"t":"hello"}`) },
		Message: func(id, text string) []byte {
			return fmt.Appendf(nil, `{"t":"msg","id":%q,"text":%q}`, id, text)
		},
		Ack:       func(seq int64) []byte { return fmt.Appendf(nil, `{"t":"ack","seq":%d}`, seq) },
		Malformed: [][]byte{[]byte(`nope`), []byte(`{}`)},
	}
}

func TestRefSocketConforms(t *testing.T) {
	t.Parallel()
	RunSocket(t, refSocketHarness(&refSocket{}))
	t.Run("grpc", func(t *testing.T) { RunSocket(t, refSocketHarness(Serve(t, &refSocket{}))) })
	t.Run("reads the reset", func(t *testing.T) {
		h := refSocketHarness(&refSocket{})
		h.ResumeReset = readReset
		RunSocket(t, h)
	})
}

func readReset(f []byte) (int64, error) {
	var v struct{ Reset int64 }
	err := json.Unmarshal(f, &v)
	return v.Reset, err
}

// TestSocketWithoutResumeResetConforms: a channel written against the
// previous sdk (no sdk.ResumeResetter) still passes, in process and over
// gRPC, unless its harness claims a reset frame.
func TestSocketWithoutResumeResetConforms(t *testing.T) {
	t.Parallel()
	RunSocket(t, refSocketHarness(newLegacySocket()))
	t.Run("grpc", func(t *testing.T) { RunSocket(t, refSocketHarness(Serve(t, newLegacySocket()))) })
	h := refSocketHarness(newLegacySocket())
	h.ResumeReset = readReset
	if failures := runSocketCheck(t, "ResumeFromTheFuture", h); len(failures) == 0 {
		t.Error("a harness reading a reset frame passed a channel that renders none")
	}
}

func TestBrokenSocketsFail(t *testing.T) {
	t.Parallel()
	for breakage, check := range map[string]string{
		"no websocket capability":    "Describe",
		"no session":                 "SessionStart",
		"events before session":      "NothingBeforeSession",
		"new id per frame":           "MessageEvent",
		"ids not scoped to the user": "MessageEvent",
		"malformed closes":           "MalformedKeepsConnection",
		"seq not rendered":           "RenderEveryContentType",
		"renders invalid content":    "RenderRefusesInvalidContent",
		"resume reset without seq":   "ResumeFromTheFuture",
	} {
		t.Run(breakage, func(t *testing.T) {
			t.Parallel()
			for _, ch := range []sdk.Channel{&refSocket{breakage: breakage}, Serve(t, &refSocket{breakage: breakage})} {
				if failures := runSocketCheck(t, check, refSocketHarness(ch)); len(failures) == 0 {
					t.Errorf("check %s passed a %T that %s", check, ch, breakage)
				}
			}
		})
	}
}

func runSocketCheck(t *testing.T, name string, h SocketHarness) []string {
	t.Helper()
	for _, c := range socketChecks {
		if c.name != name {
			continue
		}
		rec := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.fn(rec, h)
		}()
		<-done
		return rec.failed
	}
	t.Fatalf("no check %q", name)
	return nil
}
