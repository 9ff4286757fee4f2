package xmlstream

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"unsafe"
)

// This file tests that input split at any byte gives the same result as
// input fed whole, for long inputs too, without parsing the whole input
// again for every split point.
//
// Parsing is deterministic: what a parser yields from a point on depends
// only on its state (every field of the Parser and of its builder) and on
// the input still to come. checkEverySplit therefore feeds a reference
// parser R in chunks of splitChunk bytes and, for every chunk [b, e) and
// every k strictly inside it, takes a copy of R as it was at b, feeds it
// input[b:k] and then input[k:e], and requires the events yielded on the
// way and the complete state at e to be those of R. From e on the split
// parser and R are the same parser fed the same input, so they yield the
// same events and errors to the end. Split points that fall on a chunk
// boundary of R are checked the same way against a second reference whose
// boundaries are shifted by half a chunk, and both references must yield
// what the input fed whole (and fed one byte at a time) yields.
//
// Each split point costs one chunk of parsing and a copy and comparison of
// the parser state, so that every position of a 110 KB element is checked
// in seconds, also under the race detector.

// splitChunk is the chunk size of the reference parsers.
const splitChunk = 64

// cloneParser returns a deep copy of p (reusing dst's buffers when dst is
// not nil). Strings, the stream declarations and the error are immutable
// and shared.
func cloneParser(dst, p *Parser) *Parser {
	var spare *builder
	if dst != nil && dst.b != p.b {
		spare = dst.b
	}
	name, pi := []byte(nil), []byte(nil)
	if dst != nil {
		name, pi = dst.name[:0], dst.pi[:0]
	}
	c := new(Parser)
	if dst != nil {
		c = dst
	}
	*c = *p
	c.name = append(name, p.name...)
	c.pi = append(pi, p.pi...)
	c.b = nil
	if p.b != nil {
		if spare == nil {
			spare = new(builder)
		}
		c.b = cloneBuilder(spare, p.b)
	}
	return c
}

func cloneBuilder(d, b *builder) *builder {
	*d = builder{
		buf:       append(d.buf[:0], b.buf...),
		elems:     append(d.elems[:0], b.elems...),
		attrs:     append(d.attrs[:0], b.attrs...),
		raw:       append(d.raw[:0], b.raw...),
		items:     append(d.items[:0], b.items...),
		stack:     append(d.stack[:0], b.stack...),
		decls:     append(d.decls[:0], b.decls...),
		consts:    append(d.consts[:0], b.consts...),
		nchild:    b.nchild,
		textOpen:  b.textOpen,
		textStart: b.textStart,
	}
	return d
}

// asBytes views a slice of a struct type without padding as bytes.
func asBytes[T any](s []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}

// meaningful returns a copy of p's fields without the builder and the
// input, and with the scratch fields that the current state does not use
// cleared: they may keep values from earlier tags that depend on where
// the input was split (the end tag fast path, for instance, does not fill
// name), and the parser overwrites them before it reads them again.
func meaningful(p *Parser) Parser {
	s := *p
	s.in, s.b = nil, nil
	st := s.state
	attrValue := st == sAttrValue || st == sEntity && s.entRet == sAttrValue
	inStartTag := attrValue || st == sStartName || st == sTag || st == sAttrName || st == sAttrEq || st == sAttrQuote || st == sEmptyEnd
	if st != sEndName && st != sEndTail || len(s.name) == 0 {
		s.name = nil
	}
	if !attrValue {
		s.quote, s.valStart = 0, 0
	}
	if st != sTag {
		s.sawSpace = false
	}
	if st != sContent && st != sCDATA && !attrValue {
		s.bracket = 0
	}
	if st != sBang {
		s.bang = 0
	}
	if st != sEntity {
		s.entRet, s.ent, s.entLen = 0, [10]byte{}, 0
	} else {
		clear(s.ent[s.entLen:])
	}
	if st != sPI || len(s.pi) == 0 {
		s.pi, s.piStart = nil, false
	}
	if !inStartTag {
		s.tagQName, s.tagColon = span{}, 0
	}
	if st != sLT {
		s.ltAt = 0
	}
	return s
}

// mark records the lengths of a builder's append-only arrays and the
// elements open at a point of the reference run.
type mark struct {
	buf, elems, attrs, items int
	open                     []frame
	openElems                []elem // copies of elems[open[i].elem]
}

func markOf(b *builder) *mark {
	m := &mark{buf: len(b.buf), elems: len(b.elems), attrs: len(b.attrs), items: len(b.items), open: slices.Clone(b.stack)}
	for _, f := range m.open {
		m.openElems = append(m.openElems, b.elems[f.elem])
	}
	return m
}

// stateDiff describes how the states of two drained parsers differ, or
// returns "" when they are the same. With base nil the builders are
// compared whole; otherwise both builders are known to hold the same
// content as at base, and only what the parser may have changed since is
// compared: the builder's arrays grow by appending, and only the child
// counts of elements that were open at base or opened since change in place.
func stateDiff(x, y *Parser, base *mark) string {
	if len(x.in) != 0 || len(y.in) != 0 {
		return "input not consumed"
	}
	sx, sy := meaningful(x), meaningful(y)
	if !reflect.DeepEqual(sx, sy) {
		return fmt.Sprintf("parser fields differ:\n%+v\n%+v", sx, sy)
	}
	bx, by := x.b, y.b
	if (bx == nil) != (by == nil) {
		return fmt.Sprintf("builder %v, want %v", bx != nil, by != nil)
	}
	if bx == nil {
		return ""
	}
	from := &mark{}
	if base != nil {
		from = base
		for _, f := range base.open {
			if bx.elems[f.elem] != by.elems[f.elem] {
				return fmt.Sprintf("open element %d: %v, want %v", f.elem, bx.elems[f.elem], by.elems[f.elem])
			}
		}
	}
	switch {
	case len(bx.buf) != len(by.buf) || len(bx.elems) != len(by.elems) || len(bx.attrs) != len(by.attrs) || len(bx.items) != len(by.items):
		return fmt.Sprintf("builder lengths %d %d %d %d, want %d %d %d %d", len(bx.buf), len(bx.elems), len(bx.attrs), len(bx.items),
			len(by.buf), len(by.elems), len(by.attrs), len(by.items))
	case !bytes.Equal(bx.buf[from.buf:], by.buf[from.buf:]):
		return fmt.Sprintf("builder buffer %q, want %q", bx.buf[from.buf:], by.buf[from.buf:])
	case !bytes.Equal(asBytes(bx.elems[from.elems:]), asBytes(by.elems[from.elems:])):
		return fmt.Sprintf("elements %v, want %v", bx.elems[from.elems:], by.elems[from.elems:])
	case !bytes.Equal(asBytes(bx.attrs[from.attrs:]), asBytes(by.attrs[from.attrs:])):
		return fmt.Sprintf("attributes %v, want %v", bx.attrs[from.attrs:], by.attrs[from.attrs:])
	case !slices.Equal(bx.items[from.items:], by.items[from.items:]):
		return fmt.Sprintf("items %v, want %v", bx.items[from.items:], by.items[from.items:])
	case !slices.Equal(bx.raw, by.raw):
		return fmt.Sprintf("raw attributes %v, want %v", bx.raw, by.raw)
	case !slices.Equal(bx.stack, by.stack):
		return fmt.Sprintf("stack %v, want %v", bx.stack, by.stack)
	case !slices.Equal(bx.decls, by.decls):
		return fmt.Sprintf("declarations %v, want %v", bx.decls, by.decls)
	case !slices.Equal(bx.consts, by.consts):
		return fmt.Sprintf("constants %q, want %q", bx.consts, by.consts)
	// textStart means something only while a text run is open (a builder
	// from the pool keeps the value of its last use).
	case bx.nchild != by.nchild || bx.textOpen != by.textOpen || bx.textOpen && bx.textStart != by.textStart:
		return fmt.Sprintf("counters %d %v %d, want %d %v %d", bx.nchild, bx.textOpen, bx.textStart, by.nchild, by.textOpen, by.textStart)
	}
	return ""
}

// shareInto makes dst a copy of at whose builder shares the append-only
// arrays of at's builder (see stateDiff): dst appends past their end,
// which leaves at's content as it is, and the child counts that dst
// changes in place are restored from m first. The small arrays are
// copied. dst must not complete or fail the element, which would hand
// its builder to the pool.
func shareInto(dst, at *Parser, m *mark) *Parser {
	spare := dst.b
	if spare == nil || spare == at.b {
		spare = new(builder)
	}
	for i, f := range m.open {
		at.b.elems[f.elem] = m.openElems[i]
	}
	name, pi := dst.name[:0], dst.pi[:0]
	*dst = *at
	dst.name = append(name, at.name...)
	dst.pi = append(pi, at.pi...)
	b := at.b
	*spare = builder{
		buf:       b.buf,
		elems:     b.elems,
		attrs:     b.attrs,
		items:     b.items,
		raw:       append(spare.raw[:0], b.raw...),
		stack:     append(spare.stack[:0], b.stack...),
		decls:     append(spare.decls[:0], b.decls...),
		consts:    append(spare.consts[:0], b.consts...),
		nchild:    b.nchild,
		textOpen:  b.textOpen,
		textStart: b.textStart,
	}
	dst.b = spare
	return dst
}

// drain feeds chunk to p and appends the events it yields to evs. It
// returns the error, if any.
func drain(p *Parser, chunk []byte, evs []Event) ([]Event, error) {
	if p.err != nil {
		_, err := p.Next()
		return evs, err
	}
	p.Feed(chunk)
	for {
		ev, err := p.Next()
		if err != nil {
			return evs, err
		}
		if ev.Kind == EventNone {
			return evs, nil
		}
		evs = append(evs, ev)
	}
}

// sameEvents compares events by kind, tree and declarations.
func sameEvents(got, want []Event) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || !Equal(g.Element, w.Element) || !reflect.DeepEqual(g.Decls, w.Decls) {
			return fmt.Sprintf("event %d: %s, want %s", i, render(g), render(w))
		}
	}
	return ""
}

// checkEverySplit checks input split in two at every position (see the
// comment at the top of the file) and fed one byte at a time against the
// input fed whole, whose events and error it returns.
func checkEverySplit(t *testing.T, mode Mode, lim Limits, input []byte) ([]Event, error) {
	t.Helper()
	whole, wholeErr := drain(NewParser(mode, lim), input, nil)
	same := func(how string, evs []Event, err error) {
		t.Helper()
		if d := sameEvents(evs, whole); d != "" {
			t.Fatalf("%s: %s", how, d)
		}
		if fmt.Sprint(err) != fmt.Sprint(wholeErr) {
			t.Fatalf("%s: error %v, want %v", how, err, wholeErr)
		}
	}

	p := NewParser(mode, lim)
	var evs []Event
	var err error
	for k := range input {
		if evs, err = drain(p, input[k:k+1], evs); err != nil {
			break
		}
	}
	same("one byte at a time", evs, err)

	for _, shift := range []int{0, splitChunk / 2} {
		r := NewParser(mode, lim)
		var rEvs []Event
		var rErr error
		var at, split *Parser
		for b := 0; b < len(input); {
			e := min((b/splitChunk+1)*splitChunk+shift, len(input))
			if e <= b {
				e = min(b+splitChunk, len(input))
			}
			at = cloneParser(at, r)
			var m *mark
			if at.b != nil {
				// Room to append a chunk's worth without moving the arrays.
				at.b.buf = slices.Grow(at.b.buf, 8*splitChunk)
				at.b.elems = slices.Grow(at.b.elems, splitChunk)
				at.b.attrs = slices.Grow(at.b.attrs, splitChunk)
				at.b.items = slices.Grow(at.b.items, 2*splitChunk)
				m = markOf(at.b)
			}
			nBefore := len(rEvs)
			rEvs, rErr = drain(r, input[b:e], rEvs)
			chunkEvs := rEvs[nBefore:]
			// Within one element (no event, no error), the split parser
			// shares the arrays of at; otherwise it gets a copy of its own.
			share := at.b != nil && r.b != nil && len(chunkEvs) == 0 && rErr == nil
			for k := b + 1; k < e; k++ {
				// Split points on a boundary of the first reference are
				// checked by the second one only.
				if shift != 0 && k%splitChunk != 0 {
					continue
				}
				base := m
				if share {
					if split == nil {
						split = new(Parser)
					}
					split = shareInto(split, at, m)
				} else {
					split = cloneParser(split, at)
					base = nil
				}
				got, err := drain(split, input[b:k], nil)
				if err == nil {
					got, err = drain(split, input[k:e], got)
				}
				how := fmt.Sprintf("split at %d", k)
				if d := sameEvents(got, chunkEvs); d != "" {
					t.Fatalf("%s: %s", how, d)
				}
				if fmt.Sprint(err) != fmt.Sprint(rErr) {
					t.Fatalf("%s: error %v, want %v", how, err, rErr)
				}
				if d := stateDiff(split, r, base); d != "" {
					t.Fatalf("%s: state at %d differs from the reference: %s", how, e, d)
				}
				if split.b != nil && split.b == r.b {
					t.Fatal("clone shares the builder")
				}
				if share {
					split.b = nil // its arrays are at's
				}
			}
			b = e
			if rErr != nil {
				break
			}
		}
		same(fmt.Sprintf("reference fed in chunks of %d (shift %d)", splitChunk, shift), rEvs, rErr)
	}
	return whole, wholeErr
}
