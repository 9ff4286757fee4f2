package xmlstream

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzLimits = Limits{MaxElementBytes: 4096, MaxDepth: 12, MaxAttrs: 12, MaxTextBytes: 1024, MaxAttrBytes: 256}

func feedEvents(mode Mode, lim Limits, chunks ...[]byte) ([]Event, error) {
	evs, _, err := feedSized(mode, lim, chunks...)
	return evs, err
}

// feedSized is feedEvents that also returns, for each event, the number of
// input bytes it was read from: for an element, from its '<' to its end,
// which the element limit bounds. The sizes are computed from the input
// and the bytes the parser consumed, not from the parser's own counters.
func feedSized(mode Mode, lim Limits, chunks ...[]byte) ([]Event, []int, error) {
	p := NewParser(mode, lim)
	var out []Event
	var sizes []int
	all := bytes.Join(chunks, nil)
	fed, end := 0, 0 // bytes fed so far; end of the last event
	for _, c := range chunks {
		p.Feed(c)
		fed += len(c)
		for {
			ev, err := p.Next()
			if err != nil {
				return out, sizes, err
			}
			if ev.Kind == EventNone {
				break
			}
			consumed := fed - len(p.in)
			start := end
			for start < consumed && isSpace(all[start]) {
				start++ // white space between first-level elements
			}
			out = append(out, ev)
			sizes = append(sizes, consumed-start)
			end = consumed
		}
	}
	return out, sizes, nil
}

func addSeeds(f *testing.F) {
	for _, data := range corpus(f) {
		if len(data) < 4096 {
			f.Add(wrap(data), uint16(len(data)/2))
		}
	}
	f.Add([]byte(testHeader+"<message><body>a&amp;b<![CDATA[c]]></body></message></stream:stream>"), uint16(100))
	f.Add([]byte(testHeader+"<a xmlns:p='u' p:x='1'><p:b/></a>"), uint16(3))
	f.Add([]byte("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>"), uint16(30))
}

// FuzzStream feeds arbitrary input in two pieces. It must never panic, give
// the same result as one piece, keep every accepted element within the
// limits, round-trip accepted elements, and accept only what encoding/xml
// finds well-formed.
func FuzzStream(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole, sizes, errWhole := feedSized(ModeStream, fuzzLimits, data)
		k := int(split) % (len(data) + 1)
		parts, errParts := feedEvents(ModeStream, fuzzLimits, data[:k], data[k:])
		if fmt.Sprint(errWhole) != fmt.Sprint(errParts) {
			t.Fatalf("split at %d: error %v, whole: %v", k, errParts, errWhole)
		}
		if len(whole) != len(parts) {
			t.Fatalf("split at %d: %d events, whole: %d", k, len(parts), len(whole))
		}
		for i := range whole {
			if render(whole[i]) != render(parts[i]) {
				t.Fatalf("split at %d: event %d differs:\n%s\n%s", k, i, render(parts[i]), render(whole[i]))
			}
		}
		for i, ev := range whole {
			if ev.Kind != EventElement {
				continue
			}
			checkWithinLimits(t, ev.Element, sizes[i], fuzzLimits)
			again, err := feedEvents(ModeFragments, Limits{MaxElementBytes: 1 << 20, MaxAttrBytes: 1 << 20, MaxTextBytes: 1 << 20}, []byte(ev.Element.String()))
			if err != nil || len(again) != 1 || !Equal(again[0].Element, ev.Element) {
				t.Fatalf("round trip of %s: %v", ev.Element, err)
			}
		}
		// Differential check on complete streams only: a cut-short input
		// may end inside a span we validate when it is complete.
		if errWhole == nil && len(whole) > 0 && whole[len(whole)-1].Kind == EventStreamClose {
			if ok, err := stdAccepts(data); !ok {
				t.Fatalf("accepted what encoding/xml rejects (%v): %q", err, data)
			}
		}
	})
}

// FuzzStanza fuzzes the content of a stream behind a fixed header, where
// most of the parser's work is.
func FuzzStanza(f *testing.F) {
	for _, data := range corpus(f) {
		if len(data) < 4096 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		stream := wrap(data)
		evs, sizes, err := feedSized(ModeStream, fuzzLimits, stream)
		for i, ev := range evs {
			if ev.Kind == EventElement {
				checkWithinLimits(t, ev.Element, sizes[i], fuzzLimits)
				var out []byte
				out = ev.Element.AppendXML(out, StreamScope("jabber:client"))
				again, err := feedEvents(ModeStream, Limits{MaxElementBytes: 1 << 20, MaxAttrBytes: 1 << 20, MaxTextBytes: 1 << 20}, wrap(out))
				if err != nil || len(again) != 3 || !Equal(again[1].Element, ev.Element) {
					t.Fatalf("round trip of %s: %v", ev.Element, err)
				}
			}
		}
		if err == nil {
			if ok, err := stdAccepts(stream); !ok {
				t.Fatalf("accepted what encoding/xml rejects (%v): %q", err, data)
			}
		}
	})
}

// checkWithinLimits fails unless an accepted first-level element, read
// from size bytes of input, is within every limit of lim.
func checkWithinLimits(t *testing.T, e *Element, size int, lim Limits) {
	t.Helper()
	if size > lim.MaxElementBytes {
		t.Fatalf("element of %d bytes accepted, limit %d", size, lim.MaxElementBytes)
	}
	checkTreeWithinLimits(t, e, lim, 1)
}

func checkTreeWithinLimits(t *testing.T, e *Element, lim Limits, depth int) {
	t.Helper()
	if depth > lim.MaxDepth {
		t.Fatalf("depth %d beyond the limit", depth)
	}
	if len(e.Attrs) > lim.MaxAttrs {
		t.Fatalf("%d attributes beyond the limit", len(e.Attrs))
	}
	for _, a := range e.Attrs {
		if len(a.Value) > lim.MaxAttrBytes || !utf8.ValidString(a.Value) {
			t.Fatalf("attribute value %q", a.Value)
		}
	}
	for _, n := range e.Children {
		if n.Elem != nil {
			checkTreeWithinLimits(t, n.Elem, lim, depth+1)
		} else if len(n.Text) > lim.MaxTextBytes || !utf8.ValidString(n.Text) {
			t.Fatalf("text %q", n.Text)
		}
	}
}

// TestFeedSized checks the element sizes the fuzz targets hold against
// MaxElementBytes: an element of exactly the limit is accepted and
// measured, one byte more is refused.
func TestFeedSized(t *testing.T) {
	lim := Limits{MaxElementBytes: 200}.withDefaults() // the header is shorter
	el := "<message>" + strings.Repeat("x", 200-len("<message></message>")) + "</message>"
	for _, split := range []int{0, 1, len(testHeader) + 3, len(testHeader) + 50} {
		input := []byte(testHeader + "\n " + el + "\n<a/>")
		evs, sizes, err := feedSized(ModeStream, lim, input[:split], input[split:])
		if err != nil || len(evs) != 3 {
			t.Fatalf("split %d: %d events, %v", split, len(evs), err)
		}
		if sizes[1] != 200 || sizes[2] != 4 {
			t.Fatalf("split %d: sizes %v, want [_ 200 4]", split, sizes)
		}
		checkWithinLimits(t, evs[1].Element, sizes[1], lim)
	}
	over := "<message>" + strings.Repeat("x", 201-len("<message></message>")) + "</message>"
	if _, _, err := feedSized(ModeStream, lim, []byte(testHeader+over)); err == nil {
		t.Fatal("element over the limit accepted")
	}
}
