package blocking_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/server"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const (
	NS       = "urn:xmpp:blocking"
	NSErrors = "urn:xmpp:blocking:errors"
)

const quiet = 150 * time.Millisecond

func command(name string, jids ...story.Addr) *xmlstream.Element {
	el := xmlstream.NewElement(name, NS)
	for _, j := range jids {
		el.AddChild(xmlstream.NewElement("item", NS).SetAttr("jid", j.String()))
	}
	return el
}

func block(jids ...story.Addr) *xmlstream.Element { return story.IQSet(nil, command("block", jids...)) }

func unblock(jids ...story.Addr) *xmlstream.Element {
	return story.IQSet(nil, command("unblock", jids...))
}

func blocklist() *xmlstream.Element { return story.IQGet(nil, command("blocklist")) }

func itemsOf(el *xmlstream.Element) []string {
	var out []string
	if el == nil {
		return nil
	}
	for it := range el.ChildrenNamed("item", NS) {
		out = append(out, it.Attr("jid"))
	}
	return out
}

func addrs(jids ...story.Addr) []string {
	out := []string{}
	for _, j := range jids {
		out = append(out, j.String())
	}
	return out
}

// isPush matches a push (§3.3, §3.4, §3.5): an IQ set with <action/> and
// exactly the items given.
func isPush(action string, jids ...story.Addr) story.Predicate {
	want := addrs(jids...)
	return story.Predicate{
		Desc: fmt.Sprintf("a %s push of %v", action, want),
		Match: func(el *xmlstream.Element) bool {
			if el.Name != "iq" || el.Attr("type") != "set" {
				return false
			}
			c := el.Child(action, NS)
			return c != nil && slices.Equal(itemsOf(c), want)
		},
	}
}

var anyPush = story.Or(story.HasChild("block", NS), story.HasChild("unblock", NS))

func assertList(t *testing.T, c *story.Client, jids ...story.Addr) {
	t.Helper()
	res := c.IQ(blocklist())
	story.AssertStanza(t, res, story.IsIQ("result"), story.HasChild("blocklist", NS))
	if got, want := itemsOf(res.Child("blocklist", NS)), addrs(jids...); !slices.Equal(got, want) {
		t.Errorf("%s's block list is %v, want %v", c.Name(), got, want)
	}
}

func assertResult(t *testing.T, c *story.Client, iq *xmlstream.Element) {
	t.Helper()
	res := c.IQ(iq)
	story.AssertStanza(t, res, story.IsIQ("result"))
	if len(res.Children) != 0 {
		t.Errorf("result with a payload: %s", res)
	}
}

// TestStoryBlockingDisco: the server advertises the feature (§3.1).
func TestStoryBlockingDisco(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		info := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		if !strings.Contains(info.String(), "var='"+NS+"'") {
			t.Errorf("%s not advertised: %s", NS, info)
		}
	})
}

// TestStoryBlocklist: retrieving (§3.2), blocking (§3.3), unblocking
// (§3.4) and unblocking all (§3.5), with the pushes going to every
// resource that retrieved the list, the one that changed it included,
// and to no other.
func TestStoryBlocklist(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	romeo := story.RawAddr("romeo@montague.net")
	iago := story.RawAddr("iago@shakespeare.lit/castle")
	evil := story.RawAddr("evil.example")
	gateway := story.RawAddr("montague.net/gateway")
	story.Run(t, srv, story.Users{"alice": 3}, func(alice1, alice2, alice3 *story.Client) {
		assertList(t, alice1)
		assertList(t, alice2)
		// alice3 never asked for the list: no pushes for her.

		// Two items in one command, one of them twice; JIDs are
		// normalized.
		set := story.IQSet(nil, command("block", story.RawAddr("Romeo@Montague.net"), iago, romeo))
		assertResult(t, alice1, set)
		alice1.Expect(isPush("block", romeo, iago))
		alice2.Expect(isPush("block", romeo, iago))
		alice3.ExpectNothing(quiet, anyPush)
		assertList(t, alice2, romeo, iago)

		// Blocking a JID already blocked is not an error.
		assertResult(t, alice2, block(evil, romeo, gateway))
		alice1.Expect(isPush("block", evil, romeo, gateway))
		alice2.Expect(isPush("block", evil, romeo, gateway))
		assertList(t, alice1, romeo, iago, evil, gateway)

		// alice3 asks now and gets the pushes from then on.
		assertList(t, alice3, romeo, iago, evil, gateway)

		// Unblocking a JID that is not blocked is ignored.
		assertResult(t, alice3, unblock(iago, story.RawAddr("never@blocked.example")))
		for _, c := range []*story.Client{alice1, alice2, alice3} {
			c.Expect(isPush("unblock", iago, story.RawAddr("never@blocked.example")))
		}
		assertList(t, alice1, romeo, evil, gateway)

		// Unblock all: an empty <unblock/>, pushed as such.
		assertResult(t, alice1, unblock())
		for _, c := range []*story.Client{alice1, alice2, alice3} {
			c.Expect(isPush("unblock"))
		}
		assertList(t, alice2)
		for _, c := range []*story.Client{alice1, alice2, alice3} {
			c.ExpectNothing(quiet, anyPush)
		}
	})
	// The list outlives the sessions (§3.3: "applies across sessions").
	story.Run(t, srv, story.Users{"bob": 1}, func(bob *story.Client) {
		assertResult(t, bob, block(romeo))
		acct := bob.Account()
		bob.Close()
		again := story.MustConnect(t, srv, acct, story.Options{Name: "bob again"})
		assertList(t, again, romeo)
	})
}

// TestStoryBlockingErrors: the errors of the commands.
func TestStoryBlockingErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.blocking]\nmax_items = 2"))
	story.Run(t, srv, story.Users{"alice": 2}, func(alice, alice2 *story.Client) {
		check := func(iq *xmlstream.Element, typ, cond string) {
			t.Helper()
			story.AssertStanza(t, alice.IQ(iq), story.IsStanzaError(typ, cond))
		}
		// §3.3: "If the <block/> element does not contain at least one
		// <item/> child element, the server MUST return a <bad-request/>
		// error."
		check(block(), "modify", "bad-request")
		// A missing or invalid JID (RFC 6120 §8.3.3.8).
		check(story.IQSet(nil, xmlstream.NewElement("block", NS).AddChild(xmlstream.NewElement("item", NS))), "modify", "jid-malformed")
		check(block(story.RawAddr("a@b@c")), "modify", "jid-malformed")
		check(unblock(story.RawAddr("@example.com")), "modify", "jid-malformed")
		// Oneself, one's other resources or one's own server.
		check(block(alice.Bare()), "modify", "not-acceptable")
		check(block(alice2), "modify", "not-acceptable")
		check(block(story.RawAddr(srv.Domain())), "modify", "not-acceptable")
		check(block(story.RawAddr(srv.Domain()+"/x")), "modify", "not-acceptable")
		// Unknown payloads.
		check(story.IQSet(nil, command("blocklist")), "modify", "bad-request")
		check(story.IQGet(nil, command("block", story.RawAddr("a@b"))), "modify", "bad-request")
		// max_items.
		check(block(story.RawAddr("a@b"), story.RawAddr("c@d"), story.RawAddr("e@f")), "modify", "policy-violation")
		assertResult(t, alice, block(story.RawAddr("a@b"), story.RawAddr("c@d")))
		assertResult(t, alice, block(story.RawAddr("a@b")))
		check(block(story.RawAddr("e@f")), "modify", "policy-violation")
		assertList(t, alice, story.RawAddr("a@b"), story.RawAddr("c@d"))
		// The IQ addressed to the server itself is not the command.
		story.AssertStanza(t, alice.IQ(story.IQGet(story.RawAddr(srv.Domain()), command("blocklist"))), story.IsStanzaError("cancel", "service-unavailable"))
	})
}

// vhost is the test server seen through its second domain.
type vhost struct {
	*servertest.Server
	domain string
}

func (v vhost) Domain() string { return v.domain }

func (v vhost) CreateUser(ctx context.Context, local, password string) error {
	j, err := jid.New(local, v.domain, "")
	if err != nil {
		return err
	}
	return server.AddUser(ctx, v.Store(), j, password)
}

func (v vhost) RemoveUser(ctx context.Context, local string) error {
	j, err := jid.New(local, v.domain, "")
	if err != nil {
		return err
	}
	return v.Server.Server.RemoveUser(ctx, j)
}

func twoDomains(c *config.Config) { c.Domains = []string{"localhost", "other.localhost"} }

// connect logs a fresh user of srv in with n resources.
func connect(t *testing.T, srv story.Server, name string, n int) []*story.Client {
	acct := story.NewAccount(t, srv, name)
	var out []*story.Client
	for i := range n {
		label := name
		if n > 1 {
			label = fmt.Sprintf("%s%d", name, i+1)
		}
		out = append(out, story.MustConnect(t, srv, acct, story.Options{Name: label, Resource: fmt.Sprintf("res%d", i+1)}))
	}
	// Each resource learns of those available before it.
	for i, c := range out {
		for _, o := range out[i+1:] {
			c.Expect(story.IsPresence("", o.JID()))
		}
	}
	return out
}

// TestStoryBlockingEnforcement: what is blocked, both ways, for each kind
// of stanza and each form of item (§3.3, §6). Outbound: messages and IQs
// get not-acceptable with <blocked/>, presence is dropped. Inbound:
// messages and IQs get service-unavailable, presence is dropped. What the
// item does not match goes through; after unblocking (§3.4) everything
// does.
func TestStoryBlockingEnforcement(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, twoDomains)
	other := vhost{srv, "other.localhost"}
	for _, form := range []string{"bare", "full", "domain"} {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			alice := connect(t, srv, "alice", 1)[0]
			dave := connect(t, srv, "dave", 1)[0]
			bob := connect(t, other, "bob", 2)
			carol := connect(t, other, "carol", 1)[0]
			var item story.Addr
			var blocked, free []*story.Client
			switch form {
			case "bare":
				item, blocked, free = bob[0].Bare(), bob, []*story.Client{carol, dave}
			case "full":
				item, blocked, free = bob[0], bob[:1], []*story.Client{bob[1], carol, dave}
			case "domain":
				item, blocked, free = story.RawAddr("other.localhost"), []*story.Client{bob[0], bob[1], carol}, []*story.Client{dave}
			}
			assertResult(t, alice, block(item))

			for _, x := range blocked {
				// Outbound.
				targets := []story.Addr{x}
				if form != "full" {
					targets = append(targets, x.Bare())
				}
				for _, to := range targets {
					id := story.NewID()
					alice.Send(story.Chat(to, "out").SetAttr("id", id))
					e := alice.Expect(story.IsMessageType("error"), story.IsFrom(to))
					story.AssertStanza(t, e, story.IsStanzaError("cancel", "not-acceptable"), story.HasChild("error", stanza.NSClient))
					if e.Attr("id") != id || e.Child("error", stanza.NSClient).Child("blocked", NSErrors) == nil {
						t.Errorf("%s: the error lacks the id or <blocked/>: %s", form, e)
					}
					alice.Send(story.PresenceTo(to, ""))
					story.AssertStanza(t, alice.IQ(story.Ping(to)), story.IsStanzaError("cancel", "not-acceptable"), story.HasChild("error", stanza.NSClient))
				}
				// Inbound.
				x.Send(story.Chat(alice.Bare(), "in"))
				story.AssertStanza(t, x.Expect(story.IsMessageType("error")), story.IsStanzaError("cancel", "service-unavailable"), story.IsFrom(alice.Bare()))
				x.Send(story.Chat(alice, "in full"))
				story.AssertStanza(t, x.Expect(story.IsMessageType("error")), story.IsStanzaError("cancel", "service-unavailable"))
				x.Send(story.PresenceTo(alice.Bare(), ""))
				x.Send(story.PresenceTo(alice, stanza.PresenceSubscribe))
				story.AssertStanza(t, x.IQ(story.Ping(alice)), story.IsStanzaError("cancel", "service-unavailable"), story.IsFrom(alice))
				// A headline and an IQ result are dropped silently.
				x.Send(story.Message(stanza.MessageHeadline, alice.Bare(), "news"))
				x.Send(story.IQResult(story.Ping(alice), nil).SetAttr("to", alice.String()))
			}
			for _, f := range free {
				alice.Send(story.Chat(f, "to free"))
				f.Expect(story.IsChat("to free"), story.IsFrom(alice))
				alice.Send(story.PresenceTo(f, ""))
				f.Expect(story.IsPresence("", alice))
				f.Send(story.Chat(alice, "from free"))
				alice.Expect(story.IsChat("from free"), story.IsFrom(f))
				f.Send(story.PresenceTo(alice, ""))
				alice.Expect(story.IsPresence("", f))
				ping := story.Ping(alice)
				f.Send(ping)
				alice.Expect(story.IsIQ("get"), story.IsFrom(f))
			}
			// Nothing from a blocked JID got through, nothing reached it.
			for _, x := range blocked {
				alice.ExpectNothing(quiet/2, story.IsFrom(x))
				x.ExpectNothing(quiet/2, story.IsFrom(alice.Bare()))
			}
			alice.ExpectNothing(quiet, story.IsMessageType("error"))
			if form == "full" {
				// A full-JID item does not block the bare JID (§6): a
				// message to it goes to the most available resources,
				// the blocked one among them.
				alice.Send(story.Chat(bob[0].Bare(), "to bare"))
				bob[0].Expect(story.IsChat("to bare"))
				bob[1].Expect(story.IsChat("to bare"))
			}

			// Unblocked, everything flows again.
			assertResult(t, alice, unblock(item))
			for _, x := range blocked {
				alice.Send(story.Chat(x, "again"))
				x.Expect(story.IsChat("again"), story.IsFrom(alice))
				x.Send(story.Chat(alice, "again"))
				alice.Expect(story.IsChat("again"), story.IsFrom(x))
			}
		})
	}
}

// subscribe makes contact a subscriber to user's presence, in both
// rosters.
func subscribe(t *testing.T, srv *servertest.Server, user, contact jid.JID) {
	t.Helper()
	rs, ok := srv.Store().(storage.RosterStore)
	if !ok {
		t.Fatal("the store has no rosters")
	}
	ctx := context.Background()
	sub := func(owner, other jid.JID, s storage.Subscription) {
		item, err := rs.RosterItem(ctx, owner, other)
		switch {
		case err == nil && (item.Subscription == storage.SubBoth || item.Subscription == s):
			return
		case err == nil:
			s = storage.SubBoth
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatal(err)
		}
		if _, _, err := rs.PutRosterItem(ctx, owner, storage.RosterItem{Contact: other, Subscription: s}); err != nil {
			t.Fatal(err)
		}
	}
	sub(user, contact, storage.SubFrom)
	if srv.Router().IsLocal(contact.Domain()) {
		sub(contact, user, storage.SubTo)
	}
}

// settle waits until the server has run the initial-presence hooks of
// the clients (a ping is answered after them): story.Run and Connect
// return when the client has its own presence back, before the probes of
// its contacts. A subscription written into the store before they run
// gets probe answers the story does not expect.
func settle(cs ...*story.Client) {
	for _, c := range cs {
		c.IQ(story.Ping(nil))
	}
}

// TestStoryBlockingPresence: a subscriber that gets blocked gets
// unavailable presence from each available resource of the user (§3.3),
// and its current presence when unblocked (§3.4); a JID that may not see
// the user's presence gets neither. Presence the server sends on the
// user's behalf (as the presence module does) does not reach a blocked
// contact.
func TestStoryBlockingPresence(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, twoDomains)
	other := vhost{srv, "other.localhost"}
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1, "carol": 1}, func(alice1, alice2, bob, carol *story.Client) {
		dave := connect(t, other, "dave", 1)[0]
		settle(alice1, alice2, bob, carol, dave)
		subscribe(t, srv, alice1.Bare(), bob.Bare())
		subscribe(t, srv, alice1.Bare(), dave.Bare())
		show := func(c *story.Client, show string) {
			c.Send(story.Presence("").AddChild(xmlstream.NewElement("show", stanza.NSClient).AddText(show)))
		}
		isShow := func(show string) story.Predicate {
			return story.Predicate{Desc: "show " + show, Match: func(el *xmlstream.Element) bool { return el.ChildText("show", stanza.NSClient) == show }}
		}
		// The presence module broadcasts to the subscribers.
		show(alice2, "away")
		bob.Expect(story.IsPresence("", alice2), isShow("away"))
		dave.Expect(story.IsPresence("", alice2), isShow("away"))

		assertResult(t, alice1, block(bob.Bare(), carol.Bare()))
		bob.Expect(story.IsPresence("unavailable", alice1), story.IsTo(bob.Bare()))
		bob.Expect(story.IsPresence("unavailable", alice2), story.IsTo(bob.Bare()))
		carol.ExpectNothing(quiet, story.IsFrom(alice1.Bare()))

		// The broadcasts go on for the others, not for bob; and presence
		// a module routes on alice's behalf stops at the block too.
		show(alice1, "dnd")
		dave.Expect(story.IsPresence("", alice1), isShow("dnd"))
		for _, to := range []*story.Client{bob, carol, dave} {
			srv.Router().Send(context.Background(), stanza.NewPresence("", to.Bare(), alice1.JID()).AddChild(xmlstream.NewElement("status", stanza.NSClient).AddText("routed")))
		}
		dave.Expect(story.IsPresence("", alice1), story.HasChild("status", stanza.NSClient))
		bob.ExpectNothing(quiet, story.IsFrom(alice1.Bare()))
		carol.ExpectNothing(quiet, story.IsFrom(alice1.Bare()))

		assertResult(t, alice2, unblock(bob.Bare()))
		story.AssertStanza(t, bob.Expect(story.IsPresence("", alice1)), isShow("dnd"), story.IsTo(bob.Bare()))
		story.AssertStanza(t, bob.Expect(story.IsPresence("", alice2)), isShow("away"))
		assertResult(t, alice2, unblock())
		carol.ExpectNothing(quiet, story.IsFrom(alice1.Bare()))
		show(alice1, "chat")
		bob.Expect(story.IsPresence("", alice1), isShow("chat"))
		dave.Expect(story.IsPresence("", alice1), isShow("chat"))

		// A domain item: the subscribers at that domain.
		assertResult(t, alice1, block(story.RawAddr("other.localhost")))
		dave.Expect(story.IsPresence("unavailable", alice1))
		dave.Expect(story.IsPresence("unavailable", alice2))
		bob.ExpectNothing(quiet, story.IsPresence("unavailable", alice1.Bare()))
		// A full-JID item: that resource only.
		assertResult(t, alice1, unblock())
		dave.Expect(story.IsPresence("", alice1))
		dave.Expect(story.IsPresence("", alice2))
		assertResult(t, alice1, block(story.RawAddr(bob.JID().String())))
		story.AssertStanza(t, bob.Expect(story.IsPresence("unavailable", alice1)), story.IsTo(bob))
		story.AssertStanza(t, bob.Expect(story.IsPresence("unavailable", alice2)), story.IsTo(bob))
	})
}

// TestStoryBlockedWhileOffline: a message from a blocked JID to a user
// without a session is refused, not stored offline.
func TestStoryBlockedWhileOffline(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		assertResult(t, alice, block(bob.Bare()))
		acct := alice.Account()
		alice.Close()
		bob.Send(story.Chat(acct.JID, "let me in"))
		story.AssertStanza(t, bob.Expect(story.IsMessageType("error")), story.IsStanzaError("cancel", "service-unavailable"))
		if n, err := srv.Store().(storage.OfflineStore).OfflineCount(context.Background(), acct.JID); err != nil || n != 0 {
			t.Errorf("%d messages stored (%v)", n, err)
		}
		// And when alice is back, the block holds (loaded again).
		again := story.MustConnect(t, srv, acct, story.Options{Name: "alice again"})
		bob.Send(story.Chat(again, "still me"))
		bob.Expect(story.IsStanzaError("cancel", "service-unavailable"))
		again.ExpectNothing(quiet, story.IsMessage())
	})
}

// TestStoryBlockingDisabled: a disabled module leaves no handler, no
// feature and no filter.
func TestStoryBlockingDisabled(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.blocking]\nenabled = false"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		info := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		if strings.Contains(info.String(), NS) {
			t.Errorf("disabled module advertised: %s", info)
		}
		story.AssertStanza(t, alice.IQ(blocklist()), story.IsStanzaError("cancel", "service-unavailable"))
	})
	if srv.Hooks().Owners()["blocking"] {
		t.Error("disabled module has hooks")
	}
}

// TestStoryBlockingWithPresenceAndRoster: how blocking meets the presence
// and roster modules. Neither side of a mutual subscription sees the
// other's presence once one blocked the other, at logout, login or probe;
// a subscription stanza the user sends to a blocked contact changes the
// user's roster but does not reach the contact.
func TestStoryBlockingWithPresenceAndRoster(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		settle(alice, bob)
		subscribe(t, srv, alice.Bare(), bob.Bare())
		subscribe(t, srv, bob.Bare(), alice.Bare())
		assertResult(t, alice, block(bob.Bare()))
		bob.Expect(story.IsPresence("unavailable", alice))

		// bob leaves and comes back: his unavailable and available
		// presence do not reach alice, and the presence module's answer
		// to his login (alice's presence, alice being a local contact)
		// does not reach him.
		acct := bob.Account()
		bob.Close()
		bob = story.MustConnect(t, srv, acct, story.Options{Name: "bob again"})
		bob.ExpectNothing(quiet, story.IsFrom(alice.Bare()))
		alice.ExpectNothing(quiet, story.IsFrom(bob.Bare()))

		// alice cancels bob's subscription: her roster changes, bob hears
		// nothing.
		alice.Send(story.Unsubscribed(bob.Bare()))
		alice.Send(story.PresenceTo(bob, ""))
		alice.IQ(story.Ping(nil))
		item, err := srv.Store().(storage.RosterStore).RosterItem(context.Background(), alice.Bare(), bob.Bare())
		if err != nil || item.Subscription != storage.SubTo {
			t.Errorf("alice's item for bob: %+v %v, want subscription to", item, err)
		}
		bob.ExpectNothing(quiet, story.IsFrom(alice.Bare()))
	})
}

// TestStoryBlockingIQToBareJID: IQs to a user's bare JID that the server
// answers on the user's behalf (last activity, vCard) are refused to a
// blocked JID too (§3.3: service-unavailable).
func TestStoryBlockingIQToBareJID(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		assertResult(t, alice, block(bob.Bare()))
		res := bob.IQ(story.IQGet(alice.Bare(), xmlstream.NewElement("query", "jabber:iq:last")))
		story.AssertStanza(t, res, story.IsStanzaError("cancel", "service-unavailable"))
	})
}
