package csi

import (
	"strings"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces the classification reads.
const (
	NSCarbons    = "urn:xmpp:carbons:2"                  // XEP-0280
	NSForward    = stanza.NSForward                      // XEP-0297
	NSChatStates = stanza.NSChatStates                   // XEP-0085
	NSHints      = stanza.NSHints                        // XEP-0334
	NSConference = "jabber:x:conference"                 // XEP-0249
	NSMUCUser    = "http://jabber.org/protocol/muc#user" // XEP-0045
)

// class is what the Outgoing hook needs to know about a stanza for an
// inactive client.
type class struct {
	// urgent stanzas are delivered at once, after what their peer had
	// queued.
	urgent bool
	// chatState: a chat-state notification and nothing else of interest.
	chatState bool
	// peer is the bare JID of the other side: the sender, or for a
	// carbon (XEP-0280) the other party of the copied message.
	peer string
	// key, when set, makes the stanza replace the held one with the same
	// key: "p <full JID>" for a contact's presence, "c in|out <full JID>"
	// for a chat state.
	key string
}

// classify decides what can wait for an inactive client:
//
//   - IQs, of any type, cannot: a result or error answers the client, a
//     get or set waits for its answer (roster pushes, pings).
//   - Presence: available and unavailable presence can (the latest per
//     contact full JID is kept); subscription requests and answers, errors
//     and probes cannot.
//   - Messages cannot wait when they carry a body or a subject (the end of
//     a MUC join), an invitation (XEP-0249, XEP-0045 mediated), a <store/>
//     hint (XEP-0334 §4.4: the sender says it matters), a payload listed
//     in urgent_payloads (encryption, calls, archive results), or are
//     errors (a delivery failure). A carbon is judged by the message it
//     carries. Chat-state notifications can wait (the latest per contact
//     and direction is kept, or they are dropped); so can everything else:
//     receipts, markers, PEP notifications, reactions without a body.
//   - Anything else (not a stanza) cannot.
func (c *CSI) classify(el *xmlstream.Element) class {
	from := el.Attr("from")
	switch stanza.KindOf(el, stanza.NSClient) {
	case stanza.KindIQ:
		return class{urgent: true, peer: bare(from)}
	case stanza.KindPresence:
		switch el.Attr("type") {
		case stanza.PresenceAvailable, stanza.PresenceUnavailable:
			return class{peer: bare(from), key: "p " + from}
		}
		return class{urgent: true, peer: bare(from)}
	case stanza.KindMessage:
		return c.classifyMessage(el)
	}
	return class{urgent: true, peer: bare(from)}
}

func (c *CSI) classifyMessage(el *xmlstream.Element) class {
	m, partner, dir := el, el.Attr("from"), "in"
	if inner, sent := carbonOf(el); inner != nil {
		m = inner
		if sent {
			partner, dir = inner.Attr("to"), "out"
		} else {
			partner = inner.Attr("from")
		}
	}
	cl := class{peer: bare(partner)}
	if el.Attr("type") == stanza.MessageError || m.Attr("type") == stanza.MessageError || c.urgentPayload(m) {
		cl.urgent = true
		return cl
	}
	if chatStateOnly(m) {
		cl.chatState = true
		cl.key = "c " + dir + " " + partner
	}
	return cl
}

// carbonOf returns the message a carbon carries and whether it is a
// <sent/> one.
func carbonOf(el *xmlstream.Element) (inner *xmlstream.Element, sent bool) {
	c := el.Child("received", NSCarbons)
	if c == nil {
		if c = el.Child("sent", NSCarbons); c == nil {
			return nil, false
		}
		sent = true
	}
	if f := c.Child("forwarded", NSForward); f != nil {
		return f.Child("message", stanza.NSClient), sent
	}
	return nil, false
}

func (c *CSI) urgentPayload(m *xmlstream.Element) bool {
	for ch := range m.Elements() {
		switch {
		case ch.NS == stanza.NSClient && (ch.Name == "body" || ch.Name == "subject"):
			return true
		case ch.NS == NSHints && ch.Name == "store":
			return true
		case ch.NS == NSConference:
			return true
		case ch.NS == NSMUCUser && ch.Child("invite", NSMUCUser) != nil:
			return true
		case c.urgent[ch.NS]:
			return true
		}
	}
	return false
}

// chatStateOnly reports a message with a chat state and nothing else but
// envelope elements (thread, hints, ids, delays), so that a newer chat
// state may replace it without losing anything.
func chatStateOnly(m *xmlstream.Element) bool {
	state := false
	for ch := range m.Elements() {
		switch {
		case ch.NS == NSChatStates:
			state = true
		case ch.NS == stanza.NSClient && ch.Name == "thread",
			ch.NS == NSHints, ch.NS == stanza.NSStanzaID, ch.NS == stanza.NSDelay:
		default:
			return false
		}
	}
	return state
}

// bare cuts the resource off a JID as the server writes it (normalized:
// the first '/' starts the resource, RFC 7622 §3.1).
func bare(j string) string {
	b, _, _ := strings.Cut(j, "/")
	return b
}
