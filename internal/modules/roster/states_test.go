package roster

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
)

// The tables of RFC 6121 Appendix A, transcribed row by row. forward is
// "ROUTE?" (A.2) or "DELIVER?" (A.3): MUST is true, S.N./M.N. false.
type tableRow struct {
	from    State
	forward bool
	next    State
}

var appendixA2 = map[string][]tableRow{
	// Table 2: outbound "subscribe".
	stanza.PresenceSubscribe: {
		{None, true, NonePendingOut},
		{NonePendingOut, true, NonePendingOut},
		{NonePendingIn, true, NonePendingOI},
		{NonePendingOI, true, NonePendingOI},
		{To, true, To},
		{ToPendingIn, true, ToPendingIn},
		{From, true, FromPendingOut},
		{FromPendingOut, true, FromPendingOut},
		{Both, true, Both},
	},
	// Table 3: outbound "unsubscribe".
	stanza.PresenceUnsubscribe: {
		{None, true, None},
		{NonePendingOut, true, None},
		{NonePendingIn, true, NonePendingIn},
		{NonePendingOI, true, NonePendingIn},
		{To, true, None},
		{ToPendingIn, true, NonePendingIn},
		{From, true, From},
		{FromPendingOut, true, From},
		{Both, true, From},
	},
	// Table 4: outbound "subscribed" (None, None + Pending Out and To are
	// pre-approvals, §3.4).
	stanza.PresenceSubscribed: {
		{None, false, None},
		{NonePendingOut, false, NonePendingOut},
		{NonePendingIn, true, From},
		{NonePendingOI, true, FromPendingOut},
		{To, false, To},
		{ToPendingIn, true, Both},
		{From, false, From},
		{FromPendingOut, false, FromPendingOut},
		{Both, false, Both},
	},
	// Table 5: outbound "unsubscribed".
	stanza.PresenceUnsubscribed: {
		{None, false, None},
		{NonePendingOut, false, NonePendingOut},
		{NonePendingIn, true, None},
		{NonePendingOI, true, NonePendingOut},
		{To, false, To},
		{ToPendingIn, true, To},
		{From, true, None},
		{FromPendingOut, true, NonePendingOut},
		{Both, true, To},
	},
}

var appendixA3 = map[string][]tableRow{
	// Table 6: inbound "subscribe".
	stanza.PresenceSubscribe: {
		{None, true, NonePendingIn},
		{NonePendingOut, true, NonePendingOI},
		{NonePendingIn, false, NonePendingIn},
		{NonePendingOI, false, NonePendingOI},
		{To, true, ToPendingIn},
		{ToPendingIn, false, ToPendingIn},
		{From, false, From},
		{FromPendingOut, false, FromPendingOut},
		{Both, false, Both},
	},
	// Table 7: inbound "unsubscribe".
	stanza.PresenceUnsubscribe: {
		{None, false, None},
		{NonePendingOut, false, NonePendingOut},
		{NonePendingIn, true, None},
		{NonePendingOI, true, NonePendingOut},
		{To, false, To},
		{ToPendingIn, true, To},
		{From, true, None},
		{FromPendingOut, true, NonePendingOut},
		{Both, true, To},
	},
	// Table 8: inbound "subscribed".
	stanza.PresenceSubscribed: {
		{None, false, None},
		{NonePendingOut, true, To},
		{NonePendingIn, false, NonePendingIn},
		{NonePendingOI, true, ToPendingIn},
		{To, false, To},
		{ToPendingIn, false, ToPendingIn},
		{From, false, From},
		{FromPendingOut, true, Both},
		{Both, false, Both},
	},
	// Table 9: inbound "unsubscribed".
	stanza.PresenceUnsubscribed: {
		{None, false, None},
		{NonePendingOut, true, None},
		{NonePendingIn, false, NonePendingIn},
		{NonePendingOI, true, NonePendingIn},
		{To, true, None},
		{ToPendingIn, true, NonePendingIn},
		{From, false, From},
		{FromPendingOut, true, From},
		{Both, true, From},
	},
}

var subscriptionTypes = []string{stanza.PresenceSubscribe, stanza.PresenceUnsubscribe, stanza.PresenceSubscribed, stanza.PresenceUnsubscribed}

var bob = jid.MustParse("bob@example.com")

// entries returns the ways a state can be stored: as a roster item, and
// for the states without a visible part also as no entry at all ("None",
// Appendix A.1 note) or a hidden request ("None + Pending In" without an
// item, §3.1.3).
func entries(s State) map[string]*storage.RosterItem {
	out := map[string]*storage.RosterItem{
		"item": {Contact: bob, Subscription: s.Sub, PendingOut: s.PendingOut, PendingIn: s.PendingIn, Name: "Bob", Groups: []string{"g"}, Version: 7},
	}
	if s.PendingIn {
		out["item"].InboundRequest = "<presence type='subscribe'/>"
	}
	switch s {
	case None:
		out["absent"] = nil
	case NonePendingIn:
		out["hidden"] = &storage.RosterItem{Contact: bob, Subscription: storage.SubNone, PendingIn: true, Hidden: true, InboundRequest: "<presence type='subscribe'/>"}
	}
	return out
}

// visibleChange reports whether a push must show the change (RFC 6121
// §2.1.6): the 'subscription', 'ask' and 'approved' of an item, or an
// item that appears.
func visibleChange(before *storage.RosterItem, after storage.RosterItem, keep bool) bool {
	inRoster := before != nil && !before.Hidden
	afterInRoster := keep && !after.Hidden
	if !inRoster || !afterInRoster {
		return inRoster != afterInRoster
	}
	return before.Subscription != after.Subscription || before.PendingOut != after.PendingOut || before.PreApproved != after.PreApproved
}

// TestAppendixA2 checks the user's server's processing of every outbound
// subscription stanza in every state (RFC 6121 Appendix A.2).
func TestAppendixA2(t *testing.T) {
	for _, typ := range subscriptionTypes {
		rows := appendixA2[typ]
		if len(rows) != 9 {
			t.Fatalf("table for %s has %d rows", typ, len(rows))
		}
		for _, row := range rows {
			for kind, old := range entries(row.from) {
				name := typ + "/" + row.from.String() + "/" + kind
				p := planOutbound(bob, old, typ)
				got := stateOf(&p.entry)
				if !p.keep {
					got = None
				}
				if got != row.next {
					t.Errorf("%s: new state %s, want %s", name, got, row.next)
				}
				if p.forward != row.forward {
					t.Errorf("%s: routed %v, want %v", name, p.forward, row.forward)
				}
				if p.keep && p.entry.Contact != bob {
					t.Errorf("%s: entry for %q", name, p.entry.Contact)
				}
				if p.autoReply != "" {
					t.Errorf("%s: auto-reply %q to an outbound stanza", name, p.autoReply)
				}
				// §3.4: subscribed in None, None + Pending Out and To is a
				// pre-approval, which makes an item (rule 4) and a push.
				preApproval := typ == stanza.PresenceSubscribed && !row.forward && !row.from.Sub.HasFrom()
				if p.entry.PreApproved != preApproval {
					t.Errorf("%s: pre-approved %v, want %v", name, p.entry.PreApproved, preApproval)
				}
				if want := visibleChange(old, p.entry, p.keep); p.push != want {
					t.Errorf("%s: push %v, want %v", name, p.push, want)
				}
				if (old == nil || old.Hidden) && p.keep && !p.entry.Hidden && !p.push {
					t.Errorf("%s: new item without a push", name)
				}
				if p.entry.Name != entryName(old) {
					t.Errorf("%s: name changed to %q", name, p.entry.Name)
				}
				// §3.2.2: unavailable before a cancellation; §3.1.5:
				// presence after an approval.
				if want := row.from.Sub.HasFrom() && !row.next.Sub.HasFrom(); p.unavailable != want {
					t.Errorf("%s: unavailable %v, want %v", name, p.unavailable, want)
				}
				if want := !row.from.Sub.HasFrom() && row.next.Sub.HasFrom(); p.presence != want {
					t.Errorf("%s: presence %v, want %v", name, p.presence, want)
				}
				if p.entry.PendingIn && p.entry.InboundRequest == "" {
					t.Errorf("%s: pending request without its stanza", name)
				}
			}
		}
	}
}

func entryName(e *storage.RosterItem) string {
	if e == nil {
		return ""
	}
	return e.Name
}

// TestAppendixA3 checks the contact's server's processing of every
// inbound subscription stanza in every state (RFC 6121 Appendix A.3).
func TestAppendixA3(t *testing.T) {
	const request = "<presence from='bob@example.com' type='subscribe' id='r1'/>"
	for _, typ := range subscriptionTypes {
		rows := appendixA3[typ]
		if len(rows) != 9 {
			t.Fatalf("table for %s has %d rows", typ, len(rows))
		}
		for _, row := range rows {
			for kind, old := range entries(row.from) {
				name := typ + "/" + row.from.String() + "/" + kind
				p := planInbound(bob, old, typ, request)
				got := stateOf(&p.entry)
				if !p.keep {
					got = None
				}
				forward := row.forward
				if typ == stanza.PresenceUnsubscribe && kind == "hidden" {
					// §3.3.3: a withdrawn request from someone not in the
					// roster is forgotten, not delivered.
					forward = false
				}
				if got != row.next {
					t.Errorf("%s: new state %s, want %s", name, got, row.next)
				}
				if p.forward != forward {
					t.Errorf("%s: delivered %v, want %v", name, p.forward, forward)
				}
				if p.keep && p.entry.Contact != bob {
					t.Errorf("%s: entry for %q", name, p.entry.Contact)
				}
				// Footnote [2] of Table 6 and [1] of Table 7.
				var reply string
				switch {
				case typ == stanza.PresenceSubscribe && row.from.Sub.HasFrom():
					reply = stanza.PresenceSubscribed
				case typ == stanza.PresenceUnsubscribe && forward:
					reply = stanza.PresenceUnsubscribed
				}
				if p.autoReply != reply {
					t.Errorf("%s: auto-reply %q, want %q", name, p.autoReply, reply)
				}
				if want := visibleChange(old, p.entry, p.keep); p.push != want {
					t.Errorf("%s: push %v, want %v", name, p.push, want)
				}
				// §3.1.3: a request is stored (with its stanza) until
				// answered, without adding an item.
				stored := typ == stanza.PresenceSubscribe && forward
				if stored && (p.entry.InboundRequest != request || !p.entry.PendingIn || !p.keep) {
					t.Errorf("%s: request not stored: %+v", name, p.entry)
				}
				if stored && (old == nil || old.Hidden) && !p.entry.Hidden {
					t.Errorf("%s: a request added an item to the roster", name)
				}
				if !stored && p.entry.PendingIn && old != nil && p.entry.InboundRequest != old.InboundRequest {
					t.Errorf("%s: stored request replaced", name)
				}
				// §3.3.3 rule 3: unavailable to a contact that unsubscribed.
				if want := row.from.Sub.HasFrom() && !row.next.Sub.HasFrom(); p.unavailable != want {
					t.Errorf("%s: unavailable %v, want %v", name, p.unavailable, want)
				}
			}
		}
	}
}

// TestPreApproval: §3.4 — a pre-approved contact's request is approved
// on the user's behalf; "unsubscribed" cancels a pre-approval without
// being routed.
func TestPreApproval(t *testing.T) {
	for _, s := range []State{None, NonePendingOut, To} {
		for kind, old := range entries(s) {
			name := s.String() + "/" + kind
			p := planOutbound(bob, old, stanza.PresenceSubscribed)
			if !p.entry.PreApproved || !p.keep || p.entry.Hidden || !p.push || p.forward {
				t.Fatalf("%s: pre-approval %+v", name, p)
			}
			approved := p.entry
			in := planInbound(bob, &approved, stanza.PresenceSubscribe, "<presence/>")
			want := map[State]State{None: From, NonePendingOut: FromPendingOut, To: Both}[s]
			if stateOf(&in.entry) != want || in.forward || in.autoReply != stanza.PresenceSubscribed ||
				!in.presence || !in.push || in.entry.PreApproved || in.entry.PendingIn {
				t.Errorf("%s: pre-approved request: state %s %+v", name, stateOf(&in.entry), in)
			}
			cancel := planOutbound(bob, &approved, stanza.PresenceUnsubscribed)
			if cancel.forward || cancel.entry.PreApproved || !cancel.push || stateOf(&cancel.entry) != s {
				t.Errorf("%s: cancelled pre-approval %+v", name, cancel)
			}
			// Without a pre-approval, unsubscribed there changes nothing.
			if p := planOutbound(bob, old, stanza.PresenceUnsubscribed); p.push || p.forward {
				t.Errorf("%s: unsubscribed without pre-approval %+v", name, p)
			}
		}
	}
	// Subscribed where there is a subscription already: silently ignored
	// (§3.4.2 rule 1).
	for _, s := range []State{From, FromPendingOut, Both} {
		old := entries(s)["item"]
		if p := planOutbound(bob, old, stanza.PresenceSubscribed); p.push || p.forward || p.entry.PreApproved {
			t.Errorf("%s: subscribed %+v", s, p)
		}
	}
}
