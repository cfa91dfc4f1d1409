package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/template"
)

// SegmentSpec is a segment: manual (with members, person ids) when it has
// no filter. Segments are matched by name; ids are assigned by the store
// and printed.
type SegmentSpec struct {
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Filter      map[string]any `yaml:"filter"`
	Members     []string       `yaml:"members"`
}

// BroadcastSpec is a group-triggered broadcast in the shape of the App
// API's body (recipients, actions, goal), matched by name. In filters a
// segment may be named instead of numbered: {segment: {name: vip}}.
// Channels are named by name or id. An active broadcast must pass review.
type BroadcastSpec struct {
	Name        string           `yaml:"name"`
	Description string           `yaml:"description"`
	Active      bool             `yaml:"active"`
	Recipients  map[string]any   `yaml:"recipients"`
	Actions     []map[string]any `yaml:"actions"`
	Goal        map[string]any   `yaml:"goal"`
}

// writeAudience applies one file's segments, then its broadcasts, inside
// the transaction.
func writeAudience(ctx context.Context, tx store.Store, f File, opts Options) error {
	ws := f.Doc.Workspace.ID
	bad := func(section string, i int, format string, a ...any) error {
		loc := f.Name
		if l := f.line(section, i); l > 0 {
			loc = fmt.Sprintf("%s:%d", f.Name, l)
		}
		return Problems{fmt.Sprintf("%s: %s[%d]: %s", loc, section, i, fmt.Sprintf(format, a...))}
	}
	for i, spec := range f.Doc.Segments {
		sg := store.Segment{WorkspaceID: ws, Name: strings.TrimSpace(spec.Name), Description: spec.Description}
		if sg.Name == "" {
			return bad("segments", i, "name: required")
		}
		if spec.Filter != nil {
			filter, err := applyFilter(ctx, tx, ws, spec.Filter, "/filter")
			if err != nil {
				return bad("segments", i, "%v", err)
			}
			sg.Filter = filter
			if len(spec.Members) > 0 {
				return bad("segments", i, "members: only a segment without filter has members")
			}
		}
		before, existed, err := readSegment(ctx, tx, ws, sg.Name)
		if err != nil {
			return fmt.Errorf("segment %s: %w", sg.Name, err)
		}
		if existed {
			sg.ID = before.sg.ID
			err = tx.UpdateSegment(ctx, sg)
		} else {
			err = tx.CreateSegment(ctx, &sg)
		}
		if err != nil {
			return fmt.Errorf("segment %s: %w", sg.Name, err)
		}
		if len(spec.Members) > 0 {
			missing, err := tx.AddSegmentMembers(ctx, ws, sg.ID, spec.Members)
			if err != nil {
				return fmt.Errorf("segment %s members: %w", sg.Name, err)
			}
			if len(missing) > 0 {
				return bad("segments", i, "members: no person %s in workspace %s", strings.Join(missing, ", "), ws)
			}
		}
		after, _, err := readSegment(ctx, tx, ws, sg.Name)
		if err != nil {
			return fmt.Errorf("segment %s: %w", sg.Name, err)
		}
		fmt.Fprintf(opts.Out, "segment %s (id %d): %s\n", sg.Name, sg.ID, change(existed, before, after))
	}
	if len(f.Doc.Broadcasts) == 0 {
		return nil
	}
	tpl := template.New(template.Options{})
	bots := bot.NewCache(tx, bot.CacheOptions{})
	for i, spec := range f.Doc.Broadcasts {
		b, err := applyBroadcast(ctx, tx, ws, spec)
		if err != nil {
			return bad("broadcasts", i, "%v", err)
		}
		b.Active = spec.Active
		if b.Active {
			probs, err := audience.Review(ctx, tx, bots, tpl, b)
			if err != nil {
				return err
			}
			if len(probs) > 0 {
				msgs := make([]string, len(probs))
				for j, p := range probs {
					msgs[j] = p.Error()
				}
				return bad("broadcasts", i, "needs fixing: %s", strings.Join(msgs, "; "))
			}
		}
		before, existed, err := readBroadcast(ctx, tx, ws, b.Name)
		if err != nil {
			return fmt.Errorf("broadcast %s: %w", b.Name, err)
		}
		if existed {
			b.ID, b.CreatedAt = before.ID, before.CreatedAt
			err = tx.UpdateBroadcast(ctx, &b)
		} else {
			err = tx.CreateBroadcast(ctx, &b)
		}
		if err != nil {
			return fmt.Errorf("broadcast %s: %w", b.Name, err)
		}
		after, _, err := readBroadcast(ctx, tx, ws, b.Name)
		if err != nil {
			return fmt.Errorf("broadcast %s: %w", b.Name, err)
		}
		verb := change(existed, before, after)
		state := "inactive"
		if b.Active {
			state = "active"
		}
		fmt.Fprintf(opts.Out, "broadcast %s (id %d, %s): %s; trigger with POST /v1/campaigns/%d/triggers\n", b.Name, b.ID, state, verb, b.ID)
	}
	return nil
}

// applyBroadcast checks a broadcast spec as the App API checks its body.
func applyBroadcast(ctx context.Context, tx store.Store, ws string, spec BroadcastSpec) (store.Broadcast, error) {
	body := map[string]any{"name": spec.Name, "description": spec.Description, "actions": spec.Actions}
	if spec.Actions == nil {
		body["actions"] = []any{}
	}
	if spec.Recipients != nil {
		named, err := nameSegments(ctx, tx, ws, spec.Recipients)
		if err != nil {
			return store.Broadcast{}, err
		}
		body["recipients"] = named
	}
	if spec.Goal != nil {
		body["goal"] = spec.Goal
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return store.Broadcast{}, err
	}
	b := store.Broadcast{WorkspaceID: ws}
	if err := audience.ParseBroadcast(raw, audience.FilterLimits{}, &b); err != nil {
		return b, err
	}
	if b.Recipients != nil {
		if err := audience.CheckFilter(ctx, tx, ws, b.Recipients, "/recipients", audience.FilterLimits{}); err != nil {
			return b, err
		}
	}
	return b, audience.ResolveChannels(ctx, tx, &b)
}

// applyFilter checks a filter from YAML, with segments by name or id.
func applyFilter(ctx context.Context, tx store.Store, ws string, f map[string]any, ptr string) (*store.Filter, error) {
	named, err := nameSegments(ctx, tx, ws, f)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(named)
	if err != nil {
		return nil, err
	}
	filter, err := audience.ParseFilter(raw, ptr, audience.FilterLimits{})
	if err != nil {
		return nil, err
	}
	// Segments applied earlier in this transaction are read as written.
	return filter, audience.CheckFilter(ctx, tx, ws, filter, ptr, audience.FilterLimits{})
}

// nameSegments replaces {segment: {name: N}} by {segment: {id: …}} in a
// filter decoded from YAML.
func nameSegments(ctx context.Context, tx store.Store, ws string, v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if seg, ok := t["segment"].(map[string]any); ok {
			if name, ok := seg["name"].(string); ok && len(seg) == 1 {
				sg, err := tx.GetSegmentByName(ctx, ws, name)
				if errors.Is(err, store.ErrNotFound) {
					return nil, fmt.Errorf("no segment named %q in workspace %s", name, ws)
				}
				if err != nil {
					return nil, err
				}
				return map[string]any{"segment": map[string]any{"id": sg.ID}}, nil
			}
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			x, err := nameSegments(ctx, tx, ws, e)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			x, err := nameSegments(ctx, tx, ws, e)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	}
	return v, nil
}
