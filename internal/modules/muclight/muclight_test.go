package muclight_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const (
	NSAff  = story.NSMUCLightAffiliations
	NSConf = story.NSMUCLightConfiguration
)

func notice(el *xmlstream.Element, ns string) *story.MUCLightNotice {
	return story.MUCLightNoticeOf(el, ns)
}

// expectBeforeResult sends iq from c and returns what arrives up to its
// result, which must come last (muclight.md: notifications are sent
// "before the IQ result").
func expectBeforeResult(t *testing.T, c *story.Client, iq *xmlstream.Element, n int) (notices []*xmlstream.Element, result *xmlstream.Element) {
	t.Helper()
	c.Send(iq)
	got := c.Collect(n + 1)
	for i, el := range got {
		if el.Name == "iq" {
			if i != n {
				t.Fatalf("the IQ result came before notifications: %v", got)
			}
			return got[:n], el
		}
	}
	t.Fatalf("no IQ answer among %v", got)
	return nil, nil
}

// TestStoryMUCLightDisco: the service among the server's items, its
// identity and feature, and the rooms of the asking user, paged with RSM
// (muclight.md "Service discovery").
func TestStoryMUCLightDisco(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	svc := service(srv)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		items := alice.IQ(story.DiscoItems(story.RawAddr(srv.Domain()), ""))
		if !strings.Contains(items.String(), "jid='"+svc.String()+"'") {
			t.Fatalf("server items without the service: %s", items)
		}
		info := alice.IQ(story.DiscoInfo(svc, ""))
		story.AssertStanza(t, info, story.IsIQ("result"), story.IsFrom(svc))
		q := info.Child("query", stanza.NSDiscoInfo)
		id := q.Child("identity", stanza.NSDiscoInfo)
		if id == nil || id.Attr("category") != "conference" || id.Attr("type") != "text" {
			t.Fatalf("identity: %s", info)
		}
		if !strings.Contains(q.String(), "var='"+story.NSMUCLight+"'") {
			t.Fatalf("features without %s: %s", story.NSMUCLight, info)
		}

		var rooms []jid.JID
		for _, name := range []string{"a", "b", "c"} {
			r := roomOf(t, srv, name)
			create(t, r, alice)
			rooms = append(rooms, r)
		}
		create(t, roomOf(t, srv, "bobs"), bob)
		slices.SortFunc(rooms, jid.JID.Compare)
		page := func(set *xmlstream.Element) ([]string, *xmlstream.Element) {
			req := story.DiscoItems(svc, "")
			if set != nil {
				req.Child("query", stanza.NSDiscoItems).AddChild(set)
			}
			res := alice.IQ(req)
			story.AssertStanza(t, res, story.IsIQ("result"))
			q := res.Child("query", stanza.NSDiscoItems)
			var got []string
			for it := range q.ChildrenNamed("item", stanza.NSDiscoItems) {
				if it.Attr("name") != "Room" || it.Attr("version") == "" {
					t.Errorf("item without name or version: %s", it)
				}
				got = append(got, it.Attr("jid"))
			}
			return got, q.Child("set", stanza.NSRSM)
		}
		all, set := page(nil)
		if len(all) != 3 || all[0] != rooms[0].String() || all[2] != rooms[2].String() {
			t.Fatalf("alice's rooms: %v, want %v (bob's room is not hers)", all, rooms)
		}
		if set.ChildText("count", stanza.NSRSM) != "3" {
			t.Errorf("count: %s", set)
		}
		rsmSet := func(max, after string) *xmlstream.Element {
			s := xmlstream.NewElement("set", stanza.NSRSM).AddChild(xmlstream.NewElement("max", stanza.NSRSM).AddText(max))
			if after != "" {
				s.AddChild(xmlstream.NewElement("after", stanza.NSRSM).AddText(after))
			}
			return s
		}
		first, set := page(rsmSet("2", ""))
		if len(first) != 2 || set.ChildText("last", stanza.NSRSM) != first[1] {
			t.Fatalf("first page: %v %s", first, set)
		}
		second, _ := page(rsmSet("2", first[1]))
		if !slices.Equal(second, all[2:]) {
			t.Fatalf("second page: %v, want %v", second, all[2:])
		}
		// The last page: an empty <before/> (XEP-0059 §2.5).
		last, set := page(rsmSet("2", "").AddChild(xmlstream.NewElement("before", stanza.NSRSM)))
		if !slices.Equal(last, all[1:]) || set.Child("first", stanza.NSRSM).Attr("index") != "1" {
			t.Fatalf("last page: %v %s, want %v", last, set, all[1:])
		}
	})
}

// TestStoryMUCLightCreate: a named room (muclight.md "Create"): every
// initial member gets, before the result and with the IQ's id, its own
// entry and the version, no prev-version, an empty body. Creating it
// again is a conflict.
func TestStoryMUCLightCreate(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		room := roomOf(t, srv, "coven")
		iq := story.MUCLightCreate(room, []story.MUCLightField{{Name: "roomname", Value: "A Dark Cave"}}, story.Member(bob), story.Member(carol))
		notes, res := expectBeforeResult(t, alice, iq, 1)
		story.AssertStanza(t, res, story.IsIQResult(iq.Attr("id")), story.IsFrom(room))
		var version string
		for i, c := range []*story.Client{alice, bob, carol} {
			var n *xmlstream.Element
			if i == 0 {
				n = notes[0]
			} else {
				n = c.Expect(story.IsMUCLightNotice(room, NSAff))
			}
			aff := "member"
			if c == alice {
				aff = "owner"
			}
			story.AssertStanza(t, n, story.IsMUCLightNotice(room, NSAff, story.MUCLightUser{JID: c, Affiliation: aff}))
			x := notice(n, NSAff)
			if n.Attr("id") != iq.Attr("id") || !x.HasVersion || x.HasPrevVersion || !hasEmptyBody(n) {
				t.Errorf("creation notification to %s: %s", c, n)
			}
			if version == "" {
				version = x.Version
			} else if x.Version != version {
				t.Errorf("versions differ: %s %s", version, x.Version)
			}
		}
		// The configuration and the members as created.
		conf := notice(alice.IQ(story.MUCLightConfigGet(room, "")), NSConf)
		if v, _ := conf.Field("roomname"); v != "A Dark Cave" || conf.Version != version {
			t.Errorf("configuration: %+v", conf)
		}
		story.AssertStanza(t, alice.IQ(story.MUCLightCreate(room, nil)), story.IsStanzaError("", "conflict"))
		story.AssertStanza(t, bob.IQ(story.MUCLightCreate(room, nil, story.Member(alice))), story.IsStanzaError("", "conflict"))
		alice.ExpectNothing(quiet, story.IsMessage())
	})
}

// TestStoryMUCLightCreateAtService: sent to the service's JID, the
// service names the room; the result comes from it.
func TestStoryMUCLightCreateAtService(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	svc := service(srv)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		iq := story.MUCLightCreate(svc, nil, story.Member(bob))
		notes, res := expectBeforeResult(t, alice, iq, 1)
		story.AssertStanza(t, res, story.IsIQResult(iq.Attr("id")))
		room, err := jid.Parse(res.Attr("from"))
		if err != nil || room.Domain() != svc.String() || room.Local() == "" || !room.IsBare() {
			t.Fatalf("result from %q", res.Attr("from"))
		}
		story.AssertStanza(t, notes[0], story.IsMUCLightNotice(room, NSAff, story.Owner(alice)))
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(bob)))
		conf := notice(bob.IQ(story.MUCLightConfigGet(room, "")), NSConf)
		if v, _ := conf.Field("roomname"); v != "Untitled" {
			t.Errorf("default room name: %+v", conf)
		}
		// Another one gets another name.
		res2 := alice.IQ(story.MUCLightCreate(svc, nil))
		if res2.Attr("from") == res.Attr("from") {
			t.Fatal("two rooms with one name")
		}
	})
}

// TestStoryMUCLightMessages: a member's groupchat message reaches every
// member, the sender included, from room/sender-bare-JID, with its id
// and children (muclight.md "Messages"); a non-member gets item-not-found;
// other types are not routed; presence is ignored.
func TestStoryMUCLightMessages(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 2, "eve": 1}, func(alice, bob1, bob2, eve *story.Client) {
		room := roomOf(t, srv, "coven")
		res := alice.IQ(story.MUCLightCreate(room, nil, story.Member(bob1)))
		story.AssertStanza(t, res, story.IsIQ("result"))
		alice.Expect(story.IsMUCLightNotice(room, NSAff))
		bob1.Expect(story.IsMUCLightNotice(room, NSAff))
		bob2.Expect(story.IsMUCLightNotice(room, NSAff))

		m := story.Groupchat(room, "Harpier cries: 'tis time, 'tis time.")
		m.SetAttr("id", "msg111")
		m.AddChild(xmlstream.NewElement("extra", "urn:example:extra").SetAttr("k", "v"))
		// Only the room makes notifications.
		m.AddChild(xmlstream.NewElement("x", NSAff).AddChild(xmlstream.NewElement("user", NSAff).SetAttr("affiliation", "owner").AddText(eve.Bare().String())))
		bob1.Send(m)
		for _, c := range []*story.Client{alice, bob1, bob2} {
			got := c.Expect(story.IsRoomMessage(room, bob1, "Harpier cries: 'tis time, 'tis time."))
			if got.Attr("id") != "msg111" || got.Child("extra", "urn:example:extra") == nil || got.Child("x", NSAff) != nil {
				t.Errorf("%s got %s", c, got)
			}
			story.AssertStanza(t, got, story.IsTo(c.Bare()))
		}
		// Non-members.
		eve.Send(story.Groupchat(room, "let me in"))
		story.AssertStanza(t, eve.Expect(story.IsMessageType("error")), story.IsStanzaError("", "item-not-found"), story.IsFrom(room))
		eve.Send(story.Groupchat(roomOf(t, srv, "nowhere"), "hello?"))
		eve.Expect(story.IsStanzaError("", "item-not-found"))
		// Only groupchat is routed.
		alice.Send(story.Chat(room, "a chat"))
		alice.Expect(story.IsStanzaError("", "bad-request"))
		// Presence to the room or the service is ignored.
		alice.Send(story.PresenceTo(room, ""))
		alice.Send(story.PresenceTo(service(srv), ""))
		alice.IQ(story.Ping(nil))
		for _, c := range []*story.Client{alice, bob1, bob2, eve} {
			c.ExpectNothing(quiet, story.Or(story.IsMessage(), story.IsPresenceType(""), story.IsPresenceType("error")))
		}
	})
}

// TestStoryMUCLightConfiguration: get with and without the current
// version, set by an owner (notifications with prev-version, version and
// the changed fields, before the result; partial updates keep the other
// fields), the subject by a member, and the errors (muclight.md
// "Configuration", "Errors").
func TestStoryMUCLightConfiguration(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "eve": 1}, func(alice, bob, eve *story.Client) {
		room := roomOf(t, srv, "coven")
		v1 := create(t, room, alice, bob)
		got := notice(bob.IQ(story.MUCLightConfigGet(room, "")), NSConf)
		if got.Version != v1 || len(got.Fields) != 2 || got.Fields[0] != (story.MUCLightField{Name: "roomname", Value: "Room"}) || got.Fields[1].Name != "subject" {
			t.Fatalf("configuration: %+v", got)
		}
		// The current version: an empty result.
		res := bob.IQ(story.MUCLightConfigGet(room, v1))
		story.AssertStanza(t, res, story.IsIQ("result"))
		if res.FirstChild() != nil {
			t.Fatalf("not empty: %s", res)
		}

		iq := story.MUCLightConfigSet(room, story.MUCLightField{Name: "roomname", Value: "A Darker Cave"})
		notes, res := expectBeforeResult(t, alice, iq, 1)
		story.AssertStanza(t, res, story.IsIQResult(iq.Attr("id")), story.IsFrom(room))
		for _, n := range []*xmlstream.Element{notes[0], bob.Expect(story.IsMUCLightNotice(room, NSConf))} {
			x := notice(n, NSConf)
			if x.PrevVersion != v1 || x.Version == v1 || x.Version == "" || len(x.Fields) != 1 || x.Fields[0].Value != "A Darker Cave" || n.Attr("id") != iq.Attr("id") || !hasEmptyBody(n) {
				t.Errorf("configuration notification: %s", n)
			}
		}
		got = notice(bob.IQ(story.MUCLightConfigGet(room, v1)), NSConf)
		if v, _ := got.Field("roomname"); v != "A Darker Cave" || got.Version == v1 {
			t.Errorf("after set: %+v", got)
		}
		v2 := got.Version

		// A member may change the subject only (all_can_configure off).
		story.AssertStanza(t, bob.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "roomname", Value: "Mine"})), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, bob.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "subject", Value: "Spells"})), story.IsIQ("result"))
		n := alice.Expect(story.IsMUCLightNotice(room, NSConf))
		if x := notice(n, NSConf); x.PrevVersion != v2 || len(x.Fields) != 1 || x.Fields[0] != (story.MUCLightField{Name: "subject", Value: "Spells"}) {
			t.Errorf("subject notification: %s", n)
		}
		bob.Expect(story.IsMUCLightNotice(room, NSConf))
		got = notice(alice.IQ(story.MUCLightConfigGet(room, "")), NSConf)
		if v, _ := got.Field("roomname"); v != "A Darker Cave" {
			t.Errorf("a partial update lost the name: %+v", got)
		}

		// Errors.
		for _, bad := range []*xmlstream.Element{
			story.MUCLightConfigSet(room, story.MUCLightField{Name: "version", Value: "x"}),
			story.MUCLightConfigSet(room, story.MUCLightField{Name: "prev-version", Value: "x"}),
			story.MUCLightConfigSet(room, story.MUCLightField{Name: "colour", Value: "black"}),
			story.MUCLightConfigSet(room),
		} {
			story.AssertStanza(t, alice.IQ(bad), story.IsStanzaError("modify", "bad-request"))
		}
		story.AssertStanza(t, alice.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "subject", Value: strings.Repeat("x", 2000)})), story.IsStanzaError("", "not-acceptable"))
		story.AssertStanza(t, eve.IQ(story.MUCLightConfigGet(room, "")), story.IsStanzaError("", "item-not-found"))
		story.AssertStanza(t, eve.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "subject", Value: "x"})), story.IsStanzaError("", "item-not-found"))
		alice.ExpectNothing(quiet, story.IsMessage())
	})
}

// TestStoryMUCLightMembersAndInfo: the member list and #info, with the
// version (muclight.md "Members").
func TestStoryMUCLightMembersAndInfo(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		room := roomOf(t, srv, "coven")
		v := create(t, room, alice, bob, carol)
		want := story.MUCLightUsersString(story.Owner(alice), story.Member(bob), story.Member(carol))
		got := notice(bob.IQ(story.MUCLightAffiliationsGet(room, "")), NSAff)
		if got.Version != v || !slices.Equal(got.Users, want) {
			t.Fatalf("members: %+v, want %v", got, want)
		}
		res := bob.IQ(story.MUCLightAffiliationsGet(room, v))
		story.AssertStanza(t, res, story.IsIQ("result"))
		if res.FirstChild() != nil {
			t.Fatalf("not empty: %s", res)
		}
		info := carol.IQ(story.MUCLightInfoGet(room, ""))
		q := info.Child("query", story.NSMUCLightInfo)
		if q == nil || q.Child("configuration", story.NSMUCLightInfo) == nil || q.Child("occupants", story.NSMUCLightInfo) == nil {
			t.Fatalf("info: %s", info)
		}
		in := notice(info, story.NSMUCLightInfo)
		if name, _ := in.Field("roomname"); in.Version != v || !slices.Equal(in.Users, want) || name != "Room" {
			t.Fatalf("info: %+v", in)
		}
		if res := carol.IQ(story.MUCLightInfoGet(room, v)); res.FirstChild() != nil {
			t.Fatalf("info with the current version: %s", res)
		}
	})
}

// TestStoryMUCLightAffiliationExample: four users; the owner adds one,
// promotes one and kicks one in one request, which in single-owner mode
// demotes the owner (muclight.md "Members"). Staying members get every
// change with prev-version; the newcomer its own entry and the version;
// the removed user its none entry without versions; all before the
// result, which lists the changes.
func TestStoryMUCLightAffiliationExample(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"crone": 1, "hag66": 1, "hag77": 1, "hag88": 1}, func(crone, hag66, hag77, hag88 *story.Client) {
		room := roomOf(t, srv, "coven")
		v1 := create(t, room, crone, hag66, hag77)
		iq := story.MUCLightAffiliationsSet(room, story.Member(hag88), story.Owner(hag66), story.Kick(hag77))
		notes, res := expectBeforeResult(t, crone, iq, 1)
		changes := []story.MUCLightUser{story.Member(hag88), story.Owner(hag66), story.Kick(hag77), story.Member(crone)}
		story.AssertStanza(t, res, story.IsIQResult(iq.Attr("id")))
		if got := notice(res, NSAff); !slices.Equal(got.Users, story.MUCLightUsersString(changes...)) {
			t.Errorf("result lists %v", got.Users)
		}
		var v2 string
		for _, n := range []*xmlstream.Element{notes[0], hag66.Expect(story.IsMUCLightNotice(room, NSAff))} {
			story.AssertStanza(t, n, story.IsMUCLightNotice(room, NSAff, changes...))
			x := notice(n, NSAff)
			if x.PrevVersion != v1 || x.Version == "" || x.Version == v1 || n.Attr("id") != iq.Attr("id") || !hasEmptyBody(n) {
				t.Errorf("notification to a staying member: %s", n)
			}
			v2 = x.Version
		}
		n := hag88.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(hag88)))
		if x := notice(n, NSAff); x.Version != v2 || x.HasPrevVersion || n.Attr("id") != iq.Attr("id") {
			t.Errorf("notification to the newcomer: %s", n)
		}
		n = hag77.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(hag77)))
		if x := notice(n, NSAff); x.HasVersion || x.HasPrevVersion || n.Attr("id") != iq.Attr("id") {
			t.Errorf("notification to the removed user: %s", n)
		}
		got := notice(hag88.IQ(story.MUCLightAffiliationsGet(room, "")), NSAff)
		if want := story.MUCLightUsersString(story.Member(crone), story.Owner(hag66), story.Member(hag88)); got.Version != v2 || !slices.Equal(got.Users, want) {
			t.Errorf("members now %+v, want %v", got, want)
		}
		// The kicked user is out.
		hag77.Send(story.Groupchat(room, "still here?"))
		hag77.Expect(story.IsStanzaError("", "item-not-found"))
		for _, c := range []*story.Client{crone, hag66, hag77, hag88} {
			c.ExpectNothing(quiet, story.IsMUCLightNotice(room, NSAff))
		}
	})
}

// TestStoryMUCLightAffiliationRules: what members may not do, changes
// that change nothing, a JID named twice, leaving, the owner leaving
// (a member is promoted), the last member leaving (the room goes).
func TestStoryMUCLightAffiliationRules(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1, "dave": 1}, func(alice, bob, carol, dave *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob, carol)
		for _, tc := range []struct {
			by   *story.Client
			iq   *xmlstream.Element
			cond string
		}{
			{bob, story.MUCLightAffiliationsSet(room, story.Kick(carol)), "not-allowed"},
			{bob, story.MUCLightAffiliationsSet(room, story.Member(dave)), "not-allowed"},
			{bob, story.MUCLightAffiliationsSet(room, story.Owner(bob)), "not-allowed"},
			{bob, story.MUCLightAffiliationsSet(room, story.Owner(carol)), "not-allowed"},
			{alice, story.MUCLightAffiliationsSet(room, story.Member(bob)), "bad-request"},
			{alice, story.MUCLightAffiliationsSet(room, story.Kick(dave)), "bad-request"},
			{alice, story.MUCLightAffiliationsSet(room, story.Member(dave), story.Kick(dave)), "bad-request"},
			{alice, story.MUCLightAffiliationsSet(room), "bad-request"},
			{alice, story.MUCLightAffiliationsSet(room, story.Owner(bob), story.Owner(carol)), "bad-request"},
			{alice, story.MUCLightAffiliationsSet(room, story.MUCLightUser{JID: dave, Affiliation: "admin"}), "bad-request"},
			{dave, story.MUCLightAffiliationsSet(room, story.Member(dave)), "item-not-found"},
			{dave, story.MUCLightAffiliationsGet(room, ""), "item-not-found"},
		} {
			story.AssertStanza(t, tc.by.IQ(tc.iq), story.IsStanzaError("", tc.cond))
		}
		// A member leaves.
		story.AssertStanza(t, carol.IQ(story.MUCLightAffiliationsSet(room, story.Kick(carol))), story.IsIQ("result"))
		carol.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(carol)))
		alice.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(carol)))
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(carol)))
		// The owner leaves without naming a successor: the service
		// picks one (promote_on_last_owner_leave).
		res := alice.IQ(story.MUCLightAffiliationsSet(room, story.Kick(alice)))
		if got := notice(res, NSAff); !slices.Equal(got.Users, story.MUCLightUsersString(story.Kick(alice), story.Owner(bob))) {
			t.Errorf("result: %s", res)
		}
		alice.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(alice)))
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(alice), story.Owner(bob)))
		// The last member leaves: the room is gone.
		story.AssertStanza(t, bob.IQ(story.MUCLightAffiliationsSet(room, story.Kick(bob))), story.IsIQ("result"))
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(bob)))
		story.AssertStanza(t, bob.IQ(story.MUCLightInfoGet(room, "")), story.IsStanzaError("", "item-not-found"))
		// …and its name is free again.
		story.AssertStanza(t, dave.IQ(story.MUCLightCreate(room, nil)), story.IsIQ("result"))
	})
}

// TestStoryMUCLightDestroy: only an owner destroys; every member gets its
// none entry and <x …#destroy/> before the result (muclight.md "Destroy").
func TestStoryMUCLightDestroy(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "eve": 1}, func(alice, bob, eve *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob)
		story.AssertStanza(t, bob.IQ(story.MUCLightDestroy(room)), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, eve.IQ(story.MUCLightDestroy(room)), story.IsStanzaError("", "item-not-found"))
		iq := story.MUCLightDestroy(room)
		notes, res := expectBeforeResult(t, alice, iq, 1)
		story.AssertStanza(t, res, story.IsIQResult(iq.Attr("id")))
		for _, n := range []*xmlstream.Element{notes[0], bob.Expect(story.IsMUCLightDestroyed(room))} {
			story.AssertStanza(t, n, story.IsMUCLightDestroyed(room))
			x := notice(n, NSAff)
			if x.HasVersion || x.HasPrevVersion || len(x.Users) != 1 || !strings.HasSuffix(x.Users[0], "=none") || n.Attr("id") != iq.Attr("id") {
				t.Errorf("destroy notification: %s", n)
			}
		}
		bob.Send(story.Groupchat(room, "hello?"))
		bob.Expect(story.IsStanzaError("", "item-not-found"))
		story.AssertStanza(t, alice.IQ(story.MUCLightDestroy(room)), story.IsStanzaError("", "item-not-found"))
	})
}

// TestStoryMUCLightBlocking: a user who blocked the room, or the
// requester, is skipped silently; get returns the deny items; allowing
// what is not blocked is not an error (muclight.md "Blocking").
func TestStoryMUCLightBlocking(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	svc := service(srv)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice)
		story.AssertStanza(t, bob.IQ(story.MUCLightBlockingSet(svc, story.MUCLightBlockItem{Kind: "room", Action: "deny", JID: room})), story.IsIQ("result"))
		story.AssertStanza(t, carol.IQ(story.MUCLightBlockingSet(svc,
			story.MUCLightBlockItem{Kind: "user", Action: "deny", JID: alice},
			story.MUCLightBlockItem{Kind: "room", Action: "allow", JID: room})), story.IsIQ("result"))
		if got := blockList(carol.IQ(story.MUCLightBlockingGet(svc))); !slices.Equal(got, []string{"user deny " + alice.Bare().String()}) {
			t.Fatalf("carol's list: %v", got)
		}
		res := alice.IQ(story.MUCLightAffiliationsSet(room, story.Member(bob), story.Member(carol)))
		story.AssertStanza(t, res, story.IsIQ("result"))
		if got := notice(res, NSAff); len(got.Users) != 0 {
			t.Errorf("blocked users were added: %s", res)
		}
		bob.ExpectNothing(quiet, story.IsMessage())
		carol.ExpectNothing(0, story.IsMessage())
		alice.ExpectNothing(0, story.IsMessage())
		// Blocked users are skipped at creation too.
		res = alice.IQ(story.MUCLightCreate(roomOf(t, srv, "another"), nil, story.Member(carol)))
		story.AssertStanza(t, res, story.IsIQ("result"))
		alice.Expect(story.IsMUCLightNotice(story.RawAddr(res.Attr("from")), NSAff, story.Owner(alice)))
		carol.ExpectNothing(quiet, story.IsMessage())

		// Allowed again, bob can be added.
		story.AssertStanza(t, bob.IQ(story.MUCLightBlockingSet(svc, story.MUCLightBlockItem{Kind: "room", Action: "allow", JID: room})), story.IsIQ("result"))
		if got := blockList(bob.IQ(story.MUCLightBlockingGet(svc))); len(got) != 0 {
			t.Fatalf("bob's list: %v", got)
		}
		story.AssertStanza(t, alice.IQ(story.MUCLightAffiliationsSet(room, story.Member(bob))), story.IsIQ("result"))
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(bob)))

		// Malformed items.
		for _, bad := range []*xmlstream.Element{
			story.MUCLightBlockingSet(svc, story.MUCLightBlockItem{Kind: "room", Action: "deny", JID: story.RawAddr("room@elsewhere.example")}),
			story.MUCLightBlockingSet(svc, story.MUCLightBlockItem{Kind: "user", Action: "maybe", JID: alice}),
			story.MUCLightBlockingSet(svc, story.MUCLightBlockItem{Kind: "thing", Action: "deny", JID: alice}),
			story.MUCLightBlockingSet(svc),
		} {
			story.AssertStanza(t, bob.IQ(bad), story.IsStanzaError("", "bad-request"))
		}
	})
}

// TestStoryMUCLightErrors: the error cases of muclight.md "Errors" not
// covered elsewhere.
func TestStoryMUCLightErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	svc := service(srv)
	story.Run(t, srv, story.Users{"alice": 1, "eve": 1}, func(alice, eve *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice)
		nowhere := roomOf(t, srv, "nowhere")
		for _, tc := range []struct {
			by   *story.Client
			iq   *xmlstream.Element
			cond string
		}{
			{alice, story.MUCLightConfigGet(nowhere, ""), "item-not-found"},
			{alice, story.MUCLightInfoGet(nowhere, ""), "item-not-found"},
			{eve, story.MUCLightInfoGet(room, ""), "item-not-found"},
			{eve, story.MUCLightAffiliationsGet(room, ""), "item-not-found"},
			{alice, story.IQSet(room, xmlstream.NewElement("query", story.NSMUCLightCreate).AddChild(xmlstream.NewElement("colour", story.NSMUCLightCreate))), "bad-request"},
			{alice, story.IQSet(svc, xmlstream.NewElement("query", story.NSMUCLightCreate).AddChild(xmlstream.NewElement("configuration", story.NSMUCLightCreate).AddChild(xmlstream.NewElement("colour", story.NSMUCLightCreate)))), "bad-request"},
			{alice, story.MUCLightCreate(svc, nil, story.MUCLightUser{JID: story.RawAddr("not a jid@@"), Affiliation: "member"}), "bad-request"},
			{alice, story.MUCLightCreate(svc, nil, story.MUCLightUser{JID: eve, Affiliation: "none"}), "bad-request"},
			{alice, story.MUCLightCreate(svc, nil, story.Member(room)), "bad-request"},
			{alice, story.MUCLightAffiliationsSet(room, story.Member(nowhere)), "bad-request"},
			{alice, story.IQGet(room, xmlstream.NewElement("query", story.NSMUCLightDestroy)), "bad-request"},
			{alice, story.IQGet(room, xmlstream.NewElement("query", "urn:example:unknown")), "service-unavailable"},
			{alice, story.IQGet(svc, xmlstream.NewElement("query", "urn:example:unknown")), "service-unavailable"},
			{alice, story.IQGet(story.RawAddr(room.String()+"/x"), xmlstream.NewElement("query", story.NSMUCLightInfo)), "item-not-found"},
		} {
			story.AssertStanza(t, tc.by.IQ(tc.iq), story.IsStanzaError("", tc.cond))
		}
	})
}

// blockList reads the items of a blocking list result: "kind action jid".
func blockList(res *xmlstream.Element) []string {
	var out []string
	if q := res.Child("query", story.NSMUCLightBlocking); q != nil {
		for c := range q.Elements() {
			out = append(out, c.Name+" "+c.Attr("action")+" "+c.Text())
		}
	}
	return out
}

// TestStoryMUCLightAccountRemoved: a removed account leaves its rooms
// first, with the usual notifications; an owner is replaced.
func TestStoryMUCLightAccountRemoved(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob)
		if err := srv.RemoveUser(context.Background(), alice.Account().Localpart); err != nil {
			t.Fatal(err)
		}
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(alice), story.Owner(bob)))
		got := notice(bob.IQ(story.MUCLightAffiliationsGet(room, "")), NSAff)
		if !slices.Equal(got.Users, story.MUCLightUsersString(story.Owner(bob))) {
			t.Fatalf("members: %v", got.Users)
		}
	})
}
