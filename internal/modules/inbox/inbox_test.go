package inbox_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/dataform"
	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const nsInbox = story.NSInbox

// withID sets the id of a message.
func withID(el *xmlstream.Element, id string) *xmlstream.Element { return el.SetAttr("id", id) }

// exchange sends a chat message from one client to another and waits
// until it is delivered, returning it as received.
func exchange(t *testing.T, from, to *story.Client, body string) *xmlstream.Element {
	t.Helper()
	id := story.NewID()
	from.Send(withID(story.Chat(to.Bare(), body), id))
	return to.Expect(story.IsChat(body), hasID(id))
}

func hasID(id string) story.Predicate {
	return story.Predicate{Desc: "with id " + id, Match: func(el *xmlstream.Element) bool { return el.Attr("id") == id }}
}

// flush waits until the server handled everything c sent before (one
// client's stanzas are handled in order).
func flush(t *testing.T, c *story.Client) {
	t.Helper()
	story.AssertStanza(t, c.IQ(story.Ping(nil)), story.IsIQ("result"))
}

// byPeer indexes results by the entry's peer.
func byPeer(t *testing.T, user story.Addr, es []story.InboxEntry) map[string]story.InboxEntry {
	t.Helper()
	m := map[string]story.InboxEntry{}
	for _, e := range es {
		m[e.With(user)] = e
	}
	return m
}

func finValue(t *testing.T, fin *xmlstream.Element, name string) int {
	t.Helper()
	n, err := strconv.Atoi(fin.ChildText(name, nsInbox))
	if err != nil {
		t.Fatalf("fin %s: %v in %s", name, err, fin)
	}
	return n
}

func checkFin(t *testing.T, fin *xmlstream.Element, count, unread, active int) {
	t.Helper()
	if c, u, a := finValue(t, fin, "count"), finValue(t, fin, "unread-messages"), finValue(t, fin, "active-conversations"); c != count || u != unread || a != active {
		t.Errorf("fin count/unread/active %d/%d/%d, want %d/%d/%d: %s", c, u, a, count, unread, active, fin)
	}
}

// finSet returns the RSM <set/> of a fin, failing the test unless there
// is one counting count entries in all.
func finSet(t *testing.T, fin *xmlstream.Element, count int) *xmlstream.Element {
	t.Helper()
	set := fin.Child("set", stanza.NSRSM)
	if set == nil || set.ChildText("count", stanza.NSRSM) != strconv.Itoa(count) {
		t.Fatalf("no set counting %d in %s", count, fin)
	}
	return set
}

func peers(user story.Addr, es []story.InboxEntry) string {
	var out []string
	for _, e := range es {
		// Story accounts are name-<random>@domain.
		local := strings.SplitN(e.With(user), "@", 2)[0]
		if i := strings.LastIndexByte(local, '-'); i > 0 {
			local = local[:i]
		}
		out = append(out, local)
	}
	return strings.Join(out, " ")
}

func errorOf(t *testing.T, c *story.Client, iq *xmlstream.Element, typ, condition string) {
	t.Helper()
	story.AssertStanza(t, c.IQ(iq), story.IsIQ("error"), story.IsStanzaError(typ, condition))
}

// TestStoryInboxDisco: the feature is among the server's (spec
// "Discovery").
func TestStoryInboxDisco(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		info := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		story.AssertStanza(t, info, story.IsIQ("result"))
		found := false
		if q := info.Child("query", "http://jabber.org/protocol/disco#info"); q != nil {
			for c := range q.Elements() {
				found = found || c.Name == "feature" && c.Attr("var") == nsInbox
			}
		}
		if !found {
			t.Errorf("inbox not advertised: %s", info)
		}
	})
}

// TestStoryInboxQueryForm: the IQ get returns the fetch form (spec
// "Query form"): FORM_TYPE, and exactly the fields start, end, order
// (asc or desc, desc by default), hidden_read, box (all, the reserved
// boxes and the configured ones) and archive, with their types.
func TestStoryInboxQueryForm(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.inbox]\nboxes = [\"favourites\"]"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		res := alice.IQ(story.InboxForm())
		story.AssertStanza(t, res, story.IsIQ("result"))
		checkForm(t, res.Child("query", nsInbox), dataform.TypeForm, []formField{
			{dataform.FormTypeVar, dataform.Hidden, []string{nsInbox}, nil},
			{"start", dataform.TextSingle, nil, nil},
			{"end", dataform.TextSingle, nil, nil},
			{"order", dataform.ListSingle, []string{"desc"}, []string{"asc", "desc"}},
			{"hidden_read", dataform.Boolean, []string{"false"}, nil},
			{"box", dataform.ListSingle, []string{"all"}, []string{"all", "inbox", "archive", "bin", "favourites"}},
			{"archive", dataform.Boolean, nil, nil},
		})
	})
}

// formField is what checkForm compares of a field: var, type, values and
// the values of the options (labels are for people).
type formField struct {
	Var, Type string
	Values    []string
	Options   []string
}

// checkForm parses the one data form in parent and compares its type and
// fields, in order, with want.
func checkForm(t *testing.T, parent *xmlstream.Element, typ string, want []formField) {
	t.Helper()
	if parent == nil {
		t.Fatal("no payload")
	}
	var forms []*xmlstream.Element
	for c := range parent.Elements() {
		if c.Name == "x" && c.NS == dataform.NS {
			forms = append(forms, c)
		}
	}
	if len(forms) != 1 {
		t.Fatalf("%d forms in %s", len(forms), parent)
	}
	f, err := dataform.Parse(forms[0])
	if err != nil {
		t.Fatalf("%v: %s", err, forms[0])
	}
	if f.Type != typ {
		t.Errorf("form type %q, want %q", f.Type, typ)
	}
	var got []formField
	for _, fl := range f.Fields {
		g := formField{Var: fl.Var, Type: fl.Type, Values: fl.Values}
		for _, o := range fl.Options {
			g.Options = append(g.Options, o.Value)
		}
		got = append(got, g)
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("fields\n got %q\nwant %q\nin %s", got, want, forms[0])
	}
}

// TestStoryInboxBasics: a conversation appears in both inboxes with its
// last message (forwarded, with a delay), the receiver's unread count,
// box, archive and mute; the fin sums them up; queryid is echoed, and
// is the IQ id without one.
func TestStoryInboxBasics(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		before := time.Now().Add(-time.Millisecond)
		exchange(t, alice, bob, "one")
		got := exchange(t, alice, bob, "two")
		exchange(t, carol, bob, "hi bob")
		after := time.Now().Add(time.Millisecond)

		es, fin := bob.FetchInbox(story.InboxQuery{QueryID: "q1"})
		checkFin(t, fin, 2, 3, 2)
		if p := peers(bob.Bare(), es); p != "carol alice" {
			t.Fatalf("bob's inbox, newest first: %q", p)
		}
		e := byPeer(t, bob.Bare(), es)[alice.Bare().String()]
		if e.QueryID != "q1" || e.Unread != 2 || e.Box != "inbox" || e.Archive || e.Mute != "0" || e.Body() != "two" {
			t.Errorf("bob's entry for alice: %+v %s", e, e.El)
		}
		if e.Stamp.Before(before) || e.Stamp.After(after) {
			t.Errorf("stamp %v not between %v and %v", e.Stamp, before, after)
		}
		// The last message is the message as delivered.
		if !xmlstream.Equal(e.Message, got) {
			t.Errorf("last message\n %s\nis not what bob got\n %s", e.Message, got)
		}
		story.AssertStanza(t, e.El, story.IsFrom(bob.Bare()), story.IsTo(bob.JID()))

		iq := story.InboxFetch(story.InboxQuery{})
		res := bob.IQ(iq)
		story.AssertStanza(t, res, story.IsInboxFin(iq.Attr("id")))
		bob.Expect(story.IsInboxResult(iq.Attr("id")))
		bob.Expect(story.IsInboxResult(iq.Attr("id")))

		// The sender's entry is read.
		es, fin = alice.FetchInbox(story.InboxQuery{})
		checkFin(t, fin, 1, 0, 0)
		if len(es) != 1 || es[0].Unread != 0 || es[0].Body() != "two" || es[0].With(alice.Bare()) != bob.Bare().String() {
			t.Errorf("alice's inbox: %+v", es)
		}
		// A reply makes bob's entry read and alice's unread.
		exchange(t, bob, alice, "back")
		es, _ = bob.FetchInbox(story.InboxQuery{})
		if e := byPeer(t, bob.Bare(), es)[alice.Bare().String()]; e.Unread != 0 || e.Body() != "back" {
			t.Errorf("after replying: %+v", e)
		}
		es, _ = alice.FetchInbox(story.InboxQuery{})
		if len(es) != 1 || es[0].Unread != 1 || es[0].Body() != "back" {
			t.Errorf("alice after the reply: %+v", es)
		}
	})
}

// TestStoryInboxContentOnly: only messages with a body count; chat
// states, receipts, headlines and errors do not.
func TestStoryInboxContentOnly(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		exchange(t, alice, bob, "content")
		// A normal message with a body is one too.
		alice.Send(story.Message(stanza.MessageNormal, bob.Bare(), "normal"))
		bob.Expect(story.IsMessageType(stanza.MessageNormal))
		es, _ := bob.FetchInbox(story.InboxQuery{})
		if len(es) != 1 || es[0].Unread != 2 || es[0].Body() != "normal" {
			t.Fatalf("bob's inbox after a normal message: %+v", es)
		}
		exchange(t, alice, bob, "content")
		alice.Send(story.Message(stanza.MessageChat, bob.Bare(), "").AddChild(xmlstream.NewElement("composing", stanza.NSChatStates)))
		alice.Send(story.Message(stanza.MessageHeadline, bob.Bare(), "a headline"))
		alice.Send(story.Message(stanza.MessageChat, bob.Bare(), "").AddChild(xmlstream.NewElement("received", "urn:xmpp:receipts").SetAttr("id", "x")))
		flush(t, alice)
		bob.Expect(story.IsMessageType(stanza.MessageHeadline))
		es, _ = bob.FetchInbox(story.InboxQuery{})
		if len(es) != 1 || es[0].Unread != 3 || es[0].Body() != "content" {
			t.Errorf("bob's inbox: %+v", es)
		}
		// A message to oneself is no conversation.
		alice.Send(story.Chat(alice.Bare(), "note to self"))
		flush(t, alice)
		es, _ = alice.FetchInbox(story.InboxQuery{})
		if p := peers(alice.Bare(), es); p != "bob" {
			t.Errorf("alice's inbox: %q", p)
		}
	})
}

// TestStoryInboxBlocked: a message the recipient's block list refuses
// (XEP-0191) never reaches the recipient's inbox (the inbox hook runs
// after the filters).
func TestStoryInboxBlocked(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		block := story.IQSet(nil, xmlstream.NewElement("block", "urn:xmpp:blocking").AddChild(
			xmlstream.NewElement("item", "urn:xmpp:blocking").SetAttr("jid", bob.Bare().String())))
		story.AssertStanza(t, alice.IQ(block), story.IsIQ("result"))
		bob.Send(story.Chat(alice.Bare(), "let me in"))
		bob.Expect(story.IsMessageType(stanza.MessageError))
		if es, _ := alice.FetchInbox(story.InboxQuery{Box: "all"}); len(es) != 0 {
			t.Errorf("alice's inbox has a blocked message: %+v", es)
		}
	})
}

// TestStoryInboxMarkers: a displayed marker (XEP-0333) for the last
// message resets the count; one for an older message does not (newer
// ones are still unread); a received marker does not by default; the
// configuration can add it.
func TestStoryInboxMarkers(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		first := exchange(t, alice, bob, "m1")
		last := exchange(t, alice, bob, "m2")
		unread := func(want int) {
			t.Helper()
			flush(t, bob)
			es, _ := bob.FetchInbox(story.InboxQuery{})
			if len(es) != 1 || es[0].Unread != want {
				t.Fatalf("unread: %+v, want %d", es, want)
			}
		}
		bob.Send(story.Marker(stanza.MessageChat, alice.Bare(), "received", last.Attr("id")))
		unread(2)
		bob.Send(story.Marker(stanza.MessageChat, alice.Bare(), "displayed", first.Attr("id")))
		unread(2)
		bob.Send(story.Marker(stanza.MessageChat, alice.Bare(), "displayed", last.Attr("id")))
		unread(0)
		alice.Expect(story.HasChild("displayed", story.NSChatMarkers))
		// The origin-id (XEP-0359) of the last message works too.
		oid := story.NewID()
		alice.Send(story.Chat(bob.Bare(), "m3").AddChild(xmlstream.NewElement("origin-id", stanza.NSStanzaID).SetAttr("id", oid)))
		bob.Expect(story.IsChat("m3"))
		unread(1)
		bob.Send(story.Marker(stanza.MessageChat, alice.Bare(), "displayed", oid))
		unread(0)
	})

	srv = servertest.Start(t, servertest.Modules("[modules.inbox]\nreset_markers = [\"received\", \"displayed\"]"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		m := exchange(t, alice, bob, "m1")
		bob.Send(story.Marker(stanza.MessageChat, alice.Bare(), "received", m.Attr("id")))
		flush(t, bob)
		if es, _ := bob.FetchInbox(story.InboxQuery{}); len(es) != 1 || es[0].Unread != 0 {
			t.Errorf("received marker configured: %+v", es)
		}
	})
}

// TestStoryInboxFilters: order, start and end, hidden_read, and RSM
// paging by max, before and after, the page markers in the fin's <set/>,
// and a count-only request.
func TestStoryInboxFilters(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	users := story.Users{"alice": 1, "bob": 1, "carol": 1, "dave": 1, "eve": 1}
	story.Run(t, srv, users, func(alice, bob, carol, dave, eve *story.Client) {
		// alice's conversations, oldest first: bob (read), carol, dave
		// (read), eve.
		exchange(t, alice, bob, "to bob")
		exchange(t, carol, alice, "from carol")
		exchange(t, alice, dave, "to dave")
		exchange(t, eve, alice, "from eve")
		all, fin := alice.FetchInbox(story.InboxQuery{})
		if p := peers(alice.Bare(), all); p != "eve dave carol bob" {
			t.Fatalf("default order: %q", p)
		}
		checkFin(t, fin, 4, 2, 2)
		if fin.Child("set", stanza.NSRSM) != nil {
			t.Errorf("a <set/> without RSM nor truncation: %s", fin)
		}
		es, _ := alice.FetchInbox(story.InboxQuery{Order: "asc"})
		if p := peers(alice.Bare(), es); p != "bob carol dave eve" {
			t.Errorf("asc: %q", p)
		}
		es, fin = alice.FetchInbox(story.InboxQuery{HiddenRead: story.Bool(true)})
		if p := peers(alice.Bare(), es); p != "eve carol" {
			t.Errorf("hidden_read: %q", p)
		}
		checkFin(t, fin, 2, 2, 2)
		es, _ = alice.FetchInbox(story.InboxQuery{Start: all[2].Stamp, End: all[1].Stamp})
		if p := peers(alice.Bare(), es); p != "dave carol" {
			t.Errorf("start/end: %q", p)
		}
		es, _ = alice.FetchInbox(story.InboxQuery{Start: all[1].Stamp})
		if p := peers(alice.Bare(), es); p != "eve dave" {
			t.Errorf("start: %q", p)
		}

		// Paging newest first: max, then before the last one returned.
		es, fin = alice.FetchInbox(story.InboxQuery{Max: 3})
		if p := peers(alice.Bare(), es); p != "eve dave carol" {
			t.Fatalf("page 1: %q", p)
		}
		set := finSet(t, fin, 4)
		if set.ChildText("first", stanza.NSRSM) != stanza.FormatTime(es[0].Stamp) {
			t.Fatalf("page 1 set: %s", fin)
		}
		es, fin = alice.FetchInbox(story.InboxQuery{Max: 3, Before: set.ChildText("last", stanza.NSRSM)})
		if p := peers(alice.Bare(), es); p != "bob" {
			t.Fatalf("page 2: %q (%s)", p, fin)
		}
		checkFin(t, fin, 1, 0, 0)
		// Oldest first, paging with after.
		es, fin = alice.FetchInbox(story.InboxQuery{Order: "asc", Max: 2})
		if p := peers(alice.Bare(), es); p != "bob carol" {
			t.Fatalf("asc page 1: %q", p)
		}
		es, _ = alice.FetchInbox(story.InboxQuery{Order: "asc", Max: 2, After: finSet(t, fin, 4).ChildText("last", stanza.NSRSM)})
		if p := peers(alice.Bare(), es); p != "dave eve" {
			t.Fatalf("asc page 2: %q", p)
		}
		// RSM markers override start and end.
		es, _ = alice.FetchInbox(story.InboxQuery{End: all[3].Stamp, Before: stanza.FormatTime(all[0].Stamp)})
		if p := peers(alice.Bare(), es); p != "dave carol bob" {
			t.Errorf("before overrides end: %q", p)
		}
		es, _ = alice.FetchInbox(story.InboxQuery{Start: all[1].Stamp, After: stanza.FormatTime(all[3].Stamp)})
		if p := peers(alice.Bare(), es); p != "eve dave carol" {
			t.Errorf("after overrides start: %q", p)
		}
		es, _ = alice.FetchInbox(story.InboxQuery{Order: "asc", Start: all[1].Stamp, After: stanza.FormatTime(all[3].Stamp)})
		if p := peers(alice.Bare(), es); p != "carol dave eve" {
			t.Errorf("after overrides start, oldest first: %q", p)
		}
		// Each marker overrides its own bound only: after and end, before
		// and start.
		es, _ = alice.FetchInbox(story.InboxQuery{End: all[1].Stamp, After: stanza.FormatTime(all[3].Stamp)})
		if p := peers(alice.Bare(), es); p != "dave carol" {
			t.Errorf("after with end: %q", p)
		}
		es, _ = alice.FetchInbox(story.InboxQuery{Start: all[2].Stamp, Before: stanza.FormatTime(all[0].Stamp)})
		if p := peers(alice.Bare(), es); p != "dave carol" {
			t.Errorf("before with start: %q", p)
		}
		// <max>0</max>: the count only (XEP-0059 §2.7).
		es, fin = alice.FetchInbox(story.InboxQuery{MaxZero: true})
		if finSet(t, fin, 4); len(es) != 0 {
			t.Errorf("count only: %d results, %s", len(es), fin)
		}
	})
}

// TestStoryInboxMaxResultLimit: the server's limit caps a page, and the
// fin's <set/> tells the client where to go on.
func TestStoryInboxMaxResultLimit(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.inbox]\nmax_result_limit = 2"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1, "dave": 1}, func(alice, bob, carol, dave *story.Client) {
		exchange(t, bob, alice, "b")
		exchange(t, carol, alice, "c")
		exchange(t, dave, alice, "d")
		es, fin := alice.FetchInbox(story.InboxQuery{})
		if p := peers(alice.Bare(), es); p != "dave carol" {
			t.Fatalf("limited: %q", p)
		}
		set := finSet(t, fin, 3)
		es, _ = alice.FetchInbox(story.InboxQuery{Max: 10, Before: set.ChildText("last", stanza.NSRSM)})
		if p := peers(alice.Bare(), es); p != "bob" {
			t.Fatalf("next page: %q", p)
		}
	})
}

// TestStoryInboxMaxResultBytes: a page whose results would be too big for
// the client's output buffer ends early, with the fin's <set/> saying
// where to go on; at least one entry always comes.
func TestStoryInboxMaxResultBytes(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.inbox]\nmax_result_bytes = 2300"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1, "dave": 1}, func(alice, bob, carol, dave *story.Client) {
		long := strings.Repeat("x", 500)
		exchange(t, bob, alice, "b"+long)
		exchange(t, carol, alice, "c"+long)
		exchange(t, dave, alice, "d"+strings.Repeat(long, 5))
		es, fin := alice.FetchInbox(story.InboxQuery{})
		if p := peers(alice.Bare(), es); p != "dave" {
			t.Fatalf("page 1: %q", p)
		}
		set := finSet(t, fin, 3)
		checkFin(t, fin, 1, 1, 1)
		es, _ = alice.FetchInbox(story.InboxQuery{Before: set.ChildText("last", stanza.NSRSM)})
		if p := peers(alice.Bare(), es); p != "carol bob" {
			t.Fatalf("page 2: %q", p)
		}
	})
}

// TestStoryInboxBoxes: the archive, custom boxes and the bin, set with
// entry properties and queried with box (and the older archive field);
// the bin is hidden unless asked for, a new message brings an archived or
// binned entry back to the inbox, and emptying the bin deletes its
// entries.
func TestStoryInboxBoxes(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.inbox]\nboxes = [\"favourites\"]"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1, "dave": 1}, func(alice, bob, carol, dave *story.Client) {
		exchange(t, bob, alice, "b")
		exchange(t, carol, alice, "c")
		exchange(t, dave, alice, "d")
		set := func(with story.Addr, box string) {
			t.Helper()
			story.AssertStanza(t, alice.IQ(story.InboxEntrySet(with, story.InboxProp("box", box))), story.IsIQ("result"))
			alice.Expect(story.IsInboxEntryPush(with))
		}
		set(bob.Bare(), "archive")
		set(carol.Bare(), "favourites")
		set(dave.Bare(), "bin")
		for _, tc := range []struct {
			q    story.InboxQuery
			want string
		}{
			{story.InboxQuery{}, "carol bob"},
			{story.InboxQuery{Box: "all"}, "dave carol bob"},
			{story.InboxQuery{Box: "inbox"}, ""},
			{story.InboxQuery{Box: "archive"}, "bob"},
			{story.InboxQuery{Box: "favourites"}, "carol"},
			{story.InboxQuery{Box: "bin"}, "dave"},
			{story.InboxQuery{Archive: story.Bool(true)}, "bob"},
			{story.InboxQuery{Archive: story.Bool(false)}, ""},
			{story.InboxQuery{Archive: story.Bool(true), Box: "bin"}, "dave"},
		} {
			es, _ := alice.FetchInbox(tc.q)
			if p := peers(alice.Bare(), es); p != tc.want {
				t.Errorf("%+v: %q, want %q", tc.q, p, tc.want)
			}
		}
		es, _ := alice.FetchInbox(story.InboxQuery{Box: "archive"})
		if len(es) != 1 || es[0].Box != "archive" || !es[0].Archive {
			t.Errorf("archived entry: %+v", es)
		}
		// New messages: out of the archive and the bin, not out of a
		// custom box.
		exchange(t, bob, alice, "b2")
		exchange(t, carol, alice, "c2")
		exchange(t, dave, alice, "d2")
		es, _ = alice.FetchInbox(story.InboxQuery{Box: "inbox"})
		if p := peers(alice.Bare(), es); p != "dave bob" {
			t.Errorf("back in the inbox: %q", p)
		}
		// The older <archive/> property.
		story.AssertStanza(t, alice.IQ(story.InboxEntrySet(bob.Bare(), story.InboxProp("archive", "true"))), story.IsIQ("result"))
		set(dave.Bare(), "bin")
		res := alice.IQ(story.InboxEmptyBin())
		story.AssertStanza(t, res, story.IsIQ("result"))
		if n := res.Child("empty-bin", nsInbox).ChildText("num", nsInbox); n != "1" {
			t.Errorf("emptied %s entries: %s", n, res)
		}
		es, _ = alice.FetchInbox(story.InboxQuery{Box: "all"})
		if p := peers(alice.Bare(), es); p != "carol bob" {
			t.Errorf("after emptying the bin: %q", p)
		}
		if es, _ := alice.FetchInbox(story.InboxQuery{Box: "archive"}); peers(alice.Bare(), es) != "bob" {
			t.Errorf("archive property: %+v", es)
		}
	})
}

// TestStoryInboxEntryProperties: the form of the properties, one entry's
// properties (and last message with complete='true'), setting read, mute
// and box with the push to every resource before the result.
func TestStoryInboxEntryProperties(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1}, func(alice1, alice2, bob *story.Client) {
		exchange(t, bob, alice1, "one")
		exchange(t, bob, alice1, "two")
		exchange(t, bob, alice1, "three")

		form := alice1.IQ(story.InboxEntryGet(nil, false))
		story.AssertStanza(t, form, story.IsIQ("result"))
		checkForm(t, form.Child("query", story.NSInboxConversation), dataform.TypeForm, []formField{
			{dataform.FormTypeVar, dataform.Hidden, []string{story.NSInboxConversation}, nil},
			{"archive", dataform.Boolean, []string{"false"}, nil},
			{"read", dataform.Boolean, []string{"false"}, nil},
			{"mute", dataform.TextSingle, []string{"0"}, nil},
			{"box", dataform.ListSingle, []string{"inbox"}, []string{"inbox", "archive", "bin"}},
		})
		q := alice1.IQ(story.InboxEntryGet(bob.Bare(), false)).Child("query", story.NSInboxConversation)
		prop := func(q *xmlstream.Element, name string) string { return q.ChildText(name, story.NSInboxConversation) }
		if q == nil || prop(q, "box") != "inbox" || prop(q, "archive") != "false" || prop(q, "mute") != "0" || prop(q, "read") != "false" {
			t.Fatalf("properties: %s", q)
		}
		if q.Child("forwarded", stanza.NSForward) != nil {
			t.Errorf("last message without complete: %s", q)
		}
		q = alice1.IQ(story.InboxEntryGet(bob.Bare(), true)).Child("query", story.NSInboxConversation)
		fwd := q.Child("forwarded", stanza.NSForward)
		if fwd == nil || fwd.Child("delay", stanza.NSDelay) == nil || fwd.Child("message", stanza.NSClient).ChildText("body", stanza.NSClient) != "three" {
			t.Errorf("complete: %s", q)
		}

		// read=false leaves an unread count above 0 as it is: 3 stays 3.
		r := alice1.IQ(story.InboxEntrySet(bob.Bare(), story.InboxProp("read", "false")))
		story.AssertStanza(t, r, story.IsIQ("result"))
		if prop(r.Child("query", story.NSInboxConversation), "read") != "false" {
			t.Errorf("read=false on 3 unread: %s", r)
		}
		alice1.Expect(story.IsInboxEntryPush(bob.Bare()))
		alice2.Expect(story.IsInboxEntryPush(bob.Bare()))
		if es, _ := alice1.FetchInbox(story.InboxQuery{}); len(es) != 1 || es[0].Unread != 3 {
			t.Errorf("after read=false on 3 unread: %+v", es)
		}

		// read, then the push to both resources before the result.
		iq := story.InboxEntrySet(bob.Bare(), story.InboxProp("read", "true"))
		alice1.Send(iq)
		got := alice1.Collect(2)
		story.AssertStanza(t, got[0], story.IsInboxEntryPush(bob.Bare()), story.IsFrom(alice1.Bare()), story.IsTo(alice1.Bare()))
		story.AssertStanza(t, got[1], story.IsIQResult(iq.Attr("id")))
		// The push carries the entry's full properties, the result the same.
		x, r := got[0].Child("x", story.NSInboxConversation), got[1].Child("query", story.NSInboxConversation)
		if x == nil || r == nil {
			t.Fatalf("push %s\nresult %s", got[0], got[1])
		}
		if names(x) != "box archive mute read" || prop(x, "read") != "true" || prop(x, "box") != "inbox" || prop(x, "archive") != "false" || prop(x, "mute") != "0" {
			t.Errorf("push: %s", got[0])
		}
		if names(r) != names(x) {
			t.Errorf("result: %s", got[1])
		}
		for _, name := range []string{"box", "archive", "mute", "read"} {
			if prop(r, name) != prop(x, name) {
				t.Errorf("%s: %q in the result, %q in the push", name, prop(r, name), prop(x, name))
			}
		}
		alice2.Expect(story.IsInboxEntryPush(bob.Bare()))
		es, _ := alice1.FetchInbox(story.InboxQuery{})
		if len(es) != 1 || es[0].Unread != 0 {
			t.Errorf("after read=true: %+v", es)
		}
		// read=false makes a read conversation unread (1).
		res := alice1.IQ(story.InboxEntrySet(bob.Bare(), story.InboxProp("read", "false")))
		if prop(res.Child("query", story.NSInboxConversation), "read") != "false" {
			t.Errorf("read=false: %s", res)
		}
		es, _ = alice1.FetchInbox(story.InboxQuery{})
		if len(es) != 1 || es[0].Unread != 1 {
			t.Fatalf("after read=false on 0 unread: %+v", es)
		}
		// mute for an hour: an RFC 3339 time about an hour away.
		before := time.Now()
		res = alice1.IQ(story.InboxEntrySet(bob.Bare(), story.InboxProp("mute", "3600")))
		until, err := stanza.ParseTime(prop(res.Child("query", story.NSInboxConversation), "mute"))
		if err != nil || until.Before(before.Add(time.Hour-time.Second)) || until.After(time.Now().Add(time.Hour+time.Second)) {
			t.Errorf("mute: %s (%v)", res, err)
		}
		es, _ = alice1.FetchInbox(story.InboxQuery{})
		if es[0].Mute != prop(res.Child("query", story.NSInboxConversation), "mute") {
			t.Errorf("fetched mute %q", es[0].Mute)
		}
		// MongooseIM's <reset/>.
		reset := story.IQSet(nil, xmlstream.NewElement("reset", story.NSInboxConversation).SetAttr("jid", bob.Bare().String()))
		story.AssertStanza(t, alice1.IQ(reset), story.IsIQ("result"))
		alice1.Expect(story.IsInboxEntryPush(bob.Bare()))
		if es, _ = alice1.FetchInbox(story.InboxQuery{}); es[0].Unread != 0 {
			t.Errorf("after reset: %+v", es)
		}
		res = alice1.IQ(story.InboxEntrySet(bob.Bare(), story.InboxProp("mute", "0"), story.InboxProp("box", "archive")))
		if r := res.Child("query", story.NSInboxConversation); prop(r, "mute") != "0" || prop(r, "box") != "archive" || prop(r, "archive") != "true" {
			t.Errorf("unmute and archive: %s", res)
		}
	})
}

// names lists the names of el's children.
func names(el *xmlstream.Element) string {
	var out []string
	for c := range el.Elements() {
		out = append(out, c.Name)
	}
	return strings.Join(out, " ")
}

// TestStoryInboxErrors: bad forms, RSM, properties and unknown entries.
func TestStoryInboxErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		exchange(t, bob, alice, "hi")
		for _, q := range []story.InboxQuery{
			{Fields: map[string]string{"start": "yesterday"}},
			{Fields: map[string]string{"end": "2026-13-01T00:00:00Z"}},
			{Order: "sideways"},
			{Box: "nowhere"},
			{Fields: map[string]string{"hidden_read": "maybe"}},
			{Fields: map[string]string{"archive": "perhaps"}},
			{Fields: map[string]string{"colour": "blue"}},
			{FormType: "urn:example:other"},
			{Before: "not a time"},
			{After: "not a time"},
		} {
			errorOf(t, alice, story.InboxFetch(q), "modify", "bad-request")
		}
		bad := story.InboxFetch(story.InboxQuery{})
		bad.FirstChild().AddChild(xmlstream.NewElement("set", stanza.NSRSM).AddChild(xmlstream.NewElement("index", stanza.NSRSM).AddText("2")))
		errorOf(t, alice, bad, "cancel", "feature-not-implemented")
		bad = story.InboxFetch(story.InboxQuery{})
		bad.FirstChild().AddChild(xmlstream.NewElement("set", stanza.NSRSM).AddChild(xmlstream.NewElement("max", stanza.NSRSM).AddText("-1")))
		errorOf(t, alice, bad, "modify", "bad-request")
		errorOf(t, alice, story.IQSet(nil, xmlstream.NewElement("what", nsInbox)), "modify", "bad-request")
		errorOf(t, alice, story.IQGet(nil, xmlstream.NewElement("inbox", nsInbox)), "modify", "bad-request")

		for _, props := range [][]*xmlstream.Element{
			nil,
			{story.InboxProp("box", "nowhere")},
			{story.InboxProp("box", "all")},
			{story.InboxProp("mute", "-1")},
			{story.InboxProp("mute", "soon")},
			{story.InboxProp("read", "yes")},
			{story.InboxProp("archive", "maybe")},
			{story.InboxProp("colour", "blue")},
			{story.InboxProp("box", "bin"), story.InboxProp("archive", "true")},
			// One bad value and nothing changes.
			{story.InboxProp("box", "archive"), story.InboxProp("mute", "x")},
		} {
			errorOf(t, alice, story.InboxEntrySet(bob.Bare(), props...), "modify", "bad-request")
		}
		errorOf(t, alice, story.InboxEntrySet(nil, story.InboxProp("read", "true")), "modify", "bad-request")
		errorOf(t, alice, story.InboxEntrySet(story.RawAddr("@@bad"), story.InboxProp("read", "true")), "modify", "jid-malformed")
		errorOf(t, alice, story.InboxEntrySet(story.RawAddr("nobody@"+srv.Domain()), story.InboxProp("read", "true")), "cancel", "item-not-found")
		errorOf(t, alice, story.InboxEntryGet(story.RawAddr("nobody@"+srv.Domain()), false), "cancel", "item-not-found")
		errorOf(t, alice, story.InboxEntryGet(story.RawAddr("@@bad"), false), "modify", "jid-malformed")
		alice.ExpectNothing(50*time.Millisecond, story.IsInboxEntryPush(bob.Bare()))
		es, _ := alice.FetchInbox(story.InboxQuery{})
		if len(es) != 1 || es[0].Box != "inbox" || es[0].Unread != 1 || es[0].Mute != "0" {
			t.Errorf("entry changed by failed requests: %+v", es)
		}
	})
}

// routeRoomMessage delivers a MUC Light room message to a client as the
// MUC Light module does: a groupchat message from room@service/sender
// (the sender's bare JID) through the router.
func routeRoomMessage(t *testing.T, srv *servertest.Server, room jid.JID, sender string, to *story.Client, body string, extra ...*xmlstream.Element) *xmlstream.Element {
	t.Helper()
	from := room
	if sender != "" {
		var err error
		if from, err = jid.Parse(room.String() + "/" + sender); err != nil {
			t.Fatal(err)
		}
	}
	el := stanza.NewMessage(stanza.MessageGroupchat, to.JID(), from, body).SetAttr("id", story.NewID())
	el.AddChild(extra...)
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil {
		t.Fatal(serr)
	}
	srv.Router().Route(context.Background(), &st)
	return to.Expect(story.IsMessageType(stanza.MessageGroupchat), hasID(el.Attr("id")))
}

// TestStoryInboxMUCLight: room messages update the room's entry; the
// user's own message is the last message but does not count; a marker to
// the room resets it; being added creates the entry, being removed or
// the room's destruction removes it.
func TestStoryInboxMUCLight(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := jid.MustParse("room@muclight." + srv.Domain())
		affs := func(who story.Addr, aff string) *xmlstream.Element {
			return xmlstream.NewElement("x", "urn:xmpp:muclight:0#affiliations").AddChild(
				xmlstream.NewElement("user", "urn:xmpp:muclight:0#affiliations").SetAttr("affiliation", aff).AddText(who.String()))
		}
		entry := func() (story.InboxEntry, bool) {
			t.Helper()
			es, _ := alice.FetchInbox(story.InboxQuery{})
			for _, e := range es {
				if e.With(alice.Bare()) == room.String() {
					return e, true
				}
			}
			return story.InboxEntry{}, false
		}
		// Someone else is added: nothing for alice.
		routeRoomMessage(t, srv, room, "", alice, "", affs(bob.Bare(), "member"))
		if _, ok := entry(); ok {
			t.Fatal("an entry for someone else's affiliation change")
		}
		routeRoomMessage(t, srv, room, "", alice, "", affs(alice.Bare(), "member"))
		if e, ok := entry(); !ok || e.Unread != 1 {
			t.Fatalf("added to the room: %+v %v", e, ok)
		}
		routeRoomMessage(t, srv, room, bob.Bare().String(), alice, "hello room")
		routeRoomMessage(t, srv, room, bob.Bare().String(), alice, "anyone?")
		e, _ := entry()
		if e.Unread != 3 || e.Body() != "anyone?" {
			t.Fatalf("after two room messages: %+v", e)
		}
		routeRoomMessage(t, srv, room, alice.Bare().String(), alice, "me!")
		e, _ = entry()
		if e.Unread != 3 || e.Body() != "me!" {
			t.Fatalf("after alice's own message: %+v", e)
		}
		// A displayed marker to the room for the last message.
		alice.Send(story.Marker(stanza.MessageGroupchat, room, "displayed", e.Message.Attr("id")))
		flush(t, alice)
		if e, _ = entry(); e.Unread != 0 {
			t.Fatalf("after the marker: %+v", e)
		}
		routeRoomMessage(t, srv, room, "", alice, "", affs(alice.Bare(), "none"))
		if _, ok := entry(); ok {
			t.Fatal("entry kept after being removed")
		}
		routeRoomMessage(t, srv, room, "", alice, "", affs(alice.Bare(), "owner"))
		routeRoomMessage(t, srv, room, "", alice, "", xmlstream.NewElement("x", "urn:xmpp:muclight:0#destroy"))
		if _, ok := entry(); ok {
			t.Fatal("entry kept after the room's destruction")
		}
		// A groupchat message whose resource is a nickname (classic
		// MUC) is not counted.
		routeRoomMessage(t, srv, room, "nick", alice, "classic")
		if _, ok := entry(); ok {
			t.Fatal("classic MUC message counted")
		}
	})
}

// TestStoryInboxMUCLightOptions: the configuration turns off room
// messages (groupchat = []), entries for being added (aff_changes) and
// removing the entry on being removed or the room's destruction
// (remove_on_kicked).
func TestStoryInboxMUCLightOptions(t *testing.T) {
	t.Parallel()
	affs := func(who story.Addr, aff string) *xmlstream.Element {
		return xmlstream.NewElement("x", "urn:xmpp:muclight:0#affiliations").AddChild(
			xmlstream.NewElement("user", "urn:xmpp:muclight:0#affiliations").SetAttr("affiliation", aff).AddText(who.String()))
	}
	rooms := func(alice *story.Client) string {
		t.Helper()
		es, _ := alice.FetchInbox(story.InboxQuery{})
		var out []string
		for _, e := range es {
			out = append(out, strings.SplitN(e.With(alice.Bare()), "@", 2)[0])
		}
		return strings.Join(out, " ")
	}
	srv := servertest.Start(t, servertest.Modules("[modules.inbox]\ngroupchat = []"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := jid.MustParse("room@muclight." + srv.Domain())
		routeRoomMessage(t, srv, room, bob.Bare().String(), alice, "hello room")
		if got := rooms(alice); got != "" {
			t.Errorf("groupchat = []: %q", got)
		}
	})
	srv = servertest.Start(t, servertest.Modules("[modules.inbox]\naff_changes = false\nremove_on_kicked = false"))
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		room := jid.MustParse("room@muclight." + srv.Domain())
		other := jid.MustParse("other@muclight." + srv.Domain())
		routeRoomMessage(t, srv, room, "", alice, "", affs(alice.Bare(), "member"))
		if got := rooms(alice); got != "" {
			t.Fatalf("aff_changes = false: %q", got)
		}
		routeRoomMessage(t, srv, room, bob.Bare().String(), alice, "hello room")
		routeRoomMessage(t, srv, other, bob.Bare().String(), alice, "hello other")
		if got := rooms(alice); got != "other room" {
			t.Fatalf("room messages: %q", got)
		}
		routeRoomMessage(t, srv, room, "", alice, "", affs(alice.Bare(), "none"))
		routeRoomMessage(t, srv, other, "", alice, "", xmlstream.NewElement("x", "urn:xmpp:muclight:0#destroy"))
		if got := rooms(alice); got != "other room" {
			t.Errorf("remove_on_kicked = false: %q", got)
		}
	})
}

// TestStoryInboxAccountRemoval: removing an account removes its inbox.
func TestStoryInboxAccountRemoval(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bobAcct := story.NewAccount(t, srv, "bob")
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		alice.Send(story.Chat(bobAcct.JID, "stored offline"))
		// A fetch waits for the writes queued before it.
		alice.FetchInbox(story.InboxQuery{})
		st := srv.Store().(storage.InboxStore)
		if es, err := st.QueryInbox(context.Background(), storage.InboxQuery{Owner: bobAcct.JID}); err != nil || len(es) != 1 {
			t.Fatalf("bob's inbox: %v %v", es, err)
		}
		if err := srv.RemoveUser(context.Background(), bobAcct.JID.Local()); err != nil {
			t.Fatal(err)
		}
		if es, err := st.QueryInbox(context.Background(), storage.InboxQuery{Owner: bobAcct.JID, AllBoxes: true}); err != nil || len(es) != 0 {
			t.Fatalf("bob's inbox after removal: %v %v", es, err)
		}
	})
}

// TestStoryInboxDisabled: without the module nothing is advertised,
// answered or hooked.
func TestStoryInboxDisabled(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.inbox]\nenabled = false"))
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		errorOf(t, alice, story.InboxFetch(story.InboxQuery{}), "cancel", "service-unavailable")
		info := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		if strings.Contains(info.String(), nsInbox) {
			t.Errorf("disabled module advertised: %s", info)
		}
	})
	if srv.Hooks().Owners()["inbox"] {
		t.Error("disabled module has hooks")
	}
}

// TestStoryInboxAgreesWithDelivery: messages among several users, one
// at a time with markers, then all at once, then in a MUC Light room;
// each inbox entry's last message and unread count agree with what the
// clients actually sent and received, in both write modes.
func TestStoryInboxAgreesWithDelivery(t *testing.T) {
	t.Parallel()
	for _, writes := range []string{"batch", "sync"} {
		t.Run(writes, func(t *testing.T) {
			t.Parallel()
			agreesWithDelivery(t, servertest.Start(t, servertest.Modules("[modules.inbox]\nwrites = \""+writes+"\"")))
		})
	}
}

func agreesWithDelivery(t *testing.T, srv *servertest.Server) {
	users := story.Users{"u0": 1, "u1": 1, "u2": 1, "u3": 1}
	story.Run(t, srv, users, func(u0, u1, u2, u3 *story.Client) {
		cs := []*story.Client{u0, u1, u2, u3}
		type pair struct{ owner, peer int }
		type expect struct {
			last     *xmlstream.Element // as received, or as sent (then sent is true)
			sent     bool
			unread   int
			lastRecv string // id of the last message received in the pair
		}
		want := map[pair]*expect{}
		get := func(p pair) *expect {
			if want[p] == nil {
				want[p] = &expect{}
			}
			return want[p]
		}
		// Phase 1, one message at a time: a deterministic mix of
		// messages, replies and displayed markers.
		seq := 0
		for i := range 60 {
			a, b := (i*7+i/5)%4, (i*3+1+i/4)%4
			if a == b {
				b = (b + 1) % 4
			}
			if i%5 == 4 {
				// b marks what it last got from a as displayed.
				e := get(pair{b, a})
				if e.lastRecv == "" {
					continue
				}
				cs[b].Send(story.Marker(stanza.MessageChat, cs[a].Bare(), "displayed", e.lastRecv))
				cs[a].Expect(story.HasChild("displayed", story.NSChatMarkers))
				if !e.sent && e.last != nil && e.last.Attr("id") == e.lastRecv {
					e.unread = 0
				}
				continue
			}
			seq++
			body := fmt.Sprintf("m%d %s→%s", seq, cs[a].Name(), cs[b].Name())
			got := exchange(t, cs[a], cs[b], body)
			s := get(pair{a, b})
			s.last, s.sent, s.unread = got, true, 0
			r := get(pair{b, a})
			r.last, r.sent, r.lastRecv = got, false, got.Attr("id")
			r.unread++
		}
		// Phase 2, all at once: u0 and u1 send k messages each to u2
		// and u3, concurrently; the receivers' counts go up by k per
		// sender and their last message is the last one they got from
		// that sender (one sender's messages arrive in order).
		const k = 20
		errs := make(chan error, 2)
		for a := range 2 {
			go func() {
				var err error
				for i := range k {
					for b := 2; b < 4 && err == nil; b++ {
						err = cs[a].TrySend(withID(story.Chat(cs[b].Bare(), fmt.Sprintf("burst %d %d→%d", i, a, b)), story.NewID()))
					}
				}
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		isBurst := story.Predicate{Desc: "a burst message", Match: func(el *xmlstream.Element) bool {
			return strings.HasPrefix(el.ChildText("body", stanza.NSClient), "burst ")
		}}
		for b := 2; b < 4; b++ {
			for range 2 * k {
				m := cs[b].Expect(isBurst)
				a := 0
				if strings.HasPrefix(m.Attr("from"), cs[1].Bare().String()+"/") {
					a = 1
				}
				r := get(pair{b, a})
				r.last, r.sent, r.lastRecv = m, false, m.Attr("id")
				r.unread++
				s := get(pair{a, b})
				s.last, s.sent, s.unread = m, true, 0
			}
		}
		// Phase 3, a MUC Light room with all four: each member's copy
		// updates the member's entry for the room, one more unread
		// unless the member sent it.
		room := jid.MustParse("agree@muclight." + srv.Domain())
		roomLast := make([]*xmlstream.Element, len(cs))
		roomUnread := make([]int, len(cs))
		for i := range 12 {
			sender := cs[(i*5+1)%4].Bare().String()
			for m, c := range cs {
				roomLast[m] = routeRoomMessage(t, srv, room, sender, c, fmt.Sprintf("room %d", i))
				if sender != c.Bare().String() {
					roomUnread[m]++
				}
			}
		}
		for a, c := range cs {
			flush(t, c)
			es, fin := c.FetchInbox(story.InboxQuery{})
			if e, ok := byPeer(t, c.Bare(), es)[room.String()]; !ok || e.Unread != roomUnread[a] || !xmlstream.Equal(e.Message, roomLast[a]) {
				t.Errorf("%s's room entry: %+v, want %d unread and\n %s", c.Name(), e, roomUnread[a], roomLast[a])
			}
			// The one-to-one entries are checked below; the fin without
			// the room's entry.
			es = slices.DeleteFunc(es, func(e story.InboxEntry) bool { return e.With(c.Bare()) == room.String() })
			fin = xmlstream.NewElement("fin", nsInbox).AddChild(
				xmlstream.NewElement("count", nsInbox).AddText(strconv.Itoa(finValue(t, fin, "count")-1)),
				xmlstream.NewElement("unread-messages", nsInbox).AddText(strconv.Itoa(finValue(t, fin, "unread-messages")-roomUnread[a])))
			got := byPeer(t, c.Bare(), es)
			n, unread := 0, 0
			for b, other := range cs {
				w := want[pair{a, b}]
				if w == nil || w.last == nil {
					continue
				}
				n++
				unread += w.unread
				e, ok := got[other.Bare().String()]
				if !ok {
					t.Errorf("%s has no entry for %s", c.Name(), other.Name())
					continue
				}
				if e.Unread != w.unread {
					t.Errorf("%s's entry for %s: %d unread, want %d", c.Name(), other.Name(), e.Unread, w.unread)
				}
				if w.sent {
					if e.Message.Attr("id") != w.last.Attr("id") || e.Body() != w.last.ChildText("body", stanza.NSClient) {
						t.Errorf("%s's entry for %s: last message\n %s\nwant the one sent\n %s", c.Name(), other.Name(), e.Message, w.last)
					}
				} else if !xmlstream.Equal(e.Message, w.last) {
					t.Errorf("%s's entry for %s: last message\n %s\nwant the one received\n %s", c.Name(), other.Name(), e.Message, w.last)
				}
			}
			if len(es) != n {
				t.Errorf("%s has %d entries, want %d", c.Name(), len(es), n)
			}
			checkFinTotals(t, fin, n, unread)
		}
	})
}

func checkFinTotals(t *testing.T, fin *xmlstream.Element, count, unread int) {
	t.Helper()
	if c, u := finValue(t, fin, "count"), finValue(t, fin, "unread-messages"); c != count || u != unread {
		t.Errorf("fin count/unread %d/%d, want %d/%d", c, u, count, unread)
	}
}

// TestStoryInboxInactiveClient: a client that told the server it is
// inactive (XEP-0352) still gets the results before the fin, and the
// entry push before the result: they answer its own requests.
func TestStoryInboxInactiveClient(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		exchange(t, bob, alice, "hi")
		alice.Send(xmlstream.NewElement("inactive", "urn:xmpp:csi:0"))
		iq := story.InboxFetch(story.InboxQuery{})
		alice.Send(iq)
		got := alice.Collect(2)
		story.AssertStanza(t, got[0], story.IsInboxResult(iq.Attr("id")))
		story.AssertStanza(t, got[1], story.IsInboxFin(iq.Attr("id")))
		iq = story.InboxEntrySet(bob.Bare(), story.InboxProp("read", "true"))
		alice.Send(iq)
		got = alice.Collect(2)
		story.AssertStanza(t, got[0], story.IsInboxEntryPush(bob.Bare()))
		story.AssertStanza(t, got[1], story.IsIQResult(iq.Attr("id")))
	})
}

// TestStoryInboxDurableWhenAcknowledged: with stream management, when the
// server acknowledges messages (XEP-0198 <a/>) their inbox updates are
// committed, for the sender and the recipient, in both write modes.
func TestStoryInboxDurableWhenAcknowledged(t *testing.T) {
	t.Parallel()
	for _, writes := range []string{"batch", "sync"} {
		t.Run(writes, func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, servertest.Modules("[modules.inbox]\nwrites = \""+writes+"\""))
			story.RunWith(t, srv, story.Users{"alice": 1, "bob": 1}, story.Options{StreamManagement: true}, func(alice, bob *story.Client) {
				const n = 50
				for i := range n {
					alice.Send(story.Chat(bob.Bare(), fmt.Sprintf("m%d", i)))
				}
				alice.Send(xmlstream.NewElement("r", story.NSSM))
				a := alice.Expect(story.IsSMAck())
				if a.Attr("h") == "" {
					t.Fatalf("ack: %s", a)
				}
				// Straight from storage, without a fetch (which would wait
				// for the writer).
				st := srv.Store().(storage.InboxStore)
				e, err := st.InboxEntry(context.Background(), bob.Bare(), alice.Bare())
				if err != nil || e.Unread != n || !strings.Contains(e.Message, fmt.Sprintf("m%d<", n-1)) {
					t.Fatalf("bob's entry when alice's messages are acknowledged: %+v %v", e, err)
				}
				if e, err := st.InboxEntry(context.Background(), alice.Bare(), bob.Bare()); err != nil || !strings.Contains(e.Message, fmt.Sprintf("m%d<", n-1)) {
					t.Fatalf("alice's entry: %+v %v", e, err)
				}
			})
		})
	}
}

// TestStoryInboxRerouted: a message that a session never acknowledged
// when it ended goes to another resource (XEP-0198 §4); the inbox counted
// it when it came and does not count it again.
func TestStoryInboxRerouted(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.SMAckEvery = 1000 })
	account := func(name string) story.Account {
		local := name + "-" + strings.ToLower(story.NewID())
		if err := srv.CreateUser(context.Background(), local, "pw"); err != nil {
			t.Fatal(err)
		}
		return story.Account{Localpart: local, Password: "pw", JID: jid.MustParse(local + "@" + srv.Domain())}
	}
	bob := account("bob")
	phone := story.MustConnect(t, srv, bob, story.Options{StreamManagement: true, Resource: "phone"})
	laptop := story.MustConnect(t, srv, bob, story.Options{Resource: "laptop"})
	alice := story.MustConnect(t, srv, account("alice"), story.Options{})
	alice.Send(story.Chat(phone.JID(), "to the phone"))
	phone.Expect(story.IsChat("to the phone"))
	phone.Cut() // never acknowledged; no resumption: the session ends at once
	laptop.Expect(story.IsChat("to the phone"), story.HasChild("delay", stanza.NSDelay))
	es, fin := laptop.FetchInbox(story.InboxQuery{})
	checkFin(t, fin, 1, 1, 1)
	if len(es) != 1 || es[0].Unread != 1 || es[0].Body() != "to the phone" {
		t.Fatalf("bob's inbox: %+v", es)
	}
}
