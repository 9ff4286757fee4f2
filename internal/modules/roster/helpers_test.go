package roster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const nsRoster = stanza.NSRoster

// itemOf returns the single <item/> of a roster push or set.
func itemOf(iq *xmlstream.Element) *xmlstream.Element {
	q := iq.Child("query", nsRoster)
	if q == nil {
		return nil
	}
	return q.Child("item", nsRoster)
}

// isPush matches a roster push for contact whose item has the given
// subscription and ask ("" for none).
func isPush(contact story.Addr, sub, ask string) story.Predicate {
	p := story.IsRosterPush(contact)
	return story.Predicate{
		Desc: fmt.Sprintf("%s with subscription=%q ask=%q", p.Desc, sub, ask),
		Match: func(el *xmlstream.Element) bool {
			if !p.Match(el) {
				return false
			}
			it := itemOf(el)
			return it.Attr("subscription") == sub && it.Attr("ask") == ask
		},
	}
}

// groupsOf returns the groups of an item.
func groupsOf(it *xmlstream.Element) []string {
	var gs []string
	for g := range it.ChildrenNamed("group", nsRoster) {
		gs = append(gs, g.Text())
	}
	return gs
}

// syncAll makes sure everything the server sent each client before now
// has arrived: a ping answered by the server comes after it. A stanza is
// processed on its sender's connection, deliveries to other clients
// included, so the sender of the last stanza goes first.
func syncAll(cs ...*story.Client) {
	for _, c := range cs {
		c.IQ(story.Ping(nil))
	}
}

// pending returns the queued elements of c matching p.
func pending(c *story.Client, p story.Predicate) []*xmlstream.Element {
	var out []*xmlstream.Element
	for _, r := range c.Pending() {
		if p.Match(r.El) {
			out = append(out, r.El)
		}
	}
	return out
}

// assertNone fails if c has anything matching p queued (call syncAll
// first).
func assertNone(t *testing.T, c *story.Client, p story.Predicate) {
	t.Helper()
	if got := pending(c, p); len(got) > 0 {
		t.Fatalf("%s: unexpected %s: %s", c.Name(), p.Desc, got[0])
	}
}

func rosterStore(t *testing.T, srv *servertest.Server) storage.RosterStore {
	t.Helper()
	s, ok := srv.Store().(storage.RosterStore)
	if !ok {
		t.Fatal("no roster store")
	}
	return s
}

// entry reads user's entry for contact from the store (nil if none).
func entry(t *testing.T, srv *servertest.Server, user, contact jid.JID) *storage.RosterItem {
	t.Helper()
	it, err := rosterStore(t, srv).RosterItem(context.Background(), user, contact)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("roster item of %s for %s: %v", user, contact, err)
	}
	return &it
}

// contactsOf returns the contacts of user's roster.
func contactsOf(t *testing.T, srv *servertest.Server, user jid.JID) []jid.JID {
	t.Helper()
	items, _, err := rosterStore(t, srv).Roster(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var out []jid.JID
	for _, it := range items {
		out = append(out, it.Contact)
	}
	return out
}

func hasContact(t *testing.T, srv *servertest.Server, user, contact jid.JID) bool {
	return slices.Contains(contactsOf(t, srv, user), contact)
}

// subscribe makes a subscribed to b's presence: a asks, b approves
// (RFC 6121 §3.1). Both must be interested and available.
func subscribe(t *testing.T, a, b *story.Client) {
	t.Helper()
	a.Send(story.Subscribe(b.Bare()))
	b.Expect(story.IsPresence(stanza.PresenceSubscribe, a.Bare()))
	b.Send(story.Subscribed(a.Bare()))
	a.Expect(story.IsPresence(stanza.PresenceSubscribed, b.Bare()))
	syncAll(b, a)
	drain(a, b)
}

// drain empties the queues of the clients (call syncAll first).
func drain(cs ...*story.Client) {
	for _, c := range cs {
		for range c.Pending() {
			c.Expect(story.Any)
		}
	}
}
