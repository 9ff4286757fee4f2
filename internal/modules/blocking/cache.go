package blocking

import (
	"sync"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// list is a snapshot of a block list; it is never modified once built, so
// readers use it without a lock.
type list struct {
	items []jid.JID // in blocking order, for the blocklist result
	set   map[jid.JID]struct{}
}

var emptyList = &list{}

func newList(items []jid.JID) *list {
	if len(items) == 0 {
		return emptyList
	}
	l := &list{items: items, set: make(map[jid.JID]struct{}, len(items))}
	for _, j := range items {
		l.set[j] = struct{}{}
	}
	return l
}

// blocks applies the matching rules of XEP-0191 §6 (those of XEP-0016
// §2.1 without subdomains) to addr, the other party of a stanza: an item
// user@domain/resource matches only that full JID; user@domain matches
// it and any of its resources; domain/resource matches only itself;
// domain matches the domain, any user@domain and any JID at the domain
// with a resource. So addr is blocked if the list holds addr itself, its
// bare JID or its domain.
func (l *list) blocks(addr jid.JID) bool {
	if len(l.set) == 0 || addr.IsZero() {
		return false
	}
	if _, ok := l.set[addr]; ok {
		return true
	}
	if !addr.IsBare() {
		if _, ok := l.set[addr.Bare()]; ok {
			return true
		}
	}
	if addr.Local() != "" || !addr.IsBare() {
		if _, ok := l.set[addr.Domainpart()]; ok {
			return true
		}
	}
	return false
}

// cache holds the block lists read on every stanza to or from a local
// user. Lists are loaded lazily; the list of a user whose last session
// closes is dropped, and lists of users without a session (loaded for
// stanzas to offline users, or sent on their behalf) are evicted when the
// cache holds more than max lists. The lists of connected users are
// never evicted, so the cache may exceed max when more users than that
// are connected.
type cache struct {
	mu     sync.RWMutex
	m      map[jid.JID]*list
	max    int
	online func(user jid.JID) bool
	// scanAbove is the size above which put looks for lists to evict:
	// max, or more when the last scan could not get below it (too many
	// connected users), so that scans stay max/8 (at least 16) insertions apart.
	scanAbove int
}

func newCache(max int, online func(jid.JID) bool) *cache {
	return &cache{m: map[jid.JID]*list{}, max: max, online: online, scanAbove: max}
}

func (c *cache) get(user jid.JID) (*list, bool) {
	c.mu.RLock()
	l, ok := c.m[user]
	c.mu.RUnlock()
	return l, ok
}

// put stores user's list, evicting lists of users without a session if
// the cache is over its size (never user's own, just stored).
func (c *cache) put(user jid.JID, l *list) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[user] = l
	if len(c.m) <= c.scanAbove {
		return
	}
	// Evict down to 7/8 of max.
	target := c.max - c.max/8
	for u := range c.m {
		if len(c.m) <= target {
			break
		}
		if u != user && !c.online(u) {
			delete(c.m, u)
		}
	}
	c.scanAbove = max(c.max, len(c.m)+max(c.max/8, 16))
}

func (c *cache) drop(user jid.JID) {
	c.mu.Lock()
	delete(c.m, user)
	c.mu.Unlock()
}

func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
