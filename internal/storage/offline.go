package storage

import (
	"context"
	"errors"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// ErrOfflineFull: the user's offline queue holds as many messages (or
// bytes) as it may; nothing was stored.
var ErrOfflineFull = errors.New("storage: offline message queue full")

// OfflineMessage is a message stored for an account that had no available
// resource to take it (XEP-0160).
type OfflineMessage struct {
	// ID is assigned by the store; IDs increase in the order messages
	// were stored, which is the order they are delivered in.
	ID int64
	// Stored is when the message was stored, with millisecond precision:
	// the stamp of the <delay/> added on delivery (XEP-0203).
	Stored time.Time
	// From is the sender (for the administration commands).
	From jid.JID
	// Stanza is the <message/> serialized as a standalone element.
	Stanza string
}

// OfflineLimits bound one account's queue; zero fields mean no limit.
type OfflineLimits struct {
	MaxMessages int
	MaxBytes    int // total size of the serialized stanzas
}

// OfflineCount is the number of messages stored for an account.
type OfflineCount struct {
	User  jid.JID
	Count int
}

// OfflineStore stores offline messages (XEP-0160).
//
// Delivery is claim, deliver, delete: ClaimOffline marks the account's
// messages with a claim token in one transaction, so that two sessions
// logging in at once never get the same message; the claimer delivers
// them and deletes them with DeleteClaimedOffline, or gives them back
// with ReleaseOffline. A claim older than the staleBefore passed to
// ClaimOffline (its holder crashed) can be claimed again.
type OfflineStore interface {
	// PushOffline appends msg to the account's queue and sets msg.ID.
	// When the queue would exceed lim nothing is stored and the error is
	// ErrOfflineFull; when the account does not exist (it may just have
	// been removed) it is ErrNotFound.
	PushOffline(ctx context.Context, user jid.JID, msg *OfflineMessage, lim OfflineLimits) error
	// ClaimOffline claims the account's messages that are not claimed, or
	// whose claim was made before staleBefore, with the token claim and
	// returns them in the order they were stored.
	ClaimOffline(ctx context.Context, user jid.JID, claim string, staleBefore time.Time) ([]OfflineMessage, error)
	// DeleteClaimedOffline deletes the messages claimed with claim and
	// returns how many there were.
	DeleteClaimedOffline(ctx context.Context, user jid.JID, claim string) (int, error)
	// DeleteClaimedOfflineThrough deletes the messages claimed with claim
	// whose ID is at most lastID (those delivered before a delivery
	// stopped), and returns how many there were.
	DeleteClaimedOfflineThrough(ctx context.Context, user jid.JID, claim string, lastID int64) (int, error)
	// ReleaseOffline gives the messages claimed with claim back to the queue.
	ReleaseOffline(ctx context.Context, user jid.JID, claim string) error
	// ReleaseAllOfflineClaims gives every claimed message back (at start,
	// when no delivery can be running).
	ReleaseAllOfflineClaims(ctx context.Context) error

	// OfflineCount returns the number of messages stored for an account.
	OfflineCount(ctx context.Context, user jid.JID) (int, error)
	// OfflineCounts returns the accounts of a domain ("" for all) that
	// have messages stored, with their counts, sorted by domain and then
	// user.
	OfflineCounts(ctx context.Context, domain string) ([]OfflineCount, error)
	// PurgeOffline deletes an account's messages and returns how many.
	PurgeOffline(ctx context.Context, user jid.JID) (int, error)
	// PurgeAllOffline deletes the messages of every account of a domain
	// ("" for all) and returns how many.
	PurgeAllOffline(ctx context.Context, domain string) (int, error)
}
