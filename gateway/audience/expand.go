package audience

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// SegmentGetter reads the segments a filter names.
type SegmentGetter interface {
	GetSegment(ctx context.Context, workspaceID string, id int64) (store.Segment, error)
}

// CheckFilter checks a filter found at pointer as it will run: with the
// segments it names expanded, it may have at most lim.MaxLeaves conditions
// and lim.MaxExpandedDepth levels, and every segment must exist and not
// include itself. A segment of segments grows multiplicatively (a 999-way
// or of segments that are 999-way ors), so this runs whenever a filter is
// saved (segments, broadcasts) and used (triggers, counts), since a
// segment may change after a filter naming it was saved. Each segment is
// read and sized once. Problems are 422 FieldErrors that name the segment.
func CheckFilter(ctx context.Context, st SegmentGetter, workspaceID string, f *store.Filter, pointer string, lim FilterLimits) error {
	lim.defaults()
	x := &expander{st: st, ws: workspaceID, lim: lim, root: pointer, memo: map[int64]size{}, visiting: map[int64]bool{}}
	total, err := x.top(ctx, f, pointer)
	if err == nil && x.culprit != nil {
		err = x.culprit
	}
	if over := lim.over(0, total); err == nil && over != nil {
		err = &FieldError{Status: http.StatusUnprocessableEntity, Code: "filter_too_large", Pointer: pointer, Detail: over.Error()}
	}
	// Without a pointer the filter is not in the request (a stored
	// segment or broadcast): pointers into it would mislead.
	if fe := (*FieldError)(nil); pointer == "" && errors.As(err, &fe) {
		fe.Pointer = ""
	}
	return err
}

// size is a filter's size with its segments expanded.
type size struct {
	conditions int64 // saturates at maxSize
	depth      int64
}

const maxSize = 1 << 40

func (l FilterLimits) over(segment int64, s size) *store.FilterTooLargeError {
	switch {
	case s.conditions > int64(l.MaxLeaves):
		return &store.FilterTooLargeError{Segment: segment, Got: s.conditions, AtLeast: s.conditions == maxSize, Limit: int64(l.MaxLeaves)}
	case s.depth > int64(l.MaxExpandedDepth):
		return &store.FilterTooLargeError{Segment: segment, Levels: true, Got: s.depth, Limit: int64(l.MaxExpandedDepth)}
	}
	return nil
}

type expander struct {
	st       SegmentGetter
	ws       string
	lim      FilterLimits
	root     string // the checked filter's pointer, where unknown segments and cycles are reported
	memo     map[int64]size
	visiting map[int64]bool
	// culprit is the first segment named by the checked filter whose own
	// expansion is over the limits.
	culprit *FieldError
}

// top sizes the checked filter, tracking pointers so that a segment over
// the limits is reported where the filter names it.
func (x *expander) top(ctx context.Context, f *store.Filter, ptr string) (size, error) {
	switch {
	case len(f.And) > 0 || len(f.Or) > 0:
		key, items := "and", f.And
		if len(f.Or) > 0 {
			key, items = "or", f.Or
		}
		var s size
		for i := range items {
			sub, err := x.top(ctx, &items[i], ptr+"/"+key+"/"+strconv.Itoa(i))
			if err != nil {
				return size{}, err
			}
			s = s.join(sub)
		}
		return s.nest(), nil
	case f.Not != nil:
		s, err := x.top(ctx, f.Not, ptr+"/not")
		return s.nest(), err
	case f.Segment != nil:
		s, err := x.segment(ctx, f.Segment.ID)
		if err == nil && x.culprit == nil {
			if over := x.lim.over(f.Segment.ID, s); over != nil {
				x.culprit = &FieldError{Status: http.StatusUnprocessableEntity, Code: "filter_too_large", Pointer: ptr + "/segment",
					Detail: over.Error()}
			}
		}
		return s, err
	}
	return x.size(ctx, f)
}

// size sizes a filter without tracking pointers: errors point at the
// checked filter, the only place the caller can see.
func (x *expander) size(ctx context.Context, f *store.Filter) (size, error) {
	var s size
	for i := range f.And {
		sub, err := x.size(ctx, &f.And[i])
		if err != nil {
			return size{}, err
		}
		s = s.join(sub)
	}
	for i := range f.Or {
		sub, err := x.size(ctx, &f.Or[i])
		if err != nil {
			return size{}, err
		}
		s = s.join(sub)
	}
	switch {
	case len(f.And) > 0 || len(f.Or) > 0:
		return s.nest(), nil
	case f.Not != nil:
		sub, err := x.size(ctx, f.Not)
		return sub.nest(), err
	case f.Segment != nil:
		return x.segment(ctx, f.Segment.ID)
	}
	return size{conditions: 1, depth: 1}, nil
}

// segment sizes a segment: a manual one is one condition, one defined by
// a filter is that filter's size, one level deeper.
func (x *expander) segment(ctx context.Context, id int64) (size, error) {
	if s, ok := x.memo[id]; ok {
		return s, nil
	}
	if x.visiting[id] {
		return size{}, &FieldError{Status: http.StatusUnprocessableEntity, Code: "segment_cycle", Pointer: x.root,
			Detail: fmt.Sprintf("segment %d includes itself", id)}
	}
	sg, err := x.st.GetSegment(ctx, x.ws, id)
	if errors.Is(err, store.ErrNotFound) {
		return size{}, &FieldError{Status: http.StatusUnprocessableEntity, Code: "unknown_segment", Pointer: x.root,
			Detail: fmt.Sprintf("unknown segment %d", id)}
	}
	if err != nil {
		return size{}, err
	}
	s := size{conditions: 1, depth: 1}
	if sg.Filter != nil {
		x.visiting[id] = true
		s, err = x.size(ctx, sg.Filter)
		delete(x.visiting, id)
		if err != nil {
			return size{}, err
		}
		s = s.nest()
	}
	x.memo[id] = s
	return s, nil
}

// join adds a sibling's conditions and keeps the deeper depth.
func (s size) join(o size) size {
	return size{conditions: min(s.conditions+o.conditions, maxSize), depth: max(s.depth, o.depth)}
}

func (s size) nest() size { return size{conditions: s.conditions, depth: s.depth + 1} }
