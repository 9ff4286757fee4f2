package c2s

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NSFraming is the namespace of RFC 7395's <open/> and <close/>.
const NSFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// WebSocketOptions configure the WebSocket endpoint (RFC 7395).
type WebSocketOptions struct {
	// Origins lists the Origin headers allowed; "*" allows any. Requests
	// from the server's own origin and without an Origin header (not from
	// a browser) are always allowed; the others are refused with 403.
	Origins []string
	// BehindTLSProxy treats plain-HTTP requests as encrypted, for
	// deployments where a proxy in front terminates TLS.
	BehindTLSProxy bool
}

// wsBuffers are shared by every WebSocket connection for writing, so that
// an idle connection pins no write buffer.
var wsBuffers = &sync.Pool{}

// WebSocketHandler serves XMPP over WebSocket (RFC 7395) with the same
// session machinery as TCP.
func (s *Server) WebSocketHandler(opts WebSocketOptions) http.Handler {
	up := websocket.Upgrader{
		Subprotocols:    []string{"xmpp"},
		WriteBufferPool: wsBuffers,
		CheckOrigin:     func(r *http.Request) bool { return originAllowed(r, opts.Origins) },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RFC 7395 §3.1: the client offers the xmpp subprotocol and the
		// server's answer must name it; without it there is no XMPP
		// session to establish, so the request is refused.
		if !slices.Contains(websocket.Subprotocols(r), "xmpp") {
			http.Error(w, "the xmpp WebSocket subprotocol is required (RFC 7395)", http.StatusBadRequest)
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the client
		}
		tr := &wsTransport{
			conn: conn,
			// A message is one element: the stanza limit, with room for
			// white space around it. next enforces it, so that a larger
			// message gets <policy-violation/> as over TCP, not the
			// WebSocket close 1009 that a read limit would send.
			limit:  int64(s.cfg.Limits.MaxElementBytes) + 1024,
			parser: xmlstream.NewParser(xmlstream.ModeFragments, s.cfg.Limits),
			tls:    r.TLS,
			proxy:  opts.BehindTLSProxy,
			remote: r.RemoteAddr,
			shaper: shaper{rate: float64(s.cfg.RateBytesPerSecond), burst: float64(max(s.cfg.RateBytesPerSecond, s.cfg.Limits.MaxElementBytes))},
		}
		s.serveSession(newSession(s, tr))
	})
}

// originAllowed reports whether a WebSocket upgrade may proceed (it is
// refused with 403 otherwise): requests without an Origin header (not from
// a browser), from an origin in allowed ("*" allows any), or from the
// server's own origin (the page comes from this listener).
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(allowed, "*") || slices.Contains(allowed, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
}

// wsTransport is an XMPP stream over WebSocket: each message is one
// element, <open/> and <close/> stand for the stream header and its end.
type wsTransport struct {
	conn   *websocket.Conn
	parser *xmlstream.Parser
	tls    *tls.ConnectionState
	proxy  bool
	remote string
	shaper shaper
	limit  int64 // bytes in a message
	// opened: the client's <open/> was read, and no restart since. The
	// TCP parser refuses elements before the stream header; the framing
	// must too, or the session would handle them without a stream.
	opened bool

	// mu guards reading and closed: close reads the client's answer to
	// its close frame only when no next is under way (gorilla allows one
	// reader at a time).
	mu      sync.Mutex
	reading bool
	closed  bool
}

var _ transport = (*wsTransport)(nil)

func (t *wsTransport) handshake(context.Context, time.Time) error { return nil }

func (t *wsTransport) next(deadline time.Time) (xmlstream.Event, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return xmlstream.Event{}, net.ErrClosed
	}
	t.reading = true
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.reading = false
		t.mu.Unlock()
	}()
	for {
		t.conn.SetReadDeadline(deadline)
		typ, r, err := t.conn.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				// The client closed the WebSocket without <close/>.
				return xmlstream.Event{}, errWebSocketClosed
			}
			return xmlstream.Event{}, err
		}
		if typ != websocket.TextMessage {
			return xmlstream.Event{}, &xmlstream.Error{Condition: xmlstream.CondBadFormat, Msg: "binary WebSocket message (RFC 7395 §3.2)"}
		}
		msg, err := io.ReadAll(io.LimitReader(r, t.limit+1))
		if err != nil {
			return xmlstream.Event{}, err // as ReadMessage would
		}
		t.shaper.take(len(msg))
		if int64(len(msg)) > t.limit {
			// The rest of the message is never read: the session ends.
			return xmlstream.Event{}, &xmlstream.Error{Condition: xmlstream.CondPolicyViolation, Msg: "WebSocket message larger than the stanza size limit"}
		}
		if len(bytes.TrimSpace(msg)) == 0 {
			continue // white space keepalive
		}
		// RFC 7395 §3.3.3: every message is one complete element.
		t.parser.Reset()
		t.parser.Feed(msg)
		ev, err := t.parser.Next()
		if err != nil {
			return ev, err
		}
		if rest, err := t.parser.Next(); err != nil || rest.Kind != xmlstream.EventNone || ev.Kind != xmlstream.EventElement {
			if err != nil {
				return rest, err
			}
			return xmlstream.Event{}, &xmlstream.Error{Condition: xmlstream.CondBadFormat, Msg: "a WebSocket message must hold exactly one element (RFC 7395 §3.3.3)"}
		}
		el := ev.Element
		if el.NS == NSFraming {
			switch el.Name {
			case "open":
				t.opened = true
				// The framing implies the content namespace.
				return xmlstream.Event{Kind: xmlstream.EventStreamOpen, Element: el,
					Decls: []xmlstream.Attr{{Value: stanza.NSClient}}}, nil
			case "close":
				return xmlstream.Event{Kind: xmlstream.EventStreamClose}, nil
			}
		}
		if !t.opened {
			// RFC 7395 §3.4, §3.7: the stream starts, and restarts, with
			// <open/>.
			return xmlstream.Event{}, &xmlstream.Error{Condition: xmlstream.CondBadFormat, Msg: "an element before <open/> (RFC 7395 §3.4)"}
		}
		return ev, nil
	}
}

var errWebSocketClosed = errors.New("c2s: WebSocket closed by the client")

// restart: after SASL success the client opens a new stream (RFC 7395
// §3.7).
func (t *wsTransport) restart() { t.opened = false }

func (t *wsTransport) appendOpen(dst []byte, id, from, to string) []byte {
	dst = append(dst, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='"...)
	dst = appendOpenAttrs(dst, id, from, to)
	// appendOpenAttrs ends the start tag with '>': make it empty.
	return append(dst[:len(dst)-1], "/>"...)
}

func (t *wsTransport) appendElement(dst []byte, el *xmlstream.Element) []byte {
	return el.AppendStandalone(dst)
}

func (t *wsTransport) appendClose(dst []byte) []byte {
	return append(dst, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"...)
}

func (t *wsTransport) framed() bool { return true }

func (t *wsTransport) write(data []byte, ends []int, deadline time.Time) error {
	t.conn.SetWriteDeadline(deadline)
	start := 0
	for _, end := range ends {
		if err := t.conn.WriteMessage(websocket.TextMessage, data[start:end]); err != nil {
			return err
		}
		start = end
	}
	// As for TCP (tcpTransport.write): no write deadline left on the TLS
	// connection for crypto/tls's own writes from inside Read.
	t.conn.UnderlyingConn().SetWriteDeadline(time.Time{})
	return nil
}

func (t *wsTransport) interrupt(at time.Time) { t.conn.SetReadDeadline(at) }

// wsCloseWait bounds the wait for the client's answer to the close frame.
const wsCloseWait = time.Second

// close ends the WebSocket with a close frame (RFC 7395 §3.6) and, when
// no reader is running, the closing handshake of RFC 6455 §7.1.1: it
// waits (wsCloseWait at most) for the client's close frame, discarding
// what comes before it, and then closes the TCP connection. Closing it
// with unread data would reset it, and the client could lose what was
// sent last — the stream error that says why.
func (t *wsTransport) close() error {
	t.mu.Lock()
	drain := !t.closed && !t.reading
	t.closed = true
	t.mu.Unlock()
	err := t.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	if drain && err == nil {
		// The client's close frame ends the handshake: no answer to it.
		t.conn.SetCloseHandler(func(int, string) error { return nil })
		t.conn.SetReadDeadline(time.Now().Add(wsCloseWait))
		for {
			if _, _, err := t.conn.NextReader(); err != nil {
				break
			}
		}
	}
	return t.conn.Close()
}

func (t *wsTransport) secure() bool { return t.tls != nil || t.proxy }

func (t *wsTransport) tlsState() *tls.ConnectionState { return t.tls }

func (t *wsTransport) canStartTLS() bool { return false }

func (t *wsTransport) startTLS(context.Context, *tls.Config, time.Time) error {
	return errors.New("c2s: no STARTTLS over WebSocket")
}

func (t *wsTransport) remoteAddr() string { return t.remote }
