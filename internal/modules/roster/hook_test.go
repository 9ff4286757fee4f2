package roster_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const nsNote = "urn:example:note"

// rosterGetVer asks for the roster with a cached version.
func rosterGetVer(ver string) *xmlstream.Element {
	iq := story.RosterGet()
	iq.Child("query", nsRoster).SetAttr("ver", ver)
	return iq
}

// rosterItems returns the items of a roster result and its version.
func rosterItems(t *testing.T, res *xmlstream.Element) ([]*xmlstream.Element, string) {
	t.Helper()
	story.AssertStanza(t, res, story.IsRosterResult(""))
	q := res.Child("query", nsRoster)
	if q == nil {
		t.Fatalf("not a whole roster: %s", res)
	}
	var items []*xmlstream.Element
	for it := range q.Elements() {
		items = append(items, it)
	}
	return items, q.Attr("ver")
}

func contactItem(contact story.Addr, name, note string) *xmlstream.Element {
	it := xmlstream.NewElement("item", nsRoster).SetAttr("jid", contact.String()).SetAttr("subscription", "none")
	if name != "" {
		it.SetAttr("name", name)
	}
	if note != "" {
		it.AddChild(xmlstream.NewElement("note", nsNote).AddText(note))
	}
	return it
}

func assertItems(t *testing.T, got []*xmlstream.Element, want ...*xmlstream.Element) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = xmlstream.Equal(got[i], want[i])
	}
	if !ok {
		t.Fatalf("items %v, want %v", got, want)
	}
}

// TestStoryRosterItemHook: what the RosterItem hooks add to items is in
// roster results, interim pushes and pushes, and in the roster version
// ("counter.fingerprint"): a change of what they add gives a client with
// a cached roster the whole roster again; a version without the
// fingerprint (a push's) too, while the roster has such items; an
// unchanged fingerprint allows the empty result and interim pushes.
func TestStoryRosterItemHook(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		var note atomic.Value
		note.Store("one")
		owner := "note-" + story.NewID()
		srv.Hooks().RosterItem.Add(owner, 0, func(_ context.Context, user jid.JID, item *xmlstream.Element) {
			if user == alice.Bare() && item.Attr("jid") == bob.Bare().String() {
				item.AddChild(xmlstream.NewElement("note", nsNote).AddText(note.Load().(string)))
			}
		})
		t.Cleanup(func() { srv.Hooks().RemoveOwner(owner) })

		alice.IQ(story.RosterGet())
		story.AssertStanza(t, alice.IQ(story.RosterSet(bob.Bare(), "Bob")), story.IsIQ("result"))
		push := alice.Expect(story.IsRosterPush(bob.Bare()))
		assertItems(t, []*xmlstream.Element{itemOf(push)}, contactItem(bob.Bare(), "Bob", "one"))
		story.AssertStanza(t, alice.IQ(story.RosterSet(carol.Bare(), "")), story.IsIQ("result"))
		push = alice.Expect(story.IsRosterPush(carol.Bare()))
		pushVer := push.Child("query", nsRoster).Attr("ver")
		if strings.Contains(pushVer, ".") {
			t.Fatalf("a push with a fingerprint: %s", push)
		}

		items, ver1 := rosterItems(t, alice.IQ(story.RosterGet()))
		assertItems(t, items, contactItem(bob.Bare(), "Bob", "one"), contactItem(carol.Bare(), "", ""))
		if !strings.HasPrefix(ver1, pushVer+".") {
			t.Fatalf("version %q, want %q and a fingerprint", ver1, pushVer)
		}
		// A push's version (no fingerprint): the whole roster.
		items, ver := rosterItems(t, alice.IQ(rosterGetVer(pushVer)))
		assertItems(t, items, contactItem(bob.Bare(), "Bob", "one"), contactItem(carol.Bare(), "", ""))
		if ver != ver1 {
			t.Fatalf("version %q, want %q", ver, ver1)
		}
		if res := alice.IQ(rosterGetVer(ver1)); res.FirstChild() != nil {
			t.Fatalf("a get with the current version: %s", res)
		}

		// What the hook adds changes: a new version, the whole roster.
		note.Store("two")
		items, ver2 := rosterItems(t, alice.IQ(rosterGetVer(ver1)))
		assertItems(t, items, contactItem(bob.Bare(), "Bob", "two"), contactItem(carol.Bare(), "", ""))
		if ver2 == ver1 || !strings.HasPrefix(ver2, pushVer+".") {
			t.Fatalf("version %q after %q", ver2, ver1)
		}

		// A stored change with the same additions: interim pushes with the
		// fingerprint.
		story.AssertStanza(t, alice.IQ(story.RosterSet(bob.Bare(), "Robert")), story.IsIQ("result"))
		alice.Expect(story.IsRosterPush(bob.Bare()))
		res := alice.IQ(rosterGetVer(ver2))
		story.AssertStanza(t, res, story.IsIQ("result"))
		if res.FirstChild() != nil {
			t.Fatalf("not an empty result: %s", res)
		}
		push = alice.Expect(story.IsRosterPush(bob.Bare()))
		assertItems(t, []*xmlstream.Element{itemOf(push)}, contactItem(bob.Bare(), "Robert", "two"))
		ver3 := push.Child("query", nsRoster).Attr("ver")
		if _, fp2, _ := strings.Cut(ver2, "."); !strings.HasSuffix(ver3, "."+fp2) || ver3 == ver2 {
			t.Fatalf("interim push version %q after %q", ver3, ver2)
		}
		if res := alice.IQ(rosterGetVer(ver3)); res.FirstChild() != nil {
			t.Fatalf("a get with the current version: %s", res)
		}

		// Without the hook, the version is the counter again; a version
		// with a fingerprint gets the whole roster.
		srv.Hooks().RemoveOwner(owner)
		items, ver4 := rosterItems(t, alice.IQ(rosterGetVer(ver3)))
		assertItems(t, items, contactItem(bob.Bare(), "Robert", ""), contactItem(carol.Bare(), "", ""))
		if before, _, _ := strings.Cut(ver3, "."); ver4 != before {
			t.Fatalf("version %q, want %q", ver4, before)
		}
		alice.ExpectNothing(0, story.IsRosterPush(nil))
	})
}
