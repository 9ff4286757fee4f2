package storage

import (
	"context"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// ArchiveMessage is one message of an archive (XEP-0313 §3): a user's
// one-to-one history, or a room's.
type ArchiveMessage struct {
	// ID is assigned by the archiving module: unique across archives, and
	// increasing with the time the message was archived (its stamp can be
	// read off it), so that time ranges are ID ranges.
	ID uint64
	// Owner is the bare JID of the archive.
	Owner jid.JID
	// With is the other party: the recipient of an outgoing message, the
	// sender of an incoming one (in a room archive, the sender).
	With jid.JID
	// Outgoing tells a message the owner sent.
	Outgoing bool
	// Stanza is the <message/> serialized as a standalone element.
	Stanza string
}

// ArchiveQuery selects messages of one archive.
type ArchiveQuery struct {
	Owner jid.JID
	// With keeps the messages exchanged with a JID: a bare JID matches
	// all its resources, a full JID only itself (XEP-0313 §4.1.1).
	With jid.JID
	// MinID and MaxID bound the IDs, inclusive; 0 is no bound.
	MinID, MaxID uint64
	// IDs, when not nil, keeps only these messages.
	IDs []uint64
	// Max is the page size (at least 1).
	Max int
	// Last asks for the page at the end of the range (the newest
	// messages) rather than at its start.
	Last bool
}

// ArchivePage is a page of results, oldest first.
type ArchivePage struct {
	Messages []ArchiveMessage
	// Complete tells that no message of the range lies beyond the page in
	// the direction of paging (after it, or before it for Last).
	Complete bool
}

// ArchivePrefs are a user's archiving preferences (XEP-0441): the default
// ("always", "never" or "roster": only contacts in the roster), and the
// JIDs always or never archived.
type ArchivePrefs struct {
	Default       string
	Always, Never []jid.JID
}

// ArchiveStore stores message archives.
type ArchiveStore interface {
	// AppendArchive stores messages in one transaction. Archives need no
	// account (rooms have archives too).
	AppendArchive(ctx context.Context, msgs []ArchiveMessage) error
	// QueryArchive returns a page of the messages q selects.
	QueryArchive(ctx context.Context, q ArchiveQuery) (ArchivePage, error)
	// CountArchive returns how many messages q selects, ignoring Max and
	// Last.
	CountArchive(ctx context.Context, q ArchiveQuery) (int, error)
	// ArchiveMissing returns the ids that owner's archive does not hold
	// (another archive's count as missing), each once, in the order of
	// ids; nil when it holds them all. It looks them up together: a
	// query's 'ids' field names up to 250 messages, any of them unknown
	// making it fail (XEP-0313 §4.1.3); a cursor (after-id, RSM after)
	// is a lookup of one.
	ArchiveMissing(ctx context.Context, owner jid.JID, ids []uint64) ([]uint64, error)
	// ArchiveBounds returns the IDs of the first and last messages of
	// owner's archive (their stamps can be read off them), without
	// reading the messages; ok is false when it is empty (XEP-0313 §5,
	// archive metadata).
	ArchiveBounds(ctx context.Context, owner jid.JID) (first, last uint64, ok bool, err error)
	// RemoveArchive deletes an archive (a destroyed room's; an account's
	// goes with the account).
	RemoveArchive(ctx context.Context, owner jid.JID) error
	// ArchivePrefs returns a user's preferences; ok is false when the
	// user has none stored.
	ArchivePrefs(ctx context.Context, user jid.JID) (prefs ArchivePrefs, ok bool, err error)
	// SetArchivePrefs stores a user's preferences.
	SetArchivePrefs(ctx context.Context, user jid.JID, prefs ArchivePrefs) error
}
