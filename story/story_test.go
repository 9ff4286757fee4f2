package story

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Stories against real servers (see peer_test.go). Each runs as a subtest
// per peer, in parallel.

func TestStoryChat(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1, "bob": 1}, func(alice, bob *Client) {
			alice.Send(Chat(bob, "Hi, Bob!"))
			msg := bob.Expect(IsChat("Hi, Bob!"), IsFrom(alice))
			AssertStanza(t, msg, IsTo(bob))

			bob.Send(Chat(alice.Bare(), "Hi, Alice!"))
			alice.Expect(IsChat("Hi, Alice!"), IsFrom(bob.Bare()))
			alice.ExpectNothing(100 * time.Millisecond)
		})
	})
}

func TestStoryResourcesAndOrder(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"bob": 2, "alice": 1}, func(alice, bob1, bob2 *Client) {
			if alice.Bare() == bob1.Bare() || bob1.Bare() != bob2.Bare() || bob1.JID() == bob2.JID() {
				t.Fatalf("clients are not in the documented order: %s %s %s", alice.JID(), bob1.JID(), bob2.JID())
			}
			if !strings.HasPrefix(alice.JID().Local(), "alice-") || bob2.JID().Resource() != "res2" {
				t.Fatalf("unexpected names: %s %s", alice.JID(), bob2.JID())
			}
			// The runner took all presence broadcasts: queues are empty.
			for _, c := range []*Client{alice, bob1, bob2} {
				if q := c.Pending(); len(q) != 0 {
					t.Fatalf("%s starts with %d queued elements", c.Name(), len(q))
				}
			}
			alice.Send(Chat(bob2, "to the second resource"))
			bob2.Expect(IsChat("to the second resource"))
			bob1.ExpectNothing(200*time.Millisecond, IsChat("to the second resource"))
		})
	})
}

func TestStoryIQs(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1}, func(alice *Client) {
			domain := RawAddr(p.srv.Domain())
			res := alice.IQ(Ping(domain))
			AssertStanza(t, res, IsIQResult(res.Attr("id")), IsFrom(domain))

			info := alice.IQ(DiscoInfo(domain, ""))
			AssertStanza(t, info, IsIQResultWith("", HasChild("identity", stanza.NSDiscoInfo)))

			roster := alice.IQ(RosterGet())
			AssertStanza(t, roster, IsRosterResult(roster.Attr("id")))

			v := alice.IQ(Version(domain))
			AssertStanza(t, v, IsIQResultWith(v.Attr("id"), HasChild("name", NSVersion)))

			// An IQ to a user that does not exist is answered with an error
			// (RFC 6121 §8.5.1: service-unavailable, or item-not-found).
			nobody := RawAddr("nobody-" + randomHex(4) + "@" + p.srv.Domain())
			e := alice.IQ(VcardGet(nobody))
			AssertStanza(t, e, Or(IsIQResult(""), IsIQError("")))
		})
	})
}

func TestStoryRosterAndSubscription(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1, "bob": 1}, func(alice, bob *Client) {
			// Roster pushes go to interested resources: those that asked
			// for the roster (RFC 6121 §2.1.6).
			alice.IQ(RosterGet())
			bob.IQ(RosterGet())
			set := RosterSet(bob.Bare(), "Bobby", "friends")
			alice.Send(set)
			alice.Expect(IsRosterPush(bob.Bare()))
			alice.Expect(IsIQResult(set.Attr("id")))

			// RFC 6121 §3.1: subscription request, approval, pushes, presence.
			alice.Send(Subscribe(bob.Bare()))
			alice.Expect(IsRosterPush(bob.Bare()))
			bob.Expect(IsPresence(stanza.PresenceSubscribe, alice.Bare()))
			bob.Send(Subscribed(alice.Bare()))
			bob.Expect(IsRosterPush(alice.Bare()))
			alice.Expect(IsPresence(stanza.PresenceSubscribed, bob.Bare()))
			push := alice.Expect(IsRosterPush(bob.Bare()))
			if sub := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster).Attr("subscription"); sub != "to" {
				t.Errorf("after approval alice's item has subscription %q, want \"to\"", sub)
			}
			alice.Expect(IsPresence("", bob))

			alice.Send(RosterRemove(bob.Bare()))
			alice.Expect(IsRosterPush(bob.Bare()))
		})
	})
}

func TestStoryLatencyStamp(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1, "bob": 1}, func(alice, bob *Client) {
			alice.Send(StampSendTime(Chat(bob, "timed")))
			msg, at := bob.ExpectTimed(IsChat("timed"))
			sent, ok := SendTimeOf(msg)
			if !ok {
				t.Fatalf("the server dropped the timestamp: %s", msg)
			}
			if d := at.Sub(sent); d < 0 || d > 5*time.Second {
				t.Fatalf("time to deliver %s out of range", d)
			}
			t.Logf("%s: time to deliver %s", p.name, at.Sub(sent))
		})
	})
}

func TestStoryDirectTLS(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		RunWith(t, p.srv, Users{"alice": 1, "bob": 1}, Options{Transport: DirectTLS}, func(alice, bob *Client) {
			if alice.ConnectionState().Version == 0 {
				t.Fatal("no TLS")
			}
			alice.Send(Chat(bob, "over XEP-0368"))
			bob.Expect(IsChat("over XEP-0368"))
		})
	})
}

func TestStoryMechanisms(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		acct := NewAccount(t, p.srv, "mech")
		c := MustConnect(t, p.srv, acct, Options{NoPresence: true})
		t.Logf("%s: picked %s over TLS %x", p.name, c.Mechanism(), c.ConnectionState().Version)
		if c.Mechanism() == Plain {
			t.Errorf("picked PLAIN although SCRAM is offered")
		}
		c.Close()
		// Prosody 0.12 and ejabberd 23.01 bind only with tls-unique, which
		// exists below TLS 1.3 only, and do not advertise it (XEP-0440).
		tls12 := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}
		for _, cfg := range []*tls.Config{nil, tls12} {
			for _, m := range offeredMechanismsAfterTLS(t, p, cfg) {
				opts := Options{Mechanism: m, NoPresence: true, TLS: cfg}
				if strings.HasSuffix(m, "-PLUS") {
					opts.ChannelBinding = TLSUnique
					if cfg == nil {
						// ejabberd offers -PLUS on TLS 1.3 too; nothing can
						// work there (see authenticate).
						continue
					}
				}
				c, err := Connect(context.Background(), t, p.srv, acct, opts)
				if err != nil {
					t.Errorf("%s: %v", m, err)
					continue
				}
				t.Logf("%s: %s over TLS %x ok", p.name, c.Mechanism(), c.ConnectionState().Version)
				c.Close()
			}
		}
		// A wrong password is a SASL not-authorized failure.
		bad := acct
		bad.Password += "x"
		_, err := Connect(context.Background(), t, p.srv, bad, Options{NoPresence: true})
		var se *SASLError
		if !errors.As(err, &se) || se.Condition != "not-authorized" {
			t.Errorf("wrong password: got %v, want a SASL not-authorized failure", err)
		}
	})
}

// withTLS is srv with another client TLS configuration.
type withTLS struct {
	Server
	cfg *tls.Config
}

func (w withTLS) TLSConfig() *tls.Config { return w.cfg }

// offeredMechanismsAfterTLS reads the mechanisms with a raw connection,
// over TLS configured by cfg (the server's when nil).
func offeredMechanismsAfterTLS(t *testing.T, p peer, cfg *tls.Config) []string {
	t.Helper()
	srv := p.srv
	if cfg != nil {
		srv = withTLS{srv, cfg}
	}
	r, err := DialRaw(context.Background(), srv, TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.OpenStream(p.srv.Domain()); err != nil {
		t.Fatal(err)
	}
	if err := r.StartTLS(); err != nil {
		t.Fatal(err)
	}
	f, err := r.OpenStream(p.srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	return offeredMechanisms(f)
}

func TestStoryStreamManagement(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		RunWith(t, p.srv, Users{"alice": 1, "bob": 1}, Options{StreamManagement: true}, func(alice, bob *Client) {
			if !bob.SMEnabled() {
				t.Fatal("stream management not enabled")
			}
			before := bob.SMHandled()
			for i := range 3 {
				alice.Send(Chat(bob, "sm "+string(rune('a'+i))))
			}
			for i := range 3 {
				bob.Expect(IsChat("sm " + string(rune('a'+i))))
			}
			if got := bob.SMHandled() - before; got != 3 {
				t.Errorf("bob counted %d handled stanzas, want 3", got)
			}
			// Ask the server for its count (XEP-0198 §4): alice sent 3
			// messages plus the initial presence.
			alice.SendRaw("<r xmlns='urn:xmpp:sm:3'/>")
			a := alice.Expect(IsSMAck())
			if a.Attr("h") == "" {
				t.Errorf("<a/> without h: %s", a)
			}
		})
	})
}

func TestStoryStanzaErrors(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1}, func(alice *Client) {
			// RFC 6121 §8.5.2.2.1 / §8.5.1: a message to a full JID of a
			// user that does not exist gets service-unavailable.
			nobody := RawAddr("nobody-" + randomHex(4) + "@" + p.srv.Domain() + "/x")
			alice.Send(Chat(nobody, "anyone?"))
			alice.Expect(IsMessageType("error"), IsStanzaError("cancel", "service-unavailable"), IsFrom(nobody))

			// An IQ of an unknown namespace to the server:
			// service-unavailable or feature-not-implemented (§8.4).
			res := alice.IQ(IQGet(RawAddr(p.srv.Domain()), xmlstream.NewElement("query", "urn:example:nothing")))
			AssertStanza(t, res, IsIQError(res.Attr("id")),
				Or(IsStanzaError("", "service-unavailable"), IsStanzaError("", "feature-not-implemented")))
		})
	})
}

func TestStoryVcard(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1, "bob": 1}, func(alice, bob *Client) {
			set := VcardSet(VcardField("FN", "Alice Liddell"), VcardField("NICKNAME", "alice"))
			AssertStanza(t, alice.IQ(set), IsIQResult(set.Attr("id")))
			res := bob.IQ(VcardGet(alice.Bare()))
			AssertStanza(t, res, IsIQResultWith(res.Attr("id"), HasChild("FN", NSVcard)))
			if fn := res.Child("vCard", NSVcard).ChildText("FN", NSVcard); fn != "Alice Liddell" {
				t.Errorf("FN = %q", fn)
			}
		})
	})
}

func TestStoryMAM(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1, "bob": 1}, func(alice, bob *Client) {
			start := time.Now().Add(-time.Minute)
			for _, body := range []string{"one", "two", "three"} {
				alice.Send(Chat(bob, body))
				bob.Expect(IsChat(body))
			}
			q := MAM(MAMQuery{QueryID: "q1", With: alice.Bare(), Start: start, Max: 2})
			bob.Send(q)
			for _, body := range []string{"one", "two"} {
				m := bob.Expect(IsMAMResult("q1"))
				fwd := m.Child("result", NSMAM).Child("forwarded", stanza.NSForward).Child("message", stanza.NSClient)
				AssertStanza(t, fwd, HasBody(body))
			}
			fin := bob.Expect(IsMAMFin(q.Attr("id")))
			last := fin.Child("fin", NSMAM).Child("set", stanza.NSRSM).ChildText("last", stanza.NSRSM)
			if last == "" {
				t.Fatalf("no RSM <last/> in %s", fin)
			}
			q2 := MAM(MAMQuery{QueryID: "q2", With: alice.Bare(), After: last})
			bob.Send(q2)
			m := bob.Expect(IsMAMResult("q2"))
			AssertStanza(t, m.Child("result", NSMAM).Child("forwarded", stanza.NSForward).Child("message", stanza.NSClient), HasBody("three"))
			bob.Expect(IsMAMFin(q2.Attr("id")))
		})
	})
}

func TestStoryOfflineDelivery(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1}, func(alice *Client) {
			bobAcct := NewAccount(t, p.srv, "bob")
			alice.Send(Chat(bobAcct.JID, "while you were away"))
			// Both peers handle a session's stanzas in order: the ping's
			// result means the message has been stored.
			alice.IQ(Ping(nil))
			// The message is stored (RFC 6121 §8.5.2.1.1, XEP-0160) and
			// delivered on bob's initial presence.
			bob := MustConnect(t, p.srv, bobAcct, Options{Name: "bob"})
			msg := bob.Expect(IsChat("while you were away"), IsFrom(alice))
			AssertStanza(t, msg, HasChild("delay", stanza.NSDelay))
		})
	})
}

func TestStoryConflict(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		Run(t, p.srv, Users{"alice": 1}, func(alice *Client) {
			// A second session binding the same resource: the server
			// either replaces the old one, which gets a conflict stream
			// error (RFC 6120 §7.7.2.2), or refuses the new bind.
			again, err := Connect(context.Background(), t, p.srv, alice.Account(), Options{Resource: alice.JID().Resource(), NoPresence: true})
			if err != nil {
				t.Logf("%s refused the second bind: %v", p.name, err)
				return
			}
			defer again.Close()
			_, err = alice.WaitFor(context.Background(), IsChat("never"))
			var se *stanza.StreamError
			if !errors.As(err, &se) || se.Condition != stanza.StreamConflict {
				t.Fatalf("the old session got %v, want a conflict stream error", err)
			}
			alice.Expect(IsStreamError("conflict"))
		})
	})
}

func TestStoryRawStreamErrors(t *testing.T) {
	forEachPeer(t, func(t *testing.T, p peer) {
		t.Run("not-well-formed", func(t *testing.T) {
			r, err := DialRaw(context.Background(), p.srv, TCP)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.OpenStream(p.srv.Domain()); err != nil {
				t.Fatal(err)
			}
			if h := r.Header(); h.Attr("from") != p.srv.Domain() || h.Attr("id") == "" {
				t.Errorf("stream header %s", h)
			}
			r.Send("<message><body>unclosed</message>")
			if err := r.ExpectStreamError("not-well-formed"); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(r.Bytes()), "not-well-formed") {
				t.Errorf("raw bytes lack the condition: %s", r.Bytes())
			}
		})
		t.Run("host-unknown", func(t *testing.T) {
			r, err := DialRaw(context.Background(), p.srv, TCP)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = r.OpenStream("unknown.example")
			var se *stanza.StreamError
			if !errors.As(err, &se) {
				t.Fatalf("OpenStream: %v, want a stream error", err)
			}
			if err := r.ExpectStreamError("host-unknown"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("full negotiation", func(t *testing.T) {
			acct := NewAccount(t, p.srv, "raw")
			r, err := DialRaw(context.Background(), p.srv, DirectTLS)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.OpenStream(p.srv.Domain()); err != nil {
				t.Fatal(err)
			}
			mech, err := r.Auth(acct.Localpart, acct.Password)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.OpenStream(p.srv.Domain()); err != nil {
				t.Fatal(err)
			}
			j, err := r.Bind("raw")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: raw session %s authenticated with %s", p.name, j, mech)
			r.Send("</stream:stream>")
			if err := r.ExpectClosed(); err != nil {
				t.Fatal(err)
			}
		})
	})
}
