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

// HasTo reports whether the user is subscribed to the contact (to, both).
func (s Subscription) HasTo() bool { return s == SubTo || s == SubBoth }

// HasFrom reports whether the contact is subscribed to the user (from, both).
func (s Subscription) HasFrom() bool { return s == SubFrom || s == SubBoth }

// RosterItem is one contact of a user's roster, with the full subscription
// state of RFC 6121 Appendix A (the pending flags are not all visible in
// the roster: PendingIn is not, PendingOut is the 'ask' attribute).
//
// An entry can also be Hidden: not a roster item but only the record of
// an inbound subscription request from someone the user has not added
// ("None + Pending In" without an item: RFC 6121 §3.1.3 forbids adding
// the item before the user approves). Hidden entries are not part of the
// roster: Roster, RosterChanges and RosterContacts skip them and storing
// or deleting one does not change the roster version.
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
	// Hidden: only a pending inbound request, not a roster item (see above).
	Hidden bool
	// Version is the roster version at which the item last changed in a
	// way a roster push shows (0 for a hidden entry).
	Version int64
}

// RosterChange is an item changed, or removed, after some roster version.
type RosterChange struct {
	// Item is the item as it is now; for a removal only Contact and
	// Version (that of the removal) are set.
	Item    RosterItem
	Removed bool
}

// RosterStore stores rosters with versions (RFC 6121 §2.6). A roster's
// version is a counter per user, raised by every change a roster push
// would show (a new or removed item, a changed name, group list,
// subscription, 'ask' or 'approved'); a change of the pending inbound
// request alone does not raise it. Versions are unique and increasing
// for the life of an account, and an account created again under the
// same name starts above the versions its predecessor gave out, so a
// client's cached version never matches a different roster. Removed items
// leave a tombstone so that the changes since a version can be listed;
// old tombstones are pruned, after which RosterChanges reports that it
// cannot answer for versions that old.
type RosterStore interface {
	// Roster returns the user's roster (hidden entries excluded) sorted
	// by contact, and its version (0 for a user who never had one).
	Roster(ctx context.Context, user jid.JID) ([]RosterItem, int64, error)
	// RosterItem returns one entry, hidden or not; ErrNotFound if absent.
	RosterItem(ctx context.Context, user, contact jid.JID) (RosterItem, error)
	// PutRosterItem adds or replaces an entry. changed reports a change a
	// roster push shows: then the item got the next version, which is
	// returned and set in the stored item. A hidden entry replacing a
	// visible item counts as removing it (a tombstone, a new version). When
	// nothing visible changed, version is the roster's current version.
	PutRosterItem(ctx context.Context, user jid.JID, item RosterItem) (version int64, changed bool, err error)
	// DeleteRosterItem removes an entry (ErrNotFound if absent) and returns
	// the roster version: a new one when the entry was a roster item,
	// which leaves a tombstone, the current one for a hidden entry.
	DeleteRosterItem(ctx context.Context, user, contact jid.JID) (int64, error)
	// RosterChanges returns, in version order, the items changed and
	// removed after version since, and the current version. ok is false
	// when the store cannot list them (since is ahead of the roster, or
	// older than the tombstones kept); the caller then sends the whole
	// roster. since = 0 (a client that cached an empty roster) is always
	// answered: every item is a change.
	RosterChanges(ctx context.Context, user jid.JID, since int64) (changes []RosterChange, current int64, ok bool, err error)
	// RosterSize returns the number of entries of the user, hidden ones
	// (pending inbound requests) included: the quantity limits apply to.
	RosterSize(ctx context.Context, user jid.JID) (int, error)
	// RosterContacts returns the contacts of the user's roster (hidden
	// entries excluded) whose subscription is one of subs, sorted: the
	// subscribers (from, both) that presence is broadcast to, or the
	// contacts (to, both) that are probed. No subs, no contacts.
	RosterContacts(ctx context.Context, user jid.JID, subs ...Subscription) ([]jid.JID, error)
	// RosterRequests returns the entries, hidden or not, that hold a
	// pending inbound subscription request (PendingIn), sorted by contact.
	RosterRequests(ctx context.Context, user jid.JID) ([]RosterItem, error)
	// ContactsOf returns the users (bare JIDs) that have contact in their
	// roster, hidden entries included, sorted: whom to tell when the
	// contact's account is removed.
	ContactsOf(ctx context.Context, contact jid.JID) ([]jid.JID, error)
}
