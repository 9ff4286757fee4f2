package muclight_test

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// roomItem is the roster item of a room as a member's roster shows it
// (muclight.md "Roster integration").
func roomItem(room jid.JID, name, version string) *xmlstream.Element {
	return xmlstream.NewElement("item", stanza.NSRoster).SetAttr("jid", room.String()).SetAttr("name", name).SetAttr("subscription", "to").AddChild(
		xmlstream.NewElement("group", stanza.NSRoster).AddText(story.NSMUCLight),
		xmlstream.NewElement("version", stanza.NSRoster).AddText(version))
}

// rosterGet asks for the roster, with a cached version when ver is not
// empty.
func rosterGet(ver string) *xmlstream.Element {
	iq := story.RosterGet()
	if ver != "" {
		iq.Child("query", stanza.NSRoster).SetAttr("ver", ver)
	}
	return iq
}

// assertRoster checks that a roster result holds exactly the items want,
// in order, and returns its version.
func assertRoster(t *testing.T, res *xmlstream.Element, want ...*xmlstream.Element) string {
	t.Helper()
	story.AssertStanza(t, res, story.IsRosterResult(""))
	q := res.Child("query", stanza.NSRoster)
	var got []*xmlstream.Element
	for it := range q.Elements() {
		got = append(got, it)
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = xmlstream.Equal(got[i], want[i])
	}
	if !ok {
		t.Fatalf("roster %s, want items %v", res, want)
	}
	if q.Attr("ver") == "" {
		t.Fatalf("roster without a version: %s", res)
	}
	return q.Attr("ver")
}

// TestStoryMUCLightRosterGetVersion: with rooms_in_rosters, a roster get
// served by the roster module shows the room's current <version/> (the
// RosterItem hook), after the creation and after a change of the room
// that does not touch the stored item. The room version is part of the
// roster version: a client whose cached roster holds the old room version
// gets the whole roster again; one whose cache is current gets an empty
// result.
func TestStoryMUCLightRosterGetVersion(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nrooms_in_rosters = true"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		assertRoster(t, bob.IQ(rosterGet("")))
		room := roomOf(t, srv, "coven")
		v1 := create(t, room, alice, bob)
		push := bob.Expect(story.IsRosterPush(room))
		if it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster); !xmlstream.Equal(it, roomItem(room, "Room", v1)) {
			t.Fatalf("push: %s", push)
		}

		// After the creation.
		ver1 := assertRoster(t, bob.IQ(rosterGet("")), roomItem(room, "Room", v1))
		res := bob.IQ(rosterGet(ver1))
		story.AssertStanza(t, res, story.IsIQ("result"))
		if res.FirstChild() != nil {
			t.Fatalf("a get with the current version: %s", res)
		}

		// A new member: a new room version, the same stored item (no
		// roster push to bob), a new roster version.
		story.AssertStanza(t, alice.IQ(story.MUCLightAffiliationsSet(room, story.Member(carol))), story.IsIQ("result"))
		n := bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(carol)))
		v2 := notice(n, NSAff).Version
		if v2 == "" || v2 == v1 {
			t.Fatalf("notification: %s", n)
		}
		alice.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(carol)))
		carol.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(carol)))
		carol.Expect(story.IsRosterPush(room))
		ver2 := assertRoster(t, bob.IQ(rosterGet(ver1)), roomItem(room, "Room", v2))
		if ver2 == ver1 {
			t.Fatalf("the roster version did not change with the room version: %s", ver2)
		}
		assertRoster(t, bob.IQ(rosterGet("")), roomItem(room, "Room", v2))
		assertRoster(t, carol.IQ(rosterGet("")), roomItem(room, "Room", v2))
		res = bob.IQ(rosterGet(ver2))
		if res.FirstChild() != nil {
			t.Fatalf("a get with the current version: %s", res)
		}

		// A rename changes the stored item (a push, with the version it
		// made) and the room version.
		story.AssertStanza(t, alice.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "roomname", Value: "Renamed"})), story.IsIQ("result"))
		v3 := notice(bob.Expect(story.IsMUCLightNotice(room, NSConf)), NSConf).Version
		push = bob.Expect(story.IsRosterPush(room))
		if it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster); !xmlstream.Equal(it, roomItem(room, "Renamed", v3)) {
			t.Fatalf("push after the rename: %s", push)
		}
		// The push's version (the stored roster's alone) is not current
		// for the room versions: the whole roster comes.
		ver3 := assertRoster(t, bob.IQ(rosterGet(push.Child("query", stanza.NSRoster).Attr("ver"))), roomItem(room, "Renamed", v3))
		if res := bob.IQ(rosterGet(ver3)); res.FirstChild() != nil {
			t.Fatalf("a get with the current version: %s", res)
		}

		// A roster push made by the roster module (bob renames the item
		// himself) carries the room version too.
		story.AssertStanza(t, bob.IQ(story.RosterSet(room, "Ours", story.NSMUCLight)), story.IsIQ("result"))
		push = bob.Expect(story.IsRosterPush(room))
		if it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster); !xmlstream.Equal(it, roomItem(room, "Ours", v3)) {
			t.Fatalf("push of the roster module: %s", push)
		}
		// A cached version from before bob's change: that change as an
		// interim push, with the room version (the fingerprint of the
		// room versions is current).
		res = bob.IQ(rosterGet(ver3))
		if res.FirstChild() != nil {
			t.Fatalf("a get with a version one change behind: %s", res)
		}
		push = bob.Expect(story.IsRosterPush(room))
		if it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster); !xmlstream.Equal(it, roomItem(room, "Ours", v3)) {
			t.Fatalf("interim push: %s", push)
		}
		bob.ExpectNothing(0, story.IsRosterPush(nil))
	})
}
