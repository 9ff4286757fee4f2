package servertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// Ended counts the bound sessions that ended, by full JID, once every
// module's SessionClosed hook has run for them (their unacknowledged
// stanzas rerouted, their last activity recorded…): what a test waits on
// instead of sleeping after a client closes. Parallel subtests may share
// one.
type Ended struct {
	mu      sync.Mutex
	n       map[jid.JID]int
	changed chan struct{}
}

// WatchEnded starts counting the sessions that end from now on.
func (s *Server) WatchEnded() *Ended {
	e := &Ended{n: map[jid.JID]int{}, changed: make(chan struct{})}
	// The lowest priority: after the modules' own hooks.
	s.Hooks().SessionClosed.Add("servertest", -1<<30, func(_ context.Context, sess module.Session) {
		e.mu.Lock()
		e.n[sess.JID()]++
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
	})
	return e
}

// Count is how many sessions of who ended.
func (e *Ended) Count(who jid.JID) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n[who]
}

// Wait waits until n sessions of who have ended, 10 s at most.
func (e *Ended) Wait(t testing.TB, who jid.JID, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		got, ch := e.n[who], e.changed
		e.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%d session(s) of %s ended, not %d", got, who, n)
		}
	}
}
