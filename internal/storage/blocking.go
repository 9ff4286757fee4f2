package storage

import (
	"context"
	"errors"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// ErrBlocklistFull: blocking the JIDs would take the block list over its
// limit; nothing was changed.
var ErrBlocklistFull = errors.New("storage: block list full")

// BlockingStore stores block lists (XEP-0191): per account, the JIDs it
// blocked, in the order it blocked them. A JID is stored as normalized
// (RFC 7622) and may be a full JID, a bare JID, a domain or a
// domain/resource (XEP-0191 §6).
type BlockingStore interface {
	// BlockList returns the account's blocked JIDs in the order they were
	// blocked (empty, not an error, when there are none).
	BlockList(ctx context.Context, user jid.JID) ([]jid.JID, error)
	// BlockJIDs adds the JIDs not blocked yet and returns the block list
	// as it is after the change, in one transaction. When the list would
	// then hold more than max JIDs (max > 0) nothing is changed and the
	// error is ErrBlocklistFull; when the account does not exist it is
	// ErrNotFound.
	BlockJIDs(ctx context.Context, user jid.JID, jids []jid.JID, max int) ([]jid.JID, error)
	// UnblockJIDs removes the JIDs (those not blocked are ignored) and
	// returns the block list as it is after the change.
	UnblockJIDs(ctx context.Context, user jid.JID, jids []jid.JID) ([]jid.JID, error)
	// UnblockAll empties the account's block list and returns what it held.
	UnblockAll(ctx context.Context, user jid.JID) ([]jid.JID, error)
}
