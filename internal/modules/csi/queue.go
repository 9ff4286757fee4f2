package csi

import (
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// state is one session's CSI state and the stanzas it holds back.
//
// The queue keeps the order in which stanzas were handed to the session.
// Each entry is held (waiting for the client to become active) or
// released (to be delivered now, by the drain). A stanza with a key (a
// contact's presence, its chat state) replaces the held one with the
// same key, which is removed from its place: what is delivered in the end
// is the original sequence with the superseded stanzas left out.
//
// One goroutine at a time drains (flushing): it takes the released
// entries in order and delivers them with Session.Deliver, marking each
// as through so that the Outgoing hook lets it pass; meanwhile the hook
// queues what others deliver, so that nothing overtakes the drain.
type state struct {
	mu   sync.Mutex
	idle sync.Cond // signalled when a drain ends

	inactive bool
	flushing bool
	closed   bool

	queue    []entry
	keys     map[string]int // key → index of the held entry with that key
	held     int            // held entries
	released int            // released entries not yet taken by the drain
	through  *xmlstream.Element
}

type entry struct {
	el       *xmlstream.Element // nil: superseded or taken
	peer     string
	key      string
	released bool
	at       time.Time // when it was held: its <delay/> if it is routed again
}

func newState() *state {
	st := &state{keys: map[string]int{}}
	st.idle.L = &st.mu
	return st
}

// hold queues el, replacing the held stanza with the same key.
func (st *state) hold(el *xmlstream.Element, peer, key string) {
	if key != "" {
		if i, ok := st.keys[key]; ok {
			st.queue[i].el = nil
			st.held--
		}
	}
	if len(st.queue) >= 32 && len(st.queue) >= 2*(st.held+st.released) {
		st.compact()
	}
	st.queue = append(st.queue, entry{el: el, peer: peer, key: key, at: time.Now()})
	st.held++
	if key != "" {
		st.keys[key] = len(st.queue) - 1
	}
}

// appendReleased queues el to be delivered by the drain.
func (st *state) appendReleased(el *xmlstream.Element, peer string) {
	st.queue = append(st.queue, entry{el: el, peer: peer, released: true, at: time.Now()})
	st.released++
}

// releasePeer releases the held stanzas of one sender.
func (st *state) releasePeer(peer string) {
	if st.held == 0 {
		return
	}
	for i := range st.queue {
		if e := &st.queue[i]; e.el != nil && !e.released && e.peer == peer {
			st.release(i)
		}
	}
}

// releaseAll releases every held stanza.
func (st *state) releaseAll() {
	if st.held == 0 {
		return
	}
	for i := range st.queue {
		if e := &st.queue[i]; e.el != nil && !e.released {
			st.release(i)
		}
	}
}

func (st *state) release(i int) {
	e := &st.queue[i]
	e.released = true
	st.held--
	st.released++
	if e.key != "" && st.keys[e.key] == i {
		delete(st.keys, e.key)
	}
}

// takeReleased removes the released entries from the queue and returns
// their stanzas in order.
func (st *state) takeReleased() []*xmlstream.Element {
	if st.released == 0 {
		return nil
	}
	out := make([]*xmlstream.Element, 0, st.released)
	for i := range st.queue {
		if e := &st.queue[i]; e.el != nil && e.released {
			out = append(out, e.el)
			e.el = nil
		}
	}
	st.released = 0
	st.compact()
	return out
}

// compact drops the empty entries and reindexes the keys.
func (st *state) compact() {
	kept := st.queue[:0]
	for _, e := range st.queue {
		if e.el != nil {
			kept = append(kept, e)
		}
	}
	clear(st.queue[len(kept):]) // let the stanzas go
	st.queue = kept
	if len(st.queue) == 0 && cap(st.queue) > 64 {
		st.queue = nil
	}
	clear(st.keys)
	for i, e := range st.queue {
		if e.key != "" && !e.released {
			st.keys[e.key] = i
		}
	}
}

// drain delivers the released stanzas, in order, until none is left; the
// caller has set flushing. Session.Deliver never blocks on the network,
// so a drain is as long as what it serializes (bounded by max_queue plus
// what arrives meanwhile).
func (st *state) drain(s module.Session) {
	for {
		st.mu.Lock()
		batch := st.takeReleased()
		if len(batch) == 0 || st.closed {
			st.flushing = false
			st.idle.Broadcast()
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
		for _, el := range batch {
			st.mu.Lock()
			st.through = el
			st.mu.Unlock()
			s.Deliver(el)
			st.mu.Lock()
			if st.through == el {
				st.through = nil // a hook before this one took it
			}
			st.mu.Unlock()
		}
	}
}
