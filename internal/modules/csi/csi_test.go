package csi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const (
	NS         = "urn:xmpp:csi:0"
	NSCarbons  = "urn:xmpp:carbons:2"
	NSReceipts = "urn:xmpp:receipts"
)

const quiet = 200 * time.Millisecond

// mutual subscribes a and b to each other, straight in the store (the
// roster module's stories cover how subscriptions come about).
func mutual(t *testing.T, srv *servertest.Server, a, b jid.JID) {
	t.Helper()
	s := srv.Store().(storage.RosterStore)
	for _, p := range [][2]jid.JID{{a, b}, {b, a}} {
		if _, _, err := s.PutRosterItem(context.Background(), p[0], storage.RosterItem{Contact: p[1], Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
	}
}

// setState sends <active/> or <inactive/> and waits until the server has
// processed it: a ping sent after it is answered after it (§5.1). Going
// inactive drops what came before: the initial presence of contacts made
// with mutual after the story's clients connected may come any time until
// then (later, it is held and replaced by the contact's next presence).
func setState(c *story.Client, state string) {
	c.Send(xmlstream.NewElement(state, NS))
	c.IQ(story.Ping(nil))
	if state == "inactive" {
		discard(c)
	}
}

// show sends presence with a <show/> and, to make sure the server has
// routed it, pings the server.
func show(c *story.Client, s string) {
	p := story.Presence("")
	p.AddChild(xmlstream.NewElement("show", stanza.NSClient).AddText(s))
	c.Send(p)
	c.IQ(story.Ping(nil))
}

func hasShow(s string) story.Predicate {
	return story.Predicate{Desc: "with show " + s, Match: func(el *xmlstream.Element) bool {
		return el.ChildText("show", stanza.NSClient) == s
	}}
}

// pending lists c's queued elements as "kind from show/body", in order,
// after a ping that the server answers after everything sent before.
func pending(c *story.Client) []string {
	c.IQ(story.Ping(nil))
	var out []string
	for _, r := range c.Pending() {
		el := r.El
		what := el.ChildText("show", stanza.NSClient)
		if b := el.ChildText("body", stanza.NSClient); b != "" {
			what = b
		}
		for ch := range el.Elements() {
			if ch.NS == stanza.NSChatStates {
				what = ch.Name
			}
		}
		out = append(out, fmt.Sprintf("%s %s %s", el.Name, el.Attr("from"), what))
	}
	return out
}

func discard(c *story.Client) { c.Collect(len(c.Pending())) }

// TestStoryCSIFeature: <csi/> among the stream features after
// authentication (§4.1).
func TestStoryCSIFeature(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		if alice.Features().Child("csi", NS) == nil {
			t.Fatalf("no <csi/> feature: %s", alice.Features())
		}
		// No reply to either nonza (§4.2).
		alice.Send(xmlstream.NewElement("inactive", NS))
		alice.Send(xmlstream.NewElement("active", NS))
		alice.IQ(story.Ping(nil))
		alice.ExpectNothing(quiet)
	})
}

// TestStoryCSIPresenceChurn: an inactive client receives no presence
// churn, receives bodies at once, and receives the queued presence
// (latest per contact) on becoming active — over each transport.
func TestStoryCSIPresenceChurn(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, tr := range []story.Transport{story.TCP, story.WebSocket, story.BOSH} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			presenceChurn(t, srv, tr)
		})
	}
}

func presenceChurn(t *testing.T, srv *servertest.Server, tr story.Transport) {
	story.RunWith(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, story.Options{Transport: tr}, func(alice, bob, carol *story.Client) {
		mutual(t, srv, alice.Bare(), bob.Bare())
		mutual(t, srv, alice.Bare(), carol.Bare())
		setState(alice, "inactive")

		for _, s := range []string{"away", "dnd", "xa"} {
			show(bob, s)
			show(carol, s)
		}
		show(carol, "chat")
		alice.ExpectNothing(quiet)

		// A body from dave, who has nothing queued: at once, alone.
		dave := story.MustConnect(t, srv, story.NewAccount(t, srv, "dave"), story.Options{Name: "dave", Transport: tr})
		dave.Send(story.Chat(alice, "hi alice"))
		alice.Expect(story.IsChat("hi alice"))
		alice.ExpectNothing(quiet)

		// Active: the latest presence of each contact, nothing older.
		alice.Send(xmlstream.NewElement("active", NS))
		got := pending(alice)
		want := []string{"presence " + bob.JID().String() + " xa", "presence " + carol.JID().String() + " chat"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("on becoming active:\n got %q\nwant %q", got, want)
		}
		discard(alice)
		// Active again: presence comes at once.
		show(bob, "away")
		alice.Expect(story.IsPresence("", bob.JID()), hasShow("away"))
	})
}

// TestStoryCSIBodyAfterSendersPresence: a body comes at once, after what
// its sender had queued (the order between two parties is kept); the
// other contacts' presence stays queued.
func TestStoryCSIBodyAfterSendersPresence(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		mutual(t, srv, alice.Bare(), bob.Bare())
		mutual(t, srv, alice.Bare(), carol.Bare())
		setState(alice, "inactive")
		show(carol, "away")
		show(bob, "away")
		show(bob, "dnd")
		bob.Send(story.Chat(alice, "back soon"))
		alice.Expect(story.IsChat("back soon"))
		got := pending(alice)
		want := []string{"presence " + bob.JID().String() + " dnd"}
		// The presence came before the body, which was taken above.
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("with the body:\n got %q\nwant %q", got, want)
		}
		discard(alice)
		// IQs are answered at once; carol's presence stays.
		alice.IQ(story.Ping(nil))
		alice.ExpectNothing(quiet)
		setState(alice, "active")
		alice.Expect(story.IsPresence("", carol.JID()), hasShow("away"))
	})
}

// TestStoryCSIChatStates: chat states wait, the latest per contact.
func TestStoryCSIChatStates(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		setState(alice, "inactive")
		for _, s := range []string{"composing", "paused", "composing", "active"} {
			m := story.Message("chat", alice, "")
			m.AddChild(xmlstream.NewElement(s, stanza.NSChatStates))
			bob.Send(m)
		}
		// A receipt waits as well, and is not replaced.
		r := story.Message("", alice, "")
		r.AddChild(xmlstream.NewElement("received", NSReceipts).SetAttr("id", "m1"))
		bob.Send(r)
		bob.IQ(story.Ping(nil))
		alice.ExpectNothing(quiet)
		alice.Send(xmlstream.NewElement("active", NS))
		got := pending(alice)
		want := []string{"message " + bob.JID().String() + " active", "message " + bob.JID().String() + " "}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("on becoming active:\n got %q\nwant %q", got, want)
		}
	})
}

// TestStoryCSIDropChatStates: chat_states = "drop".
func TestStoryCSIDropChatStates(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.csi]\nchat_states = \"drop\""))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		setState(alice, "inactive")
		m := story.Message("chat", alice, "")
		m.AddChild(xmlstream.NewElement("composing", stanza.NSChatStates))
		bob.Send(m)
		bob.IQ(story.Ping(nil))
		setState(alice, "active")
		alice.ExpectNothing(quiet)
	})
}

// TestStoryCSIOverflow: one stanza over max_queue and everything held is
// delivered, in order; the client stays inactive.
func TestStoryCSIOverflow(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.csi]\nmax_queue = 3"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		setState(alice, "inactive")
		receipt := func(id string) {
			r := story.Message("", alice, "")
			r.SetAttr("id", id)
			r.AddChild(xmlstream.NewElement("received", NSReceipts).SetAttr("id", id))
			bob.Send(r)
		}
		for _, id := range []string{"r1", "r2", "r3"} {
			receipt(id)
		}
		bob.IQ(story.Ping(nil))
		alice.ExpectNothing(quiet)
		receipt("r4")
		var ids []string
		for _, el := range alice.Collect(4) {
			ids = append(ids, el.Attr("id"))
		}
		if strings.Join(ids, " ") != "r1 r2 r3 r4" {
			t.Fatalf("overflow delivered %v", ids)
		}
		receipt("r5")
		bob.IQ(story.Ping(nil))
		alice.ExpectNothing(quiet)
	})
}

// TestStoryCSIInOrder: <active/> then a ping in one write: what was held
// comes before the pong (§5.1).
func TestStoryCSIInOrder(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		mutual(t, srv, alice.Bare(), bob.Bare())
		setState(alice, "inactive")
		show(bob, "away")
		alice.SendRaw("<active xmlns='" + NS + "'/><iq type='get' id='after-active'><ping xmlns='urn:xmpp:ping'/></iq>")
		got := alice.Collect(2)
		story.AssertStanza(t, got[0], story.IsPresence("", bob.JID()), hasShow("away"))
		story.AssertStanza(t, got[1], story.IsIQResult("after-active"))
	})
}

// TestStoryCSICarbons: a carbon is judged by what it carries: a copy of a
// message with a body comes at once to an inactive client.
func TestStoryCSICarbons(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1}, func(a1, a2, bob *story.Client) {
		story.AssertStanza(t, a2.IQ(story.IQSet(nil, xmlstream.NewElement("enable", NSCarbons))), story.IsIQ("result"))
		setState(a2, "inactive")
		m := story.Message("chat", a1, "")
		m.AddChild(xmlstream.NewElement("composing", stanza.NSChatStates))
		bob.Send(m)
		bob.Send(story.Chat(a1, "hello"))
		a1.Expect(story.IsChat("hello"))
		// The copy of the chat state comes first: same conversation.
		got := a2.Collect(2)
		story.AssertStanza(t, got[0], story.HasChild("received", NSCarbons))
		story.AssertStanza(t, got[1], story.HasChild("received", NSCarbons))
		if !strings.Contains(got[0].String(), "composing") || !strings.Contains(got[1].String(), "hello") {
			t.Fatalf("carbons: %s %s", got[0], got[1])
		}
	})
}

// TestStoryCSIDisabled: without the module, no feature, and the nonzas
// are not understood (RFC 6120 §4.9.3.24).
func TestStoryCSIDisabled(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.csi]\nenabled = false"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		if alice.Features().Child("csi", NS) != nil {
			t.Errorf("disabled module advertised: %s", alice.Features())
		}
		alice.Send(xmlstream.NewElement("inactive", NS))
		alice.Expect(story.IsStreamError("unsupported-stanza-type"))
	})
	if srv.Hooks().Owners()["csi"] {
		t.Error("disabled module has hooks")
	}
}

// TestStoryCSIResumedStreamIsActive: a resumed stream starts active
// (§5.2): what was held while inactive comes on the new connection.
func TestStoryCSIResumedStreamIsActive(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	aliceAcct := story.NewAccount(t, srv, "alice")
	alice := story.MustConnect(t, srv, aliceAcct, story.Options{StreamManagement: true, Resume: true, Name: "alice"})
	bob := story.MustConnect(t, srv, story.NewAccount(t, srv, "bob"), story.Options{Name: "bob"})
	mutual(t, srv, alice.Bare(), bob.Bare())
	setState(alice, "inactive")
	show(bob, "away")
	alice.ExpectNothing(quiet)
	alice.Cut()
	resumed := story.MustConnect(t, srv, aliceAcct, story.Options{ResumeFrom: alice, Name: "alice again"})
	resumed.Expect(story.IsPresence("", bob.JID()), hasShow("away"))
	// And it stays active: presence comes at once.
	show(bob, "dnd")
	resumed.Expect(story.IsPresence("", bob.JID()), hasShow("dnd"))
}

// TestStoryCSIHeldRoutedAtClose: a session that ends while inactive took
// none of what was held back: its messages go to the account again
// (XEP-0198 §4's rule for what a client did not take), stamped with when
// they came; its chat states and presence end with it.
func TestStoryCSIHeldRoutedAtClose(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1}, func(a1, a2, bob *story.Client) {
		setState(a1, "inactive")
		cs := story.Message("chat", a1, "")
		cs.AddChild(xmlstream.NewElement("composing", stanza.NSChatStates))
		bob.Send(cs)
		r := story.Message("chat", a1, "")
		r.AddChild(xmlstream.NewElement("received", NSReceipts).SetAttr("id", "m1"))
		bob.Send(r)
		bob.IQ(story.Ping(nil))
		a1.ExpectNothing(quiet)
		if err := a1.Close(); err != nil {
			t.Fatal(err)
		}
		got := a2.Expect(story.HasChild("received", NSReceipts))
		if got.Attr("from") != bob.JID().String() || got.Attr("to") != a2.JID().Bare().String() {
			t.Fatalf("routed again: %s", got)
		}
		d := got.Child("delay", stanza.NSDelay)
		if d == nil || d.Attr("from") != a2.JID().Domain() {
			t.Fatalf("no <delay/> from the server: %s", got)
		}
		if at, err := stanza.ParseTime(d.Attr("stamp")); err != nil || time.Since(at) > time.Minute || time.Until(at) > 0 {
			t.Fatalf("delay stamp %q: %v", d.Attr("stamp"), err)
		}
		a2.ExpectNothing(quiet, story.HasChild("composing", stanza.NSChatStates))
	})
}
