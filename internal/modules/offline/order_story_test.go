package offline_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// pause is a seam for the stories below: a hook the test adds to the
// server runs it, and it blocks there until the test releases it, so that
// the test can act at a precise point of the server's work without
// sleeping.
type pause struct {
	taken   atomic.Bool
	reached chan struct{}
	release chan struct{}
}

func newPause() *pause {
	return &pause{reached: make(chan struct{}), release: make(chan struct{})}
}

// here blocks the calling server goroutine the first time only; the
// others go on.
func (p *pause) here() {
	if p.taken.CompareAndSwap(false, true) {
		close(p.reached)
		<-p.release
	}
}

// expectOrder takes the next len(bodies) messages of c and checks that
// they are those, in that order, the first stored ones with the
// "Offline Storage" delay of XEP-0203 and the others without.
func expectOrder(t *testing.T, c *story.Client, stored int, bodies ...string) {
	t.Helper()
	var got []string
	for range bodies {
		m := c.Expect(story.IsMessage())
		body := m.ChildText("body", stanza.NSClient)
		if d := m.Child("delay", nsDelay); (d != nil) != (len(got) < stored) {
			t.Errorf("%q: delay %v, want a delay on the first %d only: %s", body, d != nil, stored, m)
		}
		got = append(got, body)
	}
	if fmt.Sprint(got) != fmt.Sprint(bodies) {
		t.Errorf("received %q, want %q", got, bodies)
	}
}

// TestStoryOfflineBeforeLive: the stored messages come before a live
// message sent to the bare JID while the server is still handling the
// recipient's initial presence (XEP-0160 §2: they are delivered "when the
// recipient next sends non-negative available presence"; RFC
// 6121 §8.5.2.1.1 makes the resource eligible for the live one as soon as
// that presence is in). The stanzas of one sender stay in order (RFC 6120
// §10.1). The server is paused right before the offline module's
// delivery, when the resource is available: the live message comes then.
// The same when the resource was available with a negative priority and
// changes it to a non-negative one, and for a client that told the
// server it is inactive (XEP-0352: messages with a body are not held back).
func TestStoryOfflineBeforeLive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		priority int  // of the first presence
		inactive bool // XEP-0352: the client says it is inactive first
	}{{"initial presence", 0, false}, {"priority becomes non-negative", -1, false}, {"inactive client", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t)
			bob := story.NewAccount(t, srv, "bob")
			p := newPause()
			isBob := func(s module.Session) bool { return s.JID().Bare() == bob.JID }
			if tc.priority >= 0 {
				// Before the offline module's hook (0): the presence was routed.
				srv.Hooks().InitialPresence.Add("test", 10, func(_ context.Context, s module.Session) {
					if isBob(s) {
						p.here()
					}
				})
			} else {
				// Before the offline module's UserSend hook (50).
				srv.Hooks().UserSend.Add("test", 60, func(_ context.Context, ev *module.StanzaEvent) module.Result {
					if ev.Session != nil && isBob(ev.Session) && ev.Stanza.Kind == stanza.KindPresence && ev.Session.Priority() >= 0 {
						p.here()
					}
					return module.Continue
				})
			}
			story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
				alice.Send(story.Chat(bob.JID, "stored 1"))
				alice.Send(story.Chat(bob.JID, "stored 2"))
				flush(t, alice)

				b := story.MustConnect(t, srv, bob, story.Options{Name: "bob", NoPresence: true})
				if tc.inactive {
					b.Send(xmlstream.NewElement("inactive", "urn:xmpp:csi:0"))
				}
				if tc.priority < 0 {
					b.Send(presenceWithPriority(tc.priority))
					b.Expect(story.IsPresence("", b.JID()))
					flush(t, b)
				}
				b.Send(presenceWithPriority(0))
				<-p.reached
				// bob is available with priority 0, and his stored
				// messages are not delivered yet.
				alice.Send(story.Chat(bob.JID, "live 1"))
				alice.Send(story.Chat(b.JID(), "live 2 (to the full JID)"))
				flush(t, alice) // both were routed
				close(p.release)
				expectOrder(t, b, 2, "stored 1", "stored 2", "live 1", "live 2 (to the full JID)")
				alice.Send(story.Chat(bob.JID, "live 3"))
				expectOrder(t, b, 0, "live 3")
				if n := offlineCount(t, srv, bob); n != 0 {
					t.Errorf("%d left in storage", n)
				}
			})
		})
	}
}

// TestStoryOfflineStoredDuringLogin: a message that the router found no
// available resource for, but whose storing commits after the login
// delivered the stored messages, is delivered at once: it does not wait
// in storage for the next login while a resource is available
// (RFC 6121 §8.5.2.1.1, XEP-0160 §2). The server is paused in the
// Offline hooks, before the offline module stores the message.
func TestStoryOfflineStoredDuringLogin(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bob := story.NewAccount(t, srv, "bob")
	p := newPause()
	srv.Hooks().Offline.Add("test", 10, func(_ context.Context, ev *module.StanzaEvent) module.Result {
		if ev.Stanza.El.ChildText("body", stanza.NSClient) == "late" {
			p.here()
		}
		return module.Continue
	})
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		alice.Send(story.Chat(bob.JID, "early"))
		alice.Send(story.Chat(bob.JID, "late"))
		<-p.reached // alice's goroutine is in the Offline hooks
		b := story.MustConnect(t, srv, bob, story.Options{Name: "bob"})
		flush(t, b) // the login's delivery is over
		expectOrder(t, b, 1, "early")
		close(p.release)
		expectOrder(t, b, 1, "late")
		alice.Send(story.Chat(bob.JID, "live"))
		expectOrder(t, b, 0, "live")
		if n := offlineCount(t, srv, bob); n != 0 {
			t.Errorf("%d left in storage", n)
		}
	})
}

// TestStoryOfflineLoginRace: one sender sends a numbered stream of
// messages to the bare JID while the recipient logs in, again and again.
// Every message arrives exactly once, in the order sent — the stored
// ones, with a delay, first — and nothing stays stored.
func TestStoryOfflineLoginRace(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bob := story.NewAccount(t, srv, "bob")
	const rounds, before, during = 8, 5, 40
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		seq := 0
		send := func() {
			alice.Send(story.Chat(bob.JID, strconv.Itoa(seq)))
			seq++
		}
		for round := range rounds {
			first := seq
			for range before {
				send()
			}
			flush(t, alice)
			var b *story.Client
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				b, err = story.Connect(context.Background(), nil, srv, bob, story.Options{Name: "bob"})
			}()
			for range during {
				send()
			}
			flush(t, alice)
			<-done
			if err != nil {
				t.Fatal(err)
			}
			delayed := true
			for want := first; want < seq; want++ {
				m := b.Expect(story.IsMessage())
				body := m.ChildText("body", stanza.NSClient)
				if body != strconv.Itoa(want) {
					t.Fatalf("round %d: got %q, want %d (the messages from %d)", round, body, want, first)
				}
				d := m.Child("delay", nsDelay) != nil
				if d && !delayed {
					t.Fatalf("round %d: %s delivered from storage after a live one", round, body)
				}
				delayed = d
			}
			flush(t, b)
			if n := offlineCount(t, srv, bob); n != 0 {
				t.Fatalf("round %d: %d left in storage", round, n)
			}
			b.Close()
		}
	})
}

// TestStoryOfflineHeldRerouted: a session that ends while the server
// holds live messages for it (its stored ones not delivered yet) does not
// lose them: they are routed again to the bare JID, as the unacknowledged
// messages of stream management are (XEP-0198 §4), and the session that
// replaced it gets them after the stored ones.
func TestStoryOfflineHeldRerouted(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bob := story.NewAccount(t, srv, "bob")
	p := newPause()
	srv.Hooks().InitialPresence.Add("test", 10, func(_ context.Context, s module.Session) {
		if s.JID().Bare() == bob.JID {
			p.here() // the first login only
		}
	})
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		alice.Send(story.Chat(bob.JID, "stored"))
		flush(t, alice)
		first := story.MustConnect(t, srv, bob, story.Options{Name: "bob", Resource: "phone", NoPresence: true})
		first.Send(story.Presence(""))
		<-p.reached
		alice.Send(story.Chat(bob.JID, "live"))
		flush(t, alice) // held for the first session
		// RFC 6120 §7.7.2.2: the new session replaces the first.
		second := story.MustConnect(t, srv, bob, story.Options{Name: "bob again", Resource: "phone"})
		first.Expect(story.IsStreamError("conflict"))
		flush(t, second) // its login's delivery is over
		close(p.release)
		expectOrder(t, second, 2, "stored", "live")
		if n := offlineCount(t, srv, bob); n != 0 {
			t.Errorf("%d left in storage", n)
		}
	})
}
