package roster_test

import (
	"context"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// TestStorySubscriptionHandshake: the mutual subscription of RFC 6121
// §3.1, alice first, then bob, with every push and stanza of the flow.
func TestStorySubscriptionHandshake(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		alice.IQ(story.RosterGet())
		bob.IQ(story.RosterGet())

		// §3.1.1, §3.1.2: to the full JID, treated as the bare one; stamped
		// with alice's bare JID; a push with ask='subscribe'.
		req := story.Subscribe(bob)
		req.SetAttr("id", "sub1")
		alice.Send(req)
		alice.Expect(isPush(bob.Bare(), "none", "subscribe"))
		in := bob.Expect(story.IsPresenceType(stanza.PresenceSubscribe))
		if in.Attr("from") != alice.Bare().String() || in.Attr("to") != bob.Bare().String() || in.Attr("id") != "sub1" {
			t.Fatalf("inbound request %s", in)
		}
		// §3.1.3 Security Warning: no item for alice in bob's roster yet.
		syncAll(alice, bob)
		assertNone(t, bob, story.IsRosterPush(nil))
		if hasContact(t, srv, bob.Bare(), alice.Bare()) {
			t.Fatal("the request added alice to bob's roster")
		}

		// §3.1.5: bob approves; his roster gets alice with 'from'.
		bob.Send(story.Subscribed(alice))
		bob.Expect(isPush(alice.Bare(), "from", ""))
		// §3.1.6: alice gets the approval, the push, then bob's presence.
		got := alice.Collect(3)
		story.AssertStanza(t, got[0], story.IsPresence(stanza.PresenceSubscribed, bob.Bare()))
		if got[0].Attr("from") != bob.Bare().String() {
			t.Fatalf("approval from %s", got[0].Attr("from"))
		}
		story.AssertStanza(t, got[1], isPush(bob.Bare(), "to", ""))
		story.AssertStanza(t, got[2], story.IsPresence("", bob.JID()))

		// The other way round.
		bob.Send(story.Subscribe(alice.Bare()))
		bob.Expect(isPush(alice.Bare(), "from", "subscribe"))
		alice.Expect(story.IsPresence(stanza.PresenceSubscribe, bob.Bare()))
		alice.Send(story.Subscribed(bob.Bare()))
		alice.Expect(isPush(bob.Bare(), "both", ""))
		bob.Expect(story.IsPresence(stanza.PresenceSubscribed, alice.Bare()))
		bob.Expect(isPush(alice.Bare(), "both", ""))
		bob.Expect(story.IsPresence("", alice.JID()))
		for _, c := range [][2]*story.Client{{alice, bob}, {bob, alice}} {
			e := entry(t, srv, c[0].Bare(), c[1].Bare())
			if e == nil || e.Subscription != storage.SubBoth || e.PendingIn || e.PendingOut {
				t.Fatalf("%s's entry for %s: %+v", c[0].Name(), c[1].Name(), e)
			}
		}
		// The roster result shows it too.
		res := alice.IQ(story.RosterGet())
		if it := res.Child("query", nsRoster).Child("item", nsRoster); it.Attr("subscription") != "both" || it.Attr("ask") != "" {
			t.Fatalf("roster %s", res)
		}
		// A request where the subscription exists: not delivered, answered
		// with subscribed on bob's behalf (Appendix A.3.1, footnote 2) —
		// which alice's server does not deliver, nothing changing for her
		// (A.3.3) — and bob's presence sent again.
		alice.Send(story.Subscribe(bob.Bare()))
		alice.Expect(story.IsPresence("", bob.JID()))
		syncAll(alice, bob)
		assertNone(t, bob, story.IsPresenceType(stanza.PresenceSubscribe))
		assertNone(t, alice, story.IsPresenceType(stanza.PresenceSubscribed))
		assertNone(t, alice, story.IsRosterPush(nil))
	})
}

// TestStorySubscriptionDenied: a request denied with unsubscribed
// (§3.1.4, §3.2).
func TestStorySubscriptionDenied(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		alice.IQ(story.RosterGet())
		bob.IQ(story.RosterGet())
		alice.Send(story.Subscribe(bob.Bare()))
		alice.Expect(isPush(bob.Bare(), "none", "subscribe"))
		bob.Expect(story.IsPresence(stanza.PresenceSubscribe, alice.Bare()))
		bob.Send(story.Unsubscribed(alice.Bare()))
		alice.Expect(story.IsPresence(stanza.PresenceUnsubscribed, bob.Bare()))
		alice.Expect(isPush(bob.Bare(), "none", ""))
		syncAll(bob, alice)
		// bob never had alice in his roster: no push, no entry left.
		assertNone(t, bob, story.IsRosterPush(nil))
		if e := entry(t, srv, bob.Bare(), alice.Bare()); e != nil {
			t.Fatalf("entry left after the denial: %+v", e)
		}
		// A second denial is not routed (Appendix A.2.4: None).
		bob.Send(story.Unsubscribed(alice.Bare()))
		syncAll(bob, alice)
		assertNone(t, alice, story.IsPresenceType(stanza.PresenceUnsubscribed))
	})
}

// TestStoryPreApproval: RFC 6121 §3.4.
func TestStoryPreApproval(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		bob.IQ(story.RosterGet())
		alice.IQ(story.RosterGet())
		// Rule 4: no item yet — one with approved='true', not routed.
		bob.Send(story.Subscribed(alice.Bare()))
		push := bob.Expect(isPush(alice.Bare(), "none", ""))
		if itemOf(push).Attr("approved") != "true" {
			t.Fatalf("pre-approval push %s", push)
		}
		// The request is approved on bob's behalf: alice gets subscribed
		// and bob's presence, bob only the push.
		alice.Send(story.Subscribe(bob.Bare()))
		alice.Expect(isPush(bob.Bare(), "none", "subscribe"))
		alice.Expect(story.IsPresence(stanza.PresenceSubscribed, bob.Bare()))
		alice.Expect(isPush(bob.Bare(), "to", ""))
		alice.Expect(story.IsPresence("", bob.JID()))
		push = bob.Expect(isPush(alice.Bare(), "from", ""))
		if itemOf(push).Attr("approved") != "" {
			t.Fatalf("approval kept after use %s", push)
		}
		syncAll(alice, bob)
		assertNone(t, bob, story.IsPresenceType(stanza.PresenceSubscribe))

		// A pre-approval cancelled by unsubscribed (§3.2.2 rule 2): not
		// routed, and carol's request then needs bob's answer.
		bob.Send(story.Subscribed(carol.Bare()))
		bob.Expect(isPush(carol.Bare(), "none", ""))
		bob.Send(story.Unsubscribed(carol.Bare()))
		push = bob.Expect(isPush(carol.Bare(), "none", ""))
		if itemOf(push).Attr("approved") != "" {
			t.Fatalf("cancelled pre-approval %s", push)
		}
		carol.Send(story.Subscribe(bob.Bare()))
		bob.Expect(story.IsPresence(stanza.PresenceSubscribe, carol.Bare()))
		syncAll(carol)
		assertNone(t, carol, story.Or(story.IsPresenceType(stanza.PresenceSubscribed), story.IsPresenceType(stanza.PresenceUnsubscribed)))
	})
}

// TestStoryCancelAndUnsubscribe: the contact cancels a subscription
// (§3.2), then the user unsubscribes from a subscription (§3.3).
func TestStoryCancelAndUnsubscribe(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		alice.IQ(story.RosterGet())
		bob.IQ(story.RosterGet())
		subscribe(t, alice, bob)
		subscribe(t, bob, alice) // both

		// §3.2.2: bob cancels alice's subscription: unavailable from bob's
		// resource before the unsubscribed, then the pushes.
		bob.Send(story.Unsubscribed(alice.Bare()))
		bob.Expect(isPush(alice.Bare(), "to", ""))
		got := alice.Collect(3)
		story.AssertStanza(t, got[0], story.IsPresence(stanza.PresenceUnavailable, bob.JID()))
		story.AssertStanza(t, got[1], story.IsPresence(stanza.PresenceUnsubscribed, bob.Bare()))
		story.AssertStanza(t, got[2], isPush(bob.Bare(), "from", ""))

		// §3.3: bob unsubscribes from alice: alice gets the unsubscribe,
		// her push, and bob gets unavailable from alice's resource.
		bob.Send(story.Unsubscribe(alice.Bare()))
		bob.Expect(isPush(alice.Bare(), "none", ""))
		alice.Expect(story.IsPresence(stanza.PresenceUnsubscribe, bob.Bare()))
		alice.Expect(isPush(bob.Bare(), "none", ""))
		bob.Expect(story.IsPresence(stanza.PresenceUnavailable, alice.JID()))
		syncAll(bob, alice)
		// The automatic unsubscribed answer (Appendix A.3.2) changes
		// nothing on bob's side, which is at None already.
		assertNone(t, bob, story.Or(story.IsRosterPush(nil), story.IsPresenceType(stanza.PresenceUnsubscribed)))
		for _, c := range [][2]*story.Client{{alice, bob}, {bob, alice}} {
			if e := entry(t, srv, c[0].Bare(), c[1].Bare()); e == nil || e.Subscription != storage.SubNone || e.PendingOut || e.PendingIn {
				t.Fatalf("%s's entry: %+v", c[0].Name(), e)
			}
		}
		// Presence no longer flows.
		alice.Send(story.Presence(""))
		syncAll(alice, bob)
		assertNone(t, bob, story.IsPresence("", alice.JID()))
	})
}

// TestStoryRemoveItemEndsSubscriptions: removing an item with a mutual
// subscription sends unsubscribe and unsubscribed (§2.5.2).
func TestStoryRemoveItemEndsSubscriptions(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		alice.IQ(story.RosterGet())
		bob.IQ(story.RosterGet())
		subscribe(t, alice, bob)
		subscribe(t, bob, alice)

		rm := story.RosterRemove(bob.Bare())
		alice.Send(rm)
		alice.Expect(isPush(bob.Bare(), "remove", ""))
		alice.Expect(story.IsIQResult(rm.Attr("id")))
		bob.Expect(story.IsPresence(stanza.PresenceUnavailable, alice.JID()))
		bob.Expect(story.IsPresence(stanza.PresenceUnsubscribe, alice.Bare()))
		bob.Expect(isPush(alice.Bare(), "to", ""))
		bob.Expect(story.IsPresence(stanza.PresenceUnsubscribed, alice.Bare()))
		bob.Expect(isPush(alice.Bare(), "none", ""))
		if e := entry(t, srv, bob.Bare(), alice.Bare()); e == nil || e.Subscription != storage.SubNone {
			t.Fatalf("bob's entry %+v", e)
		}
		if e := entry(t, srv, alice.Bare(), bob.Bare()); e != nil {
			t.Fatalf("alice's entry %+v", e)
		}
		// A pending outbound request is withdrawn too: bob's record of it
		// goes away.
		alice.Send(story.Subscribe(bob.Bare()))
		bob.Expect(story.IsPresence(stanza.PresenceSubscribe, alice.Bare()))
		alice.IQ(story.RosterRemove(bob.Bare()))
		syncAll(alice, bob)
		if e := entry(t, srv, bob.Bare(), alice.Bare()); e == nil || e.PendingIn {
			t.Fatalf("bob's entry after the withdrawal %+v", e)
		}
	})
}

// TestStoryRequestWhileOffline: a request to a user without an available
// resource is stored, without adding an item, and delivered at each
// initial presence until answered; one per contact (§3.1.3 rule 4).
func TestStoryRequestWhileOffline(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bobAcct := story.NewAccount(t, srv, "bob")
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		alice.IQ(story.RosterGet())
		req := story.Subscribe(bobAcct.JID)
		// The whole stanza is kept, extended content included.
		req.AddChild(xmlstream.NewElement("nick", "http://jabber.org/protocol/nick").AddText("Alice"))
		req.SetAttr("id", "first")
		alice.Send(req)
		alice.Expect(isPush(bobAcct.JID, "none", "subscribe"))
		again := story.Subscribe(bobAcct.JID)
		again.SetAttr("id", "second")
		alice.Send(again)
		syncAll(alice)

		// Connected but not available: nothing yet; no item in the roster.
		b1 := story.MustConnect(t, srv, bobAcct, story.Options{NoPresence: true, Resource: "one"})
		res := b1.IQ(story.RosterGet())
		if q := res.Child("query", nsRoster); len(q.Children) != 0 {
			t.Fatalf("bob's roster %s", res)
		}
		syncAll(b1)
		assertNone(t, b1, story.IsPresenceType(stanza.PresenceSubscribe))
		b1.Send(story.Presence(""))
		in := b1.Expect(story.IsPresence(stanza.PresenceSubscribe, alice.Bare()))
		if in.Attr("id") != "first" || in.Child("nick", "http://jabber.org/protocol/nick").Text() != "Alice" {
			t.Fatalf("stored request %s", in)
		}
		syncAll(b1)
		if n := len(pending(b1, story.IsPresenceType(stanza.PresenceSubscribe))); n != 0 {
			t.Fatalf("%d more requests", n)
		}
		// A second resource becoming available gets it again.
		b2 := story.MustConnect(t, srv, bobAcct, story.Options{Resource: "two"})
		b2.Expect(story.IsPresence(stanza.PresenceSubscribe, alice.Bare()))
		// Answered: no more.
		b2.Send(story.Subscribed(alice.Bare()))
		alice.Expect(story.IsPresence(stanza.PresenceSubscribed, bobAcct.JID))
		b3 := story.MustConnect(t, srv, bobAcct, story.Options{Resource: "three"})
		syncAll(b3)
		assertNone(t, b3, story.IsPresenceType(stanza.PresenceSubscribe))
	})
}

// TestStorySubscribeErrors: a request to a local account that does not
// exist gets an error (§3.1.2); one to another domain is routed, and the
// router answers remote-server-not-found until federation exists.
func TestStorySubscribeErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2}, func(a1, a2 *story.Client) {
		a1.IQ(story.RosterGet())
		nobody := story.RawAddr("nobody@" + srv.Domain())
		a1.Send(story.Subscribe(nobody))
		a1.Expect(story.IsStanzaError("cancel", "service-unavailable"), story.IsFrom(nobody))
		syncAll(a1)
		assertNone(t, a1, story.IsRosterPush(nil))

		remote := story.RawAddr("romeo@example.net")
		a1.Send(story.Subscribe(remote))
		a1.Expect(isPush(remote, "none", "subscribe"))
		// The error comes back to the bare JID: every available resource.
		for _, c := range []*story.Client{a1, a2} {
			c.Expect(story.IsStanzaError("", "remote-server-not-found"), story.IsFrom(remote))
		}
		// Subscription stanzas to oneself are dropped.
		a1.Send(story.Subscribe(a1.Bare()))
		syncAll(a1, a2)
		assertNone(t, a1, story.IsPresenceType(stanza.PresenceSubscribe))
		assertNone(t, a2, story.IsPresenceType(stanza.PresenceSubscribe))
	})
}

// TestStoryUserRemoval: removing an account removes it from its
// contacts' rosters, with a push and unavailable presence for those
// subscribed to it; the storage cleanup removes the rest.
func TestStoryUserRemoval(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		for _, c := range []*story.Client{alice, bob, carol} {
			c.IQ(story.RosterGet())
		}
		subscribe(t, alice, bob)
		subscribe(t, bob, alice)
		// carol has a pending request to bob (a hidden entry in bob's
		// roster, an item with ask='subscribe' in hers).
		carol.Send(story.Subscribe(bob.Bare()))
		carol.Expect(isPush(bob.Bare(), "none", "subscribe"))
		bob.Expect(story.IsPresence(stanza.PresenceSubscribe, carol.Bare()))

		if err := srv.RemoveUser(context.Background(), bob.Account().Localpart); err != nil {
			t.Fatal(err)
		}
		alice.Expect(story.IsPresence(stanza.PresenceUnavailable, bob.JID()))
		alice.Expect(isPush(bob.Bare(), "remove", ""))
		carol.Expect(isPush(bob.Bare(), "remove", ""))
		syncAll(alice, carol)
		assertNone(t, carol, story.IsPresenceType(stanza.PresenceUnavailable))
		users, err := rosterStore(t, srv).ContactsOf(context.Background(), bob.Bare())
		if err != nil || len(users) != 0 {
			t.Fatalf("bob still in the rosters of %v (%v)", users, err)
		}
		if items, v, _ := rosterStore(t, srv).Roster(context.Background(), bob.Bare()); len(items) != 0 || v != 0 {
			t.Fatalf("bob's roster left: %v %d", items, v)
		}
		// alice's client caught up on the removal with versioning too.
		res := alice.IQ(story.RosterGet())
		if q := res.Child("query", nsRoster); len(q.Children) != 0 {
			t.Fatalf("alice's roster %s", res)
		}
	})
}

// TestStoryRosterDisabled: without the module, no roster handler, no
// feature, no hooks.
func TestStoryRosterDisabled(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.roster]\nenabled = false"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		story.AssertStanza(t, alice.IQ(story.RosterGet()), story.IsStanzaError("cancel", "service-unavailable"))
		if alice.Features().Child("ver", stanza.NSRosterVer) != nil {
			t.Fatal("versioning advertised")
		}
	})
	if srv.Hooks().Owners()["roster"] {
		t.Fatal("disabled module has hooks")
	}
}
