package c2s

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
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
	durable   uint32        // 'in' when the BeforeAck hooks last ran: up to it all is stored
	out       uint32        // stanzas sent to the client
	acked     uint32        // last 'h' the client reported
	queue     []unacked     // stanzas acked+1 … out
	requested uint32        // out at the last <r/> sent
	timer     *time.Timer   // asks for an ack when stanzas wait too long; made once, re-armed
	armed     bool          // timer is set to fire
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
// before the server says it has it. Nothing new since the last run,
// nothing to wait for (a client asking <r/> twice waits on no writer).
func (s *Session) beforeAck(ctx context.Context) {
	if s.sm.in == s.sm.durable && s.sm.enabled {
		return
	}
	for _, h := range s.srv.hooks.BeforeAck.Hooks() {
		h.Fn(ctx, s)
	}
	s.sm.durable = s.sm.in
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
	resume := el.Attr("resume") == "true" || el.Attr("resume") == "1"
	var id string
	if resume {
		id = randomID() + randomID()
		s.srv.mu.Lock()
		s.srv.resumable[id] = s
		s.srv.mu.Unlock()
	}
	s.mu.Lock()
	s.sm.enabled = true
	// §4: both counters start at zero (CounterStart is for tests of the
	// wrap-around at 2^32).
	start := s.srv.cfg.SM.CounterStart
	s.sm.in, s.sm.out, s.sm.acked, s.sm.requested = start, start, start, start
	if resume {
		s.sm.resumable = true
		s.sm.id = id
		s.sm.timeout = s.srv.cfg.SM.ResumeTimeout
		// §5: the client's preferred maximum, within our limit.
		if m, err := strconv.ParseUint(el.Attr("max"), 10, 32); err == nil && m > 0 {
			s.sm.timeout = min(time.Duration(m)*time.Second, s.srv.cfg.SM.MaxResumeTimeout)
		}
		enabled.SetAttr("id", s.sm.id).SetAttr("resume", "true").
			SetAttr("max", strconv.FormatInt(maxSeconds(s.sm.timeout), 10))
	}
	// <enabled/> is queued under the same lock as the counting starts:
	// the first stanza counted comes after it (§4: the count starts
	// "after sending <enabled/>"), not before it, whatever is routed to
	// the session meanwhile.
	if !s.closing && !s.detached {
		s.appendLocked(enabled)
		s.startFlushLocked()
	}
	s.mu.Unlock()
	return nil
}

// maxSeconds is a resumption timeout as the 'max' of <enabled/> (§3),
// in whole seconds, rounded up: a timeout under a second (in tests) is
// advertised as 1, not as 0, which would read as "no resumption".
func maxSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
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
	if len(s.sm.queue) == 1 {
		s.smArmLocked()
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
	s.sm.armed = false
	if len(s.sm.queue) == 0 || s.done {
		return
	}
	s.smRequestLocked(true)
	s.smArmLocked()
}

// smArmLocked starts the ack interval unless it runs already. The timer
// is made once per session and reset afterwards: a busy session empties
// and refills its queue all the time.
func (s *Session) smArmLocked() {
	switch {
	case s.sm.armed:
	case s.sm.timer == nil:
		s.sm.timer = time.AfterFunc(s.srv.cfg.SM.AckInterval, s.smTimer)
		s.sm.armed = true
	default:
		s.sm.timer.Reset(s.srv.cfg.SM.AckInterval)
		s.sm.armed = true
	}
}

func (s *Session) smStopLocked() {
	if s.sm.armed {
		s.sm.timer.Stop()
		s.sm.armed = false
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
		// Nothing waits: the next stanza queued starts the interval
		// afresh (AckInterval is how long a stanza may wait).
		s.smStopLocked()
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
	previd := el.Attr("previd")
	old := s.srv.lookupResumable(previd)
	if old == nil || old.jid.Bare() != user {
		// §5: unknown or expired; the client may bind a new resource.
		s.smResumeFailed(previd, user)
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
		s.smResumeFailed(previd, user)
		return nil
	}
	s.handedOver = true
	return errClosed
}

// smResumeFailed answers a <resume/> for a session that is gone with
// <failed><item-not-found/></failed>; when the session ended recently (its
// resumption timed out, or it was replaced or closed) the 'h' it had
// reached tells the client which of its stanzas the server handled (§5).
// A session of another account is reported as unknown.
func (s *Session) smResumeFailed(previd string, user jid.JID) {
	h := ""
	if n, ok := s.srv.ended.lookup(previd, user, time.Now()); ok {
		h = strconv.FormatUint(uint64(n), 10)
	}
	s.smFailed(stanza.ItemNotFound, h)
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
	closeNow := false
	if !detached {
		// §5: the old stream, still open as far as we know, gets a
		// <conflict/> stream error and is closed. Nothing more is written
		// to it (detached: stanzas wait for the new connection). The
		// connection may be dead with a full buffer: it is closed after
		// abandonGrace in any case.
		s.detached = true
		if !s.headerSent {
			closeNow = true
		} else {
			s.appendLocked(stanza.NewStreamError(stanza.StreamConflict, "the session was resumed on another connection").Element())
			s.out = s.tr.appendClose(s.out)
			s.frameLocked()
			s.abandon = old
			s.startFlushLocked()
			time.AfterFunc(abandonGrace, func() {
				s.mu.Lock()
				stuck := s.abandon == old
				s.mu.Unlock()
				if stuck {
					old.close() // dead, with a full buffer: enough
				}
			})
		}
	}
	s.mu.Unlock()
	if closeNow {
		old.close()
	}
	s.signalResume()
	return true
}

// abandonGrace bounds the goodbye to the old connection of a session
// resumed elsewhere.
const abandonGrace = time.Second

// errTakenOver ends the reading of a connection a resumption took over.
var errTakenOver = errors.New("c2s: a resumption took over the connection")

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
	s.out, s.ends, s.resent = nil, nil, 0
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
	s.abandon = nil
	s.writeFailedAt.Store(0)
	s.detached = false
	s.out, s.ends, s.resent = nil, nil, 0
	s.headerSent = true
	s.streamID = r.streamID
	ok := s.smAckLocked(r.h)
	if ok {
		s.retransmitLocked()
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

// retransmitLocked queues <resumed/> and the stanzas the client did not
// acknowledge (§5), then asks for an ack. They do not count against
// MaxOutboundBytes (resent): a long absence in a busy account queues
// more than the limit, and the next stanza must not end the session
// before the flusher has even taken them.
func (s *Session) retransmitLocked() {
	s.appendLocked(xmlstream.NewElement("resumed", NSSM).SetAttr("previd", s.sm.id).
		SetAttr("h", strconv.FormatUint(uint64(s.sm.in), 10)))
	for _, q := range s.sm.queue {
		s.appendLocked(q.el)
	}
	s.resent = len(s.out)
	s.sm.requested = s.sm.acked
	s.smRequestLocked(true)
	if len(s.sm.queue) > 0 {
		s.smArmLocked()
	}
}

// reroute treats stanzas the client never acknowledged as if sent to a
// resource that went away (XEP-0198 §4: "in the same way that it would
// treat a stanza sent to an unavailable resource"), following RFC 6121
// §8.5.3.2 (full JID, no matching resource):
//
//   - chat and normal messages go to the account's bare JID — another
//     resource or offline storage — with a <delay/> of when they first
//     came (XEP-0198 §4, XEP-0203), unless they carry one already (from
//     offline storage, say): rerouted, never dropped. The context says
//     so (module.WithRerouted): offline storage stamps them with that
//     time too, and the archive, which has them, does not store them
//     again;
//   - groupchat messages are bounced to the sender with
//     <service-unavailable/> (§8.5.3.2.1, option b): another resource is
//     not an occupant of the room, and a room takes the error as the sign
//     of a gone occupant (XEP-0045 §18.1);
//   - headline messages are silently ignored (§8.5.3.2.1, option a):
//     notifications that are stale once missed, which no server stores
//     (XEP-0160 §3) and nobody answers;
//   - messages from the account's own bare JID are copies the server
//     made for this resource — carbons (XEP-0280 §7, §8: the original went
//     to, or came from, another resource, which has it) and answers to
//     this session's queries (archive results, XEP-0313): rerouting them
//     would give the other resources a second copy, and offline storage a
//     copy of what is already delivered or archived, so they are dropped;
//   - IQ requests are answered with <service-unavailable/> (§8.5.3.2.3):
//     the resource they were addressed to is gone;
//   - presence and errors are dropped (§8.5.3.2.2; errors are never
//     answered).
//
// The session has left the router, so nothing comes back to it.
func (s *Session) reroute(ctx context.Context, queue []unacked) {
	bare := s.jid.Bare()
	for _, q := range queue {
		st, err := stanza.Parse(q.el, stanza.NSClient)
		if err != nil || st.IsError() {
			continue
		}
		switch st.Kind {
		case stanza.KindMessage:
			if st.Type == stanza.MessageGroupchat && st.From != bare {
				st.To = s.jid
				s.srv.router.Bounce(ctx, &st, stanza.NewError(stanza.ServiceUnavailable, ""))
				continue
			}
			module.RerouteParsed(ctx, s.srv.router.Route, bare, s.domain, st, q.at)
		case stanza.KindIQ:
			if st.Type == stanza.IQGet || st.Type == stanza.IQSet {
				// The request was addressed to this resource, which is
				// gone (RFC 6121 §8.5.3.2.3).
				st.To = s.jid
				s.srv.router.Bounce(ctx, &st, stanza.NewError(stanza.ServiceUnavailable, ""))
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

// endedSessions remembers, for a bounded time and number, the inbound
// count ('h') of resumable sessions that ended, by resumption id: a client
// trying to resume one learns in <failed h='…'/> which of its stanzas the
// server handled (XEP-0198 §5, "the server has to store the SM-ID/sequence
// number tuple past the time out of the actual session"). Entries expire
// in the order they were added (one TTL for all), so the oldest go first,
// by age or when the table is full.
type endedSessions struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	byID  map[string]endedSession
	order []endedKey // oldest first
}

type endedSession struct {
	user jid.JID // bare: only the same account learns the count
	h    uint32
	at   time.Time
}

type endedKey struct {
	id string
	at time.Time
}

func newEndedSessions(ttl time.Duration, max int) *endedSessions {
	return &endedSessions{ttl: ttl, max: max, byID: map[string]endedSession{}}
}

// add records that the session id of user ended at now with count h.
func (e *endedSessions) add(id string, user jid.JID, h uint32, now time.Time) {
	if e.max <= 0 || id == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pruneLocked(now)
	for len(e.byID) >= e.max && len(e.order) > 0 {
		e.dropOldestLocked()
	}
	e.byID[id] = endedSession{user: user, h: h, at: now}
	e.order = append(e.order, endedKey{id: id, at: now})
}

// lookup returns the count of a session of user that ended less than the
// TTL ago.
func (e *endedSessions) lookup(id string, user jid.JID, now time.Time) (uint32, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pruneLocked(now)
	x, ok := e.byID[id]
	if !ok || x.user != user {
		return 0, false
	}
	return x.h, true
}

func (e *endedSessions) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.byID)
}

func (e *endedSessions) pruneLocked(now time.Time) {
	for len(e.order) > 0 && now.Sub(e.order[0].at) >= e.ttl {
		e.dropOldestLocked()
	}
}

func (e *endedSessions) dropOldestLocked() {
	k := e.order[0]
	e.order[0] = endedKey{}
	e.order = e.order[1:]
	if len(e.order) == 0 {
		e.order = nil // let the backing array go
	}
	if x, ok := e.byID[k.id]; ok && x.at.Equal(k.at) {
		delete(e.byID, k.id)
	}
}
