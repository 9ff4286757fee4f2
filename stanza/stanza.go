// Package stanza gives the XML stanzas of RFC 6120 §8 their meaning: the
// namespaces of RFC 6120/6121, the routing attributes of message, presence
// and iq read once into a Stanza, and stanza and stream errors (RFC 6120
// §8.3 and §4.9) with their builders.
package stanza

import (
	"github.com/meerkat-xmpp/meerkat/dataform"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/rsm"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces of RFC 6120 and RFC 6121.
const (
	NSClient       = "jabber:client"                          // RFC 6120 §4.8.3
	NSServer       = "jabber:server"                          // RFC 6120 §4.8.3
	NSStream       = xmlstream.NSStream                       // RFC 6120 §4.8.1
	NSStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"    // RFC 6120 §4.9.2
	NSStanzaErrors = "urn:ietf:params:xml:ns:xmpp-stanzas"    // RFC 6120 §8.3.2
	NSTLS          = "urn:ietf:params:xml:ns:xmpp-tls"        // RFC 6120 §5
	NSSASL         = "urn:ietf:params:xml:ns:xmpp-sasl"       // RFC 6120 §6
	NSBind         = "urn:ietf:params:xml:ns:xmpp-bind"       // RFC 6120 §7
	NSSession      = "urn:ietf:params:xml:ns:xmpp-session"    // RFC 3921 §3, kept as a no-op (RFC 6121 Appendix E)
	NSRoster       = "jabber:iq:roster"                       // RFC 6121 §2
	NSRosterVer    = "urn:xmpp:features:rosterver"            // RFC 6121 §2.6
	NSPreApproval  = "urn:xmpp:features:pre-approval"         // RFC 6121 §3.4
	NSXML          = xmlstream.NSXML                          // xml:lang
	NSDelay        = "urn:xmpp:delay"                         // XEP-0203
	NSStanzaID     = "urn:xmpp:sid:0"                         // XEP-0359
	NSForward      = "urn:xmpp:forward:0"                     // XEP-0297
	NSHints        = "urn:xmpp:hints"                         // XEP-0334
	NSChatStates   = "http://jabber.org/protocol/chatstates"  // XEP-0085
	NSCaps         = "http://jabber.org/protocol/caps"        // XEP-0115
	NSDataForms    = dataform.NS                              // XEP-0004
	NSRSM          = rsm.NS                                   // XEP-0059
	NSDiscoInfo    = "http://jabber.org/protocol/disco#info"  // XEP-0030
	NSDiscoItems   = "http://jabber.org/protocol/disco#items" // XEP-0030
)

// Kind is the kind of a first-level element.
type Kind uint8

const (
	KindOther Kind = iota // not a stanza (a nonza: SM, CSI, …)
	KindMessage
	KindPresence
	KindIQ
)

func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindPresence:
		return "presence"
	case KindIQ:
		return "iq"
	}
	return "other"
}

// KindOf tells whether el is a message, presence or iq stanza of namespace
// ns (jabber:client or jabber:server, RFC 6120 §4.8.3).
func KindOf(el *xmlstream.Element, ns string) Kind {
	if el.NS != ns {
		return KindOther
	}
	switch el.Name {
	case "message":
		return KindMessage
	case "presence":
		return KindPresence
	case "iq":
		return KindIQ
	}
	return KindOther
}

// Message types (RFC 6121 §5.2.2).
const (
	MessageNormal    = "normal"
	MessageChat      = "chat"
	MessageGroupchat = "groupchat"
	MessageHeadline  = "headline"
	MessageError     = "error"
)

// Presence types (RFC 6121 §4.7.1); available presence has no type.
const (
	PresenceAvailable    = ""
	PresenceUnavailable  = "unavailable"
	PresenceSubscribe    = "subscribe"
	PresenceSubscribed   = "subscribed"
	PresenceUnsubscribe  = "unsubscribe"
	PresenceUnsubscribed = "unsubscribed"
	PresenceProbe        = "probe"
	PresenceError        = "error"
)

// IQ types (RFC 6120 §8.2.3).
const (
	IQGet    = "get"
	IQSet    = "set"
	IQResult = "result"
	IQError  = "error"
)

// Stanza is a stanza with its routing attributes read and checked once, so
// that the router and modules do not parse them again.
type Stanza struct {
	El   *xmlstream.Element
	Kind Kind
	// Type is the normalized type: messages without a type or with an
	// unknown one are "normal" (RFC 6121 §5.2.2); available presence is "".
	Type string
	ID   string
	To   jid.JID // zero when absent
	From jid.JID // zero when absent
}

// Parse reads the routing attributes of a stanza of namespace ns. Bad
// addresses give jid-malformed and bad types bad-request (RFC 6120 §8.3.3);
// the returned Stanza is filled as far as possible so that an error reply
// can be addressed.
func Parse(el *xmlstream.Element, ns string) (Stanza, *Error) {
	s := Stanza{El: el, Kind: KindOf(el, ns)}
	var err *Error
	for _, a := range el.Attrs {
		if a.NS != "" {
			continue
		}
		switch a.Name {
		case "type":
			s.Type = a.Value
		case "id":
			s.ID = a.Value
		case "to":
			j, e := jid.Parse(a.Value)
			if e != nil {
				err = NewError(JIDMalformed, "invalid 'to' address")
			}
			s.To = j
		case "from":
			j, e := jid.Parse(a.Value)
			if e != nil {
				err = NewError(JIDMalformed, "invalid 'from' address")
			}
			s.From = j
		}
	}
	if err != nil {
		return s, err
	}
	switch s.Kind {
	case KindMessage:
		switch s.Type {
		case MessageChat, MessageGroupchat, MessageHeadline, MessageError, MessageNormal:
		default:
			s.Type = MessageNormal
		}
	case KindPresence:
		switch s.Type {
		case PresenceAvailable, PresenceUnavailable, PresenceSubscribe, PresenceSubscribed,
			PresenceUnsubscribe, PresenceUnsubscribed, PresenceProbe, PresenceError:
		default:
			return s, NewError(BadRequest, "unknown presence type")
		}
	case KindIQ:
		// RFC 6120 §8.2.3: an IQ has an id and one of four types; a get or
		// set carries exactly one payload element.
		switch s.Type {
		case IQGet, IQSet:
			n := 0
			for range el.Elements() {
				n++
			}
			if n != 1 {
				return s, NewError(BadRequest, "an IQ get or set must contain exactly one child element")
			}
		case IQResult, IQError:
		default:
			return s, NewError(BadRequest, "missing or unknown IQ type")
		}
		if s.ID == "" {
			return s, NewError(BadRequest, "missing IQ id")
		}
	}
	return s, nil
}

// IsError reports whether the stanza is of type error (never answered with
// an error, RFC 6120 §8.3.1).
func (s *Stanza) IsError() bool { return s.Type == "error" }

// Payload returns the first child element: the query of an IQ.
func (s *Stanza) Payload() *xmlstream.Element { return s.El.FirstChild() }

// NewIQ builds an IQ of the given type.
func NewIQ(typ, id string, to, from jid.JID, payload *xmlstream.Element) *xmlstream.Element {
	iq := xmlstream.NewElement("iq", NSClient)
	setAddressing(iq, to, from)
	iq.SetAttr("type", typ).SetAttr("id", id)
	if payload != nil {
		iq.AddChild(payload)
	}
	return iq
}

// Result builds the result of an IQ get or set (RFC 6120 §8.2.3), addressed
// back to its sender, with an optional payload.
func (s *Stanza) Result(payload *xmlstream.Element) *xmlstream.Element {
	return NewIQ(IQResult, s.ID, s.From, s.To, payload)
}

// NewMessage builds a message with an optional body.
func NewMessage(typ string, to, from jid.JID, body string) *xmlstream.Element {
	m := xmlstream.NewElement("message", NSClient)
	setAddressing(m, to, from)
	if typ != "" && typ != MessageNormal {
		m.SetAttr("type", typ)
	}
	if body != "" {
		m.AddChild(xmlstream.NewElement("body", NSClient).AddText(body))
	}
	return m
}

// NewPresence builds a presence of the given type ("" for available).
func NewPresence(typ string, to, from jid.JID) *xmlstream.Element {
	p := xmlstream.NewElement("presence", NSClient)
	setAddressing(p, to, from)
	if typ != "" {
		p.SetAttr("type", typ)
	}
	return p
}

func setAddressing(el *xmlstream.Element, to, from jid.JID) {
	if !to.IsZero() {
		el.SetAttr("to", to.String())
	}
	if !from.IsZero() {
		el.SetAttr("from", from.String())
	}
}
