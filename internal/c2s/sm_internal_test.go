package c2s

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// The counters of XEP-0198 §4 wrap from 2^32-1 back to 0: an ack across
// the wrap removes exactly the stanzas it covers, and one beyond what was
// sent is refused as too high.
func TestSMAckWraps(t *testing.T) {
	for _, start := range []uint32{0, math.MaxUint32 - 2, math.MaxUint32, 1<<31 - 1} {
		s := &Session{}
		s.sm.acked, s.sm.out = start, start
		for i := range 6 {
			s.sm.out++
			s.sm.queue = append(s.sm.queue, unacked{el: xmlstream.NewElement("m"+strconv.Itoa(i), "")})
		}
		if s.smAckLocked(start + 7) {
			t.Fatalf("start %d: h=%d (7 past %d, 6 sent) accepted", start, start+7, start)
		}
		if !s.smAckLocked(start + 4) {
			t.Fatalf("start %d: h=%d refused", start, start+4)
		}
		if len(s.sm.queue) != 2 || s.sm.queue[0].el.Name != "m4" || s.sm.acked != start+4 {
			t.Fatalf("start %d: after h=%d: acked %d, queue %d starting %v", start, start+4, s.sm.acked, len(s.sm.queue), s.sm.queue[0].el.Name)
		}
		// An ack that goes back (an old h) is "too high" modulo 2^32.
		if s.smAckLocked(start + 3) {
			t.Fatalf("start %d: h went back and was accepted", start)
		}
		if !s.smAckLocked(start+4) || len(s.sm.queue) != 2 {
			t.Fatalf("start %d: the same h again changed the queue", start)
		}
		if !s.smAckLocked(start+6) || len(s.sm.queue) != 0 || s.sm.queue != nil {
			t.Fatalf("start %d: the last ack left %d", start, len(s.sm.queue))
		}
	}
	// The wrap itself: 2^32-1 + 1 is 0.
	s := &Session{}
	s.sm.acked = math.MaxUint32
	s.sm.queue = make([]unacked, 3)
	if !s.smAckLocked(1) || len(s.sm.queue) != 1 || s.sm.acked != 1 {
		t.Fatalf("h=1 after 2^32-1: queue %d, acked %d", len(s.sm.queue), s.sm.acked)
	}
}

func TestSMMaxSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int64
	}{
		{5 * time.Minute, 300}, {time.Hour, 3600}, {time.Second, 1}, {300 * time.Millisecond, 1},
		{time.Nanosecond, 1}, {1500 * time.Millisecond, 2}, {0, 0},
	} {
		if got := maxSeconds(c.d); got != c.want {
			t.Errorf("maxSeconds(%s) = %d, want %d", c.d, got, c.want)
		}
	}
}

// The counts of ended sessions are kept for the TTL, for their own
// account only, and at most max of them, the oldest going first.
func TestEndedSessions(t *testing.T) {
	alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
	t0 := time.Unix(1_700_000_000, 0)
	e := newEndedSessions(time.Minute, 3)
	e.add("a1", alice, 7, t0)
	if h, ok := e.lookup("a1", alice, t0.Add(59*time.Second)); !ok || h != 7 {
		t.Fatalf("a1 = %d, %v", h, ok)
	}
	if _, ok := e.lookup("a1", bob, t0); ok {
		t.Fatal("another account learnt the count")
	}
	if _, ok := e.lookup("nope", alice, t0); ok {
		t.Fatal("unknown id found")
	}
	if _, ok := e.lookup("a1", alice, t0.Add(time.Minute)); ok {
		t.Fatal("a1 outlived its TTL")
	}
	if e.len() != 0 {
		t.Fatalf("%d entries after expiry", e.len())
	}
	// Size: the fourth pushes out the first.
	for i := range 4 {
		e.add("b"+strconv.Itoa(i), bob, uint32(i), t0.Add(time.Duration(i)*time.Second))
	}
	now := t0.Add(5 * time.Second)
	if _, ok := e.lookup("b0", bob, now); ok {
		t.Fatal("b0 kept beyond the size limit")
	}
	for i := 1; i < 4; i++ {
		if h, ok := e.lookup("b"+strconv.Itoa(i), bob, now); !ok || h != uint32(i) {
			t.Fatalf("b%d = %d, %v", i, h, ok)
		}
	}
	if e.len() != 3 || len(e.order) != 3 {
		t.Fatalf("%d entries, %d in order", e.len(), len(e.order))
	}
	// Expiry goes oldest first: at t0+62s b1 and b2 are gone, b3 is not.
	now = t0.Add(62 * time.Second)
	if _, ok := e.lookup("b3", bob, now); !ok {
		t.Fatal("b3 expired early")
	}
	if e.len() != 1 {
		t.Fatalf("%d entries at t0+62s", e.len())
	}
	// Many sessions: memory stays bounded.
	for i := range 10000 {
		e.add("c"+strconv.Itoa(i), alice, uint32(i), now)
	}
	if e.len() != 3 || len(e.order) != 3 || cap(e.order) > 64 {
		t.Fatalf("%d entries, order %d (cap %d)", e.len(), len(e.order), cap(e.order))
	}
	if h, ok := e.lookup("c9999", alice, now); !ok || h != 9999 {
		t.Fatalf("c9999 = %d, %v", h, ok)
	}
	// Disabled.
	off := newEndedSessions(time.Minute, 0)
	off.add("x", alice, 1, t0)
	if _, ok := off.lookup("x", alice, t0); ok {
		t.Fatal("kept with max 0")
	}
}

// fakeTransport serializes like TCP and writes nowhere.
type fakeTransport struct {
	transport // the methods a session never calls here
}

func (fakeTransport) appendElement(dst []byte, el *xmlstream.Element) []byte {
	return el.AppendXML(dst, xmlstream.StreamScope("jabber:client"))
}
func (fakeTransport) appendClose(dst []byte) []byte { return append(dst, "</stream:stream>"...) }
func (fakeTransport) framed() bool                  { return false }

// What a resumption sends again does not count against MaxOutboundBytes:
// a session resumed after a long absence is not closed by the next
// stanza while its flusher has not yet taken the retransmission; what
// comes after still counts.
func TestOutboundLimitAfterResumption(t *testing.T) {
	cfg := Config{MaxOutboundBytes: 1000}
	cfg.setDefaults()
	s := newSession(&Server{cfg: cfg, hooks: &module.Hooks{}}, fakeTransport{})
	s.sm.enabled, s.sm.resumable, s.detached, s.headerSent = true, true, true, true
	msg := func(i int) *xmlstream.Element {
		return xmlstream.NewElement("message", "jabber:client").SetAttr("to", "bob@example.org/phone").
			AddChild(xmlstream.NewElement("body", "jabber:client").AddText(strings.Repeat("x", 80) + strconv.Itoa(i)))
	}
	for i := range 30 { // about 3000 bytes, kept while detached
		if !s.Deliver(msg(i)) {
			t.Fatalf("message %d refused while detached", i)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detached = false
	s.flushing = true // a flusher that has not taken the buffer yet
	s.retransmitLocked()
	if len(s.out) <= cfg.MaxOutboundBytes {
		t.Fatalf("only %d bytes sent again", len(s.out))
	}
	s.mu.Unlock()
	for i := 30; i < 35; i++ { // about 800 bytes more: within the limit
		s.Deliver(msg(i))
	}
	s.mu.Lock()
	if s.closing {
		t.Fatalf("closed with %d bytes queued, %d sent again", len(s.out), s.resent)
	}
	s.mu.Unlock()
	for i := 35; i < 38; i++ { // beyond it
		s.Deliver(msg(i))
	}
	s.mu.Lock()
	if !s.closing {
		t.Fatalf("not closed with %d bytes queued, %d sent again", len(s.out), s.resent)
	}
	s.smStopLocked()
}
