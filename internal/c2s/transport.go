package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// transport is what differs between the ways a client reaches us: TCP
// with STARTTLS or direct TLS (RFC 6120), WebSocket (RFC 7395), BOSH
// (XEP-0206). Everything above it — negotiation, SASL, binding, stream
// management, routing — is the same Session code.
//
// next is called by the session's reader goroutine only; write by its
// flusher; close and interrupt from anywhere.
type transport interface {
	// handshake runs before the first stream (direct TLS).
	handshake(ctx context.Context, deadline time.Time) error
	// next returns the next event from the client: a stream (re)opening,
	// a first-level element, or the stream's close. It returns a
	// net.Error timeout when the deadline passes.
	next(deadline time.Time) (xmlstream.Event, error)
	// restart expects a new stream after SASL success, keeping what the
	// client may already have sent (RFC 6120 §6.4.6).
	restart()
	// appendOpen, appendElement and appendClose serialize what the
	// session sends; framed transports write each as one message.
	appendOpen(dst []byte, id, from, to string) []byte
	appendElement(dst []byte, el *xmlstream.Element) []byte
	appendClose(dst []byte) []byte
	framed() bool
	// write sends data; for a framed transport ends holds the end offset
	// of each message in data.
	write(data []byte, ends []int, deadline time.Time) error
	// interrupt makes a blocked next return by t (the grace period after
	// the server's closing tag).
	interrupt(t time.Time)
	close() error
	// secure tells whether the connection is encrypted; tlsState gives
	// its TLS state when the session sees it (channel binding).
	secure() bool
	tlsState() *tls.ConnectionState
	// canStartTLS and startTLS are for STARTTLS (RFC 6120 §5): TCP only.
	canStartTLS() bool
	startTLS(ctx context.Context, cfg *tls.Config, deadline time.Time) error
	remoteAddr() string
}

// tcpTransport is an XMPP stream over TCP.
//
// The reader goroutine replaces conn when TLS starts; the flusher and
// Close may use it meanwhile, from other goroutines: they get it with
// current, under mu. Nothing is written during a TLS handshake.
type tcpTransport struct {
	mu          sync.Mutex
	conn        net.Conn
	handshaking bool

	directTLS bool
	tlsConfig *tls.Config
	parser    *xmlstream.Parser
	buf       []byte  // nil while the connection is idle (readIdle)
	bufp      *[]byte // the pool's holder of buf, which travels with it
	bufSize   int
	shaper    shaper

	// interruptAt (Unix ns, 0: none) is the read deadline interrupt set:
	// it stays, whatever deadline the reader sets afterwards.
	interruptAt atomic.Int64
}

var _ transport = (*tcpTransport)(nil)

func newTCPTransport(conn net.Conn, directTLS bool, cfg *Config) *tcpTransport {
	return &tcpTransport{
		conn:        conn,
		handshaking: directTLS, // from the start: nothing is written before TLS
		directTLS:   directTLS,
		tlsConfig:   cfg.TLS,
		parser:      xmlstream.NewParser(xmlstream.ModeStream, cfg.Limits),
		buf:         make([]byte, cfg.ReadBufferSize),
		bufSize:     cfg.ReadBufferSize,
		shaper:      shaper{rate: float64(cfg.RateBytesPerSecond), burst: float64(max(cfg.RateBytesPerSecond, cfg.Limits.MaxElementBytes))},
	}
}

func (t *tcpTransport) handshake(ctx context.Context, deadline time.Time) error {
	if !t.directTLS {
		return nil
	}
	return t.startTLS(ctx, t.tlsConfig, deadline)
}

func (t *tcpTransport) next(deadline time.Time) (xmlstream.Event, error) {
	for {
		ev, err := t.parser.Next()
		if err != nil || ev.Kind != xmlstream.EventNone {
			return ev, err
		}
		n, err := t.read(deadline)
		if n > 0 {
			t.parser.Feed(t.buf[:n])
			t.shaper.take(n)
			continue
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return ev, err
	}
}

// idleProbe is how long a read waits before the connection counts as
// idle (see read).
var idleProbe = 5 * time.Second

// read reads from the connection into t.buf until deadline.
//
// A TLS connection that stays quiet for idleProbe is idle: its reader
// then gives its buffer back and waits until the socket is readable
// without crypto/tls's read path on its stack, so that the runtime can
// shrink the stack to 4 KiB (see Session.run); it reads through TLS again
// once bytes arrive. A busy connection never waits that long and pays
// nothing for it.
func (t *tcpTransport) read(deadline time.Time) (int, error) {
	tc, _ := t.conn.(*tls.Conn)
	probe := time.Now().Add(idleProbe)
	if tc == nil || !deadline.IsZero() && deadline.Before(probe) {
		t.setReadDeadline(deadline)
		return t.conn.Read(t.buf)
	}
	t.setReadDeadline(probe)
	n, err := t.conn.Read(t.buf)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	// The probe timed out, or an interrupt did: readIdle's deadline
	// honours interruptAt, so an interrupt ends the wait there, not
	// sooner than it asked.
	// A timeout is not final for a tls.Conn (its net.Error is
	// temporary): nothing is lost, the next Read goes on.
	if err := t.readIdle(tc, deadline); err != nil {
		return 0, err
	}
	return t.conn.Read(t.buf)
}

// setReadDeadline sets the read deadline, or interrupt's if earlier.
func (t *tcpTransport) setReadDeadline(deadline time.Time) {
	t.conn.SetReadDeadline(deadline)
	// interrupt stores interruptAt before it sets the deadline: either
	// its deadline comes after ours, or we see it here.
	if at := t.interruptAt.Load(); at != 0 {
		if d := time.Unix(0, at); deadline.IsZero() || d.Before(deadline) {
			t.conn.SetReadDeadline(d)
		}
	}
}

// readIdle waits, without a read buffer, until tc's socket is readable
// (or deadline). It only follows a read that timed out: crypto/tls holds
// no complete record then, so whatever comes next comes from the socket.
//
//go:noinline
func (t *tcpTransport) readIdle(tc *tls.Conn, deadline time.Time) error {
	if t.bufp == nil {
		t.bufp = new([]byte)
	}
	*t.bufp = t.buf
	rbufs.Put(t.bufp)
	t.buf, t.bufp = nil, nil
	t.setReadDeadline(deadline)
	if onIdle != nil {
		onIdle()
	}
	err := waitReadable(tc.NetConn())
	t.bufp = rbufs.Get().(*[]byte)
	if len(*t.bufp) != t.bufSize {
		*t.bufp = make([]byte, t.bufSize)
	}
	t.buf = *t.bufp
	return err
}

// onIdle, for tests, runs when a reader starts waiting idle.
var onIdle func()

// rbufs holds the read buffers of idle connections.
var rbufs = sync.Pool{New: func() any { return new([]byte) }}

func (t *tcpTransport) restart() { t.parser.Restart() }

func (t *tcpTransport) appendOpen(dst []byte, id, from, to string) []byte {
	dst = append(dst, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='"...)
	return appendOpenAttrs(dst, id, from, to)
}

// appendOpenAttrs writes the attributes after id (RFC 6120 §4.7).
func appendOpenAttrs(dst []byte, id, from, to string) []byte {
	dst = append(dst, id...)
	if from != "" {
		dst = append(dst, "' from='"...)
		dst = xmlstream.AppendEscapedAttr(dst, from)
	}
	if to != "" {
		dst = append(dst, "' to='"...)
		dst = xmlstream.AppendEscapedAttr(dst, to)
	}
	return append(dst, "' version='1.0' xml:lang='en'>"...)
}

func (t *tcpTransport) appendElement(dst []byte, el *xmlstream.Element) []byte {
	return el.AppendXML(dst, xmlstream.StreamScope(stanza.NSClient))
}

func (t *tcpTransport) appendClose(dst []byte) []byte { return append(dst, "</stream:stream>"...) }

func (t *tcpTransport) framed() bool { return false }

// errHandshaking refuses a write during a TLS handshake: a session closed
// then (server shutdown) has no stream to write to yet; the connection is
// closed instead.
var errHandshaking = errors.New("c2s: TLS handshake in progress")

// current returns the connection, and whether a TLS handshake is running
// on it.
func (t *tcpTransport) current() (net.Conn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conn, t.handshaking
}

func (t *tcpTransport) write(data []byte, _ []int, deadline time.Time) error {
	conn, handshaking := t.current()
	if handshaking {
		return errHandshaking
	}
	conn.SetWriteDeadline(deadline)
	_, err := conn.Write(data)
	if err == nil {
		// No deadline left behind: crypto/tls answers a TLS 1.3
		// KeyUpdate from inside Read, with a write under this deadline,
		// and a write error there is final for the connection.
		conn.SetWriteDeadline(time.Time{})
	}
	return err
}

func (t *tcpTransport) interrupt(at time.Time) {
	t.interruptAt.Store(at.UnixNano())
	conn, _ := t.current()
	conn.SetReadDeadline(at)
}

func (t *tcpTransport) close() error {
	conn, _ := t.current()
	return conn.Close()
}

func (t *tcpTransport) secure() bool {
	conn, _ := t.current()
	_, ok := conn.(*tls.Conn)
	return ok
}

func (t *tcpTransport) tlsState() *tls.ConnectionState {
	conn, _ := t.current()
	if tc, ok := conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}

func (t *tcpTransport) canStartTLS() bool { return !t.secure() && t.tlsConfig != nil }

// startTLS upgrades the connection; a new stream follows, and nothing the
// client sent in clear before the handshake counts (RFC 6120 §5.4.3.3).
func (t *tcpTransport) startTLS(ctx context.Context, cfg *tls.Config, deadline time.Time) error {
	if cfg == nil {
		return errors.New("c2s: no TLS configuration")
	}
	raw := t.beginTLS()
	tc := tls.Server(raw, cfg)
	raw.SetDeadline(deadline)
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := tc.HandshakeContext(hctx)
	if err == nil {
		// Before tc is published: an interrupt from now on must stay.
		raw.SetDeadline(time.Time{})
	}
	t.mu.Lock()
	t.handshaking = false
	if err == nil {
		t.conn = tc
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	t.parser.Reset()
	return nil
}

// beginTLS marks the start of a TLS handshake: from now on nothing is
// written in clear. It returns the connection the handshake runs on.
func (t *tcpTransport) beginTLS() net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.handshaking = true
	return t.conn
}

func (t *tcpTransport) remoteAddr() string {
	conn, _ := t.current()
	return conn.RemoteAddr().String()
}

// shaper slows a reader down when the client sends faster than allowed,
// as ejabberd's shapers do: not reading is the backpressure, TCP makes
// the client wait.
type shaper struct {
	rate, burst float64 // bytes per second; 0: no limit
	tokens      float64
	last        time.Time
}

func (s *shaper) take(n int) {
	if s.rate <= 0 {
		return
	}
	now := time.Now()
	if s.last.IsZero() {
		s.tokens = s.burst
	} else {
		s.tokens = min(s.burst, s.tokens+now.Sub(s.last).Seconds()*s.rate)
	}
	s.last = now
	s.tokens -= float64(n)
	if s.tokens < 0 {
		time.Sleep(time.Duration(-s.tokens / s.rate * float64(time.Second)))
	}
}
