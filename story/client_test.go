package story

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Client tests against the scripted fake server (fakeserver_test.go).

func TestClientMechanismChoice(t *testing.T) {
	all := []string{ScramSHA512Plus, ScramSHA512, ScramSHA256Plus, ScramSHA256, ScramSHA1Plus, ScramSHA1, Plain}
	cases := []struct {
		name       string
		mechs      []string
		advertised []string
		maxTLS     uint16
		transport  Transport
		opts       Options
		rejectPlus bool
		wantMech   string
		wantEvent  string // logged by the fake server
	}{
		{name: "TLS 1.3 picks SCRAM-SHA-512-PLUS with tls-exporter", mechs: all,
			wantMech: ScramSHA512Plus, wantEvent: "auth SCRAM-SHA-512-PLUS tls-exporter"},
		{name: "TLS 1.2 binds with tls-server-end-point", mechs: all, maxTLS: tls.VersionTLS12,
			wantMech: ScramSHA512Plus, wantEvent: "auth SCRAM-SHA-512-PLUS tls-server-end-point"},
		{name: "XEP-0440 advertisement wins", mechs: all, advertised: []string{TLSServerEndPoint},
			wantMech: ScramSHA512Plus, wantEvent: "auth SCRAM-SHA-512-PLUS tls-server-end-point"},
		{name: "XEP-0440 with nothing usable skips -PLUS", mechs: all, advertised: []string{"tls-unique"},
			wantMech: ScramSHA512, wantEvent: "auth SCRAM-SHA-512 gs2=n"},
		{name: "direct TLS", mechs: all, transport: DirectTLS,
			wantMech: ScramSHA512Plus, wantEvent: "auth SCRAM-SHA-512-PLUS tls-exporter"},
		{name: "no -PLUS offered: gs2 flag y", mechs: []string{ScramSHA1, ScramSHA256, Plain},
			wantMech: ScramSHA256, wantEvent: "auth SCRAM-SHA-256 gs2=y"},
		{name: "forced mechanism", mechs: all, opts: Options{Mechanism: ScramSHA1},
			wantMech: ScramSHA1, wantEvent: "auth SCRAM-SHA-1 gs2=n"},
		{name: "forced PLAIN", mechs: all, opts: Options{Mechanism: Plain},
			wantMech: Plain, wantEvent: "auth PLAIN"},
		{name: "forced channel binding", mechs: all, opts: Options{ChannelBinding: TLSServerEndPoint},
			wantMech: ScramSHA512Plus, wantEvent: "auth SCRAM-SHA-512-PLUS tls-server-end-point"},
		{name: "guessed binding refused: retry without", mechs: all, rejectPlus: true,
			wantMech: ScramSHA512, wantEvent: "auth SCRAM-SHA-512 gs2=n"},
		{name: "PLAIN only", mechs: []string{Plain},
			wantMech: Plain, wantEvent: "auth PLAIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := newFakeServer(t)
			fs.mechs, fs.cbAdvertised, fs.maxTLS, fs.rejectPlus = tc.mechs, tc.advertised, tc.maxTLS, tc.rejectPlus
			opts := tc.opts
			opts.Transport = tc.transport
			c := MustConnect(t, fs, fs.addUser("alice"), opts)
			if c.Mechanism() != tc.wantMech {
				t.Errorf("mechanism %s, want %s", c.Mechanism(), tc.wantMech)
			}
			if ev := fs.events(); !slices.Contains(ev, tc.wantEvent) {
				t.Errorf("server events %q, want %q among them", ev, tc.wantEvent)
			}
		})
	}
}

func TestClientMechanismErrors(t *testing.T) {
	fs := newFakeServer(t)
	acct := fs.addUser("alice")
	_, err := Connect(context.Background(), t, fs, acct, Options{Mechanism: "DIGEST-MD5"})
	if err == nil || !strings.Contains(err.Error(), "does not offer DIGEST-MD5") {
		t.Errorf("forced unknown mechanism: %v", err)
	}
	bad := acct
	bad.Password = "wrong"
	_, err = Connect(context.Background(), t, fs, bad, Options{})
	var se *SASLError
	if !errors.As(err, &se) || se.Condition != "not-authorized" {
		t.Errorf("wrong password: %v, want a SASLError not-authorized", err)
	}
	// A forced binding the server refuses is not retried.
	fs.rejectPlus = true
	_, err = Connect(context.Background(), t, fs, acct, Options{Mechanism: ScramSHA256Plus})
	if !errors.As(err, &se) {
		t.Errorf("refused forced -PLUS: %v", err)
	}
}

func TestClientBindSessionPresence(t *testing.T) {
	fs := newFakeServer(t)
	fs.legacySession = true
	acct := fs.addUser("alice")
	c := MustConnect(t, fs, acct, Options{})
	if c.JID().Bare() != acct.JID || !strings.HasPrefix(c.JID().Resource(), "gen") {
		t.Errorf("bound %s; want a server-generated resource of %s", c.JID(), acct.JID)
	}
	if !slices.Contains(fs.events(), "session") {
		t.Errorf("no legacy session established: %q", fs.events())
	}
	if q := c.Pending(); len(q) != 0 {
		t.Errorf("the presence reflection is still queued: %v", q)
	}
	c2 := MustConnect(t, fs, acct, Options{Resource: "mobile", NoPresence: true})
	if c2.JID().Resource() != "mobile" {
		t.Errorf("bound %s, want resource mobile", c2.JID())
	}
}

func TestClientQueueAndWaitFor(t *testing.T) {
	fs := newFakeServer(t)
	alice := MustConnect(t, fs, fs.addUser("alice"), Options{Name: "alice"})
	bob := MustConnect(t, fs, fs.addUser("bob"), Options{Name: "bob"})
	for _, body := range []string{"one", "two", "three"} {
		alice.Send(Chat(bob, body))
	}
	// Out of order: "two" first; "one" and "three" stay queued in order.
	bob.Expect(IsChat("two"))
	got := bob.Collect(2)
	if HasBody("one").Match(got[0]) == false || HasBody("three").Match(got[1]) == false {
		t.Errorf("Collect gave %s, %s", got[0], got[1])
	}
	alice.Send(Chat(bob, "four"))
	el, at, err := bob.WaitForTimed(context.Background(), IsChat("four"), IsFrom(alice))
	if err != nil || at.IsZero() || time.Since(at) > time.Minute {
		t.Fatalf("WaitForTimed: %v %v %v", el, at, err)
	}
	// A WaitFor that is cancelled leaves the queue alone.
	alice.Send(Chat(bob, "five"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := bob.WaitFor(ctx, IsChat("never")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor: %v, want a deadline error", err)
	}
	bob.Expect(IsChat("five"))
	bob.ExpectNothing(50 * time.Millisecond)
}

func TestClientIQ(t *testing.T) {
	fs := newFakeServer(t)
	c := MustConnect(t, fs, fs.addUser("alice"), Options{})
	ping := Ping(nil)
	res := c.IQ(ping)
	AssertStanza(t, res, IsIQResult(ping.Attr("id")), IsFrom(RawAddr(fs.domain)))
	iq := IQGet(nil, xmlstream.NewElement("ping", NSPing))
	iq.RemoveAttr("id")
	res, err := c.RequestIQ(context.Background(), iq)
	if err != nil || iq.Attr("id") == "" || res.Attr("id") != iq.Attr("id") {
		t.Errorf("RequestIQ without id: %v, %v", res, err)
	}
}

func TestClientStanzaError(t *testing.T) {
	fs := newFakeServer(t)
	c := MustConnect(t, fs, fs.addUser("alice"), Options{})
	c.Send(Chat(RawAddr("nobody@fake.test/x"), "hello?"))
	c.Expect(IsMessageType("error"), IsStanzaError("cancel", "service-unavailable"), IsFrom(RawAddr("nobody@fake.test/x")))
}

func TestClientStreamError(t *testing.T) {
	fs := newFakeServer(t)
	acct := fs.addUser("alice")
	first := MustConnect(t, fs, acct, Options{Resource: "r", NoPresence: true})
	// A second session with the same resource replaces the first, which
	// gets <conflict/> (RFC 6120 §7.7.2.2).
	MustConnect(t, fs, acct, Options{Resource: "r", NoPresence: true})
	_, err := first.WaitFor(context.Background(), IsChat("x"))
	var se *stanza.StreamError
	if !errors.As(err, &se) || se.Condition != stanza.StreamConflict || !strings.Contains(err.Error(), "conflict") {
		t.Fatalf("WaitFor after a stream error: %v", err)
	}
	el := first.Expect(IsStreamError("conflict"))
	if el.Name != "error" || el.NS != stanza.NSStream {
		t.Errorf("IsStreamError matched %s", el)
	}
	// The stream is over: Close does not wait for anything.
	start := time.Now()
	if err := first.Close(); err != nil {
		t.Errorf("Close after the server closed: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Close took %s", time.Since(start))
	}
}

func TestClientClose(t *testing.T) {
	fs := newFakeServer(t)
	c := MustConnect(t, fs, fs.addUser("alice"), Options{})
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.WaitFor(context.Background()); !errors.Is(err, ErrClientClosed) {
		t.Errorf("WaitFor after Close: %v", err)
	}
	select {
	case <-c.closed:
	default:
		t.Error("the reader goroutine is still running")
	}
}

func TestClientCloseWithoutServerClose(t *testing.T) {
	fs := newFakeServer(t)
	fs.ignoreClose = true
	c := connectShort(t, fs, fs.addUser("alice"), Options{Timeout: 200 * time.Millisecond})
	err := c.Close()
	if err == nil || !strings.Contains(err.Error(), "did not close its stream") {
		t.Fatalf("Close: %v, want a complaint about the server", err)
	}
	select {
	case <-c.closed:
	default:
		t.Error("the reader goroutine is still running")
	}
	if err2 := c.Close(); err2 != err {
		t.Errorf("second Close: %v, want the first result", err2)
	}
}

func TestClientStreamManagement(t *testing.T) {
	fs := newFakeServer(t)
	fs.onElement = func(sc *fakeConn, el *xmlstream.Element) bool {
		// "ask" makes the server request an ack (XEP-0198 §4); the fake
		// server reports the <a/> it gets back as a message "acked h=N".
		if HasBody("ask").Match(el) {
			sc.send("<r xmlns='urn:xmpp:sm:3'/>")
			return true
		}
		return false
	}
	alice := MustConnect(t, fs, fs.addUser("alice"), Options{StreamManagement: true})
	if !alice.SMEnabled() {
		t.Fatal("SM not enabled")
	}
	bob := MustConnect(t, fs, fs.addUser("bob"), Options{})
	for i := range 3 {
		bob.Send(Chat(alice, fmt.Sprint("m", i)))
		alice.Expect(IsChat(fmt.Sprint("m", i)))
	}
	// alice got her presence reflection and 3 messages: h = 4.
	if h := alice.SMHandled(); h != 4 {
		t.Errorf("SMHandled %d, want 4", h)
	}
	alice.Send(Chat(nil, "ask"))
	alice.Expect(IsChat("acked h=4"))
	// <r/> is answered, not queued.
	if q := alice.Pending(); len(q) != 0 {
		t.Errorf("queued: %v", q)
	}
	// The server's count of alice's stanzas (XEP-0198 §4): presence and ask.
	alice.SendRaw("<r xmlns='urn:xmpp:sm:3'/>")
	AssertStanza(t, alice.Expect(IsSMAck()), Predicate{Desc: "h='2'", Match: func(el *xmlstream.Element) bool { return el.Attr("h") == "2" }})
}

func TestClientTransportNotOffered(t *testing.T) {
	fs := newFakeServer(t)
	_, err := Connect(context.Background(), t, noDirect{fs}, fs.addUser("alice"), Options{Transport: DirectTLS})
	if err == nil || !strings.Contains(err.Error(), "does not offer transport directtls") {
		t.Errorf("got %v", err)
	}
}

type noDirect struct{ *fakeServer }

func (n noDirect) Addr(t Transport) (string, bool) {
	if t == DirectTLS {
		return "", false
	}
	return n.fakeServer.Addr(t)
}
