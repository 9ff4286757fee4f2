package c2s_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const (
	featuresOpen  = `<features xmlns='http://etherx.jabber.org/streams'>`
	mechanismsTag = `<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>`
)

// mechanismsOf renders the <mechanism/> names of stream features.
func mechanismsOf(f *xmlstream.Element) string {
	var names []string
	if m := f.Child("mechanisms", stanza.NSSASL); m != nil {
		for c := range m.Elements() {
			names = append(names, c.Text())
		}
	}
	return strings.Join(names, " ")
}

// authFailure sends <auth/> for mech with an initial response and returns
// the server's answer, serialized.
func authFailure(t *testing.T, r *story.Raw, mech string, initial []byte) string {
	t.Helper()
	if err := r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech + "'>" + base64.StdEncoding.EncodeToString(initial) + "</auth>"); err != nil {
		t.Fatal(err)
	}
	el, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	return el.String()
}

// TestStoryOptionalTLS: with require_tls = false a client may
// authenticate without TLS, with the mechanisms that do not expose the
// password (SCRAM without channel binding); PLAIN and the -PLUS variants
// are offered, and accepted, only over TLS (RFC 6120 §6.3.4, §6.5.4).
func TestStoryOptionalTLS(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.RequireTLS = false })
	u := createUser(t, srv, "alice", "pw")

	r, err := story.DialRaw(context.Background(), srv, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.OpenStream(srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	want := featuresOpen + `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` + mechanismsTag +
		`<mechanism>SCRAM-SHA-512</mechanism><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></features>`
	if got := f.String(); got != want {
		t.Fatalf("features without TLS:\n%s\nwant:\n%s", got, want)
	}
	// PLAIN would send the password in clear, -PLUS has nothing to bind to.
	failure := `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>`
	if got := authFailure(t, r, "PLAIN", []byte("\x00"+u.Local()+"\x00pw")); got != failure {
		t.Errorf("PLAIN without TLS: %s, want %s", got, failure)
	}
	if got := authFailure(t, r, "SCRAM-SHA-256-PLUS", []byte("p=tls-exporter,,n="+u.Local()+",r=abcdefgh")); got != failure {
		t.Errorf("SCRAM-SHA-256-PLUS without TLS: %s, want %s", got, failure)
	}
	// SCRAM works in clear, and the session is a normal one.
	r.Mechanism = story.ScramSHA256
	if mech, err := r.Auth(u.Local(), "pw"); err != nil || mech != story.ScramSHA256 {
		t.Fatalf("SCRAM-SHA-256 without TLS: %q %v", mech, err)
	}
	if _, ok := r.ConnectionState(); ok {
		t.Fatal("the connection is TLS")
	}
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	full, err := r.Bind("clear")
	if err != nil || full.Bare() != u {
		t.Fatalf("bind: %v %v", full, err)
	}
	r.Send("<iq type='get' id='p1' to='" + srv.Domain() + "'><ping xmlns='urn:xmpp:ping'/></iq>")
	if el, err := r.Next(); err != nil || el.String() != `<iq xmlns='jabber:client' to='`+full.String()+`' from='`+srv.Domain()+`' type='result' id='p1'/>` {
		t.Fatalf("ping: %v %v", el, err)
	}

	// After STARTTLS, the same server offers everything, and PLAIN works.
	r = dialSecure(t, srv, story.TCP)
	if got, want := mechanismsOf(r.Features()), "SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN"; got != want {
		t.Errorf("mechanisms over TLS: %s, want %s", got, want)
	}
	if r.Features().Child("starttls", stanza.NSTLS) != nil {
		t.Error("STARTTLS offered again")
	}
	r.Mechanism = story.Plain
	if _, err := r.Auth(u.Local(), "pw"); err != nil {
		t.Fatalf("PLAIN over TLS: %v", err)
	}
}

// TestStoryConfiguredMechanisms: c2s.sasl_mechanisms is what is offered,
// in its order; a mechanism left out is refused with <invalid-mechanism/>
// (RFC 6120 §6.5.5), and without -PLUS mechanisms no channel binding is
// advertised (XEP-0440).
func TestStoryConfiguredMechanisms(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256"} })
	u := createUser(t, srv, "alice", "pw")
	for _, tr := range []story.Transport{story.TCP, story.DirectTLS} {
		r := dialSecure(t, srv, tr)
		want := featuresOpen + mechanismsTag + `<mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-256</mechanism></mechanisms></features>`
		if got := r.Features().String(); got != want {
			t.Errorf("%s: features:\n%s\nwant:\n%s", tr, got, want)
		}
		failure := `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>`
		if got := authFailure(t, r, "SCRAM-SHA-512", []byte("n,,n="+u.Local()+",r=abcdefgh")); got != failure {
			t.Errorf("%s: SCRAM-SHA-512: %s, want %s", tr, got, failure)
		}
		if got := authFailure(t, r, "SCRAM-SHA-256-PLUS", []byte("p=tls-exporter,,n="+u.Local()+",r=abcdefgh")); got != failure {
			t.Errorf("%s: SCRAM-SHA-256-PLUS: %s, want %s", tr, got, failure)
		}
		// A client forcing a mechanism that is not offered stops on its side.
		r.Mechanism = story.ScramSHA1
		var se *story.SASLError
		if _, err := r.Auth(u.Local(), "pw"); err == nil || errors.As(err, &se) {
			t.Errorf("%s: SCRAM-SHA-1 was tried: %v", tr, err)
		}
		// Two failures so far; an offered mechanism still works.
		r.Mechanism = story.Plain
		if _, err := r.Auth(u.Local(), "pw"); err != nil {
			t.Fatalf("%s: PLAIN: %v", tr, err)
		}
	}
	// A client choosing by itself takes the strongest offered.
	story.Run(t, srv, story.Users{"bob": 1}, func(bob *story.Client) {
		if bob.Mechanism() != story.ScramSHA256 {
			t.Errorf("mechanism %s", bob.Mechanism())
		}
	})

	// Only -PLUS: nothing is offered before TLS, and the channel binding
	// types are advertised.
	plus := servertest.Start(t, func(c *config.Config) {
		c.C2S.RequireTLS = false
		c.C2S.SASLMechanisms = []string{"SCRAM-SHA-1-PLUS"}
	})
	r, err := story.DialRaw(context.Background(), plus, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.OpenStream(plus.Domain())
	if err != nil {
		t.Fatal(err)
	}
	if got := mechanismsOf(f); got != "" {
		t.Errorf("mechanisms before TLS: %q", got)
	}
	r = dialSecure(t, plus, story.TCP)
	want := featuresOpen + mechanismsTag + `<mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms>` +
		`<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/><channel-binding type='tls-server-end-point'/></sasl-channel-binding></features>`
	if got := r.Features().String(); got != want {
		t.Errorf("features:\n%s\nwant:\n%s", got, want)
	}
}

// tlsClient is a story server whose clients use their own TLS settings.
type tlsClient struct {
	*servertest.Server
	cfg *tls.Config
}

func (s tlsClient) TLSConfig() *tls.Config { return s.cfg }

// TestStoryOldTLSRefused: a client that offers nothing newer than TLS 1.1
// fails the handshake, with STARTTLS, direct TLS and HTTPS; the same
// client allowed TLS 1.2 succeeds.
func TestStoryOldTLSRefused(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	old := srv.TLSConfig()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	const refused = "remote error: tls: protocol version not supported"

	r, err := story.DialRaw(context.Background(), tlsClient{srv, old}, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	if err := r.StartTLS(); err == nil || !strings.Contains(err.Error(), refused) {
		t.Errorf("STARTTLS with TLS 1.1: %v", err)
	}
	// The server hung up: nothing more is read.
	if ev, err := r.ReadEvent(); err == nil {
		t.Errorf("after the failed handshake: %v", ev)
	}

	if _, err := story.DialRaw(context.Background(), tlsClient{srv, old}, story.DirectTLS); err == nil || !strings.Contains(err.Error(), refused) {
		t.Errorf("direct TLS with TLS 1.1: %v", err)
	}

	conn, err := tls.Dial("tcp", srv.Addrs().HTTPS.String(), old)
	if err == nil {
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), refused) {
		t.Errorf("HTTPS with TLS 1.1: %v", err)
	}

	tls12 := old.Clone()
	tls12.MaxVersion = tls.VersionTLS12
	ok := dialSecure(t, tlsClient{srv, tls12}, story.TCP)
	if st, _ := ok.ConnectionState(); st.Version != tls.VersionTLS12 {
		t.Errorf("TLS version %x", st.Version)
	}
	c, err := tls.Dial("tcp", srv.Addrs().DirectTLS.String(), tls12)
	if err != nil {
		t.Fatalf("direct TLS with TLS 1.2: %v", err)
	}
	c.Close()
}

// TestStoryShutdownDuringTLSHandshake: a server shutting down while a
// direct TLS client has not finished its handshake closes the connection
// without writing anything: no XML in clear where TLS records are due
// (it used to write <stream:error><system-shutdown/> in clear, racing
// with the handshake).
func TestStoryShutdownDuringTLSHandshake(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	conn, err := net.Dial("tcp", srv.Addrs().DirectTLS.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server has the connection and waits for the ClientHello.
	deadline := time.Now().Add(5 * time.Second)
	for srv.Connections() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections", srv.Connections())
		}
		runtime.Gosched()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if len(got) > 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %q, %v; want the connection closed with nothing written", got, err)
	}
}
