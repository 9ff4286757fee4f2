package story

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// XMPP over WebSocket (RFC 7395). The rest of the package reads a byte
// stream and writes elements, so the WebSocket is adapted to a net.Conn:
// each Write is one message, and what is read is turned back into a
// stream — <open/> becomes a stream header, <close/> its end, every other
// message (a standalone element carrying its namespace) passes as it is.

const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

var webSocketCodec = &codec{
	dial: dialWebSocket,
	header: func(to, _ string) string {
		// RFC 7395 §3.4: <open/> instead of the stream header.
		var b strings.Builder
		b.WriteString("<open xmlns='" + nsFraming + "'")
		if to != "" {
			b.WriteString(" to='")
			b.Write(xmlstream.AppendEscapedAttr(nil, to))
			b.WriteString("'")
		}
		b.WriteString(" version='1.0'/>")
		return b.String()
	},
	footer: "<close xmlns='" + nsFraming + "'/>",
	mode:   xmlstream.ModeStream,
	encode: func(el *xmlstream.Element) []byte { return el.AppendStandalone(nil) },
}

func dialWebSocket(ctx context.Context, url string, cfg *tls.Config) (net.Conn, error) {
	d := websocket.Dialer{
		Subprotocols:     []string{"xmpp"},
		TLSClientConfig:  cfg,
		HandshakeTimeout: 30 * time.Second,
	}
	ws, resp, err := d.DialContext(ctx, url, http.Header{})
	if err != nil {
		return nil, err
	}
	if ws.Subprotocol() != "xmpp" {
		ws.Close()
		return nil, errors.New("websocket: the server did not accept the xmpp subprotocol (RFC 7395 §3.1)")
	}
	_ = resp
	return &wsConn{ws: ws}, nil
}

// wsConn adapts a WebSocket to the net.Conn the streams use.
type wsConn struct {
	ws      *websocket.Conn
	pending bytes.Buffer // translated bytes not read yet (reader only)
	wmu     sync.Mutex
}

func (c *wsConn) Read(p []byte) (int, error) {
	for c.pending.Len() == 0 {
		typ, msg, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return 0, io.EOF
			}
			return 0, err
		}
		if typ != websocket.TextMessage {
			return 0, errors.New("websocket: binary message from the server")
		}
		c.pending.Write(translateFrame(msg))
	}
	return c.pending.Read(p)
}

// translateFrame turns <open/> and <close/> into the stream header and
// end the stream parser expects; other messages pass unchanged.
func translateFrame(msg []byte) []byte {
	trimmed := bytes.TrimSpace(msg)
	if !bytes.Contains(trimmed, []byte(nsFraming)) {
		return msg
	}
	el, err := xmlstream.Parse(trimmed)
	if err != nil || el.NS != nsFraming {
		return msg
	}
	switch el.Name {
	case "open":
		b := []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'")
		for _, a := range el.Attrs {
			b = append(b, ' ')
			if a.NS == xmlstream.NSXML {
				b = append(b, "xml:"...)
			}
			b = append(b, a.Name...)
			b = append(b, "='"...)
			b = xmlstream.AppendEscapedAttr(b, a.Value)
			b = append(b, '\'')
		}
		return append(b, '>')
	case "close":
		return []byte("</stream:stream>")
	}
	return msg
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.TextMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error {
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

// abort closes the TCP connection under the WebSocket (and its TLS),
// without a close frame: a connection lost, not a stream closed.
func (c *wsConn) abort() error {
	conn := c.ws.UnderlyingConn()
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	err := conn.Close()
	c.ws.Close()
	return err
}

func (c *wsConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error {
	c.ws.SetReadDeadline(t)
	return c.ws.SetWriteDeadline(t)
}
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// ConnectionState is the TLS state of a wss:// connection, for channel
// binding.
func (c *wsConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.ws.UnderlyingConn().(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}
