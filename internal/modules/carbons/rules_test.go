package carbons

import (
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func parseStanza(t *testing.T, s string) *stanza.Stanza {
	t.Helper()
	el, err := xmlstream.Parse([]byte(strings.Replace(s, "<message", "<message xmlns='jabber:client'", 1)))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil {
		t.Fatalf("%s: %v", s, serr)
	}
	return &st
}

// TestEligible: the rules of XEP-0280 §6.1, each way.
func TestEligible(t *testing.T) {
	const (
		both = iota
		sentOnly
		receivedOnly
		never
	)
	for _, tc := range []struct {
		name string
		xml  string
		want int
	}{
		{"chat", `<message type='chat' from='a@x/r' to='b@y'><body>hi</body></message>`, both},
		{"chat without body", `<message type='chat' from='a@x/r' to='b@y'><thread>t</thread></message>`, both},
		{"normal with body", `<message from='a@x/r' to='b@y'><body>hi</body></message>`, both},
		{"unknown type is normal", `<message type='x' from='a@x/r' to='b@y'><body>hi</body></message>`, both},
		{"normal without body", `<message from='a@x/r' to='b@y'><x xmlns='urn:example'/></message>`, never},
		{"receipt", `<message from='a@x/r' to='b@y'><received xmlns='urn:xmpp:receipts' id='1'/></message>`, both},
		{"chat state", `<message from='a@x/r' to='b@y'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, both},
		{"marker", `<message from='a@x/r' to='b@y'><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/></message>`, both},
		{"headline", `<message type='headline' from='a@x' to='b@y'><body>news</body></message>`, both},
		{"headline event", `<message type='headline' from='a@x' to='b@y'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>`, never},
		{"groupchat", `<message type='groupchat' from='room@muc/n' to='b@y/r'><body>hi</body></message>`, never},
		{"private", `<message type='chat' from='a@x/r' to='b@y'><body>hi</body><private xmlns='urn:xmpp:carbons:2'/></message>`, never},
		{"no-copy", `<message type='chat' from='a@x/r' to='b@y/r'><body>hi</body><no-copy xmlns='urn:xmpp:hints'/></message>`, never},
		{"direct invitation", `<message from='a@x/r' to='b@y'><x xmlns='jabber:x:conference' jid='room@muc'/></message>`, both},
		{"mediated invitation", `<message from='room@muc' to='b@y'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='c@z'/></x></message>`, both},
		// A private message with a MUC occupant: copied when sent, not when
		// received from the occupant's full JID (the room copies it).
		{"MUC PM", `<message type='chat' from='room@muc/nick' to='b@y/r'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`, sentOnly},
		{"error echoing a body", `<message type='error' from='b@y/r' to='a@x/r'><body>hi</body><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, both},
		{"bounce from a bare JID", `<message type='error' from='b@y' to='a@x/r'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, receivedOnly},
		{"error from a full JID", `<message type='error' from='b@y/r' to='a@x/r'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, never},
		{"error of a private message", `<message type='error' from='b@y' to='a@x/r'><body>hi</body><private xmlns='urn:xmpp:carbons:2'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, never},
	} {
		st := parseStanza(t, tc.xml)
		sent, received := Eligible(st, Sent, true), Eligible(st, Received, true)
		want := map[int][2]bool{both: {true, true}, sentOnly: {true, false}, receivedOnly: {false, true}, never: {false, false}}[tc.want]
		if sent != want[0] || received != want[1] {
			t.Errorf("%s: sent %v received %v, want %v %v", tc.name, sent, received, want[0], want[1])
		}
	}
}

// TestEligibleWithoutChatStates: chat_states = false leaves out what
// carries chat states only.
func TestEligibleWithoutChatStates(t *testing.T) {
	for xml, want := range map[string]bool{
		`<message type='chat' from='a@x/r' to='b@y'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`:                         false,
		`<message from='a@x/r' to='b@y'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`:                                  false,
		`<message type='chat' from='a@x/r' to='b@y'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`:          true,
		`<message from='a@x/r' to='b@y'><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`: true,
		`<message type='chat' from='a@x/r' to='b@y'><thread>t</thread></message>`:                                                              true,
	} {
		if got := Eligible(parseStanza(t, xml), Sent, false); got != want {
			t.Errorf("%s: %v, want %v", xml, got, want)
		}
	}
}
