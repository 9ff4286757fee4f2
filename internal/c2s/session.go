package c2s

import (
	"context"
	"crypto/rand"
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

// Session is one client session, from the first connection to its end;
// with stream management (XEP-0198) it may outlive its connection and
// continue on a new one. The fields in the first group belong to the
// reader goroutine; the output and stream-management fields are guarded
// by mu; the presence fields are atomics read by the router.
type Session struct {
	srv *Server

	// Reader goroutine state.
	streamID   string
	domain     string
	authedUser string // normalized localpart after SASL success
	authFails  int
	conv       *sasl.Conversation
	bound      bool
	jid        jid.JID // set once before the session is registered
	deadline   time.Time
	handedOver bool // its connection went to a session it resumed

	available atomic.Bool
	priority  atomic.Int32
	presence  atomic.Pointer[xmlstream.Element]
	lastRead  atomic.Int64 // unix nanoseconds
	// writeFailedAt is when a write to the current connection failed
	// (unix nanoseconds; 0: none).
	writeFailedAt atomic.Int64

	mu         sync.Mutex
	tr         transport // the current connection
	drained    *sync.Cond
	out        []byte // queued for the client
	resent     int    // bytes at the head of out that a resumption sent again
	ends       []int  // message ends in out, for framed transports
	spare      []byte
	flushing   bool
	closing    bool // nothing more may be queued
	headerSent bool
	sm         smState
	detached   bool        // waiting for resumption: nothing is written
	resume     *resumption // a new connection taking over
	abandon    transport   // closed once the output is written: a resumption took over
	done       bool        // over for good: no resumption any more

	resumeSignal chan struct{}
	replaced     atomic.Bool // another session bound the same full JID

	leaveOnce  sync.Once
	registered bool // it was in the router when it left (leaveRouter)

	// values is read on every delivery by hooks (CSI, carbons) and set
	// a few times per session: copy on write, so a read takes no lock.
	values atomic.Pointer[map[any]any]
	vmu    sync.Mutex // serializes writers of values
}

var _ module.Session = (*Session)(nil)

func newSession(srv *Server, tr transport) *Session {
	s := &Session{
		srv:          srv,
		tr:           tr,
		streamID:     randomID(),
		resumeSignal: make(chan struct{}, 1),
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
	if m := s.values.Load(); m != nil {
		return (*m)[key]
	}
	return nil
}

// SetValue implements module.Session.
func (s *Session) SetValue(key, value any) {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	var old map[any]any
	if m := s.values.Load(); m != nil {
		old = *m
	}
	m := make(map[any]any, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[key] = value
	s.values.Store(&m)
}

// Deliver implements module.Session: the stanza is serialized into the
// output buffer at once, so the element may be shared with other
// sessions. With stream management it is also kept until the client
// acknowledges it. A session that is ending refuses stanzas: the router
// then delivers them elsewhere (XEP-0198 §5).
func (s *Session) Deliver(el *xmlstream.Element) bool {
	for _, h := range s.srv.hooks.Outgoing.Hooks() {
		if h.Fn(s, el) == module.Stop {
			return true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.done {
		return false
	}
	if s.sm.enabled && stanza.KindOf(el, stanza.NSClient) != stanza.KindOther && !s.smQueueLocked(el) {
		return false // the queue overflowed: the session is closing
	}
	if s.detached {
		return true // kept for the resumption
	}
	s.appendLocked(el)
	if len(s.out)-s.resent > s.srv.cfg.MaxOutboundBytes {
		// The client does not read: give up on it (documented in the
		// README). The stanza is queued: with stream management it is
		// rerouted with the rest when the session ends.
		s.closeLocked(stanza.NewStreamError(stanza.StreamPolicyViolation, "too much data queued for a client that does not read"))
		return true
	}
	s.smRequestLocked(false)
	s.startFlushLocked()
	return true
}

// appendLocked queues one element.
func (s *Session) appendLocked(el *xmlstream.Element) {
	if s.out == nil {
		s.out = getOutBuffer()
	}
	s.out = s.tr.appendElement(s.out, el)
	s.frameLocked()
}

// frameLocked ends a message of a framed transport.
func (s *Session) frameLocked() {
	if s.tr.framed() {
		s.ends = append(s.ends, len(s.out))
	}
}

// outBuffers are output buffers between bursts of writing.
var outBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2<<10); return &b }}

func getOutBuffer() []byte { return (*outBuffers.Get().(*[]byte))[:0] }

// putOutBuffer pools b unless it is of no use or too large to keep.
func putOutBuffer(b []byte) {
	if cap(b) == 0 || cap(b) > 64<<10 {
		return
	}
	outBuffers.Put(&b)
}

// sendElement queues a first-level element that is not a stanza.
func (s *Session) sendElement(el *xmlstream.Element) {
	s.mu.Lock()
	if !s.closing && !s.detached {
		s.appendLocked(el)
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
// or the connection failed.
func (s *Session) flush() {
	for {
		s.mu.Lock()
		if len(s.out) == 0 {
			s.flushing = false
			closing, tr := s.closing, s.tr
			// Idle sessions hold no buffers (an idle session is most
			// sessions): both go back to a pool the busy ones draw from.
			putOutBuffer(s.spare)
			putOutBuffer(s.out)
			s.spare, s.out = nil, nil
			s.drained.Broadcast()
			abandon := s.abandon == tr
			if abandon {
				s.abandon = nil
			}
			s.mu.Unlock()
			if abandon {
				// The old connection of a resumed session got its
				// <conflict/>: the reader, blocked on it, moves on.
				tr.close()
				return
			}
			if closing {
				// The closing tag is out: give the client a moment to
				// close its side (RFC 6120 §4.4), then the reader stops.
				tr.interrupt(time.Now().Add(s.srv.cfg.CloseGrace))
			}
			return
		}
		buf, ends, tr := s.out, s.ends, s.tr
		s.out, s.ends, s.spare, s.resent = s.spare[:0], nil, nil, 0
		timeout := s.srv.cfg.WriteTimeout
		if s.abandon == tr {
			// A goodbye to a connection that may be dead: not for long.
			timeout = min(timeout, time.Second)
		}
		s.mu.Unlock()

		err := tr.write(buf, ends, time.Now().Add(timeout))

		s.mu.Lock()
		s.spare = buf[:0]
		if err != nil {
			// The client is gone or too slow. What was queued is lost
			// unless stream management keeps it. The connection is not
			// closed at once: the reader first takes what the client sent
			// before the failure — its last <a/> (XEP-0198 §4), without
			// which what it handled would be sent or rerouted again —
			// for writeFailedGrace at most, then ends or detaches the
			// session, which closes the connection.
			s.out, s.ends, s.resent = nil, nil, 0
			s.flushing = false
			s.drained.Broadcast()
			if s.tr == tr {
				s.writeFailedAt.CompareAndSwap(0, time.Now().UnixNano())
			}
			abandon := s.abandon == tr
			if abandon {
				s.abandon = nil
			}
			s.mu.Unlock()
			if abandon {
				tr.close()
				return
			}
			tr.interrupt(time.Now().Add(writeFailedGrace))
			return
		}
		s.mu.Unlock()
	}
}

// writeFailedGrace is how long the reader still reads a connection after
// a write to it failed.
const writeFailedGrace = time.Second

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
	if err != nil && err.Condition == stanza.StreamConnectionTimeout && s.sm.resumable && s.bound && !s.detached {
		// The client stopped answering (ping, idle timeout): its
		// connection is probably dead. Keep the session for a resumption
		// (XEP-0198 §5) rather than end it: stop the reader, which detaches.
		s.tr.interrupt(time.Now())
		return
	}
	s.closing = true
	// From now on stanzas for this resource go elsewhere.
	s.leaveRouter()
	if s.detached {
		// No connection to tell: end the wait for a resumption.
		s.signalResume()
		return
	}
	if !s.headerSent {
		// RFC 6120 §4.9.1.2: an error before the header needs one first.
		s.out = s.tr.appendOpen(s.out, s.streamID, s.domain, "")
		s.frameLocked()
		s.headerSent = true
	}
	if err != nil {
		s.appendLocked(err.Element())
	}
	s.out = s.tr.appendClose(s.out)
	s.frameLocked()
	if !s.flushing {
		s.flushing = true
		go s.flush()
	}
}

// errClosed tells the read loop that the session is over.
var errClosed = errors.New("c2s: session closed")

// run is the reader goroutine: it lives as long as the session, across
// the connections it resumes on.
//
// An idle session's reader sits in readLoop, blocked in a read: the
// frames below that read are kept small (the rare work is in functions
// that are not inlined) so that the whole chain fits in 2 KiB and the
// runtime can shrink the goroutine's stack to 4 KiB — the larger part of
// an idle session's memory otherwise (docs/benchmarks.md).
func (s *Session) run(ctx context.Context) {
	defer s.finish(ctx)
	if !s.handshake(ctx) {
		return
	}
	for s.readEnded(ctx, s.readLoop(ctx)) {
	}
}

// handshake runs the transport's handshake (direct TLS) under the
// handshake deadline.
//
//go:noinline
func (s *Session) handshake(ctx context.Context) bool {
	s.deadline = time.Now().Add(s.srv.cfg.HandshakeTimeout)
	if err := s.tr.handshake(ctx, s.deadline); err != nil {
		s.srv.log.Debug("TLS handshake failed", "remote", s.tr.remoteAddr(), "error", err)
		return false
	}
	return true
}

// readEnded decides what follows the end of readLoop with err: reading
// again (true) on a connection that took over, or the session's end.
//
//go:noinline
func (s *Session) readEnded(ctx context.Context, err error) bool {
	if errors.Is(err, errClosed) || s.handedOver {
		return false
	}
	// The connection failed or timed out: another one may have taken
	// over, or may take over (XEP-0198 §5).
	if s.adoptResumption() || s.detach(ctx) {
		for _, h := range s.srv.hooks.SessionResumed.Hooks() {
			h.Fn(ctx, s)
		}
		return true
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	var ne net.Error
	if !closing && s.writeFailedAt.Load() == 0 && errors.As(err, &ne) && ne.Timeout() {
		s.Close(stanza.NewStreamError(stanza.StreamConnectionTimeout, ""))
		s.waitDrained()
		return false
	}
	if !closing && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errWebSocketClosed) {
		s.srv.log.Debug("read failed", "remote", s.tr.remoteAddr(), "error", err)
	}
	return false
}

// readLoop handles events until the session closes (errClosed) or the
// connection fails (its error).
func (s *Session) readLoop(ctx context.Context) error {
	for {
		ev, err := s.tr.next(s.readDeadline())
		if err != nil {
			return s.readFailed(err)
		}
		if err := s.handleEvent(ctx, ev); err != nil {
			return err
		}
	}
}

// readDeadline is when the next read times out.
//
//go:noinline
func (s *Session) readDeadline() time.Time {
	deadline := s.deadline
	if s.bound {
		deadline = time.Time{}
		if t := s.srv.cfg.IdleTimeout; t > 0 {
			deadline = time.Now().Add(t)
		}
	}
	if at := s.writeFailedAt.Load(); at != 0 {
		// Writing failed: read what is left, not more.
		if d := time.Unix(0, at).Add(writeFailedGrace); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	return deadline
}

// readFailed maps a read error: the parser's become stream errors
// (RFC 6120 §4.9.3), the connection's end the loop as they are.
//
//go:noinline
func (s *Session) readFailed(err error) error {
	var perr *xmlstream.Error
	if errors.As(err, &perr) {
		s.Close(stanza.StreamErrorFromParser(perr))
		return errClosed
	}
	return err
}

// handleEvent handles one event of the stream.
//
//go:noinline
func (s *Session) handleEvent(ctx context.Context, ev xmlstream.Event) error {
	s.lastRead.Store(time.Now().UnixNano())
	switch ev.Kind {
	case xmlstream.EventStreamOpen:
		return s.openStream(ev)
	case xmlstream.EventStreamClose:
		s.mu.Lock()
		takenOver := s.resume != nil
		s.mu.Unlock()
		if takenOver {
			// The client answers the <conflict/> that ended this
			// connection: the session goes on on the new one.
			return errTakenOver
		}
		// RFC 6120 §4.4: answer with our closing tag and end.
		s.Close(nil)
		return errClosed
	case xmlstream.EventElement:
		return s.handleElement(ctx, ev.Element)
	}
	return nil
}

// fail closes the stream with an error and stops the reader.
func (s *Session) fail(cond stanza.StreamCondition, text string) error {
	s.Close(stanza.NewStreamError(cond, text))
	return errClosed
}

// finish runs when the session is over: it leaves the router, its
// unacknowledged stanzas are routed elsewhere, the modules are told, and
// the connection is closed once the output is out.
func (s *Session) finish(ctx context.Context) {
	if s.sm.resumable {
		// A late <resume/> gets <failed h='…'/> (XEP-0198 §5). Recorded
		// before the session is done and leaves the resumption table, so
		// that one of the two always answers. (The reader goroutine owns
		// the count and sets resumable.)
		s.srv.ended.add(s.sm.id, s.jid.Bare(), s.sm.in, time.Now())
	}
	s.mu.Lock()
	s.done = true
	if !s.closing {
		// The connection broke (or the reader failed): nothing more can
		// be written.
		s.closing = true
		s.out, s.ends, s.resent = nil, nil, 0
	}
	s.smStopLocked()
	s.leaveRouter()
	queue := s.sm.queue
	s.sm.queue = nil
	if r := s.resume; r != nil {
		// A resumption that came as the session ended (closed while
		// detached): its connection gets no session.
		s.resume = nil
		defer r.tr.close()
	}
	s.mu.Unlock()
	s.srv.forgetResumable(s)
	if s.registered {
		s.reroute(ctx, queue)
		for _, h := range s.srv.hooks.SessionClosed.Hooks() {
			h.Fn(ctx, s)
		}
	}
	s.waitDrained()
	if !s.handedOver {
		s.mu.Lock()
		tr := s.tr
		s.mu.Unlock()
		tr.close()
	}
}

// leaveRouter takes a bound session out of the router, once; called with
// mu held (the lock order is session, then router).
func (s *Session) leaveRouter() {
	s.leaveOnce.Do(func() {
		if s.bound {
			s.registered = s.srv.router.Unregister(s) || s.replaced.Load()
		}
	})
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
	s.out = s.tr.appendOpen(s.out, s.streamID, s.domain, clientFrom)
	s.frameLocked()
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
		if s.tr.canStartTLS() {
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
		if s.srv.cfg.RequireTLS && !s.tr.secure() {
			return f // no way to authenticate safely on this connection
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
		// XEP-0198 §2: stream management, resumption included.
		f.AddChild(xmlstream.NewElement("sm", NSSM))
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
	d, _ := jid.Parse(s.domain)
	return sasl.ConnInfo{TLS: s.tr.tlsState(), Encrypted: s.tr.secure(), Certificate: s.srv.leaf, Domain: d}
}

// handleElement handles a first-level element according to the state of
// the stream.
func (s *Session) handleElement(ctx context.Context, el *xmlstream.Element) error {
	switch el.NS {
	case stanza.NSTLS:
		if el.Name == "starttls" && s.authedUser == "" && s.tr.canStartTLS() {
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
	case NSSM:
		if s.authedUser != "" {
			return s.handleSM(ctx, el)
		}
	}
	if s.authedUser == "" {
		if el.Name == "iq" && el.NS == stanza.NSClient && (s.tr.secure() || !s.srv.cfg.RequireTLS) {
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
	s.mu.Lock()
	if s.closing {
		// Closed meanwhile (shutdown): the error went out in clear.
		s.mu.Unlock()
		return errClosed
	}
	if t, ok := s.tr.(*tcpTransport); ok {
		// A Close from now on closes the connection without writing.
		t.beginTLS()
	}
	s.mu.Unlock()
	if err := s.tr.startTLS(ctx, s.srv.cfg.TLS, s.deadline); err != nil {
		s.srv.log.Debug("STARTTLS handshake failed", "remote", s.tr.remoteAddr(), "error", err)
		s.mu.Lock()
		s.closing = true
		s.out, s.ends, s.resent = nil, nil, 0
		s.mu.Unlock()
		return errClosed
	}
	s.mu.Lock()
	s.headerSent = false
	s.mu.Unlock()
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
	// XEP-0198 §4: every stanza received counts, whatever becomes of it.
	s.sm.in++
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
