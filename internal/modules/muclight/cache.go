package muclight

import (
	"sync"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// cache keeps room snapshots by room JID for the message path: a room
// message costs a map lookup, not a query. A change of a room replaces
// its snapshot after the storage write (under the room's lock), so
// the cache never holds a member list older than what this node wrote.
// Another node's change is seen when the snapshot is evicted; a cluster
// would broadcast an invalidation here.
type cache struct {
	mu  sync.RWMutex
	m   map[jid.JID]*room
	max int
}

func newCache(max int) *cache { return &cache{m: map[jid.JID]*room{}, max: max} }

func (c *cache) get(j jid.JID) (*room, bool) {
	c.mu.RLock()
	r, ok := c.m[j]
	c.mu.RUnlock()
	return r, ok
}

// put stores a snapshot, evicting arbitrary others (map order) beyond max.
func (c *cache) put(j jid.JID, r *room) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[j] = r
	for k := range c.m {
		if len(c.m) <= c.max {
			break
		}
		if k != j {
			delete(c.m, k)
		}
	}
}

func (c *cache) drop(j jid.JID) {
	c.mu.Lock()
	delete(c.m, j)
	c.mu.Unlock()
}
