package batch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// flakyStore fails its first calls, records what it stores, and can be
// held shut to let the queue fill.
type flakyStore struct {
	mu       sync.Mutex
	failures int
	batches  [][]int
	gate     chan struct{}
	stored   chan int // when set, gets the size of each batch stored
}

func (s *flakyStore) store(_ context.Context, items []int) error {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return errors.New("disk on fire")
	}
	s.batches = append(s.batches, append([]int(nil), items...))
	if s.stored != nil {
		s.stored <- len(items)
	}
	return nil
}

func (s *flakyStore) all() (items []int, batches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.batches {
		items = append(items, b...)
	}
	return items, len(s.batches)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRetriesInOrderAndWaitMeansStored(t *testing.T) {
	st := &flakyStore{failures: 2}
	w := New(st.store, Options[int]{MaxBatch: 10, MaxQueue: 100, Log: quiet})
	defer w.Close()
	for i := range 25 {
		w.Add(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	items, batches := st.all()
	if len(items) != 25 {
		t.Fatalf("stored %d items, want 25", len(items))
	}
	for i, v := range items {
		if v != i {
			t.Fatalf("stored out of order: %v", items)
		}
	}
	if batches < 3 {
		t.Errorf("%d batches: MaxBatch not honoured", batches)
	}
}

func TestFullQueueWaitsAndCloseStores(t *testing.T) {
	st := &flakyStore{gate: make(chan struct{})}
	w := New(st.store, Options[int]{MaxBatch: 2, MaxQueue: 4, Log: quiet})
	for i := range 4 {
		w.Add(i)
	}
	added := make(chan struct{})
	go func() {
		w.Add(4, 5)
		close(added)
	}()
	select {
	case <-added:
		t.Fatal("Add on a full queue did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if err := w.Wait(ctx); err == nil {
		t.Error("Wait returned before anything was stored")
	}
	cancel()
	close(st.gate) // the disk is back
	<-added
	w.Close()
	if items, _ := st.all(); len(items) != 6 {
		t.Errorf("Close left items unstored: %v", items)
	}
	// After Close, Add stores at once.
	w.Add(6)
	if items, _ := st.all(); len(items) != 7 || items[6] != 6 {
		t.Errorf("Add after Close: %v", items)
	}
	w.Close() // twice is fine
}

func TestPrepareRunsInQueueOrder(t *testing.T) {
	st := &flakyStore{}
	n := 0
	w := New(st.store, Options[int]{MaxBatch: 3, MaxQueue: 1000, Log: quiet, Prepare: func(v *int) { n++; *v = n }})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				w.Add(0, 0)
			}
		}()
	}
	wg.Wait()
	w.Close()
	items, _ := st.all()
	if len(items) != 800 {
		t.Fatalf("%d items", len(items))
	}
	for i, v := range items {
		if v != i+1 {
			t.Fatalf("item %d prepared as %d: queue order and preparation order differ", i, v)
		}
	}
}

func TestCloseGivesUpOnABrokenStore(t *testing.T) {
	st := &flakyStore{failures: 1 << 30}
	w := New(st.store, Options[int]{MaxBatch: 10, MaxQueue: 10, Log: quiet})
	w.Add(1)
	done := make(chan struct{})
	go func() { w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close never returned with a store that always fails")
	}
}

// TestCloseGivesUpWhenClosedLate: Close comes after the writer has
// already tried a few times; it still gives up at its next failure.
func TestCloseGivesUpWhenClosedLate(t *testing.T) {
	calls := make(chan struct{}, 100)
	w := New(func(context.Context, []int) error {
		calls <- struct{}{}
		return errors.New("disk on fire")
	}, Options[int]{MaxBatch: 10, MaxQueue: 10, Log: quiet})
	w.Add(1)
	for range 6 {
		<-calls
	}
	done := make(chan struct{})
	go func() { w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close never returned when the store had failed 6 times before it")
	}
}

func TestLingerGathersAndWaitCutsItShort(t *testing.T) {
	st := &flakyStore{stored: make(chan int, 10)}
	w := New(st.store, Options[int]{MaxBatch: 100, MaxQueue: 1000, Linger: time.Hour, Log: quiet})
	defer w.Close()
	for i := range 10 {
		w.Add(i)
	}
	// Nothing is stored while the writer lingers…
	if items, _ := st.all(); len(items) != 0 {
		t.Fatalf("stored %v before anyone waited", items)
	}
	// …until someone waits: then at once, in one batch.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if items, batches := st.all(); len(items) != 10 || batches != 1 {
		t.Errorf("stored %v in %d batches, want 10 items in 1", items, batches)
	}
	<-st.stored
	// A full batch does not linger either.
	for i := range 100 {
		w.Add(i)
	}
	select {
	case n := <-st.stored:
		if n != 100 {
			t.Errorf("a batch of %d, want the full 100", n)
		}
	case <-ctx.Done():
		t.Fatal("a full batch waited for the linger")
	}
}
