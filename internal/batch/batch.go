// Package batch stores what the message path produces (archived
// messages, inbox updates) in the background, many items per
// transaction, without giving up durability: a caller that must know its
// items are stored (before a stream-management <a/>, before a read) waits
// for them with Wait.
package batch

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Options configure a Writer.
type Options[T any] struct {
	// MaxBatch bounds the items of one call of the store function.
	MaxBatch int
	// MaxQueue bounds the items waiting: Add waits while the queue is
	// full, so that a slow disk slows the senders down rather than
	// filling memory or losing items.
	MaxQueue int
	// Prepare, when set, runs on each item as it is queued, under the
	// writer's lock: items are prepared in queue order (the inbox stamps
	// its updates so that an entry's time never goes back).
	Prepare func(*T)
	// Linger is how long the writer lets items gather before storing
	// them, unless a batch is full or someone waits (Wait): a commit
	// costs about the same for one item as for dozens, so under a steady
	// trickle of messages a few milliseconds of gathering divide the disk
	// work many times over.
	Linger time.Duration
	Log    *slog.Logger
}

// Writer queues items and stores them from one goroutine. The store
// function is called with up to MaxBatch items in queue order; when it
// fails, the same batch is tried again with a growing pause (a store that
// must drop some items, rather than retry, does so itself and returns nil).
type Writer[T any] struct {
	store func(ctx context.Context, items []T) error
	opts  Options[T]

	mu       sync.Mutex
	queue    []T
	queued   uint64        // items ever queued
	stored   uint64        // items ever stored
	progress chan struct{} // closed and replaced when stored grows
	space    *sync.Cond    // signalled when the queue shrinks
	closed   bool
	waiting  int // callers in Wait

	wake   chan struct{} // something was queued
	urgent chan struct{} // someone waits, or the writer closes
	done   chan struct{}
}

// New starts a writer.
func New[T any](store func(ctx context.Context, items []T) error, opts Options[T]) *Writer[T] {
	opts.MaxBatch = max(opts.MaxBatch, 1)
	opts.MaxQueue = max(opts.MaxQueue, opts.MaxBatch)
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	w := &Writer[T]{store: store, opts: opts, progress: make(chan struct{}), wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1), done: make(chan struct{})}
	w.space = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Add queues items, waiting while the queue is full. After Close it
// stores them itself before returning.
func (w *Writer[T]) Add(items ...T) {
	w.mu.Lock()
	for len(w.queue) >= w.opts.MaxQueue && !w.closed {
		w.space.Wait()
	}
	if w.opts.Prepare != nil {
		for i := range items {
			w.opts.Prepare(&items[i])
		}
	}
	if w.closed {
		w.mu.Unlock()
		w.storeBatch(items, true)
		return
	}
	w.queue = append(w.queue, items...)
	w.queued += uint64(len(items))
	full := len(w.queue) >= w.opts.MaxBatch
	w.mu.Unlock()
	signal(w.wake)
	if full {
		signal(w.urgent) // a full batch does not linger
	}
}

// Wait returns once everything queued before the call is stored, or
// with ctx's error when ctx ends first.
func (w *Writer[T]) Wait(ctx context.Context) error {
	w.mu.Lock()
	target := w.queued
	if w.stored < target {
		w.waiting++
		defer func() { w.mu.Lock(); w.waiting--; w.mu.Unlock() }()
		// A lingering writer stores at once for a waiter.
		signal(w.urgent)
	}
	for w.stored < target {
		ch := w.progress
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

// Close stores what is queued and ends the writer's goroutine.
func (w *Writer[T]) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.space.Broadcast()
	w.mu.Unlock()
	signal(w.wake)
	signal(w.urgent)
	<-w.done
}

func (w *Writer[T]) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 {
			if w.closed {
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			select {
			case <-w.wake:
			case <-w.urgent:
			}
			w.mu.Lock()
		}
		if w.opts.Linger > 0 && len(w.queue) < w.opts.MaxBatch && w.waiting == 0 && !w.closed {
			w.mu.Unlock()
			w.linger()
			w.mu.Lock()
		}
		batch := w.queue[:min(len(w.queue), w.opts.MaxBatch)]
		w.mu.Unlock()

		w.storeBatch(batch, false)

		w.mu.Lock()
		n := copy(w.queue, w.queue[len(batch):])
		clear(w.queue[n:])
		w.queue = w.queue[:n]
		w.stored += uint64(len(batch))
		close(w.progress)
		w.progress = make(chan struct{})
		w.space.Broadcast()
		w.mu.Unlock()
	}
}

// linger waits for Linger, or less when a Wait or Close comes.
func (w *Writer[T]) linger() {
	t := time.NewTimer(w.opts.Linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.urgent:
	}
}

// signal wakes whoever listens on ch, without waiting.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// storeBatch stores items, trying again until it works: nothing queued
// is dropped while the process lives. After Close (last is true, or the
// writer closed while it retried, after a few tries) a failure is logged
// and given up, so that shutdown ends.
func (w *Writer[T]) storeBatch(items []T, last bool) {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		// Not a caller's context: what was queued is stored even while
		// the server stops.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := w.store(ctx, items)
		cancel()
		if err == nil {
			return
		}
		if last || attempt >= 5 && w.isClosed() {
			w.opts.Log.Error("storing failed; giving up", "items", len(items), "error", err)
			return
		}
		w.opts.Log.Error("storing failed; retrying", "items", len(items), "error", err, "in", backoff)
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (w *Writer[T]) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}
