package xmlstream

import (
	"iter"
	"strings"
)

// Namespaces the parser itself knows about.
const (
	// NSStream qualifies the stream element and its first-level protocol
	// elements (RFC 6120 §4.8.1).
	NSStream = "http://etherx.jabber.org/streams"
	// NSXML is bound to the "xml" prefix by definition (Namespaces in XML §3).
	NSXML = "http://www.w3.org/XML/1998/namespace"
	// NSXMLNS is the namespace of namespace declarations; it may not be declared.
	NSXMLNS = "http://www.w3.org/2000/xmlns/"
)

// Attr is an attribute of an element. Namespace declarations are not
// attributes: the parser resolves them into the NS fields.
type Attr struct {
	Name string // local name
	// NS is the namespace of a prefixed attribute (NSXML for xml:lang) and
	// empty for an unprefixed one, which is in no namespace.
	NS    string
	Value string
}

// Node is one child of an element: an element or a run of character data.
type Node struct {
	Elem *Element // nil for character data
	Text string
}

// Element is an XML element with its namespace resolved. Elements produced
// by the parser share one backing string per top-level element; they are
// safe to read from any goroutine. Code that changes a received element
// should copy it first (Clone or ShallowCopy), because other sessions may be
// delivering the same tree.
type Element struct {
	Name     string // local name
	NS       string // namespace name ("" for none)
	Attrs    []Attr
	Children []Node
}

// NewElement returns an element without attributes and children.
func NewElement(name, ns string) *Element {
	return &Element{Name: name, NS: ns}
}

// Attr returns the value of the unprefixed attribute name, or "".
func (e *Element) Attr(name string) string {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name && e.Attrs[i].NS == "" {
			return e.Attrs[i].Value
		}
	}
	return ""
}

// LookupAttr returns the value of the attribute in namespace ns (use "" for
// unprefixed attributes) and whether it is present.
func (e *Element) LookupAttr(ns, name string) (string, bool) {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name && e.Attrs[i].NS == ns {
			return e.Attrs[i].Value, true
		}
	}
	return "", false
}

// Lang returns the xml:lang attribute of the element itself.
func (e *Element) Lang() string {
	v, _ := e.LookupAttr(NSXML, "lang")
	return v
}

// SetAttr sets (or adds) the unprefixed attribute name and returns e.
func (e *Element) SetAttr(name, value string) *Element {
	return e.SetAttrNS("", name, value)
}

// SetAttrNS sets (or adds) the attribute name in namespace ns and returns e.
func (e *Element) SetAttrNS(ns, name, value string) *Element {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name && e.Attrs[i].NS == ns {
			e.Attrs[i].Value = value
			return e
		}
	}
	e.Attrs = append(e.Attrs, Attr{Name: name, NS: ns, Value: value})
	return e
}

// RemoveAttr removes the unprefixed attribute name, if present, and returns e.
func (e *Element) RemoveAttr(name string) *Element {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name && e.Attrs[i].NS == "" {
			// Copy rather than shift in place: the attribute slice of a parsed
			// element may be shared with another copy of the element.
			attrs := make([]Attr, 0, len(e.Attrs)-1)
			attrs = append(attrs, e.Attrs[:i]...)
			e.Attrs = append(attrs, e.Attrs[i+1:]...)
			return e
		}
	}
	return e
}

// AddChild appends child elements and returns e.
func (e *Element) AddChild(children ...*Element) *Element {
	for _, c := range children {
		e.Children = append(e.Children, Node{Elem: c})
	}
	return e
}

// AddText appends character data and returns e.
func (e *Element) AddText(text string) *Element {
	if text != "" {
		e.Children = append(e.Children, Node{Text: text})
	}
	return e
}

// Child returns the first child element with the given name and namespace.
func (e *Element) Child(name, ns string) *Element {
	for i := range e.Children {
		if c := e.Children[i].Elem; c != nil && c.Name == name && c.NS == ns {
			return c
		}
	}
	return nil
}

// ChildNS returns the first child element in namespace ns, whatever its name
// (the payload of an IQ, for instance).
func (e *Element) ChildNS(ns string) *Element {
	for i := range e.Children {
		if c := e.Children[i].Elem; c != nil && c.NS == ns {
			return c
		}
	}
	return nil
}

// FirstChild returns the first child element, or nil.
func (e *Element) FirstChild() *Element {
	for i := range e.Children {
		if c := e.Children[i].Elem; c != nil {
			return c
		}
	}
	return nil
}

// Elements iterates over the child elements.
func (e *Element) Elements() iter.Seq[*Element] {
	return func(yield func(*Element) bool) {
		for i := range e.Children {
			if c := e.Children[i].Elem; c != nil && !yield(c) {
				return
			}
		}
	}
}

// ChildrenNamed iterates over the child elements with the given name and namespace.
func (e *Element) ChildrenNamed(name, ns string) iter.Seq[*Element] {
	return func(yield func(*Element) bool) {
		for i := range e.Children {
			if c := e.Children[i].Elem; c != nil && c.Name == name && c.NS == ns && !yield(c) {
				return
			}
		}
	}
}

// Text returns the character data directly inside e (not of its descendants).
func (e *Element) Text() string {
	var text string
	n := 0
	for i := range e.Children {
		if e.Children[i].Elem == nil {
			text = e.Children[i].Text
			n++
		}
	}
	if n <= 1 {
		return text
	}
	var sb strings.Builder
	for i := range e.Children {
		if e.Children[i].Elem == nil {
			sb.WriteString(e.Children[i].Text)
		}
	}
	return sb.String()
}

// ChildText returns the text of the first child with the given name and namespace.
func (e *Element) ChildText(name, ns string) string {
	if c := e.Child(name, ns); c != nil {
		return c.Text()
	}
	return ""
}

// RemoveChildren removes the child elements with the given name and
// namespace and returns e. Like RemoveAttr it copies the child list.
func (e *Element) RemoveChildren(name, ns string) *Element {
	kept := make([]Node, 0, len(e.Children))
	for _, n := range e.Children {
		if n.Elem != nil && n.Elem.Name == name && n.Elem.NS == ns {
			continue
		}
		kept = append(kept, n)
	}
	e.Children = kept
	return e
}

// ShallowCopy returns a copy of e with its own attribute and child lists;
// the children themselves are shared. It is the cheap way to change the
// attributes of a received stanza (stamping from/to) or to add a child.
func (e *Element) ShallowCopy() *Element {
	c := &Element{Name: e.Name, NS: e.NS}
	if len(e.Attrs) > 0 {
		c.Attrs = make([]Attr, len(e.Attrs), len(e.Attrs)+1)
		copy(c.Attrs, e.Attrs)
	}
	if len(e.Children) > 0 {
		c.Children = make([]Node, len(e.Children), len(e.Children)+1)
		copy(c.Children, e.Children)
	}
	return c
}

// Clone returns a deep copy of e. Strings are immutable and stay shared.
func (e *Element) Clone() *Element {
	c := e.ShallowCopy()
	for i := range c.Children {
		if c.Children[i].Elem != nil {
			c.Children[i].Elem = c.Children[i].Elem.Clone()
		}
	}
	return c
}

// Equal reports whether a and b are the same tree: same names, namespaces,
// attributes (in any order) and children, where adjacent runs of character
// data count as one and empty runs are ignored.
func Equal(a, b *Element) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Name != b.Name || a.NS != b.NS || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for _, x := range a.Attrs {
		if v, ok := b.LookupAttr(x.NS, x.Name); !ok || v != x.Value {
			return false
		}
	}
	ca, cb := normalizedChildren(a), normalizedChildren(b)
	if len(ca) != len(cb) {
		return false
	}
	for i := range ca {
		if (ca[i].Elem == nil) != (cb[i].Elem == nil) {
			return false
		}
		if ca[i].Elem == nil {
			if ca[i].Text != cb[i].Text {
				return false
			}
		} else if !Equal(ca[i].Elem, cb[i].Elem) {
			return false
		}
	}
	return true
}

// normalizedChildren merges adjacent text nodes and drops empty ones.
func normalizedChildren(e *Element) []Node {
	clean := true
	for i, n := range e.Children {
		if n.Elem == nil && (n.Text == "" || i > 0 && e.Children[i-1].Elem == nil) {
			clean = false
			break
		}
	}
	if clean {
		return e.Children
	}
	out := make([]Node, 0, len(e.Children))
	for _, n := range e.Children {
		if n.Elem == nil {
			if n.Text == "" {
				continue
			}
			if len(out) > 0 && out[len(out)-1].Elem == nil {
				out[len(out)-1].Text += n.Text
				continue
			}
		}
		out = append(out, n)
	}
	return out
}
