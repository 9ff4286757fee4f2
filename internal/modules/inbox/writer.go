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
	return batch.New(func(ctx context.Context, ops []storage.InboxOp) error {
		applyEach(ctx, store, log, ops)
		return nil
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

// applyEach commits a batch; when the transaction fails, each write is
// tried alone so that one bad write does not take the others with it.
func applyEach(ctx context.Context, store Store, log *slog.Logger, ops []storage.InboxOp) {
	err := store.ApplyInbox(ctx, ops)
	if err == nil || len(ops) == 1 {
		if err != nil {
			log.Error("inbox: write lost", "error", err)
		}
		return
	}
	log.Warn("inbox: batch failed, writing one by one", "writes", len(ops), "error", err)
	for _, op := range ops {
		if err := store.ApplyInbox(ctx, []storage.InboxOp{op}); err != nil {
			log.Error("inbox: write lost", "user", op.Update.Owner.String(), "with", op.Update.With.String(), "error", err)
		}
	}
}
