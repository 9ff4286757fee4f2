package csi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Stories of what an inactive client gets at once and what waits for its
// <active/> (README.md, "What waits"), over TCP and WebSocket.

const (
	NSMarkers      = "urn:xmpp:chat-markers:0"
	NSConference   = "jabber:x:conference"
	NSMUCUser      = "http://jabber.org/protocol/muc#user"
	NSOMEMO        = "eu.siacs.conversations.axolotl"
	NSJingleMsg    = "urn:xmpp:jingle-message:0"
	NSMAMv1        = "urn:xmpp:mam:1"
	NSVersionQuery = "jabber:iq:version"
)

var csiTransports = []story.Transport{story.TCP, story.WebSocket}

// describe is a one-line summary of a received stanza: its name, sender,
// type and, for each child but stanza IDs, its name ("body=hi" for a
// body, "show=away" for a show).
func describe(el *xmlstream.Element) string {
	var b strings.Builder
	b.WriteString(el.Name + " " + el.Attr("from"))
	if typ := el.Attr("type"); typ != "" {
		b.WriteString(" type=" + typ)
	}
	for ch := range el.Elements() {
		if ch.NS == stanza.NSStanzaID {
			continue // the archive's stamp (XEP-0359)
		}
		b.WriteString(" " + ch.Name)
		if ch.NS == stanza.NSClient && ch.Text() != "" {
			b.WriteString("=" + ch.Text())
		}
	}
	return b.String()
}

// received lists c's queued stanzas (after a ping answered after all of
// them, which is left out) and takes them off the queue.
func received(c *story.Client) []string {
	c.IQ(story.Ping(nil))
	var out []string
	for _, r := range c.Pending() {
		out = append(out, describe(r.El))
	}
	discard(c)
	return out
}

func assertSequence(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// chatState is a message with a chat state only (XEP-0085).
func chatState(to story.Addr, state string) *xmlstream.Element {
	m := story.Message(stanza.MessageChat, to, "")
	m.AddChild(xmlstream.NewElement(state, stanza.NSChatStates))
	return m
}

// TestStoryCSIUrgent: to an inactive client, each kind of stanza that
// cannot wait is delivered at once — right after what its sender had
// queued, while the other contacts' presence stays held until <active/>.
func TestStoryCSIUrgent(t *testing.T) {
	t.Parallel()
	type urgentCase struct {
		name string
		// stanza builds what bob sends to alice.
		stanza func(alice, bob *story.Client) *xmlstream.Element
		// want is describe() of what alice receives.
		want func(alice, bob *story.Client) string
	}
	withChild := func(typ string, child *xmlstream.Element) func(alice, bob *story.Client) *xmlstream.Element {
		return func(alice, _ *story.Client) *xmlstream.Element {
			m := story.Message(typ, alice, "")
			return m.AddChild(child)
		}
	}
	from := func(rest string) func(alice, bob *story.Client) string {
		return func(_, bob *story.Client) string { return "message " + bob.JID().String() + rest }
	}
	cases := []urgentCase{
		{"body", func(alice, _ *story.Client) *xmlstream.Element { return story.Chat(alice, "wake up") },
			from(" type=chat body=wake up")},
		{"subject", withChild("", xmlstream.NewElement("subject", stanza.NSClient).AddText("news")),
			from(" subject=news")},
		{"error", func(alice, _ *story.Client) *xmlstream.Element {
			// An error to a full JID is delivered (RFC 6121 §8.5.3.1).
			m := story.Message(stanza.MessageError, alice.JID(), "")
			return m.AddChild(xmlstream.NewElement("error", stanza.NSClient).SetAttr("type", "cancel").
				AddChild(xmlstream.NewElement("service-unavailable", stanza.NSStanzaErrors)))
		}, from(" type=error error")},
		{"direct MUC invitation (XEP-0249)", withChild("", xmlstream.NewElement("x", NSConference).SetAttr("jid", "room@muc.example.org")),
			from(" x")},
		{"mediated MUC invitation (XEP-0045)", withChild("", xmlstream.NewElement("x", NSMUCUser).
			AddChild(xmlstream.NewElement("invite", NSMUCUser).SetAttr("from", "carol@example.org"))),
			from(" x")},
		{"store hint (XEP-0334)", func(alice, _ *story.Client) *xmlstream.Element {
			m := story.Message("", alice, "")
			m.AddChild(xmlstream.NewElement("received", NSReceipts).SetAttr("id", "m1"))
			return m.AddChild(xmlstream.NewElement("store", stanza.NSHints))
		}, from(" received store")},
		{"OMEMO without a body", withChild(stanza.MessageChat, xmlstream.NewElement("encrypted", NSOMEMO).
			AddChild(xmlstream.NewElement("header", NSOMEMO).SetAttr("sid", "1"))),
			from(" type=chat encrypted")},
		{"call invitation (XEP-0353)", withChild("", xmlstream.NewElement("propose", NSJingleMsg).SetAttr("id", "call1")),
			from(" propose")},
		{"subscription request", func(alice, _ *story.Client) *xmlstream.Element { return story.Subscribe(alice.Bare()) },
			func(_, bob *story.Client) string { return "presence " + bob.Bare().String() + " type=subscribe" }},
		{"IQ", func(alice, _ *story.Client) *xmlstream.Element {
			return story.IQGet(alice.JID(), xmlstream.NewElement("query", NSVersionQuery)).SetAttr("id", "v1")
		}, func(_, bob *story.Client) string { return "iq " + bob.JID().String() + " type=get query" }},
	}
	for _, tr := range csiTransports {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					story.RunWith(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, story.Options{Transport: tr}, func(alice, bob, carol *story.Client) {
						// carol is alice's contact; bob is not (so that his
						// subscription request reaches her).
						mutual(t, srv, alice.Bare(), carol.Bare())
						setState(alice, "inactive")
						show(carol, "away")
						bob.Send(chatState(alice, "composing"))
						bob.IQ(story.Ping(nil))
						alice.ExpectNothing(quiet)

						bob.Send(c.stanza(alice, bob))
						// At once, after bob's chat state; carol's
						// presence stays held.
						got := alice.Collect(2)
						assertSequence(t, "to the inactive client", []string{describe(got[0]), describe(got[1])}, []string{
							"message " + bob.JID().String() + " type=chat composing",
							c.want(alice, bob),
						})
						alice.ExpectNothing(quiet)

						setState(alice, "active")
						assertSequence(t, "on <active/>", received(alice), []string{
							"presence " + carol.JID().String() + " show=away",
						})
					})
				})
			}
		})
	}
}

// TestStoryCSIHeldUntilActive: presence updates, chat states, receipts
// and markers wait while the client is inactive; on <active/> they come
// in the order they were sent, without the presence and chat states that
// newer ones of the same contact replaced.
func TestStoryCSIHeldUntilActive(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, tr := range csiTransports {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			story.RunWith(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, story.Options{Transport: tr}, func(alice, bob, carol *story.Client) {
				mutual(t, srv, alice.Bare(), bob.Bare())
				mutual(t, srv, alice.Bare(), carol.Bare())
				setState(alice, "inactive")

				receipt := story.Message("", alice, "")
				receipt.AddChild(xmlstream.NewElement("received", NSReceipts).SetAttr("id", "m1"))
				marker := story.Message(stanza.MessageChat, alice, "")
				marker.AddChild(xmlstream.NewElement("displayed", NSMarkers).SetAttr("id", "m2"))

				show(bob, "away")                       // replaced by dnd
				bob.Send(chatState(alice, "composing")) // replaced by paused
				show(carol, "away")                     // replaced by xa
				carol.Send(receipt)
				carol.IQ(story.Ping(nil))
				bob.Send(marker)
				show(bob, "dnd")
				bob.Send(chatState(alice, "paused"))
				bob.IQ(story.Ping(nil))
				show(carol, "xa")
				// A second resource of carol's is another contact full
				// JID: its presence is kept besides the first one's.
				carol2 := story.MustConnect(t, srv, carol.Account(), story.Options{Transport: tr, Name: "carol2"})
				show(carol2, "chat")
				alice.ExpectNothing(quiet)

				setState(alice, "active")
				b, c := bob.JID().String(), carol.JID().String()
				assertSequence(t, "on <active/>", received(alice), []string{
					"message " + c + " received",
					"message " + b + " type=chat displayed",
					"presence " + b + " show=dnd",
					"message " + b + " type=chat paused",
					"presence " + c + " show=xa",
					"presence " + carol2.JID().String() + " show=chat",
				})

				// Active: everything comes at once again.
				show(bob, "away")
				bob.Send(chatState(alice, "composing"))
				alice.Expect(story.IsPresence("", bob.JID()), hasShow("away"))
				alice.Expect(story.IsFrom(bob.JID()), story.HasChild("composing", stanza.NSChatStates))
			})
		})
	}
}

// TestStoryCSIUnavailableReplacesPresence: a contact going offline while
// the client is inactive: only the unavailable presence is delivered.
func TestStoryCSIUnavailableReplacesPresence(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		mutual(t, srv, alice.Bare(), bob.Bare())
		setState(alice, "inactive")
		bobJID := bob.JID().String()
		show(bob, "away")
		bob.Send(story.Presence(stanza.PresenceUnavailable))
		bob.IQ(story.Ping(nil))
		alice.ExpectNothing(quiet)
		setState(alice, "active")
		assertSequence(t, "on <active/>", received(alice), []string{"presence " + bobJID + " type=unavailable"})
	})
}

// TestStoryCSIArchiveResults: an inactive client querying its archive
// (XEP-0313) gets the results at once, before the <fin/>: they answer its
// own query.
func TestStoryCSIArchiveResults(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, ns := range []string{story.NSMAM, NSMAMv1} {
		t.Run(ns, func(t *testing.T) {
			t.Parallel()
			story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
				mutual(t, srv, alice.Bare(), carol.Bare())
				bob.Send(story.Chat(alice, "archived"))
				alice.Expect(story.IsChat("archived"))
				setState(alice, "inactive")
				show(carol, "away")

				q := story.MAM(story.MAMQuery{QueryID: "q1", With: bob.Bare(), NS: ns})
				alice.Send(q)
				got := alice.Collect(2)
				if r := got[0].Child("result", ns); r == nil || r.Attr("queryid") != "q1" || !strings.Contains(got[0].String(), "archived") {
					t.Fatalf("first: %s, want the result", got[0])
				}
				if got[1].Name != "iq" || got[1].Attr("id") != q.Attr("id") || got[1].Child("fin", ns) == nil {
					t.Fatalf("second: %s, want the <fin/>", got[1])
				}
				alice.ExpectNothing(quiet)
				setState(alice, "active")
				assertSequence(t, "on <active/>", received(alice), []string{"presence " + carol.JID().String() + " show=away"})
			})
		})
	}
}

// TestStoryCSIUrgentPayloadsConfig: urgent_payloads replaces the default
// list.
func TestStoryCSIUrgentPayloadsConfig(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.csi]\nurgent_payloads = [\"urn:example:alarm\"]"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		setState(alice, "inactive")
		omemo := story.Message(stanza.MessageChat, alice, "")
		omemo.AddChild(xmlstream.NewElement("encrypted", NSOMEMO))
		bob.Send(omemo) // no longer urgent: held
		bob.IQ(story.Ping(nil))
		alice.ExpectNothing(quiet)
		alarm := story.Message("", alice, "")
		alarm.AddChild(xmlstream.NewElement("alarm", "urn:example:alarm"))
		bob.Send(alarm)
		// At once, after bob's held message.
		got := alice.Collect(2)
		b := bob.JID().String()
		assertSequence(t, "with the alarm", []string{describe(got[0]), describe(got[1])}, []string{
			"message " + b + " type=chat encrypted",
			"message " + b + " alarm",
		})
		alice.ExpectNothing(quiet)
	})
}
