// Package template renders the Liquid templates of bot flows and broadcast
// messages (github.com/osteele/liquid v1.9.2).
//
// Templates are written by bot developers, rendered with data that end users
// and API callers control. The package therefore:
//
//   - parses a source once and caches the result (Engine.Parse);
//   - renders lax (a missing variable renders as "") so that a person without
//     an attribute still gets a message, and validates strictly when a bot is
//     applied (Engine.Validate), which catches misspelt top-level names,
//     unknown filters and syntax errors before anyone is messaged;
//   - removes the tags that are unsafe in v1.9.2: cycle (its compiled closure
//     shares an error variable between concurrent renders: a data race), and
//     include/render (they read files from the gateway's working directory);
//   - caps the source size, the output size (a bounded writer passed to
//     FRender) and the render time (checked at every write), and refuses
//     range literals larger than Options.MaxRange or with non-literal bounds
//     (an end user could otherwise supply "(1..999999999)" through memory).
//
// What cannot be capped in process: a loop that never writes output
// (e.g. a long {% for %} of {% assign %}, or string doubling with append
// inside a literal range) runs to completion, because liquid checks neither a
// context nor a clock between writes. The range cap bounds such loops to
// MaxRange iterations per level; templates remain trusted-author content.
//
// Bindings are plain maps only (see Vars): liquid calls methods of structs it
// is given, so nothing with behaviour is ever exposed to a template.
package template

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osteele/liquid"
	"github.com/osteele/liquid/render"
)

// Errors callers branch on; every error of this package wraps one of them.
var (
	// ErrInvalid: the template does not parse, exceeds a static limit, or
	// fails strict validation.
	ErrInvalid = errors.New("invalid template")
	// ErrOutputLimit: rendering produced more than Options.MaxOutputBytes.
	ErrOutputLimit = errors.New("template output limit exceeded")
	// ErrRenderTime: rendering ran longer than Options.MaxRenderTime.
	ErrRenderTime = errors.New("template render time exceeded")
	// ErrRender: any other failure during rendering, such as an unknown
	// filter or a filter given a value it cannot convert.
	ErrRender = errors.New("template render failed")
)

// Options bound what a template may cost. Zero fields take the defaults.
type Options struct {
	// MaxSourceBytes caps the template source (default 32 KiB).
	MaxSourceBytes int
	// MaxOutputBytes caps one render's output (default 16 KiB, the
	// message text limit).
	MaxOutputBytes int
	// MaxRenderTime caps one render, checked whenever output is written
	// (default 250 ms).
	MaxRenderTime time.Duration
	// MaxRange caps the size of a range literal such as (1..10) (default
	// 1000).
	MaxRange int
	// CacheSize caps the number of parsed templates kept (default 4096).
	// When full the cache is emptied: parsing is cheap next to the
	// bookkeeping of an LRU on this path.
	CacheSize int
}

func (o *Options) defaults() {
	if o.MaxSourceBytes <= 0 {
		o.MaxSourceBytes = 32 << 10
	}
	if o.MaxOutputBytes <= 0 {
		o.MaxOutputBytes = 16 << 10
	}
	if o.MaxRenderTime <= 0 {
		o.MaxRenderTime = 250 * time.Millisecond
	}
	if o.MaxRange <= 0 {
		o.MaxRange = 1000
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 4096
	}
}

// Engine parses and caches templates. It is safe for concurrent use.
type Engine struct {
	opts   Options
	lax    *liquid.Engine
	strict *liquid.Engine

	mu    sync.RWMutex
	cache map[string]*Template
}

// New returns an Engine.
func New(o Options) *Engine {
	o.defaults()
	e := &Engine{opts: o, lax: newLiquid(), strict: newLiquid(), cache: map[string]*Template{}}
	e.strict.StrictVariables()
	return e
}

func newLiquid() *liquid.Engine {
	e := liquid.NewEngine()
	for _, tag := range []string{"cycle", "include", "render"} {
		e.UnregisterTag(tag)
	}
	return e
}

// Template is a parsed template. It is immutable and safe for concurrent
// rendering.
type Template struct {
	src    string
	static bool // no Liquid markup: renders as src without liquid
	tpl    *liquid.Template
	opts   *Options
}

// Parse returns the parsed template for src, from the cache when possible.
func (e *Engine) Parse(src string) (*Template, error) {
	e.mu.RLock()
	t, ok := e.cache[src]
	e.mu.RUnlock()
	if ok {
		return t, nil
	}
	t, err := e.parse(e.lax, src)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.cache) >= e.opts.CacheSize {
		clear(e.cache)
	}
	e.cache[src] = t
	e.mu.Unlock()
	return t, nil
}

func (e *Engine) parse(l *liquid.Engine, src string) (*Template, error) {
	if len(src) > e.opts.MaxSourceBytes {
		return nil, fmt.Errorf("%w: source is %d bytes, the limit is %d", ErrInvalid, len(src), e.opts.MaxSourceBytes)
	}
	t := &Template{src: src, opts: &e.opts}
	if !strings.Contains(src, "{{") && !strings.Contains(src, "{%") {
		t.static = true
		return t, nil
	}
	tpl, err := l.ParseString(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := checkRanges(tpl.GetRoot(), e.opts.MaxRange); err != nil {
		return nil, err
	}
	t.tpl = tpl
	return t, nil
}

// Validate checks src as strictly as possible without real data: it parses
// it and renders it with every known name bound (see Vars), failing on
// unknown top-level names, unknown properties of event, user (but
// user.profile.*) and channel, unknown filters and any limit. Names under
// memory, metadata, customer and trigger are free-form and accepted. A
// filter failing on its (absent) input, as in {{ 10 | divided_by:
// memory.n }}, depends on the data and is not an error here.
func (e *Engine) Validate(src string) error {
	t, err := e.parse(e.strict, src)
	if err != nil || t.static {
		return err
	}
	err = t.frender(context.Background(), io.Discard, validationBindings())
	if err != nil && errors.Is(err, ErrRender) && dataDependent(err) {
		return nil
	}
	return err
}

// dataDependent tells filter failures caused by the values given (which
// validation cannot know) from template mistakes. liquid v1.9.2 reports both
// as plain render errors, so only the message tells them apart.
func dataDependent(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "error applying filter") || strings.Contains(msg, "can't convert")
}

// Render renders t with v.
func (t *Template) Render(ctx context.Context, v *Vars) (string, error) {
	if t.static {
		return t.src, nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		bufPool.Put(buf)
	}()
	if err := t.frender(ctx, buf, v.bindings()); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// FRender renders t with v into w, within the output and time limits.
func (t *Template) FRender(ctx context.Context, w io.Writer, v *Vars) error {
	if t.static {
		_, err := io.WriteString(w, t.src)
		return err
	}
	return t.frender(ctx, w, v.bindings())
}

var (
	bufPool     = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	writerPool  = sync.Pool{New: func() any { return new(boundedWriter) }}
	rangeRegexp = regexp.MustCompile(`\(\s*([^()]*?)\s*\.\.\s*([^()]*?)\s*\)`)
)

func (t *Template) frender(ctx context.Context, w io.Writer, b map[string]any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	bw := writerPool.Get().(*boundedWriter)
	*bw = boundedWriter{ctx: ctx, w: w, left: t.opts.MaxOutputBytes, deadline: time.Now().Add(t.opts.MaxRenderTime)}
	err := t.tpl.FRender(bw, b)
	*bw = boundedWriter{}
	writerPool.Put(bw)
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{ErrOutputLimit, ErrRenderTime, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, sentinel) {
			return fmt.Errorf("template: %w", sentinel)
		}
	}
	return fmt.Errorf("%w: %w", ErrRender, err)
}

// boundedWriter is the only hook into a running render: liquid writes
// through it, and it refuses once the output, time or context is exhausted.
// The clock is read every clockEvery writes only: reading it is a
// noticeable share of a short render, and a loop long enough to matter
// writes far more often than that.
type boundedWriter struct {
	ctx      context.Context
	w        io.Writer
	left     int
	writes   int
	deadline time.Time
}

const clockEvery = 16

func (w *boundedWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, ErrOutputLimit
	}
	w.writes++
	if w.writes%clockEvery == 0 {
		if err := w.ctx.Err(); err != nil {
			return 0, err
		}
		if time.Now().After(w.deadline) {
			return 0, ErrRenderTime
		}
	}
	w.left -= len(p)
	return w.w.Write(p)
}

// checkRanges walks the tags of a parsed template and refuses range literals
// that are too large or whose bounds are not integer literals.
func checkRanges(n render.Node, maxRange int) error {
	var args []string
	switch n := n.(type) {
	case *render.SeqNode:
		for _, c := range n.Children {
			if err := checkRanges(c, maxRange); err != nil {
				return err
			}
		}
	case *render.BlockNode:
		args = append(args, n.Args)
		for _, c := range n.Body {
			if err := checkRanges(c, maxRange); err != nil {
				return err
			}
		}
		for _, c := range n.Clauses {
			if err := checkRanges(c, maxRange); err != nil {
				return err
			}
		}
	case *render.TagNode:
		args = append(args, n.Args)
	case *render.ObjectNode:
		args = append(args, n.Source)
	}
	for _, a := range args {
		for _, m := range rangeRegexp.FindAllStringSubmatch(a, -1) {
			lo, err1 := strconv.Atoi(m[1])
			hi, err2 := strconv.Atoi(m[2])
			if err1 != nil || err2 != nil {
				return fmt.Errorf("%w: range %s: bounds must be integer literals", ErrInvalid, m[0])
			}
			if hi-lo+1 > maxRange {
				return fmt.Errorf("%w: range %s has %d elements, the limit is %d", ErrInvalid, m[0], hi-lo+1, maxRange)
			}
		}
	}
	return nil
}
