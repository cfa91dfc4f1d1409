package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/broadcast"
	"github.com/switchboard-gw/switchboard/gateway/conversation"
	"github.com/switchboard-gw/switchboard/gateway/inbound"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// MaxMetadataBytes caps a request's metadata object.
const MaxMetadataBytes = 64 << 10

// Broadcasts accepts flow triggers and reports their outcome.
type Broadcasts interface {
	Trigger(ctx context.Context, r broadcast.Request) (store.FlowTrigger, bool, error)
	Result(ctx context.Context, channelID, requestID string) (broadcast.Result, error)
}

// Chat runs one conversation event synchronously.
type Chat interface {
	Handle(ctx context.Context, ev inbound.Event) (conversation.Output, error)
}

// CSMLStore is what the CSML-compatible APIs read.
type CSMLStore interface {
	GetChannel(ctx context.Context, id string) (store.Channel, error)
	GetOpenConversation(ctx context.Context, botID, channelID, userID string) (store.Conversation, error)
	CloseConversation(ctx context.Context, id string, at time.Time) error
	ListConversations(ctx context.Context, f store.ConversationFilter) ([]store.Conversation, error)
	ListMessages(ctx context.Context, conversationID string, afterID int64, limit int) ([]store.Message, error)
	GetDelivery(ctx context.Context, id int64) (store.Delivery, error)
}

// BotLookup gives compiled bots by id.
type BotLookup interface {
	Bot(ctx context.Context, botID string) (*bot.Bot, error)
}

// CSML serves the CSML Studio-compatible bot APIs. Every route takes a
// channel key in x-api-key: the key decides the bot and the channel, and no
// route can reach another channel's data (it is answered 404).
type CSML struct {
	Auth       Authenticator
	Store      CSMLStore
	Bots       BotLookup
	Broadcasts Broadcasts
	Chat       Chat
	// RateLimit is requests per second per key (CSML: 50).
	RateLimit float64
	MaxBody   int64

	limiter *keyLimiter
}

// Routes returns the CSML-compatible routes.
func (c *CSML) Routes() []Route {
	c.limiter = newKeyLimiter(c.RateLimit)
	h := func(f func(w http.ResponseWriter, r *http.Request, ch store.Channel)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.withChannel(w, r, f) })
	}
	return []Route{
		{Pattern: "POST /v1/api/broadcasts", Handler: h(c.postBroadcast)},
		{Pattern: "GET /v1/api/broadcasts/{request_id}", Handler: h(c.getBroadcast)},
		{Pattern: "POST /v1/api/chat", Handler: h(c.postChat)},
		{Pattern: "GET /v1/api/bot", Handler: h(c.getBot)},
		{Pattern: "GET /v1/api/conversations/open", Handler: h(c.getOpenConversation)},
		{Pattern: "POST /v1/api/conversations/close", Handler: h(c.closeConversation)},
		{Pattern: "GET /v1/api/conversations", Handler: h(c.listConversations)},
	}
}

func (c *CSML) withChannel(w http.ResponseWriter, r *http.Request, f func(http.ResponseWriter, *http.Request, store.Channel)) {
	k, ok := requireKey(w, r, c.Auth, c.limiter, r.Header.Get("X-Api-Key"), store.ScopeChannel)
	if !ok {
		return
	}
	ch, err := c.Store.GetChannel(r.Context(), k.ChannelID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !ch.Enabled) {
		WriteErrors(w, Errf(http.StatusNotFound, "channel_not_found", "", "the API key's channel no longer exists or is disabled"))
		return
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	f(w, r, ch)
}

// csmlClient is CSML's client object.
type csmlClient struct {
	UserID    string `json:"user_id"`
	BotID     string `json:"bot_id,omitempty"`
	ChannelID string `json:"channel_id,omitempty"`
}

type flowTriggerContent struct {
	FlowID     string `json:"flow_id"`
	StepID     string `json:"step_id,omitempty"`
	CloseFlows *bool  `json:"close_flows,omitempty"`
}

type broadcastBody struct {
	Payload struct {
		ContentType string             `json:"content_type"`
		Content     flowTriggerContent `json:"content"`
	} `json:"payload"`
	Client   csmlClient      `json:"client"`
	Metadata json.RawMessage `json:"metadata"`
}

// broadcastEcho is the answer to POST /v1/api/broadcasts: the request as
// CSML Studio echoes it, with the generated request_id, the key's bot and
// channel, and close_flows filled in.
type broadcastEcho struct {
	RequestID string     `json:"request_id"`
	Client    csmlClient `json:"client"`
	Payload   struct {
		ContentType string             `json:"content_type"`
		Content     flowTriggerContent `json:"content"`
	} `json:"payload"`
	Metadata json.RawMessage `json:"metadata"`
}

func echo(ft store.FlowTrigger) broadcastEcho {
	var e broadcastEcho
	e.RequestID = ft.RequestID
	e.Client = csmlClient{UserID: ft.UserID, BotID: ft.BotID, ChannelID: ft.ChannelID}
	e.Payload.ContentType = "flow_trigger"
	closeFlows := ft.CloseFlows
	e.Payload.Content = flowTriggerContent{FlowID: ft.FlowID, StepID: ft.StepID, CloseFlows: &closeFlows}
	e.Metadata = ft.Metadata
	if len(e.Metadata) == 0 {
		e.Metadata = json.RawMessage("{}")
	}
	return e
}

// validMetadata checks the metadata member: absent, null or an object of
// at most MaxMetadataBytes.
func validMetadata(raw json.RawMessage) (json.RawMessage, *APIError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}"), nil
	}
	if len(raw) > MaxMetadataBytes {
		return nil, Errf(http.StatusBadRequest, "metadata_too_large", "/metadata", "metadata is %d bytes; the limit is %d", len(raw), MaxMetadataBytes)
	}
	if raw[0] != '{' {
		return nil, Errf(http.StatusBadRequest, "invalid_field", "/metadata", "metadata must be a JSON object")
	}
	return raw, nil
}

func (c *CSML) postBroadcast(w http.ResponseWriter, r *http.Request, ch store.Channel) {
	raw, aerr := readBody(w, r, c.MaxBody)
	if aerr != nil {
		WriteErrors(w, aerr)
		return
	}
	var body broadcastBody
	if aerr := decodeJSON(raw, &body); aerr != nil {
		WriteErrors(w, aerr)
		return
	}
	var errs []*APIError
	if body.Payload.ContentType != "flow_trigger" {
		errs = append(errs, Errf(http.StatusBadRequest, "invalid_field", "/payload/content_type",
			"payload.content_type must be \"flow_trigger\" (the only broadcast type), got %q", body.Payload.ContentType))
	}
	if body.Payload.Content.FlowID == "" {
		errs = append(errs, Errf(http.StatusBadRequest, "missing_field", "/payload/content/flow_id", "payload.content.flow_id is required: the id or name of the flow to start"))
	}
	if body.Client.UserID == "" {
		errs = append(errs, Errf(http.StatusBadRequest, "missing_field", "/client/user_id", "client.user_id is required: the user's id on this channel"))
	}
	meta, merr := validMetadata(body.Metadata)
	if merr != nil {
		errs = append(errs, merr)
	}
	if len(errs) > 0 {
		WriteErrors(w, errs...)
		return
	}
	closeFlows := true // CSML's default
	if body.Payload.Content.CloseFlows != nil {
		closeFlows = *body.Payload.Content.CloseFlows
	}
	sum := sha256.Sum256(raw)
	ft, _, err := c.Broadcasts.Trigger(r.Context(), broadcast.Request{
		Channel: ch, UserID: body.Client.UserID, FlowID: body.Payload.Content.FlowID,
		StepID: body.Payload.Content.StepID, CloseFlows: closeFlows, Metadata: meta,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), BodyHash: sum[:],
	})
	var ufe *broadcast.UnknownFlowError
	var use *broadcast.UnknownStepError
	switch {
	case errors.As(err, &ufe):
		WriteErrors(w, Errf(http.StatusBadRequest, "unknown_flow", "/payload/content/flow_id", "%v", ufe))
		return
	case errors.As(err, &use):
		WriteErrors(w, Errf(http.StatusBadRequest, "unknown_step", "/payload/content/step_id", "%v", use))
		return
	case errors.Is(err, broadcast.ErrIdempotencyConflict):
		WriteErrors(w, Errf(http.StatusConflict, "idempotency_conflict", "", "the Idempotency-Key was already used with a different request body; use a new key for a new request"))
		return
	case err != nil:
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, echo(ft))
}

type deliveryView struct {
	ID          int64      `json:"id"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	Error       string     `json:"error,omitempty"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

func viewDelivery(d store.Delivery) deliveryView {
	return deliveryView{ID: d.ID, Status: string(d.Status), Reason: d.Reason, Error: d.LastError,
		Attempts: d.Attempts, CreatedAt: d.CreatedAt, SentAt: d.SentAt, DeliveredAt: d.DeliveredAt}
}

func (c *CSML) getBroadcast(w http.ResponseWriter, r *http.Request, ch store.Channel) {
	res, err := c.Broadcasts.Result(r.Context(), ch.ID, r.PathValue("request_id"))
	if expired := (*broadcast.ExpiredError)(nil); errors.As(err, &expired) {
		WriteErrors(w, Errf(http.StatusNotFound, "expired", "", "%s", expired.Error()))
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		WriteErrors(w, Errf(http.StatusNotFound, "request_not_found", "", "no broadcast request %q on this channel", r.PathValue("request_id")))
		return
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := struct {
		broadcastEcho
		Status         broadcast.Status `json:"status"`
		Reason         string           `json:"reason,omitempty"`
		Error          string           `json:"error,omitempty"`
		ConversationID string           `json:"conversation_id,omitempty"`
		CreatedAt      time.Time        `json:"created_at"`
		ProcessedAt    *time.Time       `json:"processed_at,omitempty"`
		DeliveredAt    *time.Time       `json:"delivered_at,omitempty"`
		Messages       []deliveryView   `json:"messages"`
	}{
		broadcastEcho: echo(res.Trigger), Status: res.Status, Reason: res.Reason, Error: res.Trigger.Error,
		ConversationID: res.Trigger.ConversationID, CreatedAt: res.Trigger.CreatedAt,
		ProcessedAt: res.Trigger.ProcessedAt, DeliveredAt: res.DeliveredAt, Messages: []deliveryView{},
	}
	for _, d := range res.Messages {
		out.Messages = append(out.Messages, viewDelivery(d))
	}
	WriteJSON(w, http.StatusOK, out)
}

type chatBody struct {
	Client    csmlClient      `json:"client"`
	Metadata  json.RawMessage `json:"metadata"`
	RequestID string          `json:"request_id"`
	Payload   struct {
		ContentType string          `json:"content_type"`
		Content     json.RawMessage `json:"content"`
	} `json:"payload"`
}

// chatEvent maps a CSML chat payload to a conversation event.
func chatEvent(body chatBody) (inbound.Event, *APIError) {
	var content struct {
		Text       string `json:"text"`
		Payload    string `json:"payload"`
		URL        string `json:"url"`
		FlowID     string `json:"flow_id"`
		StepID     string `json:"step_id"`
		CloseFlows bool   `json:"close_flows"`
	}
	if len(body.Payload.Content) > 0 {
		if err := json.Unmarshal(body.Payload.Content, &content); err != nil {
			return inbound.Event{}, Errf(http.StatusBadRequest, "invalid_field", "/payload/content", "payload.content: %v", err)
		}
	}
	missing := func(field string) *APIError {
		return Errf(http.StatusBadRequest, "missing_field", "/payload/content/"+field, "payload.content.%s is required for content_type %q", field, body.Payload.ContentType)
	}
	ev := inbound.Event{Kind: inbound.KindMessage}
	switch ct := body.Payload.ContentType; ct {
	case "text":
		if content.Text == "" {
			return ev, missing("text")
		}
		ev.Content = message.Text(content.Text)
	case "payload":
		if content.Payload == "" {
			return ev, missing("payload")
		}
		ev.Kind, ev.Content = inbound.KindButton, message.Content{Type: message.TypeText, Payload: content.Payload}
	case "image", "video", "audio", "file", "url":
		if content.URL == "" {
			return ev, missing("url")
		}
		t := message.TypeFile
		if ct == "image" {
			t = message.TypeImage
		}
		ev.Content = message.Content{Type: t, Media: &message.Media{URL: content.URL}}
	case "flow_trigger":
		if content.FlowID == "" {
			return ev, missing("flow_id")
		}
		ev.Kind, ev.FlowID, ev.StepID, ev.CloseFlows = inbound.KindFlowTrigger, content.FlowID, content.StepID, content.CloseFlows
	default:
		return ev, Errf(http.StatusBadRequest, "invalid_field", "/payload/content_type",
			"payload.content_type %q is not supported; use text, payload, flow_trigger, image, video, audio, file or url", ct)
	}
	return ev, nil
}

func (c *CSML) postChat(w http.ResponseWriter, r *http.Request, ch store.Channel) {
	raw, aerr := readBody(w, r, c.MaxBody)
	if aerr != nil {
		WriteErrors(w, aerr)
		return
	}
	var body chatBody
	if aerr := decodeJSON(raw, &body); aerr != nil {
		WriteErrors(w, aerr)
		return
	}
	if body.Client.UserID == "" {
		WriteErrors(w, Errf(http.StatusBadRequest, "missing_field", "/client/user_id", "client.user_id is required"))
		return
	}
	meta, merr := validMetadata(body.Metadata)
	if merr != nil {
		WriteErrors(w, merr)
		return
	}
	ev, aerr := chatEvent(body)
	if aerr != nil {
		WriteErrors(w, aerr)
		return
	}
	if body.RequestID == "" {
		body.RequestID = uuid.NewString()
	}
	received := time.Now().UTC()
	ev.WorkspaceID, ev.BotID, ev.ChannelID, ev.UserID = ch.WorkspaceID, ch.BotID, ch.ID, body.Client.UserID
	// A client's request_id makes a retried chat request idempotent.
	ev.EventKey, ev.SourceKind, ev.Received = "chat:"+ch.ID+":"+body.RequestID, "reply", received
	if err := json.Unmarshal(meta, &ev.Metadata); err != nil {
		WriteErrors(w, Errf(http.StatusBadRequest, "invalid_field", "/metadata", "metadata: %v", err))
		return
	}
	out, err := c.Chat.Handle(r.Context(), ev)
	if err != nil {
		if inbound.IsPermanent(err) {
			WriteErrors(w, Errf(http.StatusUnprocessableEntity, "flow_error", "", "the bot could not handle this event: %v", err))
			return
		}
		WriteError(w, r, err)
		return
	}
	type msg struct {
		ConversationID   string      `json:"conversation_id"`
		Direction        string      `json:"direction"`
		InteractionOrder int         `json:"interaction_order"`
		Payload          csmlPayload `json:"payload"`
	}
	resp := struct {
		RequestID       string     `json:"request_id"`
		InteractionID   string     `json:"interaction_id"`
		Client          csmlClient `json:"client"`
		ReceivedAt      time.Time  `json:"received_at"`
		ConversationEnd bool       `json:"conversation_end"`
		Messages        []msg      `json:"messages"`
	}{
		RequestID: body.RequestID, InteractionID: ev.EventKey,
		Client:     csmlClient{UserID: body.Client.UserID, BotID: ch.BotID, ChannelID: ch.ID},
		ReceivedAt: received, ConversationEnd: out.Closed, Messages: []msg{},
	}
	for i, m := range out.Messages {
		resp.Messages = append(resp.Messages, msg{ConversationID: m.ConversationID, Direction: "SEND",
			InteractionOrder: i, Payload: toCSMLPayload(m.Content)})
	}
	WriteJSON(w, http.StatusOK, resp)
}

func (c *CSML) getBot(w http.ResponseWriter, r *http.Request, ch store.Channel) {
	b, err := c.Bots.Bot(r.Context(), ch.BotID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	type flow struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Steps int    `json:"steps"`
	}
	out := struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DefaultFlow string `json:"default_flow"`
		ChannelID   string `json:"channel_id"`
		Flows       []flow `json:"flows"`
	}{ID: ch.BotID, Name: b.Name, DefaultFlow: b.Default().ID, ChannelID: ch.ID}
	for _, f := range b.Flows {
		name := f.Name
		if name == "" {
			name = f.ID
		}
		out.Flows = append(out.Flows, flow{ID: f.ID, Name: name, Steps: len(f.Steps)})
	}
	WriteJSON(w, http.StatusOK, out)
}

type conversationView struct {
	ID                string        `json:"id"`
	UserID            string        `json:"user_id"`
	Status            string        `json:"status"`
	FlowID            string        `json:"flow_id"`
	StepID            string        `json:"step_id"`
	LastInteractionAt time.Time     `json:"last_interaction_at"`
	ExpiresAt         time.Time     `json:"expires_at"`
	CreatedAt         time.Time     `json:"created_at"`
	ClosedAt          *time.Time    `json:"closed_at,omitempty"`
	Messages          []messageView `json:"messages,omitempty"`
}

type messageView struct {
	ID        int64         `json:"id"`
	Direction string        `json:"direction"`
	Payload   csmlPayload   `json:"payload"`
	CreatedAt time.Time     `json:"created_at"`
	Delivery  *deliveryView `json:"delivery,omitempty"`
}

func viewConversation(c store.Conversation) conversationView {
	return conversationView{ID: c.ID, UserID: c.UserID, Status: string(c.Status), FlowID: c.FlowID, StepID: c.StepID,
		LastInteractionAt: c.LastInteractionAt, ExpiresAt: c.ExpiresAt, CreatedAt: c.CreatedAt, ClosedAt: c.ClosedAt}
}

func userIDParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	u := r.URL.Query().Get("user_id")
	if u == "" {
		WriteErrors(w, Errf(http.StatusBadRequest, "missing_field", "/user_id", "the user_id query parameter is required"))
		return "", false
	}
	return u, true
}

func (c *CSML) getOpenConversation(w http.ResponseWriter, r *http.Request, ch store.Channel) {
	user, ok := userIDParam(w, r)
	if !ok {
		return
	}
	conv, err := c.Store.GetOpenConversation(r.Context(), ch.BotID, ch.ID, user)
	if errors.Is(err, store.ErrNotFound) {
		WriteJSON(w, http.StatusOK, nil) // CSML answers null when none is open
		return
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, viewConversation(conv))
}

func (c *CSML) closeConversation(w http.ResponseWriter, r *http.Request, ch store.Channel) {
	raw, aerr := readBody(w, r, c.MaxBody)
	if aerr != nil {
		WriteErrors(w, aerr)
		return
	}
	var body struct {
		UserID string `json:"user_id"`
	}
	if aerr := decodeJSON(raw, &body); aerr != nil {
		WriteErrors(w, aerr)
		return
	}
	if body.UserID == "" {
		WriteErrors(w, Errf(http.StatusBadRequest, "missing_field", "/user_id", "user_id is required"))
		return
	}
	out := struct {
		UserID         string `json:"user_id"`
		Closed         bool   `json:"closed"`
		ConversationID string `json:"conversation_id,omitempty"`
	}{UserID: body.UserID}
	conv, err := c.Store.GetOpenConversation(r.Context(), ch.BotID, ch.ID, body.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		WriteError(w, r, err)
		return
	default:
		if err := c.Store.CloseConversation(r.Context(), conv.ID, time.Now()); err != nil {
			WriteError(w, r, err)
			return
		}
		out.Closed, out.ConversationID = true, conv.ID
	}
	WriteJSON(w, http.StatusOK, out)
}

// History pages: at most this many conversations, and messages per
// conversation.
const (
	maxConversationsPage = 50
	maxMessagesPerConv   = 200
)

func (c *CSML) listConversations(w http.ResponseWriter, r *http.Request, ch store.Channel) {
	user, ok := userIDParam(w, r)
	if !ok {
		return
	}
	limit := 20
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxConversationsPage {
			WriteErrors(w, Errf(http.StatusBadRequest, "invalid_field", "/limit", "limit must be an integer from 1 to %d", maxConversationsPage))
			return
		}
		limit = n
	}
	convs, err := c.Store.ListConversations(r.Context(), store.ConversationFilter{
		ChannelID: ch.ID, UserID: user, Limit: limit + 1, Before: r.URL.Query().Get("before"),
	})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := struct {
		Conversations []conversationView `json:"conversations"`
		Next          string             `json:"next,omitempty"`
	}{Conversations: []conversationView{}}
	if len(convs) > limit {
		convs = convs[:limit]
		out.Next = convs[limit-1].ID
	}
	for _, conv := range convs {
		v := viewConversation(conv)
		msgs, err := c.Store.ListMessages(r.Context(), conv.ID, 0, maxMessagesPerConv)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		v.Messages = []messageView{}
		for _, m := range msgs {
			mv := messageView{ID: m.ID, Direction: map[store.Direction]string{store.Inbound: "RECEIVE", store.Outbound: "SEND"}[m.Direction],
				Payload: toCSMLPayload(m.Content), CreatedAt: m.CreatedAt}
			if m.DeliveryID != 0 {
				if d, err := c.Store.GetDelivery(r.Context(), m.DeliveryID); err == nil {
					dv := viewDelivery(d)
					mv.Delivery = &dv
				}
			}
			v.Messages = append(v.Messages, mv)
		}
		out.Conversations = append(out.Conversations, v)
	}
	WriteJSON(w, http.StatusOK, out)
}
