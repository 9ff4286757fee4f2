package roster

import (
	"slices"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
)

// State is one of the nine subscription states of RFC 6121 Appendix A.1,
// seen from the roster's owner ("the user"): the primary state and the
// pending flags.
type State struct {
	Sub        storage.Subscription
	PendingOut bool // the user asked the contact (ask='subscribe')
	PendingIn  bool // the contact asked the user
}

// The nine states of RFC 6121 Appendix A.1.
var (
	None           = State{Sub: storage.SubNone}
	NonePendingOut = State{Sub: storage.SubNone, PendingOut: true}
	NonePendingIn  = State{Sub: storage.SubNone, PendingIn: true}
	NonePendingOI  = State{Sub: storage.SubNone, PendingOut: true, PendingIn: true}
	To             = State{Sub: storage.SubTo}
	ToPendingIn    = State{Sub: storage.SubTo, PendingIn: true}
	From           = State{Sub: storage.SubFrom}
	FromPendingOut = State{Sub: storage.SubFrom, PendingOut: true}
	Both           = State{Sub: storage.SubBoth}
)

func (s State) String() string {
	name := map[storage.Subscription]string{storage.SubNone: "None", storage.SubTo: "To", storage.SubFrom: "From", storage.SubBoth: "Both"}[s.Sub]
	switch {
	case s.PendingOut && s.PendingIn:
		return name + " + Pending Out+In"
	case s.PendingOut:
		return name + " + Pending Out"
	case s.PendingIn:
		return name + " + Pending In"
	}
	return name
}

// stateOf returns the state of an entry; nil (no entry) is "None"
// (RFC 6121 Appendix A.1: None includes not being in the roster).
func stateOf(e *storage.RosterItem) State {
	if e == nil {
		return None
	}
	sub := e.Subscription
	if sub == "" {
		sub = storage.SubNone
	}
	return State{Sub: sub, PendingOut: e.PendingOut, PendingIn: e.PendingIn}
}

// isSubscription reports whether a presence type manages subscriptions.
func isSubscription(typ string) bool {
	switch typ {
	case stanza.PresenceSubscribe, stanza.PresenceSubscribed, stanza.PresenceUnsubscribe, stanza.PresenceUnsubscribed:
		return true
	}
	return false
}

// transition is what one subscription stanza does to a state.
type transition struct {
	next State
	// forward: outbound, route the stanza to the contact (Appendix A.2
	// "ROUTE?"); inbound, deliver it to the user (A.3 "DELIVER?").
	forward bool
	// autoReply is the presence type the user's server answers with on the
	// user's behalf (inbound only), or "".
	autoReply string
	// preApprove notes a pre-approval (§3.4); cancelApproval cancels one
	// (§3.2.2 rule 2).
	preApprove, cancelApproval bool
}

// outbound applies RFC 6121 Appendix A.2: the user sends typ to the contact.
func outbound(s State, typ string) transition {
	t := transition{next: s}
	switch typ {
	case stanza.PresenceSubscribe: // A.2.1: always routed
		t.forward = true
		if !s.Sub.HasTo() {
			t.next.PendingOut = true
		}
	case stanza.PresenceUnsubscribe: // A.2.2: always routed
		t.forward = true
		t.next.PendingOut = false
		t.next.Sub = withoutTo(s.Sub)
	case stanza.PresenceSubscribed: // A.2.3, §3.4
		switch {
		case s.Sub.HasFrom():
			// From, From + Pending Out, Both: nothing to approve.
		case s.PendingIn:
			t.forward = true
			t.next.PendingIn = false
			t.next.Sub = withFrom(s.Sub)
		default:
			// None, None + Pending Out, To: a pre-approval, not routed.
			t.preApprove = true
		}
	case stanza.PresenceUnsubscribed: // A.2.4, §3.2.2
		switch {
		case s.Sub.HasFrom() || s.PendingIn:
			t.forward = true
			t.next.PendingIn = false
			t.next.Sub = withoutFrom(s.Sub)
		default:
			// None, None + Pending Out, To: not routed; cancels a pre-approval.
			t.cancelApproval = true
		}
	}
	return t
}

// inbound applies RFC 6121 Appendix A.3: the contact sent typ to the user,
// who has pre-approved the contact or not.
func inbound(s State, typ string, preApproved bool) transition {
	t := transition{next: s}
	switch typ {
	case stanza.PresenceSubscribe: // A.3.1, §3.1.3
		switch {
		case s.Sub.HasFrom():
			// Already subscribed: not delivered, approved again.
			t.autoReply = stanza.PresenceSubscribed
		case s.PendingIn:
			// Already pending: not delivered again now.
		case preApproved:
			// §3.4: approved on the user's behalf.
			t.autoReply = stanza.PresenceSubscribed
			t.next.Sub = withFrom(s.Sub)
		default:
			t.forward = true
			t.next.PendingIn = true
		}
	case stanza.PresenceUnsubscribe: // A.3.2, §3.3.3
		if s.Sub.HasFrom() || s.PendingIn {
			t.forward = true
			t.autoReply = stanza.PresenceUnsubscribed
			t.next.PendingIn = false
			t.next.Sub = withoutFrom(s.Sub)
		}
	case stanza.PresenceSubscribed: // A.3.3, §3.1.6
		if s.PendingOut {
			t.forward = true
			t.next.PendingOut = false
			t.next.Sub = withTo(s.Sub)
		}
	case stanza.PresenceUnsubscribed: // A.3.4, §3.2.3
		if s.PendingOut || s.Sub.HasTo() {
			t.forward = true
			t.next.PendingOut = false
			t.next.Sub = withoutTo(s.Sub)
		}
	}
	return t
}

func withTo(s storage.Subscription) storage.Subscription {
	if s.HasFrom() {
		return storage.SubBoth
	}
	return storage.SubTo
}

func withFrom(s storage.Subscription) storage.Subscription {
	if s.HasTo() {
		return storage.SubBoth
	}
	return storage.SubFrom
}

func withoutTo(s storage.Subscription) storage.Subscription {
	if s.HasFrom() {
		return storage.SubFrom
	}
	return storage.SubNone
}

func withoutFrom(s storage.Subscription) storage.Subscription {
	if s.HasTo() {
		return storage.SubTo
	}
	return storage.SubNone
}

// plan is everything processing one subscription stanza does, for one
// side: the entry to store and the stanzas to send.
type plan struct {
	transition
	// entry is the (user, contact) entry afterwards; keep says whether it
	// still exists (false: delete it, if it existed).
	entry storage.RosterItem
	keep  bool
	// push: the roster changed in a way a roster push shows (RFC 6121
	// §2.1.6): a new, removed or visibly changed item.
	push bool
	// unavailable: the contact loses its subscription to the user; send it
	// unavailable presence from the user's available resources, before
	// the stanza itself (§3.2.2) or after the roster push (§3.3.3).
	unavailable bool
	// presence: the contact gains a subscription to the user; send it the
	// user's current presence after the approval (§3.1.5).
	presence bool
}

// planOutbound is what the user's server does when the user sends typ to
// contact, whose entry in the user's roster is old (nil if none).
func planOutbound(contact jid.JID, old *storage.RosterItem, typ string) plan {
	return makePlan(contact, old, outbound(stateOf(old), typ), "")
}

// planInbound is what the user's server does when the contact's stanza
// request (of type typ, serialized) arrives for the user.
func planInbound(contact jid.JID, old *storage.RosterItem, typ, request string) plan {
	s := stateOf(old)
	if typ == stanza.PresenceUnsubscribe && s.PendingIn && (old == nil || old.Hidden) {
		// §3.3.3: a withdrawn request from someone not in the roster only
		// removes the record of the request.
		next := s
		next.PendingIn = false
		return makePlan(contact, old, transition{next: next}, "")
	}
	approved := old != nil && old.PreApproved
	return makePlan(contact, old, inbound(s, typ, approved), request)
}

func makePlan(contact jid.JID, old *storage.RosterItem, t transition, request string) plan {
	p := plan{transition: t, entry: storage.RosterItem{Contact: contact}}
	before := stateOf(old)
	visibleBefore := old != nil && !old.Hidden
	if old != nil {
		p.entry = *old
		p.entry.Groups = slices.Clone(old.Groups)
	}
	e := &p.entry
	e.Subscription, e.PendingOut, e.PendingIn = t.next.Sub, t.next.PendingOut, t.next.PendingIn
	switch {
	case !e.PendingIn:
		e.InboundRequest = ""
	case !before.PendingIn:
		e.InboundRequest = request
	}
	if t.preApprove {
		e.PreApproved = true
	}
	if t.cancelApproval || e.Subscription.HasFrom() {
		// An approval or subscription supersedes a pre-approval (§3.4).
		e.PreApproved = false
	}
	visible := visibleBefore || e.Subscription != storage.SubNone || e.PendingOut || e.PreApproved
	e.Hidden = !visible
	p.keep = visible || e.PendingIn
	p.push = visible && (!visibleBefore || old.Subscription != e.Subscription || old.PendingOut != e.PendingOut ||
		old.PreApproved != e.PreApproved)
	p.unavailable = before.Sub.HasFrom() && !t.next.Sub.HasFrom()
	p.presence = !before.Sub.HasFrom() && t.next.Sub.HasFrom() ||
		t.autoReply == stanza.PresenceSubscribed
	return p
}
