package vcard_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const NS = "vcard-temp"

// richVCard has what a vCard may carry that a naive store would lose:
// nesting, empty elements, attributes, xml:lang, escaped text and an
// element in another namespace.
func richVCard() *xmlstream.Element {
	f := story.VcardField
	return xmlstream.NewElement("vCard", NS).SetAttr("version", "3.0").AddChild(
		f("FN", "Alice <Liddell> & Co"),
		xmlstream.NewElement("N", NS).AddChild(f("FAMILY", "Liddell"), f("GIVEN", "Alice"), xmlstream.NewElement("MIDDLE", NS)),
		f("NICKNAME", "al'ice \"quoted\"").SetAttrNS(stanza.NSXML, "lang", "en"),
		xmlstream.NewElement("TEL", NS).AddChild(xmlstream.NewElement("WORK", NS), xmlstream.NewElement("VOICE", NS), f("NUMBER", "+1 555")),
		f("DESC", "Ünïcödé\nsecond line"),
		xmlstream.NewElement("x", "urn:example:ext").SetAttr("k", "v").AddText("extension"),
	)
}

func vcardOf(t *testing.T, res *xmlstream.Element) *xmlstream.Element {
	t.Helper()
	story.AssertStanza(t, res, story.IsIQ("result"))
	v := res.Child("vCard", NS)
	if v == nil {
		t.Fatalf("no vCard in %s", res)
	}
	return v
}

// TestStoryOwnVCard: without a vCard the user gets item-not-found
// (XEP-0054 §3.1); after a set (§3.2) the vCard comes back exactly as it
// was set, whether asked without 'to' or at the own bare JID.
func TestStoryOwnVCard(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		story.AssertStanza(t, alice.IQ(story.VcardGet(nil)), story.IsStanzaError("cancel", "item-not-found"))

		sent := richVCard()
		story.AssertStanza(t, alice.IQ(story.IQSet(nil, sent)), story.IsIQ("result"))
		for _, to := range []story.Addr{nil, alice.Bare()} {
			if got := vcardOf(t, alice.IQ(story.VcardGet(to))); !xmlstream.Equal(got, sent) {
				t.Errorf("vCard changed by the server:\n got %s\nwant %s", got, sent)
			}
		}
		// A set replaces the whole vCard (§3.2: no partial updates).
		story.AssertStanza(t, alice.IQ(story.VcardSet(story.VcardField("FN", "Alice"))), story.IsIQ("result"))
		got := vcardOf(t, alice.IQ(story.VcardGet(nil)))
		if want := xmlstream.NewElement("vCard", NS).AddChild(story.VcardField("FN", "Alice")); !xmlstream.Equal(got, want) {
			t.Errorf("vCard after replacing: %s", got)
		}
		// An empty vCard removes it (§3.1: same as none).
		story.AssertStanza(t, alice.IQ(story.VcardSet()), story.IsIQ("result"))
		story.AssertStanza(t, alice.IQ(story.VcardGet(nil)), story.IsStanzaError("cancel", "item-not-found"))
	})
}

// TestStoryOtherUsersVCard: anybody may read a user's vCard at the bare
// JID (§3.3); a user without one, and a user who does not exist, both
// give service-unavailable; nobody may set another user's (§3.2).
func TestStoryOtherUsersVCard(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		story.AssertStanza(t, alice.IQ(story.VcardGet(bob.Bare())), story.IsStanzaError("cancel", "service-unavailable"))
		nobody := story.RawAddr("nobody-" + story.NewID() + "@" + srv.Domain())
		story.AssertStanza(t, alice.IQ(story.VcardGet(nobody)), story.IsStanzaError("cancel", "service-unavailable"))

		sent := richVCard()
		alice.IQ(story.IQSet(nil, sent))
		res := bob.IQ(story.VcardGet(alice.Bare()))
		story.AssertStanza(t, res, story.IsFrom(alice.Bare()))
		if got := vcardOf(t, res); !xmlstream.Equal(got, sent) {
			t.Errorf("bob sees\n %s\nwant %s", got, sent)
		}
		// The IQ is answered by the server, not by alice's client.
		alice.ExpectNothing(100*time.Millisecond, story.HasChild("vCard", NS), story.IsIQ("get"))

		set := story.IQSet(alice.Bare(), xmlstream.NewElement("vCard", NS).AddChild(story.VcardField("FN", "Mallory")))
		story.AssertStanza(t, bob.IQ(set), story.IsStanzaError("auth", "forbidden"))
		if got := vcardOf(t, bob.IQ(story.VcardGet(alice.Bare()))); !xmlstream.Equal(got, sent) {
			t.Errorf("alice's vCard changed by bob: %s", got)
		}
	})
}

// TestStoryVCardSizeLimit: a vCard over max_bytes is refused with
// policy-violation and a text that says why; the stored one is kept.
func TestStoryVCardSizeLimit(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.vcard]\nmax_bytes = 300"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		small := story.VcardSet(story.VcardField("FN", "Alice"))
		story.AssertStanza(t, alice.IQ(small), story.IsIQ("result"))
		big := story.VcardSet(story.VcardField("PHOTO", strings.Repeat("A", 300)))
		res := alice.IQ(big)
		story.AssertStanza(t, res, story.IsStanzaError("modify", "policy-violation"))
		if e, _ := stanza.ParseError(res); !strings.Contains(e.Text, "300 bytes") {
			t.Errorf("error text %q does not give the limit", e.Text)
		}
		if got := vcardOf(t, alice.IQ(story.VcardGet(nil))); got.ChildText("FN", NS) != "Alice" {
			t.Errorf("vCard after a refused set: %s", got)
		}
	})
}

// TestStoryVCardDisco: vcard-temp is advertised for the server and for
// accounts (§4).
func TestStoryVCardDisco(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		for _, to := range []story.Addr{story.RawAddr(srv.Domain()), alice.Bare()} {
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
