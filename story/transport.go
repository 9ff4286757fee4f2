package story

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Transport is a way of reaching a server's client port. A Server tells for
// each transport at which address it listens (Server.Addr).
//
// Every transport yields the same thing to the rest of the package: a
// stream of first-level elements between a stream header and a close. What
// differs is below that line and lives in a transport's codec: how the
// connection is dialed, whether TLS starts at once or after <starttls/>,
// and how a stream is opened and closed. WebSocket (RFC 7395) will be one
// more codec: it dials an HTTP upgrade, frames every element, opens with
// <open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/> instead of a stream
// header, and parses in xmlstream.ModeFragments; nothing above the codec
// changes.
type Transport string

const (
	// TCP is a plain TCP connection upgraded with STARTTLS (RFC 6120 §5).
	// The address is host:port.
	TCP Transport = "tcp"
	// DirectTLS is TLS from the first byte (XEP-0368, "xmpps-client").
	// The address is host:port.
	DirectTLS Transport = "directtls"
	// WebSocket is XMPP over WebSocket (RFC 7395). The address is the
	// URL: ws://host:port/path or wss://…
	WebSocket Transport = "websocket"
	// BOSH is XMPP over BOSH (XEP-0124, XEP-0206). The address is the
	// URL: https://host:port/path or http://…
	BOSH Transport = "bosh"
)

// String returns the transport's name.
func (t Transport) String() string { return string(t) }

// codec is what a transport does below the element stream.
type codec struct {
	// dial connects to addr; with tlsFirst the connection is already TLS.
	dial func(ctx context.Context, addr string, cfg *tls.Config) (net.Conn, error)
	// startTLS says the stream must be upgraded with <starttls/>.
	startTLS bool
	// header is what opens a stream to domain (from is "" before the
	// client is authenticated).
	header func(to, from string) string
	// footer closes the stream.
	footer string
	mode   xmlstream.Mode
	// encode serializes an element to send; nil: in the stream's scope.
	encode func(el *xmlstream.Element) []byte
}

func codecFor(t Transport) (*codec, error) {
	switch t {
	case TCP:
		return &codec{dial: dialTCP, startTLS: true, header: streamHeader, footer: streamFooter, mode: xmlstream.ModeStream}, nil
	case DirectTLS:
		return &codec{dial: dialDirectTLS, header: streamHeader, footer: streamFooter, mode: xmlstream.ModeStream}, nil
	case WebSocket:
		return webSocketCodec, nil
	case BOSH:
		return boshCodec, nil
	}
	return nil, fmt.Errorf("unknown transport %q", string(t))
}

const streamFooter = "</stream:stream>"

// streamHeader is the initial stream header of RFC 6120 §4.7 (with the XML
// declaration §11.5 recommends). "from" is sent once the client has an
// identity to claim: after TLS (§4.7.1). An empty "to" is left out (only
// raw-mode tests do that).
func streamHeader(to, from string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'")
	if to != "" {
		b.WriteString(" to='")
		b.Write(xmlstream.AppendEscapedAttr(nil, to))
		b.WriteString("'")
	}
	if from != "" {
		b.WriteString(" from='")
		b.Write(xmlstream.AppendEscapedAttr(nil, from))
		b.WriteString("'")
	}
	b.WriteString(" version='1.0' xml:lang='en'>")
	return b.String()
}

func dialTCP(ctx context.Context, addr string, _ *tls.Config) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func dialDirectTLS(ctx context.Context, addr string, cfg *tls.Config) (net.Conn, error) {
	// XEP-0368 §3: the TLS handshake carries ALPN "xmpp-client".
	cfg = cfg.Clone()
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"xmpp-client"}
	}
	d := tls.Dialer{Config: cfg}
	return d.DialContext(ctx, "tcp", addr)
}

// stream is one connection carrying XMPP streams: the codec, the socket
// (replaced by its TLS client after STARTTLS), the parser fed from it and a
// write lock. Reads happen on one goroutine at a time: the negotiating one,
// then the Client's reader.
type stream struct {
	codec *codec

	mu   sync.Mutex // guards conn swaps against concurrent writes and closes
	conn net.Conn

	wmu sync.Mutex // serializes writes

	parser *xmlstream.Parser
	dec    *xmlstream.Decoder

	// record, when set, keeps every byte read (after TLS decryption) for
	// Raw.Bytes.
	recMu  sync.Mutex
	record bool
	rec    []byte
}

func newStream(c *codec, conn net.Conn, record bool) *stream {
	s := &stream{codec: c, conn: conn, record: record}
	s.parser = xmlstream.NewParser(c.mode, xmlstream.Limits{MaxElementBytes: 1 << 20, MaxTextBytes: 1 << 20})
	s.dec = xmlstream.NewDecoder(streamReader{s}, s.parser, 16<<10)
	return s
}

// streamReader reads from the stream's current connection.
type streamReader struct{ s *stream }

func (r streamReader) Read(p []byte) (int, error) {
	n, err := r.s.current().Read(p)
	if n > 0 {
		r.s.recMu.Lock()
		if r.s.record {
			r.s.rec = append(r.s.rec, p[:n]...)
		}
		r.s.recMu.Unlock()
	}
	return n, err
}

// stopRecording drops what was recorded and records no more.
func (s *stream) stopRecording() {
	s.recMu.Lock()
	s.record, s.rec = false, nil
	s.recMu.Unlock()
}

func (s *stream) current() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

func (s *stream) recorded() []byte {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return append([]byte(nil), s.rec...)
}

// tlsState returns the TLS connection state, if the connection is TLS.
func (s *stream) tlsState() *tls.ConnectionState {
	if tc, ok := s.current().(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := tc.ConnectionState()
		if !st.HandshakeComplete {
			return nil
		}
		return &st
	}
	return nil
}

// write sends data, bounded by timeout.
func (s *stream) write(data []byte, timeout time.Duration) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn := s.current()
	if timeout > 0 {
		if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
	}
	_, err := conn.Write(data)
	return err
}

func (s *stream) writeElement(el *xmlstream.Element, timeout time.Duration) error {
	if s.codec.encode != nil {
		return s.write(s.codec.encode(el), timeout)
	}
	return s.write(el.AppendXML(nil, xmlstream.StreamScope(stanza.NSClient)), timeout)
}

// bindContext makes reads and writes fail once ctx is done or past its
// deadline; the returned function undoes that. It is how the synchronous
// negotiation honours a context.
func (s *stream) bindContext(ctx context.Context) (release func()) {
	conn := s.current()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	// The lock and flag keep a cancellation racing with release from
	// leaving a past deadline on the connection afterwards.
	var mu sync.Mutex
	released := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !released {
			conn.SetDeadline(time.Unix(1, 0))
		}
	})
	return func() {
		stop()
		mu.Lock()
		released = true
		mu.Unlock()
		conn.SetDeadline(time.Time{})
	}
}

// next returns the next event from the stream.
func (s *stream) next() (xmlstream.Event, error) {
	return s.dec.Next()
}

// open sends a stream header and reads the server's header and features
// (RFC 6120 §4.3.2). The parser is reset first: this is also the stream
// restart of §4.3.3.
func (s *stream) open(to, from string, timeout time.Duration) (header, features *xmlstream.Element, err error) {
	s.parser.Reset()
	if err := s.write([]byte(s.codec.header(to, from)), timeout); err != nil {
		return nil, nil, fmt.Errorf("send stream header: %w", err)
	}
	for {
		ev, err := s.next()
		if err != nil {
			return header, nil, fmt.Errorf("read stream features: %w", err)
		}
		switch ev.Kind {
		case xmlstream.EventStreamOpen:
			header = ev.Element
		case xmlstream.EventStreamClose:
			return header, nil, errors.New("read stream features: the server closed the stream")
		case xmlstream.EventElement:
			if se, ok := stanza.ParseStreamError(ev.Element); ok {
				return header, nil, fmt.Errorf("read stream features: %w", se)
			}
			if ev.Element.Name == "features" && ev.Element.NS == stanza.NSStream {
				return header, ev.Element, nil
			}
			return header, nil, fmt.Errorf("read stream features: unexpected %s", brief(ev.Element))
		}
	}
}

// startTLS runs the STARTTLS negotiation (RFC 6120 §5.4.2) and the TLS
// handshake; the caller opens a new stream afterwards.
func (s *stream) startTLS(ctx context.Context, cfg *tls.Config, timeout time.Duration) error {
	if err := s.write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), timeout); err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	el, err := s.nextElement()
	if err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	if el.NS != stanza.NSTLS || el.Name != "proceed" {
		return fmt.Errorf("starttls: the server answered %s", brief(el))
	}
	// §5.4.3.3: after <proceed/> the old stream is gone; nothing after it
	// belongs to the new one.
	s.mu.Lock()
	tc := tls.Client(s.conn, cfg)
	s.conn = tc
	s.mu.Unlock()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("starttls: TLS handshake: %w", err)
	}
	return nil
}

// nextElement returns the next first-level element; a stream close or a
// stream error is an error.
func (s *stream) nextElement() (*xmlstream.Element, error) {
	for {
		ev, err := s.next()
		if err != nil {
			return nil, err
		}
		switch ev.Kind {
		case xmlstream.EventStreamClose:
			return nil, ErrStreamClosed
		case xmlstream.EventElement:
			if se, ok := stanza.ParseStreamError(ev.Element); ok {
				return ev.Element, se
			}
			return ev.Element, nil
		}
	}
}

func (s *stream) close() error {
	return s.current().Close()
}

// aborter is a connection that can be dropped without the goodbyes of its
// protocol (a WebSocket close frame, a BOSH terminate request).
type aborter interface{ abort() error }

// abort closes the connection under everything: the TCP connection, with
// no TLS close_notify nor any closing message of the transport.
func (s *stream) abort() error {
	conn := s.current()
	switch c := conn.(type) {
	case aborter:
		return c.abort()
	case *tls.Conn:
		return c.NetConn().Close()
	}
	return conn.Close()
}

// ErrStreamClosed is returned when the server closed the XML stream
// (</stream:stream>, RFC 6120 §4.4) where an element was expected.
var ErrStreamClosed = errors.New("story: the server closed the stream")

// isClosedConn reports whether err means the connection is gone (closed by
// either side), as opposed to a timeout or a parse error.
func isClosedConn(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// brief is a one-line rendering of an element for error messages.
func brief(el *xmlstream.Element) string {
	return clip(string(el.AppendXML(nil, xmlstream.StreamScope(stanza.NSClient))), 300)
}

// clip shortens s to about n bytes, saying how much was left out.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return fmt.Sprintf("%s…(%d more bytes)", s[:cut], len(s)-cut)
}
