package sdk

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-gw/switchboard/sdk/internal/convert"
	channelv1 "github.com/switchboard-gw/switchboard/sdk/proto/channel/v1"
)

// errNoSocket answers the socket calls of a channel that is no
// SocketChannel: Unimplemented is how the protocol says "capability absent".
var errNoSocket = status.Error(codes.Unimplemented, "channel has no websocket protocol")

func (s *channelServer) HandleFrame(ctx context.Context, req *channelv1.HandleFrameRequest) (*channelv1.HandleFrameResponse, error) {
	sc, ok := s.impl.(SocketChannel)
	if !ok {
		return nil, errNoSocket
	}
	res, err := sc.HandleFrame(ctx, &Frame{
		ChannelID: req.GetChannelId(),
		UserID:    req.GetUserId(),
		Data:      req.GetFrame(),
		Received:  convert.TimeFromProto(req.GetReceived()),
	})
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, errors.New("channel returned no frame result")
	}
	out := &channelv1.HandleFrameResponse{Replies: res.Replies, AckSeq: res.AckSeq}
	for _, ev := range res.Events {
		out.Events = append(out.Events, eventToProto(ev))
	}
	if st := res.Start; st != nil {
		out.Start = &channelv1.SessionStart{
			UserId:      st.UserID,
			ResumeAfter: st.ResumeAfter,
			FlowId:      st.FlowID,
			StepId:      st.StepID,
			Metadata:    st.Metadata,
			StartId:     st.StartID,
			Profile:     st.Profile,
		}
	}
	if c := res.Close; c != nil {
		out.Close = &channelv1.SocketClose{Code: int32(c.Code), Reason: c.Reason}
	}
	return out, nil
}

func (s *channelServer) RenderOutbound(ctx context.Context, req *channelv1.RenderOutboundRequest) (*channelv1.RenderOutboundResponse, error) {
	sc, ok := s.impl.(SocketChannel)
	if !ok {
		return nil, errNoSocket
	}
	batch := make([]SequencedOutbound, len(req.GetMessages()))
	for i, m := range req.GetMessages() {
		batch[i] = SequencedOutbound{Outbound: outboundFromProto(m.GetMessage()), Seq: m.GetSeq()}
	}
	frames, err := sc.RenderOutbound(ctx, batch)
	if err != nil {
		return nil, err
	}
	// Passed on as returned, like Send's results: the gateway side rejects
	// a mismatched count.
	out := &channelv1.RenderOutboundResponse{Frames: make([]*channelv1.RenderedFrame, len(frames))}
	for i, f := range frames {
		out.Frames[i] = &channelv1.RenderedFrame{Frame: f.Frame, Error: sendErrorToProto(f.Err)}
	}
	return out, nil
}

func (s *channelServer) RenderResumeReset(ctx context.Context, req *channelv1.RenderResumeResetRequest) (*channelv1.RenderResumeResetResponse, error) {
	rr, ok := s.impl.(ResumeResetter)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "channel renders no resume reset")
	}
	frame, err := rr.RenderResumeReset(ctx, ResumeReset{
		ChannelID: req.GetChannelId(),
		UserID:    req.GetUserId(),
		Requested: req.GetRequested(),
		LastSeq:   req.GetLastSeq(),
	})
	if err != nil {
		return nil, err
	}
	return &channelv1.RenderResumeResetResponse{Frame: frame}, nil
}
