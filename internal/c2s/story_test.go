package c2s_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// TestStoryChat: alice and bob talk over each transport.
func TestStoryChat(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, tr := range []story.Transport{story.TCP, story.DirectTLS, story.WebSocket, story.BOSH} {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			story.RunWith(t, srv, story.Users{"alice": 1, "bob": 1}, story.Options{Transport: tr}, func(alice, bob *story.Client) {
				alice.Send(story.Chat(bob.JID(), "Hi bob"))
				msg := bob.Expect(story.IsChat("Hi bob"))
				story.AssertStanza(t, msg, story.IsFrom(alice.JID()), story.IsTo(bob.JID()))
				bob.Send(story.Chat(alice.Bare(), "Hi alice"))
				alice.Expect(story.IsChat("Hi alice"), story.IsFrom(bob.JID()))
			})
		})
	}
}

// TestStoryMechanisms logs in with every SASL mechanism and channel
// binding, over TLS 1.3 and TLS 1.2.
func TestStoryMechanisms(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	tls12 := srv.TLSConfig()
	tls12.MaxVersion = tls.VersionTLS12
	cases := []struct {
		mech, cb string
		tls      *tls.Config
	}{
		{story.ScramSHA1, "", nil}, {story.ScramSHA256, "", nil}, {story.ScramSHA512, "", nil},
		{story.ScramSHA1Plus, story.TLSExporter, nil}, {story.ScramSHA256Plus, story.TLSExporter, nil},
		{story.ScramSHA512Plus, story.TLSExporter, nil},
		{story.ScramSHA256Plus, story.TLSServerEndPoint, nil}, {story.ScramSHA512Plus, story.TLSServerEndPoint, tls12},
		{story.ScramSHA1Plus, story.TLSUnique, tls12}, {story.ScramSHA256Plus, story.TLSUnique, tls12},
		{story.ScramSHA256, "", tls12}, {story.Plain, "", nil},
	}
	for _, c := range cases {
		name := c.mech + "/" + c.cb
		if c.tls != nil {
			name += "/TLS1.2"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := story.Options{Mechanism: c.mech, ChannelBinding: c.cb, TLS: c.tls}
			story.RunWith(t, srv, story.Users{"alice": 1}, opts, func(alice *story.Client) {
				if alice.Mechanism() != c.mech {
					t.Errorf("authenticated with %s", alice.Mechanism())
				}
				alice.IQ(story.Ping(story.RawAddr(srv.Domain())))
			})
		})
	}
}

// TestStoryDefaultMechanism: a client picking the strongest mechanism gets
// SCRAM-SHA-512-PLUS with tls-exporter, as offered first (XEP-0440).
func TestStoryDefaultMechanism(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		if alice.Mechanism() != story.ScramSHA512Plus {
			t.Errorf("mechanism %s", alice.Mechanism())
		}
		if v := alice.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Errorf("TLS version %x", v)
		}
	})
}

// dial connects a raw client and brings it to the authentication step.
func dialSecure(t *testing.T, srv story.Server, tr story.Transport) *story.Raw {
	t.Helper()
	r, err := story.DialRaw(context.Background(), srv, tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	if tr == story.TCP {
		if err := r.StartTLS(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.OpenStream(srv.Domain()); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func createUser(t *testing.T, srv *servertest.Server, name, password string) jid.JID {
	t.Helper()
	local := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	if err := srv.CreateUser(context.Background(), local, password); err != nil {
		t.Fatal(err)
	}
	return jid.MustParse(local + "@" + srv.Domain())
}

// dialBound returns a raw client authenticated and bound.
func dialBound(t *testing.T, srv *servertest.Server) (*story.Raw, jid.JID) {
	t.Helper()
	u := createUser(t, srv, "raw", "secret")
	r := dialSecure(t, srv, story.TCP)
	if _, err := r.Auth(u.Local(), "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	full, err := r.Bind("raw")
	if err != nil {
		t.Fatal(err)
	}
	return r, full
}

func TestStoryAuthFailures(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	u := createUser(t, srv, "alice", "right")
	r := dialSecure(t, srv, story.TCP)
	// RFC 6120 §6.4.5: not-authorized for a wrong password or an unknown
	// user (the same answer), and the stream is closed after three failures.
	for i, user := range []string{u.Local(), "nobody", u.Local()} {
		_, err := r.Auth(user, "wrong")
		var se *story.SASLError
		if !errors.As(err, &se) || se.Condition != "not-authorized" {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	if err := r.ExpectStreamError("policy-violation"); err != nil {
		t.Fatal(err)
	}
}

func TestStoryWrongPasswordThenRight(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	u := createUser(t, srv, "alice", "right")
	r := dialSecure(t, srv, story.DirectTLS)
	var se *story.SASLError
	if _, err := r.Auth(u.Local(), "wrong"); !errors.As(err, &se) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := r.Auth(u.Local(), "right"); err != nil {
		t.Fatalf("right password after a wrong one: %v", err)
	}
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	if j, err := r.Bind(""); err != nil || j.Bare() != u || j.Resource() == "" {
		t.Fatalf("bind: %v %v", j, err)
	}
}

func TestStoryFeatures(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	r, err := story.DialRaw(context.Background(), srv, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.OpenStream(srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	// RFC 6120 §5.3.1: with TLS required, STARTTLS is the only feature.
	if got := f.String(); got != `<features xmlns='http://etherx.jabber.org/streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></features>` {
		t.Fatalf("features before TLS: %s", got)
	}
	if h := r.Header(); h.Attr("from") != srv.Domain() || h.Attr("version") != "1.0" || len(h.Attr("id")) < 16 {
		t.Fatalf("header %s", h)
	}
	firstID := r.Header().Attr("id")
	if err := r.StartTLS(); err != nil {
		t.Fatal(err)
	}
	f, err = r.OpenStream(srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	if r.Header().Attr("id") == firstID {
		t.Error("stream id reused after STARTTLS (RFC 6120 §4.7.3)")
	}
	mechs := f.Child("mechanisms", stanza.NSSASL)
	var names []string
	for m := range mechs.Elements() {
		names = append(names, m.Text())
	}
	want := "SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN"
	if strings.Join(names, " ") != want {
		t.Errorf("mechanisms %v", names)
	}
	cb := f.Child("sasl-channel-binding", "urn:xmpp:sasl-cb:0")
	if cb == nil || len(cb.Children) != 2 {
		t.Errorf("XEP-0440 advertisement %v", cb)
	}
	if f.Child("starttls", stanza.NSTLS) != nil {
		t.Error("STARTTLS offered again")
	}
}

func TestStoryBindConflict(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(first *story.Client) {
		// A second session binds the same full JID (RFC 6120 §7.7.2.2):
		// the new one wins, the old one gets <conflict/>.
		second := story.MustConnect(t, srv, first.Account(), story.Options{Resource: first.JID().Resource(), Name: "second"})
		if second.JID() != first.JID() {
			t.Fatalf("second bound %s", second.JID())
		}
		first.Expect(story.IsStreamError("conflict"))
		second.IQ(story.Ping(story.RawAddr(srv.Domain())))
	})
}

func TestStoryServerGeneratedResource(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.RunWith(t, srv, story.Users{"alice": 2}, story.Options{}, func(a1, a2 *story.Client) {
		if a1.JID().Resource() == "" || a1.JID().Resource() == a2.JID().Resource() {
			t.Fatalf("resources %q %q", a1.JID().Resource(), a2.JID().Resource())
		}
	})
}

func TestStoryMaxSessionsPerUser(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.MaxSessionsPerUser = 1 })
	u := createUser(t, srv, "alice", "pw")
	story.MustConnect(t, srv, story.Account{Localpart: u.Local(), Password: "pw", JID: u}, story.Options{})
	r := dialSecure(t, srv, story.TCP)
	if _, err := r.Auth(u.Local(), "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	_, err := r.Bind("other")
	if err == nil || !strings.Contains(err.Error(), "resource-constraint") {
		t.Fatalf("third session: %v", err)
	}
}

// TestStorySpoofedFrom: the server stamps the sender's full JID on what it
// sends, whatever 'from' it claimed (RFC 6120 §8.1.2.1).
func TestStorySpoofedFrom(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1, "carol": 1}, func(alice, bob, carol *story.Client) {
		m := story.Chat(bob.JID(), "from carol, honest")
		m.SetAttr("from", carol.JID().String())
		alice.Send(m)
		story.AssertStanza(t, bob.Expect(story.IsChat("from carol, honest")), story.IsFrom(alice.JID()))
		carol.ExpectNothing(100 * time.Millisecond)
	})
}

// TestStoryPresenceReflected: initial presence comes back to the user's
// own available resources (RFC 6121 §4.2.2).
func TestStoryPresenceReflected(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.RunWith(t, srv, story.Users{"alice": 2}, story.Options{NoPresence: true}, func(a1, a2 *story.Client) {
		a2.Send(story.Presence(""))
		a2.Expect(story.IsPresence("", a2.JID()))
		a1.Send(story.Presence(""))
		a1.Expect(story.IsPresence("", a1.JID()))
		a2.Expect(story.IsPresence("", a1.JID()))
	})
}

// TestStoryServerIQs covers how the server answers IQs addressed to it;
// the modules' own IQs are tested in their packages.
func TestStoryServerIQs(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	domain := story.RawAddr(srv.Domain())
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		// Legacy session establishment is a no-op (RFC 6121 Appendix E).
		story.AssertStanza(t, alice.IQ(story.IQSet(nil, xmlstream.NewElement("session", stanza.NSSession))), story.IsIQ("result"))
		story.AssertStanza(t, alice.IQ(story.IQSet(domain, xmlstream.NewElement("session", stanza.NSSession))), story.IsIQ("result"))
		// RFC 6120 §8.4: an unknown namespace is service-unavailable.
		story.AssertStanza(t, alice.IQ(story.IQGet(domain, xmlstream.NewElement("query", "urn:example:nothing"))),
			story.IsStanzaError("cancel", "service-unavailable"))
		// RFC 6120 §8.2.3: a get with two payloads is a bad request.
		two := story.IQGet(domain, xmlstream.NewElement("a", "urn:x"))
		two.AddChild(xmlstream.NewElement("b", "urn:x"))
		story.AssertStanza(t, alice.IQ(two), story.IsStanzaError("modify", "bad-request"))
		// Federation does not exist yet.
		story.AssertStanza(t, alice.IQ(story.Ping(story.RawAddr("example.org"))), story.IsStanzaError("cancel", "remote-server-not-found"))
		story.AssertStanza(t, alice.IQ(story.Ping(story.RawAddr("a@@b"))), story.IsStanzaError("modify", "jid-malformed"))
		// Results and errors sent to the server are not answered.
		alice.Send(story.IQResult(story.Ping(domain), nil))
		alice.ExpectNothing(100 * time.Millisecond)
	})
}

// TestStoryDeliveryErrors: RFC 6121 §8.5 from the sender's side.
func TestStoryDeliveryErrors(t *testing.T) {
	t.Parallel()
	// Without offline storage, which has its own stories.
	srv := servertest.Start(t, servertest.Modules("[modules.offline]\nenabled = false"))
	offline := createUser(t, srv, "offline", "pw")
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		nobody := story.RawAddr("nobody@" + srv.Domain())
		alice.Send(story.Chat(nobody, "hello?"))
		alice.Expect(story.IsStanzaError("cancel", "service-unavailable"), story.IsFrom(nobody))
		// With offline storage disabled, a message for an account without
		// resources is refused (RFC 6121 §8.5.2.2.1).
		alice.Send(story.Chat(offline, "later"))
		alice.Expect(story.IsStanzaError("cancel", "service-unavailable"))
		alice.Send(story.Groupchat(bob.Bare(), "wrong type"))
		alice.Expect(story.IsStanzaError("cancel", "service-unavailable"))
		alice.Send(story.IQGet(story.RawAddr(bob.Bare().String()+"/nosuchresource"), xmlstream.NewElement("ping", "urn:xmpp:ping")))
		alice.Expect(story.IsStanzaError("cancel", "service-unavailable"))
		// To a full JID: delivered as is.
		ping := story.Ping(bob)
		alice.Send(ping)
		got := bob.Expect(story.IsIQ("get"), story.HasChild("ping", "urn:xmpp:ping"))
		bob.Send(story.IQResult(got, nil))
		alice.Expect(story.IsIQResult(ping.Attr("id")), story.IsFrom(bob.JID()))
		bob.ExpectNothing(50 * time.Millisecond)
	})
}

func TestStoryIdleTimeout(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.IdleTimeout = config.Duration{Duration: 300 * time.Millisecond}
	})
	r, _ := dialBound(t, srv)
	if err := r.ExpectStreamError("connection-timeout"); err != nil {
		t.Fatal(err)
	}
}

func TestStoryHandshakeTimeout(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.HandshakeTimeout = config.Duration{Duration: 300 * time.Millisecond}
	})
	r, err := story.DialRaw(context.Background(), srv, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing sent: the server opens a stream to carry the error.
	if err := r.ExpectStreamError("connection-timeout"); err != nil {
		t.Fatal(err)
	}
}

// TestStoryStreamErrors: every protocol violation gets the right stream
// error (RFC 6120 §4.9.3), then the stream is closed.
func TestStoryStreamErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.MaxStanzaBytes = 10 << 10 })
	const header = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='%s'>`
	d := srv.Domain()
	cases := []struct {
		name  string
		stage string // "connect": raw TCP; "tls": after STARTTLS and a new header; "bound"
		send  string
		cond  string
	}{
		{"unknown domain", "connect", fmt.Sprintf(header, "example.org"), "host-unknown"},
		{"no to", "connect", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`, "host-unknown"},
		{"server namespace", "connect", `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='` + d + `'>`, "invalid-namespace"},
		{"no content namespace", "connect", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='` + d + `'>`, "invalid-namespace"},
		{"wrong streams namespace", "connect", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' version='1.0' to='` + d + `'>`, "invalid-namespace"},
		{"no version", "connect", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + d + `'>`, "unsupported-version"},
		{"version 2", "connect", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='2.0' to='` + d + `'>`, "unsupported-version"},
		{"garbage", "connect", "hello", "not-well-formed"},
		{"latin-1", "connect", "<?xml version='1.0' encoding='ISO-8859-1'?>", "unsupported-encoding"},
		{"comment", "open", "<!-- hi -->", "restricted-xml"},
		{"DTD", "connect", "<!DOCTYPE stream>", "restricted-xml"},
		{"entity", "open", "<message>&ent;</message>", "restricted-xml"},
		{"mismatched tags", "open", "<message></iq>", "not-well-formed"},
		{"text between stanzas", "tls", "hello", "bad-format"},
		{"stanza before STARTTLS", "open", "<message to='a@" + d + "'/>", "not-authorized"},
		{"stanza before auth", "tls", "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", "not-authorized"},
		{"message before bind", "authed", "<message to='a@" + d + "'><body>x</body></message>", "not-authorized"},
		{"huge stanza", "tls", "<message><body>" + strings.Repeat("x", 11<<10) + "</body></message>", "policy-violation"},
		{"huge stanza after bind", "bound", "<message><body>" + strings.Repeat("é", 6<<10) + "</body></message>", "policy-violation"},
		{"unknown first-level element", "bound", "<foo xmlns='urn:example'/>", "unsupported-stanza-type"},
		{"SASL after auth", "bound", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>", "unsupported-stanza-type"},
		{"prefix unbound", "bound", "<p:message/>", "not-well-formed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var r *story.Raw
			switch c.stage {
			case "bound":
				r, _ = dialBound(t, srv)
			case "authed":
				u := createUser(t, srv, "u", "pw")
				r = dialSecure(t, srv, story.TCP)
				if _, err := r.Auth(u.Local(), "pw"); err != nil {
					t.Fatal(err)
				}
				if _, err := r.OpenStream(d); err != nil {
					t.Fatal(err)
				}
			case "tls":
				r = dialSecure(t, srv, story.TCP)
			default:
				var err error
				if r, err = story.DialRaw(context.Background(), srv, story.TCP); err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if c.stage == "open" {
					if _, err := r.OpenStream(d); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := r.Send(c.send); err != nil {
				t.Fatal(err)
			}
			if err := r.ExpectStreamError(c.cond); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStorySASLBeforeTLSRefused(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	r, err := story.DialRaw(context.Background(), srv, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00a\x00b")) + "</auth>")
	el, err := r.Next()
	if err != nil || el.Name != "failure" || el.Child("encryption-required", stanza.NSSASL) == nil {
		t.Fatalf("got %v %v", el, err)
	}
}

func TestStorySTARTTLSTwice(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	r := dialSecure(t, srv, story.TCP)
	r.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	el, err := r.Next()
	if err != nil || el.Name != "failure" || el.NS != stanza.NSTLS {
		t.Fatalf("got %v %v", el, err)
	}
	if err := r.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
}

// TestStoryPipelinedAuth: a client may send the new stream header right
// behind its SASL response (RFC 6120 §6.4.6 allows no wait).
func TestStoryPipelinedAuth(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	u := createUser(t, srv, "alice", "pw")
	r := dialSecure(t, srv, story.DirectTLS)
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + u.Local() + "\x00pw"))
	r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + plain + "</auth>" +
		"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='" + srv.Domain() + "'>")
	if el, err := r.Next(); err != nil || el.Name != "success" {
		t.Fatalf("got %v %v", el, err)
	}
	r.Restart()
	f, err := r.Next()
	if err != nil || f.Name != "features" || f.Child("bind", stanza.NSBind) == nil {
		t.Fatalf("features %v %v", f, err)
	}
	if f.Child("session", stanza.NSSession) == nil || f.Child("session", stanza.NSSession).Child("optional", stanza.NSSession) == nil {
		t.Errorf("session feature not marked optional: %s", f)
	}
}

func TestStoryWhitespaceAndClose(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	r, _ := dialBound(t, srv)
	// Whitespace keepalives between stanzas are fine (RFC 6120 §11.7).
	r.Send("\n  \n<iq type='get' id='k1' to='" + srv.Domain() + "'><ping xmlns='urn:xmpp:ping'/></iq> \n")
	if el, err := r.Next(); err != nil || el.Attr("id") != "k1" || el.Attr("type") != "result" {
		t.Fatalf("got %v %v", el, err)
	}
	// The client closes: the server closes too (RFC 6120 §4.4).
	r.Send("</stream:stream>")
	if err := r.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
}

func TestStoryShutdown(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	u := createUser(t, srv, "alice", "pw")
	alice := story.MustConnect(t, srv, story.Account{Localpart: u.Local(), Password: "pw", JID: u}, story.Options{})
	r, _ := dialBound(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	alice.Expect(story.IsStreamError("system-shutdown"))
	if err := r.ExpectStreamError("system-shutdown"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStoryRemoveUserClosesSessions(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		if err := srv.RemoveUser(context.Background(), alice.Bare().Local()); err != nil {
			t.Fatal(err)
		}
		alice.Expect(story.IsStreamError("not-authorized"))
	})
}

// TestStorySlowReader: a client that does not read is disconnected once
// its queue passes the limit, with <policy-violation/> after what was
// queued; the sender is never blocked.
func TestStorySlowReader(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.MaxOutboundBytes = 64 << 10 })
	r, bob := dialBound(t, srv) // bob does not read until his session is gone
	body := strings.Repeat("z", 4000)
	sent := 0
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		for ; srv.Router().SessionOf(bob) != nil; sent++ {
			if sent > 10000 {
				t.Fatal("the session of a client that does not read was not closed")
			}
			alice.Send(story.Chat(bob, body))
			if sent%16 == 0 {
				alice.IQ(story.Ping(nil)) // alice is never blocked by bob
			}
		}
	})
	// Now bob reads: the messages queued before the limit, in order, then
	// the stream error, then the end of the stream.
	received := 0
	for {
		el, err := r.Next()
		if err != nil {
			t.Fatalf("after %d messages: %v", received, err)
		}
		if el.Name == "message" && el.ChildText("body", stanza.NSClient) == body {
			received++
			continue
		}
		want := `<error xmlns='http://etherx.jabber.org/streams'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
			`<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>too much data queued for a client that does not read</text></error>`
		if got := el.String(); got != want {
			t.Fatalf("after %d messages: %s\nwant:\n%s", received, got, want)
		}
		break
	}
	// 64 KiB of 4 kB messages: the limit is passed by the 17th or so; the
	// messages sent after the session was closed are not queued for bob.
	if received < (64<<10)/len(body) || received > sent {
		t.Errorf("bob received %d messages of the %d sent", received, sent)
	}
	if ev, err := r.ReadEvent(); err != nil || ev.Kind != xmlstream.EventStreamClose {
		t.Fatalf("after the stream error: %v %v", ev, err)
	}
	r.Send("</stream:stream>")
	if ev, err := r.ReadEvent(); err == nil {
		t.Fatalf("the connection stays open: %v", ev)
	}
}

// TestStorySASLNegotiationErrors: the failure conditions of RFC 6120 §6.5
// that the client can provoke.
func TestStorySASLNegotiationErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	u := createUser(t, srv, "alice", "pw")
	cases := []struct {
		name, send, cond string
	}{
		{"unknown mechanism", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>", "invalid-mechanism"},
		{"bad base64", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>", "incorrect-encoding"},
		{"response without auth", "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AAAA</response>", "malformed-request"},
		{"abort", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "aborted"},
		{"malformed SCRAM", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" + base64.StdEncoding.EncodeToString([]byte("x,,n=a,r=b")) + "</auth>", "malformed-request"},
		{"unknown SASL element", "<frob xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "malformed-request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := dialSecure(t, srv, story.DirectTLS)
			r.Send(c.send)
			for {
				el, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if el.Name == "challenge" {
					continue // the empty challenge of an auth without initial response
				}
				if el.Name != "failure" || el.Child(c.cond, stanza.NSSASL) == nil {
					t.Fatalf("got %s, want a failure with %s", el, c.cond)
				}
				break
			}
			// A failure leaves the stream usable: authenticate properly now.
			if _, err := r.Auth(u.Local(), "pw"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStoryRateLimit: a client sending faster than rate_bytes_per_second
// is read more slowly, not disconnected.
func TestStoryRateLimit(t *testing.T) {
	t.Parallel()
	const rate = 100_000
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.RateBytesPerSecond = rate })
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		start := time.Now()
		body := strings.Repeat("r", 1000)
		var batch strings.Builder
		for range 250 { // about 260 kB, 2.6 times the burst
			batch.WriteString("<message to='" + alice.Bare().String() + "/nowhere' type='headline'><body>" + body + "</body></message>")
		}
		alice.SendRaw(batch.String())
		alice.IQ(story.Ping(nil))
		// The burst (rate bytes) passes at once, the rest at the rate.
		if elapsed, min := time.Since(start), time.Duration(float64(batch.Len()-rate)/rate*float64(time.Second)); elapsed < min*9/10 {
			t.Fatalf("%d bytes read in %v, faster than the rate allows (%v)", batch.Len(), elapsed, min)
		}
	})
}

// TestStoryPreAuthIQ: a module may answer IQs on a stream that is not
// authenticated yet (module.TargetStream, for in-band registration); other
// IQs are still refused.
func TestStoryPreAuthIQ(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	srv.Hooks().PreAuthFeatures.Add("test", 0, func() *xmlstream.Element {
		return xmlstream.NewElement("register", "http://jabber.org/features/iq-register")
	})
	if err := srv.Hooks().HandleIQ("test", stanza.IQGet, module.TargetStream, "jabber:iq:register", func(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
		if iq.Session != nil || !iq.From.IsZero() {
			t.Errorf("pre-auth IQ with a session or a sender: %v %v", iq.Session, iq.From)
		}
		return xmlstream.NewElement("query", "jabber:iq:register"), nil
	}); err != nil {
		t.Fatal(err)
	}
	r := dialSecure(t, srv, story.TCP)
	if r.Features().Child("register", "http://jabber.org/features/iq-register") == nil {
		t.Errorf("pre-auth feature missing: %s", r.Features())
	}
	r.Send("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>")
	if el, err := r.Next(); err != nil || el.Attr("type") != "result" || el.Attr("id") != "r1" || el.Child("query", "jabber:iq:register") == nil {
		t.Fatalf("got %v %v", el, err)
	}
	r.Send("<iq type='get' id='r2'><ping xmlns='urn:xmpp:ping'/></iq>")
	if err := r.ExpectStreamError("not-authorized"); err != nil {
		t.Fatal(err)
	}
}

// TestStoryInitialPresenceHook: the hook runs once per session, on its
// first available presence, not on later updates.
func TestStoryInitialPresenceHook(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	initial := make(chan jid.JID, 8)
	srv.Hooks().InitialPresence.Add("test", 0, func(_ context.Context, s module.Session) { initial <- s.JID() })
	story.RunWith(t, srv, story.Users{"alice": 1}, story.Options{NoPresence: true}, func(alice *story.Client) {
		alice.Send(story.Presence(""))
		alice.Expect(story.IsPresence("", alice.JID()))
		if j := <-initial; j != alice.JID() {
			t.Fatalf("hook for %s", j)
		}
		away := story.Presence("")
		away.AddChild(xmlstream.NewElement("show", stanza.NSClient).AddText("away"))
		alice.Send(away)
		alice.Expect(story.IsPresence("", alice.JID()))
		alice.Send(story.Presence("unavailable"))
		// RFC 6121 §4.5.2: the unavailable presence comes back too.
		alice.Expect(story.IsPresence("unavailable", alice.JID()))
		alice.Send(story.Presence(""))
		alice.Expect(story.IsPresence("", alice.JID()))
		if j := <-initial; j != alice.JID() {
			t.Fatalf("hook for %s", j)
		}
		select {
		case j := <-initial:
			t.Fatalf("hook ran for a presence update (%s)", j)
		default:
		}
	})
}
