package story

import (
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func TestInboxBuildersGolden(t *testing.T) {
	bob := jid.MustParse("bob@example.com")
	start := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	const form = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>erlang-solutions.com:xmpp:inbox:0</value></field>`
	for _, tc := range []struct {
		name string
		el   *xmlstream.Element
		xml  string
	}{
		{"InboxFetch bare", InboxFetch(InboxQuery{}), `<iq type='set' id='ID'><inbox xmlns='erlang-solutions.com:xmpp:inbox:0'/></iq>`},
		{"InboxFetch form and RSM", InboxFetch(InboxQuery{QueryID: "q", Start: start, Order: "asc", HiddenRead: Bool(true), Box: "archive", Archive: Bool(false),
			Fields: map[string]string{"z": "1", "a": "2"}, Max: 5, Before: "2024-05-06T07:08:09Z"}),
			`<iq type='set' id='ID'><inbox xmlns='erlang-solutions.com:xmpp:inbox:0' queryid='q'>` + form +
				`<field var='start'><value>2024-05-06T07:08:09Z</value></field><field var='order'><value>asc</value></field>` +
				`<field var='hidden_read'><value>true</value></field><field var='box'><value>archive</value></field>` +
				`<field var='archive'><value>false</value></field><field var='a'><value>2</value></field><field var='z'><value>1</value></field></x>` +
				`<set xmlns='http://jabber.org/protocol/rsm'><max>5</max><before>2024-05-06T07:08:09Z</before></set></inbox></iq>`},
		{"InboxFetch count only", InboxFetch(InboxQuery{MaxZero: true, After: "t"}),
			`<iq type='set' id='ID'><inbox xmlns='erlang-solutions.com:xmpp:inbox:0'><set xmlns='http://jabber.org/protocol/rsm'><max>0</max><after>t</after></set></inbox></iq>`},
		{"InboxForm", InboxForm(), `<iq type='get' id='ID'><query xmlns='erlang-solutions.com:xmpp:inbox:0'/></iq>`},
		{"InboxEmptyBin", InboxEmptyBin(), `<iq type='set' id='ID'><empty-bin xmlns='erlang-solutions.com:xmpp:inbox:0'/></iq>`},
		{"InboxEntryGet", InboxEntryGet(bob, true),
			`<iq type='get' id='ID'><query xmlns='erlang-solutions.com:xmpp:inbox:0#conversation' jid='bob@example.com' complete='true'/></iq>`},
		{"InboxEntryGet form", InboxEntryGet(nil, false), `<iq type='get' id='ID'><query xmlns='erlang-solutions.com:xmpp:inbox:0#conversation'/></iq>`},
		{"InboxEntrySet", InboxEntrySet(bob, InboxProp("mute", "60"), InboxProp("read", "true")),
			`<iq type='set' id='ID'><query xmlns='erlang-solutions.com:xmpp:inbox:0#conversation' jid='bob@example.com'><mute>60</mute><read>true</read></query></iq>`},
		{"Marker", Marker("chat", bob, "displayed", "m1"),
			`<message to='bob@example.com' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>`},
	} {
		if got := golden(tc.el); got != tc.xml {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.xml)
		}
	}
}

func TestParseInboxResult(t *testing.T) {
	m, err := xmlstream.Parse([]byte(`<message xmlns='jabber:client' from='alice@x' to='alice@x/r'><result xmlns='erlang-solutions.com:xmpp:inbox:0' unread='3' queryid='q'>` +
		`<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2024-05-06T07:08:09.5Z'/>` +
		`<message xmlns='jabber:client' from='room@muclight.x/bob@x' to='alice@x' type='groupchat'><body>hi</body></message></forwarded>` +
		`<box>archive</box><archive>true</archive><mute>0</mute></result></message>`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseInboxResult(m)
	if err != nil {
		t.Fatal(err)
	}
	if e.Unread != 3 || e.QueryID != "q" || e.Box != "archive" || !e.Archive || e.Mute != "0" || e.Body() != "hi" ||
		!e.Stamp.Equal(time.Date(2024, 5, 6, 7, 8, 9, 500000000, time.UTC)) || e.With(RawAddr("alice@x")) != "room@muclight.x" {
		t.Errorf("%+v", e)
	}
	if !IsInboxResult("q").Match(m) || IsInboxResult("other").Match(m) {
		t.Error("IsInboxResult")
	}
	if _, err := ParseInboxResult(xmlstream.NewElement("message", "jabber:client")); err == nil {
		t.Error("parsed a message without result")
	}
}
