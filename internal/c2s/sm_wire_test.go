package c2s_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Stream management stories that check what goes over the wire, element
// by element, with raw clients: when the server asks for acks, the
// counters across their wrap-around, the 'max' of <enabled/>, and the 'h'
// of <failed/>. Each runs over TCP and WebSocket.

// smStreamTransports are the transports of the SM stories that do not
// also run over BOSH.
var smStreamTransports = []story.Transport{story.TCP, story.WebSocket}

// wire renders el as on the wire, in the jabber:client stream scope.
func wire(el *xmlstream.Element) string {
	return string(el.AppendXML(nil, xmlstream.StreamScope(stanza.NSClient)))
}

// expectWire reads the next element and checks it is exactly want.
func expectWire(t *testing.T, r *story.Raw, want string) *xmlstream.Element {
	t.Helper()
	el, err := r.Next()
	if err != nil {
		t.Fatalf("expected %s: %v", want, err)
	}
	if got := wire(el); got != want {
		t.Fatalf("expected\n    %s\ngot\n    %s", want, got)
	}
	return el
}

// rawLogin authenticates acct over tr with a raw client and opens the
// stream after authentication; with a resource it also binds it.
func rawLogin(t *testing.T, srv *servertest.Server, tr story.Transport, acct story.Account, resource string) (*story.Raw, jid.JID) {
	t.Helper()
	r := dialSecure(t, srv, tr)
	if _, err := r.Auth(acct.Localpart, acct.Password); err != nil {
		t.Fatal(err)
	}
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	if resource == "" {
		return r, jid.JID{}
	}
	full, err := r.Bind(resource)
	if err != nil {
		t.Fatal(err)
	}
	return r, full
}

// rawEnable sends <enable/> with the given attributes and returns the
// <enabled/> answer.
func rawEnable(t *testing.T, r *story.Raw, attrs string) *xmlstream.Element {
	t.Helper()
	r.Send("<enable xmlns='urn:xmpp:sm:3'" + attrs + "/>")
	el, err := r.Next()
	if err != nil || el.Name != "enabled" || el.NS != story.NSSM {
		t.Fatalf("enable%s: %v %v", attrs, el, err)
	}
	return el
}

func waitClosed(t *testing.T, closed *servertest.Ended, who jid.JID) {
	t.Helper()
	closed.Wait(t, who, 1)
}

const (
	smR     = "<r xmlns='urn:xmpp:sm:3'/>"
	smAckFm = "<a xmlns='urn:xmpp:sm:3' h='%d'/>"
)

// expectChat reads the next element and checks it is exactly the chat
// message story.Chat(to, body) from 'from' as the server delivers it,
// stamped with a stanza id (XEP-0359) by the recipient's archive.
func expectChat(t *testing.T, r *story.Raw, from, to jid.JID, body string) {
	t.Helper()
	el, err := r.Next()
	if err != nil {
		t.Fatalf("expected %q: %v", body, err)
	}
	want := fmt.Sprintf("<message to='%s' type='chat' from='%s'><body>%s</body><stanza-id xmlns='urn:xmpp:sid:0' by='%s' id='%s'/></message>",
		to, from, body, to.Bare(), el.Child("stanza-id", stanza.NSStanzaID).Attr("id"))
	if got := wire(el); got != want {
		t.Fatalf("expected\n    %s\ngot\n    %s", want, got)
	}
}

// TestStorySMAckRequestsEveryN: with sm_ack_every = 3 the server sends
// <r/> right after every third stanza it sends, counting every stanza
// (the reflected presence included), whether or not the client answered
// the previous request; nothing else asks (the interval is an hour).
func TestStorySMAckRequestsEveryN(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMAckEvery = 3
		c.C2S.SMAckInterval = config.Duration{Duration: time.Hour}
	})
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			r, bob := rawLogin(t, srv, tr, smAccount(t, srv, "bob"), "phone")
			if got := wire(rawEnable(t, r, "")); got != "<enabled xmlns='urn:xmpp:sm:3'/>" {
				t.Fatalf("enabled: %s", got)
			}
			r.Send("<presence xmlns='jabber:client'/>")
			expectWire(t, r, fmt.Sprintf("<presence from='%s'/>", bob)) // 1
			send := func(from, to int) {
				for i := from; i <= to; i++ {
					alice.Send(story.Chat(bob, "m"+strconv.Itoa(i)))
				}
			}
			send(1, 5)
			expectChat(t, r, alice.JID(), bob, "m1") // 2
			expectChat(t, r, alice.JID(), bob, "m2") // 3
			expectWire(t, r, smR)
			expectChat(t, r, alice.JID(), bob, "m3") // 4
			expectChat(t, r, alice.JID(), bob, "m4") // 5
			expectChat(t, r, alice.JID(), bob, "m5") // 6: the first <r/> was not answered
			expectWire(t, r, smR)
			r.Send(fmt.Sprintf(smAckFm, 6))
			// Our own request is answered at once, with the one stanza we
			// sent: nothing came in between, no <r/> in particular.
			r.Send(smR)
			expectWire(t, r, fmt.Sprintf(smAckFm, 1))
			send(6, 9)
			expectChat(t, r, alice.JID(), bob, "m6") // 7
			expectChat(t, r, alice.JID(), bob, "m7") // 8
			expectChat(t, r, alice.JID(), bob, "m8") // 9
			expectWire(t, r, smR)
			expectChat(t, r, alice.JID(), bob, "m9") // 10
			r.Send(smR)
			expectWire(t, r, fmt.Sprintf(smAckFm, 1))
		})
	}
}

// TestStorySMAckRequestsInterval: with sm_ack_every out of reach, the
// server asks for an ack once stanzas have waited sm_ack_interval, not
// before, once for what waits; acknowledged, the timer starts again with
// the next stanza.
func TestStorySMAckRequestsInterval(t *testing.T) {
	t.Parallel()
	const interval = 150 * time.Millisecond
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMAckEvery = 1000
		c.C2S.SMAckInterval = config.Duration{Duration: interval}
	})
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			r, bob := rawLogin(t, srv, tr, smAccount(t, srv, "bob"), "phone")
			rawEnable(t, r, "")
			for round := 1; round <= 2; round++ {
				start := time.Now()
				alice.Send(story.Chat(bob, "m"+strconv.Itoa(round)))
				alice.Send(story.Chat(bob, "n"+strconv.Itoa(round)))
				expectChat(t, r, alice.JID(), bob, "m"+strconv.Itoa(round))
				expectChat(t, r, alice.JID(), bob, "n"+strconv.Itoa(round))
				expectWire(t, r, smR)
				if waited := time.Since(start); waited < interval {
					t.Fatalf("round %d: <r/> after %s, before the interval (%s)", round, waited, interval)
				}
				r.Send(fmt.Sprintf(smAckFm, 2*round))
				// Our request is answered at once (nothing came from
				// alice: h is 0), and no other <r/> came before the answer.
				r.Send(smR)
				expectWire(t, r, fmt.Sprintf(smAckFm, 0))
			}
		})
	}
}

// TestStorySMCountersWrap: the counters start near 2^32 (a test setting)
// and wrap to 0 as XEP-0198 §4 says: acks across the wrap, the server's
// answers to <r/>, <resumed h='…'/> and the retransmission of exactly
// the unacknowledged stanzas, and handled-count-too-high, all modulo 2^32.
func TestStorySMCountersWrap(t *testing.T) {
	t.Parallel()
	const start = math.MaxUint32 - 2
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMCounterStart = start
		c.C2S.SMAckEvery = 1000
		c.C2S.SMAckInterval = config.Duration{Duration: time.Hour}
	})
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			bobAcct := smAccount(t, srv, "bob")
			r, bob := rawLogin(t, srv, tr, bobAcct, "phone")
			id := rawEnable(t, r, " resume='true'").Attr("id")
			r.Send("<presence xmlns='jabber:client'/>")
			expectWire(t, r, fmt.Sprintf("<presence from='%s'/>", bob)) // out 2^32-2
			for i := 1; i <= 4; i++ {
				alice.Send(story.Chat(bob, "m"+strconv.Itoa(i)))
			}
			for i := 1; i <= 4; i++ {
				expectChat(t, r, alice.JID(), bob, "m"+strconv.Itoa(i)) // out 2^32-1, 0, 1, 2
			}
			r.Send(fmt.Sprintf(smAckFm, 0)) // the presence, m1 and m2
			r.Send(smR)
			expectWire(t, r, fmt.Sprintf(smAckFm, uint32(math.MaxUint32-1))) // in: the presence
			for i := 1; i <= 2; i++ {
				r.SendElement(story.Chat(alice.JID(), "x"+strconv.Itoa(i)))
				alice.Expect(story.IsChat("x" + strconv.Itoa(i)))
			}
			r.Send(smR)
			expectWire(t, r, fmt.Sprintf(smAckFm, 0)) // in: 2^32-1, then 0
			r.Close()
			alice.Send(story.Chat(bob, "m5")) // out 3, kept for the resumption
			alice.IQ(story.Ping(nil))         // routed by now

			r2, _ := rawLogin(t, srv, tr, bobAcct, "")
			r2.Send(fmt.Sprintf("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='1'/>", id)) // m3 handled
			expectWire(t, r2, fmt.Sprintf("<resumed xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>", id))
			expectChat(t, r2, alice.JID(), bob, "m4")
			expectChat(t, r2, alice.JID(), bob, "m5")
			expectWire(t, r2, smR)
			r2.Send(fmt.Sprintf(smAckFm, 3))
			r2.Send(fmt.Sprintf(smAckFm, 4))
			expectWire(t, r2, "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"+
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>you acknowledged 4 stanzas, but only 3 were sent</text>"+
				"<handled-count-too-high xmlns='urn:xmpp:sm:3' h='4' send-count='3'/></stream:error>")
		})
	}
}

// TestStorySMCountersWrapClient: the story client counts across the wrap
// too: it answers the server's <r/> with wrapped counts and resumes with
// a wrapped 'h', and gets exactly what it had not handled.
func TestStorySMCountersWrapClient(t *testing.T) {
	t.Parallel()
	var start uint32 = math.MaxUint32 - 2
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.SMCounterStart = start })
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			bobAcct := smAccount(t, srv, "bob")
			bob := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, StreamManagement: true, Resume: true, SMCounterStart: start})
			for i := range 7 {
				alice.Send(story.Chat(bob.JID(), "w"+strconv.Itoa(i)))
			}
			for i := range 7 {
				bob.Expect(story.IsChat("w" + strconv.Itoa(i)))
			}
			// The presence and 7 messages; the server asked after 5 (the
			// default), across the wrap, and took the answer.
			if h := bob.SMHandled(); h != start+8 || h != 5 {
				t.Fatalf("handled %d", h)
			}
			if a := bob.SMAcked(); a != start+5 {
				t.Fatalf("acked %d, want %d", a, start+5)
			}
			bob.Cut()
			alice.Send(story.Chat(bob.JID(), "after the cut"))
			alice.IQ(story.Ping(nil))
			resumed := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, ResumeFrom: bob})
			resumed.Expect(story.IsChat("after the cut"))
			for _, p := range resumed.Pending() {
				if p.El.Name == "message" {
					t.Fatalf("retransmitted although handled: %s", wire(p.El))
				}
			}
			if h := resumed.SMHandled(); h != 6 {
				t.Fatalf("handled %d after the resumption", h)
			}
		})
	}
}

// TestStorySMMax: <enabled max='…'/> is the resumption timeout in
// seconds: the configured one by default (300), the client's 'max' up to
// the configured limit (an hour), and at least 1 for a timeout under a
// second. The client's shorter 'max' is honoured: its session ends then.
func TestStorySMMax(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	short := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMResumeTimeout = config.Duration{Duration: 300 * time.Millisecond}
	})
	closed := srv.WatchEnded()
	enabled := func(id, max string) string {
		return fmt.Sprintf("<enabled xmlns='urn:xmpp:sm:3' id='%s' resume='true' max='%s'/>", id, max)
	}
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			acct := smAccount(t, srv, "bob")
			for i, c := range []struct{ ask, want string }{{"", "300"}, {" max='7200'", "3600"}, {" max='0'", "300"}, {" max='60'", "60"}} {
				r, _ := rawLogin(t, srv, tr, acct, "r"+strconv.Itoa(i))
				el := rawEnable(t, r, " resume='true'"+c.ask)
				if got, want := wire(el), enabled(el.Attr("id"), c.want); got != want {
					t.Errorf("asking%s: %s, want %s", c.ask, got, want)
				}
				r.Close()
			}
			r, _ := rawLogin(t, short, tr, smAccount(t, short, "bob"), "r")
			if el := rawEnable(t, r, " resume='true'"); wire(el) != enabled(el.Attr("id"), "1") {
				t.Errorf("a 300 ms timeout: %s", wire(el))
			}
			// Asking for 1 s instead of 300: the session ends a second
			// after the connection is lost (waitClosed gives up after 10).
			r, bob := rawLogin(t, srv, tr, acct, "phone")
			if el := rawEnable(t, r, " resume='1' max='1'"); wire(el) != enabled(el.Attr("id"), "1") {
				t.Errorf("asking for 1 s: %s", wire(el))
			}
			r.Close()
			start := time.Now()
			waitClosed(t, closed, bob)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the session ended after %s", d)
			}
		})
	}
}

// TestStorySMFailedH: a resumption of a session that timed out, or that a
// new session replaced, fails with the count of stanzas the server had
// handled (XEP-0198 §5), so that the client knows what to send again; a
// session of another account is just unknown.
func TestStorySMFailedH(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMResumeTimeout = config.Duration{Duration: 200 * time.Millisecond}
	})
	closed := srv.WatchEnded()
	failed := func(h string) string {
		if h != "" {
			h = " h='" + h + "'"
		}
		return "<failed xmlns='urn:xmpp:sm:3'" + h + "><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
	}
	resumeFails := func(t *testing.T, acct story.Account, tr story.Transport, prev *story.Client, want string) {
		t.Helper()
		_, err := story.Connect(context.Background(), t, srv, acct, story.Options{Transport: tr, ResumeFrom: prev})
		var re *story.ResumeError
		if !errors.As(err, &re) {
			t.Fatalf("resumption: %v", err)
		}
		if got := wire(re.Failed); got != want {
			t.Fatalf("resumption failed with\n    %s\nwant\n    %s", got, want)
		}
	}
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			aliceAcct := smAccount(t, srv, "alice")
			alice := story.MustConnect(t, srv, aliceAcct, story.Options{})
			bobAcct := smAccount(t, srv, "bob")

			// Timed out: the presence and three messages were handled.
			bob := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, StreamManagement: true, Resume: true})
			for i := range 3 {
				bob.Send(story.Chat(alice.JID(), "b"+strconv.Itoa(i)))
				alice.Expect(story.IsChat("b" + strconv.Itoa(i)))
			}
			bob.Cut()
			waitClosed(t, closed, bob.JID())
			resumeFails(t, bobAcct, tr, bob, failed("4"))
			// Not to alice, even with bob's id.
			r, _ := rawLogin(t, srv, tr, aliceAcct, "")
			r.Send(fmt.Sprintf("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>", bob.SMID()))
			expectWire(t, r, failed(""))

			// Replaced by a new session on the same resource: the
			// presence and one message.
			phone := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, Resource: "phone",
				StreamManagement: true, Resume: true, ResumeMax: 600})
			phone.Send(story.Chat(alice.JID(), "from the phone"))
			alice.Expect(story.IsChat("from the phone"))
			story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, Resource: "phone"})
			waitClosed(t, closed, phone.JID())
			resumeFails(t, bobAcct, tr, phone, failed("2"))
		})
	}
}

// TestStorySMUnackedKinds: what becomes of each kind of stanza the client
// had not acknowledged when its session ends without resumption (RFC 6121
// §8.5.3.2, XEP-0198 §4): chat and normal messages go to the other
// resource with a <delay/> of when they first came (XEP-0203); a
// groupchat message and an IQ request are bounced to the sender with
// <service-unavailable/>; a headline is dropped; a carbon copy is dropped
// too (the laptop has the original). A rerouted message keeps the stanza
// ID it was archived with: it is not archived twice. Elements are compared exactly, and
// in order: the marker that ends each sequence shows nothing else came.
func TestStorySMUnackedKinds(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMAckEvery = 1000 // nothing is acknowledged
		c.C2S.SMAckInterval = config.Duration{Duration: time.Hour}
	})
	closed := srv.WatchEnded()
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			bobAcct := smAccount(t, srv, "bob")
			phone := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, StreamManagement: true, Resource: "phone"})
			laptop := story.MustConnect(t, srv, bobAcct, story.Options{Resource: "laptop"})
			phone.Expect(story.IsPresence("", laptop.JID()))
			laptop.Expect(story.IsPresence("", phone.JID()))
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			phone.IQ(story.IQSet(nil, xmlstream.NewElement("enable", "urn:xmpp:carbons:2")))

			// A message to the laptop: the phone gets a carbon copy.
			alice.Send(story.Chat(laptop.JID(), "to the laptop"))
			laptop.Expect(story.IsChat("to the laptop"))
			phone.Expect(story.HasChild("received", "urn:xmpp:carbons:2"))

			before := time.Now().Add(-time.Millisecond)
			alice.Send(story.Chat(phone.JID(), "chat"))
			alice.Send(story.Message("", phone.JID(), "normal"))
			alice.Send(story.Groupchat(phone.JID(), "groupchat"))
			alice.Send(story.Message("headline", phone.JID(), "headline"))
			req := story.IQGet(phone.JID(), xmlstream.NewElement("query", "urn:example:unanswered"))
			req.SetAttr("id", "q1")
			alice.Send(req)
			got := map[string]*xmlstream.Element{}
			for _, body := range []string{"chat", "normal", "groupchat", "headline"} {
				got[body] = phone.Expect(story.HasBody(body))
			}
			got["iq"] = phone.Expect(story.IsIQ("get"))
			after := time.Now()
			phone.Cut() // no resumption: the session ends at once
			closed.Wait(t, phone.JID(), 1)

			// The laptop: chat and normal, stamped; the phone's
			// unavailable presence; the marker.
			alice.Send(story.Chat(laptop.JID(), "marker"))
			els := laptop.Collect(4)
			for i, body := range []string{"chat", "normal"} {
				d := els[i].Child("delay", stanza.NSDelay)
				if d == nil {
					t.Fatalf("%s rerouted without <delay/>: %s", body, wire(els[i]))
				}
				stamp, err := time.Parse(time.RFC3339Nano, d.Attr("stamp"))
				if err != nil || stamp.Before(before.Truncate(time.Millisecond)) || stamp.After(after) {
					t.Errorf("%s: stamp %s, not between %s and %s", body, d.Attr("stamp"), before.UTC(), after.UTC())
				}
				// The original — with the stanza ID the archive gave it
				// (XEP-0359: archived once, not again) — to the bare JID,
				// with a <delay/>.
				want := got[body].ShallowCopy().SetAttr("to", bobAcct.JID.String())
				want.AddChild(xmlstream.NewElement("delay", stanza.NSDelay).SetAttr("from", srv.Domain()).SetAttr("stamp", d.Attr("stamp")))
				if wire(els[i]) != wire(want) {
					t.Errorf("%s rerouted as\n    %s\nwant\n    %s", body, wire(els[i]), wire(want))
				}
			}
			if want := fmt.Sprintf("<presence from='%s' type='unavailable'/>", phone.JID()); wire(els[2]) != want {
				t.Errorf("third: %s, want %s", wire(els[2]), want)
			}
			if body := els[3].ChildText("body", stanza.NSClient); body != "marker" {
				t.Errorf("after the rerouted messages: %s", wire(els[3]))
			}

			// Alice: the errors for the groupchat message and the IQ, then
			// the marker.
			laptop.Send(story.Chat(alice.JID(), "marker"))
			els = alice.Collect(3)
			for i, k := range []string{"groupchat", "iq"} {
				want := stanza.ErrorReply(got[k], stanza.NewError(stanza.ServiceUnavailable, ""))
				if wire(els[i]) != wire(want) {
					t.Errorf("%s bounced as\n    %s\nwant\n    %s", k, wire(els[i]), wire(want))
				}
			}
			if body := els[2].ChildText("body", stanza.NSClient); body != "marker" {
				t.Errorf("after the errors: %s", wire(els[2]))
			}
		})
	}
}
