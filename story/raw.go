package story

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Raw is a connection driven step by step, for tests of how a server
// handles protocol violations: the test writes whatever bytes it likes and
// reads the server's answers synchronously, element by element, with every
// byte received kept for exact comparison (Bytes). There is no reader
// goroutine; every read is bounded by Timeout.
//
// A typical test:
//
//	r, err := story.DialRaw(ctx, srv, story.TCP)
//	…
//	defer r.Close()
//	features, err := r.OpenStream(srv.Domain())
//	…
//	r.Send("<message><body>unclosed</message>")
//	if err := r.ExpectStreamError("not-well-formed"); err != nil {
//		t.Fatal(err)
//	}
type Raw struct {
	// Timeout bounds each read and write; DefaultTimeout when zero.
	Timeout time.Duration
	// Mechanism forces the SASL mechanism of Auth; empty picks as Options
	// does. ChannelBinding likewise.
	Mechanism      string
	ChannelBinding string

	s        *stream
	tlsCfg   *tls.Config
	header   *xmlstream.Element
	features *xmlstream.Element
	unread   []*xmlstream.Element

	closeOnce sync.Once
	closeErr  error
}

// DialRaw connects to srv over transport t (for DirectTLS, the TLS
// handshake is done) and sends nothing.
func DialRaw(ctx context.Context, srv Server, t Transport) (*Raw, error) {
	cd, err := codecFor(t)
	if err != nil {
		return nil, fmt.Errorf("story: raw dial: %w", err)
	}
	addr, ok := srv.Addr(t)
	if !ok {
		return nil, fmt.Errorf("story: raw dial: the server does not offer transport %s", t)
	}
	cfg := tlsConfigFor(srv, Options{})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	conn, err := cd.dial(ctx, addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("story: raw dial %s %s: %w", t, addr, err)
	}
	return &Raw{s: newStream(cd, conn, true), tlsCfg: cfg}, nil
}

func (r *Raw) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

// Send writes s as it is.
func (r *Raw) Send(s string) error {
	if err := r.s.write([]byte(s), r.timeout()); err != nil {
		return fmt.Errorf("story: raw send: %w", err)
	}
	return nil
}

// SendElement writes el serialized in the jabber:client stream scope, or,
// over a framed transport (WebSocket, BOSH), as a standalone element with
// its namespace (RFC 7395 §3.3.3).
func (r *Raw) SendElement(el *xmlstream.Element) error {
	if err := r.s.writeElement(el, r.timeout()); err != nil {
		return fmt.Errorf("story: raw send: %w", err)
	}
	return nil
}

// Bytes returns every byte read from the connection so far (decrypted,
// once TLS is on), including bytes read ahead of the last event returned.
func (r *Raw) Bytes() []byte { return r.s.recorded() }

// Header is the last stream header the server sent.
// StopRecording stops keeping what is read (Bytes returns nothing more),
// for long-running raw connections such as benchmarks'.
func (r *Raw) StopRecording() { r.s.stopRecording() }

func (r *Raw) Header() *xmlstream.Element { return r.header }

// Features are the last stream features the server sent.
func (r *Raw) Features() *xmlstream.Element { return r.features }

// ConnectionState is the TLS state, if the connection is TLS.
func (r *Raw) ConnectionState() (tls.ConnectionState, bool) {
	if st := r.s.tlsState(); st != nil {
		return *st, true
	}
	return tls.ConnectionState{}, false
}

// ReadEvent returns the next event from the server: a stream header, an
// element, or the stream's close.
func (r *Raw) ReadEvent() (xmlstream.Event, error) {
	if len(r.unread) > 0 {
		el := r.unread[0]
		r.unread = r.unread[1:]
		return xmlstream.Event{Kind: xmlstream.EventElement, Element: el}, nil
	}
	conn := r.s.current()
	if err := conn.SetReadDeadline(time.Now().Add(r.timeout())); err != nil {
		return xmlstream.Event{}, fmt.Errorf("story: raw read: %w", err)
	}
	ev, err := r.s.next()
	if err != nil {
		return ev, fmt.Errorf("story: raw read: %w", err)
	}
	if ev.Kind == xmlstream.EventStreamOpen {
		r.header = ev.Element
	}
	return ev, nil
}

// Next returns the next first-level element, the <stream:error/> element
// included; stream headers are recorded (Header) and skipped. When the
// server closes its stream the error is ErrStreamClosed.
func (r *Raw) Next() (*xmlstream.Element, error) {
	for {
		ev, err := r.ReadEvent()
		if err != nil {
			return nil, err
		}
		switch ev.Kind {
		case xmlstream.EventElement:
			return ev.Element, nil
		case xmlstream.EventStreamClose:
			return nil, ErrStreamClosed
		}
	}
}

// OpenStream sends a stream header addressed to to (none when empty),
// resetting the parser for the server's new stream (RFC 6120 §4.3.3), and
// returns the features the server answers with. When the server answers
// with anything else, a stream error for instance, the element is put back
// for Next and ExpectStreamError, and the error says what it was.
func (r *Raw) OpenStream(to string) (*xmlstream.Element, error) {
	r.s.parser.Reset()
	r.unread = nil
	if err := r.Send(r.s.codec.header(to, "")); err != nil {
		return nil, err
	}
	el, err := r.Next()
	if err != nil {
		return nil, fmt.Errorf("story: raw open stream: %w", err)
	}
	if el.Name != "features" || el.NS != stanza.NSStream {
		r.unread = append(r.unread, el)
		if se, ok := stanza.ParseStreamError(el); ok {
			return nil, fmt.Errorf("story: raw open stream: %w", se)
		}
		return nil, fmt.Errorf("story: raw open stream: expected features, got %s", brief(el))
	}
	r.features = el
	return el, nil
}

// Restart prepares for a new stream from the server without sending a
// header, for a test that has already sent its own (pipelined after
// SASL, for instance): what was read ahead is kept.
func (r *Raw) Restart() {
	r.s.parser.Restart()
}

// StartTLS negotiates TLS (RFC 6120 §5.4) on a TCP stream whose features
// offered it, and does the handshake; open a new stream afterwards.
func (r *Raw) StartTLS() error {
	conn := r.s.current()
	conn.SetDeadline(time.Now().Add(r.timeout()))
	defer conn.SetDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout())
	defer cancel()
	if err := r.s.startTLS(ctx, r.tlsCfg, r.timeout()); err != nil {
		return fmt.Errorf("story: raw: %w", err)
	}
	return nil
}

// Auth authenticates with SASL using the last features (RFC 6120 §6.4)
// and returns the mechanism used; open a new stream afterwards. A SASL
// failure is a *SASLError.
func (r *Raw) Auth(user, password string) (string, error) {
	if r.features == nil {
		return "", errors.New("story: raw auth: no stream features yet (call OpenStream)")
	}
	conn := r.s.current()
	conn.SetDeadline(time.Now().Add(r.timeout()))
	defer conn.SetDeadline(time.Time{})
	mech, err := authenticate(r.s, r.features, saslConfig{
		user: user, pass: password,
		mechanism: r.Mechanism, channelBinding: r.ChannelBinding,
		timeout: r.timeout(),
	})
	if err != nil {
		return mech, fmt.Errorf("story: raw auth: %w", err)
	}
	return mech, nil
}

// Bind binds resource ("" for a server-generated one) and returns the full
// JID (RFC 6120 §7).
func (r *Raw) Bind(resource string) (jid.JID, error) {
	b := xmlstream.NewElement("bind", stanza.NSBind)
	if resource != "" {
		b.AddChild(xmlstream.NewElement("resource", stanza.NSBind).AddText(resource))
	}
	iq := IQSet(nil, b)
	if err := r.SendElement(iq); err != nil {
		return jid.JID{}, err
	}
	for {
		el, err := r.Next()
		if err != nil {
			return jid.JID{}, fmt.Errorf("story: raw bind: %w", err)
		}
		if el.Name != "iq" || el.Attr("id") != iq.Attr("id") {
			continue
		}
		if el.Attr("type") != "result" {
			return jid.JID{}, fmt.Errorf("story: raw bind: %s", brief(el))
		}
		rb := el.Child("bind", stanza.NSBind)
		if rb == nil {
			return jid.JID{}, fmt.Errorf("story: raw bind: %s", brief(el))
		}
		j, err := jid.Parse(strings.TrimSpace(rb.ChildText("jid", stanza.NSBind)))
		if err != nil {
			return jid.JID{}, fmt.Errorf("story: raw bind: %w", err)
		}
		return j, nil
	}
}

// ExpectStreamError checks the end of a stream the server ends with an
// error (RFC 6120 §4.9.1.1): the next element is <stream:error/> with the
// given condition, then the server closes its stream (</stream:stream>),
// and, once this side has closed its own, the connection. The connection
// is closed in any case.
func (r *Raw) ExpectStreamError(condition string) error {
	defer r.Close()
	el, err := r.Next()
	if err != nil {
		return fmt.Errorf("story: raw: expected stream error %s: %w; received:\n%s", condition, err, r.tail())
	}
	se, ok := stanza.ParseStreamError(el)
	if !ok {
		return fmt.Errorf("story: raw: expected stream error %s, got %s", condition, brief(el))
	}
	if string(se.Condition) != condition {
		return fmt.Errorf("story: raw: expected stream error %s, got %s", condition, brief(el))
	}
	ev, err := r.ReadEvent()
	if err != nil {
		return fmt.Errorf("story: raw: after stream error %s the server did not send </stream:stream>: %w", condition, err)
	}
	if ev.Kind != xmlstream.EventStreamClose {
		return fmt.Errorf("story: raw: after stream error %s the server sent %s instead of </stream:stream>", condition, describeEvent(ev))
	}
	r.Send(r.s.codec.footer)
	if _, err := r.ReadEvent(); err == nil || !isClosedConn(err) {
		return fmt.Errorf("story: raw: after stream error %s the server did not close the connection within %s (%v)", condition, r.timeout(), err)
	}
	return nil
}

// ExpectClosed checks that the server closes its stream and then the
// connection, with nothing else before; it closes this side in any case.
func (r *Raw) ExpectClosed() error {
	defer r.Close()
	ev, err := r.ReadEvent()
	if err != nil {
		if isClosedConn(err) {
			return fmt.Errorf("story: raw: the server closed the connection without </stream:stream>")
		}
		return fmt.Errorf("story: raw: expected </stream:stream>: %w", err)
	}
	if ev.Kind != xmlstream.EventStreamClose {
		return fmt.Errorf("story: raw: expected </stream:stream>, got %s", describeEvent(ev))
	}
	r.Send(r.s.codec.footer)
	if _, err := r.ReadEvent(); err == nil || !isClosedConn(err) {
		return fmt.Errorf("story: raw: the server did not close the connection within %s (%v)", r.timeout(), err)
	}
	return nil
}

func describeEvent(ev xmlstream.Event) string {
	switch ev.Kind {
	case xmlstream.EventElement:
		return brief(ev.Element)
	case xmlstream.EventStreamOpen:
		return "a new stream header"
	case xmlstream.EventStreamClose:
		return "</stream:stream>"
	}
	return "nothing"
}

// tail is the end of what was received, for error messages.
func (r *Raw) tail() string {
	b := r.Bytes()
	if len(b) > 2000 {
		return fmt.Sprintf("…(%d bytes before) %s", len(b)-2000, b[len(b)-2000:])
	}
	return string(b)
}

// Close closes the connection (without sending anything). Calling it
// again returns the first result.
func (r *Raw) Close() error {
	r.closeOnce.Do(func() {
		if err := r.s.close(); err != nil && !isClosedConn(err) {
			r.closeErr = fmt.Errorf("story: raw close: %w", err)
		}
	})
	return r.closeErr
}
