package xmlstream

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// Limits bound what a peer can make the parser hold. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	// MaxElementBytes bounds the raw size of one first-level element (a
	// stanza), and of the stream header.
	MaxElementBytes int
	// MaxDepth bounds the nesting of elements inside a first-level element
	// (the first-level element itself is depth 1).
	MaxDepth int
	// MaxAttrs bounds the attributes of one element, namespace declarations
	// included.
	MaxAttrs int
	// MaxTextBytes bounds one run of character data.
	MaxTextBytes int
	// MaxAttrBytes bounds one attribute value.
	MaxAttrBytes int
}

// DefaultLimits are the limits used for zero Limits fields.
var DefaultLimits = Limits{
	MaxElementBytes: 64 << 10,
	MaxDepth:        64,
	MaxAttrs:        64,
	MaxTextBytes:    64 << 10,
	MaxAttrBytes:    16 << 10,
}

// maxNameBytes bounds element and attribute names; no protocol needs more.
const maxNameBytes = 1024

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxElementBytes > 0 {
		d.MaxElementBytes = l.MaxElementBytes
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxAttrs > 0 {
		d.MaxAttrs = l.MaxAttrs
	}
	if l.MaxTextBytes > 0 {
		d.MaxTextBytes = l.MaxTextBytes
	}
	if l.MaxAttrBytes > 0 {
		d.MaxAttrBytes = l.MaxAttrBytes
	}
	return d
}

// Mode says what the top level of the input is.
type Mode uint8

const (
	// ModeStream parses an XMPP stream: an optional XML declaration, the
	// <stream:stream> header, first-level elements, </stream:stream>.
	ModeStream Mode = iota
	// ModeFragments parses a sequence of standalone elements, each a
	// document of its own: the frames of RFC 7395 (WebSocket), for instance.
	ModeFragments
)

// EventKind is the kind of an Event.
type EventKind uint8

const (
	EventNone        EventKind = iota // all input consumed; feed more
	EventStreamOpen                   // the stream header was read
	EventElement                      // a complete first-level element was read
	EventStreamClose                  // </stream:stream> was read
)

// Event is what Next yields.
type Event struct {
	Kind EventKind
	// Element is the stream header (EventStreamOpen, without children) or
	// the complete first-level element (EventElement).
	Element *Element
	// Decls holds the namespace declarations of the stream header
	// (EventStreamOpen): Name is the prefix, "" for the default namespace,
	// and Value the namespace name.
	Decls []Attr
}

type state uint8

const (
	sContent   state = iota // character data (or white space between elements)
	sLT                     // after '<'
	sStartName              // element name of a start tag
	sTag                    // inside a start tag, between attributes
	sAttrName               // attribute name
	sAttrEq                 // after an attribute name, expecting '='
	sAttrQuote              // after '=', expecting a quote
	sAttrValue              // attribute value
	sEmptyEnd               // after '/' in a start tag
	sEndName                // element name of an end tag
	sEndTail                // after the name of an end tag, expecting '>'
	sBang                   // after "<!"
	sCDATA                  // inside a CDATA section
	sPI                     // inside "<?...?>" (only the XML declaration is allowed)
	sEntity                 // after '&'
	sDone                   // after </stream:stream>
)

// Parser is a resumable, namespace-aware parser for the restricted XML of
// RFC 6120 §11. Input is handed over with Feed in chunks split anywhere;
// all partial state lives in the Parser, so no goroutine is needed and the
// caller may reuse its read buffer once Next has returned EventNone.
//
// Between first-level elements the parser holds only a few hundred bytes:
// the working buffers of an element being parsed come from a pool and go
// back to it when the element is complete.
type Parser struct {
	lim  Limits
	mode Mode
	in   []byte
	err  error

	state   state
	depth   int   // open elements, the stream element included
	base    int   // depth of the level whose children are first-level elements
	offset  int64 // bytes consumed so far
	ltAt    int64 // offset of the last '<'
	startAt int64 // offset where the current first-level element began
	b       *builder

	streamQName string // raw qualified name of the stream element, to match its end tag
	streamDecls []Attr // namespace declarations of the stream header
	pendClose   bool   // an empty stream element: report the close next

	// Scratch state of the scanner.
	name     []byte   // end tag name
	quote    byte     // quote of the current attribute value
	sawSpace bool     // white space seen since the last attribute
	skipLF   bool     // a CR was just normalized; drop a following LF
	bracket  int      // consecutive ']' seen (for "]]>")
	bang     int      // bytes of "[CDATA[" matched after "<!"
	entRet   state    // state to return to after an entity reference
	ent      [10]byte // entity reference being read
	entLen   int
	pi       []byte // the XML declaration being read
	piStart  bool   // the current "<?" is the first thing in the input
	tagQName span   // qualified name of the current start tag
	tagColon int
	valStart int // offset in the builder of the current attribute value
}

// NewParser returns a parser for the given mode with the given limits.
func NewParser(mode Mode, lim Limits) *Parser {
	return &Parser{lim: lim.withDefaults(), mode: mode}
}

// Reset makes the parser ready for a new stream (a stream restart after
// STARTTLS or SASL, RFC 6120 §4.3.3) or a new frame. Limits and mode are kept.
func (p *Parser) Reset() {
	if p.b != nil {
		p.b.release()
	}
	*p = Parser{lim: p.lim, mode: p.mode, name: p.name[:0]}
}

// Restart is Reset for a stream restart after SASL (RFC 6120 §6.4.6),
// where the client may already have sent the new stream header: input fed
// and not yet consumed is kept.
func (p *Parser) Restart() {
	in := p.in
	p.Reset()
	p.in = in
}

// Limits returns the limits in force.
func (p *Parser) Limits() Limits { return p.lim }

// InElement reports whether a first-level element has begun and is not
// complete yet.
func (p *Parser) InElement() bool { return p.b != nil }

// Feed hands the next chunk of input to the parser. It must be called only
// when the previous chunk has been consumed (Next returned EventNone).
func (p *Parser) Feed(data []byte) {
	if len(p.in) > 0 {
		panic("xmlstream: Feed called before the previous input was consumed")
	}
	p.in = data
}

// Next returns the next event from the input fed so far. EventNone means
// that all of it has been consumed. After an error, Next keeps returning it.
func (p *Parser) Next() (Event, error) {
	if p.err != nil {
		return Event{}, p.err
	}
	if p.pendClose {
		p.pendClose = false
		return Event{Kind: EventStreamClose}, nil
	}
	for len(p.in) > 0 {
		in := p.in
		if p.b != nil {
			// Never look further than the element limit allows: a peer that
			// sends more is told so without us copying the excess.
			if allow := int64(p.lim.MaxElementBytes) - (p.offset - p.startAt); int64(len(in)) > allow {
				in = in[:max(allow, 0)+1]
			}
		}
		n, ev, err := p.parse(in)
		p.in = p.in[n:]
		p.offset += int64(n)
		if err != nil {
			p.err = err
			p.in = nil
			if p.b != nil {
				p.b.release()
				p.b = nil
			}
			return Event{}, err
		}
		if ev.Kind != EventNone {
			return ev, nil
		}
		if p.b != nil && p.offset-p.startAt > int64(p.lim.MaxElementBytes) {
			return Event{}, p.fail(CondPolicyViolation, 0, "element larger than the limit")
		}
	}
	p.in = nil
	return Event{}, nil
}

func (p *Parser) fail(cond string, at int, msg string) error {
	p.err = &Error{Condition: cond, Offset: p.offset + int64(at), Msg: msg}
	p.in = nil
	if p.b != nil {
		p.b.release()
		p.b = nil
	}
	return p.err
}

func (p *Parser) errAt(cond string, at int, msg string) error {
	return &Error{Condition: cond, Offset: p.offset + int64(at), Msg: msg}
}

// parse consumes in until it has an event to report or in is exhausted.
func (p *Parser) parse(in []byte) (int, Event, error) {
	i := 0
	for i < len(in) {
		switch p.state {
		case sContent:
			if p.b == nil {
				// Between first-level elements: white space only.
				for i < len(in) && isSpace(in[i]) {
					i++
				}
				if i == len(in) {
					break
				}
				c := in[i]
				if c == '<' {
					p.ltAt = p.offset + int64(i)
					p.state = sLT
					i++
					continue
				}
				if p.offset+int64(i) == 0 && (c == 0 || c == 0xFE || c == 0xFF) {
					return i, Event{}, p.errAt(CondUnsupportedEncoding, i, "input is not UTF-8")
				}
				if p.mode == ModeStream && p.depth == 1 {
					return i, Event{}, p.errAt(CondBadFormat, i, "character data between first-level elements")
				}
				return i, Event{}, p.errAt(CondNotWellFormed, i, "character data outside the root element")
			}
			if p.skipLF {
				p.skipLF = false
				if in[i] == '\n' {
					i++
					continue
				}
			}
			if p.bracket > 0 {
				if in[i] == '>' && p.bracket >= 2 {
					return i, Event{}, p.errAt(CondNotWellFormed, i, "\"]]>\" in character data")
				}
				if in[i] != ']' {
					p.bracket = 0
				}
			}
			start := i
			for i < len(in) && textClass[in[i]] == 0 {
				i++
			}
			if i > start {
				if err := p.appendText(in[start:i], i); err != nil {
					return i, Event{}, err
				}
			}
			if i == len(in) {
				break
			}
			switch c := in[i]; c {
			case '<':
				p.ltAt = p.offset + int64(i)
				p.state = sLT
			case '&':
				p.entRet, p.entLen, p.state = sContent, 0, sEntity
			case ']':
				p.bracket++
				if err := p.appendText(in[i:i+1], i+1); err != nil {
					return i, Event{}, err
				}
			case '\r':
				// XML §2.11: CR LF and lone CR become LF.
				if err := p.appendText([]byte{'\n'}, i+1); err != nil {
					return i, Event{}, err
				}
				if i+1 < len(in) {
					if in[i+1] == '\n' {
						i++
					}
				} else {
					p.skipLF = true
				}
			default:
				return i, Event{}, p.errAt(CondNotWellFormed, i, "character not allowed in XML")
			}
			i++

		case sLT:
			c := in[i]
			switch {
			case c == '/':
				if p.depth == 0 || p.depth <= p.base && p.mode == ModeFragments {
					return i, Event{}, p.errAt(CondNotWellFormed, i, "end tag without start tag")
				}
				if p.b != nil {
					if err := p.closeText(i); err != nil {
						return i, Event{}, err
					}
				}
				p.name = p.name[:0]
				p.state = sEndName
				i++
				// Fast path: the whole end tag is in the buffer and matches
				// the open element, as it nearly always does.
				if b := p.b; b != nil && len(b.stack) > 0 {
					qn := b.buf[b.stack[len(b.stack)-1].qname.off:]
					qn = qn[:b.stack[len(b.stack)-1].qname.n]
					if end := i + len(qn); end < len(in) && in[end] == '>' && string(in[i:end]) == string(qn) {
						i = end + 1
						p.state = sContent
						ev, err := p.closeElement(i)
						if err != nil || ev.Kind != EventNone {
							return i, ev, err
						}
					}
				}
			case c == '!':
				p.bang = 0
				p.state = sBang
				i++
			case c == '?':
				p.piStart = p.ltAt == 0
				p.pi = p.pi[:0]
				p.state = sPI
				i++
			case nameByte[c] && c != ':' && c != '.' && c != '-' && (c < '0' || c > '9'):
				if p.b == nil {
					// A first-level element (or the stream header) begins.
					// Return so that Next applies the element limit to the
					// rest of the input.
					p.b = acquireBuilder(p.streamDecls, p.depth > 0)
					p.startAt = p.ltAt
					p.tagQName = span{}
					p.state = sStartName
					return i, Event{}, nil
				}
				if err := p.closeText(i); err != nil {
					return i, Event{}, err
				}
				if len(p.b.stack) >= p.lim.MaxDepth {
					return i, Event{}, p.errAt(CondPolicyViolation, i, "elements nested deeper than the limit")
				}
				p.b.raw = p.b.raw[:0]
				p.tagQName = span{off: int32(len(p.b.buf))}
				p.state = sStartName
			default:
				return i, Event{}, p.errAt(CondNotWellFormed, i, "invalid character after '<'")
			}

		case sStartName, sAttrName:
			b := p.b
			if p.state == sStartName && int(p.tagQName.off) == len(b.buf) {
				// Fast path: the whole start tag is in the input and simple.
				if next, empty, ok := p.fastStartTag(in, i); ok {
					i = next
					ev, err := p.endStartTag(empty, i)
					if err != nil || ev.Kind != EventNone {
						return i, ev, err
					}
					continue
				}
			}
			start := i
			for i < len(in) && nameByte[in[i]] {
				i++
			}
			var nameStart int32
			if p.state == sStartName {
				nameStart = p.tagQName.off
			} else {
				nameStart = b.raw[len(b.raw)-1].qname.off
			}
			if over := len(b.buf) + i - start - int(nameStart) - maxNameBytes; over > 0 {
				return i, Event{}, p.errAt(CondPolicyViolation, i-over, "name longer than the limit")
			}
			b.buf = append(b.buf, in[start:i]...)
			if i == len(in) {
				break
			}
			name := b.buf[nameStart:]
			colon, ok := checkQName(name)
			if !ok {
				return i, Event{}, p.errAt(CondNotWellFormed, i, "invalid name")
			}
			if p.state == sStartName {
				p.tagQName.n = int32(len(name))
				p.tagColon = colon
				p.state = sTag
				p.sawSpace = false
			} else {
				b.raw[len(b.raw)-1].qname.n = int32(len(name))
				b.raw[len(b.raw)-1].colon = int32(colon)
				p.state = sAttrEq
				// Fast path: name='value without white space around '='.
				if i+1 < len(in) && in[i] == '=' && (in[i+1] == '\'' || in[i+1] == '"') {
					p.quote = in[i+1]
					p.valStart = len(b.buf)
					p.state = sAttrValue
					i += 2
				}
			}

		case sTag:
			c := in[i]
			switch {
			case isSpace(c):
				p.sawSpace = true
				i++
			case c == '>':
				i++
				ev, err := p.endStartTag(false, i)
				if err != nil || ev.Kind != EventNone {
					return i, ev, err
				}
			case c == '/':
				p.state = sEmptyEnd
				i++
			case nameByte[c] && c != ':' && c != '.' && c != '-' && (c < '0' || c > '9'):
				if !p.sawSpace {
					return i, Event{}, p.errAt(CondNotWellFormed, i, "missing white space before attribute")
				}
				b := p.b
				if len(b.raw) >= p.lim.MaxAttrs {
					return i, Event{}, p.errAt(CondPolicyViolation, i, "more attributes than the limit")
				}
				b.raw = append(b.raw, rawAttr{qname: span{off: int32(len(b.buf))}})
				p.state = sAttrName
			default:
				return i, Event{}, p.errAt(CondNotWellFormed, i, "invalid character in start tag")
			}

		case sAttrEq:
			for i < len(in) && isSpace(in[i]) {
				i++
			}
			if i == len(in) {
				break
			}
			if in[i] != '=' {
				return i, Event{}, p.errAt(CondNotWellFormed, i, "expected '=' after attribute name")
			}
			p.state = sAttrQuote
			i++

		case sAttrQuote:
			for i < len(in) && isSpace(in[i]) {
				i++
			}
			if i == len(in) {
				break
			}
			if c := in[i]; c != '"' && c != '\'' {
				return i, Event{}, p.errAt(CondNotWellFormed, i, "attribute value not quoted")
			}
			p.quote = in[i]
			p.valStart = len(p.b.buf)
			p.state = sAttrValue
			i++

		case sAttrValue:
			b := p.b
			if p.skipLF {
				p.skipLF = false
				if in[i] == '\n' {
					i++
					continue
				}
			}
			class := &attrClassApos
			if p.quote == '"' {
				class = &attrClassQuot
			}
			start := i
			for i < len(in) && class[in[i]] == 0 {
				i++
			}
			if over := len(b.buf) + i - start - p.valStart - p.lim.MaxAttrBytes; over > 0 {
				return i, Event{}, p.errAt(CondPolicyViolation, i-over, "attribute value longer than the limit")
			}
			b.buf = append(b.buf, in[start:i]...)
			if i == len(in) {
				break
			}
			switch c := in[i]; c {
			case p.quote:
				val := b.buf[p.valStart:]
				if !validChars(val) {
					return i, Event{}, p.errAt(CondNotWellFormed, i, "invalid UTF-8 or character in attribute value")
				}
				b.raw[len(b.raw)-1].value = span{off: int32(p.valStart), n: int32(len(val))}
				p.sawSpace = false
				p.state = sTag
			case '&':
				p.entRet, p.entLen, p.state = sAttrValue, 0, sEntity
			case '\t', '\n', '\r':
				// XML §3.3.3: literal white space in values becomes a space
				// (after CR LF became LF, §2.11).
				b.buf = append(b.buf, ' ')
				if len(b.buf)-p.valStart > p.lim.MaxAttrBytes {
					return i, Event{}, p.errAt(CondPolicyViolation, i, "attribute value longer than the limit")
				}
				if c != '\r' {
					break
				}
				if i+1 < len(in) {
					if in[i+1] == '\n' {
						i++
					}
				} else {
					p.skipLF = true
				}
			case '<':
				return i, Event{}, p.errAt(CondNotWellFormed, i, "'<' in attribute value")
			default:
				return i, Event{}, p.errAt(CondNotWellFormed, i, "character not allowed in XML")
			}
			i++

		case sEmptyEnd:
			if in[i] != '>' {
				return i, Event{}, p.errAt(CondNotWellFormed, i, "expected '>' after '/'")
			}
			i++
			ev, err := p.endStartTag(true, i)
			if err != nil || ev.Kind != EventNone {
				return i, ev, err
			}

		case sEndName:
			start := i
			for i < len(in) && nameByte[in[i]] {
				i++
			}
			if over := len(p.name) + i - start - maxNameBytes; over > 0 {
				return i, Event{}, p.errAt(CondPolicyViolation, i-over, "name longer than the limit")
			}
			p.name = append(p.name, in[start:i]...)
			if i < len(in) {
				p.state = sEndTail
			}

		case sEndTail:
			for i < len(in) && isSpace(in[i]) {
				i++
			}
			if i == len(in) {
				break
			}
			if in[i] != '>' {
				return i, Event{}, p.errAt(CondNotWellFormed, i, "invalid character in end tag")
			}
			i++
			ev, err := p.endEndTag(i)
			if err != nil || ev.Kind != EventNone {
				return i, ev, err
			}

		case sBang:
			c := in[i]
			if p.bang == 0 {
				switch c {
				case '-':
					return i, Event{}, p.errAt(CondRestrictedXML, i, "comments are not allowed (RFC 6120 §11.1)")
				case 'D':
					return i, Event{}, p.errAt(CondRestrictedXML, i, "DTDs are not allowed (RFC 6120 §11.1)")
				case '[':
					if p.b == nil || len(p.b.stack) == 0 {
						if p.mode == ModeStream && p.depth == 1 {
							return i, Event{}, p.errAt(CondBadFormat, i, "character data between first-level elements")
						}
						return i, Event{}, p.errAt(CondNotWellFormed, i, "CDATA section outside the root element")
					}
				default:
					return i, Event{}, p.errAt(CondNotWellFormed, i, "invalid markup after \"<!\"")
				}
			} else if c != "[CDATA["[p.bang] {
				return i, Event{}, p.errAt(CondNotWellFormed, i, "invalid markup after \"<!\"")
			}
			p.bang++
			i++
			if p.bang == len("[CDATA[") {
				p.bracket = 0
				p.state = sCDATA
			}

		case sCDATA:
			if p.skipLF {
				p.skipLF = false
				if in[i] == '\n' {
					i++
					continue
				}
			}
			c := in[i]
			if p.bracket > 0 {
				if c == ']' {
					p.bracket++
					i++
					continue
				}
				n := p.bracket
				p.bracket = 0
				if c == '>' && n >= 2 {
					if err := p.appendText(bytes.Repeat([]byte{']'}, n-2), i); err != nil {
						return i, Event{}, err
					}
					p.state = sContent
					i++
					continue
				}
				if err := p.appendText(bytes.Repeat([]byte{']'}, n), i); err != nil {
					return i, Event{}, err
				}
			}
			start := i
			for i < len(in) && cdataClass[in[i]] == 0 {
				i++
			}
			if i > start {
				if err := p.appendText(in[start:i], i); err != nil {
					return i, Event{}, err
				}
			}
			if i == len(in) {
				break
			}
			switch in[i] {
			case ']':
				p.bracket = 1
			case '\r':
				if err := p.appendText([]byte{'\n'}, i+1); err != nil {
					return i, Event{}, err
				}
				if i+1 < len(in) {
					if in[i+1] == '\n' {
						i++
					}
				} else {
					p.skipLF = true
				}
			default:
				return i, Event{}, p.errAt(CondNotWellFormed, i, "character not allowed in XML")
			}
			i++

		case sPI:
			c := in[i]
			if !p.piStart {
				if len(p.pi) < 3 && c != '?' && !isSpace(c) {
					p.pi = append(p.pi, c)
					i++
					continue
				}
				if strings.EqualFold(string(p.pi), "xml") && (isSpace(c) || c == '?') {
					return i, Event{}, p.errAt(CondNotWellFormed, i, "XML declaration not at the start of the stream")
				}
				return i, Event{}, p.errAt(CondRestrictedXML, i, "processing instructions are not allowed (RFC 6120 §11.1)")
			}
			if len(p.pi) > 256 {
				return i, Event{}, p.errAt(CondNotWellFormed, i, "XML declaration too long")
			}
			p.pi = append(p.pi, c)
			i++
			if c == '>' && len(p.pi) >= 2 && p.pi[len(p.pi)-2] == '?' {
				if err := p.xmlDecl(p.pi[:len(p.pi)-2], i); err != nil {
					return i, Event{}, err
				}
				p.state = sContent
			}

		case sEntity:
			c := in[i]
			if c != ';' {
				if p.entLen == len(p.ent) {
					return i, Event{}, p.errAt(CondNotWellFormed, i, "invalid entity reference")
				}
				p.ent[p.entLen] = c
				p.entLen++
				i++
				continue
			}
			var tmp [4]byte
			r, cond, msg := decodeEntity(p.ent[:p.entLen])
			if cond != "" {
				return i, Event{}, p.errAt(cond, i, msg)
			}
			enc := appendRune(tmp[:0], r)
			if p.entRet == sContent {
				if err := p.appendText(enc, i+1); err != nil {
					return i, Event{}, err
				}
			} else {
				p.b.buf = append(p.b.buf, enc...)
				if over := len(p.b.buf) - p.valStart - p.lim.MaxAttrBytes; over > 0 {
					return i, Event{}, p.errAt(CondPolicyViolation, i+1-over, "attribute value longer than the limit")
				}
			}
			p.state = p.entRet
			i++

		case sDone:
			for i < len(in) && isSpace(in[i]) {
				i++
			}
			if i < len(in) {
				return i, Event{}, p.errAt(CondNotWellFormed, i, "data after the end of the stream")
			}
		}
	}
	return i, Event{}, nil
}

// fastStartTag reads a start tag whose name begins at in[i] in one go when
// all of it is in the input and it holds nothing the state machine has
// more to do for: names within the limits, attribute values quoted right
// after '=' without references, white space to normalize or invalid
// characters, no more attributes than the limit. It leaves the builder as
// the state machine would (name and attributes appended, raw attributes
// recorded) and returns the offset after the tag and whether it was an
// empty-element tag. Otherwise it returns ok false and leaves everything
// as it was, and the state machine reads the tag, reporting any error.
func (p *Parser) fastStartTag(in []byte, i int) (next int, empty, ok bool) {
	b := p.b
	buf0 := len(b.buf)
	j := i
	for j < len(in) && nameByte[in[j]] {
		j++
	}
	if j == len(in) || j-i > maxNameBytes {
		return 0, false, false
	}
	colon, ok := checkQName(in[i:j])
	if !ok {
		return 0, false, false
	}
	b.buf = append(b.buf, in[i:j]...)
	p.tagQName.n, p.tagColon = int32(j-i), colon
	for {
		s := j
		for j < len(in) && isSpace(in[j]) {
			j++
		}
		if j == len(in) {
			break
		}
		c := in[j]
		if c == '>' {
			return j + 1, false, true
		}
		if c == '/' {
			if j+1 < len(in) && in[j+1] == '>' {
				return j + 2, true, true
			}
			break
		}
		if j == s || len(b.raw) >= p.lim.MaxAttrs {
			break
		}
		ns := j
		for j < len(in) && nameByte[in[j]] {
			j++
		}
		if j+1 >= len(in) || j-ns > maxNameBytes || in[j] != '=' {
			break
		}
		colon, ok := checkQName(in[ns:j])
		q := in[j+1]
		if !ok || q != '\'' && q != '"' {
			break
		}
		ne := j
		j += 2
		class := &attrClassApos
		if q == '"' {
			class = &attrClassQuot
		}
		vs := j
		for j < len(in) && class[in[j]] == 0 {
			j++
		}
		if j == len(in) || in[j] != q || j-vs > p.lim.MaxAttrBytes || !validChars(in[vs:j]) {
			break
		}
		off := int32(len(b.buf))
		b.buf = append(b.buf, in[ns:ne]...)
		b.buf = append(b.buf, in[vs:j]...)
		b.raw = append(b.raw, rawAttr{
			qname: span{off: off, n: int32(ne - ns)},
			value: span{off: off + int32(ne-ns), n: int32(j - vs)},
			colon: int32(colon),
		})
		j++
	}
	b.buf = b.buf[:buf0]
	b.raw = b.raw[:0]
	p.tagQName.n, p.tagColon = 0, 0
	return 0, false, false
}

func appendRune(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
	case r < 0x10000:
		return append(dst, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	default:
		return append(dst, 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	}
}

// decodeEntity resolves the predefined entities and character references
// (XML §4.1, §4.6); every other entity is forbidden by RFC 6120 §11.1.
func decodeEntity(name []byte) (rune, string, string) {
	switch string(name) {
	case "lt":
		return '<', "", ""
	case "gt":
		return '>', "", ""
	case "amp":
		return '&', "", ""
	case "quot":
		return '"', "", ""
	case "apos":
		return '\'', "", ""
	}
	if len(name) >= 2 && name[0] == '#' {
		var r rune
		digits := name[1:]
		base := rune(10)
		if digits[0] == 'x' {
			digits, base = digits[1:], 16
		}
		if len(digits) == 0 {
			return 0, CondNotWellFormed, "invalid character reference"
		}
		for _, c := range digits {
			var d rune
			switch {
			case '0' <= c && c <= '9':
				d = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				d = rune(c-'A') + 10
			default:
				return 0, CondNotWellFormed, "invalid character reference"
			}
			r = r*base + d
			if r > 0x10FFFF {
				return 0, CondNotWellFormed, "invalid character reference"
			}
		}
		if !isChar(r) {
			return 0, CondNotWellFormed, "character reference to a character not allowed in XML"
		}
		return r, "", ""
	}
	if _, ok := checkQName(name); ok {
		return 0, CondRestrictedXML, "entity references other than the predefined ones are not allowed (RFC 6120 §11.1)"
	}
	return 0, CondNotWellFormed, "invalid entity reference"
}

// xmlDecl checks an XML declaration (XML §2.8) without its "<?" and "?>".
func (p *Parser) xmlDecl(decl []byte, at int) error {
	rest, ok := bytes.CutPrefix(decl, []byte("xml"))
	if !ok || len(rest) == 0 || !isSpace(rest[0]) {
		return p.errAt(CondRestrictedXML, at, "processing instructions are not allowed (RFC 6120 §11.1)")
	}
	seen := 0
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		name, value, ok := pseudoAttr(&rest)
		if !ok {
			return p.errAt(CondNotWellFormed, at, "malformed XML declaration")
		}
		switch {
		case name == "version" && seen == 0:
			// RFC 6120 §11.8: XMPP is XML 1.0.
			if value != "1.0" {
				return p.errAt(CondNotWellFormed, at, "unsupported XML version")
			}
			seen = 1
		case name == "encoding" && seen == 1:
			// RFC 6120 §11.6: UTF-8 only.
			if !strings.EqualFold(value, "utf-8") {
				return p.errAt(CondUnsupportedEncoding, at, "encoding "+value+" is not UTF-8")
			}
			seen = 2
		case name == "standalone" && seen >= 1 && seen <= 2:
			// RFC 6120 §11.5 lets us ignore the standalone declaration.
			if value != "yes" && value != "no" {
				return p.errAt(CondNotWellFormed, at, "malformed XML declaration")
			}
			seen = 3
		default:
			return p.errAt(CondNotWellFormed, at, "malformed XML declaration")
		}
	}
	if seen == 0 {
		return p.errAt(CondNotWellFormed, at, "XML declaration without version")
	}
	return nil
}

func pseudoAttr(rest *[]byte) (name, value string, ok bool) {
	s := *rest
	eq := bytes.IndexByte(s, '=')
	if eq <= 0 {
		return "", "", false
	}
	name = string(bytes.TrimRight(s[:eq], " \t\r\n"))
	s = bytes.TrimLeft(s[eq+1:], " \t\r\n")
	if len(s) == 0 || s[0] != '"' && s[0] != '\'' {
		return "", "", false
	}
	end := bytes.IndexByte(s[1:], s[0])
	if end < 0 {
		return "", "", false
	}
	value = string(s[1 : 1+end])
	s = s[end+2:]
	if len(s) > 0 && !isSpace(s[0]) {
		return "", "", false
	}
	*rest = s
	return name, value, true
}

// appendText adds character data to the element being built; end is the
// input offset just after the bytes it came from.
func (p *Parser) appendText(text []byte, end int) error {
	b := p.b
	if !b.textOpen {
		b.textOpen = true
		b.textStart = int32(len(b.buf))
	}
	// Checked before copying: a peer that sends more is refused without
	// the excess being buffered.
	if over := len(b.buf) + len(text) - int(b.textStart) - p.lim.MaxTextBytes; over > 0 {
		return p.errAt(CondPolicyViolation, end-over, "character data longer than the limit")
	}
	b.buf = append(b.buf, text...)
	return nil
}

// closeText ends the current run of character data, if any, checking its
// encoding now that all of its bytes are in.
func (p *Parser) closeText(at int) error {
	b := p.b
	if !b.textOpen {
		return nil
	}
	b.textOpen = false
	text := b.buf[b.textStart:]
	if !validChars(text) {
		return p.errAt(CondNotWellFormed, at, "invalid UTF-8 or character in character data")
	}
	parent := b.stack[len(b.stack)-1].elem
	b.items = append(b.items, item{idx: -1, parent: parent, s: span{off: b.textStart, n: int32(len(text))}})
	b.elems[parent].nchild++
	b.nchild++
	return nil
}

// endStartTag resolves the namespaces of the start tag just read and opens
// the element. at is the offset just after the tag.
func (p *Parser) endStartTag(empty bool, at int) (Event, error) {
	b := p.b
	p.state = sContent
	declBase := int32(len(b.decls))
	// Namespace declarations first (Namespaces in XML §3): they apply to the
	// element's own name and attributes.
	for k := range b.raw {
		ra := &b.raw[k]
		q := b.bytes(ra.qname)
		var prefix span
		switch {
		case string(q) == "xmlns":
			if ra.value.n > 0 {
				if v := b.bytes(ra.value); string(v) == NSXML || string(v) == NSXMLNS {
					return Event{}, p.errAt(CondNotWellFormed, at, "reserved namespace used as default namespace")
				}
			}
		case ra.colon == 5 && string(q[:5]) == "xmlns":
			prefix = span{off: ra.qname.off + 6, n: ra.qname.n - 6}
			pfx, val := b.bytes(prefix), b.bytes(ra.value)
			isXML := string(pfx) == "xml"
			switch {
			case string(pfx) == "xmlns":
				return Event{}, p.errAt(CondNotWellFormed, at, "the xmlns prefix cannot be declared")
			case ra.value.n == 0:
				return Event{}, p.errAt(CondNotWellFormed, at, "a prefix cannot be undeclared")
			case isXML && string(val) != NSXML, !isXML && (string(val) == NSXML || string(val) == NSXMLNS):
				return Event{}, p.errAt(CondNotWellFormed, at, "reserved prefix or namespace misused")
			}
		default:
			continue
		}
		ra.decl = true
		for d := declBase; d < int32(len(b.decls)); d++ {
			if b.equal(b.decls[d].prefix, b.bytes(prefix)) {
				return Event{}, p.errAt(CondNotWellFormed, at, "duplicate namespace declaration")
			}
		}
		b.decls = append(b.decls, decl{prefix: prefix, uri: ra.value})
	}

	ns := b.lookup(nil)
	local := p.tagQName
	if p.tagColon >= 0 {
		pfx := b.bytes(p.tagQName)[:p.tagColon]
		if ns = b.lookup(pfx); ns.off == spanUnbound {
			return Event{}, p.errAt(CondNotWellFormed, at, "unbound namespace prefix "+string(pfx))
		}
		local = span{off: p.tagQName.off + int32(p.tagColon) + 1, n: p.tagQName.n - int32(p.tagColon) - 1}
	}

	attrBase := len(b.attrs)
	for k := range b.raw {
		ra := &b.raw[k]
		if ra.decl {
			continue
		}
		a := attr{name: ra.qname, ns: spanEmpty, value: ra.value}
		if ra.colon >= 0 {
			pfx := b.bytes(span{off: ra.qname.off, n: ra.colon})
			a.ns = b.lookup(pfx)
			if a.ns.off == spanUnbound {
				return Event{}, p.errAt(CondNotWellFormed, at, "unbound namespace prefix "+string(pfx))
			}
			a.name = span{off: ra.qname.off + ra.colon + 1, n: ra.qname.n - ra.colon - 1}
		}
		// Namespaces in XML §6.3: no two attributes with the same expanded name.
		for j := attrBase; j < len(b.attrs); j++ {
			if b.spanEqual(b.attrs[j].name, a.name) && b.spanEqual(b.attrs[j].ns, a.ns) {
				return Event{}, p.errAt(CondNotWellFormed, at, "duplicate attribute")
			}
		}
		b.attrs = append(b.attrs, a)
	}

	if p.mode == ModeStream && p.depth == 0 {
		return p.openStream(empty, local, ns, at)
	}

	idx := int32(len(b.elems))
	b.elems = append(b.elems, elem{name: local, ns: ns, attr: int32(attrBase), nattr: int32(len(b.attrs) - attrBase)})
	if len(b.stack) > 0 {
		parent := b.stack[len(b.stack)-1].elem
		b.elems[parent].nchild++
		b.nchild++
		b.items = append(b.items, item{idx: idx, parent: parent})
	}
	b.stack = append(b.stack, frame{elem: idx, qname: p.tagQName, declBase: declBase})
	p.depth++
	if empty {
		return p.closeElement(at)
	}
	return Event{}, nil
}

// openStream completes the stream header (RFC 6120 §4.7).
func (p *Parser) openStream(empty bool, local, ns span, at int) (Event, error) {
	b := p.b
	b.elems = append(b.elems, elem{name: local, ns: ns, attr: 0, nattr: int32(len(b.attrs))})
	arena := string(b.buf)
	header := b.materialize(arena)
	decls := make([]Attr, len(b.decls))
	for k, d := range b.decls {
		decls[k] = Attr{Name: b.str(arena, d.prefix), Value: b.str(arena, d.uri)}
	}
	p.streamQName = b.str(arena, p.tagQName)
	b.release()
	p.b = nil
	if header.NS != NSStream {
		return Event{}, p.errAt(CondInvalidNamespace, at, "stream element not in the streams namespace (RFC 6120 §4.8.1)")
	}
	if header.Name != "stream" {
		return Event{}, p.errAt(CondBadFormat, at, "first element is not a stream header")
	}
	if p.offset+int64(at)-p.startAt > int64(p.lim.MaxElementBytes) {
		return Event{}, p.errAt(CondPolicyViolation, at, "stream header larger than the limit")
	}
	p.streamDecls = decls
	p.depth, p.base = 1, 1
	if empty {
		p.depth = 0
		p.state = sDone
		p.pendClose = true
	}
	return Event{Kind: EventStreamOpen, Element: header, Decls: decls}, nil
}

// endEndTag matches an end tag with its start tag.
func (p *Parser) endEndTag(at int) (Event, error) {
	p.state = sContent
	if p.b == nil || len(p.b.stack) == 0 {
		// Only the stream element is open.
		if p.mode != ModeStream || p.depth != 1 || string(p.name) != p.streamQName {
			return Event{}, p.errAt(CondNotWellFormed, at, "end tag does not match start tag")
		}
		p.depth = 0
		p.state = sDone
		return Event{Kind: EventStreamClose}, nil
	}
	b := p.b
	top := b.stack[len(b.stack)-1]
	if string(b.bytes(top.qname)) != string(p.name) {
		return Event{}, p.errAt(CondNotWellFormed, at, "end tag does not match start tag")
	}
	return p.closeElement(at)
}

// closeElement closes the innermost open element and, when it is a
// first-level element, returns it.
func (p *Parser) closeElement(at int) (Event, error) {
	b := p.b
	top := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	b.decls = b.decls[:top.declBase]
	p.depth--
	if len(b.stack) > 0 {
		return Event{}, nil
	}
	if p.offset+int64(at)-p.startAt > int64(p.lim.MaxElementBytes) {
		return Event{}, p.errAt(CondPolicyViolation, at, "element larger than the limit")
	}
	root := b.materialize(string(b.buf))
	b.release()
	p.b = nil
	return Event{Kind: EventElement, Element: root}, nil
}

// Decoder reads events from an io.Reader through a Parser.
type Decoder struct {
	r   io.Reader
	p   *Parser
	buf []byte
}

// NewDecoder returns a decoder reading r with a read buffer of bufSize
// bytes (4096 if bufSize <= 0).
func NewDecoder(r io.Reader, p *Parser, bufSize int) *Decoder {
	if bufSize <= 0 {
		bufSize = 4096
	}
	return &Decoder{r: r, p: p, buf: make([]byte, bufSize)}
}

// Parser returns the decoder's parser (to Reset it on a stream restart).
func (d *Decoder) Parser() *Parser { return d.p }

// Next returns the next event, reading as much as needed. It returns the
// reader's error (io.EOF at the end of input) when no event is complete.
func (d *Decoder) Next() (Event, error) {
	for {
		ev, err := d.p.Next()
		if err != nil || ev.Kind != EventNone {
			return ev, err
		}
		n, err := d.r.Read(d.buf)
		if n > 0 {
			d.p.Feed(d.buf[:n])
			continue
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return Event{}, err
	}
}

// The builder collects one first-level element while it is parsed. All
// names, values and text are appended to buf and referred to by spans; when
// the element is complete, buf becomes one string and the tree is made with
// one allocation per kind (elements, attributes, child lists).
type builder struct {
	buf    []byte
	elems  []elem
	attrs  []attr
	raw    []rawAttr
	items  []item
	stack  []frame
	decls  []decl
	consts []string // strings outside buf, referred to by negative spans
	nchild int

	textOpen  bool
	textStart int32
}

// span is a string in the builder: buf[off:off+n], or consts[-off-1] when
// off is negative.
type span struct{ off, n int32 }

const spanUnbound = -1 << 30

var (
	spanEmpty = span{off: -1}                       // consts[0] = ""
	spanXML   = span{off: -2, n: int32(len(NSXML))} // consts[1] = NSXML
	unbound   = span{off: spanUnbound}              // lookup failure
)

type elem struct {
	name, ns    span
	attr, nattr int32
	nchild      int32
}

type attr struct{ name, ns, value span }

type rawAttr struct {
	qname, value span
	colon        int32
	decl         bool
}

// item is a child of an element in the builder, in document order: the
// element elems[idx], or the text s when idx is -1.
type item struct {
	idx    int32
	parent int32
	s      span
}

type frame struct {
	elem     int32
	qname    span
	declBase int32
}

type decl struct{ prefix, uri span }

var builderPool = sync.Pool{New: func() any { return new(builder) }}

// acquireBuilder takes a builder from the pool; inside a stream, the stream
// header's namespace declarations are in scope.
func acquireBuilder(streamDecls []Attr, inStream bool) *builder {
	b := builderPool.Get().(*builder)
	b.consts = append(b.consts[:0], "", NSXML)
	if inStream {
		for _, d := range streamDecls {
			b.decls = append(b.decls, decl{prefix: b.constSpan(d.Name), uri: b.constSpan(d.Value)})
		}
	}
	return b
}

func (b *builder) constSpan(s string) span {
	b.consts = append(b.consts, s)
	return span{off: -int32(len(b.consts)), n: int32(len(s))}
}

func (b *builder) release() {
	if cap(b.buf) > 256<<10 {
		b.buf = nil
	}
	b.buf = b.buf[:0]
	b.elems = b.elems[:0]
	b.attrs = b.attrs[:0]
	b.raw = b.raw[:0]
	b.items = b.items[:0]
	b.stack = b.stack[:0]
	b.decls = b.decls[:0]
	clear(b.consts)
	b.consts = b.consts[:0]
	b.nchild = 0
	b.textOpen = false
	builderPool.Put(b)
}

// bytes returns the bytes of a span; constant spans are converted (rare:
// only namespace prefixes of the stream header reach here).
func (b *builder) bytes(s span) []byte {
	if s.off < 0 {
		return []byte(b.consts[-s.off-1])
	}
	return b.buf[s.off : s.off+s.n]
}

func (b *builder) equal(s span, x []byte) bool {
	if s.off < 0 {
		return b.consts[-s.off-1] == string(x)
	}
	return string(b.buf[s.off:s.off+s.n]) == string(x)
}

func (b *builder) spanEqual(s, t span) bool {
	if s == t {
		return true
	}
	if s.n != t.n {
		return false
	}
	if t.off < 0 {
		s, t = t, s
	}
	return b.equal(s, b.buf[t.off:t.off+t.n])
}

// lookup resolves a namespace prefix ("" or nil for the default namespace).
func (b *builder) lookup(prefix []byte) span {
	for d := len(b.decls) - 1; d >= 0; d-- {
		if b.equal(b.decls[d].prefix, prefix) {
			return b.decls[d].uri
		}
	}
	if len(prefix) == 0 {
		return spanEmpty
	}
	if string(prefix) == "xml" {
		return spanXML
	}
	return unbound
}

func (b *builder) str(arena string, s span) string {
	if s.off < 0 {
		return b.consts[-s.off-1]
	}
	return arena[s.off : s.off+s.n]
}

// materialize builds the element tree: one allocation for the elements, one
// for the attributes, one for all child lists, and the arena string.
func (b *builder) materialize(arena string) *Element {
	elems := make([]Element, len(b.elems))
	var attrs []Attr
	if len(b.attrs) > 0 {
		attrs = make([]Attr, len(b.attrs))
		for k, a := range b.attrs {
			attrs[k] = Attr{Name: b.str(arena, a.name), NS: b.str(arena, a.ns), Value: b.str(arena, a.value)}
		}
	}
	var nodes []Node
	if b.nchild > 0 {
		nodes = make([]Node, b.nchild)
	}
	next := int32(0)
	for k := range b.elems {
		be := &b.elems[k]
		e := &elems[k]
		e.Name = b.str(arena, be.name)
		e.NS = b.str(arena, be.ns)
		if be.nattr > 0 {
			e.Attrs = attrs[be.attr : be.attr+be.nattr : be.attr+be.nattr]
		}
		if be.nchild > 0 {
			e.Children = nodes[next : next : next+be.nchild]
			next += be.nchild
		}
	}
	for _, it := range b.items {
		parent := &elems[it.parent]
		if it.idx >= 0 {
			parent.Children = append(parent.Children, Node{Elem: &elems[it.idx]})
		} else {
			parent.Children = append(parent.Children, Node{Text: b.str(arena, it.s)})
		}
	}
	return &elems[0]
}

// Parse reads one standalone element (a document of its own, such as XML
// the server stored after receiving it), with limits large enough for any
// element of that size.
func Parse(data []byte) (*Element, error) {
	n := len(data) + 1
	lim := Limits{MaxElementBytes: n, MaxTextBytes: n, MaxAttrBytes: n, MaxDepth: 1 << 10, MaxAttrs: 1 << 10}
	p := NewParser(ModeFragments, lim)
	p.Feed(data)
	ev, err := p.Next()
	if err != nil {
		return nil, err
	}
	if ev.Kind != EventElement {
		return nil, &Error{Condition: CondNotWellFormed, Offset: int64(len(data)), Msg: "no complete element"}
	}
	if rest, err := p.Next(); err != nil || rest.Kind != EventNone {
		return nil, &Error{Condition: CondNotWellFormed, Offset: int64(len(data)), Msg: "more than one element"}
	}
	return ev.Element, nil
}
