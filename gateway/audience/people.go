package audience

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Reserved identify keys. IdentitiesKey is Switchboard's own: an object of
// channel (id or name) to the person's address there.
const IdentitiesKey = "_identities"

// ignoredKeys are Customer.io identify keys that carry no attribute.
var ignoredKeys = map[string]bool{"id": true, "_timestamp": true, "_update": true, "anonymous_id": true,
	"cio_relationships": true, "cio_subscription_preferences": true, IdentitiesKey: true}

// cioPrefix marks a Track API identifier as a cio id (Customer.io's
// cio_<cio_id>): it addresses an existing person whatever their id and
// email, so that those can be changed.
const cioPrefix = "cio_"

// PersonFinder finds people by id or cio id.
type PersonFinder interface {
	GetPerson(ctx context.Context, workspaceID, id string) (store.Person, error)
	GetPersonByCioID(ctx context.Context, workspaceID, cioID string) (store.Person, error)
}

// FindPerson finds the person a Track or App API path names: cio_<cio id>,
// or an id. An unknown person is store.ErrNotFound.
func FindPerson(ctx context.Context, st PersonFinder, workspaceID, ref string) (store.Person, error) {
	if cio, ok := strings.CutPrefix(ref, cioPrefix); ok {
		return st.GetPersonByCioID(ctx, workspaceID, cio)
	}
	return st.GetPerson(ctx, workspaceID, ref)
}

// unknownCio answers a cio_ identifier that names nobody: unlike an id, it
// never creates a person.
func unknownCio(ref string) error {
	return &FieldError{Status: http.StatusNotFound, Code: "unknown_person",
		Detail: fmt.Sprintf("no person with cio id %q: a cio_ identifier addresses an existing person", strings.TrimPrefix(ref, cioPrefix))}
}

// Identify creates or updates a person from a Track API body: attributes
// (null deletes one), email, and channel identities under "_identities".
// With "_update": true an unknown person is not created. A path
// cio_<cio id> addresses an existing person, whose id the body's "id"
// changes.
func (s *Service) Identify(ctx context.Context, workspaceID, ref string, body []byte) error {
	byCio := strings.HasPrefix(ref, cioPrefix)
	if msg := checkID(ref); msg != "" {
		return badField("", "customer id: %s", msg)
	}
	var fields map[string]json.RawMessage
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 {
		if err := json.Unmarshal(trimmed, &fields); err != nil || fields == nil {
			return &FieldError{Status: http.StatusBadRequest, Code: "bad_request", Detail: "bad request: the body must be a JSON object of attributes"}
		}
	}
	p := store.Person{WorkspaceID: workspaceID, ID: ref, Attributes: map[string]any{}}
	var updateOnly bool
	var identities map[string]string
	var newID string
	for _, key := range slices.Sorted(maps.Keys(fields)) {
		raw, ptr := fields[key], "/"+key
		switch {
		case key == "id" && byCio:
			var v *string
			if err := json.Unmarshal(raw, &v); err != nil {
				return badField(ptr, "id must be a string")
			}
			if v != nil && *v != "" {
				if msg := checkID(*v); msg != "" || strings.HasPrefix(*v, cioPrefix) {
					return badField(ptr, "an id has 1 to 150 characters and does not start with %q", cioPrefix)
				}
				newID = *v
			}
		case key == "email":
			var email *string
			if err := json.Unmarshal(raw, &email); err != nil {
				return badField(ptr, "email must be a string")
			}
			if email != nil && *email != "" {
				if msg := checkEmail(*email); msg != "" {
					return badField(ptr, "%s", msg)
				}
				p.Email = *email
			}
		case key == "_update":
			if err := json.Unmarshal(raw, &updateOnly); err != nil {
				return badField(ptr, "must be true or false")
			}
		case key == IdentitiesKey:
			if err := json.Unmarshal(raw, &identities); err != nil {
				return badField(ptr, "must be an object of channel (id or name) to address")
			}
		case ignoredKeys[key]:
		default:
			if err := checkAttributeName(key); err != nil {
				return badField(ptr, "%v", err)
			}
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return badField(ptr, "not JSON")
			}
			p.Attributes[key] = v
		}
	}
	var links []store.Identity
	if len(identities) > 0 {
		chs, err := s.o.Store.ListChannels(ctx, workspaceID)
		if err != nil {
			return err
		}
		for ref, addr := range identities {
			ch, ok := findChannel(chs, ref)
			if !ok {
				return badField("/"+IdentitiesKey+"/"+ref, "no channel %q in the workspace", ref)
			}
			if strings.TrimSpace(addr) == "" {
				return badField("/"+IdentitiesKey+"/"+ref, "address must not be empty")
			}
			links = append(links, store.Identity{WorkspaceID: workspaceID, ChannelID: ch.ID, Address: addr})
		}
	}
	return s.o.Store.WithTx(ctx, func(tx store.Store) error {
		cur, err := FindPerson(ctx, tx, workspaceID, ref)
		switch {
		case errors.Is(err, store.ErrNotFound) && byCio:
			return unknownCio(ref)
		case errors.Is(err, store.ErrNotFound) && updateOnly:
			return nil
		case err == nil:
			p.ID = cur.ID
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if newID != "" && newID != p.ID {
			err := tx.RenamePerson(ctx, workspaceID, p.ID, newID)
			if errors.Is(err, store.ErrConflict) {
				return &FieldError{Status: http.StatusConflict, Code: "id_taken", Pointer: "/id",
					Detail: fmt.Sprintf("another person has the id %q", newID)}
			}
			if err != nil {
				return err
			}
			p.ID = newID
		}
		if _, err := tx.UpsertPerson(ctx, p); err != nil {
			return err
		}
		for _, l := range links {
			l.PersonID = p.ID
			if err := tx.LinkIdentity(ctx, l); err != nil {
				return err
			}
		}
		return nil
	})
}

func findChannel(chs []store.Channel, ref string) (store.Channel, bool) {
	for _, ch := range chs {
		if ch.ID == ref || ch.Name == ref {
			return ch, true
		}
	}
	return store.Channel{}, false
}

// DeletePerson deletes a person and erases what is recorded about them
// (conversations, messages, deliveries: see store.People), a privacy
// request; deleting an unknown one succeeds, as Customer.io's does.
func (s *Service) DeletePerson(ctx context.Context, workspaceID, ref string) error {
	p, err := FindPerson(ctx, s.o.Store, workspaceID, ref)
	if err == nil {
		err = s.o.Store.DeletePerson(ctx, workspaceID, p.ID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// TrackEvent records an event a person performed ({"name", "data",
// "timestamp"}), creating the person if needed (not for a cio_ identifier);
// events count towards broadcast goals.
func (s *Service) TrackEvent(ctx context.Context, workspaceID, ref string, body []byte) error {
	if msg := checkID(ref); msg != "" {
		return badField("", "customer id: %s", msg)
	}
	var ev struct {
		Name      string         `json:"name"`
		Data      map[string]any `json:"data"`
		Timestamp int64          `json:"timestamp"`
		ID        string         `json:"id"`
		Type      string         `json:"type"`
	}
	if err := strictDecode(body, &ev); err != nil {
		return &FieldError{Status: http.StatusBadRequest, Code: "bad_request", Detail: "bad request: " + err.Error()}
	}
	if strings.TrimSpace(ev.Name) == "" || len(ev.Name) > 255 {
		return badField("/name", "name is required, at most 255 bytes")
	}
	at := s.o.Now()
	if ev.Timestamp > 0 {
		at = time.Unix(ev.Timestamp, 0)
	}
	return s.o.Store.WithTx(ctx, func(tx store.Store) error {
		p, err := FindPerson(ctx, tx, workspaceID, ref)
		switch {
		case errors.Is(err, store.ErrNotFound) && strings.HasPrefix(ref, cioPrefix):
			return unknownCio(ref)
		case errors.Is(err, store.ErrNotFound):
			if p, err = tx.UpsertPerson(ctx, store.Person{WorkspaceID: workspaceID, ID: ref}); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		return tx.RecordPersonEvent(ctx, store.PersonEvent{WorkspaceID: workspaceID, PersonID: p.ID, Name: ev.Name,
			Data: ev.Data, At: at})
	})
}

// SegmentInput is the body that creates a segment: a manual one without
// filter.
type SegmentInput struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Filter      json.RawMessage `json:"filter"`
}

// CreateSegment stores a segment from an API body.
func (s *Service) CreateSegment(ctx context.Context, workspaceID string, body []byte) (store.Segment, error) {
	var in SegmentInput
	if err := strictDecode(body, &in); err != nil {
		return store.Segment{}, &FieldError{Status: http.StatusBadRequest, Code: "bad_request", Detail: "bad request: " + err.Error()}
	}
	sg, err := s.segmentFrom(ctx, workspaceID, in)
	if err != nil {
		return sg, err
	}
	if err := s.o.Store.CreateSegment(ctx, &sg); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return sg, &FieldError{Status: http.StatusConflict, Code: "name_taken", Pointer: "/name",
				Detail: fmt.Sprintf("a segment named %q exists already", sg.Name)}
		}
		return sg, err
	}
	return sg, nil
}

// segmentFrom checks a segment body; segments it refers to must exist.
func (s *Service) segmentFrom(ctx context.Context, workspaceID string, in SegmentInput) (store.Segment, error) {
	sg := store.Segment{WorkspaceID: workspaceID, Name: strings.TrimSpace(in.Name), Description: in.Description}
	if sg.Name == "" || len(sg.Name) > 255 {
		return sg, badField("/name", "name is required, at most 255 bytes")
	}
	if f := strings.TrimSpace(string(in.Filter)); f != "" && f != "null" {
		filter, err := ParseFilter(in.Filter, "/filter", s.o.Limits.Filter)
		if err != nil {
			return sg, err
		}
		if err := CheckFilter(ctx, s.o.Store, workspaceID, filter, "/filter", s.o.Limits.Filter); err != nil {
			return sg, err
		}
		sg.Filter = filter
	}
	return sg, nil
}

// SegmentMembers adds (or removes) people to a manual segment from a body
// {"ids": [...]}; it returns the ids of people that do not exist.
func (s *Service) SegmentMembers(ctx context.Context, workspaceID string, id int64, body []byte, add bool) ([]string, error) {
	var in struct {
		IDs []string `json:"ids"`
	}
	if err := strictDecode(body, &in); err != nil {
		return nil, &FieldError{Status: http.StatusBadRequest, Code: "bad_request", Detail: "bad request: " + err.Error()}
	}
	if len(in.IDs) > s.o.Limits.MaxListItems {
		return nil, badField("/ids", "has %d items, the limit is %d", len(in.IDs), s.o.Limits.MaxListItems)
	}
	if !add {
		return nil, s.o.Store.RemoveSegmentMembers(ctx, workspaceID, id, in.IDs)
	}
	missing, err := s.o.Store.AddSegmentMembers(ctx, workspaceID, id, in.IDs)
	if errors.Is(err, store.ErrConflict) {
		return nil, &FieldError{Status: http.StatusUnprocessableEntity, Code: "not_manual",
			Detail: fmt.Sprintf("segment %d is defined by a filter; only manual segments take members", id)}
	}
	return missing, err
}

// CountSegment counts a segment's people, if its expansion is within the
// limits.
func (s *Service) CountSegment(ctx context.Context, workspaceID string, id int64) (int64, error) {
	if _, err := s.o.Store.GetSegment(ctx, workspaceID, id); err != nil {
		return 0, err // 404 for an unknown segment
	}
	f := &store.Filter{Segment: &store.SegmentRef{ID: id}}
	if err := CheckFilter(ctx, s.o.Store, workspaceID, f, "", s.o.Limits.Filter); err != nil {
		return 0, err
	}
	return s.o.Store.CountRecipients(ctx, workspaceID, f)
}
