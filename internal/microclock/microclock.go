// Package microclock hands out times to the microsecond, each later than
// the one before, whatever the wall clock does: the archive's IDs and the
// inbox's update stamps are such times.
package microclock

import (
	"sync"
	"time"
)

// A Clock hands out strictly increasing times to the microsecond, in UTC.
// A clock that stands still or steps back gets the last time plus 1 µs.
// The zero Clock is ready to use; it is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	last time.Time
}

// Next returns now truncated to the microsecond, or the last time handed
// out plus 1 µs if that is not later.
func (c *Clock) Next(now time.Time) time.Time {
	t := now.UTC().Truncate(time.Microsecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.After(c.last) {
		t = c.last.Add(time.Microsecond)
	}
	c.last = t
	return t
}
