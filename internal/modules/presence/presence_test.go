package presence_test

import (
	"context"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// setSub writes user's subscription with contact straight into the store
// (the roster module's stories cover how subscriptions come about).
func setSub(t *testing.T, srv *servertest.Server, user, contact jid.JID, sub storage.Subscription) {
	t.Helper()
	s := srv.Store().(storage.RosterStore)
	if _, _, err := s.PutRosterItem(context.Background(), user, storage.RosterItem{Contact: contact, Subscription: sub}); err != nil {
		t.Fatal(err)
	}
}

// mutual subscribes a and b to each other.
func mutual(t *testing.T, srv *servertest.Server, a, b jid.JID) {
	t.Helper()
	setSub(t, srv, a, b, storage.SubBoth)
	setSub(t, srv, b, a, storage.SubBoth)
}

// syncAll makes sure everything the server sent each client before now
// has arrived (a ping answered by the server comes after it); the sender
// of the last stanza, whose connection processed it, goes first.
//
// The stories call it first thing, before they write subscriptions into
// the store: story.Run returns when each client has its initial presence
// back, before the server has run the initial-presence hooks (the probes
// of the contacts). A hook running after the writes would deliver probe
// answers, or unsubscribed, that the story does not expect.
func syncAll(cs ...*story.Client) {
	for _, c := range cs {
		c.IQ(story.Ping(nil))
	}
}

// assertNone fails if c has anything matching p queued (call syncAll
// first).
func assertNone(t *testing.T, c *story.Client, p story.Predicate) {
	t.Helper()
	for _, r := range c.Pending() {
		if p.Match(r.El) {
			t.Fatalf("%s: unexpected %s: %s", c.Name(), p.Desc, r.El)
		}
	}
}

func withShow(show, status string) *xmlstream.Element {
	p := story.Presence("")
	if show != "" {
		p.AddChild(xmlstream.NewElement("show", stanza.NSClient).AddText(show))
	}
	if status != "" {
		p.AddChild(xmlstream.NewElement("status", stanza.NSClient).AddText(status))
	}
	return p
}

func hasShow(show string) story.Predicate {
	return story.Predicate{Desc: "with show " + show, Match: func(el *xmlstream.Element) bool {
		return el.ChildText("show", stanza.NSClient) == show
	}}
}

// TestStoryBroadcast: available, subsequent and unavailable presence go
// to the subscribers (from, both) and only to them (RFC 6121 §4.2.2,
// §4.4.2, §4.5.2), to each of their available resources (§4.2.3).
func TestStoryBroadcast(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 2, "carol": 1, "dave": 1}, func(alice, bob1, bob2, carol, dave *story.Client) {
		syncAll(alice, bob1, bob2, carol, dave) // the initial-presence hooks ran: see syncAll
		mutual(t, srv, alice.Bare(), bob1.Bare())
		// carol is subscribed to alice, not the other way round; dave
		// only asked (no subscription).
		setSub(t, srv, alice.Bare(), carol.Bare(), storage.SubFrom)
		setSub(t, srv, carol.Bare(), alice.Bare(), storage.SubTo)
		setSub(t, srv, alice.Bare(), dave.Bare(), storage.SubTo)

		away := withShow("away", "lunch")
		away.SetAttr("id", "p1")
		alice.Send(away)
		alice.Expect(story.IsPresence("", alice.JID()), hasShow("away")) // her own (the router)
		for _, c := range []*story.Client{bob1, bob2, carol} {
			p := c.Expect(story.IsPresence("", alice.JID()), hasShow("away"))
			// The full XML, addressed to the contact's bare JID.
			if p.Attr("to") != c.Bare().String() || p.Attr("id") != "p1" || p.ChildText("status", stanza.NSClient) != "lunch" {
				t.Fatalf("%s got %s", c.Name(), p)
			}
		}
		bob1.Send(withShow("dnd", ""))
		alice.Expect(story.IsPresence("", bob1.JID()), hasShow("dnd"))
		bob1.Send(story.Presence(stanza.PresenceUnavailable))
		alice.Expect(story.IsPresence(stanza.PresenceUnavailable, bob1.JID()))
		bob2.Expect(story.IsPresence(stanza.PresenceUnavailable, bob1.JID()))
		// Back: equivalent to initial presence (§4.5.2 note).
		bob1.Send(story.Presence(""))
		alice.Expect(story.IsPresence("", bob1.JID()))
		syncAll(bob1, alice, bob2, carol, dave)
		assertNone(t, dave, story.IsPresence("", alice.JID()))
		assertNone(t, alice, story.IsPresence("", carol.JID()))
		// carol's own broadcast goes nowhere: alice is not her subscriber.
		carol.Send(withShow("xa", ""))
		syncAll(carol, alice)
		assertNone(t, alice, story.IsPresence("", carol.JID()))
	})
}

// TestStoryPresenceAtLogin: a user who logs in after a contact gets the
// contact's current presence from each available resource (§4.2.2,
// §4.3), the contact gets the user's initial presence; contacts offline
// send nothing.
func TestStoryPresenceAtLogin(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bobAcct := story.NewAccount(t, srv, "bob")
	story.Run(t, srv, story.Users{"alice": 2, "carol": 1}, func(a1, a2, carol *story.Client) {
		syncAll(a1, a2, carol) // the initial-presence hooks ran: see syncAll
		mutual(t, srv, a1.Bare(), bobAcct.JID)
		mutual(t, srv, carol.Bare(), bobAcct.JID)
		// carol goes offline before bob comes.
		carol.Send(story.Presence(stanza.PresenceUnavailable))
		carol.Expect(story.IsPresence(stanza.PresenceUnavailable, carol.JID()))
		st := withShow("chat", "ready")
		st.AddChild(xmlstream.NewElement("priority", stanza.NSClient).AddText("-1"))
		a2.Send(st)
		a1.Expect(story.IsPresence("", a2.JID()))

		bob := story.MustConnect(t, srv, bobAcct, story.Options{Name: "bob", NoPresence: true})
		bob.Send(story.Presence(""))
		p1 := bob.Expect(story.IsPresence("", a1.JID()))
		p2 := bob.Expect(story.IsPresence("", a2.JID()), hasShow("chat"))
		if p1.Attr("to") != bob.JID().String() || p2.ChildText("status", stanza.NSClient) != "ready" {
			t.Fatalf("presence at login: %s %s", p1, p2)
		}
		for _, c := range []*story.Client{a1, a2} {
			c.Expect(story.IsPresence("", bob.JID()))
		}
		syncAll(bob, carol)
		assertNone(t, bob, story.IsPresence("", carol.JID()))
		assertNone(t, bob, story.IsPresenceType(stanza.PresenceUnavailable))
		// An update of bob's reaches alice, not carol who is offline.
		bob.Send(withShow("away", ""))
		a1.Expect(story.IsPresence("", bob.JID()), hasShow("away"))
		syncAll(bob, carol)
		assertNone(t, carol, story.IsPresence("", bob.JID()))
	})
}

// TestStoryProbes: the server answers probes for its accounts (§4.3.2):
// presence for a subscriber, unavailable when no resource is available,
// unsubscribed for anyone else; the mere availability of one resource for
// a probe of a full JID (§4.3.2, §4.6.6).
func TestStoryProbes(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	offline := story.NewAccount(t, srv, "offline")
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		syncAll(alice, bob, carol) // the initial-presence hooks ran: see syncAll
		setSub(t, srv, alice.Bare(), bob.Bare(), storage.SubTo)
		setSub(t, srv, bob.Bare(), alice.Bare(), storage.SubFrom)
		setSub(t, srv, alice.Bare(), offline.JID, storage.SubTo)
		setSub(t, srv, offline.JID, alice.Bare(), storage.SubFrom)
		b := withShow("away", "")
		b.SetAttr("id", "bob-p")
		bob.Send(b)
		bob.Expect(story.IsPresence("", bob.JID()))
		alice.Expect(story.IsPresence("", bob.JID())) // the broadcast

		probe := story.Probe(bob.Bare())
		probe.SetAttr("id", "pr1")
		alice.Send(probe)
		p := alice.Expect(story.IsPresence("", bob.JID()))
		if p.ChildText("show", stanza.NSClient) != "away" || p.Attr("id") != "bob-p" {
			t.Fatalf("answer %s: the full last presence, its id kept (§4.3.2.1)", p)
		}
		// A full JID: only that resource, only that it is available.
		alice.Send(story.Probe(bob))
		p = alice.Expect(story.IsPresence("", bob.JID()))
		if len(p.Children) != 0 {
			t.Fatalf("answer for a full JID %s", p)
		}
		// No available resource: unavailable from the bare JID, the
		// probe's id mirrored.
		probe = story.Probe(offline.JID)
		probe.SetAttr("id", "pr2")
		alice.Send(probe)
		p = alice.Expect(story.IsPresence(stanza.PresenceUnavailable, offline.JID))
		if p.Attr("from") != offline.JID.String() || p.Attr("id") != "pr2" {
			t.Fatalf("answer for an offline contact %s", p)
		}
		// Not subscribed: unsubscribed from the bare JID (rule 1). For
		// carol, who has no subscription to bob either, her server drops
		// it (RFC 6121 Appendix A.3.4); where the prober's roster says it
		// is subscribed, it cancels that subscription (§3.2.3).
		carol.Send(story.Probe(bob.Bare()))
		setSub(t, srv, carol.Bare(), offline.JID, storage.SubTo)
		carol.IQ(story.RosterGet())
		probe = story.Probe(offline.JID)
		probe.SetAttr("id", "pr3")
		carol.Send(probe)
		p = carol.Expect(story.IsPresence(stanza.PresenceUnsubscribed, offline.JID))
		if p.Attr("from") != offline.JID.String() || p.Attr("id") != "pr3" {
			t.Fatalf("answer for a stranger %s", p)
		}
		push := carol.Expect(story.IsRosterPush(offline.JID))
		if it := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster); it.Attr("subscription") != "none" {
			t.Fatalf("push %s", push)
		}
		syncAll(carol)
		assertNone(t, carol, story.IsPresence("", bob.JID()))
		// After directed presence, a probe of that full JID gets the mere
		// availability (§4.6.6); the bare JID still unsubscribed.
		bob.Send(story.PresenceTo(carol, ""))
		carol.Expect(story.IsPresence("", bob.JID()))
		carol.Send(story.Probe(bob))
		p = carol.Expect(story.IsPresence("", bob.JID()))
		if len(p.Children) != 0 {
			t.Fatalf("answer after directed presence %s", p)
		}
		carol.Send(story.Probe(bob.Bare()))
		syncAll(carol, alice, bob)
		assertNone(t, carol, story.IsPresence("", bob.JID()))
		// Probes are answered by the server, never delivered.
		assertNone(t, bob, story.IsPresenceType(stanza.PresenceProbe))
	})
}

// TestStoryDirectedPresence: §4.6 — directed presence reaches its
// addressee, not later broadcasts, and is ended by unavailable presence:
// the broadcast one, a directed one, or the end of the session.
func TestStoryDirectedPresence(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2, "carol": 1, "dave": 1, "eve": 1}, func(a1, a2, carol, dave, eve *story.Client) {
		a1.Send(story.PresenceTo(carol, ""))
		carol.Expect(story.IsPresence("", a1.JID()))
		a1.Send(story.PresenceTo(dave.Bare(), ""))
		dave.Expect(story.IsPresence("", a1.JID()))
		a1.Send(story.PresenceTo(eve, ""))
		eve.Expect(story.IsPresence("", a1.JID()))
		// Not in later broadcasts (§4.6.2 rule 2).
		a1.Send(withShow("away", ""))
		// Ended by directed unavailable presence.
		a1.Send(story.PresenceTo(dave.Bare(), stanza.PresenceUnavailable))
		dave.Expect(story.IsPresence(stanza.PresenceUnavailable, a1.JID()))
		// eve sends unavailable to alice: eve (the full JID alice sent
		// presence to) leaves the list (§4.6.1).
		eve.Send(story.PresenceTo(a1, stanza.PresenceUnavailable))
		a1.Expect(story.IsPresence(stanza.PresenceUnavailable, eve.JID()))
		// The broadcast unavailable ends the rest.
		a1.Send(story.Presence(stanza.PresenceUnavailable))
		p := carol.Expect(story.IsPresence(stanza.PresenceUnavailable, a1.JID()))
		if p.Attr("to") != carol.JID().String() {
			t.Fatalf("end of directed presence %s", p)
		}
		syncAll(a1, carol, dave, eve)
		assertNone(t, carol, story.IsPresence("", a1.JID()))
		assertNone(t, dave, story.Any)
		assertNone(t, eve, story.Any)

		// A resource that is not available may send directed presence too
		// (§4.6.2 rule 3); it ends with the session.
		a2.Send(story.Presence(stanza.PresenceUnavailable))
		a2.Send(story.PresenceTo(carol.Bare(), ""))
		carol.Expect(story.IsPresence("", a2.JID()))
		if err := a2.Close(); err != nil {
			t.Fatal(err)
		}
		carol.Expect(story.IsPresence(stanza.PresenceUnavailable, a2.JID()))
	})
}

// TestStoryUnavailableWhenSessionEnds: a session that ends without
// unavailable presence, cleanly or with its connection cut, has it
// generated (§4.5.2) for the subscribers and the user's other resources.
func TestStoryUnavailableWhenSessionEnds(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bobAcct := story.NewAccount(t, srv, "bob")
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		syncAll(alice) // the initial-presence hooks ran: see syncAll
		mutual(t, srv, alice.Bare(), bobAcct.JID)
		b1 := story.MustConnect(t, srv, bobAcct, story.Options{Resource: "one", Name: "bob1"})
		alice.Expect(story.IsPresence("", b1.JID()))

		// A raw connection whose socket is simply closed.
		ctx := context.Background()
		r, err := story.DialRaw(ctx, srv, story.TCP)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err = r.OpenStream(srv.Domain())
		must(err)
		must(r.StartTLS())
		_, err = r.OpenStream(srv.Domain())
		must(err)
		_, err = r.Auth(bobAcct.Localpart, bobAcct.Password)
		must(err)
		_, err = r.OpenStream(srv.Domain())
		must(err)
		raw, err := r.Bind("raw")
		must(err)
		must(r.SendElement(withShow("dnd", "")))
		alice.Expect(story.IsPresence("", raw), hasShow("dnd"))
		b1.Expect(story.IsPresence("", raw))
		must(r.Close())
		alice.Expect(story.IsPresence(stanza.PresenceUnavailable, raw))
		b1.Expect(story.IsPresence(stanza.PresenceUnavailable, raw))

		// A clean close without unavailable presence.
		must(b1.Close())
		alice.Expect(story.IsPresence(stanza.PresenceUnavailable, b1.JID()))
		syncAll(alice)
		if n := len(alice.Pending()); n != 0 {
			t.Fatalf("%d more elements for alice", n)
		}
	})
}

// TestStoryPresenceErrors: a presence error to the user's bare JID goes
// to the available resources and is never answered (RFC 6120 §8.3.1).
func TestStoryPresenceErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1}, func(a1, a2, bob *story.Client) {
		e := stanza.ErrorReply(story.PresenceTo(bob.Bare(), ""), stanza.NewError(stanza.RemoteServerTimeout, ""))
		e.RemoveAttr("from")
		e.SetAttr("to", a1.Bare().String())
		bob.Send(e)
		for _, c := range []*story.Client{a1, a2} {
			c.Expect(story.IsStanzaError("wait", "remote-server-timeout"), story.IsFrom(bob))
		}
		syncAll(bob)
		if n := len(bob.Pending()); n != 0 {
			t.Fatalf("bob got %d elements back", n)
		}
	})
}

// TestStoryPresenceDisabled: without the module, nothing reaches contacts.
func TestStoryPresenceDisabled(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.presence]\nenabled = false"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		syncAll(alice, bob) // the initial-presence hooks ran: see syncAll
		mutual(t, srv, alice.Bare(), bob.Bare())
		alice.Send(withShow("away", ""))
		alice.Expect(story.IsPresence("", alice.JID()))
		bob.ExpectNothing(100*time.Millisecond, story.IsPresence("", alice.JID()))
	})
	if srv.Hooks().Owners()["presence"] {
		t.Fatal("disabled module has hooks")
	}
}
