package carbons

import (
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces of the payloads the rules of §6.1 look at.
const (
	NSHints      = stanza.NSHints                        // XEP-0334 <no-copy/>
	NSChatStates = stanza.NSChatStates                   // XEP-0085
	NSReceipts   = "urn:xmpp:receipts"                   // XEP-0184
	NSMarkers    = "urn:xmpp:chat-markers:0"             // XEP-0333
	NSConference = "jabber:x:conference"                 // XEP-0249 direct invitation
	NSMUCUser    = "http://jabber.org/protocol/muc#user" // XEP-0045
)

// Direction says whether a message was sent by one of the account's
// clients (§8) or is addressed to the account (§7).
type Direction uint8

const (
	Sent Direction = iota
	Received
)

// Eligible applies the rules of XEP-0280 §6.1 to a message in a
// direction. chatStates false leaves out messages that carry chat states
// and nothing else that makes them eligible (Config.ChatStates).
//
//   - Never: a message with <private xmlns='urn:xmpp:carbons:2'/> (§6.1,
//     §9) or a <no-copy/> hint (XEP-0334 §4.3; §9 has clients send both,
//     either one is enough here); a groupchat message (§6.1 MUC rules); a
//     message received from a MUC occupant, recognised by a full-JID
//     sender and a muc#user <x/> (§6.1: "SHOULD NOT be carbon-copied").
//   - Copied: chat; normal with a <body/>; any message with receipts
//     (XEP-0184), chat states (XEP-0085) or markers (XEP-0333); direct
//     (XEP-0249) and mediated (XEP-0045 §7.8.2) invitations; a private
//     message sent to a MUC occupant (chat or normal to a full JID, copied
//     by the rules above, muc#user <x/> or not).
//   - Errors: §6.1 copies an error that "was sent in response to a
//     <message/> that was eligible for carbons delivery". The server
//     keeps no record of what it copied, so it judges from the error
//     itself: one that echoes an eligible payload
//     (RFC 6120 §8.3.1: a body, IM payloads, an invitation) is copied,
//     and so is one from a bare JID or a domain, a server's bounce of a
//     message to a bare JID (the rule of Prosody). An echoed <private/>
//     or <no-copy/> says the original was not eligible: not copied
//     (XEP-0334 §5 has hints in errors ignored, but here the hint tells
//     about the message the error answers).
//
// Headline messages are copied only with IM payloads, as the rules say.
func Eligible(st *stanza.Stanza, dir Direction, chatStates bool) bool {
	if st.Type == stanza.MessageGroupchat {
		return false // before any scan: every room copy comes this way
	}
	el := st.El
	if el.Child("private", NS) != nil || el.Child("no-copy", NSHints) != nil {
		return false
	}
	switch st.Type {
	case stanza.MessageError:
		if imContent(el, chatStates) {
			return true
		}
		return dir == Received && st.From.Resource() == ""
	}
	if dir == Received && st.From.Resource() != "" && el.Child("x", NSMUCUser) != nil && !isMediatedInvite(el) {
		return false
	}
	if !chatStates && onlyChatStates(el) {
		return false
	}
	switch {
	case st.Type == stanza.MessageChat:
		return true
	case st.Type == stanza.MessageNormal && el.Child("body", stanza.NSClient) != nil:
		return true
	}
	return imContent(el, chatStates)
}

// imContent reports payloads that make a message eligible whatever its
// type: IM payloads (receipts, chat states, markers) and invitations.
func imContent(el *xmlstream.Element, chatStates bool) bool {
	if el.Child("body", stanza.NSClient) != nil {
		return true
	}
	for c := range el.Elements() {
		switch c.NS {
		case NSReceipts, NSMarkers, NSConference:
			return true
		case NSChatStates:
			if chatStates {
				return true
			}
		}
	}
	return isMediatedInvite(el)
}

// isMediatedInvite reports a XEP-0045 §7.8.2 invitation:
// <x xmlns='…muc#user'><invite/></x>.
func isMediatedInvite(el *xmlstream.Element) bool {
	x := el.Child("x", NSMUCUser)
	return x != nil && x.Child("invite", NSMUCUser) != nil
}

// onlyChatStates reports a message whose only IM content is a chat state
// (no body, no receipt, no marker, no invitation).
func onlyChatStates(el *xmlstream.Element) bool {
	if el.ChildNS(NSChatStates) == nil {
		return false
	}
	return !imContent(el, false)
}
