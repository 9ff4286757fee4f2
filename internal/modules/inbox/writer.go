package inbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/batch"
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
// waits, so that a stalled database slows the message path down instead
// of filling memory.
const maxQueue = 8192

// newWriter starts the batch writer of the inbox (internal/batch): it
// gives the updates their stamps (from stamp) in queue order, so that an
// entry's time never goes back, and commits up to maxBatch writes per
// transaction.
func newWriter(store Store, log *slog.Logger, linger time.Duration, stamp func() time.Time) *batch.Writer[storage.InboxOp] {
	var r retries
	return batch.New(func(ctx context.Context, ops []storage.InboxOp) error {
		return r.apply(ctx, store, log, ops)
	}, batch.Options[storage.InboxOp]{
		MaxBatch: maxBatch,
		MaxQueue: maxQueue,
		Linger:   linger,
		Log:      log,
		Prepare: func(op *storage.InboxOp) {
			if op.Kind == storage.InboxOpUpdate {
				op.Update.Stamp = stamp()
			}
		},
	})
}

// maxAttempts bounds how often a batch of which no write went through is
// tried (the batch writer waits longer each time).
const maxAttempts = 5

// retries counts the attempts at one batch; only the writer's goroutine
// uses it.
type retries struct {
	batch    *storage.InboxOp // the first op of the batch being tried
	attempts int
}

// apply commits a batch; when the transaction fails, each write is tried
// alone, so that one bad write does not take the others with it. When
// none went through — the database, not a write, is failing — the error
// goes back to the batch writer, which tries the batch again (nothing of
// it was applied, so nothing is counted twice), up to maxAttempts times.
func (r *retries) apply(ctx context.Context, store Store, log *slog.Logger, ops []storage.InboxOp) error {
	if len(ops) == 0 {
		return nil
	}
	if &ops[0] != r.batch {
		r.batch, r.attempts = &ops[0], 0
	}
	r.attempts++
	err := store.ApplyInbox(ctx, ops)
	if err == nil {
		return nil
	}
	failed := ops
	if len(ops) > 1 {
		log.Warn("inbox: batch failed, writing one by one", "writes", len(ops), "error", err)
		failed = nil
		for _, op := range ops {
			if err = store.ApplyInbox(ctx, []storage.InboxOp{op}); err != nil {
				failed = append(failed, op)
			}
		}
	}
	if len(failed) == len(ops) && r.attempts < maxAttempts {
		return err
	}
	for _, op := range failed {
		log.Error("inbox: write lost", "user", op.Update.Owner.String(), "with", op.Update.With.String(), "error", err)
	}
	return nil
}
