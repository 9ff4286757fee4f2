package story

import (
	"github.com/meerkat-xmpp/meerkat/stanza"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// golden serializes el as on a client stream, with a generated id
// replaced by "ID".
func golden(el *xmlstream.Element) string {
	if strings.HasPrefix(el.Attr("id"), "story-") {
		el = el.ShallowCopy().SetAttr("id", "ID")
	}
	return serialize(el)
}

func TestBuildersGolden(t *testing.T) {
	bob := jid.MustParse("bob@example.com/phone")
	room := jid.MustParse("room@muc.example.com")
	start := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	end := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.FixedZone("X", 3600))
	cases := []struct {
		name string
		el   *xmlstream.Element
		xml  string
	}{
		{"Chat", Chat(bob, "hi & <bye>"),
			`<message to='bob@example.com/phone' type='chat'><body>hi &amp; &lt;bye&gt;</body></message>`},
		{"Message normal", Message("", bob.Bare(), "x"),
			`<message to='bob@example.com'><body>x</body></message>`},
		{"Message headline no body", Message("headline", bob, ""),
			`<message to='bob@example.com/phone' type='headline'/>`},
		{"Groupchat", Groupchat(room, "hello"),
			`<message to='room@muc.example.com' type='groupchat'><body>hello</body></message>`},
		{"Presence available", Presence(""), `<presence/>`},
		{"Presence unavailable", Presence("unavailable"), `<presence type='unavailable'/>`},
		{"PresenceTo", PresenceTo(RawAddr(room.String()+"/nick"), ""), `<presence to='room@muc.example.com/nick'/>`},
		{"Subscribe", Subscribe(bob.Bare()), `<presence to='bob@example.com' type='subscribe'/>`},
		{"Subscribed", Subscribed(bob.Bare()), `<presence to='bob@example.com' type='subscribed'/>`},
		{"Unsubscribe", Unsubscribe(bob.Bare()), `<presence to='bob@example.com' type='unsubscribe'/>`},
		{"Unsubscribed", Unsubscribed(bob.Bare()), `<presence to='bob@example.com' type='unsubscribed'/>`},
		{"Probe", Probe(bob.Bare()), `<presence to='bob@example.com' type='probe'/>`},
		{"RawAddr", Chat(RawAddr("not a jid@@"), ""), `<message to='not a jid@@' type='chat'/>`},
		{"IQGet", IQGet(RawAddr("example.com"), xmlstream.NewElement("query", "urn:x")),
			`<iq to='example.com' type='get' id='ID'><query xmlns='urn:x'/></iq>`},
		{"IQSet no to", IQSet(nil, xmlstream.NewElement("q", "urn:x")), `<iq type='set' id='ID'><q xmlns='urn:x'/></iq>`},
		{"IQResult", IQResult(xmlstream.NewElement("iq", "jabber:client").SetAttr("from", "a@b/c").SetAttr("id", "42"), nil),
			`<iq to='a@b/c' type='result' id='42'/>`},
		{"RosterGet", RosterGet(), `<iq type='get' id='ID'><query xmlns='jabber:iq:roster'/></iq>`},
		{"RosterSet", RosterSet(bob.Bare(), "Bob", "Friends", "Work"),
			`<iq type='set' id='ID'><query xmlns='jabber:iq:roster'><item jid='bob@example.com' name='Bob'><group>Friends</group><group>Work</group></item></query></iq>`},
		{"RosterSet no name", RosterSet(bob.Bare(), ""),
			`<iq type='set' id='ID'><query xmlns='jabber:iq:roster'><item jid='bob@example.com'/></query></iq>`},
		{"RosterRemove", RosterRemove(bob.Bare()),
			`<iq type='set' id='ID'><query xmlns='jabber:iq:roster'><item jid='bob@example.com' subscription='remove'/></query></iq>`},
		{"DiscoInfo", DiscoInfo(RawAddr("example.com"), ""),
			`<iq to='example.com' type='get' id='ID'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`},
		{"DiscoInfo node", DiscoInfo(bob, "http://caps#ver"),
			`<iq to='bob@example.com/phone' type='get' id='ID'><query xmlns='http://jabber.org/protocol/disco#info' node='http://caps#ver'/></iq>`},
		{"DiscoItems", DiscoItems(RawAddr("example.com"), "n"),
			`<iq to='example.com' type='get' id='ID'><query xmlns='http://jabber.org/protocol/disco#items' node='n'/></iq>`},
		{"Ping server", Ping(nil), `<iq type='get' id='ID'><ping xmlns='urn:xmpp:ping'/></iq>`},
		{"Version", Version(RawAddr("example.com")), `<iq to='example.com' type='get' id='ID'><query xmlns='jabber:iq:version'/></iq>`},
		{"Time", Time(bob), `<iq to='bob@example.com/phone' type='get' id='ID'><time xmlns='urn:xmpp:time'/></iq>`},
		{"VcardGet own", VcardGet(nil), `<iq type='get' id='ID'><vCard xmlns='vcard-temp'/></iq>`},
		{"VcardGet other", VcardGet(bob.Bare()), `<iq to='bob@example.com' type='get' id='ID'><vCard xmlns='vcard-temp'/></iq>`},
		{"VcardSet", VcardSet(VcardField("FN", "Bob"), VcardField("NICKNAME", "b")),
			`<iq type='set' id='ID'><vCard xmlns='vcard-temp'><FN>Bob</FN><NICKNAME>b</NICKNAME></vCard></iq>`},
		{"MAM plain", MAM(MAMQuery{}),
			`<iq type='set' id='ID'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field></x></query></iq>`},
		{"MAM full", MAM(MAMQuery{QueryID: "q1", With: bob.Bare(), Start: start, End: end, Max: 10, After: "09af3"}),
			`<iq type='set' id='ID'><query xmlns='urn:xmpp:mam:2' queryid='q1'><x xmlns='jabber:x:data' type='submit'>` +
				`<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>` +
				`<field var='with'><value>bob@example.com</value></field>` +
				`<field var='start'><value>2024-05-06T07:08:09Z</value></field>` +
				`<field var='end'><value>2024-05-06T06:08:09.123456Z</value></field></x>` +
				`<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>09af3</after></set></query></iq>`},
		{"MAM last page", MAM(MAMQuery{To: room, Max: 5, Last: true}),
			`<iq to='room@muc.example.com' type='set' id='ID'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>` +
				`<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field></x>` +
				`<set xmlns='http://jabber.org/protocol/rsm'><max>5</max><before/></set></query></iq>`},
		{"MAM before", MAM(MAMQuery{Before: "x1"}),
			`<iq type='set' id='ID'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>` +
				`<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field></x>` +
				`<set xmlns='http://jabber.org/protocol/rsm'><before>x1</before></set></query></iq>`},
	}
	for _, tc := range cases {
		if got := golden(tc.el); got != tc.xml {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.xml)
		}
	}
}

func TestNewIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if seen[id] || !strings.HasPrefix(id, "story-") {
			t.Fatalf("id %q repeated or malformed", id)
		}
		seen[id] = true
	}
	a, b := IQGet(nil, nil), IQGet(nil, nil)
	if a.Attr("id") == b.Attr("id") {
		t.Error("two IQs share an id")
	}
}

func TestSendTimeStamp(t *testing.T) {
	m := Chat(RawAddr("b@x"), "hi")
	if _, ok := SendTimeOf(m); ok {
		t.Fatal("unstamped message has a send time")
	}
	before := time.Now().Truncate(time.Microsecond)
	StampSendTime(m)
	StampSendTime(m) // replaces, does not add
	after := time.Now()
	n := 0
	for range m.ChildrenNamed("ts", NSStoryTS) {
		n++
	}
	if n != 1 {
		t.Errorf("%d timestamps, want 1", n)
	}
	// Round trip through the wire form.
	p := xmlstream.NewParser(xmlstream.ModeFragments, xmlstream.Limits{})
	p.Feed([]byte(m.String()))
	ev, err := p.Next()
	if err != nil {
		t.Fatal(err)
	}
	ts, ok := SendTimeOf(ev.Element)
	if !ok || ts.Before(before) || ts.After(after) {
		t.Errorf("send time %v not within [%v, %v]", ts, before, after)
	}
	bad := Chat(nil, "")
	bad.AddChild(xmlstream.NewElement("ts", NSStoryTS).SetAttr("us", "soon"))
	if _, ok := SendTimeOf(bad); ok {
		t.Error("a bad timestamp was read")
	}
}

func TestNilAddr(t *testing.T) {
	var c *Client
	var j jid.JID
	for _, a := range []Addr{nil, c, j, RawAddr("")} {
		if !isNilAddr(a) {
			t.Errorf("%#v is not treated as no address", a)
		}
	}
	if isNilAddr(RawAddr("x")) {
		t.Error("RawAddr(x) treated as none")
	}
}

func TestIQError(t *testing.T) {
	req := IQGet(RawAddr("alice@example.com/r"), xmlstream.NewElement("ping", NSPing))
	req.SetAttr("from", "example.com")
	got := IQError(req, "cancel", "service-unavailable").AppendXML(nil, xmlstream.StreamScope(stanza.NSClient))
	want := `<iq id='` + req.Attr("id") + `' to='example.com' type='error'><ping xmlns='urn:xmpp:ping'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
