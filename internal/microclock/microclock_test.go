package microclock

import (
	"sync"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	var c Clock
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.FixedZone("X", 3600))
	us := t0.UTC().Truncate(time.Microsecond)
	for _, step := range []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"first", t0, us},
		{"clock stands still", t0, us.Add(time.Microsecond)},
		{"within the same microsecond", t0.Add(500 * time.Nanosecond), us.Add(2 * time.Microsecond)},
		{"clock steps back", t0.Add(-time.Second), us.Add(3 * time.Microsecond)},
		{"time goes on", t0.Add(time.Second), us.Add(time.Second)},
		{"and stands still again", t0.Add(time.Second), us.Add(time.Second + time.Microsecond)},
	} {
		got := c.Next(step.now)
		if !got.Equal(step.want) || got.Location() != time.UTC {
			t.Errorf("%s: Next = %v, want %v in UTC", step.name, got, step.want)
		}
	}
}

// TestNextConcurrent: goroutines asking at once under a clock that stands
// still get distinct times, each goroutine's increasing, and together
// exactly the next n microseconds.
func TestNextConcurrent(t *testing.T) {
	const goroutines, each = 8, 500
	var c Clock
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := make([][]time.Time, goroutines)
	var wg sync.WaitGroup
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				got[g] = append(got[g], c.Next(now))
			}
		}()
	}
	wg.Wait()
	seen := make(map[int64]bool) // by UnixMicro
	for g, ts := range got {
		for i, ts1 := range ts {
			if i > 0 && !ts1.After(ts[i-1]) {
				t.Fatalf("goroutine %d: %v after %v", g, ts1, ts[i-1])
			}
			seen[ts1.UnixMicro()] = true
		}
	}
	for i := range goroutines * each {
		if want := now.Add(time.Duration(i) * time.Microsecond); !seen[want.UnixMicro()] {
			t.Fatalf("%v not handed out (%d distinct times)", want, len(seen))
		}
	}
	if len(seen) != goroutines*each {
		t.Fatalf("%d distinct times, want %d", len(seen), goroutines*each)
	}
}
