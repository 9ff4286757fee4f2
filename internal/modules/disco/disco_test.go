package disco_test

import (
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func features(q *xmlstream.Element) []string {
	var out []string
	for f := range q.ChildrenNamed("feature", stanza.NSDiscoInfo) {
		out = append(out, f.Attr("var"))
	}
	return out
}

// TestStoryServerInfo: disco#info of the domain lists what the running
// modules registered (XEP-0030 §3.1), sorted and once each.
func TestStoryServerInfo(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	srv.Hooks().ServerFeatures.Add("test", 0, "urn:example:extra")
	srv.Hooks().ServerFeatures.Add("test", 0, "urn:xmpp:ping") // a duplicate
	srv.Hooks().ServerIdentities.Add("test", 0, module.Identity{Category: "pubsub", Type: "pep"})
	domain := story.RawAddr(srv.Domain())
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		res := alice.IQ(story.DiscoInfo(domain, ""))
		story.AssertStanza(t, res, story.IsIQ("result"), story.IsFrom(domain))
		q := res.Child("query", stanza.NSDiscoInfo)
		got := features(q)
		// Sorted, once each, including what the test added.
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("features not sorted or repeated: %v", got)
		}
		for _, want := range []string{stanza.NSDiscoInfo, stanza.NSDiscoItems, "jabber:iq:version", "urn:example:extra", "urn:xmpp:ping", "urn:xmpp:time"} {
			if !slices.Contains(got, want) {
				t.Errorf("features %v lack %s", got, want)
			}
		}
		var ids []string
		for id := range q.ChildrenNamed("identity", stanza.NSDiscoInfo) {
			ids = append(ids, id.Attr("category")+"/"+id.Attr("type")+"/"+id.Attr("name"))
		}
		if !slices.Equal(ids, []string{"server/im/Meerkat", "pubsub/pep/"}) {
			t.Errorf("identities %v", ids)
		}
		// XEP-0030 §3.2: an unknown node.
		story.AssertStanza(t, alice.IQ(story.DiscoInfo(domain, "nosuchnode")), story.IsStanzaError("cancel", "item-not-found"))
		story.AssertStanza(t, alice.IQ(story.DiscoItems(domain, "nosuchnode")), story.IsStanzaError("cancel", "item-not-found"))
	})
	srv.Hooks().RemoveOwner("test")
}

func TestStoryServerItems(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	srv.Hooks().ServerItems.Add("test", 0, module.DiscoItem{JID: "groups." + srv.Domain(), Name: "Groups"})
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		res := alice.IQ(story.DiscoItems(story.RawAddr(srv.Domain()), ""))
		items := res.Child("query", stanza.NSDiscoItems)
		found := false
		for it := range items.ChildrenNamed("item", stanza.NSDiscoItems) {
			found = found || it.Attr("jid") == "groups."+srv.Domain() && it.Attr("name") == "Groups"
		}
		if !found {
			t.Fatalf("items %s", items)
		}
	})
}

// TestStoryAccountInfo: the server answers for the account's bare JID.
func TestStoryAccountInfo(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		for _, to := range []story.Addr{alice.Bare(), nil} {
			q := alice.IQ(story.DiscoInfo(to, "")).Child("query", stanza.NSDiscoInfo)
			if id := q.Child("identity", stanza.NSDiscoInfo); id == nil || id.Attr("category") != "account" || id.Attr("type") != "registered" {
				t.Errorf("identity %s", q)
			}
			if !slices.Contains(features(q), "urn:xmpp:ping") {
				t.Errorf("features %v", features(q))
			}
			items := alice.IQ(story.DiscoItems(to, ""))
			story.AssertStanza(t, items, story.IsIQ("result"))
		}
	})
}

func TestStoryName(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.disco]\nname = \"Zoo\""))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		q := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), "")).Child("query", stanza.NSDiscoInfo)
		if q.Child("identity", stanza.NSDiscoInfo).Attr("name") != "Zoo" {
			t.Errorf("identity %s", q)
		}
	})
}
