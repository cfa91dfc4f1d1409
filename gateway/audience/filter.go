package audience

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// FieldError is a problem with one field of a request: the API answers it
// with Status and a source.pointer to the field.
type FieldError struct {
	Status  int
	Code    string
	Pointer string
	Detail  string
}

func (e *FieldError) Error() string {
	if e.Pointer == "" {
		return e.Detail
	}
	return e.Pointer + ": " + e.Detail
}

func badField(pointer, format string, a ...any) *FieldError {
	return &FieldError{Status: http.StatusBadRequest, Code: "invalid_field", Pointer: pointer, Detail: fmt.Sprintf(format, a...)}
}

// FilterLimits bound the size of a filter. MaxLeaves bounds both the
// filter as written and the filter with its segments expanded (see
// CheckFilter).
type FilterLimits struct {
	MaxDepth  int // default 10
	MaxLeaves int // default 1000
	// MaxExpandedDepth bounds the levels of a filter with its segments
	// expanded, a segment counting as one (default 20).
	MaxExpandedDepth int
}

func (l *FilterLimits) defaults() {
	if l.MaxExpandedDepth <= 0 {
		l.MaxExpandedDepth = 20
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 10
	}
	if l.MaxLeaves <= 0 {
		l.MaxLeaves = 1000
	}
}

// ParseFilter decodes and checks an audience filter found at pointer. An
// empty object is refused with 422 "empty recipients filter is not valid",
// as Customer.io does; every other problem is a 400 pointing at the node.
func ParseFilter(raw json.RawMessage, pointer string, lim FilterLimits) (*store.Filter, error) {
	lim.defaults()
	if bytes.Equal(bytes.TrimSpace(raw), []byte("{}")) {
		return nil, &FieldError{Status: http.StatusUnprocessableEntity, Code: "empty_filter", Pointer: pointer,
			Detail: "empty recipients filter is not valid"}
	}
	p := filterParser{lim: lim}
	f, err := p.node(raw, pointer, 1)
	if err != nil {
		return nil, err
	}
	return f, nil
}

type filterParser struct {
	lim    FilterLimits
	leaves int
}

var filterKeys = []string{"and", "or", "not", "segment", "attribute"}

func (p *filterParser) node(raw json.RawMessage, ptr string, depth int) (*store.Filter, error) {
	if depth > p.lim.MaxDepth {
		return nil, badField(ptr, "filter nests deeper than %d levels", p.lim.MaxDepth)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, badField(ptr, "a filter must be an object with one of %s", strings.Join(filterKeys, ", "))
	}
	if len(obj) != 1 {
		return nil, badField(ptr, "a filter must have exactly one of %s, has %d keys", strings.Join(filterKeys, ", "), len(obj))
	}
	for key, v := range obj {
		at := ptr + "/" + key
		switch key {
		case "and", "or":
			var items []json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil || len(items) == 0 {
				return nil, badField(at, "%s takes a non-empty array of filters", key)
			}
			subs := make([]store.Filter, len(items))
			for i, item := range items {
				f, err := p.node(item, at+"/"+strconv.Itoa(i), depth+1)
				if err != nil {
					return nil, err
				}
				subs[i] = *f
			}
			if key == "and" {
				return &store.Filter{And: subs}, nil
			}
			return &store.Filter{Or: subs}, nil
		case "not":
			if bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
				return nil, badField(at, "not takes one filter object, not an array")
			}
			f, err := p.node(v, at, depth+1)
			if err != nil {
				return nil, err
			}
			return &store.Filter{Not: f}, nil
		case "segment":
			if err := p.leaf(at); err != nil {
				return nil, err
			}
			var s struct {
				ID json.Number `json:"id"`
			}
			if err := strictDecode(v, &s); err != nil {
				return nil, badField(at, "segment takes {\"id\": <integer>}: %v", err)
			}
			id, err := strconv.ParseInt(s.ID.String(), 10, 64)
			if err != nil || id <= 0 {
				return nil, badField(at+"/id", "segment id must be a positive integer")
			}
			return &store.Filter{Segment: &store.SegmentRef{ID: id}}, nil
		case "attribute":
			if err := p.leaf(at); err != nil {
				return nil, err
			}
			a, err := parseAttribute(v, at)
			if err != nil {
				return nil, err
			}
			return &store.Filter{Attribute: a}, nil
		default:
			return nil, badField(at, "unknown filter %q: use one of %s", key, strings.Join(filterKeys, ", "))
		}
	}
	panic("unreachable")
}

func (p *filterParser) leaf(ptr string) error {
	p.leaves++
	if p.leaves > p.lim.MaxLeaves {
		return badField(ptr, "filter has more than %d conditions", p.lim.MaxLeaves)
	}
	return nil
}

func parseAttribute(raw json.RawMessage, ptr string) (*store.AttributeCond, error) {
	var a store.AttributeCond
	if err := strictDecode(raw, &a); err != nil {
		return nil, badField(ptr, "attribute takes field, operator and value: %v", err)
	}
	if err := checkAttributeName(a.Field); err != nil {
		return nil, badField(ptr+"/field", "%v", err)
	}
	switch a.Operator {
	case store.OpExists:
		a.Value = nil
	case store.OpEq:
		v := bytes.TrimSpace(a.Value)
		if len(v) == 0 || bytes.Equal(v, []byte("null")) {
			return nil, badField(ptr+"/value", "value is required with the eq operator")
		}
		if v[0] == '{' || v[0] == '[' {
			return nil, badField(ptr+"/value", "value must be a string, number or boolean")
		}
		a.Value = slices.Clone(v)
	default:
		return nil, badField(ptr+"/operator", "operator must be eq or exists, not %q", a.Operator)
	}
	return &a, nil
}

// checkAttributeName refuses names the store cannot address: empty, too
// long, or holding a double quote, a backslash or a control character.
func checkAttributeName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("attribute name must have 1 to 255 bytes")
	}
	if strings.ContainsAny(name, "\"\\") || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("attribute name %q must not contain quotes, backslashes or control characters", name)
	}
	return nil
}

// strictDecode decodes one JSON value refusing unknown fields.
func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec.Decode(v)
}

// filterSegments lists the segment ids a filter names directly.
func filterSegments(f *store.Filter, out []int64) []int64 {
	if f == nil {
		return out
	}
	for i := range f.And {
		out = filterSegments(&f.And[i], out)
	}
	for i := range f.Or {
		out = filterSegments(&f.Or[i], out)
	}
	out = filterSegments(f.Not, out)
	if f.Segment != nil {
		out = append(out, f.Segment.ID)
	}
	return out
}
