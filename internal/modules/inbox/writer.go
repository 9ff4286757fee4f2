package inbox

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
)

// Write modes (config writes).
const (
	// WritesBatch: the message path queues its writes; one goroutine
	// commits what is queued in one transaction. Nothing the server
	// acknowledged is lost: the BeforeAck hook waits until what was
	// queued is committed before a stream management <a/> goes out, and
	// every read (a fetch, an entry's properties) waits for the queue
	// first, so a client always sees its own messages.
	WritesBatch = "batch"
	// WritesSync: each write is committed in the hook, before the
	// message is delivered.
	WritesSync = "sync"
)

// maxBatch bounds one transaction.
const maxBatch = 512

// maxQueue bounds the writes waiting: past it, the goroutine that queues
// waits until its own writes are committed, so that a stalled database
// slows the message path down instead of filling memory.
const maxQueue = 8192

// writer commits inbox writes in batches. The sequence numbers count
// writes: queued is the last one queued, done the last one committed (or
// given up on), so waiting for "everything queued so far" is waiting for
// done ≥ queued-at-the-time.
type writer struct {
	store Store
	log   *slog.Logger

	mu      sync.Mutex
	queue   []storage.InboxOp
	queued  uint64
	done    uint64
	changed chan struct{} // closed and replaced when done moves
	stopped bool

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

func newWriter(store Store, log *slog.Logger) *writer {
	w := &writer{store: store, log: log, changed: make(chan struct{}), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	w.wg.Add(1)
	go w.run()
	return w
}

// add queues writes, giving the updates their stamps (from stamp) in
// queue order, so that the entry's time never goes back. After close they
// are applied at once.
func (w *writer) add(stamp func() time.Time, ops ...storage.InboxOp) {
	w.mu.Lock()
	for i := range ops {
		if ops[i].Kind == storage.InboxOpUpdate {
			ops[i].Update.Stamp = stamp()
		}
	}
	if w.stopped {
		w.mu.Unlock()
		w.apply(ops)
		return
	}
	w.queue = append(w.queue, ops...)
	w.queued += uint64(len(ops))
	full := len(w.queue) > maxQueue
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	if full {
		w.sync(context.Background())
	}
}

// sync waits until everything queued before the call is committed, or
// ctx ends.
func (w *writer) sync(ctx context.Context) {
	w.mu.Lock()
	target := w.queued
	for w.done < target {
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
}

// run is the writer goroutine; it ends when close is called, after
// committing what is queued.
func (w *writer) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			w.flush()
			return
		}
		w.flush()
	}
}

// flush commits the queue, maxBatch writes per transaction.
func (w *writer) flush() {
	for {
		w.mu.Lock()
		n := min(len(w.queue), maxBatch)
		if n == 0 {
			w.mu.Unlock()
			return
		}
		batch := w.queue[:n:n]
		w.queue = w.queue[n:]
		if len(w.queue) == 0 {
			w.queue = nil
		}
		w.mu.Unlock()

		w.apply(batch)

		w.mu.Lock()
		w.done += uint64(n)
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}

// apply commits a batch; when the transaction fails, each write is tried
// alone so that one bad write does not take the others with it.
func (w *writer) apply(batch []storage.InboxOp) {
	// Not the server's context: what was queued is written even while
	// the server stops.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := w.store.ApplyInbox(ctx, batch)
	if err == nil || len(batch) == 1 {
		if err != nil {
			w.log.Error("inbox: write lost", "error", err)
		}
		return
	}
	w.log.Warn("inbox: batch failed, writing one by one", "writes", len(batch), "error", err)
	for _, op := range batch {
		if err := w.store.ApplyInbox(ctx, []storage.InboxOp{op}); err != nil {
			w.log.Error("inbox: write lost", "user", op.Update.Owner.String(), "with", op.Update.With.String(), "error", err)
		}
	}
}

// close commits what is queued and ends the goroutine; later writes are
// applied at once.
func (w *writer) close() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	close(w.stop)
	w.wg.Wait()
}
