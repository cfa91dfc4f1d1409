package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// SocketChannel is implemented by channels whose users connect to the gateway
// over a websocket (web chat; Capabilities.Websocket). The gateway holds the
// connections, so a plugin restart drops no user, and it keeps the state:
// sessions, sequence numbers, the outbox and what each client acknowledged.
// The plugin owns the protocol: it reads every client frame and renders every
// outbound frame, and says in the normalized model what each frame means.
//
// The rules the gateway keeps for a SocketChannel:
//   - the first frame of a connection must start a session (FrameResult.Start)
//     within a few seconds, or the connection is closed;
//   - a frame's Events are stored before its Replies are written, so a reply
//     acknowledging a client message can be trusted by the client;
//   - every outbound message gets a sequence number, increasing per
//     (channel, user), and is rendered once by RenderOutbound; the stored
//     frame is what the gateway writes to every connection of the user, now
//     and on each resume (SessionStart.ResumeAfter), until the client
//     acknowledges it (FrameResult.AckSeq).
//
// Send is not called for a SocketChannel's messages while the gateway serves
// its websocket.
type SocketChannel interface {
	// HandleFrame interprets one frame a client sent. A frame the plugin
	// cannot read is answered with an error in Replies, not with an error:
	// a returned error ends the connection.
	HandleFrame(ctx context.Context, f *Frame) (*FrameResult, error)
	// RenderOutbound renders messages as frames. It returns exactly one
	// result per input, in input order.
	RenderOutbound(ctx context.Context, batch []SequencedOutbound) ([]RenderedFrame, error)
}

// ResumeResetter is implemented by a SocketChannel whose protocol can tell a
// client that it asked to resume after a sequence number the gateway never
// gave out (a client that kept its state across a database reset, or a
// bug). The gateway then resumes the session after the last number it did
// give out, and writes this frame after the Replies of the session's start
// and before any message, so the client can count from there. Without it,
// the gateway resumes such a session the same way but cannot tell the
// client, which may then take the next messages for ones it has.
type ResumeResetter interface {
	RenderResumeReset(ctx context.Context, r ResumeReset) ([]byte, error)
}

// ResumeReset says a session resumes after LastSeq, not after Requested.
type ResumeReset struct {
	ChannelID string
	UserID    string
	// Requested is the sequence number the client asked to resume after,
	// greater than LastSeq.
	Requested int64
	// LastSeq is the last sequence number given out for the user (0: none
	// yet). The next message's is greater.
	LastSeq int64
}

// SecretSessionKey names the secret the gateway adds to the
// InstanceConfig.Secrets of every channel of a websocket plugin: a key of at
// least 32 bytes, derived per channel from the gateway's secret_key, for
// signing the session tokens the plugin issues. It stays the same across
// plugin and gateway restarts while secret_key does.
const SecretSessionKey = "session_key"

// ErrNotSupported is wrapped by the errors of optional calls a plugin does not
// implement (it answered codes.Unimplemented).
var ErrNotSupported = errors.New("not supported by the channel plugin")

// Frame is one message a client sent over its websocket.
type Frame struct {
	ChannelID string
	// UserID is the session's user, "" until a frame of this connection
	// started a session.
	UserID string
	Data   []byte
	// Received is when the gateway read the frame.
	Received time.Time
}

// FrameResult is what a frame means and what to answer.
type FrameResult struct {
	// Replies are written back to this connection only, in order, after
	// Events are stored.
	Replies [][]byte
	// Events are the user's messages and clicks. The gateway sets their
	// UserID to the session's user.
	Events []Event
	// Start is set when the frame started or resumed a session.
	Start *SessionStart
	// AckSeq acknowledges every outbound message up to and including this
	// sequence number; 0 acknowledges nothing.
	AckSeq int64
	// Close ends the connection after Replies are written.
	Close *SocketClose
}

// SessionStart opens a session for a connection.
type SessionStart struct {
	UserID string
	// ResumeAfter is the last sequence number the client has; the gateway
	// writes every later message of the user before anything newer.
	ResumeAfter int64
	// StartID, when set, starts a conversation for the user, once per
	// StartID (like Event.ID): the flow FlowID (a web page's ?ref=), at
	// StepID if set, as a flow_trigger; without FlowID, the bot's default
	// flow unless a conversation is open (like EventConversationStart).
	// Metadata, a JSON object, becomes the flow's metadata.
	StartID  string
	FlowID   string
	StepID   string
	Metadata json.RawMessage
	// Profile is what the session's token says about the user (e.g. name,
	// email). The gateway adds it to the session's events that carry no
	// Profile of their own.
	Profile map[string]string
}

// SocketClose ends a connection with a websocket close code (RFC 6455,
// e.g. 1008 policy violation) and a short reason.
type SocketClose struct {
	Code   int
	Reason string
}

// SequencedOutbound is an outbound message with the sequence number the
// gateway gave it. Sequence numbers increase per (channel, recipient); they
// may skip values.
type SequencedOutbound struct {
	Outbound
	Seq int64
}

// RenderedFrame is the frame of one SequencedOutbound, or why the message
// cannot be rendered (a *SendError; a KindPermanent one fails the delivery).
type RenderedFrame struct {
	Frame []byte
	Err   error
}
