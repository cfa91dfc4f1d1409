package grpcplugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// plainChannel is a channel without a websocket protocol.
type plainChannel struct{}

func (plainChannel) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "plain", Version: "1", ProtocolVersion: sdk.ProtocolVersion}, nil
}
func (plainChannel) Configure(context.Context, sdk.InstanceConfig) error { return nil }
func (plainChannel) HandleHTTP(context.Context, *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	return &sdk.HTTPResponse{Status: 404}, nil
}
func (plainChannel) Send(_ context.Context, b []sdk.Outbound) ([]sdk.SendResult, error) {
	return make([]sdk.SendResult, len(b)), nil
}

// socketChannel records what it was given and answers with scripted values.
type socketChannel struct {
	plainChannel
	gotFrame  *sdk.Frame
	result    *sdk.FrameResult
	gotRender []sdk.SequencedOutbound
	frames    []sdk.RenderedFrame
}

func (s *socketChannel) HandleFrame(_ context.Context, f *sdk.Frame) (*sdk.FrameResult, error) {
	s.gotFrame = f
	return s.result, nil
}

func (s *socketChannel) RenderOutbound(_ context.Context, b []sdk.SequencedOutbound) ([]sdk.RenderedFrame, error) {
	s.gotRender = b
	return s.frames, nil
}

func TestSocketCallsCrossTheWire(t *testing.T) {
	received := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	impl := &socketChannel{
		result: &sdk.FrameResult{
			Replies: [][]byte{[]byte(`{"type":"ack"}`), []byte(`{"type":"welcome"}`)},
			Events: []sdk.Event{{Type: sdk.EventMessage, ID: "u1/r1", UserID: "u1", Content: message.Text("hi"),
				Profile: map[string]string{"name": "Ann"}}},
			Start: &sdk.SessionStart{UserID: "u1", ResumeAfter: 41, FlowID: "welcome", StepID: "menu",
				Metadata: json.RawMessage(`{"a":1}`), StartID: "s1", Profile: map[string]string{"email": "a@example.com"}},
			AckSeq: 40,
			Close:  &sdk.SocketClose{Code: 1008, Reason: "bye"},
		},
		frames: []sdk.RenderedFrame{{Frame: []byte(`{"seq":7}`)}, {Err: sdk.Permanent("invalid_content", "no")}},
	}
	ch := channeltest.Serve(t, impl).(sdk.SocketChannel)

	res, err := ch.HandleFrame(t.Context(), &sdk.Frame{ChannelID: "c1", UserID: "u1", Data: []byte(`{"type":"hello"}`), Received: received})
	if err != nil {
		t.Fatal(err)
	}
	want := &sdk.Frame{ChannelID: "c1", UserID: "u1", Data: []byte(`{"type":"hello"}`), Received: received}
	if !reflect.DeepEqual(impl.gotFrame, want) {
		t.Errorf("plugin got %+v, want %+v", impl.gotFrame, want)
	}
	if !reflect.DeepEqual(res, impl.result) {
		t.Errorf("gateway got %+v\nwant %+v", res, impl.result)
	}

	batch := []sdk.SequencedOutbound{
		{Outbound: sdk.Outbound{ChannelID: "c1", IdempotencyKey: "k1", Recipient: "u1", Content: message.Text("a"), Attempt: 1}, Seq: 7},
		{Outbound: sdk.Outbound{ChannelID: "c1", IdempotencyKey: "k2", Recipient: "u1", Content: message.Text("b"), Attempt: 2}, Seq: 8},
	}
	frames, err := ch.RenderOutbound(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(impl.gotRender, batch) {
		t.Errorf("plugin got %+v, want %+v", impl.gotRender, batch)
	}
	if string(frames[0].Frame) != `{"seq":7}` || frames[0].Err != nil {
		t.Errorf("frame 0 = %+v", frames[0])
	}
	if sdk.KindOf(frames[1].Err) != sdk.KindPermanent || !strings.Contains(frames[1].Err.Error(), "invalid_content") {
		t.Errorf("frame 1 error = %v, want the permanent invalid_content error", frames[1].Err)
	}

	impl.frames = impl.frames[:1]
	if _, err := ch.RenderOutbound(t.Context(), batch); err == nil {
		t.Error("RenderOutbound accepted 1 frame for 2 messages")
	}
}

func TestSocketCallsOfAPlainChannelAreNotSupported(t *testing.T) {
	ch := channeltest.Serve(t, plainChannel{}).(sdk.SocketChannel)
	if _, err := ch.HandleFrame(t.Context(), &sdk.Frame{ChannelID: "c1"}); !errors.Is(err, sdk.ErrNotSupported) {
		t.Errorf("HandleFrame error = %v, want sdk.ErrNotSupported", err)
	}
	if _, err := ch.RenderOutbound(t.Context(), nil); !errors.Is(err, sdk.ErrNotSupported) {
		t.Errorf("RenderOutbound error = %v, want sdk.ErrNotSupported", err)
	}
}
