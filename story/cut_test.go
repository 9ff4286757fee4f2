package story

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// Cut over WebSocket drops the connection: the server sees it end without
// a close frame (1006, abnormal closure), where Close sends one (1000).
func TestWebSocketAbortSendsNoCloseFrame(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(*stream) error
		want int
	}{
		{"abort", (*stream).abort, websocket.CloseAbnormalClosure},
		{"close", (*stream).close, websocket.CloseNormalClosure},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := make(chan error, 1)
			up := websocket.Upgrader{Subprotocols: []string{"xmpp"}}
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := up.Upgrade(w, r, nil)
				if err != nil {
					got <- err
					return
				}
				defer ws.Close()
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						got <- err
						return
					}
				}
			}))
			defer hs.Close()
			conn, err := dialWebSocket(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			s := newStream(webSocketCodec, conn, false)
			if err := s.write([]byte("<presence xmlns='jabber:client'/>"), DefaultTimeout); err != nil {
				t.Fatal(err)
			}
			c.end(s)
			var ce *websocket.CloseError
			if err := <-got; !errors.As(err, &ce) || ce.Code != c.want {
				t.Fatalf("the server read %v, want close code %d", err, c.want)
			}
		})
	}
}

// Cut over TLS closes the TCP connection without a close_notify alert:
// after the data, the server reads nothing more, where Close sends the
// alert first.
func TestTLSAbortSendsNoCloseNotify(t *testing.T) {
	cert := selfSigned(t, "localhost")
	for _, c := range []struct {
		name      string
		end       func(*stream) error
		wantAlert bool
	}{
		{"abort", (*stream).abort, false},
		{"close", (*stream).close, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			read := make(chan error, 1)
			after := make(chan int, 1) // raw bytes read after the data
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					read <- err
					return
				}
				defer raw.Close()
				cr := &countingConn{Conn: raw}
				tc := tls.Server(cr, &tls.Config{Certificates: []tls.Certificate{cert}})
				buf := make([]byte, len("<presence/>"))
				_, err = io.ReadFull(tc, buf)
				read <- err
				if err != nil {
					return
				}
				before := cr.n
				io.Copy(io.Discard, cr)
				after <- cr.n - before
			}()
			conn, err := dialDirectTLS(context.Background(), ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			s := newStream(&codec{}, conn, false)
			if err := s.write([]byte("<presence/>"), DefaultTimeout); err != nil {
				t.Fatal(err)
			}
			if err := <-read; err != nil {
				t.Fatal(err)
			}
			c.end(s)
			if n := <-after; (n > 0) != c.wantAlert {
				t.Fatalf("%d bytes after the data; an alert expected: %v", n, c.wantAlert)
			}
		})
	}
}

type countingConn struct {
	net.Conn
	n int
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += n
	return n, err
}
