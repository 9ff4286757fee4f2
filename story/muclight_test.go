package story

import (
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func TestMUCLightBuildersGolden(t *testing.T) {
	room := jid.MustParse("coven@muclight.example.com")
	svc := jid.MustParse("muclight.example.com")
	hag := jid.MustParse("hag66@example.com")
	crone := jid.MustParse("crone1@example.com")
	cases := []struct {
		name string
		el   *xmlstream.Element
		xml  string
	}{
		{"create", MUCLightCreate(room, []MUCLightField{{"roomname", "A Dark Cave"}}, Member(hag), Owner(crone)),
			`<iq to='coven@muclight.example.com' type='set' id='ID'><query xmlns='urn:xmpp:muclight:0#create'><configuration><roomname>A Dark Cave</roomname></configuration>` +
				`<occupants><user affiliation='member'>hag66@example.com</user><user affiliation='owner'>crone1@example.com</user></occupants></query></iq>`},
		{"create at the service", MUCLightCreate(svc, nil),
			`<iq to='muclight.example.com' type='set' id='ID'><query xmlns='urn:xmpp:muclight:0#create'/></iq>`},
		{"config get", MUCLightConfigGet(room, "v1"),
			`<iq to='coven@muclight.example.com' type='get' id='ID'><query xmlns='urn:xmpp:muclight:0#configuration'><version>v1</version></query></iq>`},
		{"config set", MUCLightConfigSet(room, MUCLightField{"subject", "Spells"}),
			`<iq to='coven@muclight.example.com' type='set' id='ID'><query xmlns='urn:xmpp:muclight:0#configuration'><subject>Spells</subject></query></iq>`},
		{"affiliations get", MUCLightAffiliationsGet(room, ""),
			`<iq to='coven@muclight.example.com' type='get' id='ID'><query xmlns='urn:xmpp:muclight:0#affiliations'/></iq>`},
		{"affiliations set", MUCLightAffiliationsSet(room, Kick(hag)),
			`<iq to='coven@muclight.example.com' type='set' id='ID'><query xmlns='urn:xmpp:muclight:0#affiliations'><user affiliation='none'>hag66@example.com</user></query></iq>`},
		{"info", MUCLightInfoGet(room, "v2"),
			`<iq to='coven@muclight.example.com' type='get' id='ID'><query xmlns='urn:xmpp:muclight:0#info'><version>v2</version></query></iq>`},
		{"destroy", MUCLightDestroy(room),
			`<iq to='coven@muclight.example.com' type='set' id='ID'><query xmlns='urn:xmpp:muclight:0#destroy'/></iq>`},
		{"blocking get", MUCLightBlockingGet(svc),
			`<iq to='muclight.example.com' type='get' id='ID'><query xmlns='urn:xmpp:muclight:0#blocking'/></iq>`},
		{"blocking set", MUCLightBlockingSet(svc, MUCLightBlockItem{"room", "deny", room}, MUCLightBlockItem{"user", "allow", hag}),
			`<iq to='muclight.example.com' type='set' id='ID'><query xmlns='urn:xmpp:muclight:0#blocking'><room action='deny'>coven@muclight.example.com</room><user action='allow'>hag66@example.com</user></query></iq>`},
	}
	for _, tc := range cases {
		if got := golden(tc.el); got != tc.xml {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.xml)
		}
	}
}

func TestMUCLightPredicates(t *testing.T) {
	room := jid.MustParse("coven@muclight.example.com")
	hag := jid.MustParse("hag66@example.com")
	n := xmlstream.NewElement("message", "jabber:client").SetAttr("from", room.String()).SetAttr("type", "groupchat").SetAttr("id", "x").AddChild(
		xmlstream.NewElement("x", NSMUCLightAffiliations).AddChild(
			xmlstream.NewElement("prev-version", NSMUCLightAffiliations).AddText("p"),
			xmlstream.NewElement("version", NSMUCLightAffiliations).AddText("v"),
			xmlstream.NewElement("user", NSMUCLightAffiliations).SetAttr("affiliation", "member").AddText(hag.String())),
		xmlstream.NewElement("body", "jabber:client"))
	if !IsMUCLightNotice(room, NSMUCLightAffiliations, Member(hag)).Match(n) || IsMUCLightNotice(room, NSMUCLightAffiliations, Owner(hag)).Match(n) ||
		!IsMUCLightNotice(room, NSMUCLightAffiliations).Match(n) || IsMUCLightDestroyed(room).Match(n) || IsMUCLightNotice(room, NSMUCLightConfiguration).Match(n) {
		t.Fatal("IsMUCLightNotice")
	}
	x := MUCLightNoticeOf(n, NSMUCLightAffiliations)
	if x.Version != "v" || x.PrevVersion != "p" || !x.HasVersion || !slices.Equal(x.Users, []string{hag.String() + "=member"}) {
		t.Fatalf("%+v", x)
	}
	m := Groupchat(RawAddr(hag.String()), "hi")
	m.SetAttr("from", room.String()+"/"+hag.String())
	if !IsRoomMessage(room, hag, "hi").Match(m) || IsRoomMessage(room, room, "hi").Match(m) {
		t.Fatal("IsRoomMessage")
	}
}
