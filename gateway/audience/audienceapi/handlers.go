package audienceapi

import (
	"net/http"

	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
)

// --- Track API ---

func (a *API) identify(w http.ResponseWriter, r *http.Request, ws string) error {
	b, err := body(w, r, a.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	if err := a.o.Service.Identify(r.Context(), ws, r.PathValue("id"), b); err != nil {
		return err
	}
	return ok(w, struct{}{})
}

func (a *API) deletePerson(w http.ResponseWriter, r *http.Request, ws string) error {
	if err := a.o.Service.DeletePerson(r.Context(), ws, r.PathValue("id")); err != nil {
		return err
	}
	return ok(w, struct{}{})
}

func (a *API) trackEvent(w http.ResponseWriter, r *http.Request, ws string) error {
	b, err := body(w, r, a.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	if err := a.o.Service.TrackEvent(r.Context(), ws, r.PathValue("id"), b); err != nil {
		return err
	}
	return ok(w, struct{}{})
}

func (a *API) segmentMembers(add bool) handler {
	return func(w http.ResponseWriter, r *http.Request, ws string) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		b, err := body(w, r, a.o.MaxTriggerBytes)
		if err != nil {
			return err
		}
		missing, err := a.o.Service.SegmentMembers(r.Context(), ws, id, b, add)
		if err != nil {
			return err
		}
		if missing == nil {
			missing = []string{}
		}
		return ok(w, map[string]any{"missing": missing})
	}
}

// --- App API: triggers ---

func (a *API) trigger(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	// Streamed: the body is decoded as it arrives, never held whole.
	res, err := a.o.Service.Trigger(r.Context(), ws, id, http.MaxBytesReader(w, r.Body, a.o.MaxTriggerBytes))
	if err != nil {
		return err
	}
	if res.DryRun != nil {
		return ok(w, map[string]any{"dry_run": res.DryRun})
	}
	return ok(w, map[string]int64{"id": res.Trigger.ID})
}

func (a *API) triggerStatus(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	tid, err := pathID(r, "trigger_id")
	if err != nil {
		return err
	}
	v, err := a.o.Service.TriggerStatus(r.Context(), ws, id, tid)
	if err != nil {
		return err
	}
	return ok(w, v)
}

func (a *API) triggerErrors(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	tid, err := pathID(r, "trigger_id")
	if err != nil {
		return err
	}
	start, err := queryInt(r, "start", 0, 1<<31-1)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	errs, next, err := a.o.Service.TriggerErrors(r.Context(), ws, id, tid, start, limit)
	if err != nil {
		return err
	}
	if errs == nil {
		errs = []string{}
	}
	return ok(w, map[string]any{"errors": errs, "next": next})
}

func (a *API) history(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	before, err := queryInt(r, "before", 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	vs, err := a.o.Service.History(r.Context(), ws, id, int64(before), limit)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []audience.TriggerView{}
	}
	return ok(w, map[string]any{"triggers": vs})
}

func (a *API) metrics(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	m, err := a.o.Service.Metrics(r.Context(), ws, id)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"metric": m})
}

// --- App API: broadcasts ---

func (a *API) listBroadcasts(w http.ResponseWriter, r *http.Request, ws string) error {
	bs, err := a.o.Store.ListBroadcasts(r.Context(), ws)
	if err != nil {
		return err
	}
	out := make([]audience.BroadcastView, len(bs))
	for i, b := range bs {
		out[i] = audience.ViewBroadcast(b)
	}
	return ok(w, map[string]any{"broadcasts": out})
}

func (a *API) getBroadcast(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	b, err := a.o.Store.GetBroadcast(r.Context(), ws, id)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"broadcast": audience.ViewBroadcast(b)})
}

func (a *API) createBroadcast(w http.ResponseWriter, r *http.Request, ws string) error {
	b, err := body(w, r, a.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	bc, err := a.o.Service.CreateBroadcast(r.Context(), ws, b)
	if err != nil {
		return err
	}
	return created(w, map[string]any{"broadcast": audience.ViewBroadcast(bc)})
}

func (a *API) updateBroadcast(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	b, err := body(w, r, a.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	bc, err := a.o.Service.UpdateBroadcast(r.Context(), ws, id, b)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"broadcast": audience.ViewBroadcast(bc)})
}

func (a *API) setActive(active bool) handler {
	return func(w http.ResponseWriter, r *http.Request, ws string) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		bc, err := a.o.Service.SetActive(r.Context(), ws, id, active)
		if err != nil {
			return err
		}
		return ok(w, map[string]any{"broadcast": audience.ViewBroadcast(bc)})
	}
}

func (a *API) duplicate(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	bc, err := a.o.Service.Duplicate(r.Context(), ws, id)
	if err != nil {
		return err
	}
	return created(w, map[string]any{"broadcast": audience.ViewBroadcast(bc)})
}

// --- App API: segments and people ---

func (a *API) listSegments(w http.ResponseWriter, r *http.Request, ws string) error {
	sgs, err := a.o.Store.ListSegments(r.Context(), ws)
	if err != nil {
		return err
	}
	out := make([]audience.SegmentView, len(sgs))
	for i, sg := range sgs {
		out[i] = audience.ViewSegment(sg)
	}
	return ok(w, map[string]any{"segments": out})
}

func (a *API) createSegment(w http.ResponseWriter, r *http.Request, ws string) error {
	b, err := body(w, r, a.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	sg, err := a.o.Service.CreateSegment(r.Context(), ws, b)
	if err != nil {
		return err
	}
	return created(w, map[string]any{"segment": audience.ViewSegment(sg)})
}

func (a *API) getSegment(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	sg, err := a.o.Store.GetSegment(r.Context(), ws, id)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"segment": audience.ViewSegment(sg)})
}

func (a *API) deleteSegment(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.o.Store.DeleteSegment(r.Context(), ws, id); err != nil {
		return err
	}
	return ok(w, struct{}{})
}

func (a *API) segmentCount(w http.ResponseWriter, r *http.Request, ws string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	n, err := a.o.Service.CountSegment(r.Context(), ws, id)
	if err != nil {
		return err
	}
	return ok(w, map[string]int64{"count": n})
}

func (a *API) getPerson(w http.ResponseWriter, r *http.Request, ws string) error {
	p, err := audience.FindPerson(r.Context(), a.o.Store, ws, r.PathValue("id"))
	if err != nil {
		return err
	}
	ids, err := a.o.Store.ListIdentities(r.Context(), ws, p.ID)
	if err != nil {
		return err
	}
	identities := map[string]string{}
	for _, i := range ids {
		identities[i.ChannelID] = i.Address
	}
	return ok(w, map[string]any{"customer": map[string]any{
		"id": p.ID, "cio_id": p.CioID, "email": p.Email, "attributes": p.Attributes, audience.IdentitiesKey: identities,
		"created_at": p.CreatedAt.Unix(), "updated_at": p.UpdatedAt.Unix(),
	}})
}

func created(w http.ResponseWriter, v any) error {
	httpapi.WriteJSON(w, http.StatusCreated, v)
	return nil
}
