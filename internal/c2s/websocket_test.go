package c2s_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// XMPP over WebSocket (RFC 7395), seen frame by frame: the story client
// turns frames back into a stream, so these tests drive a gorilla
// WebSocket themselves.

const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// wsURL is the plain ws:// endpoint of srv (its HTTP listener).
func wsURL(srv *servertest.Server) string {
	return "ws://" + srv.Addrs().HTTP.String() + "/ws-xmpp"
}

// wssURL is the wss:// endpoint of srv (its HTTPS listener).
func wssURL(srv *servertest.Server) string {
	return "wss://" + srv.Addrs().HTTPS.String() + "/ws-xmpp"
}

// wsHandshake dials url with the given Origin (none if empty) and
// subprotocols; it returns the HTTP status of the answer and the
// connection when the upgrade succeeded.
func wsHandshake(t *testing.T, srv *servertest.Server, url, origin string, protocols ...string) (int, *websocket.Conn) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, TLSClientConfig: srv.TLSConfig(), HandshakeTimeout: 10 * time.Second}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	conn, resp, err := d.Dial(url, h)
	if err != nil && !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("dial %s: %v", url, err)
	}
	if resp == nil {
		t.Fatalf("dial %s: no response: %v", url, err)
	}
	resp.Body.Close()
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return resp.StatusCode, conn
}

// wsRaw is a client that reads the server's WebSocket messages one by one.
type wsRaw struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(t *testing.T, srv *servertest.Server) *wsRaw {
	t.Helper()
	status, conn := wsHandshake(t, srv, wssURL(srv), "", "xmpp")
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: HTTP %d", status)
	}
	if conn.Subprotocol() != "xmpp" {
		t.Fatalf("subprotocol %q", conn.Subprotocol())
	}
	return &wsRaw{t: t, conn: conn}
}

func (c *wsRaw) send(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// read returns the next message; err is the WebSocket's (a
// *websocket.CloseError once the server closed it).
func (c *wsRaw) read() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	typ, msg, err := c.conn.ReadMessage()
	if err != nil {
		return "", err
	}
	if typ != websocket.TextMessage {
		return "", fmt.Errorf("message of type %d, not text (RFC 7395 §3.2): %q", typ, msg)
	}
	return string(msg), nil
}

// next reads one message and checks that it is exactly one complete XML
// element with its namespace declared (RFC 7395 §3.3.3).
func (c *wsRaw) next() *xmlstream.Element {
	c.t.Helper()
	msg, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return c.parse(msg)
}

func (c *wsRaw) parse(msg string) *xmlstream.Element {
	c.t.Helper()
	el, err := xmlstream.Parse([]byte(msg))
	if err != nil {
		c.t.Fatalf("message is not one complete element (RFC 7395 §3.3.3): %v\n%q", err, msg)
	}
	if el.NS == "" {
		c.t.Fatalf("message without a namespace (RFC 7395 §3.3.3): %q", msg)
	}
	return el
}

func (c *wsRaw) expect(name, ns string) *xmlstream.Element {
	c.t.Helper()
	el := c.next()
	if el.Name != name || el.NS != ns {
		c.t.Fatalf("got %s, want {%s}%s", el, ns, name)
	}
	return el
}

// expectWSClose reads until the server closes the WebSocket, which must
// come with nothing more before it, and be a normal closure.
func (c *wsRaw) expectWSClose() {
	c.t.Helper()
	msg, err := c.read()
	if err == nil {
		c.t.Fatalf("a message after <close/>: %q", msg)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		c.t.Fatalf("the WebSocket ended without a close frame: %v", err)
	}
	if ce.Code != websocket.CloseNormalClosure {
		c.t.Fatalf("close frame %d %q, want 1000", ce.Code, ce.Text)
	}
}

// open sends <open/> and checks the server's answer: <open/> then the
// features, each a message of its own (RFC 7395 §3.4).
func (c *wsRaw) open(domain string) *xmlstream.Element {
	c.t.Helper()
	c.send("<open xmlns='" + nsFraming + "' to='" + domain + "' version='1.0'/>")
	open := c.expect("open", nsFraming)
	if open.Attr("from") != domain || open.Attr("id") == "" || open.Attr("version") != "1.0" || open.Lang() == "" {
		c.t.Fatalf("server <open/> lacks from, id, version or xml:lang (RFC 7395 §3.4): %s", open)
	}
	if open.FirstChild() != nil || open.Text() != "" {
		c.t.Fatalf("server <open/> is not empty: %s", open)
	}
	return c.expect("features", xmlstream.NSStream)
}

// login authenticates with PLAIN (over wss://) and binds resource.
func (c *wsRaw) login(srv *servertest.Server, user jid.JID, password, resource string) jid.JID {
	c.t.Helper()
	c.open(srv.Domain())
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user.Local()+"\x00"+password)) + "</auth>")
	c.expect("success", "urn:ietf:params:xml:ns:xmpp-sasl")
	if f := c.open(srv.Domain()); f.Child("bind", "urn:ietf:params:xml:ns:xmpp-bind") == nil {
		c.t.Fatalf("no bind feature: %s", f)
	}
	c.send("<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>")
	res := c.expect("iq", stanza.NSClient)
	full, err := jid.Parse(res.Child("bind", "urn:ietf:params:xml:ns:xmpp-bind").ChildText("jid", "urn:ietf:params:xml:ns:xmpp-bind"))
	if err != nil || res.Attr("type") != "result" {
		c.t.Fatalf("bind: %s", res)
	}
	return full
}

// TestWebSocketOrigins: the Origin header is checked against the HTTP
// `origins` setting; requests from the server's own origin, and those
// without an Origin (not from a browser), are always allowed.
func TestWebSocketOrigins(t *testing.T) {
	t.Parallel()
	const app, other = "https://app.example.org", "https://evil.example.net"
	cases := []struct {
		name    string
		origins []string
		allowed map[string]bool // Origin → upgrade allowed; "self" is the server's own
	}{
		{"one origin", []string{app}, map[string]bool{app: true, other: false, "": true, "self": true}},
		{"none configured", nil, map[string]bool{app: false, other: false, "": true, "self": true, "null": false}},
		{"any (the default)", []string{"*"}, map[string]bool{app: true, other: true, "": true, "self": true, "null": true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, func(cfg *config.Config) { cfg.HTTP.Origins = c.origins })
			for origin, ok := range c.allowed {
				if origin == "self" {
					origin = "http://" + srv.Addrs().HTTP.String()
				}
				want := http.StatusForbidden
				if ok {
					want = http.StatusSwitchingProtocols
				}
				if status, _ := wsHandshake(t, srv, wsURL(srv), origin, "xmpp"); status != want {
					t.Errorf("Origin %q: HTTP %d, want %d", origin, status, want)
				}
			}
			// The own origin over wss:// as well, with its https scheme.
			self := "https://" + srv.Addrs().HTTPS.String()
			if status, _ := wsHandshake(t, srv, wssURL(srv), self, "xmpp"); status != http.StatusSwitchingProtocols {
				t.Errorf("own origin %q over wss://: HTTP %d", self, status)
			}
		})
	}
}

// TestWebSocketSubprotocol: the client must offer the xmpp subprotocol
// and the server answers with it (RFC 7395 §3.1); a request without it is
// refused.
func TestWebSocketSubprotocol(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, protos := range [][]string{nil, {"chat"}, {"XMPP"}} {
		if status, _ := wsHandshake(t, srv, wssURL(srv), "", protos...); status != http.StatusBadRequest {
			t.Errorf("subprotocols %q: HTTP %d, want 400", protos, status)
		}
	}
	status, conn := wsHandshake(t, srv, wssURL(srv), "", "chat", "xmpp")
	if status != http.StatusSwitchingProtocols || conn.Subprotocol() != "xmpp" {
		t.Fatalf("subprotocols chat, xmpp: HTTP %d, subprotocol %q", status, conn.Subprotocol())
	}
}

// TestWebSocketOneElementPerMessage: everything the server sends — the
// <open/>, the features, each stanza, the <close/> — is a message of its
// own, also when many stanzas are queued for the client at once.
func TestWebSocketOneElementPerMessage(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bobJID := createUser(t, srv, "bob", "secret")
	bob := dialWS(t, srv)
	bobFull := bob.login(srv, bobJID, "secret", "web")

	// Alice sends a burst in one write: bob's session gets them faster
	// than it writes them, and its flusher writes many in one go.
	const n = 300
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		var burst strings.Builder
		for i := range n {
			fmt.Fprintf(&burst, "<message type='chat' to='%s' id='m%d'><body>%d &lt;&amp;&gt;</body></message>", bobFull, i, i)
		}
		alice.SendRaw(burst.String())
		for i := range n {
			m := bob.expect("message", stanza.NSClient)
			if m.Attr("id") != fmt.Sprintf("m%d", i) || m.ChildText("body", stanza.NSClient) != fmt.Sprintf("%d <&>", i) {
				t.Fatalf("message %d: %s", i, m)
			}
		}
		// An IQ answered by the server, and a presence round.
		bob.send("<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
		if res := bob.expect("iq", stanza.NSClient); res.Attr("id") != "p1" {
			t.Fatalf("ping: %s", res)
		}
	})

	// The client closes the stream: the server answers with <close/> in
	// a message of its own, then closes the WebSocket (RFC 7395 §3.6).
	bob.send("<close xmlns='" + nsFraming + "'/>")
	bob.expect("close", nsFraming)
	bob.expectWSClose()
}

// TestWebSocketServerCloses: a stream error is a message, <close/> another
// (RFC 7395 §3.5); after a stream error the server closes the WebSocket at
// once, without waiting for the client's <close/> (RFC 6120 §4.9.1.1).
func TestWebSocketServerCloses(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, c := range []struct{ name, send, cond string }{
		// Two elements in one message (§3.3.3).
		{"two elements", "<iq xmlns='jabber:client' type='get' id='a'><ping xmlns='urn:xmpp:ping'/></iq><iq xmlns='jabber:client' type='get' id='b'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-format"},
		// Half an element (§3.3.3).
		{"half an element", "<iq xmlns='jabber:client' type='get' id='a'>", "bad-format"},
		{"not XML", "<iq <", "not-well-formed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u := createUser(t, srv, "ws", "secret")
			ws := dialWS(t, srv)
			ws.login(srv, u, "secret", "web")
			ws.send(c.send)
			serverError(t, ws, c.cond)
			ws.expectWSClose()
		})
	}
	// Over the stanza size limit (64 KiB by default), by a little (the
	// parser's limit) or a lot (the message's): <policy-violation/>, as
	// over TCP (RFC 6120 §4.9.3.14), not just a WebSocket close 1009.
	for _, size := range []int{65700, 70000, 1 << 20} {
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) {
			t.Parallel()
			u := createUser(t, srv, "ws", "secret")
			ws := dialWS(t, srv)
			ws.login(srv, u, "secret", "web")
			ws.send("<message xmlns='jabber:client' to='" + u.String() + "'><body>" + strings.Repeat("x", size) + "</body></message>")
			serverError(t, ws, "policy-violation")
			ws.expectWSClose()
		})
	}
	t.Run("binary message", func(t *testing.T) {
		t.Parallel()
		ws := dialWS(t, srv)
		ws.open(srv.Domain())
		if err := ws.conn.WriteMessage(websocket.BinaryMessage, []byte("<presence xmlns='jabber:client'/>")); err != nil {
			t.Fatal(err)
		}
		serverError(t, ws, "bad-format")
		ws.expectWSClose()
	})
	// Elements before <open/>, at the start or after the restart that
	// follows authentication (RFC 7395 §3.4, §3.7), like the TCP parser
	// refuses elements before the stream header: the error needs an
	// <open/> first (RFC 6120 §4.9.1.2), each a message.
	for _, first := range []string{
		"<message xmlns='jabber:client' to='someone@localhost'><body>hi</body></message>",
		"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHUAc2VjcmV0</auth>",
		"<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>",
	} {
		t.Run("before open", func(t *testing.T) {
			t.Parallel()
			ws := dialWS(t, srv)
			ws.send(first)
			ws.expect("open", nsFraming)
			serverError(t, ws, "bad-format")
			ws.expectWSClose()
		})
	}
	t.Run("bind before the restart", func(t *testing.T) {
		t.Parallel()
		u := createUser(t, srv, "ws", "secret")
		ws := dialWS(t, srv)
		ws.open(srv.Domain())
		ws.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
			base64.StdEncoding.EncodeToString([]byte("\x00"+u.Local()+"\x00secret")) + "</auth>")
		ws.expect("success", "urn:ietf:params:xml:ns:xmpp-sasl")
		ws.send("<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
		ws.expect("open", nsFraming) // the restarted stream's
		serverError(t, ws, "bad-format")
		ws.expectWSClose()
	})
	t.Run("wrong host", func(t *testing.T) {
		t.Parallel()
		ws := dialWS(t, srv)
		ws.send("<open xmlns='" + nsFraming + "' to='elsewhere.example' version='1.0'/>")
		ws.expect("open", nsFraming)
		serverError(t, ws, "host-unknown")
		ws.expectWSClose()
	})
}

// serverError expects a stream error with cond then <close/>, each a
// message of its own.
func serverError(t *testing.T, ws *wsRaw, cond string) {
	t.Helper()
	e := ws.expect("error", xmlstream.NSStream)
	if e.Child(cond, stanza.NSStreamErrors) == nil {
		t.Fatalf("stream error %s, want %s", e, cond)
	}
	ws.expect("close", nsFraming)
}

// TestWebSocketShutdown: on shutdown every WebSocket client gets
// <system-shutdown/> and <close/>; the server waits for the client's
// <close/>, then closes the WebSocket (RFC 7395 §3.6).
func TestWebSocketShutdown(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	u := createUser(t, srv, "ws", "secret")
	ws := dialWS(t, srv)
	ws.login(srv, u, "secret", "web")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	serverError(t, ws, "system-shutdown")
	ws.send("<close xmlns='" + nsFraming + "'/>")
	ws.expectWSClose()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketKeepalives: WebSocket pings are answered (RFC 7395 §3.8);
// a message of white space only is ignored.
func TestWebSocketKeepalives(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ws := dialWS(t, srv)
	ws.open(srv.Domain())
	pong := make(chan string, 1)
	ws.conn.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := ws.conn.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	ws.send(" \n ")
	ws.send("<close xmlns='" + nsFraming + "'/>")
	ws.expect("close", nsFraming) // the pong handler runs while reading
	select {
	case data := <-pong:
		if data != "hello" {
			t.Errorf("pong %q", data)
		}
	default:
		t.Error("no pong before <close/>")
	}
	ws.expectWSClose()
}

// TestWebSocketTLS: a wss:// session is encrypted: PLAIN and the
// -PLUS mechanisms are offered; over ws:// neither is (no TLS, no
// channel binding), and STARTTLS is not offered on either (RFC 7395 §3.9).
func TestWebSocketTLS(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ws := dialWS(t, srv)
	f := ws.open(srv.Domain())
	if f.Child("starttls", "urn:ietf:params:xml:ns:xmpp-tls") != nil {
		t.Errorf("STARTTLS offered over WebSocket: %s", f)
	}
	if s := f.String(); !strings.Contains(s, ">PLAIN<") || !strings.Contains(s, "-PLUS<") {
		t.Errorf("wss:// features: %s", f)
	}
	status, conn := wsHandshake(t, srv, wsURL(srv), "", "xmpp")
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("ws://: HTTP %d", status)
	}
	plain := &wsRaw{t: t, conn: conn}
	f = plain.open(srv.Domain())
	if s := f.String(); strings.Contains(s, ">PLAIN<") || strings.Contains(s, "-PLUS<") || f.Child("starttls", "urn:ietf:params:xml:ns:xmpp-tls") != nil {
		t.Errorf("ws:// features: %s", f)
	}
}
