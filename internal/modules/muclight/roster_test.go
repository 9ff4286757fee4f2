package muclight_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/server"
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
		// carol never asked for her roster: no push (RFC 6121 §2.1.6);
		// the answer to a ping comes after anything queued before.
		carol.IQ(story.Ping(nil))
		carol.ExpectNothing(0, story.IsRosterPush(nil))
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

// TestStoryMUCLightRosterPushInterested: the room's item is pushed by
// the roster module as it pushes its own changes: to the resources that
// asked for the roster (RFC 6121 §2.1.6, "interested resources") and to
// no other, with the roster module's push id, a roster version (§2.6)
// and the room's <version/> (muclight.md "Roster integration"). A later
// versioned get (§2.6.3) shows the room's item once: in the whole roster
// for a push's version, as one interim push when it changed since a
// roster result's version.
func TestStoryMUCLightRosterPushInterested(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nrooms_in_rosters = true"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 2}, func(alice, bob1, bob2 *story.Client) {
		// bob1 is interested; bob2 and alice never ask for the roster.
		ver0 := assertRoster(t, bob1.IQ(rosterGet("")))
		room := roomOf(t, srv, "coven")
		res := alice.IQ(story.MUCLightCreate(room, []story.MUCLightField{{Name: "roomname", Value: "Room"}}, story.Member(bob1)))
		story.AssertStanza(t, res, story.IsIQ("result"))
		alice.Expect(story.IsMUCLightNotice(room, NSAff))
		v := notice(bob1.Expect(story.IsMUCLightNotice(room, NSAff)), NSAff).Version
		bob2.Expect(story.IsMUCLightNotice(room, NSAff))

		push := bob1.Expect(story.IsRosterPush(room))
		story.AssertStanza(t, push, story.IsTo(bob1))
		q := push.Child("query", stanza.NSRoster)
		ver := q.Attr("ver")
		if push.Attr("from") != "" || !strings.HasPrefix(push.Attr("id"), "push") || ver == "" || ver == ver0 || strings.Contains(ver, ".") {
			t.Fatalf("not a push of the roster module (id push…, a new counter as ver, no from): %s", push)
		}
		var items []*xmlstream.Element
		for it := range q.Elements() {
			items = append(items, it)
		}
		if len(items) != 1 || !xmlstream.Equal(items[0], roomItem(room, "Room", v)) {
			t.Fatalf("push: %s", push)
		}
		// Everything the creation made is queued before the answer to a
		// ping: bob1 got one push, bob2 and alice none.
		for _, c := range []*story.Client{bob1, bob2, alice} {
			c.IQ(story.Ping(nil))
			c.ExpectNothing(0, story.IsRosterPush(nil))
		}

		// The push's version has no fingerprint of the room versions:
		// the whole roster, the room once.
		ver1 := assertRoster(t, bob1.IQ(rosterGet(ver)), roomItem(room, "Room", v))
		if !strings.HasPrefix(ver1, ver+".") {
			t.Fatalf("roster version %q after the push's %q", ver1, ver)
		}
		// Two changes since ver1, the room's among them: an empty result
		// and one interim push each, the room's with its <version/> and
		// the fingerprint of ver1.
		story.AssertStanza(t, bob1.IQ(story.RosterSet(alice.Bare(), "Alice")), story.IsIQ("result"))
		bob1.Expect(story.IsRosterPush(alice.Bare()))
		story.AssertStanza(t, bob1.IQ(story.RosterSet(room, "Ours", story.NSMUCLight)), story.IsIQ("result"))
		bob1.Expect(story.IsRosterPush(room))
		res = bob1.IQ(rosterGet(ver1))
		story.AssertStanza(t, res, story.IsIQ("result"))
		if res.FirstChild() != nil {
			t.Fatalf("a get two changes behind: %s", res)
		}
		bob1.Expect(story.IsRosterPush(alice.Bare()))
		push = bob1.Expect(story.IsRosterPush(room))
		if it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster); !xmlstream.Equal(it, roomItem(room, "Ours", v)) {
			t.Fatalf("interim push: %s", push)
		}
		_, fp, _ := strings.Cut(ver1, ".")
		if pv := push.Child("query", stanza.NSRoster).Attr("ver"); !strings.HasSuffix(pv, "."+fp) {
			t.Fatalf("interim push version %q, want the fingerprint of %q", pv, ver1)
		}
		bob1.IQ(story.Ping(nil))
		bob1.ExpectNothing(0, story.IsRosterPush(nil))
		bob2.ExpectNothing(0, story.IsRosterPush(nil))
	})
}

// TestStoryMUCLightRosterPushOrder: the room's items and the client's
// own roster sets go through the roster module's lock of the user, so
// the pushes an interested resource gets carry strictly increasing
// versions (RFC 6121 §2.6.3) however they interleave.
func TestStoryMUCLightRosterPushOrder(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nrooms_in_rosters = true"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		assertRoster(t, bob.IQ(rosterGet("")))
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob)
		bob.Expect(story.IsRosterPush(room))
		const n = 20
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range n {
				alice.Send(story.MUCLightConfigSet(room, story.MUCLightField{Name: "roomname", Value: "Room " + strconv.Itoa(i)}))
			}
		}()
		for i := range n {
			bob.Send(story.RosterSet(alice.Bare(), "Alice "+strconv.Itoa(i)))
		}
		<-done
		last := int64(-1)
		for range 2 * n {
			push := bob.Expect(story.IsRosterPush(nil))
			v, err := strconv.ParseInt(push.Child("query", stanza.NSRoster).Attr("ver"), 10, 64)
			if err != nil || v <= last {
				t.Fatalf("push version after %d: %s", last, push)
			}
			last = v
		}
	})
}

// TestMUCLightRoomsInRostersNeedsRoster: rooms_in_rosters without the
// roster module is a start error.
func TestMUCLightRoomsInRostersNeedsRoster(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	servertest.Modules("[modules.muclight]\nrooms_in_rosters = true\n[modules.roster]\nenabled = false")(&cfg)
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("started without the roster module")
	}
	if !strings.Contains(err.Error(), "module muclight: muclight: rooms_in_rosters needs the roster module") {
		t.Fatalf("error: %v", err)
	}
}
