package roster_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// TestStoryRosterFeatures: roster versioning and pre-approval are
// advertised (RFC 6121 §2.6.1, §3.4).
func TestStoryRosterFeatures(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		f := alice.Features()
		if f.Child("ver", stanza.NSRosterVer) == nil || f.Child("sub", stanza.NSPreApproval) == nil {
			t.Fatalf("features %s", f)
		}
	})
}

// TestStoryRosterEmpty: an empty roster is a result with an empty query
// and a version, not an error (RFC 6121 §2.1.4).
func TestStoryRosterEmpty(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		res := alice.IQ(story.RosterGet())
		story.AssertStanza(t, res, story.IsRosterResult(""))
		q := res.Child("query", nsRoster)
		if len(q.Children) != 0 || q.Attr("ver") == "" {
			t.Fatalf("empty roster %s", res)
		}
	})
}

// TestStoryRosterSetAndRemove: add, update and remove an item, with pushes
// to the interested resources only, the one that made the change included
// (RFC 6121 §2.1.6, §2.3, §2.4, §2.5).
func TestStoryRosterSetAndRemove(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 3, "bob": 1}, func(a1, a2, a3, bob *story.Client) {
		a1.IQ(story.RosterGet())
		a2.IQ(story.RosterGet())

		// §2.3.2: the push to every interested resource, the result to
		// the sender.
		set := story.RosterSet(bob.Bare(), "Bob", "Friends", "Work")
		story.AssertStanza(t, a1.IQ(set), story.IsIQResult(set.Attr("id")))
		var vers []string
		for _, c := range []*story.Client{a1, a2} {
			push := c.Expect(isPush(bob.Bare(), "none", ""))
			it := itemOf(push)
			if it.Attr("name") != "Bob" || !slices.Equal(groupsOf(it), []string{"Friends", "Work"}) || push.Attr("from") != "" {
				t.Fatalf("%s: push %s", c.Name(), push)
			}
			vers = append(vers, push.Child("query", nsRoster).Attr("ver"))
		}
		if vers[0] == "" || vers[0] != vers[1] {
			t.Fatalf("push versions %v", vers)
		}
		syncAll(a3)
		assertNone(t, a3, story.IsRosterPush(nil)) // a3 never asked for the roster

		// §2.4: an update replaces name and groups; the sender gets the
		// push even when it never requested the roster.
		set = story.RosterSet(bob.Bare(), "")
		story.AssertStanza(t, a3.IQ(set), story.IsIQResult(""))
		for _, c := range []*story.Client{a1, a2, a3} {
			it := itemOf(c.Expect(isPush(bob.Bare(), "none", "")))
			if it.Attr("name") != "" || len(groupsOf(it)) != 0 {
				t.Fatalf("%s: update push %s", c.Name(), it)
			}
		}
		res := a1.IQ(story.RosterGet())
		items := res.Child("query", nsRoster)
		if it := items.Child("item", nsRoster); it == nil || it.Attr("jid") != bob.Bare().String() || it.Attr("subscription") != "none" {
			t.Fatalf("roster %s", res)
		}
		// The same item again is no modification: no push.
		a1.IQ(story.RosterSet(bob.Bare(), ""))

		// §2.5: remove; a push with subscription='remove'.
		rm := story.RosterRemove(bob.Bare())
		story.AssertStanza(t, a2.IQ(rm), story.IsIQResult(rm.Attr("id")))
		for _, c := range []*story.Client{a1, a2} {
			c.Expect(isPush(bob.Bare(), "remove", ""))
		}
		if q := a1.IQ(story.RosterGet()).Child("query", nsRoster); len(q.Children) != 0 {
			t.Fatalf("roster after remove %s", q)
		}
		// §2.5.3: removing an item that is not there.
		story.AssertStanza(t, a1.IQ(story.RosterRemove(bob.Bare())), story.IsStanzaError("modify", "item-not-found"))
		syncAll(a1, a2, a3, bob)
		assertNone(t, a1, story.IsRosterPush(nil))
		assertNone(t, a3, story.IsRosterPush(nil))
		// A roster change is no business of the contact.
		assertNone(t, bob, story.Any)
	})
}

// TestStoryRosterErrors: the errors of RFC 6121 §2.1.3, §2.3.3 and §2.5.3,
// and the configured limits.
func TestStoryRosterErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.roster]\nmax_name_length = 5\nmax_group_length = 4\nmax_groups = 2"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		alice.IQ(story.RosterGet())
		contact := "carol@" + srv.Domain()
		item := func(attrs map[string]string, groups ...string) *xmlstream.Element {
			it := xmlstream.NewElement("item", nsRoster)
			for k, v := range attrs {
				it.SetAttr(k, v)
			}
			for _, g := range groups {
				it.AddChild(xmlstream.NewElement("group", nsRoster).AddText(g))
			}
			return it
		}
		query := func(items ...*xmlstream.Element) *xmlstream.Element {
			return xmlstream.NewElement("query", nsRoster).AddChild(items...)
		}
		for _, c := range []struct {
			name      string
			iq        *xmlstream.Element
			typ, cond string
		}{
			{"two items", story.IQSet(nil, query(item(map[string]string{"jid": contact}), item(map[string]string{"jid": "dave@" + srv.Domain()}))), "modify", "bad-request"},
			{"no item", story.IQSet(nil, query()), "modify", "bad-request"},
			{"no jid", story.IQSet(nil, query(item(nil))), "modify", "bad-request"},
			{"malformed jid", story.IQSet(nil, query(item(map[string]string{"jid": "a@@b"}))), "modify", "jid-malformed"},
			{"full jid", story.IQSet(nil, query(item(map[string]string{"jid": contact + "/res"}))), "modify", "bad-request"},
			{"own jid", story.IQSet(nil, query(item(map[string]string{"jid": alice.Bare().String()}))), "cancel", "not-allowed"},
			{"duplicate groups", story.IQSet(nil, query(item(map[string]string{"jid": contact}, "a", "a"))), "modify", "bad-request"},
			{"long name", story.IQSet(nil, query(item(map[string]string{"jid": contact, "name": "Carol!"}))), "modify", "not-acceptable"},
			{"empty group", story.IQSet(nil, query(item(map[string]string{"jid": contact}, ""))), "modify", "not-acceptable"},
			{"long group", story.IQSet(nil, query(item(map[string]string{"jid": contact}, "Works"))), "modify", "not-acceptable"},
			{"too many groups", story.IQSet(nil, query(item(map[string]string{"jid": contact}, "a", "b", "c"))), "modify", "not-acceptable"},
			{"remove absent", story.RosterRemove(story.RawAddr(contact)), "modify", "item-not-found"},
			{"get with an item", story.IQGet(nil, query(item(map[string]string{"jid": contact}))), "modify", "bad-request"},
			// §2.3.3: only the account itself may touch its roster.
			{"set for another account", story.IQSet(bob.Bare(), query(item(map[string]string{"jid": contact}))), "auth", "forbidden"},
			{"get of another account", story.IQGet(bob.Bare(), query()), "auth", "forbidden"},
		} {
			if err := story.Check(alice.IQ(c.iq), story.IsStanzaError(c.typ, c.cond)); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		// Within the limits, and with a 'subscription' other than remove,
		// which the server ignores (§2.1.5 rule 2), as 'ask' and 'approved'.
		ok := story.IQSet(nil, query(item(map[string]string{"jid": contact, "name": "Carol", "subscription": "both", "ask": "subscribe", "approved": "true"}, "Work", "ab")))
		story.AssertStanza(t, alice.IQ(ok), story.IsIQResult(""))
		push := alice.Expect(isPush(story.RawAddr(contact), "none", ""))
		if itemOf(push).Attr("approved") != "" {
			t.Fatalf("client-set approval %s", push)
		}
		syncAll(alice, bob)
		assertNone(t, alice, story.IsRosterPush(nil))
		assertNone(t, bob, story.Any)
	})
}

// TestStoryRosterMaxItems: max_items bounds the roster: a new item, an
// outbound request and an inbound request are refused beyond it.
func TestStoryRosterMaxItems(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.roster]\nmax_items = 2"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		alice.IQ(story.RosterGet())
		for i := range 2 {
			story.AssertStanza(t, alice.IQ(story.RosterSet(story.RawAddr("c"+strconv.Itoa(i)+"@"+srv.Domain()), "")), story.IsIQResult(""))
		}
		story.AssertStanza(t, alice.IQ(story.RosterSet(bob.Bare(), "")), story.IsStanzaError("modify", "policy-violation"))
		// Updating an existing item is fine.
		story.AssertStanza(t, alice.IQ(story.RosterSet(story.RawAddr("c0@"+srv.Domain()), "C")), story.IsIQResult(""))
		alice.Send(story.Subscribe(bob.Bare()))
		alice.Expect(story.IsStanzaError("modify", "policy-violation"), story.IsFrom(bob.Bare()))
		// bob's request to alice would need an entry: refused too.
		bob.Send(story.Subscribe(alice.Bare()))
		bob.Expect(story.IsStanzaError("modify", "policy-violation"), story.IsFrom(alice.Bare()))
		syncAll(bob, alice)
		assertNone(t, alice, story.IsPresenceType(stanza.PresenceSubscribe))
		if hasContact(t, srv, alice.Bare(), bob.Bare()) {
			t.Fatal("bob added beyond the limit")
		}
	})
}

// TestStoryRosterVersioning: RFC 6121 §2.6 — a roster get with the
// current version gets an empty result; with an older one an empty result
// and one push per change since (interim pushes, in order); with an
// unknown one or an empty ver the whole roster.
func TestStoryRosterVersioning(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2}, func(a1, a2 *story.Client) {
		d := srv.Domain()
		c := func(n string) story.RawAddr { return story.RawAddr(n + "@" + d) }
		get := func(c *story.Client, ver string) *xmlstream.Element {
			iq := story.RosterGet()
			iq.Child("query", nsRoster).SetAttr("ver", ver)
			return c.IQ(iq)
		}
		verOf := func(el *xmlstream.Element) string { return el.Child("query", nsRoster).Attr("ver") }

		v0 := verOf(a1.IQ(story.RosterGet()))
		for _, n := range []string{"a", "b", "c", "d"} {
			a1.IQ(story.RosterSet(c(n), strings.ToUpper(n)))
			a1.Expect(story.IsRosterPush(c(n)))
		}
		v1 := verOf(a1.IQ(story.RosterGet()))
		a1.IQ(story.RosterSet(c("b"), "Bee"))
		a1.IQ(story.RosterRemove(c("c")))
		pushB := a1.Expect(story.IsRosterPush(c("b")))
		pushC := a1.Expect(story.IsRosterPush(c("c")))
		current := verOf(pushC)
		if verOf(pushB) == v1 || verOf(pushB) == current || current == v1 {
			t.Fatalf("versions not unique: %s %s %s", v1, verOf(pushB), current)
		}

		// The current version: an empty result (no query), no pushes.
		res := get(a2, current)
		story.AssertStanza(t, res, story.IsIQResult(""))
		if len(res.Children) != 0 {
			t.Fatalf("result for the current version %s", res)
		}
		syncAll(a2)
		assertNone(t, a2, story.IsRosterPush(nil))

		// An older version: an empty result, then the changes since, in
		// the order they were made, with their versions.
		res = get(a2, v1)
		if len(res.Children) != 0 {
			t.Fatalf("result for an old version %s", res)
		}
		got := a2.Collect(2)
		story.AssertStanza(t, got[0], story.IsRosterPush(c("b")))
		story.AssertStanza(t, got[1], isPush(c("c"), "remove", ""))
		if itemOf(got[0]).Attr("name") != "Bee" || verOf(got[0]) != verOf(pushB) || verOf(got[1]) != current {
			t.Fatalf("interim pushes %s %s", got[0], got[1])
		}
		// More changes than items: the whole roster (§2.6.3 (1)).
		res = get(a2, v0)
		story.AssertStanza(t, res, story.IsRosterResult(""))
		if n := len(slices.Collect(res.Child("query", nsRoster).ChildrenNamed("item", nsRoster))); n != 3 || verOf(res) != current {
			t.Fatalf("whole roster for an old version: %s", res)
		}
		// Unknown versions and ver='' (bootstrapping, §2.6.2): the whole
		// roster with its version.
		for _, ver := range []string{"", "nonsense", "999999999999999999", "-3"} {
			res := get(a2, ver)
			story.AssertStanza(t, res, story.IsRosterResult(""))
			if n := len(slices.Collect(res.Child("query", nsRoster).ChildrenNamed("item", nsRoster))); n != 3 || verOf(res) != current {
				t.Fatalf("ver=%q: %s", ver, res)
			}
		}
		syncAll(a2)
		assertNone(t, a2, story.IsRosterPush(nil))
		// a2 is interested now: it gets the next push, with the next version.
		a1.IQ(story.RosterSet(c("e"), ""))
		push := a2.Expect(story.IsRosterPush(c("e")))
		if verOf(push) == current || verOf(push) == "" {
			t.Fatalf("push version %s", push)
		}
	})
}
