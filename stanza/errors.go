package stanza

import (
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// ErrorType is the type attribute of a stanza error (RFC 6120 §8.3.2).
type ErrorType string

const (
	ErrorAuth     ErrorType = "auth"
	ErrorCancel   ErrorType = "cancel"
	ErrorContinue ErrorType = "continue"
	ErrorModify   ErrorType = "modify"
	ErrorWait     ErrorType = "wait"
)

// Condition is a defined stanza error condition (RFC 6120 §8.3.3).
type Condition string

const (
	BadRequest            Condition = "bad-request"
	Conflict              Condition = "conflict"
	FeatureNotImplemented Condition = "feature-not-implemented"
	Forbidden             Condition = "forbidden"
	Gone                  Condition = "gone"
	InternalServerError   Condition = "internal-server-error"
	ItemNotFound          Condition = "item-not-found"
	JIDMalformed          Condition = "jid-malformed"
	NotAcceptable         Condition = "not-acceptable"
	NotAllowed            Condition = "not-allowed"
	NotAuthorized         Condition = "not-authorized"
	PolicyViolation       Condition = "policy-violation"
	RecipientUnavailable  Condition = "recipient-unavailable"
	Redirect              Condition = "redirect"
	RegistrationRequired  Condition = "registration-required"
	RemoteServerNotFound  Condition = "remote-server-not-found"
	RemoteServerTimeout   Condition = "remote-server-timeout"
	ResourceConstraint    Condition = "resource-constraint"
	ServiceUnavailable    Condition = "service-unavailable"
	SubscriptionRequired  Condition = "subscription-required"
	UndefinedCondition    Condition = "undefined-condition"
	UnexpectedRequest     Condition = "unexpected-request"
)

// DefaultType is the error type RFC 6120 §8.3.3 gives with each condition.
func (c Condition) DefaultType() ErrorType {
	switch c {
	case BadRequest, JIDMalformed, NotAcceptable, PolicyViolation, Redirect:
		return ErrorModify
	case Forbidden, NotAuthorized, RegistrationRequired, SubscriptionRequired:
		return ErrorAuth
	case RecipientUnavailable, RemoteServerTimeout, ResourceConstraint, UnexpectedRequest:
		return ErrorWait
	}
	return ErrorCancel
}

// Error is a stanza error (RFC 6120 §8.3). It is also a Go error, so a
// handler can return it and have it sent back.
type Error struct {
	Type      ErrorType // "" means Condition.DefaultType()
	Condition Condition
	Text      string
	// URI is the alternate address carried by gone and redirect.
	URI string
	// By is the entity that generated the error (RFC 6120 §8.3.2), if set.
	By string
	// App is an application-specific condition element.
	App *xmlstream.Element
}

// NewError returns an error with the default type of its condition.
func NewError(c Condition, text string) *Error { return &Error{Condition: c, Text: text} }

func (e *Error) Error() string {
	if e.Text != "" {
		return "stanza error: " + string(e.Condition) + ": " + e.Text
	}
	return "stanza error: " + string(e.Condition)
}

// Element renders the <error/> child (RFC 6120 §8.3.2).
func (e *Error) Element() *xmlstream.Element {
	typ := e.Type
	if typ == "" {
		typ = e.Condition.DefaultType()
	}
	el := xmlstream.NewElement("error", NSClient).SetAttr("type", string(typ))
	if e.By != "" {
		el.SetAttr("by", e.By)
	}
	cond := xmlstream.NewElement(string(e.Condition), NSStanzaErrors)
	if e.URI != "" {
		cond.AddText(e.URI)
	}
	el.AddChild(cond)
	if e.Text != "" {
		el.AddChild(xmlstream.NewElement("text", NSStanzaErrors).SetAttrNS(NSXML, "lang", "en").AddText(e.Text))
	}
	if e.App != nil {
		el.AddChild(e.App)
	}
	return el
}

// ErrorReply builds the error answer to orig (RFC 6120 §8.3.1): the same
// kind of stanza with the same id, type "error", to and from swapped, the
// original payload echoed back, and the <error/> child.
func ErrorReply(orig *xmlstream.Element, e *Error) *xmlstream.Element {
	r := &xmlstream.Element{Name: orig.Name, NS: orig.NS}
	for _, a := range orig.Attrs {
		switch {
		case a.NS != "":
			r.Attrs = append(r.Attrs, a)
		case a.Name == "to":
			r.SetAttr("from", a.Value)
		case a.Name == "from":
			r.SetAttr("to", a.Value)
		case a.Name == "type":
		default:
			r.Attrs = append(r.Attrs, a)
		}
	}
	r.SetAttr("type", "error")
	for _, n := range orig.Children {
		if n.Elem != nil && n.Elem.Name == "error" && n.Elem.NS == orig.NS {
			continue
		}
		r.Children = append(r.Children, n)
	}
	return r.AddChild(e.Element())
}

// ParseError reads the <error/> child of an error stanza.
func ParseError(stanza *xmlstream.Element) (*Error, bool) {
	el := stanza.Child("error", stanza.NS)
	if el == nil {
		return nil, false
	}
	e := &Error{Type: ErrorType(el.Attr("type")), By: el.Attr("by")}
	for c := range el.Elements() {
		switch {
		case c.NS == NSStanzaErrors && c.Name == "text":
			e.Text = c.Text()
		case c.NS == NSStanzaErrors:
			e.Condition = Condition(c.Name)
			e.URI = c.Text()
		default:
			e.App = c
		}
	}
	return e, e.Condition != ""
}

// StreamCondition is a stream error condition (RFC 6120 §4.9.3).
type StreamCondition string

const (
	StreamBadFormat              StreamCondition = "bad-format"
	StreamBadNamespacePrefix     StreamCondition = "bad-namespace-prefix"
	StreamConflict               StreamCondition = "conflict"
	StreamConnectionTimeout      StreamCondition = "connection-timeout"
	StreamHostGone               StreamCondition = "host-gone"
	StreamHostUnknown            StreamCondition = "host-unknown"
	StreamImproperAddressing     StreamCondition = "improper-addressing"
	StreamInternalServerError    StreamCondition = "internal-server-error"
	StreamInvalidFrom            StreamCondition = "invalid-from"
	StreamInvalidNamespace       StreamCondition = "invalid-namespace"
	StreamInvalidXML             StreamCondition = "invalid-xml"
	StreamNotAuthorized          StreamCondition = "not-authorized"
	StreamNotWellFormed          StreamCondition = "not-well-formed"
	StreamPolicyViolation        StreamCondition = "policy-violation"
	StreamRemoteConnectionFailed StreamCondition = "remote-connection-failed"
	StreamReset                  StreamCondition = "reset"
	StreamResourceConstraint     StreamCondition = "resource-constraint"
	StreamRestrictedXML          StreamCondition = "restricted-xml"
	StreamSeeOtherHost           StreamCondition = "see-other-host"
	StreamSystemShutdown         StreamCondition = "system-shutdown"
	StreamUndefinedCondition     StreamCondition = "undefined-condition"
	StreamUnsupportedEncoding    StreamCondition = "unsupported-encoding"
	StreamUnsupportedFeature     StreamCondition = "unsupported-feature"
	StreamUnsupportedStanzaType  StreamCondition = "unsupported-stanza-type"
	StreamUnsupportedVersion     StreamCondition = "unsupported-version"
)

// StreamError is a stream error (RFC 6120 §4.9); the stream is closed after it.
type StreamError struct {
	Condition StreamCondition
	Text      string
	// SeeOtherHost is the host of see-other-host (RFC 6120 §4.9.3.19).
	SeeOtherHost string
	App          *xmlstream.Element
}

// NewStreamError returns a stream error with an optional text.
func NewStreamError(c StreamCondition, text string) *StreamError {
	return &StreamError{Condition: c, Text: text}
}

// StreamErrorFromParser maps a parse failure to its stream error.
func StreamErrorFromParser(err *xmlstream.Error) *StreamError {
	return &StreamError{Condition: StreamCondition(err.Condition), Text: err.Msg}
}

func (e *StreamError) Error() string {
	if e.Text != "" {
		return "stream error: " + string(e.Condition) + ": " + e.Text
	}
	return "stream error: " + string(e.Condition)
}

// Element renders <stream:error/> (RFC 6120 §4.9.2).
func (e *StreamError) Element() *xmlstream.Element {
	el := xmlstream.NewElement("error", NSStream)
	cond := xmlstream.NewElement(string(e.Condition), NSStreamErrors)
	if e.SeeOtherHost != "" {
		cond.AddText(e.SeeOtherHost)
	}
	el.AddChild(cond)
	if e.Text != "" {
		el.AddChild(xmlstream.NewElement("text", NSStreamErrors).SetAttrNS(NSXML, "lang", "en").AddText(e.Text))
	}
	if e.App != nil {
		el.AddChild(e.App)
	}
	return el
}

// ParseStreamError reads a <stream:error/> element.
func ParseStreamError(el *xmlstream.Element) (*StreamError, bool) {
	if el.Name != "error" || el.NS != NSStream {
		return nil, false
	}
	e := &StreamError{}
	for c := range el.Elements() {
		switch {
		case c.NS == NSStreamErrors && c.Name == "text":
			e.Text = c.Text()
		case c.NS == NSStreamErrors:
			e.Condition = StreamCondition(c.Name)
			e.SeeOtherHost = c.Text()
		default:
			e.App = c
		}
	}
	return e, e.Condition != ""
}
