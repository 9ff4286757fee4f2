package load

import (
	"context"
	"time"
)

// Pacer spaces events evenly at a rate, on an open-loop schedule: event
// i is due at start + i/rate whatever happened to the earlier ones, so a
// slow server gets the load it was promised and the lag (how late an
// event went out) is measured rather than hidden.
type Pacer struct {
	start time.Time
	rate  float64 // events per second; <= 0: no pacing (always due)
}

// NewPacer returns a pacer whose event 0 is due at start.
func NewPacer(start time.Time, rate float64) Pacer { return Pacer{start: start, rate: rate} }

// Due returns when event i is due.
func (p Pacer) Due(i int64) time.Time {
	if p.rate <= 0 {
		return p.start
	}
	return p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
}

// Wait blocks until event i is due or ctx is done, and returns how late
// it is then (0 or more) and whether ctx allowed it.
func (p Pacer) Wait(ctx context.Context, i int64) (time.Duration, bool) {
	due := p.Due(i)
	d := time.Until(due)
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, false
		}
	}
	if ctx.Err() != nil {
		return 0, false
	}
	return max(time.Since(due), 0), true
}
