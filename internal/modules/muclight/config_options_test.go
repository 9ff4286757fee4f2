package muclight_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// assertXML fails unless el is exactly the stanza written in want (a
// format string for fmt.Sprintf with args; attribute order is free).
func assertXML(t *testing.T, el *xmlstream.Element, want string, args ...any) {
	t.Helper()
	w, err := xmlstream.Parse([]byte(fmt.Sprintf(want, args...)))
	if err != nil {
		t.Fatalf("bad expectation %q: %v", want, err)
	}
	if !xmlstream.Equal(el, w) {
		t.Fatalf("got  %s\nwant %s", el, w)
	}
}

// TestStoryMUCLightServiceHost: with host = "groups.{domain}", the
// server's disco#items lists that service, rooms are created and talk
// there, and the default host is not served (no such domain: the router
// answers remote-server-not-found, as for any domain not served here).
func TestStoryMUCLightServiceHost(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nhost = \"groups.{domain}\"\n[modules.mam]\nenabled = false"))
	d := srv.Domain()
	svc := jid.MustParse("groups." + d)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		items := alice.IQ(story.DiscoItems(story.RawAddr(d), ""))
		story.AssertStanza(t, items, story.IsIQ("result"))
		var listed []string
		for it := range items.Child("query", stanza.NSDiscoItems).ChildrenNamed("item", stanza.NSDiscoItems) {
			listed = append(listed, it.String())
		}
		want := xmlstream.NewElement("item", stanza.NSDiscoItems).SetAttr("jid", svc.String()).SetAttr("name", "MUC Light")
		if !slices.ContainsFunc(listed, func(s string) bool { return s == want.String() }) || strings.Contains(items.String(), "muclight."+d) {
			t.Fatalf("server items: %s", items)
		}

		info := alice.IQ(story.DiscoInfo(svc, ""))
		assertXML(t, info, `<iq xmlns='jabber:client' type='result' id='%s' from='%s' to='%s'>`+
			`<query xmlns='http://jabber.org/protocol/disco#info'>`+
			`<identity category='conference' type='text' name='MUC Light'/>`+
			`<feature var='http://jabber.org/protocol/disco#info'/>`+
			`<feature var='http://jabber.org/protocol/disco#items'/>`+
			`<feature var='http://jabber.org/protocol/rsm'/>`+
			`<feature var='urn:xmpp:muclight:0'/>`+
			`<feature var='urn:xmpp:muclight:0#blocking'/>`+
			`</query></iq>`, info.Attr("id"), svc, alice.JID())

		// A named room of the service: notifications before the result.
		room := jid.MustParse("coven-" + story.NewID() + "@" + svc.String())
		iq := story.MUCLightCreate(room, []story.MUCLightField{{Name: "roomname", Value: "Room"}}, story.Member(bob))
		notes, res := expectBeforeResult(t, alice, iq, 1)
		assertXML(t, res, `<iq xmlns='jabber:client' type='result' id='%s' from='%s' to='%s'/>`, iq.Attr("id"), room, alice.JID())
		v := notice(notes[0], NSAff).Version
		assertXML(t, notes[0], `<message xmlns='jabber:client' type='groupchat' id='%s' from='%s' to='%s'>`+
			`<x xmlns='urn:xmpp:muclight:0#affiliations'><version>%s</version><user affiliation='owner'>%s</user></x><body/></message>`,
			iq.Attr("id"), room, alice.Bare(), v, alice.Bare())
		assertXML(t, bob.Expect(story.IsMUCLightNotice(room, NSAff)), `<message xmlns='jabber:client' type='groupchat' id='%s' from='%s' to='%s'>`+
			`<x xmlns='urn:xmpp:muclight:0#affiliations'><version>%s</version><user affiliation='member'>%s</user></x><body/></message>`,
			iq.Attr("id"), room, bob.Bare(), v, bob.Bare())

		m := story.Groupchat(room, "on the heath")
		m.SetAttr("id", "m1")
		bob.Send(m)
		for _, c := range []*story.Client{alice, bob} {
			assertXML(t, c.Expect(story.IsRoomMessage(room, bob, "on the heath")),
				`<message xmlns='jabber:client' type='groupchat' id='m1' from='%s/%s' to='%s'><body>on the heath</body></message>`,
				room, bob.Bare(), c.Bare())
		}

		// Created at the service's JID: a room of that service.
		res = alice.IQ(story.MUCLightCreate(svc, nil))
		story.AssertStanza(t, res, story.IsIQ("result"))
		if got, err := jid.Parse(res.Attr("from")); err != nil || got.Domain() != svc.String() || got.Local() == "" {
			t.Fatalf("room created at the service: %s", res)
		}
		alice.Expect(story.IsMUCLightNotice(story.RawAddr(res.Attr("from")), NSAff, story.Owner(alice)))

		// The default host is not a service of this server.
		def := jid.MustParse("muclight." + d)
		for _, req := range []*xmlstream.Element{
			story.DiscoInfo(def, ""),
			story.MUCLightCreate(jid.MustParse("coven@"+def.String()), nil),
		} {
			res := alice.IQ(req)
			assertXML(t, res.Child("error", stanza.NSClient), `<error xmlns='jabber:client' type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`)
			story.AssertStanza(t, res, story.IsIQError(req.Attr("id")), story.IsFrom(story.RawAddr(req.Attr("to"))))
		}
		alice.Send(story.Groupchat(jid.MustParse("coven@"+def.String()), "anyone?"))
		story.AssertStanza(t, alice.Expect(story.IsMessageType("error")), story.IsStanzaError("cancel", "remote-server-not-found"))
		alice.ExpectNothing(quiet, story.IsMessageType("groupchat"))
	})
}

// TestStoryMUCLightBlockingOff: with blocking = false, the service does
// not advertise #blocking and answers blocking requests, get and set,
// with service-unavailable (an unknown namespace, RFC 6120 §8.4).
func TestStoryMUCLightBlockingOff(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nblocking = false"))
	svc := service(srv)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		info := alice.IQ(story.DiscoInfo(svc, ""))
		assertXML(t, info, `<iq xmlns='jabber:client' type='result' id='%s' from='%s' to='%s'>`+
			`<query xmlns='http://jabber.org/protocol/disco#info'>`+
			`<identity category='conference' type='text' name='MUC Light'/>`+
			`<feature var='http://jabber.org/protocol/disco#info'/>`+
			`<feature var='http://jabber.org/protocol/disco#items'/>`+
			`<feature var='http://jabber.org/protocol/rsm'/>`+
			`<feature var='urn:xmpp:muclight:0'/>`+
			`</query></iq>`, info.Attr("id"), svc, alice.JID())
		room := roomOf(t, srv, "coven")
		for _, req := range []*xmlstream.Element{
			story.MUCLightBlockingGet(svc),
			story.MUCLightBlockingSet(svc, story.MUCLightBlockItem{Kind: "room", Action: "deny", JID: room}),
			story.MUCLightBlockingSet(svc, story.MUCLightBlockItem{Kind: "user", Action: "deny", JID: alice}),
		} {
			res := bob.IQ(req)
			story.AssertStanza(t, res, story.IsIQError(req.Attr("id")), story.IsFrom(svc))
			assertXML(t, res.Child("error", stanza.NSClient), `<error xmlns='jabber:client' type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`)
		}
		// Nothing was blocked: bob is added.
		create(t, room, alice, bob)
	})
}

// TestStoryMUCLightRoomsPerPage: rooms_per_page is 10 by default: a user
// in 12 rooms gets 10 from disco#items on the service without <max/>,
// with RSM (first with its index, last, count), and the other 2 on the
// next page (muclight.md "Service options").
func TestStoryMUCLightRoomsPerPage(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	svc := service(srv)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		type ref struct{ room, version string }
		var rooms []ref
		for i := range 12 {
			room := roomOf(t, srv, fmt.Sprintf("r%02d", i))
			rooms = append(rooms, ref{room.String(), create(t, room, alice)})
		}
		slices.SortFunc(rooms, func(a, b ref) int { return jid.MustParse(a.room).Compare(jid.MustParse(b.room)) })
		page := func(rs []ref, first int, last string) string {
			var b strings.Builder
			b.WriteString(`<query xmlns='http://jabber.org/protocol/disco#items'>`)
			for _, r := range rs {
				fmt.Fprintf(&b, `<item jid='%s' name='Room' version='%s'/>`, r.room, r.version)
			}
			fmt.Fprintf(&b, `<set xmlns='http://jabber.org/protocol/rsm'><first index='%d'>%s</first><last>%s</last><count>12</count></set></query>`, first, rs[0].room, last)
			return b.String()
		}
		res := alice.IQ(story.DiscoItems(svc, ""))
		story.AssertStanza(t, res, story.IsIQResult(""), story.IsFrom(svc))
		assertXML(t, res.Child("query", stanza.NSDiscoItems), "%s", page(rooms[:10], 0, rooms[9].room))

		next := story.DiscoItems(svc, "")
		next.Child("query", stanza.NSDiscoItems).AddChild(xmlstream.NewElement("set", stanza.NSRSM).AddChild(xmlstream.NewElement("after", stanza.NSRSM).AddText(rooms[9].room)))
		res = alice.IQ(next)
		story.AssertStanza(t, res, story.IsIQResult(next.Attr("id")))
		assertXML(t, res.Child("query", stanza.NSDiscoItems), "%s", page(rooms[10:], 10, rooms[11].room))
	})
}

// TestStoryMUCLightCreateOtherOwner: a creation that names another owner
// among the initial occupants, in single-owner mode (the default): the
// named user is the owner and the creator is demoted to member
// (muclight.md "Members": making someone owner demotes the owner). Each
// initial member gets its own entry and the version, with the IQ's id;
// the creator's notification comes before the result, which is empty
// and comes from the room with the IQ's id.
func TestStoryMUCLightCreateOtherOwner(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.mam]\nenabled = false"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		room := roomOf(t, srv, "coven")
		iq := story.MUCLightCreate(room, []story.MUCLightField{{Name: "roomname", Value: "Room"}}, story.Owner(bob), story.Member(carol))
		iq.SetAttr("id", "create-"+story.NewID())
		notes, res := expectBeforeResult(t, alice, iq, 1)
		assertXML(t, res, `<iq xmlns='jabber:client' type='result' id='%s' from='%s' to='%s'/>`, iq.Attr("id"), room, alice.JID())
		v := notice(notes[0], NSAff).Version
		if v == "" {
			t.Fatalf("no version: %s", notes[0])
		}
		const note = `<message xmlns='jabber:client' type='groupchat' id='%s' from='%s' to='%s'>` +
			`<x xmlns='urn:xmpp:muclight:0#affiliations'><version>%s</version><user affiliation='%s'>%s</user></x><body/></message>`
		assertXML(t, notes[0], note, iq.Attr("id"), room, alice.Bare(), v, "member", alice.Bare())
		assertXML(t, bob.Expect(story.IsMUCLightNotice(room, NSAff)), note, iq.Attr("id"), room, bob.Bare(), v, "owner", bob.Bare())
		assertXML(t, carol.Expect(story.IsMUCLightNotice(room, NSAff)), note, iq.Attr("id"), room, carol.Bare(), v, "member", carol.Bare())

		got := carol.IQ(story.MUCLightAffiliationsGet(room, ""))
		assertXML(t, got, `<iq xmlns='jabber:client' type='result' id='%s' from='%s' to='%s'>`+
			`<query xmlns='urn:xmpp:muclight:0#affiliations'><version>%s</version>`+
			`<user affiliation='member'>%s</user><user affiliation='owner'>%s</user><user affiliation='member'>%s</user></query></iq>`,
			got.Attr("id"), room, carol.JID(), v, alice.Bare(), bob.Bare(), carol.Bare())
		// The creator is a member now: only the owner configures the room.
		story.AssertStanza(t, alice.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "roomname", Value: "Mine"})), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, bob.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "roomname", Value: "Ours"})), story.IsIQ("result"))
		for _, c := range []*story.Client{alice, bob, carol} {
			c.Expect(story.IsMUCLightNotice(room, NSConf))
			c.ExpectNothing(0, story.IsMUCLightNotice(room, NSAff))
		}
	})
}
