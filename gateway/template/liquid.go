package template

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/osteele/liquid/expressions"
	"github.com/osteele/liquid/filters"
	"github.com/osteele/liquid/parser"
	"github.com/osteele/liquid/render"
	"github.com/osteele/liquid/tags"
)

// The blocks this package puts around the body of every loop and capture
// (see instrument). Templates may not use them.
const (
	loopTag    = "switchboard_loop"
	captureTag = "switchboard_capture"
)

// config is a liquid configuration with the standard tags and filters, less
// the unsafe tags, with the limits of o built in.
type config struct {
	render.Config
	loop, capture *render.BlockNode // prototypes of the wrapping blocks
}

func newConfig(o *Options, strict bool) *config {
	c := &config{Config: render.NewConfig()}
	c.StrictVariables = strict
	std := filterSet{}
	filters.AddStandardFilters(std)
	for name, fn := range std {
		c.AddFilter(name, fn)
	}
	for name, fn := range limitedFilters(o, std) {
		c.AddFilter(name, fn)
	}
	tags.AddStandardTags(&c.Config)
	for _, tag := range []string{"cycle", "include", "render"} {
		c.UnregisterTag(tag)
	}
	c.AddTag("assign", assignTag)
	c.AddBlock(loopTag).Renderer(renderLoopBody)
	c.AddBlock(captureTag).Renderer(renderCaptureBody)
	c.loop, c.capture = c.prototype(loopTag), c.prototype(captureTag)
	return c
}

// filterSet collects the standard filters, so that limitedFilters can wrap
// them.
type filterSet map[string]any

func (s filterSet) AddFilter(name string, fn any) { s[name] = fn }

// prototype compiles an empty block of tag, to be copied by instrument:
// liquid builds a block's renderer only when it compiles the block.
func (c *config) prototype(tag string) *render.BlockNode {
	root, err := c.Compile("{% "+tag+" %}{% end"+tag+" %}", parser.SourceLoc{})
	if err != nil {
		panic(fmt.Sprintf("template: compiling the %s block: %v", tag, err))
	}
	return root.(*render.SeqNode).Children[0].(*render.BlockNode)
}

// assignTag is liquid's assign, which also checks the time left and
// refuses a value over the limits.
func assignTag(args string) (func(io.Writer, render.Context) error, error) {
	stmt, err := expressions.ParseStatement(expressions.AssignStatementSelector, args)
	if err != nil {
		return nil, err
	}
	if len(stmt.Assignment.Path) > 1 {
		return nil, errors.New("syntax error: dot notation in assign tag (e.g. 'obj.property = value') is not supported")
	}
	name, value := stmt.Assignment.Variable, stmt.Assignment.ValueFn
	return func(_ io.Writer, ctx render.Context) error {
		b, err := budgetOf(ctx)
		if err != nil {
			return err
		}
		if err := b.check(); err != nil {
			return err
		}
		v, err := ctx.Evaluate(value)
		if err != nil {
			return err
		}
		if err := b.hold(name, v); err != nil {
			return err
		}
		ctx.Set(name, v)
		return nil
	}, nil
}

// renderLoopBody runs once per iteration of the loop it wraps: it counts
// the iteration and checks the time, then renders the loop's body into the
// loop's own writer (so whitespace control is unchanged).
func renderLoopBody(w io.Writer, ctx render.Context) error {
	b, err := budgetOf(ctx)
	if err != nil {
		return err
	}
	if err := b.iterate(); err != nil {
		return err
	}
	if err := ctx.RenderChildren(w); err != nil {
		return err
	}
	return nil
}

// renderCaptureBody renders the body of a capture (named by the tag's
// arguments) through a captureWriter, and charges the captured value to the
// variable before capture sets it.
func renderCaptureBody(w io.Writer, ctx render.Context) error {
	b, err := budgetOf(ctx)
	if err != nil {
		return err
	}
	cw := &captureWriter{w: w, b: b, name: ctx.TagArgs()}
	rerr := ctx.RenderChildren(cw)
	cw.release()
	switch {
	case rerr != nil:
		return rerr
	case b.err != nil:
		return b.err
	}
	return b.holdBytes(cw.name, cw.n)
}

// maxCaptureDepth bounds the nesting of captures. Each level keeps the
// last write of its body pending (liquid's whitespace control), outside the
// captured bytes the budget counts.
const maxCaptureDepth = 4

// instrument walks a compiled template: it refuses the wrapping blocks,
// captures nested too deep, and range literals that are too large or not
// literal (an end user could otherwise supply "(1..999999999)", which
// filters such as join turn into an array); and it wraps the body of every
// for, tablerow and capture in a block of this package, through which the
// render's budget sees each iteration and every byte captured.
func (c *config) instrument(n render.Node, maxRange, captures int) error {
	var args []string
	switch n := n.(type) {
	case *render.SeqNode:
		for _, child := range n.Children {
			if err := c.instrument(child, maxRange, captures); err != nil {
				return err
			}
		}
	case *render.BlockNode:
		switch n.Name {
		case loopTag, captureTag:
			return fmt.Errorf("%w: unknown tag %q", ErrInvalid, n.Name)
		case "capture":
			if captures++; captures > maxCaptureDepth {
				return fmt.Errorf("%w: captures nested more than %d deep", ErrInvalid, maxCaptureDepth)
			}
		}
		args = append(args, n.Args)
		for _, child := range n.Body {
			if err := c.instrument(child, maxRange, captures); err != nil {
				return err
			}
		}
		for _, clause := range n.Clauses {
			if err := c.instrument(clause, maxRange, captures); err != nil {
				return err
			}
		}
		switch n.Name {
		case "for", "tablerow":
			n.Body = []render.Node{c.wrap(c.loop, n, "")}
		case "capture":
			n.Body = []render.Node{c.wrap(c.capture, n, strings.TrimSpace(n.Args))}
		}
	case *render.TagNode:
		args = append(args, n.Args)
	case *render.ObjectNode:
		args = append(args, n.Source)
	}
	for _, a := range args {
		if err := checkRanges(a, maxRange); err != nil {
			return err
		}
	}
	return nil
}

// wrap returns a copy of the block proto holding the body of n, located at
// n for error messages.
func (c *config) wrap(proto, n *render.BlockNode, args string) *render.BlockNode {
	w := *proto
	w.SourceLoc, w.Source, w.Args = n.SourceLoc, n.Source, args
	w.Body = n.Body
	return &w
}

func checkRanges(args string, maxRange int) error {
	for _, m := range rangeRegexp.FindAllStringSubmatch(args, -1) {
		lo, err1 := strconv.Atoi(m[1])
		hi, err2 := strconv.Atoi(m[2])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%w: range %s: bounds must be integer literals", ErrInvalid, m[0])
		}
		if hi-lo+1 > maxRange {
			return fmt.Errorf("%w: range %s has %d elements, the limit is %d", ErrInvalid, m[0], hi-lo+1, maxRange)
		}
	}
	return nil
}
