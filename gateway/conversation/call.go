package conversation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// CallRequest is the JSON body a call step posts.
type CallRequest struct {
	Type         string         `json:"type"` // "call"
	Bot          CallBot        `json:"bot"`
	Conversation CallPosition   `json:"conversation"`
	Channel      map[string]any `json:"channel"`
	User         map[string]any `json:"user"`
	Event        map[string]any `json:"event"`
	Memory       map[string]any `json:"memory"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

// CallBot names the bot in a CallRequest.
type CallBot struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CallPosition is where the conversation is in a CallRequest.
type CallPosition struct {
	ID   string `json:"id"`
	Flow string `json:"flow"`
	Step string `json:"step"`
}

// CallResponse is what a call step's endpoint may answer (all optional; an
// empty body is fine). Unknown fields are refused, so a misspelt field fails
// loudly instead of being ignored.
type CallResponse struct {
	// Messages are sent in order, before going on.
	Messages []message.Content `json:"messages,omitempty"`
	// Memory is merged into the conversation's memory; null deletes.
	Memory map[string]any `json:"memory,omitempty"`
	// Goto continues at a step ("id" or {"flow": …, "step": …}) instead
	// of the next one.
	Goto *bot.Target `json:"goto,omitempty"`
}

// call runs a call step and returns the next step. A failed call is logged
// and goes to the step's on_error, or sends its error message and carries on.
func (r *run) call(ctx context.Context, s *bot.Step) (*bot.Step, error) {
	resp, err := r.post(ctx, s)
	var next *bot.Step
	if err == nil {
		next, err = r.apply(s, resp)
	}
	if err == nil {
		return next, nil
	}
	r.e.log.WarnContext(ctx, "call step failed", "bot", r.bot.Name, "flow", s.Flow().ID, "step", s.Key(),
		"url", s.Call.URL, "err", err)
	if s.Call.OnError != nil {
		return s.Call.OnError.To(), nil
	}
	return s.Next(), r.say(s.Call.RenderError(ctx, r.vars))
}

// post sends the signed request and decodes the answer.
func (r *run) post(ctx context.Context, s *bot.Step) (*CallResponse, error) {
	body, err := json.Marshal(CallRequest{
		Type:         "call",
		Bot:          CallBot{ID: r.in.BotID, Name: r.bot.Name},
		Conversation: CallPosition{ID: r.convID, Flow: s.Flow().ID, Step: s.Key()},
		Channel:      r.vars.Channel,
		User:         r.vars.User,
		Event:        r.vars.Event,
		Memory:       r.memory,
		Metadata:     r.vars.Metadata,
	})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	wh, err := standardwebhooks.NewWebhook(r.bot.Call.Secret)
	if err != nil {
		return nil, fmt.Errorf("call secret: %w", err)
	}
	// The same event reaching the same step gets the same id, so the
	// endpoint can recognize a repeat after a crash.
	sum := sha256.Sum256([]byte(r.in.EventKey + "\x00" + s.Flow().ID + "\x00" + s.Key() + "\x00" + strconv.Itoa(r.steps)))
	id := "msg_" + hex.EncodeToString(sum[:16])
	// The wall clock, not the engine's: receivers check the timestamp
	// against theirs to refuse replays.
	sent := time.Now()
	sig, err := wh.Sign(id, sent, body)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, s.CallTimeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Call.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Switchboard")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(sent.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	client := r.e.httpsOnly
	if r.bot.Call.AllowHTTP {
		client = r.e.httpToo
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	limit := r.e.opts.Call.MaxResponseBytes
	data, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, fmt.Errorf("answered %s", res.Status)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("answer is larger than %d bytes", limit)
	}
	var out CallResponse
	if len(bytes.TrimSpace(data)) == 0 {
		return &out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("answer is not a valid call response: %w", err)
	}
	return &out, nil
}

// apply checks the whole answer before taking any of it, so that a bad
// answer has no partial effect.
func (r *run) apply(s *bot.Step, resp *CallResponse) (*bot.Step, error) {
	for i, m := range resp.Messages {
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("answer message %d: %w", i, err)
		}
	}
	for k := range resp.Memory {
		if !bot.ValidVarName(k) {
			return nil, fmt.Errorf("answer memory: %q is not a variable name", k)
		}
	}
	next := s.Next()
	if resp.Goto != nil {
		var err error
		if next, err = r.bot.Target(s, *resp.Goto); err != nil {
			return nil, fmt.Errorf("answer goto: %w", err)
		}
	}
	r.out = append(r.out, resp.Messages...)
	r.setMemory(resp.Memory)
	return next, nil
}
