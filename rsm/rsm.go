// Package rsm reads and writes XEP-0059 result set management: the
// <set/> that pages MAM and Inbox results.
package rsm

import (
	"errors"
	"strconv"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NS is the RSM namespace.
const NS = "http://jabber.org/protocol/rsm"

// Request is what a client asks for (XEP-0059 §2).
type Request struct {
	// Max is the page size; -1 when absent. 0 asks for the count only
	// (§2.7).
	Max int
	// After pages forwards from an item (§2.2). HasAfter tells an empty
	// <after/> from none.
	After    string
	HasAfter bool
	// Before pages backwards from an item (§2.3); an empty <before/>
	// asks for the last page (§2.5).
	Before    string
	HasBefore bool
	// Index asks for the page starting at an item's position (§2.6),
	// -1 when absent.
	Index int
}

// Parse reads a <set/> request; nil gives the zero request (no limits).
func Parse(el *xmlstream.Element) (Request, error) {
	r := Request{Max: -1, Index: -1}
	if el == nil {
		return r, nil
	}
	if el.Name != "set" || el.NS != NS {
		return r, errors.New("rsm: not a <set/>")
	}
	for c := range el.Elements() {
		if c.NS != NS {
			continue
		}
		switch c.Name {
		case "max":
			n, err := strconv.Atoi(c.Text())
			if err != nil || n < 0 {
				return r, errors.New("rsm: <max/> is not a non-negative integer")
			}
			r.Max = n
		case "after":
			r.After, r.HasAfter = c.Text(), true
		case "before":
			r.Before, r.HasBefore = c.Text(), true
		case "index":
			n, err := strconv.Atoi(c.Text())
			if err != nil || n < 0 {
				return r, errors.New("rsm: <index/> is not a non-negative integer")
			}
			r.Index = n
		}
	}
	return r, nil
}

// Result is the <set/> of a response (§2.1): the first and last items of
// the page, and the size of the whole result set when it is known.
type Result struct {
	First, Last string
	// FirstIndex is the position of First in the result set, -1 when
	// not given.
	FirstIndex int
	// Count is the number of items in the result set, -1 when not given.
	Count int
}

// Element serializes the result; an empty page has neither first nor
// last (§2.2).
func (r Result) Element() *xmlstream.Element {
	set := xmlstream.NewElement("set", NS)
	if r.First != "" {
		first := xmlstream.NewElement("first", NS).AddText(r.First)
		if r.FirstIndex >= 0 {
			first.SetAttr("index", strconv.Itoa(r.FirstIndex))
		}
		set.AddChild(first)
	}
	if r.Last != "" {
		set.AddChild(xmlstream.NewElement("last", NS).AddText(r.Last))
	}
	if r.Count >= 0 {
		set.AddChild(xmlstream.NewElement("count", NS).AddText(strconv.Itoa(r.Count)))
	}
	return set
}
