package muclight_test

import (
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// roomArchive queries a room's archive as c and returns the archived
// messages with their result ids.
func roomArchive(t *testing.T, c *story.Client, room jid.JID, q story.MAMQuery) (msgs []*xmlstream.Element, ids []string, fin *xmlstream.Element) {
	t.Helper()
	q.To, q.QueryID = room, story.NewID()
	iq := story.MAM(q)
	c.Send(iq)
	for {
		el := c.Expect(story.Or(story.IsMAMResult(q.QueryID), story.IsIQResult(iq.Attr("id")), story.IsIQError(iq.Attr("id"))))
		if el.Name == "iq" {
			story.AssertStanza(t, el, story.IsMAMFin(iq.Attr("id")))
			return msgs, ids, el.Child("fin", story.NSMAM)
		}
		if el.Attr("from") != room.String() {
			t.Errorf("archive result from %q, want the room", el.Attr("from"))
		}
		res := el.Child("result", story.NSMAM)
		ids = append(ids, res.Attr("id"))
		msgs = append(msgs, res.Child("forwarded", stanza.NSForward).Child("message", stanza.NSClient))
	}
}

// TestStoryMUCLightRoomArchive: muclight.md "Archive (MAM) rules" with
// the real archive module: creation and membership changes archived with
// <version/> and without <prev-version/>, messages as members got them
// (from room/sender, no 'to', every child kept) with the room's
// XEP-0359 stanza ID; queried at the room's JID by members only.
func TestStoryMUCLightRoomArchive(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1, "eve": 1}, func(alice, bob, carol, eve *story.Client) {
		room := roomOf(t, srv, "history")
		create(t, room, alice, bob)

		msg := story.Groupchat(room, "first words")
		msg.SetAttr("id", "g1")
		msg.AddChild(xmlstream.NewElement("custom", "urn:example:payload").SetAttr("k", "v"))
		alice.Send(msg)
		var stanzaIDs []string
		for _, c := range []*story.Client{alice, bob} {
			got := c.Expect(story.IsRoomMessage(room, alice, "first words"))
			sid := got.Child("stanza-id", stanza.NSStanzaID)
			if sid == nil || sid.Attr("by") != room.String() || sid.Attr("id") == "" {
				t.Fatalf("%s's copy has no stanza-id by the room: %s", c.Name(), got)
			}
			stanzaIDs = append(stanzaIDs, sid.Attr("id"))
		}
		if stanzaIDs[0] != stanzaIDs[1] {
			t.Errorf("members got different stanza-ids: %q", stanzaIDs)
		}

		// A membership change after the message.
		story.AssertStanza(t, alice.IQ(story.MUCLightAffiliationsSet(room, story.Member(carol))), story.IsIQ("result"))
		for _, c := range []*story.Client{alice, bob, carol} {
			c.Expect(story.IsMUCLightNotice(room, story.NSMUCLightAffiliations))
		}
		// A configuration change: notified, not archived ("Nothing else is
		// archived").
		story.AssertStanza(t, alice.IQ(story.MUCLightConfigSet(room, story.MUCLightField{Name: "subject", Value: "history"})), story.IsIQ("result"))
		for _, c := range []*story.Client{alice, bob, carol} {
			c.Expect(story.IsMUCLightNotice(room, story.NSMUCLightConfiguration))
		}
		bob.Send(story.Groupchat(room, "welcome carol"))
		for _, c := range []*story.Client{alice, bob, carol} {
			c.Expect(story.IsRoomMessage(room, bob, "welcome carol"))
		}

		// A member who joined later reads the whole history.
		msgs, ids, fin := roomArchive(t, carol, room, story.MAMQuery{})
		if len(msgs) != 4 || fin.Attr("complete") != "true" {
			t.Fatalf("room archive: %d messages, fin %s", len(msgs), fin)
		}
		// 1. creation: one change listing the initial members.
		created := msgs[0].Child("x", story.NSMUCLightAffiliations)
		if created == nil || created.Child("version", story.NSMUCLightAffiliations) == nil ||
			created.Child("prev-version", story.NSMUCLightAffiliations) != nil {
			t.Errorf("archived creation: %s", msgs[0])
		}
		var users []string
		if created != nil {
			for u := range created.ChildrenNamed("user", story.NSMUCLightAffiliations) {
				users = append(users, u.Attr("affiliation")+":"+u.Text())
			}
		}
		slices.Sort(users)
		want := []string{"member:" + bob.Bare().String(), "owner:" + alice.Bare().String()}
		slices.Sort(want)
		if !slices.Equal(users, want) {
			t.Errorf("archived creation lists %q, want %q", users, want)
		}
		// 2. the message, as members got it, without 'to'.
		m := msgs[1]
		sender, _ := jid.New(room.Local(), room.Domain(), alice.Bare().String())
		if m.Attr("from") != sender.String() || m.Attr("to") != "" || m.Attr("id") != "g1" || m.Attr("type") != "groupchat" ||
			m.ChildText("body", stanza.NSClient) != "first words" || m.Child("custom", "urn:example:payload") == nil {
			t.Errorf("archived message: %s", m)
		}
		if ids[1] != stanzaIDs[0] {
			t.Errorf("archive id %q, stanza-id the members got %q", ids[1], stanzaIDs[0])
		}
		// 3. carol's arrival, 4. bob's message.
		if x := msgs[2].Child("x", story.NSMUCLightAffiliations); x == nil || x.ChildText("user", story.NSMUCLightAffiliations) != carol.Bare().String() ||
			x.ChildText("version", story.NSMUCLightAffiliations) == "" || x.Child("prev-version", story.NSMUCLightAffiliations) != nil {
			t.Errorf("archived membership change: %s", msgs[2])
		}
		if msgs[3].ChildText("body", stanza.NSClient) != "welcome carol" {
			t.Errorf("last archived: %s", msgs[3])
		}

		// Paging and filters work on room archives as on users'.
		last, _, _ := roomArchive(t, alice, room, story.MAMQuery{Max: 1, Last: true})
		if len(last) != 1 || last[0].ChildText("body", stanza.NSClient) != "welcome carol" {
			t.Errorf("last page: %v", last)
		}
		byBob, _, _ := roomArchive(t, alice, room, story.MAMQuery{With: bob.Bare()})
		if len(byBob) != 1 || byBob[0].ChildText("body", stanza.NSClient) != "welcome carol" {
			t.Errorf("with bob: %v", byBob)
		}

		// Group chat is not in the members' own archives (XEP-0313 §6.1.1:
		// one-to-one only), and strangers cannot read the room's.
		own := story.MAM(story.MAMQuery{})
		res := bob.IQ(own)
		story.AssertStanza(t, res, story.IsMAMFin(own.Attr("id")))
		for _, p := range bob.Pending() {
			if p.El.Child("result", story.NSMAM) != nil {
				t.Errorf("a room message in bob's own archive: %s", p.El)
			}
		}
		story.AssertStanza(t, eve.IQ(story.MAM(story.MAMQuery{To: room})), story.IsStanzaError("", "item-not-found"))
	})
}

// TestStoryMUCLightInboxAndArchive: with the real MUC Light, Inbox and
// archive modules together, a room conversation shows up in each
// member's inbox (unread counts for the others, none for the sender) with
// the last message as delivered — the room's stanza ID included — and a
// displayed marker resets the count. Being added to the room counts as
// one unread (the inbox's aff_changes, on by default as in MongooseIM),
// for the creator too.
func TestStoryMUCLightInboxAndArchive(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := roomOf(t, srv, "inbox")
		create(t, room, alice, bob)
		for _, body := range []string{"one", "two"} {
			msg := story.Groupchat(room, body)
			msg.SetAttr("id", body)
			alice.Send(msg)
		}
		var last *xmlstream.Element
		for _, body := range []string{"one", "two"} {
			alice.Expect(story.IsRoomMessage(room, alice, body))
			last = bob.Expect(story.IsRoomMessage(room, alice, body))
		}
		entry := func(c *story.Client) story.InboxEntry {
			t.Helper()
			entries, _ := c.FetchInbox(story.InboxQuery{})
			for _, e := range entries {
				if e.With(c) == room.String() {
					return e
				}
			}
			t.Fatalf("%s's inbox has no entry for the room: %v", c.Name(), entries)
			return story.InboxEntry{}
		}
		b := entry(bob)
		if b.Unread != 1+2 || b.Body() != "two" {
			t.Errorf("bob's entry: unread %d, last %s", b.Unread, b.Message)
		}
		if !xmlstream.Equal(b.Message, last) {
			t.Errorf("bob's last message\n%s\nis not what he got\n%s", b.Message, last)
		}
		if a := entry(alice); a.Unread != 1 || a.Body() != "two" {
			t.Errorf("alice's entry: unread %d, last %s", a.Unread, a.Message)
		}
		bob.Send(story.Marker(stanza.MessageGroupchat, room, "displayed", "two"))
		// The marker goes to the room's members like any room message.
		alice.Expect(story.HasChild("displayed", "urn:xmpp:chat-markers:0"))
		if b := entry(bob); b.Unread != 0 {
			t.Errorf("after the marker bob's entry has %d unread", b.Unread)
		}
		msgs, _, _ := roomArchive(t, bob, room, story.MAMQuery{})
		var bodies []string
		for _, m := range msgs {
			if body := m.ChildText("body", stanza.NSClient); body != "" {
				bodies = append(bodies, body)
			}
		}
		if !slices.Equal(bodies, []string{"one", "two"}) {
			t.Errorf("room archive bodies %q", bodies)
		}
	})
}

// TestStoryMUCLightArchiveGoesWithTheRoom: a destroyed room's archive is
// deleted, so a new room of the same name starts without the old
// history (module.Hooks.RoomDestroyed).
func TestStoryMUCLightArchiveGoesWithTheRoom(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := roomOf(t, srv, "reused")
		create(t, room, alice, bob)
		alice.Send(story.Groupchat(room, "old secret"))
		bob.Expect(story.IsRoomMessage(room, alice, "old secret"))
		alice.Expect(story.IsRoomMessage(room, alice, "old secret"))
		story.AssertStanza(t, alice.IQ(story.MUCLightDestroy(room)), story.IsIQ("result"))
		bob.Expect(story.HasChild("x", story.NSMUCLight+"#destroy"))

		create(t, room, bob, alice)
		msgs, _, _ := roomArchive(t, alice, room, story.MAMQuery{})
		for _, m := range msgs {
			if m.ChildText("body", stanza.NSClient) == "old secret" {
				t.Fatalf("the new room's archive holds the old room's message: %s", m)
			}
		}
		if len(msgs) != 1 || msgs[0].Child("x", story.NSMUCLightAffiliations) == nil {
			t.Errorf("the new room's archive: %v, want its creation only", msgs)
		}
	})
}
