package storage

import (
	"context"
	"errors"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// ErrQuota: storing the data would take the account over its quota.
var ErrQuota = errors.New("storage: quota exceeded")

// PrivateItem is one element of private XML storage (XEP-0049), stored
// per account under its namespace and local name.
type PrivateItem struct {
	NS, Name string
	// XML is the element serialized as a standalone element (with its
	// xmlns); empty in PutPrivateXML means: remove the entry.
	XML string
}

// LastActivity is what an account did last when its last session ended
// (XEP-0012 §3): when, and the status of its last unavailable presence.
type LastActivity struct {
	At     time.Time // stored with a precision of one second
	Status string
}

// ProfileStore stores the small per-account documents: the vCard
// (XEP-0054), private XML (XEP-0049) and the last logout (XEP-0012). A
// write that stores something fails with ErrNotFound when the account does
// not exist (it may just have been removed), so nothing outlives its
// account; removing the account removes them all.
type ProfileStore interface {
	// VCard returns the account's vCard, serialized; ErrNotFound if none.
	VCard(ctx context.Context, user jid.JID) (string, error)
	// SetVCard replaces the account's vCard; an empty vcard removes it.
	SetVCard(ctx context.Context, user jid.JID, vcard string) error

	// PrivateXML returns the stored element of namespace ns and local
	// name name; ErrNotFound if none.
	PrivateXML(ctx context.Context, user jid.JID, ns, name string) (string, error)
	// PutPrivateXML stores (or, for an empty XML, removes) the items in
	// one transaction. When quota is positive and the account's private
	// XML would then take more than quota bytes in total, nothing is
	// changed and the error is ErrQuota.
	PutPrivateXML(ctx context.Context, user jid.JID, items []PrivateItem, quota int64) error

	// LastActivity returns the account's last logout; ErrNotFound if it
	// never logged out.
	LastActivity(ctx context.Context, user jid.JID) (LastActivity, error)
	// SetLastActivity records the account's last logout.
	SetLastActivity(ctx context.Context, user jid.JID, last LastActivity) error
}
