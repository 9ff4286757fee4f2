package roster_test

import (
	"context"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/modules/roster"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
)

var allStates = []roster.State{
	roster.None, roster.NonePendingOut, roster.NonePendingIn, roster.NonePendingOI,
	roster.To, roster.ToPendingIn, roster.From, roster.FromPendingOut, roster.Both,
}

// mirror is the state of the contact's roster that matches s in the
// user's: what is "to" for one is "from" for the other, and the pending
// directions swap.
func mirror(s roster.State) roster.State {
	sub := map[storage.Subscription]storage.Subscription{
		storage.SubNone: storage.SubNone, storage.SubTo: storage.SubFrom,
		storage.SubFrom: storage.SubTo, storage.SubBoth: storage.SubBoth,
	}[s.Sub]
	return roster.State{Sub: sub, PendingOut: s.PendingIn, PendingIn: s.PendingOut}
}

func stateOfEntry(e *storage.RosterItem) roster.State {
	if e == nil {
		return roster.None
	}
	return roster.State{Sub: e.Subscription, PendingOut: e.PendingOut, PendingIn: e.PendingIn}
}

func putState(t *testing.T, srv *servertest.Server, user, contact jid.JID, s roster.State) {
	t.Helper()
	it := storage.RosterItem{Contact: contact, Subscription: s.Sub, PendingOut: s.PendingOut, PendingIn: s.PendingIn}
	if s.PendingIn {
		it.InboundRequest = stanza.NewPresence(stanza.PresenceSubscribe, user, contact).String()
	}
	if _, _, err := rosterStore(t, srv).PutRosterItem(context.Background(), user, it); err != nil {
		t.Fatal(err)
	}
}

// TestStoryAppendixA runs every row of RFC 6121 Appendix A over real
// connections: alice's roster has bob in each of the nine states, bob's
// has alice in the matching one, and alice sends each of the four
// subscription stanzas. One exchange checks a row of A.2 on alice's side
// (routed or not, new state, push or not) and, when routed, a row of A.3
// on bob's (delivered or not, new state, push or not); as the matching
// states cover all nine, every row of both tables is checked.
func TestStoryAppendixA(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, s := range allStates {
		for _, typ := range []string{stanza.PresenceSubscribe, stanza.PresenceUnsubscribe, stanza.PresenceSubscribed, stanza.PresenceUnsubscribed} {
			t.Run(s.String()+"/"+typ, func(t *testing.T) {
				t.Parallel()
				story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
					testAppendixRow(t, srv, alice, bob, s, typ)
				})
			})
		}
	}
}

func testAppendixRow(t *testing.T, srv *servertest.Server, alice, bob *story.Client, s roster.State, typ string) {
	bs := mirror(s)
	// story.Run returns when each client has its own initial presence
	// back, before the server has run the initial-presence hooks (the
	// probes of the contacts): one running after putState would answer
	// alice's probe of bob with unsubscribed and change the states. Each
	// ping is answered after them.
	syncAll(alice, bob)
	putState(t, srv, alice.Bare(), bob.Bare(), s)
	putState(t, srv, bob.Bare(), alice.Bare(), bs)
	alice.IQ(story.RosterGet())
	bob.IQ(story.RosterGet())

	routed, aliceNext := roster.AppendixA2(typ, s)
	delivered, bobNext := false, bs
	if routed {
		delivered, bobNext = roster.AppendixA3(typ, bs)
	}
	// §3.4: subscribed where alice has no subscription from bob and no
	// request to answer is a pre-approval: shown in the roster.
	preApproval := typ == stanza.PresenceSubscribed && !routed && !s.Sub.HasFrom()

	alice.Send(story.PresenceTo(bob.Bare(), typ))
	syncAll(alice, bob)

	// alice's side (A.2).
	pushes := pending(alice, story.IsRosterPush(bob.Bare()))
	if want := visiblyDifferent(s, aliceNext) || preApproval; (len(pushes) == 1) != want || len(pushes) > 1 {
		t.Fatalf("alice: %d pushes, want a push: %v", len(pushes), want)
	}
	if len(pushes) == 1 {
		story.AssertStanza(t, pushes[0], isPush(bob.Bare(), string(aliceNext.Sub), askOf(aliceNext)))
		if got := itemOf(pushes[0]).Attr("approved") == "true"; got != preApproval {
			t.Fatalf("alice: approved=%v in %s", got, pushes[0])
		}
	}
	ae := entry(t, srv, alice.Bare(), bob.Bare())
	if got := stateOfEntry(ae); got != aliceNext {
		t.Fatalf("alice: state %s, want %s", got, aliceNext)
	}
	if ae.PreApproved != preApproval {
		t.Fatalf("alice: pre-approved %v", ae.PreApproved)
	}

	// bob's side (A.3).
	in := pending(bob, story.IsPresence(typ, alice.Bare()))
	if (len(in) == 1) != delivered || len(in) > 1 {
		t.Fatalf("bob: %d %s stanzas, want delivered: %v (routed: %v)", len(in), typ, delivered, routed)
	}
	if delivered && in[0].Attr("from") != alice.Bare().String() {
		t.Fatalf("bob: not stamped with the bare JID: %s", in[0])
	}
	pushes = pending(bob, story.IsRosterPush(alice.Bare()))
	if want := visiblyDifferent(bs, bobNext); (len(pushes) == 1) != want || len(pushes) > 1 {
		t.Fatalf("bob: %d pushes, want a push: %v", len(pushes), want)
	}
	if len(pushes) == 1 {
		story.AssertStanza(t, pushes[0], isPush(alice.Bare(), string(bobNext.Sub), askOf(bobNext)))
	}
	be := entry(t, srv, bob.Bare(), alice.Bare())
	if got := stateOfEntry(be); got != bobNext {
		t.Fatalf("bob: state %s, want %s", got, bobNext)
	}
	// §3.1.3: an undelivered-yet request is kept with its stanza.
	if be.PendingIn && be.InboundRequest == "" {
		t.Fatalf("bob: pending request without its stanza")
	}
}

func askOf(s roster.State) string {
	if s.PendingOut {
		return "subscribe"
	}
	return ""
}

// visiblyDifferent: a roster push shows 'subscription' and 'ask', not a
// pending inbound request.
func visiblyDifferent(a, b roster.State) bool {
	return a.Sub != b.Sub || a.PendingOut != b.PendingOut
}
