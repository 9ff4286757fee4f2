package c2s

import (
	"context"
	"strconv"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Stream management (XEP-0198): counting, acknowledgements, the queue of
// stanzas the client has not acknowledged, and resumption on a new
// connection. A session whose connection breaks with resumption enabled
// stays registered and keeps queueing what is routed to it; its reader
// goroutine waits for a new connection to take over (detach) or for the
// resumption timeout, after which the unacknowledged stanzas are routed
// as if the resource had gone (rerouteUnacked).

// NSSM is the namespace of XEP-0198 version 3.
const NSSM = "urn:xmpp:sm:3"

// smState is the stream management state of a session. in belongs to the
// reader goroutine; the rest is guarded by Session.mu.
type smState struct {
	enabled   bool
	resumable bool
	id        string        // resumption id (previd)
	timeout   time.Duration // resumption timeout granted
	in        uint32        // stanzas received from the client (XEP-0198 §4 'h')
	out       uint32        // stanzas sent to the client
	acked     uint32        // last 'h' the client reported
	queue     []unacked     // stanzas acked+1 … out
	requested uint32        // out at the last <r/> sent
	timer     *time.Timer   // asks for an ack when stanzas wait too long
}

type unacked struct {
	el *xmlstream.Element
	at time.Time // when it was routed to the session, for <delay/>
}

type resumption struct {
	tr       transport
	h        uint32
	streamID string
}

// handleSM handles the XEP-0198 elements of an authenticated stream.
func (s *Session) handleSM(ctx context.Context, el *xmlstream.Element) error {
	switch el.Name {
	case "enable":
		return s.smEnable(el)
	case "resume":
		return s.smResume(ctx, el)
	case "r":
		if !s.sm.enabled {
			return s.fail(stanza.StreamUnsupportedStanzaType, "stream management is not enabled")
		}
		s.beforeAck(ctx)
		s.sendElement(xmlstream.NewElement("a", NSSM).SetAttr("h", strconv.FormatUint(uint64(s.sm.in), 10)))
		return nil
	case "a":
		if !s.sm.enabled {
			return s.fail(stanza.StreamUnsupportedStanzaType, "stream management is not enabled")
		}
		h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
		if err != nil {
			return s.fail(stanza.StreamBadFormat, "invalid 'h'")
		}
		s.mu.Lock()
		ok := s.smAckLocked(uint32(h))
		s.mu.Unlock()
		if !ok {
			return s.handledTooHigh(uint32(h))
		}
		return nil
	}
	return s.fail(stanza.StreamUnsupportedStanzaType, "")
}

// beforeAck runs the BeforeAck hooks: what the client sent is durable
// before the server says it has it.
func (s *Session) beforeAck(ctx context.Context) {
	for _, h := range s.srv.hooks.BeforeAck.Hooks() {
		h.Fn(ctx, s)
	}
}

// smFailed answers <enable/> or <resume/> with <failed/> (XEP-0198 §6).
func (s *Session) smFailed(cond stanza.Condition, h string) {
	f := xmlstream.NewElement("failed", NSSM).AddChild(xmlstream.NewElement(string(cond), stanza.NSStanzaErrors))
	if h != "" {
		f.SetAttr("h", h)
	}
	s.sendElement(f)
}

// smEnable turns stream management on (XEP-0198 §3), with resumption
// when asked.
func (s *Session) smEnable(el *xmlstream.Element) error {
	if !s.bound {
		s.smFailed(stanza.UnexpectedRequest, "")
		return nil
	}
	if s.sm.enabled {
		// §3: a second attempt ends the stream.
		s.smFailed(stanza.UnexpectedRequest, "")
		return s.fail(stanza.StreamPolicyViolation, "stream management enabled twice")
	}
	enabled := xmlstream.NewElement("enabled", NSSM)
	s.mu.Lock()
	s.sm.enabled = true
	if r := el.Attr("resume"); r == "true" || r == "1" {
		s.sm.resumable = true
		s.sm.id = randomID() + randomID()
		s.sm.timeout = s.srv.cfg.SM.ResumeTimeout
		// §5: the client's preferred maximum, within our limit.
		if m, err := strconv.ParseUint(el.Attr("max"), 10, 32); err == nil && m > 0 {
			s.sm.timeout = min(time.Duration(m)*time.Second, s.srv.cfg.SM.MaxResumeTimeout)
		}
		enabled.SetAttr("id", s.sm.id).SetAttr("resume", "true").
			SetAttr("max", strconv.Itoa(int(s.sm.timeout/time.Second)))
	}
	s.mu.Unlock()
	if s.sm.resumable {
		s.srv.mu.Lock()
		s.srv.resumable[s.sm.id] = s
		s.srv.mu.Unlock()
	}
	s.sendElement(enabled)
	return nil
}

// smQueueLocked counts a stanza sent and keeps it until acknowledged. It
// reports false when the queue overflowed and the session was closed (the
// stanza is not queued).
func (s *Session) smQueueLocked(el *xmlstream.Element) bool {
	if len(s.sm.queue) >= s.srv.cfg.SM.MaxUnacked {
		s.closeLocked(stanza.NewStreamError(stanza.StreamResourceConstraint, "too many unacknowledged stanzas"))
		return false
	}
	s.sm.out++
	s.sm.queue = append(s.sm.queue, unacked{el: el, at: time.Now()})
	if len(s.sm.queue) == 1 && s.sm.timer == nil {
		s.sm.timer = time.AfterFunc(s.srv.cfg.SM.AckInterval, s.smTimer)
	}
	return true
}

// smRequestLocked asks for an acknowledgement (<r/>) when enough stanzas
// went out since the last request, or, with force, when any wait.
func (s *Session) smRequestLocked(force bool) {
	if !s.sm.enabled || s.detached || s.closing {
		return
	}
	pending := s.sm.out - s.sm.requested
	if pending == 0 || !force && pending < uint32(s.srv.cfg.SM.AckEvery) {
		return
	}
	s.sm.requested = s.sm.out
	s.appendLocked(xmlstream.NewElement("r", NSSM))
	s.startFlushLocked()
}

// smTimer runs AckInterval after stanzas started waiting.
func (s *Session) smTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sm.timer = nil
	if len(s.sm.queue) == 0 || s.done {
		return
	}
	s.smRequestLocked(true)
	s.sm.timer = time.AfterFunc(s.srv.cfg.SM.AckInterval, s.smTimer)
}

func (s *Session) smStopLocked() {
	if s.sm.timer != nil {
		s.sm.timer.Stop()
		s.sm.timer = nil
	}
}

// smAckLocked processes an 'h' from the client; it reports false when h
// acknowledges more than was sent (XEP-0198 §6 handled-count-too-high).
// The counters wrap at 2^32 (§4).
func (s *Session) smAckLocked(h uint32) bool {
	n := h - s.sm.acked
	if n > uint32(len(s.sm.queue)) {
		return false
	}
	clear(s.sm.queue[:n])
	s.sm.queue = s.sm.queue[n:]
	if len(s.sm.queue) == 0 {
		s.sm.queue = nil
	}
	s.sm.acked = h
	return true
}

func (s *Session) handledTooHigh(h uint32) error {
	s.mu.Lock()
	sent := s.sm.out
	s.mu.Unlock()
	e := stanza.NewStreamError(stanza.StreamUndefinedCondition,
		"you acknowledged "+strconv.FormatUint(uint64(h), 10)+" stanzas, but only "+strconv.FormatUint(uint64(sent), 10)+" were sent")
	e.App = xmlstream.NewElement("handled-count-too-high", NSSM).
		SetAttr("h", strconv.FormatUint(uint64(h), 10)).SetAttr("send-count", strconv.FormatUint(uint64(sent), 10))
	s.Close(e)
	return errClosed
}

// smResume hands this connection to the session it resumes (XEP-0198 §5);
// on success this session ends without touching the connection.
func (s *Session) smResume(ctx context.Context, el *xmlstream.Element) error {
	if s.bound {
		s.smFailed(stanza.UnexpectedRequest, "")
		return nil
	}
	h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
	if err != nil {
		return s.fail(stanza.StreamBadFormat, "invalid 'h'")
	}
	user, _ := jid.New(s.authedUser, s.domain, "")
	old := s.srv.lookupResumable(el.Attr("previd"))
	if old == nil || old.jid.Bare() != user {
		// §5: unknown or expired; the client may bind a new resource.
		s.smFailed(stanza.ItemNotFound, "")
		return nil
	}
	// <resumed h=…/> acknowledges what the old connection carried.
	s.beforeAck(ctx)
	// Whatever this stream still has to write goes out first.
	s.waitDrained()
	s.mu.Lock()
	s.closing = true // nothing more is written by this session
	s.mu.Unlock()
	if !old.resumeWith(s.tr, uint32(h), s.streamID) {
		s.mu.Lock()
		s.closing = false
		s.mu.Unlock()
		s.smFailed(stanza.ItemNotFound, "")
		return nil
	}
	s.handedOver = true
	return errClosed
}

// resumeWith gives the session a new connection; it reports false if the
// session is over. If the session's old connection still looks alive it
// is closed: the client knows better (XEP-0198 §5).
func (s *Session) resumeWith(tr transport, h uint32, streamID string) bool {
	s.mu.Lock()
	if s.done || s.closing || !s.sm.resumable {
		s.mu.Unlock()
		return false
	}
	if prev := s.resume; prev != nil {
		prev.tr.close() // a resumption in flight loses to the newer one
	}
	s.resume = &resumption{tr: tr, h: h, streamID: streamID}
	old, detached := s.tr, s.detached
	s.mu.Unlock()
	if !detached {
		old.close()
	}
	s.signalResume()
	return true
}

func (s *Session) signalResume() {
	select {
	case s.resumeSignal <- struct{}{}:
	default:
	}
}

// detach keeps a resumable session waiting for a new connection; it
// reports whether one took over.
func (s *Session) detach(ctx context.Context) bool {
	s.mu.Lock()
	if !s.sm.resumable || !s.bound || s.closing || s.done {
		s.mu.Unlock()
		return false
	}
	s.detached = true
	s.out, s.ends = nil, nil
	tr, timeout := s.tr, s.sm.timeout
	s.smStopLocked()
	s.mu.Unlock()
	tr.close()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-s.resumeSignal:
		case <-timer.C:
			return s.giveUpResumption(true)
		case <-ctx.Done():
			return s.giveUpResumption(false)
		}
		s.mu.Lock()
		closing, pending := s.closing, s.resume != nil
		s.mu.Unlock()
		if closing {
			return false
		}
		if pending && s.adoptResumption() {
			return true
		}
	}
}

// giveUpResumption ends the wait for a resumption (timeout, shutdown):
// from now on resumeWith refuses, so that a resumption arriving at that
// moment is answered with <failed/> rather than handed to a session that
// no longer reads (its connection was left unanswered). With adopt, one
// that arrived just before is still adopted; it reports whether one was.
func (s *Session) giveUpResumption(adopt bool) bool {
	s.mu.Lock()
	pending := adopt && s.resume != nil
	if !pending {
		s.done = true // finish closes a resumption that came too late
	}
	s.mu.Unlock()
	return pending && s.adoptResumption()
}

// adoptResumption switches to the connection a resumption brought, if
// any: the client's 'h' acknowledges what it got, <resumed/> tells it
// ours, and the stanzas it did not get are sent again (XEP-0198 §5).
func (s *Session) adoptResumption() bool {
	s.mu.Lock()
	if s.resume == nil {
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	s.waitDrained() // no write to the old connection in flight
	s.mu.Lock()
	r := s.resume
	s.resume = nil
	old := s.tr
	s.tr = r.tr
	s.detached = false
	s.out, s.ends = nil, nil
	s.headerSent = true
	s.streamID = r.streamID
	ok := s.smAckLocked(r.h)
	if ok {
		s.appendLocked(xmlstream.NewElement("resumed", NSSM).SetAttr("previd", s.sm.id).
			SetAttr("h", strconv.FormatUint(uint64(s.sm.in), 10)))
		for _, q := range s.sm.queue {
			s.appendLocked(q.el)
		}
		s.sm.requested = s.sm.acked
		s.smRequestLocked(true)
		if len(s.sm.queue) > 0 && s.sm.timer == nil {
			s.sm.timer = time.AfterFunc(s.srv.cfg.SM.AckInterval, s.smTimer)
		}
		s.startFlushLocked()
	}
	s.mu.Unlock()
	old.close()
	s.lastRead.Store(time.Now().UnixNano())
	if !ok {
		s.handledTooHigh(r.h)
		return false
	}
	return true
}

// reroute treats stanzas the client never acknowledged as if sent to a
// resource that went away (XEP-0198 §5): messages go to the account's bare
// JID — another resource or offline storage — with a <delay/> of when they
// first came (XEP-0203); IQ requests get an error; presence and errors are
// dropped. The session has left the router, so nothing comes back to it.
func (s *Session) reroute(ctx context.Context, queue []unacked) {
	bare := s.jid.Bare()
	for _, q := range queue {
		st, err := stanza.Parse(q.el, stanza.NSClient)
		if err != nil || st.IsError() {
			continue
		}
		switch st.Kind {
		case stanza.KindMessage:
			if st.Type == stanza.MessageGroupchat || st.Type == stanza.MessageHeadline {
				continue
			}
			m := q.el.ShallowCopy()
			m.SetAttr("to", bare.String())
			if m.Child("delay", stanza.NSDelay) == nil {
				m.AddChild(xmlstream.NewElement("delay", stanza.NSDelay).SetAttr("from", s.domain).
					SetAttr("stamp", q.at.UTC().Format("2006-01-02T15:04:05.000Z")))
			}
			st.El, st.To = m, bare
			s.srv.router.Route(ctx, &st)
		case stanza.KindIQ:
			if st.Type == stanza.IQGet || st.Type == stanza.IQSet {
				// The request was addressed to this resource, which is gone.
				st.To = s.jid
				s.srv.router.Bounce(ctx, &st, stanza.NewError(stanza.RecipientUnavailable, ""))
			}
		}
	}
}

// lookupResumable finds a session by its stream management id.
func (s *Server) lookupResumable(id string) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumable[id]
}

// forgetResumable removes a session that ended from the resumption table.
func (s *Server) forgetResumable(sess *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.sm.id != "" && s.resumable[sess.sm.id] == sess {
		delete(s.resumable, sess.sm.id)
	}
}
