package storage

import (
	"context"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// Subscription is the subscription state of a roster item (RFC 6121 §2.1.2.5).
type Subscription string

const (
	SubNone Subscription = "none"
	SubTo   Subscription = "to"   // the user receives the contact's presence
	SubFrom Subscription = "from" // the contact receives the user's presence
	SubBoth Subscription = "both"
)

// RosterItem is one contact of a user's roster, with the full subscription
// state of RFC 6121 Appendix A (the pending flags are not all visible in
// the roster: PendingIn is not, PendingOut is the 'ask' attribute).
type RosterItem struct {
	Contact      jid.JID // bare JID
	Name         string
	Groups       []string
	Subscription Subscription
	// PendingOut: the user asked to subscribe to the contact (ask='subscribe').
	PendingOut bool
	// PendingIn: the contact asked to subscribe to the user, who has not
	// answered yet; InboundRequest is that presence stanza, serialized,
	// to deliver again at the user's next login (RFC 6121 §3.1.3).
	PendingIn      bool
	InboundRequest string
	// PreApproved: the user pre-approved a subscription request from the
	// contact (RFC 6121 §3.4).
	PreApproved bool
	// Version is the roster version at which the item last changed.
	Version int64
}

// RosterStore stores rosters with versions (RFC 6121 §2.6). A roster's
// version is a counter per user, raised by every change; deleted items
// leave a tombstone so that changes since a version can be listed.
type RosterStore interface {
	// Roster returns every item of the user's roster and its version.
	Roster(ctx context.Context, user jid.JID) ([]RosterItem, int64, error)
	// RosterItem returns one item; ErrNotFound if absent.
	RosterItem(ctx context.Context, user, contact jid.JID) (RosterItem, error)
	// PutRosterItem adds or replaces an item, gives it the next version
	// and returns that version.
	PutRosterItem(ctx context.Context, user jid.JID, item RosterItem) (int64, error)
	// DeleteRosterItem removes an item (ErrNotFound if absent) and returns
	// the new version.
	DeleteRosterItem(ctx context.Context, user, contact jid.JID) (int64, error)
	// RosterChanges returns the items changed and the contacts removed
	// after version since, and the current version; ok is false when the
	// changes since that version are not known any more (or since is
	// ahead), in which case the caller sends the whole roster.
	RosterChanges(ctx context.Context, user jid.JID, since int64) (changed []RosterItem, removed []jid.JID, current int64, ok bool, err error)
	// RosterSize returns the number of items in the user's roster.
	RosterSize(ctx context.Context, user jid.JID) (int, error)
	// ContactsOf returns the users (bare JIDs) that have contact in their
	// roster, for cleaning up after an account is removed.
	ContactsOf(ctx context.Context, contact jid.JID) ([]jid.JID, error)
}
