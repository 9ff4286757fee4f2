package load

import (
	"context"
	"time"
)

// presence: churn. At each send slot a user sends a stamped directed
// presence (RFC 6121 §4.6) with a new status to one of its peers — what
// a roster broadcast costs per contact, without needing rosters on every
// server — and, about once per Churn on average, goes offline and logs
// in again instead (the reconnect of a phone changing networks; the
// SCRAM keys are cached, so it costs the client no PBKDF2).
func init() {
	Register(Scenario{
		Name:  "presence",
		Doc:   "presence churn: directed presence to peers, and reconnects about every --churn",
		Sends: true,
		New:   func(r *Run) Behaviour { return &presence{r: r} },
	})
}

type presence struct {
	Nop
	r *Run
}

func (s *presence) Act(ctx context.Context, u *User) {
	r := s.r
	// The chance of a reconnect at each slot: 1 / (slots per Churn).
	if p := 1 / (r.Cfg.Rate * r.Cfg.Churn.Seconds()); u.Rand.Float64() < p {
		r.Reconnect(ctx, u)
		return
	}
	if len(u.Peers) == 0 {
		return
	}
	peer := u.Peers[u.Rand.IntN(len(u.Peers))]
	r.SendStampedTo(u, peer, Presence(r.JID(peer), time.Now().Format(time.TimeOnly)))
}
