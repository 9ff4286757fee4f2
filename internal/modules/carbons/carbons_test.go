package carbons_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const (
	NS        = "urn:xmpp:carbons:2"
	NSRules   = "urn:xmpp:carbons:rules:0"
	NSForward = "urn:xmpp:forward:0"
	NSHints   = "urn:xmpp:hints"
	NSMUCUser = "http://jabber.org/protocol/muc#user"
)

const quiet = 150 * time.Millisecond

func enable(t *testing.T, cs ...*story.Client) {
	t.Helper()
	for _, c := range cs {
		story.AssertStanza(t, c.IQ(story.IQSet(nil, xmlstream.NewElement("enable", NS))), story.IsIQ("result"))
	}
}

// withPriority makes c available with a priority and waits for the
// reflection (RFC 6121 §4.7.2.3); the user's other resources get the
// presence too, which the stories ignore.
func withPriority(c *story.Client, prio int) {
	p := story.Presence("")
	p.AddChild(xmlstream.NewElement("priority", stanza.NSClient).AddText(strconv.Itoa(prio)))
	c.Send(p)
	c.Expect(story.IsPresence("", c.JID()), story.Predicate{Desc: "with priority " + strconv.Itoa(prio), Match: func(el *xmlstream.Element) bool {
		return el.ChildText("priority", stanza.NSClient) == strconv.Itoa(prio)
	}})
}

// forwardedOf returns the message inside a carbon of direction dir.
func forwardedOf(el *xmlstream.Element, dir string) *xmlstream.Element {
	d := el.Child(dir, NS)
	if d == nil {
		return nil
	}
	f := d.Child("forwarded", NSForward)
	if f == nil {
		return nil
	}
	return f.Child("message", stanza.NSClient)
}

// isCarbon matches a carbon (XEP-0280 §7, §8) of direction dir ("sent" or
// "received") addressed to c, from c's bare JID, whose forwarded message
// has the given body.
func isCarbon(c *story.Client, dir, body string) story.Predicate {
	return story.Predicate{
		Desc: fmt.Sprintf("a <%s/> carbon of %q from %s to %s", dir, body, c.Bare(), c.JID()),
		Match: func(el *xmlstream.Element) bool {
			m := forwardedOf(el, dir)
			return el.Name == "message" && el.Attr("from") == c.Bare().String() && el.Attr("to") == c.JID().String() &&
				m != nil && m.ChildText("body", stanza.NSClient) == body
		},
	}
}

// anyCarbon matches any carbon.
var anyCarbon = story.Or(story.HasChild("sent", NS), story.HasChild("received", NS))

func body(b string) story.Predicate {
	return story.And(story.IsMessage(), story.HasBody(b), story.Not(anyCarbon))
}

// TestStoryCarbonsEnableDisable: the feature on the server (§3), enable
// (§4) and disable (§5), each repeatable without error (§10.1).
func TestStoryCarbonsEnableDisable(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		info := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		for _, f := range []string{NS, NSRules} {
			if !strings.Contains(info.String(), "'"+f+"'") {
				t.Errorf("server features without %s: %s", f, info)
			}
		}
		for _, cmd := range []string{"enable", "enable", "disable", "disable", "enable"} {
			res := alice.IQ(story.IQSet(nil, xmlstream.NewElement(cmd, NS)))
			story.AssertStanza(t, res, story.IsIQ("result"))
			if res.FirstChild() != nil {
				t.Errorf("%s: result with a payload: %s", cmd, res)
			}
		}
		// To the own bare JID is the same as without 'to'.
		story.AssertStanza(t, alice.IQ(story.IQSet(alice.Bare(), xmlstream.NewElement("disable", NS))), story.IsIQ("result"))
		story.AssertStanza(t, alice.IQ(story.IQSet(nil, xmlstream.NewElement("toggle", NS))), story.IsStanzaError("", "bad-request"))
		// Another account's carbons are not alice's to change (§5).
		story.AssertStanza(t, alice.IQ(story.IQSet(bob.Bare(), xmlstream.NewElement("enable", NS))), story.IsStanzaError("", "not-allowed"))
	})
}

// TestStoryCarbonsSent: a message a resource sends goes, wrapped in
// <sent/>, to the account's other carbons-enabled resources (§8), whether
// the sender enabled carbons or not; resources without carbons get
// nothing, nor does the sender.
func TestStoryCarbonsSent(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 3, "bob": 1}, func(a1, a2, a3, bob *story.Client) {
		enable(t, a2)
		m := story.Chat(bob, "hello")
		m.SetAttr("id", "m1")
		a1.Send(m)
		bob.Expect(body("hello"), story.IsFrom(a1))
		c := a2.Expect(isCarbon(a2, "sent", "hello"))
		fwd := forwardedOf(c, "sent")
		if c.Attr("type") != "chat" || fwd.Attr("from") != a1.JID().String() || fwd.Attr("to") != bob.JID().String() || fwd.Attr("id") != "m1" {
			t.Fatalf("carbon: %s", c)
		}

		// Normal with a body, and IM payloads without one (§6.1).
		a1.Send(story.Message("", bob.Bare(), "normal"))
		receipt := story.Message("", bob, "")
		receipt.AddChild(xmlstream.NewElement("received", "urn:xmpp:receipts").SetAttr("id", "m0"))
		a1.Send(receipt)
		composing := story.Message("chat", bob, "")
		composing.AddChild(xmlstream.NewElement("composing", stanza.NSChatStates))
		a1.Send(composing)
		n := a2.Expect(isCarbon(a2, "sent", "normal"))
		if n.Attr("type") != "" {
			t.Errorf("normal message copied with a type: %s", n)
		}
		a2.Expect(story.HasChild("sent", NS), story.Predicate{Desc: "of a receipt", Match: func(el *xmlstream.Element) bool {
			m := forwardedOf(el, "sent")
			return m != nil && m.Child("received", "urn:xmpp:receipts") != nil
		}})
		a2.Expect(story.HasChild("sent", NS), story.IsMessageType("chat"), story.Predicate{Desc: "of a chat state", Match: func(el *xmlstream.Element) bool {
			m := forwardedOf(el, "sent")
			return m != nil && m.Child("composing", stanza.NSChatStates) != nil
		}})

		// Not eligible: normal without IM content, headline.
		a1.Send(story.Message("", bob, ""))
		a1.Send(story.Message("headline", bob, ""))
		bob.IQ(story.Ping(nil))
		a2.ExpectNothing(quiet, anyCarbon)
		a1.ExpectNothing(0, anyCarbon)
		a3.ExpectNothing(0, anyCarbon)

		// A sender with carbons enabled gets no copy of its own message.
		enable(t, a1)
		a1.Send(story.Chat(bob, "from an enabled sender"))
		a2.Expect(isCarbon(a2, "sent", "from an enabled sender"))
		bob.Expect(body("from an enabled sender"))
		a1.ExpectNothing(quiet, anyCarbon)

		// Disabled: nothing more.
		story.AssertStanza(t, a2.IQ(story.IQSet(nil, xmlstream.NewElement("disable", NS))), story.IsIQ("result"))
		a1.Send(story.Chat(bob, "after"))
		bob.Expect(body("after"))
		a2.ExpectNothing(quiet, anyCarbon)
	})
}

// TestStoryCarbonsOverEachTransport: sent (§8) and received (§7) copies
// reach resources on WebSocket and BOSH as on TCP.
func TestStoryCarbonsOverEachTransport(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, tr := range []story.Transport{story.TCP, story.WebSocket, story.BOSH} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			story.RunWith(t, srv, story.Users{"alice": 2, "bob": 1}, story.Options{Transport: tr}, func(a1, a2, bob *story.Client) {
				enable(t, a1, a2)
				a1.Send(story.Chat(bob, "sent over "+tr.String()))
				bob.Expect(body("sent over " + tr.String()))
				a2.Expect(isCarbon(a2, "sent", "sent over "+tr.String()))
				bob.Send(story.Chat(a1, "received over "+tr.String()))
				a1.Expect(body("received over " + tr.String()))
				a2.Expect(isCarbon(a2, "received", "received over "+tr.String()))
				a1.ExpectNothing(quiet, anyCarbon)
			})
		})
	}
}

// TestStoryCarbonsReceived: a message to the account goes, wrapped in
// <received/>, to the carbons-enabled resources that did not get it under
// RFC 6121 (§7): for the bare JID those below the highest priority, for
// a full JID every other one.
func TestStoryCarbonsReceived(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 4, "bob": 1}, func(a1, a2, a3, a4, bob *story.Client) {
		enable(t, a1, a2, a3) // a4 never enables
		withPriority(a1, 5)

		// To the bare JID: a1 (priority 5) gets the message, a2 and a3
		// the carbon; a1 no carbon besides the original.
		bob.Send(story.Chat(a1.Bare(), "to bare"))
		a1.Expect(body("to bare"), story.IsFrom(bob))
		for _, c := range []*story.Client{a2, a3} {
			cc := c.Expect(isCarbon(c, "received", "to bare"))
			fwd := forwardedOf(cc, "received")
			if fwd.Attr("from") != bob.JID().String() || fwd.Attr("to") != a1.Bare().String() || cc.Attr("type") != "chat" {
				t.Fatalf("%s got %s", c.Name(), cc)
			}
		}

		// To a full JID: a2 gets it, a1 and a3 the carbon.
		bob.Send(story.Chat(a2, "to full"))
		a2.Expect(body("to full"))
		a1.Expect(isCarbon(a1, "received", "to full"))
		a3.Expect(isCarbon(a3, "received", "to full"))

		// Two resources share the highest priority: both get the message
		// (RFC 6121 §8.5.2.1.1), only a3 the carbon.
		withPriority(a2, 5)
		bob.Send(story.Chat(a1.Bare(), "tie"))
		a1.Expect(body("tie"))
		a2.Expect(body("tie"))
		a3.Expect(isCarbon(a3, "received", "tie"))

		bob.IQ(story.Ping(nil))
		for _, c := range []*story.Client{a1, a2} {
			c.ExpectNothing(quiet/3, anyCarbon)
		}
		a4.ExpectNothing(quiet/3, anyCarbon)
		a4.ExpectNothing(0, story.IsMessage())
	})
}

// TestStoryCarbonsPrivate: <private/> and <no-copy/> keep a message from
// being copied, both ways (§9, XEP-0334 §4.3); the original keeps its
// <private/> (the requirement to remove it was lifted, §9).
func TestStoryCarbonsPrivate(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2, "bob": 2}, func(a1, a2, b1, b2 *story.Client) {
		enable(t, a1, a2, b1, b2)
		mark := func(m *xmlstream.Element, private, noCopy bool) *xmlstream.Element {
			if private {
				m.AddChild(xmlstream.NewElement("private", NS))
			}
			if noCopy {
				m.AddChild(xmlstream.NewElement("no-copy", NSHints))
			}
			return m
		}
		for i, pn := range [][2]bool{{true, true}, {true, false}, {false, true}} {
			b := "secret " + strconv.Itoa(i)
			a1.Send(mark(story.Chat(b1, b), pn[0], pn[1]))
			got := b1.Expect(body(b))
			if pn[0] && got.Child("private", NS) == nil {
				t.Errorf("<private/> removed: %s", got)
			}
		}
		b1.IQ(story.Ping(nil))
		for _, c := range []*story.Client{a2, b2} {
			c.ExpectNothing(quiet, anyCarbon)
		}
		// A control message is copied both ways.
		a1.Send(story.Chat(b1, "public"))
		b1.Expect(body("public"))
		a2.Expect(isCarbon(a2, "sent", "public"))
		b2.Expect(isCarbon(b2, "received", "public"))
	})
}

// TestStoryCarbonsOwnAccount: a message from one resource to another of
// the same account (full or bare JID) is delivered as usual; the other
// carbons-enabled resources get one <sent/> copy, the sender and the
// recipients none.
func TestStoryCarbonsOwnAccount(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 3}, func(a1, a2, a3 *story.Client) {
		enable(t, a1, a2, a3)
		a1.Send(story.Chat(a2, "note to self"))
		a2.Expect(body("note to self"), story.IsFrom(a1))
		c := a3.Expect(isCarbon(a3, "sent", "note to self"))
		if fwd := forwardedOf(c, "sent"); fwd.Attr("to") != a2.JID().String() {
			t.Errorf("carbon: %s", c)
		}
		// To the bare JID, where a3 has the highest priority: a3 gets
		// the message, a2 the carbon.
		withPriority(a3, 3)
		a1.Send(story.Chat(a1.Bare(), "to my bare JID"))
		a3.Expect(body("to my bare JID"))
		a2.Expect(isCarbon(a2, "sent", "to my bare JID"))
		a1.IQ(story.Ping(nil))
		for _, cl := range []*story.Client{a1, a2, a3} {
			cl.ExpectNothing(quiet/3, anyCarbon)
		}
	})
}

// TestStoryCarbonsMUCRules: groupchat is never copied, a private message
// from a MUC occupant is not copied to the recipient's other resources,
// one sent to an occupant is; invitations are copied (§6.1).
func TestStoryCarbonsMUCRules(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1}, func(a1, a2, bob *story.Client) {
		enable(t, a2)
		// bob plays the room (bob@…/res1 an occupant's full JID).
		bob.Send(story.Groupchat(a1, "groupchat"))
		a1.Expect(body("groupchat"))
		pm := story.Chat(a1, "pm from occupant")
		pm.AddChild(xmlstream.NewElement("x", NSMUCUser))
		bob.Send(pm)
		a1.Expect(body("pm from occupant"))
		bob.IQ(story.Ping(nil))
		a2.ExpectNothing(quiet, anyCarbon)

		pm = story.Chat(bob, "pm to occupant")
		pm.AddChild(xmlstream.NewElement("x", NSMUCUser))
		a1.Send(pm)
		a2.Expect(isCarbon(a2, "sent", "pm to occupant"))

		inv := story.Message("", a1, "")
		inv.AddChild(xmlstream.NewElement("x", "jabber:x:conference").SetAttr("jid", "room@muc.example"))
		bob.Send(inv)
		a2.Expect(story.HasChild("received", NS), story.Predicate{Desc: "of a direct invitation", Match: func(el *xmlstream.Element) bool {
			m := forwardedOf(el, "received")
			return m != nil && m.Child("x", "jabber:x:conference") != nil
		}})
	})
}

// TestStoryCarbonsBounce: the error bouncing a copied message is copied
// too (§6.1: "sent in response to a <message/> that was eligible for
// carbons delivery").
func TestStoryCarbonsBounce(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2}, func(a1, a2 *story.Client) {
		enable(t, a2)
		nobody := story.RawAddr("nobody-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@" + srv.Domain())
		a1.Send(story.Chat(nobody, "anyone?"))
		a2.Expect(isCarbon(a2, "sent", "anyone?"))
		a1.Expect(story.IsStanzaError("", "service-unavailable"))
		c := a2.Expect(story.HasChild("received", NS), story.IsMessageType("error"))
		if m := forwardedOf(c, "received"); m == nil || m.Attr("from") != nobody.String() || m.Attr("to") != a1.JID().String() {
			t.Fatalf("copy of the bounce: %s", c)
		}
	})
}

// TestStoryCarbonsOffline: a message no resource takes (all have a
// negative priority) is stored offline and copied to the enabled
// resources, none of which got it (§7).
func TestStoryCarbonsOffline(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		enable(t, alice)
		withPriority(alice, -1)
		bob.Send(story.Chat(alice.Bare(), "while away"))
		alice.Expect(isCarbon(alice, "received", "while away"))
		alice.ExpectNothing(quiet, body("while away"))
		// Back to priority 0: the offline message arrives.
		withPriority(alice, 0)
		alice.Expect(body("while away"))
	})
}

// TestStoryCarbonsDisabled: without the module, no feature and no
// handler.
func TestStoryCarbonsDisabled(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.carbons]\nenabled = false"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		info := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		if strings.Contains(info.String(), NS) {
			t.Errorf("disabled module still advertised: %s", info)
		}
		story.AssertStanza(t, alice.IQ(story.IQSet(nil, xmlstream.NewElement("enable", NS))), story.IsStanzaError("", "service-unavailable"))
	})
	if srv.Hooks().Owners()["carbons"] {
		t.Error("disabled module has hooks")
	}
}

// TestStoryCarbonsNoChatStates: chat_states = false copies no
// typing notifications and drops the rules feature.
func TestStoryCarbonsNoChatStates(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.carbons]\nchat_states = false"))
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1}, func(a1, a2, bob *story.Client) {
		info := a1.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		if !strings.Contains(info.String(), "'"+NS+"'") || strings.Contains(info.String(), NSRules) {
			t.Errorf("features: %s", info)
		}
		enable(t, a2)
		composing := story.Message("chat", bob, "")
		composing.AddChild(xmlstream.NewElement("composing", stanza.NSChatStates))
		a1.Send(composing)
		withState := story.Chat(bob, "typed")
		withState.AddChild(xmlstream.NewElement("active", stanza.NSChatStates))
		a1.Send(withState)
		a2.Expect(isCarbon(a2, "sent", "typed"))
		a2.ExpectNothing(quiet, anyCarbon)
	})
}

// TestStoryCarbonsRerouted: a message that a session never acknowledged
// when it ended is routed again to the account (XEP-0198 §4); the
// resources that got its carbon the first time get no second one.
func TestStoryCarbonsRerouted(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.SMAckEvery = 1000 })
	local := "bob-" + strings.ToLower(story.NewID())
	if err := srv.CreateUser(context.Background(), local, "pw"); err != nil {
		t.Fatal(err)
	}
	bob := story.Account{Localpart: local, Password: "pw", JID: jid.MustParse(local + "@" + srv.Domain())}
	phone := story.MustConnect(t, srv, bob, story.Options{StreamManagement: true, Resource: "phone"})
	laptop := story.MustConnect(t, srv, bob, story.Options{Resource: "laptop"})
	tablet := story.MustConnect(t, srv, bob, story.Options{Resource: "tablet"})
	enable(t, laptop, tablet)
	withPriority(laptop, 5) // the rerouted message goes to the laptop only
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		alice.Send(story.Chat(phone.JID(), "to the phone"))
		phone.Expect(body("to the phone"))
		laptop.Expect(isCarbon(laptop, "received", "to the phone"))
		tablet.Expect(isCarbon(tablet, "received", "to the phone"))
		phone.Cut() // never acknowledged, no resumption: the session ends
		laptop.Expect(body("to the phone"), story.HasChild("delay", stanza.NSDelay))
		tablet.ExpectNothing(quiet, anyCarbon)
	})
}
