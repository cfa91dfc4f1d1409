// Package convert translates between the generated protocol types and the
// SDK's message model, plus the small value types (headers, times,
// durations) both ends share.
//
// Conversions of the sdk package's own structs (Description, Outbound,
// SendResult, ...) cannot live here: sdk.Serve needs them, and this package
// importing sdk while sdk imports it would be a cycle. Each of those has
// exactly one direction per side: the plugin side (sdk/grpc_server.go)
// decodes requests and encodes responses, the gateway side
// (sdk/grpcplugin) does the reverse.
package convert

import (
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-gw/switchboard/sdk/message"
	channelv1 "github.com/switchboard-gw/switchboard/sdk/proto/channel/v1"
)

// ContentToProto encodes c.
func ContentToProto(c message.Content) *channelv1.Content {
	pc := &channelv1.Content{
		Type:         string(c.Type),
		Text:         c.Text,
		QuickReplies: c.QuickReplies,
		Buttons:      buttonsToProto(c.Buttons),
		DurationMs:   int32(c.DurationMS),
		Payload:      c.Payload,
		Metadata:     c.Metadata,
	}
	if c.Media != nil {
		pc.Media = &channelv1.Media{Url: c.Media.URL, Name: c.Media.Name, MimeType: c.Media.MimeType}
	}
	if len(c.Cards) > 0 {
		pc.Cards = make([]*channelv1.Card, len(c.Cards))
		for i, card := range c.Cards {
			pc.Cards[i] = &channelv1.Card{
				Title:    card.Title,
				Subtitle: card.Subtitle,
				ImageUrl: card.ImageURL,
				Buttons:  buttonsToProto(card.Buttons),
			}
		}
	}
	return pc
}

// ContentFromProto decodes pc; nil decodes to the zero Content.
func ContentFromProto(pc *channelv1.Content) message.Content {
	if pc == nil {
		return message.Content{}
	}
	c := message.Content{
		Type:         message.Type(pc.GetType()),
		Text:         pc.GetText(),
		QuickReplies: pc.GetQuickReplies(),
		Buttons:      buttonsFromProto(pc.GetButtons()),
		DurationMS:   int(pc.GetDurationMs()),
		Payload:      pc.GetPayload(),
		Metadata:     pc.GetMetadata(),
	}
	if m := pc.GetMedia(); m != nil {
		c.Media = &message.Media{URL: m.GetUrl(), Name: m.GetName(), MimeType: m.GetMimeType()}
	}
	if len(pc.GetCards()) > 0 {
		c.Cards = make([]message.Card, len(pc.GetCards()))
		for i, card := range pc.GetCards() {
			c.Cards[i] = message.Card{
				Title:    card.GetTitle(),
				Subtitle: card.GetSubtitle(),
				ImageURL: card.GetImageUrl(),
				Buttons:  buttonsFromProto(card.GetButtons()),
			}
		}
	}
	return c
}

func buttonsToProto(bs []message.Button) []*channelv1.Button {
	if len(bs) == 0 {
		return nil
	}
	out := make([]*channelv1.Button, len(bs))
	for i, b := range bs {
		out[i] = &channelv1.Button{Title: b.Title, Payload: b.Payload, Url: b.URL}
	}
	return out
}

func buttonsFromProto(bs []*channelv1.Button) []message.Button {
	if len(bs) == 0 {
		return nil
	}
	out := make([]message.Button, len(bs))
	for i, b := range bs {
		out[i] = message.Button{Title: b.GetTitle(), Payload: b.GetPayload(), URL: b.GetUrl()}
	}
	return out
}

// HeaderToProto encodes h, keeping repeated values.
func HeaderToProto(h http.Header) map[string]*channelv1.HeaderValues {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]*channelv1.HeaderValues, len(h))
	for k, vs := range h {
		out[k] = &channelv1.HeaderValues{Values: vs}
	}
	return out
}

// HeaderFromProto decodes h. Keys are canonicalised so Header.Get works
// whatever the other end sent.
func HeaderFromProto(h map[string]*channelv1.HeaderValues) http.Header {
	if len(h) == 0 {
		return http.Header{}
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		out[ck] = append(out[ck], vs.GetValues()...)
	}
	return out
}

// TimeToProto encodes t; the zero time (unknown) is sent as unset.
func TimeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// TimeFromProto decodes ts; unset decodes to the zero time.
func TimeFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// DurationToProto encodes d; zero is sent as unset.
func DurationToProto(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// DurationFromProto decodes d; unset decodes to zero.
func DurationFromProto(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}
