package story

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// scripted starts a listener whose single connection is handled by
// script, and returns a Server pointing at it (TCP only, no TLS). The
// script's goroutine ends when script returns; the cleanup closes the
// listener and the connection, and waits for it.
func scripted(t *testing.T, script func(conn net.Conn)) Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conn net.Conn
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		defer c.Close()
		script(c)
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &External{DomainName: "fake.test", Addrs: map[Transport]string{TCP: ln.Addr().String()}}
}

// readUntil reads from conn until what it read contains s; it reports
// whether it did before the connection failed.
func readUntil(conn net.Conn, s string) bool {
	var got []byte
	buf := make([]byte, 512)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !bytes.Contains(got, []byte(s)) {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return bytes.Contains(got, []byte(s))
		}
	}
	return true
}

const (
	fakeHeader   = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='fake.test' id='s1' version='1.0'>"
	fakeFeatures = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
	clientHeader = "version='1.0' xml:lang='en'>"
)

func dialRaw(t *testing.T, srv Server) *Raw {
	t.Helper()
	r, err := DialRaw(context.Background(), srv, TCP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRawParsingOneByteAtATime(t *testing.T) {
	out := fakeHeader + fakeFeatures + "\n<message from='a@fake.test' to='b@fake.test'><body>x &amp; y</body></message><iq type='result' id='1'/>"
	srv := scripted(t, func(conn net.Conn) {
		if !readUntil(conn, clientHeader) {
			return
		}
		// Split everywhere: the client's parser must resume.
		for i := range len(out) {
			conn.Write([]byte{out[i]})
		}
		readUntil(conn, "</never>")
	})
	r := dialRaw(t, srv)
	f, err := r.OpenStream("fake.test")
	if err != nil {
		t.Fatal(err)
	}
	if f.Child("starttls", stanza.NSTLS) == nil {
		t.Errorf("features %s", f)
	}
	if h := r.Header(); h.Attr("id") != "s1" || h.Attr("from") != "fake.test" {
		t.Errorf("header %s", h)
	}
	m, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	AssertStanza(t, m, IsMessage(), HasBody("x & y"), IsFrom(RawAddr("a@fake.test")))
	ev, err := r.ReadEvent()
	if err != nil || ev.Kind != xmlstream.EventElement || ev.Element.Name != "iq" {
		t.Fatalf("ReadEvent: %+v, %v", ev, err)
	}
	if got := string(r.Bytes()); got != out {
		t.Errorf("Bytes:\n got %q\nwant %q", got, out)
	}
}

func TestRawExpectStreamError(t *testing.T) {
	streamErr := "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
		"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bad</text></stream:error>"
	cases := []struct {
		name string
		// after is what the server does after its features, once the
		// client's garbage has arrived.
		after func(conn net.Conn)
		cond  string
		want  string // "" for success, else part of the error
	}{
		{name: "clean", cond: "not-well-formed", after: func(conn net.Conn) {
			conn.Write([]byte(streamErr + "</stream:stream>"))
			// RFC 6120 §4.4: wait for the client's close, then close.
			readUntil(conn, "</stream:stream>")
		}},
		{name: "other condition", cond: "policy-violation", want: "expected stream error policy-violation, got <stream:error><not-well-formed", after: func(conn net.Conn) {
			conn.Write([]byte(streamErr + "</stream:stream>"))
			readUntil(conn, "</stream:stream>")
		}},
		{name: "no close tag", cond: "not-well-formed", want: "did not send </stream:stream>", after: func(conn net.Conn) {
			conn.Write([]byte(streamErr))
		}},
		{name: "connection left open", cond: "not-well-formed", want: "did not close the connection within 200ms", after: func(conn net.Conn) {
			conn.Write([]byte(streamErr + "</stream:stream>"))
			readUntil(conn, "</never>")
		}},
		{name: "no error at all", cond: "not-well-formed", want: "expected stream error not-well-formed, got <message", after: func(conn net.Conn) {
			conn.Write([]byte("<message/>"))
			readUntil(conn, "</never>")
		}},
		{name: "connection dropped", cond: "not-well-formed", want: "expected stream error not-well-formed: story: raw read: EOF; received:\n" + fakeHeader, after: func(conn net.Conn) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := scripted(t, func(conn net.Conn) {
				if !readUntil(conn, clientHeader) {
					return
				}
				conn.Write([]byte(fakeHeader + fakeFeatures))
				if readUntil(conn, "<<") {
					tc.after(conn)
				}
			})
			r := dialRaw(t, srv)
			if tc.name == "connection left open" {
				// The one case that waits for the timeout; the others
				// keep the default, a ceiling for what does come.
				r.Timeout = 200 * time.Millisecond
			}
			if _, err := r.OpenStream("fake.test"); err != nil {
				t.Fatal(err)
			}
			r.Send("<<")
			err := r.ExpectStreamError(tc.cond)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ExpectStreamError: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ExpectStreamError: %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRawOpenStreamGetsStreamError(t *testing.T) {
	srv := scripted(t, func(conn net.Conn) {
		if !readUntil(conn, clientHeader) {
			return
		}
		conn.Write([]byte(fakeHeader + "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"))
		readUntil(conn, "</stream:stream>")
	})
	r := dialRaw(t, srv)
	_, err := r.OpenStream("elsewhere.test")
	var se *stanza.StreamError
	if !errors.As(err, &se) || se.Condition != stanza.StreamHostUnknown {
		t.Fatalf("OpenStream: %v", err)
	}
	// The error element was put back for ExpectStreamError.
	if err := r.ExpectStreamError("host-unknown"); err != nil {
		t.Fatal(err)
	}
}

func TestRawNegotiationWithFakeServer(t *testing.T) {
	fs := newFakeServer(t)
	acct := fs.addUser("alice")
	r := dialRaw(t, fs)
	if _, err := r.OpenStream(fs.domain); err != nil {
		t.Fatal(err)
	}
	if err := r.StartTLS(); err != nil {
		t.Fatal(err)
	}
	if st, ok := r.ConnectionState(); !ok || !st.HandshakeComplete {
		t.Fatal("no TLS after StartTLS")
	}
	f, err := r.OpenStream(fs.domain)
	if err != nil {
		t.Fatal(err)
	}
	if len(offeredMechanisms(f)) == 0 {
		t.Fatalf("no mechanisms in %s", f)
	}
	r.Mechanism = ScramSHA256Plus
	mech, err := r.Auth(acct.Localpart, acct.Password)
	if err != nil || mech != ScramSHA256Plus {
		t.Fatalf("Auth: %s, %v", mech, err)
	}
	if _, err := r.OpenStream(fs.domain); err != nil {
		t.Fatal(err)
	}
	j, err := r.Bind("raw")
	if err != nil || j.String() != "alice@fake.test/raw" {
		t.Fatalf("Bind: %s, %v", j, err)
	}
	r.Send("</stream:stream>")
	if err := r.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
	// After TLS, Bytes holds the decrypted stream.
	if !strings.Contains(string(r.Bytes()), "<jid>alice@fake.test/raw</jid>") {
		t.Errorf("Bytes lack the bind result")
	}
}

func TestRawAuthFailure(t *testing.T) {
	fs := newFakeServer(t)
	fs.addUser("alice")
	r, err := DialRaw(context.Background(), fs, DirectTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.OpenStream(fs.domain); err != nil {
		t.Fatal(err)
	}
	_, err = r.Auth("alice", "wrong")
	var se *SASLError
	if !errors.As(err, &se) || se.Condition != "not-authorized" {
		t.Fatalf("Auth: %v", err)
	}
}
