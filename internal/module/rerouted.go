package module

import (
	"context"
	"time"
)

type reroutedKey struct{}

// WithRerouted marks ctx as routing a message again: one that a session
// had received but not acknowledged when it ended without resumption
// (XEP-0198 §4), now sent to the account's bare JID. first is when it was
// first routed to that session: the stamp of its <delay/> (XEP-0198 §4,
// XEP-0203) wherever it ends up, offline storage included. The message
// was archived the first time; it carries that stanza ID (XEP-0359).
// Only the server sets this, never from what a client sent.
func WithRerouted(ctx context.Context, first time.Time) context.Context {
	return context.WithValue(ctx, reroutedKey{}, first)
}

// Rerouted tells whether ctx routes a message again (WithRerouted), and
// when it was first routed.
func Rerouted(ctx context.Context) (first time.Time, ok bool) {
	first, ok = ctx.Value(reroutedKey{}).(time.Time)
	return first, ok
}
