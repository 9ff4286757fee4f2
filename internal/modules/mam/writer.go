package mam

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
)

// writer stores archived messages in the background, many per
// transaction, so that archiving costs the message path an append to a
// queue. Durability: a message is in the queue before it is delivered,
// and the server acknowledges a client's stanzas (XEP-0198 <a/>) only
// after waitDurable for everything queued so far (the BeforeAck hook), so
// a message the server acknowledged is on disk; Stop writes what is left.
// A crash can lose only messages never acknowledged, which a client
// with stream management sends again.
type writer struct {
	store    appender
	log      *slog.Logger
	maxBatch int
	maxQueue int

	mu        sync.Mutex
	queue     []storage.ArchiveMessage
	queued    uint64        // sequence number of the last message queued
	committed uint64        // of the last one stored
	space     *sync.Cond    // signalled when the queue shrinks
	progress  chan struct{} // closed and replaced at each commit
	wake      chan struct{}
	stopping  bool
	done      chan struct{}
}

type appender interface {
	AppendArchive(ctx context.Context, msgs []storage.ArchiveMessage) error
}

func newWriter(store appender, log *slog.Logger, maxBatch, maxQueue int) *writer {
	w := &writer{store: store, log: log, maxBatch: maxBatch, maxQueue: maxQueue,
		progress: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.space = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// enqueue queues messages; when the queue is full (the disk cannot keep
// up) it waits: slowing senders down beats losing what they sent.
func (w *writer) enqueue(msgs ...storage.ArchiveMessage) {
	w.mu.Lock()
	for len(w.queue) >= w.maxQueue && !w.stopping {
		w.space.Wait()
	}
	w.queue = append(w.queue, msgs...)
	w.queued += uint64(len(msgs))
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// waitDurable returns once everything queued before the call is stored,
// or when ctx ends.
func (w *writer) waitDurable(ctx context.Context) error {
	w.mu.Lock()
	target := w.queued
	for w.committed < target {
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

func (w *writer) run() {
	defer close(w.done)
	backoff := 10 * time.Millisecond
	for {
		w.mu.Lock()
		for len(w.queue) == 0 {
			if w.stopping {
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		batch := w.queue[:min(len(w.queue), w.maxBatch)]
		w.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := w.store.AppendArchive(ctx, batch)
		cancel()
		if err != nil {
			// Keep the batch and try again: the messages are not lost
			// while the process lives, and senders wait on a full queue.
			w.log.Error("archiving failed; retrying", "messages", len(batch), "error", err, "in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		w.mu.Lock()
		n := copy(w.queue, w.queue[len(batch):])
		clear(w.queue[n:])
		w.queue = w.queue[:n]
		w.committed += uint64(len(batch))
		close(w.progress)
		w.progress = make(chan struct{})
		w.space.Broadcast()
		w.mu.Unlock()
	}
}

// stop writes what is queued and ends the writer.
func (w *writer) stop() {
	w.mu.Lock()
	w.stopping = true
	w.space.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}
