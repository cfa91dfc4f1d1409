package assistant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// Limits on client frames beyond what the gateway's read limit enforces.
const (
	maxRequestID = 100
	maxMetadata  = 8 << 10
)

// Close code the connection ends with when a session cannot start
// (RFC 6455 policy violation).
const closePolicy = 1008

// Error codes of error frames.
const (
	codeBadFrame       = "bad_frame"
	codeNoSession      = "no_session"
	codeSessionOpen    = "session_started"
	codeUnauthorized   = "unauthorized"
	codeIdentityNeeded = "identity_required"
)

// clientFrame is every client frame's fields; Type says which apply.
type clientFrame struct {
	Type      string `json:"type"`
	RequestID string `json:"request_id"`
	// hello
	Token    string          `json:"token"`
	LastSeq  int64           `json:"last_seq"`
	Start    bool            `json:"start"`
	Ref      string          `json:"ref"`
	Metadata json.RawMessage `json:"metadata"`
	// message
	Text string `json:"text"`
	// button
	Payload string `json:"payload"`
	Title   string `json:"title"`
	// ack
	Seq int64 `json:"seq"`
}

type welcomeFrame struct {
	Type      string    `json:"type"`
	UserID    string    `json:"user_id"`
	Token     string    `json:"token"`
	Anonymous bool      `json:"anonymous"`
	ExpiresAt time.Time `json:"expires_at"`
}

type receivedFrame struct {
	Type      string `json:"type"`
	RequestID string `json:"request_id"`
}

type messageFrame struct {
	Type    string          `json:"type"`
	Seq     int64           `json:"seq"`
	Content message.Content `json:"content"`
	// Text is Content's plain-text fallback, for clients that render
	// nothing else.
	Text string `json:"text,omitempty"`
}

// resumeResetFrame tells a client that asked to resume after a sequence
// number the gateway never gave out that the session resumes after
// LastSeq: the client counts from there.
type resumeResetFrame struct {
	Type      string `json:"type"`
	LastSeq   int64  `json:"last_seq"`
	Requested int64  `json:"requested"`
}

type errorFrame struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// encode marshals a server frame; the frame types cannot fail to encode.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("assistant: encode %T: %v", v, err))
	}
	return b
}

// reject answers a frame with an error frame, keeping the connection.
func reject(code, requestID, format string, a ...any) *sdk.FrameResult {
	return &sdk.FrameResult{Replies: [][]byte{encode(errorFrame{Type: "error", Code: code,
		Message: fmt.Sprintf(format, a...), RequestID: requestID})}}
}

// refuse answers with an error frame and ends the connection.
func refuse(code, format string, a ...any) *sdk.FrameResult {
	r := reject(code, "", format, a...)
	r.Close = &sdk.SocketClose{Code: closePolicy, Reason: code}
	return r
}

// HandleFrame implements sdk.SocketChannel.
func (c *Channel) HandleFrame(_ context.Context, f *sdk.Frame) (*sdk.FrameResult, error) {
	in, err := c.instance(f.ChannelID)
	if err != nil {
		return nil, err
	}
	var cf clientFrame
	if err := json.Unmarshal(f.Data, &cf); err != nil {
		return reject(codeBadFrame, "", "frame is not a JSON object: %v", err), nil
	}
	now := f.Received
	if now.IsZero() {
		now = c.opts.Now()
	}
	if cf.Type == "hello" {
		if f.UserID != "" {
			return reject(codeSessionOpen, cf.RequestID, "this connection's session has started already"), nil
		}
		return c.hello(in, cf, now), nil
	}
	if f.UserID == "" {
		return reject(codeNoSession, cf.RequestID, "send hello first"), nil
	}
	switch cf.Type {
	case "message":
		return userEvent(f.UserID, cf, now, func() (sdk.EventType, message.Content, error) {
			if strings.TrimSpace(cf.Text) == "" {
				return "", message.Content{}, errors.New("text is required")
			}
			return sdk.EventMessage, message.Text(cf.Text), nil
		}), nil
	case "button":
		return userEvent(f.UserID, cf, now, func() (sdk.EventType, message.Content, error) {
			if cf.Payload == "" {
				return "", message.Content{}, errors.New("payload is required")
			}
			title := cf.Title
			if title == "" {
				title = cf.Payload
			}
			if len(title) > message.MaxButtonTitle || len(cf.Payload) > message.MaxButtonPayload {
				return "", message.Content{}, fmt.Errorf("title or payload too long (limits %d and %d bytes)",
					message.MaxButtonTitle, message.MaxButtonPayload)
			}
			return sdk.EventButton, message.Content{Type: message.TypeText, Text: title, Payload: cf.Payload}, nil
		}), nil
	case "ack":
		if cf.Seq <= 0 {
			return reject(codeBadFrame, "", "ack needs a positive seq"), nil
		}
		return &sdk.FrameResult{AckSeq: cf.Seq}, nil
	}
	return reject(codeBadFrame, cf.RequestID, "unknown frame type %q", cf.Type), nil
}

// userEvent turns a message or button frame into the user's event, answered
// with "received" once the gateway stored it.
func userEvent(userID string, cf clientFrame, now time.Time, build func() (sdk.EventType, message.Content, error)) *sdk.FrameResult {
	if err := checkRequestID(cf.RequestID); err != nil {
		return reject(codeBadFrame, "", "request_id %v", err)
	}
	typ, content, err := build()
	if err == nil {
		err = content.Validate()
	}
	if err != nil {
		return reject(codeBadFrame, cf.RequestID, "%s: %v", cf.Type, err)
	}
	return &sdk.FrameResult{
		// The id is scoped to the user: request ids come from clients,
		// and one client's must never suppress another's message.
		Events:  []sdk.Event{{Type: typ, ID: userID + "/" + cf.RequestID, UserID: userID, Content: content, Time: now}},
		Replies: [][]byte{encode(receivedFrame{Type: "received", RequestID: cf.RequestID})},
	}
}

// hello starts the connection's session: from a token, or anonymously.
func (c *Channel) hello(in *instance, cf clientFrame, now time.Time) *sdk.FrameResult {
	if cf.RequestID != "" {
		if err := checkRequestID(cf.RequestID); err != nil {
			return reject(codeBadFrame, "", "request_id %v", err)
		}
	}
	if cf.LastSeq < 0 {
		return reject(codeBadFrame, cf.RequestID, "last_seq must not be negative")
	}
	var s session
	switch {
	case cf.Token != "":
		var err error
		if s, err = in.verify(cf.Token, now); err != nil {
			return refuse(codeUnauthorized, "%v", err)
		}
	case in.anonymous:
		s = newAnonymous()
	default:
		return refuse(codeIdentityNeeded, "this channel needs an identity token")
	}
	start := &sdk.SessionStart{UserID: s.userID, ResumeAfter: cf.LastSeq, Profile: s.profile}
	if cf.Ref != "" || cf.Start {
		if err := checkMetadata(cf.Metadata); err != nil {
			return reject(codeBadFrame, cf.RequestID, "hello: %v", err)
		}
		if cf.Ref != "" {
			var err error
			if start.FlowID, start.StepID, err = parseRef(cf.Ref); err != nil {
				return reject(codeBadFrame, cf.RequestID, "hello: %v", err)
			}
		}
		requestID := cf.RequestID
		if requestID == "" {
			// Without a client id a retried hello starts again, which is
			// what a client that sends no id asks for.
			requestID = randomID()
		}
		start.StartID = s.userID + "/" + requestID
		if md := bytes.TrimSpace(cf.Metadata); len(md) > 0 && !bytes.Equal(md, []byte("null")) {
			start.Metadata = md
		}
	}
	tok, exp, err := in.issue(s, now)
	if err != nil {
		return refuse(codeUnauthorized, "%v", err)
	}
	res := &sdk.FrameResult{Start: start}
	res.Replies = [][]byte{encode(welcomeFrame{Type: "welcome", UserID: s.userID, Token: tok, Anonymous: s.anonymous, ExpiresAt: exp})}
	return res
}

// parseRef reads a page's ref: "FLOW", "STEP@FLOW" or CSML's
// "target:STEP@FLOW".
func parseRef(ref string) (flow, step string, err error) {
	r := strings.TrimPrefix(ref, "target:")
	if s, f, ok := strings.Cut(r, "@"); ok {
		step, r = s, f
	}
	if r == "" || (step == "" && strings.Contains(ref, "@")) || len(ref) > 200 {
		return "", "", fmt.Errorf("ref %q: want FLOW, STEP@FLOW or target:STEP@FLOW", ref)
	}
	return r, step, nil
}

// checkMetadata accepts nothing, null or a JSON object of bounded size.
func checkMetadata(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if len(raw) > maxMetadata {
		return fmt.Errorf("metadata is over %d bytes", maxMetadata)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return errors.New("metadata must be a JSON object")
	}
	return nil
}

func checkRequestID(id string) error {
	if id == "" || len(id) > maxRequestID {
		return fmt.Errorf("must be 1 to %d bytes", maxRequestID)
	}
	return nil
}

// RenderOutbound implements sdk.SocketChannel: each message becomes a
// "message" frame with its sequence number, its content in the normalized
// model and the content's text fallback.
func (c *Channel) RenderOutbound(_ context.Context, batch []sdk.SequencedOutbound) ([]sdk.RenderedFrame, error) {
	out := make([]sdk.RenderedFrame, len(batch))
	for i, m := range batch {
		if _, err := c.instance(m.ChannelID); err != nil {
			out[i].Err = sdk.Transient("channel_not_configured", err.Error())
			continue
		}
		if err := m.Content.Validate(); err != nil {
			out[i].Err = sdk.Permanent("invalid_content", err.Error())
			continue
		}
		out[i].Frame = encode(messageFrame{Type: "message", Seq: m.Seq, Content: m.Content, Text: m.Content.TextFallback()})
	}
	return out, nil
}

// RenderResumeReset implements sdk.ResumeResetter: a "resume_reset" frame
// with the last sequence number stored for the user.
func (c *Channel) RenderResumeReset(_ context.Context, r sdk.ResumeReset) ([]byte, error) {
	if _, err := c.instance(r.ChannelID); err != nil {
		return nil, err
	}
	return encode(resumeResetFrame{Type: "resume_reset", LastSeq: r.LastSeq, Requested: r.Requested}), nil
}
