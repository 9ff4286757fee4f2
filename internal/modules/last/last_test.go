package last_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const NS = "jabber:iq:last"

func lastQuery(to story.Addr) *xmlstream.Element {
	return story.IQGet(to, xmlstream.NewElement("query", NS))
}

// answer checks a result and returns its seconds and text.
func answer(t *testing.T, res *xmlstream.Element) (int, string) {
	t.Helper()
	story.AssertStanza(t, res, story.IsIQ("result"))
	q := res.Child("query", NS)
	if q == nil {
		t.Fatalf("no query in %s", res)
	}
	n, err := strconv.Atoi(q.Attr("seconds"))
	if err != nil || n < 0 {
		t.Fatalf("seconds in %s", res)
	}
	return n, q.Text()
}

// TestStoryLastServer: a query to the server gives its uptime without
// text (XEP-0012 §5); the feature is advertised for the server and for
// accounts (§6).
func TestStoryLastServer(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	domain := story.RawAddr(srv.Domain())
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		res := alice.IQ(lastQuery(domain))
		story.AssertStanza(t, res, story.IsFrom(domain))
		if n, text := answer(t, res); n > 60 || text != "" {
			t.Errorf("uptime %d %q", n, text)
		}
		for _, to := range []story.Addr{domain, alice.Bare()} {
			q := alice.IQ(story.DiscoInfo(to, "")).Child("query", stanza.NSDiscoInfo)
			var vars []string
			for f := range q.ChildrenNamed("feature", stanza.NSDiscoInfo) {
				vars = append(vars, f.Attr("var"))
			}
			if !slices.Contains(vars, NS) {
				t.Errorf("disco#info of %s: %v", to, vars)
			}
		}
	})
}

// TestStoryLastNoUptime: with uptime = false the server does not answer
// for itself.
func TestStoryLastNoUptime(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.last]\nuptime = false"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		story.AssertStanza(t, alice.IQ(lastQuery(story.RawAddr(srv.Domain()))), story.IsStanzaError("cancel", "service-unavailable"))
		// Users still are.
		if n, _ := answer(t, alice.IQ(lastQuery(nil))); n != 0 {
			t.Errorf("self while online: %d", n)
		}
	})
}

// TestStoryLastSelfAndStrangers: a user may ask about themself (0 while
// online, §3); someone without a subscription gets forbidden at the bare
// JID (§3) and at a full JID, where the query is not delivered (§4).
func TestStoryLastSelfAndStrangers(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		for _, to := range []story.Addr{nil, alice.Bare()} {
			if n, text := answer(t, alice.IQ(lastQuery(to))); n != 0 || text != "" {
				t.Errorf("self while online: %d %q", n, text)
			}
		}
		story.AssertStanza(t, bob.IQ(lastQuery(alice.Bare())), story.IsStanzaError("auth", "forbidden"))
		res := bob.IQ(lastQuery(alice))
		story.AssertStanza(t, res, story.IsStanzaError("auth", "forbidden"), story.IsFrom(alice))
		alice.ExpectNothing(200*time.Millisecond, story.HasChild("query", NS))
		// A missing account: the router's service-unavailable.
		nobody := story.RawAddr("nobody-" + story.NewID() + "@" + srv.Domain())
		story.AssertStanza(t, bob.IQ(lastQuery(nobody)), story.IsStanzaError("cancel", "service-unavailable"))
	})
}

// putContact gives user a roster item for contact, straight in the store.
func putContact(t *testing.T, srv *servertest.Server, user, contact jid.JID, sub storage.Subscription) {
	t.Helper()
	rs, ok := srv.Store().(storage.RosterStore)
	if !ok {
		t.Skipf("the storage backend %T has no rosters yet", srv.Store())
	}
	if _, _, err := rs.PutRosterItem(context.Background(), user, storage.RosterItem{Contact: contact, Subscription: sub}); err != nil {
		t.Fatal(err)
	}
}

// TestStoryLastContact: a contact with a subscription to the user's
// presence ('from' or 'both' in the user's roster) may ask (§3): 0 while
// the user has a session, then the seconds since the last session ended
// and the status of its unavailable presence. A query to a full JID is
// delivered to the client (§4). 'to' and 'none' are not enough.
func TestStoryLastContact(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ended := srv.WatchEnded()
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1, "carol": 1, "dave": 1}, func(alice1, alice2, bob, carol, dave *story.Client) {
		alice := alice1.Bare()
		putContact(t, srv, alice, bob.Bare(), storage.SubFrom)
		putContact(t, srv, alice, carol.Bare(), storage.SubTo)
		putContact(t, srv, alice, dave.Bare(), storage.SubBoth)
		putContact(t, srv, bob.Bare(), alice, storage.SubTo)
		putContact(t, srv, carol.Bare(), alice, storage.SubBoth) // the asker's roster does not count

		if n, _ := answer(t, bob.IQ(lastQuery(alice))); n != 0 {
			t.Errorf("online: %d", n)
		}
		story.AssertStanza(t, carol.IQ(lastQuery(alice)), story.IsStanzaError("auth", "forbidden"))
		story.AssertStanza(t, alice1.IQ(lastQuery(bob.Bare())), story.IsStanzaError("auth", "forbidden"))

		// To a full JID: the client answers with its idle time (§4).
		bob.Send(lastQuery(alice1))
		q := alice1.Expect(story.IsIQ("get"), story.HasChild("query", NS), story.IsFrom(bob))
		alice1.Send(story.IQResult(q, xmlstream.NewElement("query", NS).SetAttr("seconds", "123")))
		if n, _ := answer(t, bob.Expect(story.IsIQResult(q.Attr("id")))); n != 123 {
			t.Errorf("idle time from the client: %d", n)
		}
		story.AssertStanza(t, carol.IQ(lastQuery(alice1)), story.IsStanzaError("auth", "forbidden"))

		// One of two sessions ends: still online.
		alice1.Send(story.Presence("unavailable").AddChild(xmlstream.NewElement("status", stanza.NSClient).AddText("first out")))
		alice1.Close()
		ended.Wait(t, alice1.JID(), 1)
		if n, text := answer(t, bob.IQ(lastQuery(alice))); n != 0 || text != "" {
			t.Errorf("with a session left: %d %q", n, text)
		}

		// The last one ends with a status.
		alice2.Send(story.Presence("unavailable").AddChild(xmlstream.NewElement("status", stanza.NSClient).AddText("Heading Home")))
		alice2.Close()
		ended.Wait(t, alice2.JID(), 1)
		if n, text := answer(t, bob.IQ(lastQuery(alice))); n > 1 || text != "Heading Home" {
			t.Errorf("just after logout: %d %q", n, text)
		}
		time.Sleep(1100 * time.Millisecond) // not a wait for an event: the answer counts whole seconds
		if n, text := answer(t, dave.IQ(lastQuery(alice))); n < 1 || n > 10 || text != "Heading Home" {
			t.Errorf("after logout: %d %q", n, text)
		}
		story.AssertStanza(t, carol.IQ(lastQuery(alice)), story.IsStanzaError("auth", "forbidden"))

		// Back, then gone without an unavailable presence: no status.
		again := story.MustConnect(t, srv, alice1.Account(), story.Options{})
		if n, _ := answer(t, bob.IQ(lastQuery(alice))); n != 0 {
			t.Errorf("online again: %d", n)
		}
		again.Close()
		ended.Wait(t, again.JID(), 1)
		if n, text := answer(t, bob.IQ(lastQuery(alice))); n > 1 || text != "" {
			t.Errorf("after the second logout: %d %q", n, text)
		}

		// An account that never logged out.
		fresh := story.NewAccount(t, srv, "erin")
		putContact(t, srv, fresh.JID, bob.Bare(), storage.SubFrom)
		story.AssertStanza(t, bob.IQ(lastQuery(fresh.JID)), story.IsStanzaError("cancel", "item-not-found"))
	})
}
