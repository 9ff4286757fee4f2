package xmppc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// XMPP over WebSocket (RFC 7395), adapted to the net.Conn the client
// uses: each Write is one message; what is read is turned back into a
// stream (<open/> becomes a stream header, <close/> its end).

const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

func dialWebSocket(ctx context.Context, d *net.Dialer, url string, cfg *tls.Config) (net.Conn, error) {
	wd := websocket.Dialer{
		Subprotocols:     []string{"xmpp"},
		TLSClientConfig:  cfg,
		NetDialContext:   d.DialContext,
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   2048,
		WriteBufferSize:  2048,
	}
	ws, _, err := wd.DialContext(ctx, url, http.Header{})
	if err != nil {
		return nil, err
	}
	if ws.Subprotocol() != "xmpp" {
		ws.Close()
		return nil, errors.New("websocket: the server refused the xmpp subprotocol (RFC 7395 §3.1)")
	}
	return &wsConn{ws: ws}, nil
}

type wsConn struct {
	ws      *websocket.Conn
	pending bytes.Buffer // reader only
	wmu     sync.Mutex
}

var (
	wsOpen  = []byte("<open ")
	wsClose = []byte("<close ")
)

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
			return 0, errors.New("websocket: binary message")
		}
		m := bytes.TrimSpace(msg)
		switch {
		case bytes.HasPrefix(m, wsOpen) && bytes.Contains(m, []byte(nsFraming)):
			c.pending.WriteString("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
		case bytes.HasPrefix(m, wsClose) && bytes.Contains(m, []byte(nsFraming)):
			c.pending.WriteString("</stream:stream>")
		default:
			c.pending.Write(msg)
		}
	}
	return c.pending.Read(p)
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

func (c *wsConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error {
	c.ws.SetReadDeadline(t)
	return c.ws.SetWriteDeadline(t)
}
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
