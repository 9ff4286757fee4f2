package offline_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const (
	nsDelay      = "urn:xmpp:delay"
	nsHints      = "urn:xmpp:hints"
	nsChatStates = "http://jabber.org/protocol/chatstates"
)

// flush makes sure the server has handled everything c sent before: the
// stanzas of one client are handled in order, so when the answer to a
// ping comes, the messages sent before it were stored or refused.
func flush(t *testing.T, c *story.Client) {
	t.Helper()
	story.AssertStanza(t, c.IQ(story.Ping(nil)), story.IsIQ("result"))
}

func offlineCount(t *testing.T, srv *servertest.Server, acct story.Account) int {
	t.Helper()
	n, err := srv.Store().(storage.OfflineStore).OfflineCount(context.Background(), acct.JID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func withID(el *xmlstream.Element, id string) *xmlstream.Element { return el.SetAttr("id", id) }

func hasID(id string) story.Predicate {
	return story.Predicate{Desc: "with id " + id, Match: func(el *xmlstream.Element) bool { return el.Attr("id") == id }}
}

// stampFormat: stanza.FormatTime's XEP-0082 DateTime, UTC, with
// microseconds when there is a fraction of a second (the storage keeps
// milliseconds).
var stampFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}000)?Z$`)

// expectDelayed takes the next message with body from c's queue and
// checks its XEP-0203 delay: from the domain, a UTC stamp between the
// two times.
func expectDelayed(t *testing.T, c *story.Client, domain, body string, after, before time.Time) *xmlstream.Element {
	t.Helper()
	m := c.Expect(story.IsMessage())
	story.AssertStanza(t, m, story.HasBody(body), story.HasChild("delay", nsDelay))
	d := m.Child("delay", nsDelay)
	if d.Attr("from") != domain {
		t.Errorf("delay from %q, want %q: %s", d.Attr("from"), domain, m)
	}
	stamp := d.Attr("stamp")
	if !stampFormat.MatchString(stamp) {
		t.Errorf("stamp %q is not UTC to the millisecond (XEP-0082)", stamp)
	}
	at, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil || at.Before(after.Truncate(time.Millisecond)) || at.After(before) {
		t.Errorf("stamp %q (%v) not between %v and %v", stamp, err, after, before)
	}
	return m
}

// TestStoryOfflineStoreAndDeliver: what XEP-0160 §3 says to store is
// stored and delivered in order at the next initial presence, with a
// delay (XEP-0203); headlines, standalone chat states and messages with a
// <no-store/> hint are not; a second login gets nothing more.
func TestStoryOfflineStoreAndDeliver(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	domain := srv.Domain()
	bob := story.NewAccount(t, srv, "bob")
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		before := time.Now()
		alice.Send(story.Message("", bob.JID, "one (normal)"))
		alice.Send(story.Chat(bob.JID, "two (chat)"))
		alice.Send(story.Message(stanza.MessageHeadline, bob.JID, "a headline"))
		// A standalone chat state (XEP-0085 §5.8) is dropped silently.
		alice.Send(story.Message(stanza.MessageChat, bob.JID, "").AddChild(xmlstream.NewElement("composing", nsChatStates)))
		// <no-store/> (XEP-0334 §4.2): refused, so alice knows.
		noStore := withID(story.Chat(bob.JID, "not stored"), "nostore")
		alice.Send(noStore.AddChild(xmlstream.NewElement("no-store", nsHints)))
		// <store/> (§4.4) keeps a message without a body; a chat state
		// with a body is content.
		alice.Send(story.Chat(bob.JID, "").AddChild(xmlstream.NewElement("store", nsHints), xmlstream.NewElement("x", "urn:example:payload")))
		alice.Send(story.Chat(bob.JID, "three").AddChild(xmlstream.NewElement("active", nsChatStates),
			// A delay that claims to be the server's own is a forgery
			// (XEP-0203 §5) and is discarded.
			xmlstream.NewElement("delay", nsDelay).SetAttr("from", domain).SetAttr("stamp", "2001-01-01T00:00:00Z")))
		// <no-permanent-store/> (§4.1) allows offline storage.
		alice.Send(story.Chat(bob.JID, "four").AddChild(xmlstream.NewElement("no-permanent-store", nsHints)))
		story.AssertStanza(t, alice.Expect(story.IsMessageType("error"), hasID("nostore")), story.IsStanzaError("cancel", "service-unavailable"))
		flush(t, alice)
		after := time.Now()
		alice.ExpectNothing(100*time.Millisecond, story.IsMessage())
		if n := offlineCount(t, srv, bob); n != 5 {
			t.Fatalf("%d messages stored, want 5", n)
		}

		bob1 := story.MustConnect(t, srv, bob, story.Options{Name: "bob"})
		expectDelayed(t, bob1, domain, "one (normal)", before, after)
		story.AssertStanza(t, expectDelayed(t, bob1, domain, "two (chat)", before, after), story.IsChat("two (chat)"), story.IsFrom(alice))
		payload := bob1.Expect(story.IsMessage())
		story.AssertStanza(t, payload, story.HasChild("x", "urn:example:payload"), story.HasChild("delay", nsDelay))
		three := expectDelayed(t, bob1, domain, "three", before, after)
		delays := 0
		for range three.ChildrenNamed("delay", nsDelay) {
			delays++
		}
		if delays != 1 {
			t.Errorf("%d delays; the forged one should be gone: %s", delays, three)
		}
		expectDelayed(t, bob1, domain, "four", before, after)
		bob1.ExpectNothing(200*time.Millisecond, story.IsMessage())
		flush(t, bob1) // the delivery, deletion included, ran before the ping
		if n := offlineCount(t, srv, bob); n != 0 {
			t.Errorf("%d messages left after delivery", n)
		}
		bob1.Close()

		// Delivered means deleted: the next login gets nothing.
		bob2 := story.MustConnect(t, srv, bob, story.Options{Name: "bob again"})
		bob2.ExpectNothing(200*time.Millisecond, story.IsMessage())
		// While bob is online, messages go straight to him.
		alice.Send(story.Chat(bob2.JID(), "live"))
		story.AssertStanza(t, bob2.Expect(story.IsChat("live")), story.Not(story.HasChild("delay", nsDelay)))
	})
}

// TestStoryOfflineDisco: the server advertises msgoffline (XEP-0160 §4).
func TestStoryOfflineDisco(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		info := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		if !strings.Contains(info.String(), "var='msgoffline'") {
			t.Errorf("msgoffline not advertised: %s", info)
		}
	})
}

// TestStoryOfflineLimit: when the user's storage is full the sender gets
// the configured error (XEP-0160 §2): service-unavailable, or
// resource-constraint.
func TestStoryOfflineLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ config, errType, condition string }{
		{"", "cancel", "service-unavailable"},
		{`overflow_error = "service-unavailable"`, "cancel", "service-unavailable"},
		{`overflow_error = "resource-constraint"`, "wait", "resource-constraint"},
	} {
		t.Run(tc.condition+tc.config, func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, servertest.Modules("[modules.offline]\nmax_messages = 2\n"+tc.config))
			bob := story.NewAccount(t, srv, "bob")
			story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
				for i := range 3 {
					alice.Send(withID(story.Chat(bob.JID, "m"+strconv.Itoa(i)), "m"+strconv.Itoa(i)))
				}
				e := alice.Expect(story.IsStanzaError(tc.errType, tc.condition))
				story.AssertStanza(t, e, story.IsMessageType("error"), story.IsFrom(bob.JID))
				if e.Attr("id") != "m2" {
					t.Errorf("the error is for %q, want m2 (the third)", e.Attr("id"))
				}
				flush(t, alice)
				alice.ExpectNothing(100*time.Millisecond, story.IsMessageType("error"))

				b := story.MustConnect(t, srv, bob, story.Options{Name: "bob"})
				b.Expect(story.IsChat("m0"))
				b.Expect(story.IsChat("m1"))
				b.ExpectNothing(100*time.Millisecond, story.IsMessage())
				// Delivery made room again.
				b.Close()
				alice.Send(withID(story.Chat(bob.JID, "m3"), "m3"))
				flush(t, alice)
				alice.ExpectNothing(100*time.Millisecond, story.IsMessageType("error"))
			})
		})
	}
}

// TestStoryOfflineNegativePriority: a resource available with a negative
// priority never gets messages to the bare JID (RFC 6121 §8.5.2.1.1), so
// they stay stored; they are delivered when it "next sends non-negative
// available presence" (XEP-0160 §2).
func TestStoryOfflineNegativePriority(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bob := story.NewAccount(t, srv, "bob")
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		alice.Send(story.Chat(bob.JID, "before"))
		flush(t, alice)

		b := story.MustConnect(t, srv, bob, story.Options{Name: "bob", NoPresence: true})
		b.Send(presenceWithPriority(-1))
		b.Expect(story.IsPresence("", b.JID()))
		b.ExpectNothing(200*time.Millisecond, story.IsMessage())
		// Still stored while the priority is negative, and stored too.
		alice.Send(story.Chat(bob.JID, "during"))
		flush(t, alice)
		b.ExpectNothing(100*time.Millisecond, story.IsMessage())
		if n := offlineCount(t, srv, bob); n != 2 {
			t.Fatalf("%d stored, want 2", n)
		}
		// Still negative: nothing.
		b.Send(presenceWithPriority(-5))
		b.Expect(story.IsPresence("", b.JID()))
		b.ExpectNothing(100*time.Millisecond, story.IsMessage())

		b.Send(presenceWithPriority(0))
		b.Expect(story.IsChat("before"), story.HasChild("delay", nsDelay))
		b.Expect(story.IsChat("during"), story.HasChild("delay", nsDelay))
		b.ExpectNothing(100*time.Millisecond, story.IsMessage())
		flush(t, b) // the delivery, deletion included, ran before the ping
		if n := offlineCount(t, srv, bob); n != 0 {
			t.Errorf("%d left", n)
		}
	})
}

// TestStoryOfflineUnavailableAgain: a resource that goes unavailable and
// comes back sends initial presence again and gets what was stored
// meanwhile.
func TestStoryOfflineUnavailableAgain(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		bob.Send(story.Presence(stanza.PresenceUnavailable))
		bob.Expect(story.IsPresence(stanza.PresenceUnavailable, bob.JID()))
		alice.Send(story.Chat(bob.Bare(), "while away"))
		flush(t, alice)
		bob.ExpectNothing(100*time.Millisecond, story.IsMessage())
		bob.Send(story.Presence(""))
		bob.Expect(story.IsChat("while away"), story.HasChild("delay", nsDelay))
	})
}

func presenceWithPriority(p int) *xmlstream.Element {
	return story.Presence("").AddChild(xmlstream.NewElement("priority", stanza.NSClient).AddText(strconv.Itoa(p)))
}

// TestStoryOfflineConcurrentLogins: two resources coming online at once
// get each stored message exactly once between them, none lost; each
// gets its share in order.
func TestStoryOfflineConcurrentLogins(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bob := story.NewAccount(t, srv, "bob")
	const n = 30
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		for round := range 4 {
			for i := range n {
				alice.Send(story.Chat(bob.JID, fmt.Sprintf("r%d-%02d", round, i)))
			}
			flush(t, alice)
			clients := make([]*story.Client, 2)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range clients {
				wg.Go(func() {
					clients[i], errs[i] = story.Connect(context.Background(), nil, srv, bob, story.Options{Name: fmt.Sprintf("bob%d", i+1)})
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			seen := map[string]int{}
			got := make([]int, len(clients))
			deadline := time.Now().Add(5 * time.Second)
			for len(seen) < n && time.Now().Before(deadline) {
				for ci, c := range clients {
					// Take what c has until it is quiet for a moment.
					for {
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
						m, err := c.WaitFor(ctx, story.IsMessage())
						cancel()
						if err != nil {
							break
						}
						seen[m.ChildText("body", stanza.NSClient)]++
						got[ci]++
					}
				}
			}
			t.Logf("round %d: the resources got %v", round, got)
			for i := range n {
				body := fmt.Sprintf("r%d-%02d", round, i)
				if seen[body] != 1 {
					t.Errorf("round %d: %s delivered %d times", round, body, seen[body])
				}
			}
			for _, c := range clients {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				if m, err := c.WaitFor(ctx, story.IsMessage()); err == nil {
					t.Errorf("round %d: extra message %s", round, m)
				}
				cancel()
				c.Close()
			}
			if left := offlineCount(t, srv, bob); left != 0 {
				t.Errorf("round %d: %d left", round, left)
			}
		}
	})
}

// TestStoryOfflineDisabled: without the module messages to offline users
// are refused (RFC 6121 §8.5.2.2.1) and msgoffline is not advertised.
func TestStoryOfflineDisabled(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.offline]\nenabled = false"))
	bob := story.NewAccount(t, srv, "bob")
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		alice.Send(story.Chat(bob.JID, "hello?"))
		alice.Expect(story.IsStanzaError("cancel", "service-unavailable"))
		info := alice.IQ(story.DiscoInfo(story.RawAddr(srv.Domain()), ""))
		if strings.Contains(info.String(), "msgoffline") {
			t.Errorf("disabled module advertised: %s", info)
		}
	})
	if srv.Hooks().Owners()["offline"] {
		t.Error("disabled module has hooks")
	}
}
