package template

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// limitedFilters returns the standard filters that can make a value larger
// than their inputs, bounded by o's value limits. Filters see no render
// state in liquid, so the limits here are per value: each result is at most
// MaxValueBytes or MaxValueItems, and since every input made by a template
// is bounded the same way, no chain of filters can grow a value further.
// A filter whose result is a product of its inputs (replace, join, split,
// json) is refused before it allocates; one that grows its input by a small
// factor at most (escape, url_encode, upcase, date...) is checked after.
//
// The other standard filters return one of their inputs, a part of it, a
// number, or an array no longer than their input. (The type assertions on
// std fail at startup, in every test, if a liquid upgrade changes the
// signature of a filter wrapped here.)
func limitedFilters(o *Options, std filterSet) map[string]any {
	lf := map[string]any{
		"append": func(s, suffix string) (string, error) {
			if _, err := o.checkBytes("append", len(s)+len(suffix)); err != nil {
				return "", err
			}
			return s + suffix, nil
		},
		"prepend": func(s, prefix string) (string, error) {
			if _, err := o.checkBytes("prepend", len(prefix)+len(s)); err != nil {
				return "", err
			}
			return prefix + s, nil
		},
		"replace": func(s, old, repl string) (string, error) {
			n := strings.Count(s, old) // as strings.ReplaceAll counts, "" included
			if _, err := o.checkBytes("replace", len(s)+n*(len(repl)-len(old))); err != nil {
				return "", err
			}
			return strings.ReplaceAll(s, old, repl), nil
		},
		"concat": func(a, b []any) ([]any, error) {
			if _, err := o.checkItems("concat", len(a)+len(b)); err != nil {
				return nil, err
			}
			return append(append(make([]any, 0, len(a)+len(b)), a...), b...), nil
		},
		"join": func(a []any, sep func(string) string) (string, error) {
			return join(o, a, sep(" "))
		},
	}
	// Additive growth, checked before the call: the result is at most the
	// input and the replacement.
	for _, name := range []string{"replace_first", "replace_last"} {
		fn := std[name].(func(s, old, repl string) string)
		lf[name] = func(s, old, repl string) (string, error) {
			if _, err := o.checkBytes(name, len(s)+len(repl)); err != nil {
				return "", err
			}
			return fn(s, old, repl), nil
		}
	}
	split := std["split"].(func(s, sep string) any)
	lf["split"] = func(s, sep string) (any, error) {
		if _, err := o.checkItems("split", splitCount(s, sep)); err != nil {
			return nil, err
		}
		return split(s, sep), nil
	}
	jsonFn := std["json"].(func(any) any) // []byte
	encoders := map[string]func(any) string{
		"json":    func(v any) string { b, _ := jsonFn(v).([]byte); return string(b) },
		"inspect": std["inspect"].(func(any) string),
	}
	for name, fn := range encoders {
		lf[name] = func(v any) (string, error) {
			// The encoding is at least as large as this bound and at most
			// six times (\u00XX per byte), so it is refused early if
			// hopeless and checked again after.
			if _, err := o.checkBytes(name, jsonLowerBound(v, o.MaxValueBytes)); err != nil {
				return "", err
			}
			s := fn(v)
			_, err := o.checkBytes(name, len(s))
			return s, err
		}
	}
	uniq := std["uniq"].(func([]any) []any)
	lf["uniq"] = func(a []any) ([]any, error) {
		// liquid compares items that are not comparable (maps, arrays)
		// with every item kept so far: quadratic.
		n := 0
		for _, v := range a {
			if t := reflect.TypeOf(v); t != nil && !t.Comparable() {
				n++
			}
		}
		if n > maxUniqUncomparable {
			return nil, fmt.Errorf("%w: uniq: %d maps or arrays, the limit is %d", ErrValueSize, n, maxUniqUncomparable)
		}
		return uniq(a), nil
	}
	// slice panics (out of range) on a negative length in v1.9.2; liquid
	// returns nothing then.
	slice := std["slice"].(func(any, int, func(int) int) any)
	lf["slice"] = func(v any, start int, length func(int) int) any {
		return slice(v, start, func(d int) int { return max(length(d), 0) })
	}
	for _, name := range []string{"capitalize", "downcase", "upcase", "escape", "escape_once", "newline_to_br",
		"url_encode", "date", "truncate", "truncatewords"} {
		lf[name] = checkedAfter(o, name, std[name])
	}
	return lf
}

// maxUniqUncomparable bounds uniq's quadratic comparisons to about half a
// million.
const maxUniqUncomparable = 1000

// join is liquid's join (nil items skipped, each item as fmt.Sprint writes
// it) into a builder that stops at the value limit.
func join(o *Options, a []any, sep string) (string, error) {
	var sb strings.Builder
	for _, v := range a {
		if v == nil {
			continue
		}
		s := fmt.Sprint(v)
		n := len(s)
		if sb.Len() > 0 {
			n += len(sep)
		}
		if _, err := o.checkBytes("join", sb.Len()+n); err != nil {
			return "", err
		}
		if sb.Len() > 0 {
			sb.WriteString(sep)
		}
		sb.WriteString(s)
	}
	return sb.String(), nil
}

// splitCount is an upper bound of the number of parts split makes: " "
// splits at runs of white space.
func splitCount(s, sep string) int {
	switch sep {
	case "":
		return utf8.RuneCountInString(s)
	case " ":
		return strings.Count(s, " ") + strings.Count(s, "\t") + strings.Count(s, "\n") +
			strings.Count(s, "\r") + strings.Count(s, "\v") + strings.Count(s, "\f") + 1
	}
	return strings.Count(s, sep) + 1
}

// jsonLowerBound returns a lower bound of the size of v in JSON, or a value
// over limit as soon as it knows the size is.
func jsonLowerBound(v any, limit int) int {
	n := 0
	var walk func(rv reflect.Value)
	walk = func(rv reflect.Value) {
		if n > limit {
			return
		}
		switch rv.Kind() {
		case reflect.Interface, reflect.Pointer:
			if rv.IsNil() {
				n += 4
				return
			}
			walk(rv.Elem())
		case reflect.String:
			n += rv.Len() + 2
		case reflect.Slice, reflect.Array:
			if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
				n += rv.Len()*4/3 + 2 // base64
				return
			}
			n += 2
			for i := range rv.Len() {
				walk(rv.Index(i))
				n++
			}
		case reflect.Map:
			n += 2
			for it := rv.MapRange(); it.Next(); {
				walk(it.Key())
				walk(it.Value())
				n += 2
			}
		default:
			n++
		}
	}
	walk(reflect.ValueOf(v))
	return n
}

var errorType = reflect.TypeFor[error]()

// checkedAfter wraps a filter whose result is at most a small multiple of
// its inputs: it calls fn, then refuses a result over the value limits.
// The wrapper has fn's parameters (liquid converts arguments by the
// parameter types) and returns an error besides fn's result.
func checkedAfter(o *Options, name string, fn any) any {
	fv := reflect.ValueOf(fn)
	ft := fv.Type()
	in := make([]reflect.Type, ft.NumIn())
	for i := range in {
		in[i] = ft.In(i)
	}
	wt := reflect.FuncOf(in, []reflect.Type{ft.Out(0), errorType}, ft.IsVariadic())
	return reflect.MakeFunc(wt, func(args []reflect.Value) []reflect.Value {
		var out []reflect.Value
		if ft.IsVariadic() {
			out = fv.CallSlice(args)
		} else {
			out = fv.Call(args)
		}
		var err error
		if len(out) == 2 && !out[1].IsNil() {
			err = out[1].Interface().(error)
		}
		if err == nil {
			_, err = o.checkValue(name, out[0].Interface())
		}
		if err != nil {
			return []reflect.Value{reflect.Zero(ft.Out(0)), reflect.ValueOf(&err).Elem()}
		}
		return []reflect.Value{out[0], reflect.Zero(errorType)}
	}).Interface()
}
