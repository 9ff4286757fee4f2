package c2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/sasl"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Session is one client connection, from accept to close. The fields in
// the first group belong to the reader goroutine; the output fields are
// guarded by mu; the presence fields are atomics read by the router.
type Session struct {
	srv       *Server
	conn      net.Conn
	directTLS bool
	parser    *xmlstream.Parser

	// Reader goroutine state.
	streamID    string
	domain      string
	headerSent  bool
	secure      bool
	authedUser  string // normalized localpart after SASL success
	authFails   int
	conv        *sasl.Conversation
	bound       bool
	jid         jid.JID // set once before the session is registered
	deadline    time.Time
	tokens      float64 // rate limiter
	lastRefill  time.Time
	established time.Time

	available atomic.Bool
	priority  atomic.Int32
	presence  atomic.Pointer[xmlstream.Element]
	lastRead  atomic.Int64 // unix nanoseconds

	mu       sync.Mutex
	drained  *sync.Cond // signalled when the flusher stops
	out      []byte
	spare    []byte
	flushing bool
	closing  bool // nothing more may be queued
	closeErr *stanza.StreamError
	values   map[any]any

	replaced atomic.Bool // another session bound the same full JID
}

var _ module.Session = (*Session)(nil)

func newSession(srv *Server, conn net.Conn, directTLS bool) *Session {
	s := &Session{
		srv:       srv,
		conn:      conn,
		directTLS: directTLS,
		parser:    xmlstream.NewParser(xmlstream.ModeStream, srv.cfg.Limits),
		streamID:  randomID(),
	}
	s.drained = sync.NewCond(&s.mu)
	s.lastRead.Store(time.Now().UnixNano())
	return s
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomID() string {
	var b [10]byte
	rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// JID implements module.Session.
func (s *Session) JID() jid.JID { return s.jid }

// StreamID implements module.Session.
func (s *Session) StreamID() string { return s.streamID }

// Available implements module.Session.
func (s *Session) Available() bool { return s.available.Load() }

// Priority implements module.Session.
func (s *Session) Priority() int { return int(s.priority.Load()) }

// Presence implements module.Session.
func (s *Session) Presence() *xmlstream.Element { return s.presence.Load() }

// LastActivity implements module.Session.
func (s *Session) LastActivity() time.Time { return time.Unix(0, s.lastRead.Load()) }

// Value implements module.Session.
func (s *Session) Value(key any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[key]
}

// SetValue implements module.Session.
func (s *Session) SetValue(key, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[any]any{}
	}
	s.values[key] = value
}

// Deliver implements module.Session: the stanza is serialized into the
// output buffer at once, so the element may be shared with other sessions.
func (s *Session) Deliver(el *xmlstream.Element) {
	for _, h := range s.srv.hooks.Outgoing.Hooks() {
		if h.Fn(s, el) == module.Stop {
			return
		}
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.out = el.AppendXML(s.out, xmlstream.StreamScope(stanza.NSClient))
	if len(s.out) > s.srv.cfg.MaxOutboundBytes {
		// The client does not read: give up on it (documented in the README).
		s.closeLocked(stanza.NewStreamError(stanza.StreamPolicyViolation, "too much data queued for a client that does not read"))
		s.mu.Unlock()
		return
	}
	s.startFlushLocked()
	s.mu.Unlock()
}

// send queues raw bytes (stream headers, negotiation elements).
func (s *Session) send(b []byte) {
	s.mu.Lock()
	if !s.closing {
		s.out = append(s.out, b...)
		s.startFlushLocked()
	}
	s.mu.Unlock()
}

// sendElement queues a first-level element.
func (s *Session) sendElement(el *xmlstream.Element) {
	s.mu.Lock()
	if !s.closing {
		s.out = el.AppendXML(s.out, xmlstream.StreamScope(stanza.NSClient))
		s.startFlushLocked()
	}
	s.mu.Unlock()
}

func (s *Session) startFlushLocked() {
	if !s.flushing && len(s.out) > 0 {
		s.flushing = true
		go s.flush()
	}
}

// flush writes the output buffer until it is empty; it runs on its own
// goroutine, started by startFlushLocked, and ends when nothing is left
// (or the connection failed). After a close it closes the write side.
func (s *Session) flush() {
	for {
		s.mu.Lock()
		if len(s.out) == 0 {
			s.flushing = false
			closing := s.closing
			// Idle sessions should not pin large buffers.
			if cap(s.spare) > 8<<10 {
				s.spare = nil
			}
			if cap(s.out) > 8<<10 {
				s.out = nil
			}
			s.drained.Broadcast()
			s.mu.Unlock()
			if closing {
				s.afterClosingFlushed()
			}
			return
		}
		buf := s.out
		s.out, s.spare = s.spare[:0], nil
		s.mu.Unlock()

		s.conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
		_, err := s.conn.Write(buf)

		s.mu.Lock()
		s.spare = buf[:0]
		if err != nil {
			// The client is gone or too slow: drop what is queued; the
			// reader will notice the closed connection and clean up.
			s.closing = true
			s.out = nil
			s.flushing = false
			s.drained.Broadcast()
			s.mu.Unlock()
			s.conn.Close()
			return
		}
		s.mu.Unlock()
	}
}

// afterClosingFlushed runs when the closing tag has been written: give
// the client a moment to close its side, then close the connection.
func (s *Session) afterClosingFlushed() {
	s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.CloseGrace))
}

// waitDrained blocks until everything queued is written.
func (s *Session) waitDrained() {
	s.mu.Lock()
	for s.flushing {
		s.drained.Wait()
	}
	s.mu.Unlock()
}

// Close implements module.Session: it sends the stream error, if any, and
// the closing tag after what is already queued, then closes the
// connection. It may be called from any goroutine, more than once.
func (s *Session) Close(err *stanza.StreamError) {
	s.mu.Lock()
	s.closeLocked(err)
	s.mu.Unlock()
}

func (s *Session) closeLocked(err *stanza.StreamError) {
	if s.closing {
		return
	}
	if !s.headerSent {
		// RFC 6120 §4.9.1.2: an error before the header needs one first.
		s.out = s.appendHeader(s.out, "")
		s.headerSent = true
	}
	if err != nil {
		s.closeErr = err
		s.out = err.Element().AppendXML(s.out, xmlstream.StreamScope(stanza.NSClient))
	}
	s.out = append(s.out, "</stream:stream>"...)
	s.closing = true
	if s.flushing {
		return // the running flusher sees closing when it is done
	}
	s.flushing = true
	go s.flush()
}

// appendHeader appends the response stream header (RFC 6120 §4.7).
func (s *Session) appendHeader(dst []byte, to string) []byte {
	dst = append(dst, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='"...)
	dst = append(dst, s.streamID...)
	if s.domain != "" {
		dst = append(dst, "' from='"...)
		dst = xmlstream.AppendEscapedAttr(dst, s.domain)
	}
	if to != "" {
		dst = append(dst, "' to='"...)
		dst = xmlstream.AppendEscapedAttr(dst, to)
	}
	return append(dst, "' version='1.0' xml:lang='en'>"...)
}

// errClosed tells the read loop that the session is over.
var errClosed = errors.New("c2s: session closed")

// run is the reader goroutine: it lives as long as the connection.
func (s *Session) run(ctx context.Context) {
	defer s.finish(ctx)
	s.deadline = time.Now().Add(s.srv.cfg.HandshakeTimeout)
	if s.directTLS {
		if err := s.handshakeTLS(ctx); err != nil {
			s.srv.log.Debug("direct TLS handshake failed", "remote", s.conn.RemoteAddr().String(), "error", err)
			return
		}
	}
	buf := make([]byte, s.srv.cfg.ReadBufferSize)
	for {
		if s.bound {
			if t := s.srv.cfg.IdleTimeout; t > 0 {
				s.conn.SetReadDeadline(time.Now().Add(t))
			} else {
				s.conn.SetReadDeadline(time.Time{})
			}
		} else {
			s.conn.SetReadDeadline(s.deadline)
		}
		n, err := s.conn.Read(buf)
		if n > 0 {
			s.lastRead.Store(time.Now().UnixNano())
			s.parser.Feed(buf[:n])
			if perr := s.processInput(ctx); perr != nil {
				return
			}
			s.shape(n)
		}
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			var ne net.Error
			if !closing && errors.As(err, &ne) && ne.Timeout() {
				s.Close(stanza.NewStreamError(stanza.StreamConnectionTimeout, ""))
				s.waitDrained()
			}
			if !errors.Is(err, io.EOF) && !closing && !errors.Is(err, net.ErrClosed) {
				s.srv.log.Debug("read failed", "remote", s.conn.RemoteAddr().String(), "error", err)
			}
			return
		}
	}
}

// shape slows the reader down when the client sends faster than allowed.
func (s *Session) shape(n int) {
	rate := float64(s.srv.cfg.RateBytesPerSecond)
	if rate <= 0 {
		return
	}
	burst := rate
	if lim := float64(s.parser.Limits().MaxElementBytes); lim > burst {
		burst = lim
	}
	now := time.Now()
	if s.lastRefill.IsZero() {
		s.tokens = burst
	} else {
		s.tokens = min(burst, s.tokens+now.Sub(s.lastRefill).Seconds()*rate)
	}
	s.lastRefill = now
	s.tokens -= float64(n)
	if s.tokens < 0 {
		// Not reading is the backpressure: TCP makes the client wait.
		time.Sleep(time.Duration(-s.tokens / rate * float64(time.Second)))
	}
}

// processInput handles every event the parser has for the input fed.
func (s *Session) processInput(ctx context.Context) error {
	for {
		ev, err := s.parser.Next()
		if err != nil {
			var perr *xmlstream.Error
			if errors.As(err, &perr) {
				s.Close(stanza.StreamErrorFromParser(perr))
			} else {
				s.Close(stanza.NewStreamError(stanza.StreamInternalServerError, ""))
			}
			return errClosed
		}
		switch ev.Kind {
		case xmlstream.EventNone:
			return nil
		case xmlstream.EventStreamOpen:
			if err := s.openStream(ev); err != nil {
				return err
			}
		case xmlstream.EventStreamClose:
			// RFC 6120 §4.4: answer with our closing tag and end.
			s.Close(nil)
			return errClosed
		case xmlstream.EventElement:
			if err := s.handleElement(ctx, ev.Element); err != nil {
				return err
			}
		}
	}
}

// fail closes the stream with an error and stops the reader.
func (s *Session) fail(cond stanza.StreamCondition, text string) error {
	s.Close(stanza.NewStreamError(cond, text))
	return errClosed
}

// finish runs when the reader stops: the session leaves the router, the
// modules are told, and the connection is closed once the output is out.
func (s *Session) finish(ctx context.Context) {
	if s.bound {
		if s.srv.router.Unregister(s) || s.replaced.Load() {
			for _, h := range s.srv.hooks.SessionClosed.Hooks() {
				h.Fn(ctx, s)
			}
		}
	}
	s.mu.Lock()
	if !s.closing {
		// The connection broke (or the reader failed): nothing more can
		// be written.
		s.closing = true
		s.out = nil
	}
	s.mu.Unlock()
	s.waitDrained()
	s.conn.Close()
}

func (s *Session) handshakeTLS(ctx context.Context) error {
	tc := tls.Server(s.conn, s.srv.cfg.TLS)
	s.conn.SetDeadline(s.deadline)
	hctx, cancel := context.WithDeadline(ctx, s.deadline)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return err
	}
	s.conn.SetDeadline(time.Time{})
	s.conn = tc
	s.secure = true
	return nil
}

func (s *Session) tlsState() *tls.ConnectionState {
	if tc, ok := s.conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}

// openStream validates a stream header and answers with ours and the
// stream features (RFC 6120 §4.7, §4.3.2).
func (s *Session) openStream(ev xmlstream.Event) error {
	h := ev.Element
	contentNS := ""
	for _, d := range ev.Decls {
		if d.Name == "" {
			contentNS = d.Value
		}
	}
	to := h.Attr("to")
	if s.domain == "" && s.srv.router.IsLocal(to) {
		s.domain = to
	}
	var clientFrom string
	if f := h.Attr("from"); f != "" {
		if j, err := jid.Parse(f); err == nil {
			clientFrom = j.String()
		}
	}
	s.mu.Lock()
	s.out = s.appendHeader(s.out, clientFrom)
	s.headerSent = true
	s.mu.Unlock()
	switch {
	case contentNS != stanza.NSClient:
		// RFC 6120 §4.9.3.10.
		return s.fail(stanza.StreamInvalidNamespace, "the content namespace must be jabber:client")
	case to == "" || !s.srv.router.IsLocal(to) || to != s.domain:
		return s.fail(stanza.StreamHostUnknown, "")
	case !supportedVersion(h.Attr("version")):
		// RFC 6120 §4.7.5: no version means 0.9, which we do not speak.
		return s.fail(stanza.StreamUnsupportedVersion, "XMPP 1.0 is required")
	}
	s.sendElement(s.features())
	return nil
}

func supportedVersion(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	mj, err1 := strconv.Atoi(major)
	_, err2 := strconv.Atoi(minor)
	return err1 == nil && err2 == nil && mj == 1
}

// features lists what the client may negotiate next (RFC 6120 §4.3.2).
func (s *Session) features() *xmlstream.Element {
	f := xmlstream.NewElement("features", stanza.NSStream)
	switch {
	case s.authedUser == "":
		if !s.secure && s.srv.cfg.TLS != nil {
			st := xmlstream.NewElement("starttls", stanza.NSTLS)
			if s.srv.cfg.RequireTLS {
				st.AddChild(xmlstream.NewElement("required", stanza.NSTLS))
			}
			f.AddChild(st)
			if s.srv.cfg.RequireTLS {
				// RFC 6120 §5.3.1: only STARTTLS until TLS is in place.
				return f
			}
		}
		ci := s.connInfo()
		auth := s.srv.sasl[s.domain]
		mechs := xmlstream.NewElement("mechanisms", stanza.NSSASL)
		for _, m := range auth.Mechanisms(ci) {
			mechs.AddChild(xmlstream.NewElement("mechanism", stanza.NSSASL).AddText(m))
		}
		f.AddChild(mechs)
		for _, h := range s.srv.hooks.PreAuthFeatures.Hooks() {
			if el := h.Fn(); el != nil {
				f.AddChild(el)
			}
		}
		if types := auth.ChannelBindingTypes(ci); len(types) > 0 {
			// XEP-0440: which channel bindings the -PLUS mechanisms offer.
			cb := xmlstream.NewElement("sasl-channel-binding", nsSASLCB)
			for _, t := range types {
				cb.AddChild(xmlstream.NewElement("channel-binding", nsSASLCB).SetAttr("type", t))
			}
			f.AddChild(cb)
		}
	case !s.bound:
		f.AddChild(xmlstream.NewElement("bind", stanza.NSBind))
		// RFC 6121 Appendix E: session establishment is a no-op we still
		// advertise for old clients, marked optional.
		f.AddChild(xmlstream.NewElement("session", stanza.NSSession).AddChild(xmlstream.NewElement("optional", stanza.NSSession)))
		for _, h := range s.srv.hooks.StreamFeatures.Hooks() {
			if el := h.Fn(); el != nil {
				f.AddChild(el)
			}
		}
	}
	return f
}

const nsSASLCB = "urn:xmpp:sasl-cb:0"

func (s *Session) connInfo() sasl.ConnInfo {
	return sasl.ConnInfo{TLS: s.tlsState(), Certificate: s.srv.leaf, Domain: jid.MustParse(s.domain)}
}

// handleElement handles a first-level element according to the state of
// the stream.
func (s *Session) handleElement(ctx context.Context, el *xmlstream.Element) error {
	switch el.NS {
	case stanza.NSTLS:
		if el.Name == "starttls" && !s.secure && s.authedUser == "" && s.srv.cfg.TLS != nil {
			return s.startTLS(ctx)
		}
		// RFC 6120 §5.4.2.2: STARTTLS is not possible now; <failure/>
		// and the stream is closed.
		s.sendElement(xmlstream.NewElement("failure", stanza.NSTLS))
		s.Close(nil)
		return errClosed
	case stanza.NSSASL:
		if s.authedUser != "" {
			return s.fail(stanza.StreamUnsupportedStanzaType, "already authenticated")
		}
		return s.handleSASL(ctx, el)
	}
	if s.authedUser == "" {
		if el.Name == "iq" && el.NS == stanza.NSClient && (s.secure || !s.srv.cfg.RequireTLS) {
			if handled, err := s.handlePreAuthIQ(ctx, el); handled {
				return err
			}
		}
		// RFC 6120 §4.9.3.12: nothing is processed before authentication.
		return s.fail(stanza.StreamNotAuthorized, "")
	}
	if !s.bound {
		if el.Name == "iq" && el.NS == stanza.NSClient {
			return s.handleBindPhaseIQ(ctx, el)
		}
		return s.fail(stanza.StreamNotAuthorized, "bind a resource first")
	}
	return s.handleStanza(ctx, el)
}

// startTLS upgrades the connection (RFC 6120 §5.4.3).
func (s *Session) startTLS(ctx context.Context) error {
	s.sendElement(xmlstream.NewElement("proceed", stanza.NSTLS))
	s.waitDrained()
	if err := s.handshakeTLS(ctx); err != nil {
		s.srv.log.Debug("STARTTLS handshake failed", "remote", s.conn.RemoteAddr().String(), "error", err)
		s.mu.Lock()
		s.closing = true
		s.out = nil
		s.mu.Unlock()
		return errClosed
	}
	// RFC 6120 §5.4.3.3: a new stream, and nothing sent in clear before
	// the handshake counts.
	s.parser.Reset()
	s.headerSent = false
	s.streamID = randomID()
	return nil
}

// handleStanza handles a stanza from a bound client.
func (s *Session) handleStanza(ctx context.Context, el *xmlstream.Element) error {
	kind := stanza.KindOf(el, stanza.NSClient)
	if kind == stanza.KindOther {
		if h := s.srv.hooks.NonzaHandler(el.Name, el.NS); h != nil {
			h(ctx, s, el)
			return nil
		}
		// RFC 6120 §4.9.3.24.
		return s.fail(stanza.StreamUnsupportedStanzaType, "")
	}
	// RFC 6120 §8.1.2.1: the server stamps the full JID as 'from',
	// whatever the client said.
	el.SetAttr("from", s.jid.String())
	st, serr := stanza.Parse(el, stanza.NSClient)
	st.From = s.jid
	if serr != nil {
		if !st.IsError() {
			reply := stanza.ErrorReply(el, serr)
			reply.RemoveAttr("from")
			reply.SetAttr("to", s.jid.String())
			s.Deliver(reply)
		}
		return nil
	}
	initial := false
	if kind == stanza.KindPresence && st.To.IsZero() {
		wasAvailable := s.available.Load()
		if err := s.trackPresence(&st); err != nil {
			s.Deliver(stanza.ErrorReply(el, err))
			return nil
		}
		initial = !wasAvailable && s.available.Load()
	}
	s.srv.router.FromClient(ctx, s, &st)
	if initial {
		// An entity is subscribed to its own presence (RFC 6121 §4.2.2):
		// the new resource learns about the others.
		for _, o := range s.srv.router.Sessions(s.jid.Bare()) {
			if p := o.Presence(); o != module.Session(s) && p != nil {
				s.Deliver(p)
			}
		}
		for _, h := range s.srv.hooks.InitialPresence.Hooks() {
			h.Fn(ctx, s)
		}
	}
	return nil
}

// trackPresence records the availability and priority a client
// broadcasts (RFC 6121 §4.2, §4.7.2.3): the router needs them for
// messages to the bare JID.
func (s *Session) trackPresence(st *stanza.Stanza) *stanza.Error {
	switch st.Type {
	case stanza.PresenceAvailable:
		prio := 0
		if p := st.El.Child("priority", stanza.NSClient); p != nil {
			v, err := strconv.Atoi(strings.TrimSpace(p.Text()))
			if err != nil || v < -128 || v > 127 {
				return stanza.NewError(stanza.BadRequest, "priority must be an integer from -128 to 127")
			}
			prio = v
		}
		s.priority.Store(int32(prio))
		s.presence.Store(st.El)
		s.available.Store(true)
	case stanza.PresenceUnavailable:
		s.available.Store(false)
		s.presence.Store(nil)
	}
	return nil
}
