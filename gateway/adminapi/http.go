package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/audience/audienceapi"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// HTTPOptions configure the admin API's HTTP surface.
type HTTPOptions struct {
	Service Admin
	Auth    httpapi.Authenticator
	// Operators are the instance-wide operator keys.
	Operators auth.OperatorKeys
	// RateLimit is requests per second per key (≤ 0: unlimited).
	RateLimit    float64
	MaxBodyBytes int64 // default 1 MiB
	// MaxApplyBytes caps an apply body (default 8 MiB).
	MaxApplyBytes int64
}

// API serves Admin under /admin/v1/.
type API struct {
	o     HTTPOptions
	guard *httpapi.KeyGuard
}

// NewAPI returns the HTTP surface of o.Service.
func NewAPI(o HTTPOptions) *API {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxApplyBytes <= 0 {
		o.MaxApplyBytes = 8 << 20
	}
	return &API{o: o, guard: httpapi.NewKeyGuard(o.Auth, store.ScopeAdmin, o.RateLimit)}
}

// caller is who a request comes from: an admin key of one workspace, or
// an operator key.
type caller struct {
	workspace string // the admin key's
	operator  bool
}

// handler serves one route for a caller acting in workspace ws ("" on
// operator routes that act in none). What it returns is answered as 200
// JSON (or 201, wrapped in created).
type handler func(r *http.Request, c caller, ws string) (any, error)

type created struct{ v any }

// Routes lists the routes to mount.
func (a *API) Routes() []httpapi.Route {
	s := a.o.Service
	ws := func(pattern string, h handler) httpapi.Route {
		return httpapi.Route{Pattern: pattern, Handler: a.serve(h, true)}
	}
	op := func(pattern string, h handler) httpapi.Route {
		return httpapi.Route{Pattern: pattern, Handler: a.serve(h, false)}
	}
	return []httpapi.Route{
		op("GET /admin/v1/workspaces", a.listWorkspaces),
		op("POST /admin/v1/workspaces", a.createWorkspace),

		ws("GET /admin/v1/keys", func(r *http.Request, _ caller, w string) (any, error) {
			return withList(r, func(o ListOptions) (any, error) { return s.ListKeys(r.Context(), w, o) })
		}),
		ws("POST /admin/v1/keys", func(r *http.Request, _ caller, w string) (any, error) {
			var req KeyRequest
			if err := a.decode(r, &req); err != nil {
				return nil, err
			}
			k, err := s.CreateKey(r.Context(), w, req)
			return created{k}, err
		}),
		ws("POST /admin/v1/keys/{id}/revoke", func(r *http.Request, _ caller, w string) (any, error) {
			return s.RevokeKey(r.Context(), w, r.PathValue("id"))
		}),
		ws("POST /admin/v1/keys/{id}/rotate", func(r *http.Request, _ caller, w string) (any, error) {
			grace := DefaultKeyGrace
			if v := r.URL.Query().Get("grace"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil {
					return nil, badRequest("/grace", "grace %q: want a duration such as 24h, 30m or 0s", v)
				}
				grace = d
			}
			k, err := s.RotateKey(r.Context(), w, r.PathValue("id"), grace)
			return created{k}, err
		}),

		ws("GET /admin/v1/bots", func(r *http.Request, _ caller, w string) (any, error) {
			return withList(r, func(o ListOptions) (any, error) { return s.ListBots(r.Context(), w, o) })
		}),
		ws("GET /admin/v1/bots/{id}", func(r *http.Request, _ caller, w string) (any, error) {
			return s.GetBot(r.Context(), w, r.PathValue("id"))
		}),
		ws("GET /admin/v1/channels", func(r *http.Request, _ caller, w string) (any, error) {
			return withList(r, func(o ListOptions) (any, error) { return s.ListChannels(r.Context(), w, o) })
		}),
		ws("GET /admin/v1/channels/{id}", func(r *http.Request, _ caller, w string) (any, error) {
			return s.GetChannel(r.Context(), w, r.PathValue("id"))
		}),
		ws("POST /admin/v1/apply", func(r *http.Request, _ caller, w string) (any, error) {
			dry, err := boolParam(r, "dry_run")
			if err != nil {
				return nil, err
			}
			var req ApplyRequest
			if err := httpapi.DecodeBody(nil, r, a.o.MaxApplyBytes, &req); err != nil {
				return nil, err
			}
			return s.Apply(r.Context(), w, req, dry)
		}),

		ws("GET /admin/v1/people", func(r *http.Request, _ caller, w string) (any, error) {
			return withList(r, func(o ListOptions) (any, error) { return s.ListPeople(r.Context(), w, o) })
		}),
		ws("GET /admin/v1/people/{id}", func(r *http.Request, _ caller, w string) (any, error) {
			return s.GetPerson(r.Context(), w, r.PathValue("id"))
		}),
		ws("GET /admin/v1/conversations", func(r *http.Request, _ caller, w string) (any, error) {
			return withList(r, func(o ListOptions) (any, error) {
				q := r.URL.Query()
				return s.ListConversations(r.Context(), w, ConversationQuery{ListOptions: o,
					ChannelID: q.Get("channel"), UserID: q.Get("user"), Status: q.Get("status")})
			})
		}),
		ws("GET /admin/v1/conversations/{id}", func(r *http.Request, _ caller, w string) (any, error) {
			return s.GetConversation(r.Context(), w, r.PathValue("id"))
		}),
		ws("GET /admin/v1/deliveries", func(r *http.Request, _ caller, w string) (any, error) {
			return withList(r, func(o ListOptions) (any, error) {
				q, err := deliveryQuery(r, o)
				if err != nil {
					return nil, err
				}
				return s.ListDeliveries(r.Context(), w, q)
			})
		}),
		ws("GET /admin/v1/deliveries/{id}", func(r *http.Request, _ caller, w string) (any, error) {
			id, err := pathInt(r, "id", "delivery")
			if err != nil {
				return nil, err
			}
			return s.GetDelivery(r.Context(), w, id)
		}),

		ws("GET /admin/v1/triggers", func(r *http.Request, _ caller, w string) (any, error) {
			return withList(r, func(o ListOptions) (any, error) {
				b, err := intParam(r, "broadcast")
				if err != nil {
					return nil, err
				}
				return s.ListTriggers(r.Context(), w, TriggerQuery{ListOptions: o, BroadcastID: b})
			})
		}),
		ws("GET /admin/v1/triggers/{id}", func(r *http.Request, _ caller, w string) (any, error) {
			id, err := pathInt(r, "id", "trigger")
			if err != nil {
				return nil, err
			}
			return s.GetTrigger(r.Context(), w, id)
		}),
		ws("POST /admin/v1/broadcasts/{id}/triggers", func(r *http.Request, _ caller, w string) (any, error) {
			id, err := pathInt(r, "id", "broadcast")
			if err != nil {
				return nil, err
			}
			var body json.RawMessage
			if r.ContentLength != 0 {
				if err := httpapi.DecodeBody(nil, r, a.o.MaxApplyBytes, &body); err != nil {
					return nil, err
				}
			}
			t, err := s.TriggerBroadcast(r.Context(), w, id, body)
			if t.DryRun != nil {
				return t, err
			}
			return created{t}, err
		}),

		ws("GET /admin/v1/status", func(r *http.Request, _ caller, w string) (any, error) {
			return s.Status(r.Context(), w)
		}),
	}
}

// serve authenticates the caller and runs h. On a workspace route an
// admin key acts in its own workspace and an operator key in the one
// ?workspace= names; other routes take operator keys only.
func (a *API) serve(h handler, workspaceRoute bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := ""
		if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			raw = strings.TrimSpace(v[7:])
		}
		var c caller
		if strings.HasPrefix(raw, auth.OperatorPrefix) {
			i := a.o.Operators.Match(raw)
			if i < 0 {
				httpapi.WriteErrors(w, httpapi.Errf(http.StatusUnauthorized, "unauthorized", "",
					"unauthorized: this operator key is not among the gateway's admin.operator_keys"))
				return
			}
			if !a.guard.Admit(w, "operator:"+strconv.Itoa(i)) {
				return
			}
			c.operator = true
		} else {
			k, ok := a.guard.Require(w, r, raw)
			if !ok {
				return
			}
			c.workspace = k.WorkspaceID
		}
		ws := r.URL.Query().Get("workspace")
		switch {
		case !workspaceRoute:
			// Operator routes; listing workspaces is allowed to an
			// admin key too (it sees its own).
			if !c.operator && !(r.Method == http.MethodGet && r.URL.Path == "/admin/v1/workspaces") {
				httpapi.WriteErrors(w, httpapi.Errf(http.StatusForbidden, "operator_key_required", "",
					"%s %s needs an operator key (keys create --operator); this is an admin key of workspace %q",
					r.Method, r.URL.Path, c.workspace))
				return
			}
		case c.operator && ws == "":
			httpapi.WriteErrors(w, httpapi.Errf(http.StatusBadRequest, "workspace_required", "/workspace",
				"an operator key acts in any workspace: name one with ?workspace=ID"))
			return
		case !c.operator && ws != "" && ws != c.workspace:
			httpapi.WriteErrors(w, httpapi.Errf(http.StatusForbidden, "wrong_workspace", "/workspace",
				"this admin key acts in workspace %q only, not %q: use an admin key of %q or an operator key",
				c.workspace, ws, ws))
			return
		case !c.operator:
			ws = c.workspace
		}
		v, err := h(r, c, ws)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if cr, ok := v.(created); ok {
			httpapi.WriteJSON(w, http.StatusCreated, cr.v)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, v)
	})
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var probs *ApplyProblems
	if errors.As(err, &probs) {
		httpapi.WriteErrors(w, probs.Errors...)
		return
	}
	audienceapi.WriteError(w, r, err)
}

func (a *API) listWorkspaces(r *http.Request, c caller, _ string) (any, error) {
	return withList(r, func(o ListOptions) (any, error) {
		p, err := a.o.Service.ListWorkspaces(r.Context(), o)
		if err != nil || c.operator {
			return p, err
		}
		// An admin key sees its own workspace only.
		own := Page[Workspace]{Data: []Workspace{}}
		for _, w := range p.Data {
			if w.ID == c.workspace {
				own.Data = append(own.Data, w)
			}
		}
		return own, nil
	})
}

func (a *API) createWorkspace(r *http.Request, _ caller, _ string) (any, error) {
	var req Workspace
	if err := a.decode(r, &req); err != nil {
		return nil, err
	}
	v, err := a.o.Service.CreateWorkspace(r.Context(), req)
	return created{v}, err
}

func (a *API) decode(r *http.Request, v any) error {
	return httpapi.DecodeBody(nil, r, a.o.MaxBodyBytes, v)
}

// withList reads ?limit= and ?cursor= and runs list.
func withList(r *http.Request, list func(ListOptions) (any, error)) (any, error) {
	limit, err := intParam(r, "limit")
	if err != nil {
		return nil, err
	}
	return list(ListOptions{Cursor: r.URL.Query().Get("cursor"), Limit: int(limit)})
}

func intParam(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("/"+name, "%s %q: want a non-negative integer", name, v)
	}
	return n, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("/"+name, "%s %q: want true or false", name, v)
	}
	return b, nil
}

func pathInt(r *http.Request, name, kind string) (int64, error) {
	v := r.PathValue(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, badRequest("", "%s id %q: want a positive integer", kind, v)
	}
	return n, nil
}

// timeParam reads RFC 3339 or unix seconds.
func timeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, badRequest("/"+name, "%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or unix seconds", name, v)
}

func deliveryQuery(r *http.Request, o ListOptions) (DeliveryQuery, error) {
	q := r.URL.Query()
	dq := DeliveryQuery{ListOptions: o, Status: q.Get("status"), Reason: q.Get("reason"),
		ChannelID: q.Get("channel"), PersonID: q.Get("person")}
	var err error
	if dq.Since, err = timeParam(r, "since"); err != nil {
		return dq, err
	}
	if dq.Until, err = timeParam(r, "until"); err != nil {
		return dq, err
	}
	dq.After, err = intParam(r, "after")
	return dq, err
}
