package storage

import (
	"context"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// Inbox boxes every backend knows (the inbox module may configure more:
// a box is any name but "all").
const (
	BoxInbox   = "inbox"
	BoxArchive = "archive"
	BoxBin     = "bin"
)

// InboxEntry is one conversation of a user's inbox (MongooseIM's Inbox,
// erlang-solutions.com:xmpp:inbox:0): the last message exchanged with a
// peer (a bare JID) or in a room, its time, the unread count, the box it is
// filed in and when a mute ends.
type InboxEntry struct {
	Owner jid.JID // the user, a bare JID
	With  jid.JID // the peer or the room, a bare JID
	// Message is the last message, serialized as a standalone element.
	Message string
	// Stamp is when the last message was handled, to the microsecond;
	// entries are ordered by it.
	Stamp  time.Time
	Unread int
	Box    string
	// MutedUntil is when the mute ends; zero when never muted.
	MutedUntil time.Time
}

// InboxUnread says what a new last message does to the unread count.
type InboxUnread uint8

const (
	// UnreadIncrement: a message received; the count goes up by one.
	UnreadIncrement InboxUnread = iota
	// UnreadReset: a message the user sent; the conversation is read.
	UnreadReset
	// UnreadKeep: the count does not change (the user's own message
	// coming back from a room).
	UnreadKeep
)

// InboxUpdate is a new last message for one entry. An entry in the
// archive or the bin moves back to the inbox; one in another box stays
// there.
type InboxUpdate struct {
	Owner, With jid.JID
	Message     string
	// MessageIDs are the ids a chat marker may use to point at the
	// message (its id, origin-id and stanza-ids; see InboxOpReset).
	MessageIDs []string
	Stamp      time.Time
	Unread     InboxUnread
}

// InboxQuery selects entries of one inbox.
type InboxQuery struct {
	Owner jid.JID
	// Box keeps the entries of one box; "" keeps every box but the bin,
	// AllBoxes every box.
	Box      string
	AllBoxes bool
	// Start and End bound the stamps, inclusive; zero is no bound.
	Start, End time.Time
	// After and Before bound the stamps, exclusive (RSM markers).
	After, Before time.Time
	// UnreadOnly keeps entries with unread messages.
	UnreadOnly bool
	// Ascending orders oldest first; the default is newest first.
	Ascending bool
	// Max is the most entries returned, from the front of the order
	// (0: no limit).
	Max int
}

// InboxProperties change an entry; nil fields are left as they are.
type InboxProperties struct {
	Box *string
	// Read true sets the unread count to 0; false sets it to 1 when it
	// was 0 and leaves it otherwise.
	Read *bool
	// MutedUntil sets the end of the mute (the zero time unmutes).
	MutedUntil *time.Time
}

// InboxOpKind is the kind of an InboxOp.
type InboxOpKind uint8

const (
	// InboxOpUpdate is a new last message (Update): it creates or
	// updates the entry.
	InboxOpUpdate InboxOpKind = iota
	// InboxOpReset sets the unread count of an entry to 0 when MarkerID
	// is "" or one of the MessageIDs of its last message (a chat marker
	// for an older message leaves newer ones unread); nothing when there
	// is no entry.
	InboxOpReset
	// InboxOpRemove deletes an entry; nothing when there is none.
	InboxOpRemove
)

// InboxOp is one write of a batch (ApplyInbox): Update.Owner and
// Update.With name the entry for every kind.
type InboxOp struct {
	Kind     InboxOpKind
	Update   InboxUpdate
	MarkerID string // InboxOpReset
}

// InboxStore stores inboxes. Entries need no account on the peer's side;
// a user's inbox goes when the account is removed.
type InboxStore interface {
	// ApplyInbox applies writes in order, in one transaction: all or
	// none are committed when it returns.
	ApplyInbox(ctx context.Context, ops []InboxOp) error
	// QueryInbox returns the entries q selects, in the requested order.
	QueryInbox(ctx context.Context, q InboxQuery) ([]InboxEntry, error)
	// CountInbox returns how many entries q selects, ignoring Max.
	CountInbox(ctx context.Context, q InboxQuery) (int, error)
	// InboxEntry returns one entry; ErrNotFound.
	InboxEntry(ctx context.Context, owner, with jid.JID) (InboxEntry, error)
	// SetInboxProperties changes an entry and returns it as it is after
	// the change, in one transaction; ErrNotFound. now is the time of a
	// box change (an entry's age in the bin counts from it).
	SetInboxProperties(ctx context.Context, owner, with jid.JID, p InboxProperties, now time.Time) (InboxEntry, error)
	// RemoveInbox deletes a user's whole inbox (RemoveAccount does it too).
	RemoveInbox(ctx context.Context, owner jid.JID) error
	// EmptyInboxBin deletes the user's entries in the bin and returns
	// how many there were.
	EmptyInboxBin(ctx context.Context, owner jid.JID) (int, error)
	// PurgeInboxBin deletes, in every inbox, the entries put in the bin
	// before a time, and returns how many.
	PurgeInboxBin(ctx context.Context, before time.Time) (int, error)
}
