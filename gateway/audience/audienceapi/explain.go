package audienceapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// keyNeeded says which key a route of scope takes and how it is sent.
var keyNeeded = map[store.Scope]string{
	store.ScopeApp:   "this route needs an App API key (" + auth.Prefix(store.ScopeApp) + "…) as Authorization: Bearer",
	store.ScopeTrack: "this route needs a Track API key (" + auth.Prefix(store.ScopeTrack) + "…) as Basic auth, the workspace id as user name",
}

// unauthorized is the 401 of a route of scope given raw (the key sent) and
// site (the Basic auth user name): it names the key needed and what kind
// of key was given, never whether a key of the right kind exists.
func unauthorized(scope store.Scope, raw, site string, wrongSite bool) *httpapi.APIError {
	given := "no key was given"
	switch kind, ok := auth.ScopeOf(raw); {
	case raw == "":
	case wrongSite:
		given = fmt.Sprintf("the key given is unknown, revoked or expired, or not a key of workspace %q (the user name)", site)
	case !ok:
		given = "the key given is not a Switchboard key"
	case kind != scope:
		given = fmt.Sprintf("the key given is %s %s key", article(string(kind)), kind)
	default:
		given = "the key given is unknown, revoked or expired"
	}
	return httpapi.Errf(http.StatusUnauthorized, "unauthorized", "", "%s; %s", keyNeeded[scope], given)
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// NotFoundError is a 404 naming what is missing.
type NotFoundError struct {
	What string // "broadcast 12", "trigger 3 of broadcast 12"
}

func (e *NotFoundError) Error() string { return e.What + " not found in this workspace" }

func (e *NotFoundError) Unwrap() error { return store.ErrNotFound }

// missing names the object of the request's path that does not exist,
// checked in the store, or returns err as it is when every object the path
// names exists (what was not found is then something else).
func (a *API) missing(ctx context.Context, r *http.Request, ws string, err error) error {
	id := r.PathValue("id")
	n, perr := strconv.ParseInt(id, 10, 64)
	exists := func(get func() error) bool { return !errors.Is(get(), store.ErrNotFound) }
	switch p := r.Pattern; {
	case strings.Contains(p, "/customers/{id}"):
		if !exists(func() error { _, err := a.o.Store.GetPerson(ctx, ws, id); return err }) {
			return &NotFoundError{What: fmt.Sprintf("customer %q", id)}
		}
	case strings.Contains(p, "/segments/{id}"):
		if perr != nil || !exists(func() error { _, err := a.o.Store.GetSegment(ctx, ws, n); return err }) {
			return &NotFoundError{What: "segment " + id}
		}
	case strings.Contains(p, "/campaigns/{id}"), strings.Contains(p, "/broadcasts/{id}"):
		if perr != nil || !exists(func() error { _, err := a.o.Store.GetBroadcast(ctx, ws, n); return err }) {
			return &NotFoundError{What: "broadcast " + id}
		}
		if tid := r.PathValue("trigger_id"); tid != "" {
			return &NotFoundError{What: fmt.Sprintf("trigger %s of broadcast %s", tid, id)}
		}
	}
	return err
}
