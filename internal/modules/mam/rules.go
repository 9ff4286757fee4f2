package mam

import (
	"slices"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Payloads that make a message worth archiving although it has no body:
// encrypted messages, whose body is at most a fallback text, and
// corrections of earlier messages.
var contentPayloads = []struct{ name, ns string }{
	{"encrypted", "eu.siacs.conversations.axolotl"}, // OMEMO (XEP-0384 0.3)
	{"encrypted", "urn:xmpp:omemo:2"},               // OMEMO (XEP-0384 0.8)
	{"openpgp", "urn:xmpp:openpgp:0"},               // XEP-0373
	{"retract", "urn:xmpp:message-retract:1"},       // XEP-0424
	{"apply-to", "urn:xmpp:fasten:0"},               // XEP-0422
}

// Archivable reports whether a one-to-one message goes into the users'
// archives: XEP-0313 §6.1.1 — normal or chat messages with a body — plus
// encrypted and retraction payloads and the <store/> hint, minus what
// the sender asked not to keep (XEP-0334 §4.2, §4.3).
func Archivable(st *stanza.Stanza) bool {
	if st.Kind != stanza.KindMessage || st.Type != stanza.MessageChat && st.Type != stanza.MessageNormal {
		return false
	}
	return hasContent(st.El)
}

// roomArchivable reports whether a group chat message goes into the
// room's archive: the same content rules as one-to-one messages
// (a subject change has no body and is not history).
func roomArchivable(st *stanza.Stanza) bool { return hasContent(st.El) }

// hasContent reports whether a message carries something worth keeping,
// and its sender did not ask otherwise.
func hasContent(el *xmlstream.Element) bool {
	if el.Child("no-store", stanza.NSHints) != nil || el.Child("no-permanent-store", stanza.NSHints) != nil {
		return false
	}
	if el.Child("body", stanza.NSClient) != nil || el.Child("store", stanza.NSHints) != nil {
		return true
	}
	for _, p := range contentPayloads {
		if el.Child(p.name, p.ns) != nil {
			return true
		}
	}
	return false
}

// withoutStanzaID returns a copy of el without the <stanza-id/> elements
// that claim to come from by (XEP-0359 §3: an entity MUST delete those
// carrying its own 'by', so that they cannot be forged). It returns el
// itself when there is none.
func withoutStanzaID(el *xmlstream.Element, by string) *xmlstream.Element {
	forged := func(n xmlstream.Node) bool {
		return n.Elem != nil && n.Elem.Name == "stanza-id" && n.Elem.NS == stanza.NSStanzaID && n.Elem.Attr("by") == by
	}
	if !slices.ContainsFunc(el.Children, forged) {
		return el
	}
	c := el.ShallowCopy()
	c.Children = slices.DeleteFunc(c.Children, forged)
	return c
}

// addStanzaID adds our <stanza-id/> to clean, the result of
// withoutStanzaID(orig, by): in place when clean is already a copy of
// its own, else on a copy — one copy of the message at most.
func addStanzaID(orig, clean *xmlstream.Element, by, id string) *xmlstream.Element {
	if clean == orig {
		clean = orig.ShallowCopy()
	}
	return clean.AddChild(stanzaIDElement(by, id))
}

func stanzaIDElement(by, id string) *xmlstream.Element {
	return &xmlstream.Element{Name: "stanza-id", NS: stanza.NSStanzaID,
		Attrs: []xmlstream.Attr{{Name: "by", Value: by}, {Name: "id", Value: id}}}
}
