package load

import "context"

// one-to-one: at each send slot a user sends a chat message to one of its
// Peers (fixed at random among the online users of this process) — the
// bare JID, delivered to the peer's one resource.
func init() {
	Register(Scenario{
		Name:  "one-to-one",
		Doc:   "each user sends chat messages to K random peers at rate r",
		Sends: true,
		New:   func(r *Run) Behaviour { return &oneToOne{r: r} },
	})
}

type oneToOne struct {
	Nop
	r *Run
}

func (s *oneToOne) Act(_ context.Context, u *User) { sendChat(s.r, u) }

// sendChat sends one stamped chat message from u to a random peer.
func sendChat(r *Run, u *User) {
	if len(u.Peers) == 0 {
		return
	}
	peer := u.Peers[u.Rand.IntN(len(u.Peers))]
	r.SendStampedTo(u, peer, Message(r.JID(peer), "chat", u.NextID(), r.Cfg.BodyBytes))
}
