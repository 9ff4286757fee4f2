package story

import (
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// parse reads one element written as on a client stream.
func parse(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	p := xmlstream.NewParser(xmlstream.ModeStream, xmlstream.Limits{})
	p.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" + s))
	for {
		ev, err := p.Next()
		if err != nil {
			t.Fatalf("parse %s: %v", s, err)
		}
		if ev.Kind == xmlstream.EventElement {
			return ev.Element
		}
		if ev.Kind == xmlstream.EventNone {
			t.Fatalf("parse %s: no element", s)
		}
	}
}

func TestPredicates(t *testing.T) {
	alice := jid.MustParse("alice@example.com/home")
	bob := jid.MustParse("bob@example.com/phone")
	chat := `<message from='alice@example.com/home' to='bob@example.com/phone' type='chat'><body>hi</body></message>`
	cases := []struct {
		pred  Predicate
		xml   string
		match bool
	}{
		{Any, `<presence/>`, true},
		{IsMessage(), chat, true},
		{IsMessage(), `<presence/>`, false},
		{IsMessage(), `<message xmlns='jabber:server'/>`, false},
		{IsMessageType("chat"), chat, true},
		{IsMessageType("normal"), `<message/>`, true},
		{IsMessageType("normal"), chat, false},
		{HasBody("hi"), chat, true},
		{HasBody("hi"), `<message><body>hi!</body></message>`, false},
		{HasBody("hi"), `<message/>`, false},
		{IsChat("hi"), chat, true},
		{IsChat("hi"), `<message type='normal'><body>hi</body></message>`, false},
		{IsChat("ho"), chat, false},
		{IsGroupchat("x"), `<message type='groupchat'><body>x</body></message>`, true},
		{IsGroupchat("x"), `<message type='chat'><body>x</body></message>`, false},
		{IsPresenceType(""), `<presence/>`, true},
		{IsPresenceType(""), `<presence type='unavailable'/>`, false},
		{IsPresenceType("subscribe"), `<presence type='subscribe'/>`, true},
		{IsPresence("", alice), `<presence from='alice@example.com/home'/>`, true},
		{IsPresence("", alice), `<presence from='alice@example.com/work'/>`, false},
		{IsPresence("", alice.Bare()), `<presence from='alice@example.com/work'/>`, true},
		{IsPresence("", nil), `<presence from='x@y'/>`, true},
		{IsPresence("unavailable", alice.Bare()), `<presence from='Alice@Example.COM'/>`, false},
		{IsPresence("unavailable", alice.Bare()), `<presence type='unavailable' from='Alice@Example.COM'/>`, true},
		{IsIQ("get"), `<iq type='get' id='1'/>`, true},
		{IsIQ("get"), `<iq type='set' id='1'/>`, false},
		{IsIQResult("1"), `<iq type='result' id='1'/>`, true},
		{IsIQResult("1"), `<iq type='result' id='2'/>`, false},
		{IsIQResult(""), `<iq type='result' id='2'/>`, true},
		{IsIQResult("1"), `<iq type='error' id='1'/>`, false},
		{IsIQError("1"), `<iq type='error' id='1'/>`, true},
		{IsIQResultWith("1", HasChild("item", "jabber:iq:roster")), `<iq type='result' id='1'><query xmlns='jabber:iq:roster'><item/></query></iq>`, true},
		{IsIQResultWith("1", HasChild("item", "jabber:iq:roster")), `<iq type='result' id='1'><query xmlns='jabber:iq:roster'/></iq>`, false},
		{IsIQResultWith("1", Any), `<iq type='result' id='1'/>`, false},
		{IsStanzaError("cancel", "service-unavailable"), `<message type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, true},
		{IsStanzaError("", "service-unavailable"), `<iq type='error' id='1'><error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, true},
		{IsStanzaError("modify", "service-unavailable"), `<message type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, false},
		{IsStanzaError("cancel", "item-not-found"), `<message type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, false},
		{IsStanzaError("cancel", "service-unavailable"), `<message><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`, false},
		{IsStreamError("conflict"), `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, true},
		{IsStreamError(""), `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, true},
		{IsStreamError("host-unknown"), `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, false},
		{IsStreamError(""), `<error/>`, false},
		{IsFrom(alice), chat, true},
		{IsFrom(alice.Bare()), chat, true},
		{IsFrom(bob), chat, false},
		{IsFrom(RawAddr("ALICE@example.com/home")), chat, true},
		{IsFrom(RawAddr("bad@@")), `<message from='bad@@'/>`, true},
		{IsFrom(alice), `<message/>`, false},
		{IsTo(bob), chat, true},
		{IsTo(bob.Bare()), chat, true},
		{IsTo(alice), chat, false},
		{HasChild("body", "jabber:client"), chat, true},
		{HasChild("body", "urn:other"), chat, false},
		{IsRosterPush(nil), `<iq type='set' id='p'><query xmlns='jabber:iq:roster'><item jid='bob@example.com'/></query></iq>`, true},
		{IsRosterPush(bob.Bare()), `<iq type='set' id='p'><query xmlns='jabber:iq:roster'><item jid='bob@example.com'/></query></iq>`, true},
		{IsRosterPush(alice.Bare()), `<iq type='set' id='p'><query xmlns='jabber:iq:roster'><item jid='bob@example.com'/></query></iq>`, false},
		{IsRosterPush(nil), `<iq type='result' id='p'><query xmlns='jabber:iq:roster'><item jid='bob@example.com'/></query></iq>`, false},
		{IsRosterResult("r"), `<iq type='result' id='r'><query xmlns='jabber:iq:roster'/></iq>`, true},
		{IsSMAck(), `<a xmlns='urn:xmpp:sm:3' h='1'/>`, true},
		{IsSMAck(), `<r xmlns='urn:xmpp:sm:3'/>`, false},
		{IsMAMResult("q"), `<message><result xmlns='urn:xmpp:mam:2' queryid='q' id='1'/></message>`, true},
		{IsMAMResult("q"), `<message><result xmlns='urn:xmpp:mam:2' queryid='other' id='1'/></message>`, false},
		{IsMAMFin("i"), `<iq type='result' id='i'><fin xmlns='urn:xmpp:mam:2' complete='true'/></iq>`, true},
		{And(IsChat("hi"), IsFrom(alice)), chat, true},
		{And(IsChat("hi"), IsFrom(bob)), chat, false},
		{And(), chat, true},
		{Or(IsChat("ho"), IsFrom(alice)), chat, true},
		{Or(IsChat("ho"), IsFrom(bob)), chat, false},
		{Not(IsChat("hi")), chat, false},
		{Not(IsChat("ho")), chat, true},
	}
	for _, tc := range cases {
		if got := tc.pred.Match(parse(t, tc.xml)); got != tc.match {
			t.Errorf("%s on %s: %v, want %v", tc.pred.Desc, tc.xml, got, tc.match)
		}
	}
}

func TestPredicateDescriptions(t *testing.T) {
	alice := jid.MustParse("alice@example.com/home")
	cases := []struct {
		pred Predicate
		desc string
	}{
		{And(IsChat("hi"), IsFrom(alice)), `a chat message with body "hi" and from alice@example.com/home`},
		{Or(IsIQResult("1"), IsIQError("1")), `(an IQ result with id "1" or an IQ error with id "1")`},
		{Not(IsPresenceType("")), `not (a presence of type available)`},
		{IsPresence("subscribe", alice.Bare()), `a presence of type "subscribe" and from alice@example.com`},
		{IsStanzaError("cancel", "item-not-found"), `a stanza error item-not-found of type "cancel"`},
		{IsStreamError("conflict"), `a stream error conflict`},
		{IsRosterPush(alice.Bare()), `a roster push for alice@example.com`},
		{IsIQResultWith("7", HasChild("ping", NSPing)), `an IQ result with id "7" whose payload is with a <ping xmlns='urn:xmpp:ping'/> child`},
	}
	for _, tc := range cases {
		if tc.pred.String() != tc.desc {
			t.Errorf("got %q, want %q", tc.pred.String(), tc.desc)
		}
	}
}

func TestCheckAndAssertStanza(t *testing.T) {
	el := parse(t, `<message type='chat'><body>hi</body></message>`)
	if err := Check(el, IsMessage(), IsChat("hi")); err != nil {
		t.Errorf("Check: %v", err)
	}
	err := Check(el, IsMessage(), IsChat("ho"))
	if err == nil || !strings.Contains(err.Error(), `expected a chat message with body "ho", got:`) ||
		!strings.Contains(err.Error(), `<message type='chat'><body>hi</body></message>`) {
		t.Errorf("Check: %v", err)
	}
	if err := Check(nil, Any); err == nil {
		t.Error("Check(nil) passed")
	}
	ftb := &fakeTB{}
	AssertStanza(ftb, el, IsFrom(RawAddr("x@y")))
	if f := ftb.failures(); len(f) != 1 || !strings.HasPrefix(f[0], "story: expected from x@y, got:") {
		t.Errorf("AssertStanza: %q", f)
	}
}
