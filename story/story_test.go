package story_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Stories run against Meerkat and the peer servers (see peer_test.go).
// Each runs as a subtest per peer, in parallel; the second argument of
// forEachPeer lists the capabilities beyond the core it needs.

func TestStoryChat(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
			alice.Send(story.Chat(bob, "Hi, Bob!"))
			msg := bob.Expect(story.IsChat("Hi, Bob!"), story.IsFrom(alice))
			story.AssertStanza(t, msg, story.IsTo(bob))

			bob.Send(story.Chat(alice.Bare(), "Hi, Alice!"))
			alice.Expect(story.IsChat("Hi, Alice!"), story.IsFrom(bob.Bare()))
			alice.ExpectNothing(100 * time.Millisecond)
		})
	})
}

func TestStoryResourcesAndOrder(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"bob": 2, "alice": 1}, func(alice, bob1, bob2 *story.Client) {
			if alice.Bare() == bob1.Bare() || bob1.Bare() != bob2.Bare() || bob1.JID() == bob2.JID() {
				t.Fatalf("clients are not in the documented order: %s %s %s", alice.JID(), bob1.JID(), bob2.JID())
			}
			if !strings.HasPrefix(alice.JID().Local(), "alice-") || bob2.JID().Resource() != "res2" {
				t.Fatalf("unexpected names: %s %s", alice.JID(), bob2.JID())
			}
			// The runner took all presence broadcasts: queues are empty.
			for _, c := range []*story.Client{alice, bob1, bob2} {
				if q := c.Pending(); len(q) != 0 {
					t.Fatalf("%s starts with %d queued elements", c.Name(), len(q))
				}
			}
			alice.Send(story.Chat(bob2, "to the second resource"))
			bob2.Expect(story.IsChat("to the second resource"))
			bob1.ExpectNothing(200*time.Millisecond, story.IsChat("to the second resource"))
		})
	})
}

func TestStoryIQs(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1}, func(alice *story.Client) {
			domain := story.RawAddr(p.srv.Domain())
			res := alice.IQ(story.Ping(domain))
			story.AssertStanza(t, res, story.IsIQResult(res.Attr("id")), story.IsFrom(domain))

			info := alice.IQ(story.DiscoInfo(domain, ""))
			story.AssertStanza(t, info, story.IsIQResultWith("", story.HasChild("identity", stanza.NSDiscoInfo)))

			v := alice.IQ(story.Version(domain))
			story.AssertStanza(t, v, story.IsIQResultWith(v.Attr("id"), story.HasChild("name", story.NSVersion)))

			// An IQ to a user that does not exist is answered with an error
			// (RFC 6121 §8.5.1: service-unavailable, or item-not-found).
			nobody := story.RawAddr("nobody-" + randomHex(4) + "@" + p.srv.Domain())
			e := alice.IQ(story.VcardGet(nobody))
			story.AssertStanza(t, e, story.Or(story.IsIQResult(""), story.IsIQError("")))
		})
	})
}

func TestStoryRosterGet(t *testing.T) {
	forEachPeer(t, []string{capRoster}, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1}, func(alice *story.Client) {
			roster := alice.IQ(story.RosterGet())
			story.AssertStanza(t, roster, story.IsRosterResult(roster.Attr("id")))
		})
	})
}

func TestStoryRosterAndSubscription(t *testing.T) {
	forEachPeer(t, []string{capRoster, capSubscription}, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
			// Roster pushes go to interested resources: those that asked
			// for the roster (RFC 6121 §2.1.6).
			alice.IQ(story.RosterGet())
			bob.IQ(story.RosterGet())
			set := story.RosterSet(bob.Bare(), "Bobby", "friends")
			alice.Send(set)
			alice.Expect(story.IsRosterPush(bob.Bare()))
			alice.Expect(story.IsIQResult(set.Attr("id")))

			// RFC 6121 §3.1: subscription request, approval, pushes, presence.
			alice.Send(story.Subscribe(bob.Bare()))
			alice.Expect(story.IsRosterPush(bob.Bare()))
			bob.Expect(story.IsPresence(stanza.PresenceSubscribe, alice.Bare()))
			bob.Send(story.Subscribed(alice.Bare()))
			bob.Expect(story.IsRosterPush(alice.Bare()))
			alice.Expect(story.IsPresence(stanza.PresenceSubscribed, bob.Bare()))
			push := alice.Expect(story.IsRosterPush(bob.Bare()))
			if sub := push.Child("query", stanza.NSRoster).Child("item", stanza.NSRoster).Attr("subscription"); sub != "to" {
				t.Errorf("after approval alice's item has subscription %q, want \"to\"", sub)
			}
			alice.Expect(story.IsPresence("", bob))

			alice.Send(story.RosterRemove(bob.Bare()))
			alice.Expect(story.IsRosterPush(bob.Bare()))
		})
	})
}

func TestStoryLatencyStamp(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
			alice.Send(story.StampSendTime(story.Chat(bob, "timed")))
			msg, at := bob.ExpectTimed(story.IsChat("timed"))
			sent, ok := story.SendTimeOf(msg)
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
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		story.RunWith(t, p.srv, story.Users{"alice": 1, "bob": 1}, story.Options{Transport: story.DirectTLS}, func(alice, bob *story.Client) {
			if alice.ConnectionState().Version == 0 {
				t.Fatal("no TLS")
			}
			alice.Send(story.Chat(bob, "over XEP-0368"))
			bob.Expect(story.IsChat("over XEP-0368"))
		})
	})
}

// TestStoryWebTransports: the same conversation over WebSocket (RFC 7395)
// and BOSH (XEP-0206), with a TCP client on the other end; a peer that
// does not offer a transport skips it.
func TestStoryWebTransports(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		for _, tr := range []story.Transport{story.WebSocket, story.BOSH} {
			t.Run(tr.String(), func(t *testing.T) {
				if _, ok := p.srv.Addr(tr); !ok {
					t.Skipf("%s does not offer %s here", p.name, tr)
				}
				web := story.MustConnect(t, p.srv, story.NewAccount(t, p.srv, "web"), story.Options{Transport: tr})
				tcp := story.MustConnect(t, p.srv, story.NewAccount(t, p.srv, "tcp"), story.Options{})
				web.Send(story.Chat(tcp.JID(), "from the browser"))
				tcp.Expect(story.IsChat("from the browser"), story.IsFrom(web.JID()))
				tcp.Send(story.Chat(web.JID(), "to the browser"))
				web.Expect(story.IsChat("to the browser"), story.IsFrom(tcp.JID()))
				ping := story.Ping(nil)
				story.AssertStanza(t, web.IQ(ping), story.IsIQResult(ping.Attr("id")))
			})
		}
	})
}

func TestStoryMechanisms(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		acct := story.NewAccount(t, p.srv, "mech")
		c := story.MustConnect(t, p.srv, acct, story.Options{NoPresence: true})
		t.Logf("%s: picked %s over TLS %x", p.name, c.Mechanism(), c.ConnectionState().Version)
		if c.Mechanism() == story.Plain {
			t.Errorf("picked PLAIN although SCRAM is offered")
		}
		c.Close()
		// Every mechanism offered after STARTTLS works, over TLS 1.3 (or
		// the best the server has) and over TLS 1.2. A -PLUS mechanism is
		// tried with each channel binding type the server advertises
		// (XEP-0440) that exists on the TLS version; a server that does not
		// advertise gets the default of RFC 5802 §6 below TLS 1.3,
		// tls-unique (Prosody 0.12 and ejabberd 23.01 bind only with it).
		// On TLS 1.3 the default would be tls-exporter (RFC 9266 §3), which
		// ejabberd 23.01 offers -PLUS for but does not implement: such
		// -PLUS offers are not tried.
		tls12 := p.srv.TLSConfig().Clone()
		tls12.MaxVersion = tls.VersionTLS12
		for _, cfg := range []*tls.Config{nil, tls12} {
			mechs, bindings, advertised, version := offeredAfterTLS(t, p, cfg)
			for _, m := range mechs {
				types := []string{""}
				if strings.HasSuffix(m, "-PLUS") {
					types = usableBindings(bindings, advertised, version)
				}
				for _, cb := range types {
					opts := story.Options{Mechanism: m, ChannelBinding: cb, NoPresence: true, TLS: cfg}
					what := strings.TrimSpace(m + " " + cb)
					c, err := story.Connect(context.Background(), t, p.srv, acct, opts)
					if err != nil {
						t.Errorf("%s over TLS %x: %v", what, version, err)
						continue
					}
					t.Logf("%s: %s over TLS %x ok", p.name, what, c.ConnectionState().Version)
					c.Close()
				}
			}
		}
		// A wrong password is a SASL not-authorized failure.
		bad := acct
		bad.Password += "x"
		_, err := story.Connect(context.Background(), t, p.srv, bad, story.Options{NoPresence: true})
		var se *story.SASLError
		if !errors.As(err, &se) || se.Condition != "not-authorized" {
			t.Errorf("wrong password: got %v, want a SASL not-authorized failure", err)
		}
	})
}

// withTLS is srv with another client TLS configuration.
type withTLS struct {
	story.Server
	cfg *tls.Config
}

func (w withTLS) TLSConfig() *tls.Config { return w.cfg }

// offeredAfterTLS reads, with a raw connection over TLS configured by cfg
// (the server's when nil), the SASL mechanisms offered after STARTTLS
// (RFC 6120 §6.4.1), the channel binding types advertised (XEP-0440; ok is
// false without an advertisement) and the TLS version.
func offeredAfterTLS(t *testing.T, p peer, cfg *tls.Config) (mechs, bindings []string, ok bool, version uint16) {
	t.Helper()
	srv := p.srv
	if cfg != nil {
		srv = withTLS{srv, cfg}
	}
	r, err := story.DialRaw(context.Background(), srv, story.TCP)
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
	if m := f.Child("mechanisms", stanza.NSSASL); m != nil {
		for c := range m.ChildrenNamed("mechanism", stanza.NSSASL) {
			mechs = append(mechs, strings.TrimSpace(c.Text()))
		}
	}
	if cb := f.Child("sasl-channel-binding", "urn:xmpp:sasl-cb:0"); cb != nil {
		ok = true
		for c := range cb.ChildrenNamed("channel-binding", "urn:xmpp:sasl-cb:0") {
			bindings = append(bindings, c.Attr("type"))
		}
	}
	st, _ := r.ConnectionState()
	return mechs, bindings, ok, st.Version
}

// usableBindings returns the channel binding types to try a -PLUS
// mechanism with on a TLS connection of the given version: those
// advertised that exist on it (tls-exporter as the client computes it
// needs TLS 1.3, RFC 9266 §2; tls-unique does not exist on TLS 1.3, RFC
// 8446 §C.5), or when nothing is advertised tls-unique below TLS 1.3
// (RFC 5802 §6) and nothing on TLS 1.3 (see TestStoryMechanisms).
func usableBindings(advertised []string, ok bool, version uint16) []string {
	tls13 := version >= tls.VersionTLS13
	if !ok {
		if tls13 {
			return nil
		}
		return []string{story.TLSUnique}
	}
	var out []string
	for _, cb := range advertised {
		switch {
		case cb == story.TLSExporter && !tls13, cb == story.TLSUnique && tls13:
		case cb == story.TLSExporter, cb == story.TLSServerEndPoint, cb == story.TLSUnique:
			out = append(out, cb)
		}
	}
	return out
}

func TestStoryStreamManagement(t *testing.T) {
	forEachPeer(t, []string{capSM}, func(t *testing.T, p peer) {
		story.RunWith(t, p.srv, story.Users{"alice": 1, "bob": 1}, story.Options{StreamManagement: true}, func(alice, bob *story.Client) {
			if !bob.SMEnabled() {
				t.Fatal("stream management not enabled")
			}
			before := bob.SMHandled()
			for i := range 3 {
				alice.Send(story.Chat(bob, "sm "+string(rune('a'+i))))
			}
			for i := range 3 {
				bob.Expect(story.IsChat("sm " + string(rune('a'+i))))
			}
			if got := bob.SMHandled() - before; got != 3 {
				t.Errorf("bob counted %d handled stanzas, want 3", got)
			}
			// Ask the server for its count (XEP-0198 §4): alice sent 3
			// messages plus the initial presence.
			alice.SendRaw("<r xmlns='urn:xmpp:sm:3'/>")
			a := alice.Expect(story.IsSMAck())
			if a.Attr("h") == "" {
				t.Errorf("<a/> without h: %s", a)
			}
		})
	})
}

func TestStoryStanzaErrors(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1}, func(alice *story.Client) {
			// RFC 6121 §8.5.2.2.1 / §8.5.1: a message to a full JID of a
			// user that does not exist gets service-unavailable.
			nobody := story.RawAddr("nobody-" + randomHex(4) + "@" + p.srv.Domain() + "/x")
			alice.Send(story.Chat(nobody, "anyone?"))
			alice.Expect(story.IsMessageType("error"), story.IsStanzaError("cancel", "service-unavailable"), story.IsFrom(nobody))

			// An IQ of an unknown namespace to the server:
			// service-unavailable or feature-not-implemented (RFC 6120 §8.4).
			res := alice.IQ(story.IQGet(story.RawAddr(p.srv.Domain()), xmlstream.NewElement("query", "urn:example:nothing")))
			story.AssertStanza(t, res, story.IsIQError(res.Attr("id")),
				story.Or(story.IsStanzaError("", "service-unavailable"), story.IsStanzaError("", "feature-not-implemented")))
		})
	})
}

func TestStoryVcard(t *testing.T) {
	forEachPeer(t, []string{capVcard}, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
			set := story.VcardSet(story.VcardField("FN", "Alice Liddell"), story.VcardField("NICKNAME", "alice"))
			story.AssertStanza(t, alice.IQ(set), story.IsIQResult(set.Attr("id")))
			res := bob.IQ(story.VcardGet(alice.Bare()))
			story.AssertStanza(t, res, story.IsIQResultWith(res.Attr("id"), story.HasChild("FN", story.NSVcard)))
			if fn := res.Child("vCard", story.NSVcard).ChildText("FN", story.NSVcard); fn != "Alice Liddell" {
				t.Errorf("FN = %q", fn)
			}
		})
	})
}

func TestStoryMAM(t *testing.T) {
	forEachPeer(t, []string{capMAM}, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
			start := time.Now().Add(-time.Minute)
			for _, body := range []string{"one", "two", "three"} {
				alice.Send(story.Chat(bob, body))
				bob.Expect(story.IsChat(body))
			}
			q := story.MAM(story.MAMQuery{QueryID: "q1", With: alice.Bare(), Start: start, Max: 2})
			bob.Send(q)
			for _, body := range []string{"one", "two"} {
				m := bob.Expect(story.IsMAMResult("q1"))
				fwd := m.Child("result", story.NSMAM).Child("forwarded", stanza.NSForward).Child("message", stanza.NSClient)
				story.AssertStanza(t, fwd, story.HasBody(body))
			}
			fin := bob.Expect(story.IsMAMFin(q.Attr("id")))
			last := fin.Child("fin", story.NSMAM).Child("set", stanza.NSRSM).ChildText("last", stanza.NSRSM)
			if last == "" {
				t.Fatalf("no RSM <last/> in %s", fin)
			}
			q2 := story.MAM(story.MAMQuery{QueryID: "q2", With: alice.Bare(), After: last})
			bob.Send(q2)
			m := bob.Expect(story.IsMAMResult("q2"))
			story.AssertStanza(t, m.Child("result", story.NSMAM).Child("forwarded", stanza.NSForward).Child("message", stanza.NSClient), story.HasBody("three"))
			bob.Expect(story.IsMAMFin(q2.Attr("id")))
		})
	})
}

func TestStoryOfflineDelivery(t *testing.T) {
	forEachPeer(t, []string{capOffline}, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1}, func(alice *story.Client) {
			bobAcct := story.NewAccount(t, p.srv, "bob")
			alice.Send(story.Chat(bobAcct.JID, "while you were away"))
			// Both peers handle a session's stanzas in order: the ping's
			// result means the message has been stored.
			alice.IQ(story.Ping(nil))
			// The message is stored (RFC 6121 §8.5.2.1.1, XEP-0160) and
			// delivered on bob's initial presence.
			bob := story.MustConnect(t, p.srv, bobAcct, story.Options{Name: "bob"})
			msg := bob.Expect(story.IsChat("while you were away"), story.IsFrom(alice))
			story.AssertStanza(t, msg, story.HasChild("delay", stanza.NSDelay))
		})
	})
}

func TestStoryConflict(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		story.Run(t, p.srv, story.Users{"alice": 1}, func(alice *story.Client) {
			// A second session binding the same resource: the server
			// either replaces the old one, which gets a conflict stream
			// error (RFC 6120 §7.7.2.2), or refuses the new bind.
			again, err := story.Connect(context.Background(), t, p.srv, alice.Account(), story.Options{Resource: alice.JID().Resource(), NoPresence: true})
			if err != nil {
				t.Logf("%s refused the second bind: %v", p.name, err)
				return
			}
			defer again.Close()
			_, err = alice.WaitFor(context.Background(), story.IsChat("never"))
			var se *stanza.StreamError
			if !errors.As(err, &se) || se.Condition != stanza.StreamConflict {
				t.Fatalf("the old session got %v, want a conflict stream error", err)
			}
			alice.Expect(story.IsStreamError("conflict"))
		})
	})
}

func TestStoryRawStreamErrors(t *testing.T) {
	forEachPeer(t, nil, func(t *testing.T, p peer) {
		t.Run("not-well-formed", func(t *testing.T) {
			r, err := story.DialRaw(context.Background(), p.srv, story.TCP)
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
			r, err := story.DialRaw(context.Background(), p.srv, story.TCP)
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
			acct := story.NewAccount(t, p.srv, "raw")
			r, err := story.DialRaw(context.Background(), p.srv, story.DirectTLS)
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
