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
//   - bounds what one render may cost, while it runs (see Options): loop
//     iterations across all loops, the size of any value a filter, assign or
//     capture makes, the bytes held in variables, the output, and the time,
//     which is checked at every loop iteration and assign and every few
//     writes. Range literals must have integer bounds and a bounded size.
//
// Liquid gives filters no render state, so filter results are bounded per
// value (Options.MaxValueBytes, MaxValueItems); the tags of a render share a
// budget that liquid carries in the bindings under a name no template can
// spell (budget.go). The compiled tree is instrumented after parsing: the
// body of every loop and capture is wrapped in a block that charges the
// budget (liquid.go).
//
// Over a limit, a render fails with an error wrapping ErrLimit (and the
// limit's own sentinel); validation renders the template too, so a template
// that exceeds a limit without any data is refused when it is applied.
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
	"strings"
	"sync"
	"time"

	"github.com/osteele/liquid/expressions"
	"github.com/osteele/liquid/parser"
	"github.com/osteele/liquid/render"
)

// Errors callers branch on; every error of this package wraps one of them.
var (
	// ErrInvalid: the template does not parse, exceeds a static limit, or
	// fails strict validation.
	ErrInvalid = errors.New("invalid template")
	// ErrLimit: rendering exceeded a limit of Options. Each limit has its
	// own error below, which wraps ErrLimit.
	ErrLimit = errors.New("template limit exceeded")
	// ErrOutputLimit: rendering produced more than Options.MaxOutputBytes.
	ErrOutputLimit = fmt.Errorf("%w: output", ErrLimit)
	// ErrRenderTime: rendering ran longer than Options.MaxRenderTime.
	ErrRenderTime = fmt.Errorf("%w: render time", ErrLimit)
	// ErrIterations: the loops of one render ran more than
	// Options.MaxIterations times in all.
	ErrIterations = fmt.Errorf("%w: loop iterations", ErrLimit)
	// ErrValueSize: a filter, assign or capture made a value larger than
	// Options.MaxValueBytes or MaxValueItems.
	ErrValueSize = fmt.Errorf("%w: value size", ErrLimit)
	// ErrVariables: the variables set by assign and capture would hold more
	// than Options.MaxVariableBytes.
	ErrVariables = fmt.Errorf("%w: variables", ErrLimit)
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
	// MaxRenderTime caps one render, checked at every loop iteration and
	// assign and every few writes (default 250 ms).
	MaxRenderTime time.Duration
	// MaxRange caps the size of a range literal such as (1..10) (default
	// 1000).
	MaxRange int
	// MaxIterations caps the loop iterations of one render, all loops and
	// nesting levels counted together (default 100,000: about 50 ms).
	MaxIterations int
	// MaxValueBytes caps a string made by a filter, assign or capture
	// (default 64 KiB: four times the output limit).
	MaxValueBytes int
	// MaxValueItems caps an array made by a filter or assign (default
	// 10,000 items).
	MaxValueItems int
	// MaxVariableBytes caps what the variables set by assign and capture
	// hold at any time, a string by its length and an array at 16 bytes an
	// item (default 1 MiB).
	MaxVariableBytes int
	// CacheSize caps the number of parsed templates kept (default 4096).
	// When full the cache is emptied: parsing is cheap next to the
	// bookkeeping of an LRU on this path.
	CacheSize int
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxSourceBytes, 32<<10)
	def(&o.MaxOutputBytes, 16<<10)
	if o.MaxRenderTime <= 0 {
		o.MaxRenderTime = 250 * time.Millisecond
	}
	def(&o.MaxRange, 1000)
	def(&o.MaxIterations, 100_000)
	def(&o.MaxValueBytes, 64<<10)
	def(&o.MaxValueItems, 10_000)
	def(&o.MaxVariableBytes, 1<<20)
	def(&o.CacheSize, 4096)
}

// Engine parses and caches templates. It is safe for concurrent use.
type Engine struct {
	opts   Options
	lax    *config
	strict *config
	now    func() time.Time // the render clock; tests replace it

	mu    sync.RWMutex
	cache map[string]*Template
}

// New returns an Engine.
func New(o Options) *Engine {
	o.defaults()
	e := &Engine{opts: o, now: time.Now, cache: map[string]*Template{}}
	e.lax, e.strict = newConfig(&e.opts, false), newConfig(&e.opts, true)
	return e
}

// Template is a parsed template. It is immutable and safe for concurrent
// rendering.
type Template struct {
	src    string
	static bool // no Liquid markup: renders as src without liquid
	root   render.Node
	cfg    *config
	eng    *Engine
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

func (e *Engine) parse(c *config, src string) (*Template, error) {
	if len(src) > e.opts.MaxSourceBytes {
		return nil, fmt.Errorf("%w: source is %d bytes, the limit is %d", ErrInvalid, len(src), e.opts.MaxSourceBytes)
	}
	t := &Template{src: src, cfg: c, eng: e}
	if !strings.Contains(src, "{{") && !strings.Contains(src, "{%") {
		t.static = true
		return t, nil
	}
	root, err := compile(c, src)
	if err != nil {
		return nil, err
	}
	if err := c.instrument(root, e.opts.MaxRange, 0); err != nil {
		return nil, err
	}
	t.root = root
	return t, nil
}

// compile is liquid's Compile. Its lexer panics (with a string, which its
// parser does not recover) on some invalid identifiers, such as "{{۾}}" in
// v1.9.2: a bot applied or a broadcast saved with one took the gateway down.
func compile(c *config, src string) (root render.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("%w: %v", ErrInvalid, r)
		}
	}()
	root, perr := c.Compile(src, parser.SourceLoc{})
	if perr != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, perr)
	}
	return root, nil
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
	_, err = t.frender(context.Background(), io.Discard, validationBindings())
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
		if err := t.staticLimit(); err != nil {
			return "", err
		}
		return t.src, nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		bufPool.Put(buf)
	}()
	if _, err := t.frender(ctx, buf, v.bindings()); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// FRender renders t with v into w, within the limits.
func (t *Template) FRender(ctx context.Context, w io.Writer, v *Vars) error {
	if t.static {
		if err := t.staticLimit(); err != nil {
			return err
		}
		_, err := io.WriteString(w, t.src)
		return err
	}
	_, err := t.frender(ctx, w, v.bindings())
	return err
}

// staticLimit holds text without markup to the output limit too.
func (t *Template) staticLimit() error {
	if len(t.src) > t.eng.opts.MaxOutputBytes {
		return fmt.Errorf("template: %w: more than %d bytes", ErrOutputLimit, t.eng.opts.MaxOutputBytes)
	}
	return nil
}

var (
	bufPool     = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	budgetPool  = sync.Pool{New: func() any { return new(budget) }}
	rangeRegexp = regexp.MustCompile(`\(\s*([^()]*?)\s*\.\.\s*([^()]*?)\s*\)`)
)

// errPanic marks a panic of liquid recovered by a render.
var errPanic = errors.New("internal error of the template engine")

// frender renders t into w with the bindings b (which it may add to) under
// a new budget, and returns what the render used.
func (t *Template) frender(ctx context.Context, w io.Writer, b map[string]any) (used usage, err error) {
	if err := ctx.Err(); err != nil {
		return used, fmt.Errorf("template: %w", err)
	}
	o := &t.eng.opts
	bg := budgetPool.Get().(*budget)
	now := t.eng.now
	*bg = budget{ctx: ctx, opts: o, now: now, deadline: now().Add(o.MaxRenderTime), w: w, outLeft: o.MaxOutputBytes}
	defer func() {
		// Some filters and tags of liquid v1.9.2 panic on odd input (slice
		// did on a negative length): one person's render fails, the
		// gateway does not.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %w: %v", ErrRender, errPanic, r)
		}
		used = usage{iterations: bg.iterations, held: bg.held, output: o.MaxOutputBytes - bg.outLeft}
		*bg = budget{}
		budgetPool.Put(bg)
	}()
	if b == nil {
		b = make(map[string]any, 1)
	}
	b[budgetKey] = bg
	rerr := render.Render(t.root, bg, b, t.cfg.Config)
	return used, renderError(bg.err, rerr)
}

// usage is what a render used of its budget, for tests.
type usage struct{ iterations, held, output int }

// renderError returns the error of a render: the budget's own failure
// first (a refused write is recorded, not returned, see budget.Write), then
// a limit, else liquid's error.
func renderError(budgetErr, err error) error {
	if budgetErr != nil {
		err = budgetErr
	}
	if err == nil {
		return nil
	}
	// A filter's error comes wrapped in liquid's FilterError, which does
	// not unwrap.
	var fe expressions.FilterError
	if !errors.Is(err, ErrLimit) && errors.As(err, &fe) && errors.Is(fe.Err, ErrLimit) {
		err = fe.Err
	}
	if errors.Is(err, ErrLimit) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("template: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrRender, err)
}
