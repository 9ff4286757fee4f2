package xmlstream

import (
	"strconv"
	"sync"
	"unicode/utf8"
)

// Scope is the namespace context an element is written into.
type Scope struct {
	// DefaultNS is the default namespace in scope: "jabber:client" for a
	// first-level element of a client stream. An element in this namespace
	// is written without an xmlns attribute.
	DefaultNS string
	// StreamPrefix says the "stream" prefix is bound to NSStream, as it is
	// inside an XMPP stream; elements in NSStream are then written as
	// <stream:features/>, <stream:error/>.
	StreamPrefix bool

	declareStream bool // declare the stream prefix on this element
}

// StreamScope is the scope of a first-level element of a stream whose
// content namespace is ns (RFC 6120 §4.8.2).
func StreamScope(ns string) Scope { return Scope{DefaultNS: ns, StreamPrefix: true} }

// AppendXML appends the serialization of e to dst, with the namespace
// declarations e needs in scope s and none that it inherits. Character data
// and attribute values are escaped; characters XML cannot carry are replaced
// by U+FFFD so the output is always well-formed.
func (e *Element) AppendXML(dst []byte, s Scope) []byte {
	dst = append(dst, '<')
	prefixed := e.NS == NSStream && s.StreamPrefix
	if prefixed {
		dst = append(dst, "stream:"...)
	}
	dst = append(dst, e.Name...)
	if prefixed && s.declareStream {
		dst = append(dst, " xmlns:stream='"...)
		dst = append(dst, NSStream...)
		dst = append(dst, '\'')
	}
	if !prefixed && e.NS != s.DefaultNS {
		dst = append(dst, " xmlns='"...)
		dst = AppendEscapedAttr(dst, e.NS)
		dst = append(dst, '\'')
		s.DefaultNS = e.NS
	}
	generated := 0
	for i, a := range e.Attrs {
		dst = append(dst, ' ')
		switch {
		case a.NS == "":
		case a.NS == NSXML:
			dst = append(dst, "xml:"...)
		default:
			// A namespaced attribute other than xml:*: declare a prefix for
			// it on this element (rare in XMPP, but it must round-trip).
			p := attrPrefix(e.Attrs[:i], a.NS)
			if p < 0 {
				generated++
				p = generated
				dst = append(dst, "xmlns:ns"...)
				dst = strconv.AppendInt(dst, int64(p), 10)
				dst = append(dst, "='"...)
				dst = AppendEscapedAttr(dst, a.NS)
				dst = append(dst, "' "...)
			}
			dst = append(dst, "ns"...)
			dst = strconv.AppendInt(dst, int64(p), 10)
			dst = append(dst, ':')
		}
		dst = append(dst, a.Name...)
		dst = append(dst, "='"...)
		dst = AppendEscapedAttr(dst, a.Value)
		dst = append(dst, '\'')
	}
	if len(e.Children) == 0 {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	child := Scope{DefaultNS: s.DefaultNS, StreamPrefix: s.StreamPrefix}
	for i := range e.Children {
		if c := e.Children[i].Elem; c != nil {
			dst = c.AppendXML(dst, child)
		} else {
			dst = AppendEscapedText(dst, e.Children[i].Text)
		}
	}
	dst = append(dst, "</"...)
	if prefixed {
		dst = append(dst, "stream:"...)
	}
	dst = append(dst, e.Name...)
	return append(dst, '>')
}

// attrPrefix returns the number of the generated prefix already declared for
// ns by an earlier attribute of the same element, or -1.
func attrPrefix(earlier []Attr, ns string) int {
	n := 0
	seen := make([]string, 0, 4)
	for _, a := range earlier {
		if a.NS == "" || a.NS == NSXML {
			continue
		}
		known := false
		for _, s := range seen {
			if s == a.NS {
				known = true
				break
			}
		}
		if known {
			continue
		}
		seen = append(seen, a.NS)
		n++
		if a.NS == ns {
			return n
		}
	}
	return -1
}

// AppendStandalone appends e as a document of its own, the way RFC 7395
// §3.3.3 frames carry elements: its namespace declared, and an element of
// the streams namespace written with the stream prefix and its
// declaration (<stream:features xmlns:stream='…'>).
func (e *Element) AppendStandalone(dst []byte) []byte {
	if e.NS == NSStream {
		return e.AppendXML(dst, Scope{StreamPrefix: true, declareStream: true})
	}
	return e.AppendXML(dst, Scope{})
}

// String returns e serialized as a standalone element, with one
// allocation: it is how modules store stanzas (the archive, the inbox).
func (e *Element) String() string {
	bp := stringBuffers.Get().(*[]byte)
	b := e.AppendXML((*bp)[:0], Scope{})
	s := string(b)
	if cap(b) <= 64<<10 {
		*bp = b
		stringBuffers.Put(bp)
	}
	return s
}

var stringBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1<<10); return &b }}

// Escape classes: 0 copy as is, 1 escape, 2 not an XML character, 3 start
// of a multi-byte UTF-8 sequence (checked on the slow path).
var textEscape, attrEscape [256]uint8

func init() {
	for c := 0; c < 0x20; c++ {
		textEscape[c], attrEscape[c] = 2, 2
	}
	for c := 0x80; c < 0x100; c++ {
		textEscape[c], attrEscape[c] = 3, 3
	}
	textEscape['\t'], textEscape['\n'] = 0, 0
	for _, c := range "&<>\r" {
		textEscape[c] = 1
	}
	for _, c := range "&<'\t\n\r" {
		attrEscape[c] = 1
	}
}

// AppendEscapedText appends s escaped as character data. Carriage returns
// are written as &#xD; so that they survive line-end normalization.
func AppendEscapedText(dst []byte, s string) []byte {
	return appendEscaped(dst, s, &textEscape)
}

// AppendEscapedAttr appends s escaped for an attribute value quoted with
// apostrophes. Tabs and line ends are written as character references so
// that attribute-value normalization leaves them intact.
func AppendEscapedAttr(dst []byte, s string) []byte {
	return appendEscaped(dst, s, &attrEscape)
}

func appendEscaped(dst []byte, s string, class *[256]uint8) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch class[c] {
		case 0:
			i++
			continue
		case 3:
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r != utf8.RuneError || size > 1) && r != 0xFFFE && r != 0xFFFF {
				i += size
				continue
			}
			dst = append(dst, s[last:i]...)
			dst = append(dst, "\uFFFD"...)
			i += size
			last = i
			continue
		case 2:
			dst = append(dst, s[last:i]...)
			dst = append(dst, "\uFFFD"...)
		default:
			dst = append(dst, s[last:i]...)
			dst = append(dst, escapeOf(c)...)
		}
		i++
		last = i
	}
	return append(dst, s[last:]...)
}

func escapeOf(c byte) string {
	switch c {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	case '\'':
		return "&apos;"
	case '\t':
		return "&#x9;"
	case '\n':
		return "&#xA;"
	default: // '\r'
		return "&#xD;"
	}
}
