package mam_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/modules/mam"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const (
	NS       = mam.NS
	NSv1     = mam.NSv1
	NSSID    = stanza.NSStanzaID
	NSRSM    = stanza.NSRSM
	NSForm   = stanza.NSDataForms
	NSHints  = stanza.NSHints
	NSCarbon = "urn:xmpp:carbons:2"
)

// page is what a query returned: the forwarded messages with their
// result ids, and the <fin/>.
type page struct {
	msgs  []*xmlstream.Element
	uids  []string
	stamp []time.Time
	fin   *xmlstream.Element
}

func (p page) bodies() []string {
	var out []string
	for _, m := range p.msgs {
		out = append(out, m.ChildText("body", stanza.NSClient))
	}
	return out
}

func (p page) set() *xmlstream.Element { return p.fin.Child("set", NSRSM) }

func (p page) complete() bool { return p.fin.Attr("complete") == "true" }

// query runs an archive query and collects its results up to the IQ
// result, failing the test on an IQ error.
func query(t *testing.T, c *story.Client, q story.MAMQuery) page {
	t.Helper()
	if q.QueryID == "" {
		q.QueryID = story.NewID()
	}
	ns := q.NS
	if ns == "" {
		ns = NS
	}
	iq := story.MAM(q)
	c.Send(iq)
	var p page
	for {
		el := c.Expect(story.Or(isResult(ns, q.QueryID), story.IsIQResult(iq.Attr("id")), story.IsIQError(iq.Attr("id"))))
		if el.Name == "iq" {
			story.AssertStanza(t, el, story.IsIQResult(iq.Attr("id")))
			if p.fin = el.Child("fin", ns); p.fin == nil {
				t.Fatalf("no <fin/> in %s", el)
			}
			return p
		}
		if from := el.Attr("from"); from != c.Bare().String() && q.To == nil {
			t.Errorf("result from %q, want the archive %s", from, c.Bare())
		}
		res := el.Child("result", ns)
		fwd := res.Child("forwarded", stanza.NSForward)
		stamp, err := stanza.ParseTime(fwd.Child("delay", stanza.NSDelay).Attr("stamp"))
		if err != nil {
			t.Fatalf("result without a delay stamp: %s", el)
		}
		p.uids = append(p.uids, res.Attr("id"))
		p.stamp = append(p.stamp, stamp)
		p.msgs = append(p.msgs, fwd.Child("message", stanza.NSClient))
	}
}

func isResult(ns, queryID string) story.Predicate {
	return story.Predicate{Desc: "a " + ns + " result for " + queryID, Match: func(el *xmlstream.Element) bool {
		r := el.Child("result", ns)
		return el.Name == "message" && r != nil && r.Attr("queryid") == queryID
	}}
}

// queryError sends a query and expects an error with condition.
func queryError(t *testing.T, c *story.Client, iq *xmlstream.Element, condition string) {
	t.Helper()
	story.AssertStanza(t, c.IQ(iq), story.IsStanzaError("", condition))
}

func assertBodies(t *testing.T, what string, p page, want ...string) {
	t.Helper()
	if got := p.bodies(); !slices.Equal(got, want) {
		t.Errorf("%s: bodies %q, want %q", what, got, want)
	}
}

// stanzaID is the <stanza-id/> by by in el, "" when there is none; more
// than one fails the test.
func stanzaID(t *testing.T, el *xmlstream.Element, by jid.JID) string {
	t.Helper()
	id := ""
	for c := range el.ChildrenNamed("stanza-id", NSSID) {
		if c.Attr("by") == by.String() {
			if id != "" {
				t.Errorf("two stanza-ids by %s in %s", by, el)
			}
			id = c.Attr("id")
		}
	}
	return id
}

// TestStoryStanzaIDs: XEP-0359 on delivered messages and sent carbons,
// the same IDs as in the archives; origin-id kept, a forged stanza-id
// removed.
func TestStoryStanzaIDs(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1}, func(alice, alice2, bob *story.Client) {
		story.AssertStanza(t, alice2.IQ(story.IQSet(nil, xmlstream.NewElement("enable", NSCarbon))), story.IsIQ("result"))
		msg := story.Chat(bob, "hello")
		msg.AddChild(xmlstream.NewElement("origin-id", NSSID).SetAttr("id", "origin-1"))
		msg.AddChild(xmlstream.NewElement("stanza-id", NSSID).SetAttr("by", bob.Bare().String()).SetAttr("id", "forged"))
		alice.Send(msg)

		got := bob.Expect(story.IsChat("hello"))
		bobID := stanzaID(t, got, bob.Bare())
		if bobID == "" || bobID == "forged" {
			t.Fatalf("bob's copy has stanza-id %q: %s", bobID, got)
		}
		if got.Child("origin-id", NSSID) == nil || got.Child("origin-id", NSSID).Attr("id") != "origin-1" {
			t.Errorf("origin-id lost: %s", got)
		}
		if stanzaID(t, got, alice.Bare()) != "" {
			t.Errorf("bob's copy carries alice's stanza-id: %s", got)
		}

		carbon := alice2.Expect(story.HasChild("sent", NSCarbon))
		inner := carbon.Child("sent", NSCarbon).Child("forwarded", stanza.NSForward).Child("message", stanza.NSClient)
		aliceID := stanzaID(t, inner, alice.Bare())
		if aliceID == "" {
			t.Fatalf("the sent carbon has no stanza-id by alice: %s", carbon)
		}

		bp := query(t, bob, story.MAMQuery{})
		if !slices.Equal(bp.uids, []string{bobID}) {
			t.Errorf("bob's archive ids %q, want [%s]", bp.uids, bobID)
		}
		if stanzaID(t, bp.msgs[0], bob.Bare()) == "forged" {
			t.Errorf("the archive kept the forged stanza-id: %s", bp.msgs[0])
		}
		ap := query(t, alice, story.MAMQuery{})
		if !slices.Equal(ap.uids, []string{aliceID}) {
			t.Errorf("alice's archive ids %q, want [%s]", ap.uids, aliceID)
		}
		assertBodies(t, "alice's archive", ap, "hello")
		if to := ap.msgs[0].Attr("to"); to != bob.JID().String() {
			t.Errorf("archived outgoing message to %q", to)
		}
	})
}

// TestStoryWhatIsArchived: XEP-0313 §6.1.1 and the storage hints.
func TestStoryWhatIsArchived(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		send := func(el *xmlstream.Element) { alice.Send(el) }
		state := story.Message(stanza.MessageChat, bob, "")
		state.AddChild(xmlstream.NewElement("composing", stanza.NSChatStates))
		send(state)
		send(story.Message(stanza.MessageHeadline, bob, "headline"))
		noStore := story.Chat(bob, "no-store")
		noStore.AddChild(xmlstream.NewElement("no-store", NSHints))
		send(noStore)
		send(story.Message(stanza.MessageNormal, bob, "normal"))
		omemo := story.Message(stanza.MessageChat, bob, "")
		omemo.AddChild(xmlstream.NewElement("encrypted", "urn:xmpp:omemo:2"))
		send(omemo)
		store := story.Message(stanza.MessageChat, bob, "")
		store.AddChild(xmlstream.NewElement("store", NSHints))
		send(store)
		send(story.Chat(bob, "last"))
		bob.Expect(story.IsChat("last"))

		for _, c := range []*story.Client{alice, bob} {
			p := query(t, c, story.MAMQuery{})
			assertBodies(t, c.Name(), p, "normal", "", "", "last")
			if p.msgs[1].Child("encrypted", "urn:xmpp:omemo:2") == nil || p.msgs[2].Child("store", NSHints) == nil {
				t.Errorf("%s: archived %s and %s", c.Name(), p.msgs[1], p.msgs[2])
			}
		}

		// A message to oneself is archived once.
		alice.Send(story.Chat(alice.JID(), "note to self"))
		alice.Expect(story.IsChat("note to self"))
		p := query(t, alice, story.MAMQuery{With: alice.Bare()})
		assertBodies(t, "to self", p, "note to self")
	})
}

// TestStoryQueries: every filter of XEP-0313 §4.1 and the paging of §4.3.
func TestStoryQueries(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		var want []string
		for i := range 10 {
			body := "m" + strconv.Itoa(i)
			alice.Send(story.Chat(bob, body))
			bob.Expect(story.IsChat(body))
			want = append(want, body)
		}
		for i := range 2 {
			body := "c" + strconv.Itoa(i)
			carol.Send(story.Chat(bob.JID(), body))
			bob.Expect(story.IsChat(body))
			want = append(want, body)
		}

		all := query(t, bob, story.MAMQuery{})
		assertBodies(t, "everything", all, want...)
		set := all.set()
		if !all.complete() || set.ChildText("count", NSRSM) != "12" ||
			set.ChildText("first", NSRSM) != all.uids[0] || set.ChildText("last", NSRSM) != all.uids[11] {
			t.Errorf("fin of the whole archive: %s", all.fin)
		}
		for i := 1; i < len(all.stamp); i++ {
			if all.stamp[i].Before(all.stamp[i-1]) {
				t.Errorf("stamps out of order: %v", all.stamp)
			}
		}
		uid := all.uids

		// with: a bare JID matches every resource, a full JID only itself.
		assertBodies(t, "with alice", query(t, bob, story.MAMQuery{With: alice.Bare()}), want[:10]...)
		assertBodies(t, "with carol's resource", query(t, bob, story.MAMQuery{With: carol.JID()}), "c0", "c1")
		other, _ := jid.New(alice.JID().Local(), alice.JID().Domain(), "elsewhere")
		none := query(t, bob, story.MAMQuery{With: other})
		if len(none.msgs) != 0 || !none.complete() || none.set().ChildText("count", NSRSM) != "0" {
			t.Errorf("with another resource: %q %s", none.bodies(), none.fin)
		}

		// start and end are inclusive.
		assertBodies(t, "m3 to m6", query(t, bob, story.MAMQuery{Start: all.stamp[3], End: all.stamp[6]}), want[3:7]...)
		assertBodies(t, "from c0", query(t, bob, story.MAMQuery{Start: all.stamp[10]}), "c0", "c1")
		assertBodies(t, "until m1", query(t, bob, story.MAMQuery{End: all.stamp[1]}), "m0", "m1")

		// after-id and before-id are exclusive; ids picks messages.
		assertBodies(t, "between", query(t, bob, story.MAMQuery{AfterID: uid[2], BeforeID: uid[6]}), "m3", "m4", "m5")
		assertBodies(t, "ids", query(t, bob, story.MAMQuery{IDs: []string{uid[4], uid[1]}}), "m1", "m4")
		assertBodies(t, "ids with", query(t, bob, story.MAMQuery{IDs: []string{uid[4], uid[10]}, With: carol.Bare()}), "c0")

		// Paging forwards with RSM <after/>.
		p1 := query(t, bob, story.MAMQuery{Max: 5})
		assertBodies(t, "page 1", p1, want[:5]...)
		if p1.complete() || p1.set().ChildText("last", NSRSM) != uid[4] {
			t.Errorf("page 1 fin: %s", p1.fin)
		}
		p2 := query(t, bob, story.MAMQuery{Max: 5, After: uid[4]})
		assertBodies(t, "page 2", p2, want[5:10]...)
		p3 := query(t, bob, story.MAMQuery{Max: 5, After: uid[9]})
		assertBodies(t, "page 3", p3, want[10:]...)
		if !p3.complete() {
			t.Errorf("page 3 is the end: %s", p3.fin)
		}
		// After a cursor the page is not the whole result set: no count,
		// no index (they would be those of the page).
		if p3.set().Child("count", NSRSM) != nil || p3.set().Child("first", NSRSM).Attr("index") != "" {
			t.Errorf("page 3 after a cursor claims a count: %s", p3.fin)
		}

		// Paging backwards: the last page, then <before/>.
		b1 := query(t, bob, story.MAMQuery{Max: 5, Last: true})
		assertBodies(t, "last page", b1, want[7:]...)
		if b1.complete() || b1.set().ChildText("first", NSRSM) != uid[7] {
			t.Errorf("last page fin: %s", b1.fin)
		}
		b2 := query(t, bob, story.MAMQuery{Max: 5, Before: uid[7]})
		assertBodies(t, "before m7", b2, want[2:7]...)
		b3 := query(t, bob, story.MAMQuery{Max: 5, Before: uid[2]})
		assertBodies(t, "before m2", b3, "m0", "m1")
		if !b3.complete() {
			t.Errorf("the first page backwards is complete: %s", b3.fin)
		}
		if b3.set().Child("count", NSRSM) != nil {
			t.Errorf("a page before a cursor claims a count: %s", b3.fin)
		}

		// flip-page: the same page, newest first; first and last unchanged.
		f := query(t, bob, story.MAMQuery{Max: 3, FlipPage: true})
		assertBodies(t, "flipped", f, "m2", "m1", "m0")
		if f.set().ChildText("first", NSRSM) != uid[0] || f.set().ChildText("last", NSRSM) != uid[2] {
			t.Errorf("flipped fin: %s", f.fin)
		}

		// max 0: the count only (XEP-0059 §2.7).
		countOnly := story.MAM(story.MAMQuery{})
		countOnly.Child("query", NS).AddChild(xmlstream.NewElement("set", NSRSM).AddChild(xmlstream.NewElement("max", NSRSM).AddText("0")))
		res := bob.IQ(countOnly)
		story.AssertStanza(t, res, story.IsIQResult(countOnly.Attr("id")))
		if n := res.Child("fin", NS).Child("set", NSRSM).ChildText("count", NSRSM); n != "12" {
			t.Errorf("count only: %s", res)
		}

		// urn:xmpp:mam:1 is answered in its own namespace.
		v1 := query(t, bob, story.MAMQuery{NS: NSv1, With: carol.Bare()})
		assertBodies(t, "mam:1", v1, "c0", "c1")

		// Metadata (§5): the first and last message.
		md := bob.IQ(story.IQGet(nil, xmlstream.NewElement("metadata", NS)))
		m := md.Child("metadata", NS)
		if m == nil || m.Child("start", NS).Attr("id") != uid[0] || m.Child("end", NS).Attr("id") != uid[11] {
			t.Errorf("metadata: %s", md)
		}
		if st, err := stanza.ParseTime(m.Child("end", NS).Attr("timestamp")); err != nil || !st.Equal(all.stamp[11]) {
			t.Errorf("metadata end timestamp %v %v, want %v", st, err, all.stamp[11])
		}

		// The search form (§4.1.5).
		form := bob.IQ(story.IQGet(nil, xmlstream.NewElement("query", NS)))
		var fields []string
		for f := range form.Child("query", NS).Child("x", NSForm).ChildrenNamed("field", NSForm) {
			fields = append(fields, f.Attr("var"))
		}
		if !slices.Equal(fields, []string{"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"}) {
			t.Errorf("form fields %q", fields)
		}
	})
}

// TestStoryQueryErrors: the errors of XEP-0313 §4.1 and §4.3.
func TestStoryQueryErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		alice.Send(story.Chat(bob, "one"))
		bob.Expect(story.IsChat("one"))
		aliceUID := query(t, alice, story.MAMQuery{}).uids[0]

		for _, tc := range []struct {
			name string
			q    story.MAMQuery
		}{
			{"unknown after-id", story.MAMQuery{AfterID: "nope"}},
			{"before-id of another archive", story.MAMQuery{BeforeID: aliceUID}},
			{"unknown ids", story.MAMQuery{IDs: []string{"0000000000000000000000000a"}}},
			{"unknown RSM after", story.MAMQuery{After: aliceUID}},
			{"unknown RSM before", story.MAMQuery{Before: "x"}},
		} {
			t.Logf("%s", tc.name)
			queryError(t, bob, story.MAM(tc.q), "item-not-found")
		}

		withField := func(name, value string) *xmlstream.Element {
			iq := story.MAM(story.MAMQuery{})
			iq.Child("query", NS).Child("x", NSForm).AddChild(xmlstream.NewElement("field", NSForm).SetAttr("var", name).
				AddChild(xmlstream.NewElement("value", NSForm).AddText(value)))
			return iq
		}
		queryError(t, bob, withField("color", "blue"), "feature-not-implemented")
		queryError(t, bob, withField("with", "@bad@"), "bad-request")
		queryError(t, bob, withField("start", "yesterday"), "bad-request")

		index := story.MAM(story.MAMQuery{})
		index.Child("query", NS).AddChild(xmlstream.NewElement("set", NSRSM).AddChild(xmlstream.NewElement("index", NSRSM).AddText("3")))
		queryError(t, bob, index, "feature-not-implemented")

		// §8: another user's archive.
		queryError(t, bob, story.MAM(story.MAMQuery{To: alice.Bare()}), "forbidden")
	})
}

// TestStoryPageSizeLimit: a server maximum page size, whatever the
// client asks.
func TestStoryPageSizeLimit(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.mam]\ndefault_page_size = 2\nmax_page_size = 3"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		for i := range 5 {
			alice.Send(story.Chat(bob, strconv.Itoa(i)))
		}
		bob.Expect(story.IsChat("4"))
		assertBodies(t, "default size", query(t, bob, story.MAMQuery{}), "0", "1")
		p := query(t, bob, story.MAMQuery{Max: 100})
		assertBodies(t, "capped", p, "0", "1", "2")
		if p.complete() {
			t.Errorf("a capped page is not complete: %s", p.fin)
		}
	})
}

func prefsSet(def string, always, never []jid.JID) *xmlstream.Element {
	p := xmlstream.NewElement("prefs", NS).SetAttr("default", def)
	for _, l := range []struct {
		name string
		jids []jid.JID
	}{{"always", always}, {"never", never}} {
		c := xmlstream.NewElement(l.name, NS)
		for _, j := range l.jids {
			c.AddChild(xmlstream.NewElement("jid", NS).AddText(j.String()))
		}
		p.AddChild(c)
	}
	return story.IQSet(nil, p)
}

// TestStoryPreferences: XEP-0441.
func TestStoryPreferences(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		res := bob.IQ(story.IQGet(nil, xmlstream.NewElement("prefs", NS)))
		if p := res.Child("prefs", NS); p == nil || p.Attr("default") != "always" {
			t.Fatalf("default prefs: %s", res)
		}

		// default never, carol always.
		res = bob.IQ(prefsSet("never", []jid.JID{carol.Bare()}, nil))
		p := res.Child("prefs", NS)
		if p == nil || p.Attr("default") != "never" || p.Child("always", NS).ChildText("jid", NS) != carol.Bare().String() {
			t.Fatalf("set prefs result: %s", res)
		}
		alice.Send(story.Chat(bob, "from alice"))
		bob.Expect(story.IsChat("from alice"))
		carol.Send(story.Chat(bob, "from carol"))
		bob.Expect(story.IsChat("from carol"))
		assertBodies(t, "never but carol", query(t, bob, story.MAMQuery{}), "from carol")
		// The preferences are bob's: alice keeps her outgoing message.
		assertBodies(t, "alice's archive", query(t, alice, story.MAMQuery{}), "from alice")

		// never wins over always, and a domain matches its users.
		domain, _ := jid.New("", bob.Bare().Domain(), "")
		bob.IQ(prefsSet("always", []jid.JID{carol.Bare()}, []jid.JID{domain}))
		carol.Send(story.Chat(bob, "carol again"))
		bob.Expect(story.IsChat("carol again"))
		assertBodies(t, "never the domain", query(t, bob, story.MAMQuery{}), "from carol")

		// roster: only contacts.
		bob.IQ(prefsSet("roster", nil, nil))
		alice.Send(story.Chat(bob, "stranger"))
		bob.Expect(story.IsChat("stranger"))
		story.AssertStanza(t, bob.IQ(story.RosterSet(alice.Bare(), "Alice")), story.IsIQ("result"))
		alice.Send(story.Chat(bob, "contact"))
		bob.Expect(story.IsChat("contact"))
		assertBodies(t, "roster", query(t, bob, story.MAMQuery{}), "from carol", "contact")

		res = bob.IQ(story.IQGet(nil, xmlstream.NewElement("prefs", NS)))
		if p := res.Child("prefs", NS); p == nil || p.Attr("default") != "roster" {
			t.Errorf("prefs after set: %s", res)
		}
		bad := prefsSet("sometimes", nil, nil)
		story.AssertStanza(t, bob.IQ(bad), story.IsStanzaError("modify", "bad-request"))
	})
}

// TestStoryArchiveAgreesWithDelivery: users with two resources each
// exchange messages at random, to bare and to full JIDs; each archive
// holds exactly what its user sent and received, once per account however
// many resources got it, under the stanza ID its resources got, and as
// they got it.
func TestStoryArchiveAgreesWithDelivery(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"a": 2, "b": 2, "c": 2}, func(a1, a2, b1, b2, c1, c2 *story.Client) {
		accounts := [][]*story.Client{{a1, a2}, {b1, b2}, {c1, c2}}
		all := []*story.Client{a1, a2, b1, b2, c1, c2}
		type entry struct {
			peer     string
			outgoing bool
		}
		want := map[jid.JID]map[string]entry{}
		for _, acct := range accounts {
			want[acct[0].Bare()] = map[string]entry{}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 60 {
			from := all[rng.IntN(len(all))]
			to := accounts[rng.IntN(len(accounts))]
			if to[0].Bare() == from.Bare() {
				continue
			}
			body := fmt.Sprintf("msg %d", i)
			var addr story.Addr = to[0].Bare()
			if i%2 == 0 {
				addr = to[rng.IntN(2)].JID()
			}
			from.Send(story.Chat(addr, body))
			want[from.Bare()][body] = entry{to[0].Bare().String(), true}
			want[to[0].Bare()][body] = entry{from.Bare().String(), false}
		}
		// Each client's stanzas are routed in order: its ping's answer
		// means its messages were handed to their recipients' sessions;
		// then a message to itself comes after all of them.
		for _, c := range all {
			c.IQ(story.Ping(nil))
		}
		delivered := map[jid.JID]map[string][]*xmlstream.Element{} // account → body → copies
		for _, c := range all {
			c.Send(story.Chat(c.JID(), "sync"))
			c.Expect(story.IsChat("sync"))
			if delivered[c.Bare()] == nil {
				delivered[c.Bare()] = map[string][]*xmlstream.Element{}
			}
			for _, p := range c.Pending() {
				if body := p.El.ChildText("body", stanza.NSClient); p.El.Name == "message" && body != "sync" && body != "" {
					delivered[c.Bare()][body] = append(delivered[c.Bare()][body], p.El)
				}
			}
		}
		for _, acct := range accounts {
			u := acct[0]
			p := query(t, u, story.MAMQuery{Max: 250, With: nil})
			got := 0
			for i, m := range p.msgs {
				body := m.ChildText("body", stanza.NSClient)
				if body == "sync" {
					continue
				}
				got++
				w, ok := want[u.Bare()][body]
				from, _ := jid.Parse(m.Attr("from"))
				to, _ := jid.Parse(m.Attr("to"))
				switch {
				case !ok:
					t.Errorf("%s: unexpected archived %s", u.Bare(), m)
				case w.outgoing && (from.Bare() != u.Bare() || to.Bare().String() != w.peer):
					t.Errorf("%s: outgoing %q archived as %s", u.Bare(), body, m)
				case !w.outgoing && (to.Bare() != u.Bare() || from.Bare().String() != w.peer):
					t.Errorf("%s: incoming %q archived as %s", u.Bare(), body, m)
				case !w.outgoing:
					copies := delivered[u.Bare()][body]
					if len(copies) == 0 {
						t.Errorf("%s: %q archived but never delivered", u.Bare(), body)
					}
					for _, c := range copies {
						if id := stanzaID(t, c, u.Bare()); id != p.uids[i] {
							t.Errorf("%s: %q delivered with stanza-id %q, archived as %q", u.Bare(), body, id, p.uids[i])
						}
						if clean := withoutStanzaIDs(c); !xmlstream.Equal(clean, m) {
							t.Errorf("%s: delivered\n%s\narchived\n%s", u.Bare(), clean, m)
						}
					}
				}
			}
			if got != len(want[u.Bare()]) {
				t.Errorf("%s: %d archived, want %d (once per account)", u.Bare(), got, len(want[u.Bare()]))
			}
		}
	})
}

// withoutStanzaIDs is el without its <stanza-id/> children.
func withoutStanzaIDs(el *xmlstream.Element) *xmlstream.Element {
	c := el.ShallowCopy()
	c.Children = c.Children[:0]
	for _, n := range el.Children {
		if n.Elem != nil && n.Elem.Name == "stanza-id" && n.Elem.NS == NSSID {
			continue
		}
		c.Children = append(c.Children, n)
	}
	return c
}

// TestStoryAckedIsArchived: when the server acknowledges a message
// (XEP-0198 <a/>), both archives hold it on disk — the writer's queue
// does not count.
func TestStoryAckedIsArchived(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	store := srv.Store().(storage.ArchiveStore)
	story.RunWith(t, srv, story.Users{"alice": 1, "bob": 1}, story.Options{StreamManagement: true}, func(alice, bob *story.Client) {
		const n = 200
		for i := range n {
			alice.Send(story.Chat(bob, strconv.Itoa(i)))
		}
		alice.Send(xmlstream.NewElement("r", story.NSSM))
		alice.Expect(story.IsSMAck())
		ctx := context.Background()
		for _, owner := range []jid.JID{alice.Bare(), bob.Bare()} {
			if got, err := store.CountArchive(ctx, storage.ArchiveQuery{Owner: owner}); err != nil || got != n {
				t.Errorf("archive of %s after the ack: %d messages (%v), want %d", owner, got, err, n)
			}
		}
	})
}

// TestStoryRemovedWithUser: an account's archive and preferences go
// with it; its peers keep theirs.
func TestStoryRemovedWithUser(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	store := srv.Store().(storage.ArchiveStore)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		acct := story.NewAccount(t, srv, "bob")
		bob := story.MustConnect(t, srv, acct, story.Options{Name: "bob"})
		story.AssertStanza(t, bob.IQ(prefsSet("always", []jid.JID{alice.Bare()}, nil)), story.IsIQ("result"))
		alice.Send(story.Chat(bob, "hi"))
		bob.Expect(story.IsChat("hi"))
		query(t, bob, story.MAMQuery{})
		ctx := context.Background()
		if err := srv.RemoveUser(ctx, acct.JID.Local()); err != nil {
			t.Fatal(err)
		}
		if n, err := store.CountArchive(ctx, storage.ArchiveQuery{Owner: acct.JID}); err != nil || n != 0 {
			t.Errorf("bob's archive after removal: %d %v", n, err)
		}
		if _, ok, err := store.ArchivePrefs(ctx, acct.JID); err != nil || ok {
			t.Errorf("bob's preferences after removal: %v %v", ok, err)
		}
		assertBodies(t, "alice's archive", query(t, alice, story.MAMQuery{}), "hi")
	})
}

// TestStoryQueryIDs: an 'ids' field (XEP-0313 §4.1.3) picks messages of
// the archive, in archive order; one UID that is not in it (unknown,
// another archive's, not even decodable) fails the whole query with
// item-not-found naming the first such UID of the field.
func TestStoryQueryIDs(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		for i := range 3 {
			alice.Send(story.Chat(bob, "m"+strconv.Itoa(i)))
			bob.Expect(story.IsChat("m" + strconv.Itoa(i)))
		}
		uid := query(t, bob, story.MAMQuery{}).uids
		aliceUID := query(t, alice, story.MAMQuery{}).uids[0]

		p := query(t, bob, story.MAMQuery{IDs: []string{uid[2], uid[0], uid[2]}})
		assertBodies(t, "ids in archive order, once", p, "m0", "m2")
		if !p.complete() || p.set().ChildText("count", NSRSM) != "2" {
			t.Errorf("fin: %s", p.fin)
		}

		for _, tc := range []struct {
			name string
			ids  []string
			bad  string
		}{
			{"another archive's", []string{uid[0], aliceUID, uid[1]}, aliceUID},
			{"the first of two unknown", []string{uid[0], aliceUID, "garbage"}, aliceUID},
			{"an undecodable one first", []string{uid[0], "garbage", aliceUID}, "garbage"},
			{"only unknown", []string{"garbage"}, "garbage"},
		} {
			iq := story.MAM(story.MAMQuery{IDs: tc.ids})
			assertExactly(t, tc.name, bob.IQ(iq), fmt.Sprintf(`<iq xmlns='jabber:client' type='error' id='%s' to='%s'>%s<error type='cancel'>`+
				`<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`+
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no message %s in the archive</text></error></iq>`,
				iq.Attr("id"), bob.JID(), iq.Child("query", NS), tc.bad))
		}

		// Metadata (§5) of an empty archive: an empty <metadata/>.
		iq := story.IQGet(nil, xmlstream.NewElement("metadata", NS))
		assertExactly(t, "metadata of an empty archive", carol.IQ(iq),
			fmt.Sprintf(`<iq xmlns='jabber:client' type='result' id='%s' to='%s'><metadata xmlns='%s'/></iq>`, iq.Attr("id"), carol.JID(), NS))
	})
}

// assertExactly compares a stanza with the XML of the one expected
// (attributes in any order).
func assertExactly(t *testing.T, what string, got *xmlstream.Element, want string) {
	t.Helper()
	w, err := xmlstream.Parse([]byte(want))
	if err != nil {
		t.Fatalf("%s: the expected stanza: %v", what, err)
	}
	if !xmlstream.Equal(got, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}
