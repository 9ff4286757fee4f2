package offline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// The order of delivery at login.
//
// A session becomes eligible for messages to the bare JID — available
// with a non-negative priority, RFC 6121 §8.5.2.1.1 — as soon as the
// server has read its presence, and the router delivers such messages to
// it from then on. The stored messages are delivered a little later,
// from the InitialPresence hook (XEP-0160 §2: "when the recipient next
// sends non-negative available presence to the server, the server
// delivers the message to the resource that has sent that presence"),
// after the presence was routed. A live message routed in between would overtake
// the stored ones, even one sent after them by the same sender (RFC 6120
// §10.1 asks for the order of one sender's stanzas to be kept, "treating
// stanzas addressed to the bare JID and the full JID of the intended
// recipient as equivalent": so messages to the full JID wait too).
//
// So each session has a gate. While the session is eligible and its
// stored messages have not been delivered, the gate is closed: the
// module's Outgoing hook holds the normal and chat messages given to the
// session, in the order they came. The drain delivers the stored
// messages, then what was held, then opens the gate. The hook costs a
// session value lookup and an atomic load per message when the gate is
// open: no storage query per live message.
//
// The other half is a message the router found no eligible session for,
// but whose storing commits after a drain claimed the queue: the drain
// did not see it, and no later login would come while the session stays
// available. Storing it (storeMessage) takes the user's lock after the
// commit and delivers it to a session whose gate is open; the drain opens
// the gate before it lets go of that lock. Either the drain's claim comes
// after the commit and takes it, or storeMessage runs after the drain and
// sees the open gate. It needs the lock only when a session is eligible.

// gateKey holds a session's *gate (Session.SetValue), made when the
// session binds, before it can become eligible.
type gateKey struct{}

type gate struct {
	// open: the session is eligible and was drained since it became so.
	// Set only with the user's lock held; reset when the session stops
	// being eligible (presenceChange).
	open atomic.Bool
	// through is the element the drain is delivering: the hook lets it
	// pass. Written with the user's lock held.
	through atomic.Pointer[xmlstream.Element]

	mu   sync.Mutex
	held []heldMessage // while closed and eligible, in arrival order
}

type heldMessage struct {
	el *xmlstream.Element
	at time.Time
}

func gateOf(s module.Session) *gate {
	g, _ := s.Value(gateKey{}).(*gate)
	return g
}

// eligible tells whether the router gives s messages to the bare JID
// (RFC 6121 §8.5.2.1.1).
func eligible(s module.Session) bool { return s.Available() && s.Priority() >= 0 }

// sessionOpened gives a session its gate, closed.
func (o *Offline) sessionOpened(_ context.Context, s module.Session) {
	s.SetValue(gateKey{}, &gate{})
}

// sessionClosed routes again what the gate of an ending session still
// held. The drain hands out what is held before it returns, on the
// session's goroutine, so nothing should be left; this is the guard
// against a gate that a future hook kept from opening.
func (o *Offline) sessionClosed(ctx context.Context, s module.Session) {
	g := gateOf(s)
	if g == nil {
		return
	}
	g.mu.Lock()
	held := g.held
	g.held = nil
	g.open.Store(true)
	g.mu.Unlock()
	o.reroute(ctx, s, held)
}

// outgoing is the Outgoing hook: it holds the normal and chat messages
// for an eligible session whose stored messages are not delivered yet.
func (o *Offline) outgoing(s module.Session, el *xmlstream.Element) module.Result {
	if el.Name != "message" || el.NS != stanza.NSClient {
		return module.Continue // before the session value lookup: most stanzas stop here
	}
	g := gateOf(s)
	if g == nil || g.open.Load() {
		return module.Continue
	}
	switch el.Attr("type") {
	case stanza.MessageGroupchat, stanza.MessageHeadline, stanza.MessageError:
		// Never stored (the others are normal or chat, RFC 6121
		// §5.2.2), so not overtaking stored ones.
		return module.Continue
	}
	if !eligible(s) || el == g.through.Load() {
		// Not eligible: what comes now is for the full JID, and no
		// stored message is due (presenceChange resets the gate when
		// the session stops being eligible, before it can be again).
		return module.Continue
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open.Load() {
		return module.Continue
	}
	g.held = append(g.held, heldMessage{el: el, at: time.Now()})
	return module.Stop
}

// openGate delivers what the gate held and opens it; the caller holds the
// user's lock. The messages the session did not take (it is ending) are
// returned, to be routed again once the lock is released.
func (o *Offline) openGate(s module.Session, g *gate) (failed []heldMessage) {
	for {
		g.mu.Lock()
		batch := g.held
		g.held = nil
		if len(batch) == 0 {
			g.open.Store(true)
			g.mu.Unlock()
			g.through.Store(nil)
			return failed
		}
		g.mu.Unlock()
		// Messages that come meanwhile are held after these.
		for _, h := range batch {
			g.through.Store(h.el)
			if !s.Deliver(h.el) {
				failed = append(failed, h)
			}
		}
	}
}

// closeGate: the session is no longer eligible; when it is again, its
// stored messages come first.
func closeGate(s module.Session) {
	if g := gateOf(s); g != nil {
		g.open.Store(false)
	}
}

// reroute routes again, to the bare JID, the held messages of a session
// that ended before taking them, as the server does with the messages a
// session ending without resumption had not acknowledged (XEP-0198 §4):
// stamped with when they first came, the other resources or offline
// storage get them. Copies made for the session itself (carbons) are not
// routed again.
func (o *Offline) reroute(ctx context.Context, s module.Session, failed []heldMessage) {
	bare := s.JID().Bare()
	for _, h := range failed {
		module.RerouteMessage(ctx, o.host.Route, bare, bare.Domain(), h.el, h.at)
	}
}
