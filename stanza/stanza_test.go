package stanza

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// parse reads one element standalone.
func parse(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	p := xmlstream.NewParser(xmlstream.ModeFragments, xmlstream.Limits{})
	p.Feed([]byte(s))
	ev, err := p.Next()
	if err != nil || ev.Kind != xmlstream.EventElement {
		t.Fatalf("parse %s: %v", s, err)
	}
	return ev.Element
}

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		kind     Kind
		typ, id  string
		to, from string
		cond     Condition
	}{
		{`<message xmlns='jabber:client' to='Bob@Example.com/r' from='a@b' id='1' type='chat'/>`, KindMessage, "chat", "1", "bob@example.com/r", "a@b", ""},
		{`<message xmlns='jabber:client' to='b@c'/>`, KindMessage, "normal", "", "b@c", "", ""},
		{`<message xmlns='jabber:client' type='bogus'/>`, KindMessage, "normal", "", "", "", ""},
		{`<presence xmlns='jabber:client'/>`, KindPresence, "", "", "", "", ""},
		{`<presence xmlns='jabber:client' type='subscribe' to='b@c'/>`, KindPresence, "subscribe", "", "b@c", "", ""},
		{`<presence xmlns='jabber:client' type='bogus'/>`, KindPresence, "bogus", "", "", "", BadRequest},
		{`<iq xmlns='jabber:client' type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>`, KindIQ, "get", "x", "", "", ""},
		{`<iq xmlns='jabber:client' type='result' id='x'/>`, KindIQ, "result", "x", "", "", ""},
		{`<iq xmlns='jabber:client' type='get' id='x'/>`, KindIQ, "get", "x", "", "", BadRequest},
		{`<iq xmlns='jabber:client' type='set' id='x'><a xmlns='u'/><b xmlns='u'/></iq>`, KindIQ, "set", "x", "", "", BadRequest},
		{`<iq xmlns='jabber:client' type='get'><a xmlns='u'/></iq>`, KindIQ, "get", "", "", "", BadRequest},
		{`<iq xmlns='jabber:client' id='x'><a xmlns='u'/></iq>`, KindIQ, "", "x", "", "", BadRequest},
		{`<message xmlns='jabber:client' to='@bad'/>`, KindMessage, "", "", "", "", JIDMalformed},
		{`<message xmlns='jabber:client' from='a@b/'/>`, KindMessage, "", "", "", "", JIDMalformed},
		{`<message xmlns='jabber:server'/>`, KindOther, "", "", "", "", ""},
		{`<r xmlns='urn:xmpp:sm:3'/>`, KindOther, "", "", "", "", ""},
	}
	for _, tc := range tests {
		s, err := Parse(parse(t, tc.in), NSClient)
		if tc.cond != "" {
			if err == nil || err.Condition != tc.cond {
				t.Errorf("%s: error %v, want %s", tc.in, err, tc.cond)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if s.Kind != tc.kind || s.Type != tc.typ || s.ID != tc.id || s.To.String() != tc.to || s.From.String() != tc.from {
			t.Errorf("%s: got %v %q %q %q %q", tc.in, s.Kind, s.Type, s.ID, s.To, s.From)
		}
	}
}

func TestErrorReply(t *testing.T) {
	orig := parse(t, `<iq xmlns='jabber:client' type='get' id='v1' to='example.com' from='juliet@example.com/balcony' xml:lang='en'><query xmlns='jabber:iq:version'/></iq>`)
	got := ErrorReply(orig, NewError(ServiceUnavailable, "")).AppendXML(nil, xmlstream.StreamScope(NSClient))
	// RFC 6120 §8.3.1: same id, addresses swapped, payload echoed.
	want := `<iq id='v1' from='example.com' to='juliet@example.com/balcony' xml:lang='en' type='error'><query xmlns='jabber:iq:version'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	e := &Error{Type: ErrorModify, Condition: Gone, URI: "xmpp:romeo@example.net", Text: "moved", By: "example.com"}
	got = ErrorReply(parse(t, `<message xmlns='jabber:client' to='romeo@example.com' type='chat'><body>hi</body></message>`), e).AppendXML(nil, xmlstream.StreamScope(NSClient))
	want = `<message from='romeo@example.com' type='error'><body>hi</body><error type='modify' by='example.com'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:romeo@example.net</gone><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>moved</text></error></message>`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	back, ok := ParseError(parse(t, want))
	if !ok || back.Condition != Gone || back.Type != ErrorModify || back.URI != e.URI || back.Text != "moved" || back.By != "example.com" {
		t.Fatalf("ParseError = %+v", back)
	}
}

func TestDefaultTypes(t *testing.T) {
	// RFC 6120 §8.3.3, the type of each condition's example.
	want := map[Condition]ErrorType{
		BadRequest: ErrorModify, Conflict: ErrorCancel, FeatureNotImplemented: ErrorCancel, Forbidden: ErrorAuth,
		Gone: ErrorCancel, InternalServerError: ErrorCancel, ItemNotFound: ErrorCancel, JIDMalformed: ErrorModify,
		NotAcceptable: ErrorModify, NotAllowed: ErrorCancel, NotAuthorized: ErrorAuth, PolicyViolation: ErrorModify,
		RecipientUnavailable: ErrorWait, Redirect: ErrorModify, RegistrationRequired: ErrorAuth,
		RemoteServerNotFound: ErrorCancel, RemoteServerTimeout: ErrorWait, ResourceConstraint: ErrorWait,
		ServiceUnavailable: ErrorCancel, SubscriptionRequired: ErrorAuth, UndefinedCondition: ErrorCancel,
		UnexpectedRequest: ErrorWait,
	}
	for c, typ := range want {
		if c.DefaultType() != typ {
			t.Errorf("%s: %s, want %s", c, c.DefaultType(), typ)
		}
	}
}

func TestStreamError(t *testing.T) {
	e := NewStreamError(StreamHostUnknown, "no such host")
	got := e.Element().AppendXML(nil, xmlstream.StreamScope(NSClient))
	want := `<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>no such host</text></stream:error>`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	back, ok := ParseStreamError(e.Element())
	if !ok || back.Condition != StreamHostUnknown || back.Text != "no such host" {
		t.Fatalf("ParseStreamError = %+v", back)
	}
	perr := &xmlstream.Error{Condition: xmlstream.CondRestrictedXML, Msg: "comment"}
	if se := StreamErrorFromParser(perr); se.Condition != StreamRestrictedXML {
		t.Fatalf("from parser: %v", se)
	}
}

func TestBuilders(t *testing.T) {
	a, b := jid.MustParse("a@example.com/r"), jid.MustParse("b@example.com")
	tests := []struct {
		el   *xmlstream.Element
		want string
	}{
		{NewMessage(MessageChat, b, a, "hi <3"), `<message to='b@example.com' from='a@example.com/r' type='chat'><body>hi &lt;3</body></message>`},
		{NewMessage(MessageNormal, b, jid.JID{}, ""), `<message to='b@example.com'/>`},
		{NewPresence(PresenceSubscribe, b, jid.JID{}), `<presence to='b@example.com' type='subscribe'/>`},
		{NewIQ(IQGet, "q1", b, a, xmlstream.NewElement("query", NSRoster)), `<iq to='b@example.com' from='a@example.com/r' type='get' id='q1'><query xmlns='jabber:iq:roster'/></iq>`},
	}
	for _, tc := range tests {
		if got := string(tc.el.AppendXML(nil, xmlstream.StreamScope(NSClient))); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	iq, _ := Parse(parse(t, `<iq xmlns='jabber:client' type='get' id='7' from='a@example.com/r' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>`), NSClient)
	if got := iq.Result(nil).AppendXML(nil, xmlstream.StreamScope(NSClient)); string(got) != `<iq to='a@example.com/r' from='example.com' type='result' id='7'/>` {
		t.Errorf("result: %s", got)
	}
}
