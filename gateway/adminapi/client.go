package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/httpapi"
)

// Client calls a running gateway's admin API. Its errors are the
// gateway's: an *httpapi.APIError carries the answer's status, code and
// message.
type Client struct {
	// BaseURL is the gateway, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Key is an admin key, or an operator key (which then needs
	// Workspace on workspace routes).
	Key string
	// Workspace is sent as ?workspace= when set: an operator key names
	// the workspace it acts in this way.
	Workspace string
	HTTP      *http.Client
}

var _ Admin = (*Client)(nil)

// do sends one request; out receives the JSON answer.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if q == nil {
		q = url.Values{}
	}
	if c.Workspace != "" {
		q.Set("workspace", c.Workspace)
	}
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return answerError(resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// answerError turns an error answer into the gateway's APIErrors (every
// detail, joined), or says what came back when it is not the envelope
// (say, --url points at something else).
func answerError(status int, raw []byte) error {
	var env struct {
		Errors []struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || len(env.Errors) == 0 {
		snippet := strings.TrimSpace(string(raw))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "…"
		}
		return httpapi.Errf(status, "unexpected_answer", "", "admin API answered %d without an error envelope (is --url a Switchboard gateway?): %s", status, snippet)
	}
	details := make([]string, len(env.Errors))
	for i, e := range env.Errors {
		details[i] = e.Detail
	}
	return httpapi.Errf(status, env.Errors[0].Code, "", "%s", strings.Join(details, "\n  "))
}

func listQuery(o ListOptions) url.Values {
	q := url.Values{}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

func get[T any](ctx context.Context, c *Client, path string, q url.Values) (T, error) {
	var v T
	err := c.do(ctx, http.MethodGet, path, q, nil, &v)
	return v, err
}

func post[T any](ctx context.Context, c *Client, path string, q url.Values, in any) (T, error) {
	var v T
	err := c.do(ctx, http.MethodPost, path, q, in, &v)
	return v, err
}

func esc(s string) string { return url.PathEscape(s) }

// ListWorkspaces implements Admin.
func (c *Client) ListWorkspaces(ctx context.Context, o ListOptions) (Page[Workspace], error) {
	// Workspaces are not a workspace's: the operator's ?workspace= would
	// only confuse the route.
	cc := *c
	cc.Workspace = ""
	return get[Page[Workspace]](ctx, &cc, "/admin/v1/workspaces", listQuery(o))
}

// CreateWorkspace implements Admin.
func (c *Client) CreateWorkspace(ctx context.Context, w Workspace) (Workspace, error) {
	cc := *c
	cc.Workspace = ""
	return post[Workspace](ctx, &cc, "/admin/v1/workspaces", nil, w)
}

// The Client acts in the workspace of its key (or c.Workspace); a ws
// argument, when given, overrides c.Workspace.
func (c *Client) in(ws string) *Client {
	if ws == "" || ws == c.Workspace {
		return c
	}
	cc := *c
	cc.Workspace = ws
	return &cc
}

// ListKeys implements Admin.
func (c *Client) ListKeys(ctx context.Context, ws string, o ListOptions) (Page[Key], error) {
	return get[Page[Key]](ctx, c.in(ws), "/admin/v1/keys", listQuery(o))
}

// CreateKey implements Admin.
func (c *Client) CreateKey(ctx context.Context, ws string, r KeyRequest) (NewKey, error) {
	return post[NewKey](ctx, c.in(ws), "/admin/v1/keys", nil, r)
}

// RevokeKey implements Admin.
func (c *Client) RevokeKey(ctx context.Context, ws, id string) (Key, error) {
	return post[Key](ctx, c.in(ws), "/admin/v1/keys/"+esc(id)+"/revoke", nil, nil)
}

// RotateKey implements Admin.
func (c *Client) RotateKey(ctx context.Context, ws, id string, grace time.Duration) (Rotation, error) {
	return post[Rotation](ctx, c.in(ws), "/admin/v1/keys/"+esc(id)+"/rotate", url.Values{"grace": {grace.String()}}, nil)
}

// ListBots implements Admin.
func (c *Client) ListBots(ctx context.Context, ws string, o ListOptions) (Page[Bot], error) {
	return get[Page[Bot]](ctx, c.in(ws), "/admin/v1/bots", listQuery(o))
}

// GetBot implements Admin.
func (c *Client) GetBot(ctx context.Context, ws, idOrName string) (Bot, error) {
	return get[Bot](ctx, c.in(ws), "/admin/v1/bots/"+esc(idOrName), nil)
}

// ListChannels implements Admin.
func (c *Client) ListChannels(ctx context.Context, ws string, o ListOptions) (Page[Channel], error) {
	return get[Page[Channel]](ctx, c.in(ws), "/admin/v1/channels", listQuery(o))
}

// GetChannel implements Admin.
func (c *Client) GetChannel(ctx context.Context, ws, idOrName string) (Channel, error) {
	return get[Channel](ctx, c.in(ws), "/admin/v1/channels/"+esc(idOrName), nil)
}

// Apply implements Admin.
func (c *Client) Apply(ctx context.Context, ws string, r ApplyRequest, dryRun bool) (ApplyResult, error) {
	return post[ApplyResult](ctx, c.in(ws), "/admin/v1/apply", url.Values{"dry_run": {strconv.FormatBool(dryRun)}}, r)
}

// ListPeople implements Admin.
func (c *Client) ListPeople(ctx context.Context, ws string, o ListOptions) (Page[Person], error) {
	return get[Page[Person]](ctx, c.in(ws), "/admin/v1/people", listQuery(o))
}

// GetPerson implements Admin.
func (c *Client) GetPerson(ctx context.Context, ws, id string) (Person, error) {
	return get[Person](ctx, c.in(ws), "/admin/v1/people/"+esc(id), nil)
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// ListConversations implements Admin.
func (c *Client) ListConversations(ctx context.Context, ws string, cq ConversationQuery) (Page[Conversation], error) {
	q := listQuery(cq.ListOptions)
	setIf(q, "channel", cq.ChannelID)
	setIf(q, "user", cq.UserID)
	setIf(q, "status", cq.Status)
	return get[Page[Conversation]](ctx, c.in(ws), "/admin/v1/conversations", q)
}

// GetConversation implements Admin.
func (c *Client) GetConversation(ctx context.Context, ws, id string) (Conversation, error) {
	return get[Conversation](ctx, c.in(ws), "/admin/v1/conversations/"+esc(id), nil)
}

// ListDeliveries implements Admin.
func (c *Client) ListDeliveries(ctx context.Context, ws string, dq DeliveryQuery) (Page[Delivery], error) {
	q := listQuery(dq.ListOptions)
	setIf(q, "status", dq.Status)
	setIf(q, "reason", dq.Reason)
	setIf(q, "channel", dq.ChannelID)
	setIf(q, "person", dq.PersonID)
	if !dq.Since.IsZero() {
		q.Set("since", dq.Since.Format(time.RFC3339Nano))
	}
	if !dq.Until.IsZero() {
		q.Set("until", dq.Until.Format(time.RFC3339Nano))
	}
	if dq.After > 0 {
		q.Set("after", strconv.FormatInt(dq.After, 10))
	}
	return get[Page[Delivery]](ctx, c.in(ws), "/admin/v1/deliveries", q)
}

// GetDelivery implements Admin.
func (c *Client) GetDelivery(ctx context.Context, ws string, id int64) (Delivery, error) {
	return get[Delivery](ctx, c.in(ws), "/admin/v1/deliveries/"+strconv.FormatInt(id, 10), nil)
}

// ListTriggers implements Admin.
func (c *Client) ListTriggers(ctx context.Context, ws string, tq TriggerQuery) (Page[Trigger], error) {
	q := listQuery(tq.ListOptions)
	if tq.BroadcastID != 0 {
		q.Set("broadcast", strconv.FormatInt(tq.BroadcastID, 10))
	}
	return get[Page[Trigger]](ctx, c.in(ws), "/admin/v1/triggers", q)
}

// GetTrigger implements Admin.
func (c *Client) GetTrigger(ctx context.Context, ws string, id int64) (Trigger, error) {
	return get[Trigger](ctx, c.in(ws), "/admin/v1/triggers/"+strconv.FormatInt(id, 10), nil)
}

// TriggerBroadcast implements Admin.
func (c *Client) TriggerBroadcast(ctx context.Context, ws string, broadcastID int64, body json.RawMessage) (TriggerCreated, error) {
	return post[TriggerCreated](ctx, c.in(ws), "/admin/v1/broadcasts/"+strconv.FormatInt(broadcastID, 10)+"/triggers", nil, body)
}

// Status implements Admin.
func (c *Client) Status(ctx context.Context, ws string) (Status, error) {
	return get[Status](ctx, c.in(ws), "/admin/v1/status", nil)
}
