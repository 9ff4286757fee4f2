package private_test

import (
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const NS = "jabber:iq:private"

func query(children ...*xmlstream.Element) *xmlstream.Element {
	return xmlstream.NewElement("query", NS).AddChild(children...)
}

func get(to story.Addr, children ...*xmlstream.Element) *xmlstream.Element {
	return story.IQGet(to, query(children...))
}

func set(to story.Addr, children ...*xmlstream.Element) *xmlstream.Element {
	return story.IQSet(to, query(children...))
}

func prefs(nick string) *xmlstream.Element {
	return xmlstream.NewElement("exodus", "exodus:prefs").AddChild(
		xmlstream.NewElement("defaultnick", "exodus:prefs").AddText(nick))
}

func bookmarks() *xmlstream.Element {
	return xmlstream.NewElement("storage", "storage:bookmarks").AddChild(
		xmlstream.NewElement("conference", "storage:bookmarks").SetAttr("jid", "room@muc.example.com").SetAttr("autojoin", "true").
			AddChild(xmlstream.NewElement("nick", "storage:bookmarks").AddText("Hamlet & co")))
}

// result checks an IQ result and returns the children of its query.
func result(t *testing.T, res *xmlstream.Element) []*xmlstream.Element {
	t.Helper()
	story.AssertStanza(t, res, story.IsIQ("result"))
	q := res.Child("query", NS)
	if q == nil {
		t.Fatalf("no query in %s", res)
	}
	var out []*xmlstream.Element
	for el := range q.Elements() {
		out = append(out, el)
	}
	return out
}

// TestStoryPrivateStorage: data is stored per namespace and element name
// and comes back as stored (XEP-0049 §2.3); nothing stored answers the
// element as asked, empty; an empty element removes what was stored.
func TestStoryPrivateStorage(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2}, func(alice1, alice2 *story.Client) {
		empty := xmlstream.NewElement("exodus", "exodus:prefs")
		got := result(t, alice1.IQ(get(nil, empty)))
		if len(got) != 1 || !xmlstream.Equal(got[0], empty) {
			t.Fatalf("nothing stored: %v", got)
		}

		story.AssertStanza(t, alice1.IQ(set(nil, prefs("Hamlet"))), story.IsIQ("result"))
		story.AssertStanza(t, alice1.IQ(set(alice1.Bare(), bookmarks())), story.IsIQ("result"))
		// Another resource of the same account reads it back.
		got = result(t, alice2.IQ(get(nil, empty)))
		if len(got) != 1 || !xmlstream.Equal(got[0], prefs("Hamlet")) {
			t.Errorf("prefs: %v", got)
		}
		got = result(t, alice2.IQ(get(alice2.Bare(), xmlstream.NewElement("storage", "storage:bookmarks"))))
		if len(got) != 1 || !xmlstream.Equal(got[0], bookmarks()) {
			t.Errorf("bookmarks: %v", got)
		}
		// Same namespace, another element name: a separate entry.
		other := xmlstream.NewElement("other", "exodus:prefs")
		if got = result(t, alice1.IQ(get(nil, other))); len(got) != 1 || !xmlstream.Equal(got[0], other) {
			t.Errorf("other element of the namespace: %v", got)
		}
		// A set may carry several elements of one namespace (§2.3); so
		// may a get.
		other2 := xmlstream.NewElement("other", "exodus:prefs").SetAttr("v", "2")
		story.AssertStanza(t, alice1.IQ(set(nil, prefs("Ophelia"), other2)), story.IsIQ("result"))
		got = result(t, alice1.IQ(get(nil, empty, other)))
		if len(got) != 2 || !xmlstream.Equal(got[0], prefs("Ophelia")) || !xmlstream.Equal(got[1], other2) {
			t.Errorf("two elements: %v", got)
		}
		// Removing: an empty element.
		story.AssertStanza(t, alice1.IQ(set(nil, empty)), story.IsIQ("result"))
		if got = result(t, alice1.IQ(get(nil, empty))); len(got) != 1 || !xmlstream.Equal(got[0], empty) {
			t.Errorf("after removal: %v", got)
		}
	})
}

// TestStoryPrivateErrors: the error conditions of XEP-0049 §2.3 and §3.
func TestStoryPrivateErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		story.AssertStanza(t, alice.IQ(set(nil, prefs("Hamlet"))), story.IsIQ("result"))

		// Another user's data: forbidden, for get and set.
		story.AssertStanza(t, bob.IQ(get(alice.Bare(), xmlstream.NewElement("exodus", "exodus:prefs"))), story.IsStanzaError("auth", "forbidden"))
		story.AssertStanza(t, bob.IQ(set(alice.Bare(), prefs("Macbeth"))), story.IsStanzaError("auth", "forbidden"))
		got := result(t, alice.IQ(get(nil, xmlstream.NewElement("exodus", "exodus:prefs"))))
		if len(got) != 1 || !xmlstream.Equal(got[0], prefs("Hamlet")) {
			t.Errorf("alice's data after bob's attempt: %v", got)
		}
		// bob's own storage does not see alice's.
		got = result(t, bob.IQ(get(nil, xmlstream.NewElement("exodus", "exodus:prefs"))))
		if len(got) != 1 || len(got[0].Children) != 0 {
			t.Errorf("bob sees %v", got)
		}

		// No child element: not-acceptable (§2.3), for get and set.
		story.AssertStanza(t, alice.IQ(get(nil)), story.IsStanzaError("modify", "not-acceptable"))
		story.AssertStanza(t, alice.IQ(set(nil)), story.IsStanzaError("modify", "not-acceptable"))
		// Reserved namespaces: not-acceptable (§2.3, §3); an element
		// without its own namespace is in jabber:client.
		for _, el := range []*xmlstream.Element{
			xmlstream.NewElement("vCard", "vcard-temp").AddChild(xmlstream.NewElement("FN", "vcard-temp").AddText("Hamlet")),
			xmlstream.NewElement("query", "jabber:iq:roster"),
			xmlstream.NewElement("x", "http://jabber.org/protocol/muc"),
			xmlstream.NewElement("prefs", stanza.NSClient),
		} {
			story.AssertStanza(t, alice.IQ(set(nil, el)), story.IsStanzaError("modify", "not-acceptable"))
			story.AssertStanza(t, alice.IQ(get(nil, xmlstream.NewElement(el.Name, el.NS))), story.IsStanzaError("modify", "not-acceptable"))
		}
		// One namespace per get (§2.3).
		story.AssertStanza(t, alice.IQ(get(nil, xmlstream.NewElement("exodus", "exodus:prefs"), xmlstream.NewElement("storage", "storage:bookmarks"))),
			story.IsStanzaError("modify", "bad-request"))
		// The same element twice in a set is ambiguous.
		story.AssertStanza(t, alice.IQ(set(nil, prefs("a"), prefs("b"))), story.IsStanzaError("modify", "bad-request"))
		// A payload that is not <query/>.
		story.AssertStanza(t, alice.IQ(story.IQGet(nil, xmlstream.NewElement("storage", NS))), story.IsStanzaError("modify", "bad-request"))
		// To the server: not a private storage.
		story.AssertStanza(t, alice.IQ(get(story.RawAddr(srv.Domain()), xmlstream.NewElement("exodus", "exodus:prefs"))),
			story.IsStanzaError("cancel", "service-unavailable"))
	})
}

// TestStoryPrivateQuota: an account stores at most max_bytes in total;
// a set that would go over is refused whole with policy-violation, and
// replacing or removing makes room.
func TestStoryPrivateQuota(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.private]\nmax_bytes = 400"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		blob := func(name string, n int) *xmlstream.Element {
			return xmlstream.NewElement(name, "urn:example:blob").AddText(strings.Repeat("x", n))
		}
		story.AssertStanza(t, alice.IQ(set(nil, blob("a", 200))), story.IsIQ("result"))
		res := alice.IQ(set(nil, blob("b", 100), blob("c", 200)))
		story.AssertStanza(t, res, story.IsStanzaError("modify", "policy-violation"))
		if e, _ := stanza.ParseError(res); !strings.Contains(e.Text, "400 bytes") {
			t.Errorf("error text %q does not give the limit", e.Text)
		}
		// Nothing of the refused set was stored.
		if got := result(t, alice.IQ(get(nil, blob("b", 0)))); len(got[0].Children) != 0 {
			t.Errorf("part of a refused set stored: %v", got)
		}
		// Replacing counts the new size only.
		story.AssertStanza(t, alice.IQ(set(nil, blob("a", 300))), story.IsIQ("result"))
		story.AssertStanza(t, alice.IQ(set(nil, blob("b", 100))), story.IsStanzaError("modify", "policy-violation"))
		// Removing makes room.
		story.AssertStanza(t, alice.IQ(set(nil, blob("a", 0), blob("b", 100))), story.IsIQ("result"))
		if got := result(t, alice.IQ(get(nil, blob("b", 0)))); got[0].Text() != strings.Repeat("x", 100) {
			t.Errorf("b: %v", got)
		}
	})
}
