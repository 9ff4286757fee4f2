package muclight_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// TestStoryMUCLightAllCanInvite: with all_can_invite, members add
// members, never owners, and still do not kick.
func TestStoryMUCLightAllCanInvite(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nall_can_invite = true"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1, "dave": 1}, func(alice, bob, carol, dave *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob)
		story.AssertStanza(t, bob.IQ(story.MUCLightAffiliationsSet(room, story.Owner(carol))), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, bob.IQ(story.MUCLightAffiliationsSet(room, story.Member(carol))), story.IsIQ("result"))
		carol.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(carol)))
		alice.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(carol)))
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(carol)))
		story.AssertStanza(t, carol.IQ(story.MUCLightAffiliationsSet(room, story.Kick(bob))), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, carol.IQ(story.MUCLightAffiliationsSet(room, story.Member(dave), story.Kick(bob))), story.IsStanzaError("", "not-allowed"))
	})
}

// TestStoryMUCLightMultipleOwners: with allow_multiple_owners, promoting
// keeps the current owner.
func TestStoryMUCLightMultipleOwners(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nallow_multiple_owners = true"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob, carol)
		res := alice.IQ(story.MUCLightAffiliationsSet(room, story.Owner(bob), story.Owner(carol)))
		if got := notice(res, NSAff); !slices.Equal(got.Users, story.MUCLightUsersString(story.Owner(bob), story.Owner(carol))) {
			t.Fatalf("result: %s", res)
		}
		got := notice(alice.IQ(story.MUCLightAffiliationsGet(room, "")), NSAff)
		if !slices.Equal(got.Users, story.MUCLightUsersString(story.Owner(alice), story.Owner(bob), story.Owner(carol))) {
			t.Fatalf("members: %v", got.Users)
		}
	})
}

// TestStoryMUCLightEqualOccupants: nobody is owner, the creator
// included; nobody makes owners; a member may destroy.
func TestStoryMUCLightEqualOccupants(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nequal_occupants = true\nall_can_invite = true"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		room := roomOf(t, srv, "coven")
		res := alice.IQ(story.MUCLightCreate(room, nil, story.Member(bob)))
		story.AssertStanza(t, res, story.IsIQ("result"))
		alice.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(alice)))
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Member(bob)))
		story.AssertStanza(t, alice.IQ(story.MUCLightAffiliationsSet(room, story.Owner(bob))), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, bob.IQ(story.MUCLightAffiliationsSet(room, story.Member(carol))), story.IsIQ("result"))
		story.AssertStanza(t, alice.IQ(story.MUCLightCreate(roomOf(t, srv, "x"), nil, story.Owner(bob))), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, carol.IQ(story.MUCLightDestroy(room)), story.IsIQ("result"))
	})
}

// TestStoryMUCLightLastOwnerStays: with promote_on_last_owner_leave off,
// the last owner may leave only naming a successor.
func TestStoryMUCLightLastOwnerStays(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\npromote_on_last_owner_leave = false"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob)
		story.AssertStanza(t, alice.IQ(story.MUCLightAffiliationsSet(room, story.Kick(alice))), story.IsStanzaError("", "not-allowed"))
		res := alice.IQ(story.MUCLightAffiliationsSet(room, story.Kick(alice), story.Owner(bob)))
		if got := notice(res, NSAff); !slices.Equal(got.Users, story.MUCLightUsersString(story.Kick(alice), story.Owner(bob))) {
			t.Fatalf("result: %s", res)
		}
		bob.Expect(story.IsMUCLightNotice(room, NSAff, story.Kick(alice), story.Owner(bob)))
	})
}

// TestStoryMUCLightAllCanConfigure: members change any field.
func TestStoryMUCLightAllCanConfigure(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nall_can_configure = true"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob)
		story.AssertStanza(t, bob.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "roomname", Value: "Bob's"})), story.IsIQ("result"))
		alice.Expect(story.IsMUCLightNotice(room, NSConf))
	})
}

// TestStoryMUCLightLimits: max_occupants, rooms_per_user, max_field_size.
func TestStoryMUCLightLimits(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nmax_occupants = 2\nrooms_per_user = 1\nmax_field_size = 8"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		room := roomOf(t, srv, "coven")
		story.AssertStanza(t, alice.IQ(story.MUCLightCreate(room, nil, story.Member(bob), story.Member(carol))), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, alice.IQ(story.MUCLightCreate(room, []story.MUCLightField{{Name: "roomname", Value: "123456789"}})), story.IsStanzaError("", "not-acceptable"))
		create(t, room, alice, bob)
		story.AssertStanza(t, alice.IQ(story.MUCLightAffiliationsSet(room, story.Member(carol))), story.IsStanzaError("", "not-allowed"))
		// alice is in one room: she may not create another, nor be added.
		story.AssertStanza(t, alice.IQ(story.MUCLightCreate(roomOf(t, srv, "second"), nil)), story.IsStanzaError("", "not-allowed"))
		story.AssertStanza(t, carol.IQ(story.MUCLightCreate(roomOf(t, srv, "third"), nil, story.Member(alice))), story.IsStanzaError("", "not-allowed"))
	})
}

// TestStoryMUCLightRoster: with rooms_in_rosters, a member's roster has
// the room (subscription to, group urn:xmpp:muclight:0, the room name),
// pushed with the room's version, and loses it on leaving
// (muclight.md "Roster integration").
func TestStoryMUCLightRoster(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.muclight]\nrooms_in_rosters = true"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		bob.IQ(story.RosterGet())
		room := roomOf(t, srv, "coven")
		v := create(t, room, alice, bob)
		push := bob.Expect(story.IsRosterPush(room))
		it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster)
		if it.Attr("subscription") != "to" || it.Attr("name") != "Room" || it.ChildText("group", stanza.NSRoster) != story.NSMUCLight || it.ChildText("version", stanza.NSRoster) != v {
			t.Fatalf("push: %s", push)
		}
		roster := bob.IQ(story.RosterGet())
		found := false
		for item := range roster.Child("query", stanza.NSRoster).ChildrenNamed("item", stanza.NSRoster) {
			found = found || item.Attr("jid") == room.String() && item.Attr("subscription") == "to" && item.ChildText("group", stanza.NSRoster) == story.NSMUCLight
		}
		if !found {
			t.Fatalf("roster without the room: %s", roster)
		}
		// A new name is pushed.
		alice.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "roomname", Value: "Renamed"}))
		push = bob.Expect(story.IsRosterPush(room))
		if it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster); it.Attr("name") != "Renamed" {
			t.Fatalf("push after rename: %s", push)
		}
		bob.IQ(story.MUCLightAffiliationsSet(room, story.Kick(bob)))
		push = bob.Expect(story.IsRosterPush(room))
		if it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster); it.Attr("subscription") != "remove" {
			t.Fatalf("push after leaving: %s", push)
		}
	})
}

// TestStoryMUCLightArchiveHooks: the integration points of the room
// archive, with a fake archive: IQs in the MAM namespaces at the room go
// to the TargetRoom handler for members (item-not-found for others,
// service-unavailable without a handler), and RoomMessage sees each room
// message once, as members get it, and may stamp it.
func TestStoryMUCLightArchiveHooks(t *testing.T) {
	t.Parallel()
	// Without the archive module: the fake one below stands in for it.
	srv := servertest.Start(t, servertest.Modules("[modules.mam]\nenabled = false"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "eve": 1}, func(alice, bob, eve *story.Client) {
		room := roomOf(t, srv, "coven")
		create(t, room, alice, bob)
		h := srv.Hooks()
		story.AssertStanza(t, alice.IQ(story.MAM(story.MAMQuery{To: room})), story.IsStanzaError("", "service-unavailable"))
		if info := alice.IQ(story.DiscoInfo(room, "")); strings.Contains(info.String(), story.NSMAM) || !strings.Contains(info.String(), "name='Room'") {
			t.Errorf("room info without an archive: %s", info)
		}
		story.AssertStanza(t, eve.IQ(story.DiscoInfo(room, "")), story.IsStanzaError("", "item-not-found"))

		owner := "fake-archive-" + story.NewID()
		t.Cleanup(func() { h.RemoveOwner(owner) })
		if err := h.HandleIQ(owner, stanza.IQSet, module.TargetRoom, story.NSMAM, func(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
			if iq.To.Bare().String() != room.String() || iq.Target != module.TargetRoom {
				t.Errorf("archive asked for %s", iq.To)
			}
			return xmlstream.NewElement("fin", story.NSMAM).SetAttr("complete", "true"), nil
		}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var seen []string
		h.RoomMessage.Add(owner, 0, func(_ context.Context, ev *module.StanzaEvent) module.Result {
			if ev.User.String() == room.String() {
				mu.Lock()
				seen = append(seen, ev.Stanza.El.Attr("from"))
				mu.Unlock()
				ev.Stanza.El.AddChild(xmlstream.NewElement("stanza-id", "urn:xmpp:sid:0").SetAttr("by", room.String()).SetAttr("id", "s1"))
			}
			return module.Continue
		})
		story.AssertStanza(t, alice.IQ(story.MAM(story.MAMQuery{To: room})), story.IsMAMFin(""))
		if info := alice.IQ(story.DiscoInfo(room, "")); !strings.Contains(info.String(), "var='"+story.NSMAM+"'") {
			t.Errorf("room info with an archive: %s", info)
		}
		story.AssertStanza(t, eve.IQ(story.MAM(story.MAMQuery{To: room})), story.IsStanzaError("", "item-not-found"))

		alice.Send(story.Groupchat(room, "archived"))
		for _, c := range []*story.Client{alice, bob} {
			m := c.Expect(story.IsRoomMessage(room, alice, "archived"))
			if sid := m.Child("stanza-id", "urn:xmpp:sid:0"); sid == nil || sid.Attr("by") != room.String() {
				t.Errorf("%s got %s", c, m)
			}
		}
		// A membership change goes through the hook as the archive keeps
		// it: from the room, with the version and without prev-version.
		alice.IQ(story.MUCLightAffiliationsSet(room, story.Kick(bob)))
		mu.Lock()
		defer mu.Unlock()
		if want := []string{room.String() + "/" + alice.Bare().String(), room.String()}; !slices.Equal(seen, want) {
			t.Errorf("RoomMessage saw %v, want %v", seen, want)
		}
	})
}
