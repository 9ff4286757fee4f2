package storage

import (
	"context"
	"errors"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// ErrStale: a MUC Light room changed since the version the caller read;
// nothing was written. The caller reads the room again and retries.
var ErrStale = errors.New("storage: stale version")

// MUCLightAffiliation is a member's affiliation in a MUC Light room
// (../shared/specs/muclight.md "Rules": owner or member).
type MUCLightAffiliation string

const (
	MUCLightOwner  MUCLightAffiliation = "owner"
	MUCLightMember MUCLightAffiliation = "member"
	// MUCLightNone is not stored: in a change it means "remove".
	MUCLightNone MUCLightAffiliation = "none"
)

// MUCLightOccupant is one member of a room: a bare JID and its affiliation.
type MUCLightOccupant struct {
	User        jid.JID
	Affiliation MUCLightAffiliation
}

// MUCLightField is one configuration field of a room (roomname, subject…).
type MUCLightField struct {
	Name, Value string
}

// MUCLightRoom is a room as stored: its bare JID (room@service), its
// version string (one for configuration and members), its configuration
// in schema order and its members sorted by JID.
type MUCLightRoom struct {
	Room    jid.JID
	Version string
	Config  []MUCLightField
	Members []MUCLightOccupant
}

// MUCLightRoomRef is a room as listed for one of its members.
type MUCLightRoomRef struct {
	Room    jid.JID
	Version string
	Config  []MUCLightField
}

// MUCLightBlock is one item of a user's MUC Light blocking list: a room
// or a user (a bare JID) the user denies.
type MUCLightBlock struct {
	// Kind is "room" or "user".
	Kind string
	JID  jid.JID
}

// MUCLightStore stores MUC Light rooms, their members and the users'
// blocking lists. Rooms are changed by compare-and-swap on their version
// string, so that several nodes may change a room without a room owner
// process.
type MUCLightStore interface {
	// MUCLightRoom returns a room; ErrNotFound if it does not exist.
	MUCLightRoom(ctx context.Context, room jid.JID) (MUCLightRoom, error)
	// CreateMUCLightRoom stores a new room; ErrExists if the JID is taken.
	CreateMUCLightRoom(ctx context.Context, room MUCLightRoom) error
	// UpdateMUCLightRoom replaces the room's version, configuration and
	// members with those of room, provided its stored version is still
	// prevVersion (ErrStale otherwise, ErrNotFound if it is gone).
	UpdateMUCLightRoom(ctx context.Context, room MUCLightRoom, prevVersion string) error
	// DeleteMUCLightRoom removes a room and its members, provided its
	// stored version is still prevVersion (ErrStale, ErrNotFound).
	DeleteMUCLightRoom(ctx context.Context, room jid.JID, prevVersion string) error
	// MUCLightRoomsOf lists the rooms user is a member of on the service
	// (a domain), sorted by room JID.
	MUCLightRoomsOf(ctx context.Context, user jid.JID, service string) ([]MUCLightRoomRef, error)
	// CountMUCLightRoomsOf counts them (the rooms-per-user limit is
	// checked for every newcomer of a room).
	CountMUCLightRoomsOf(ctx context.Context, user jid.JID, service string) (int, error)
	// MUCLightBlocking returns the user's blocking list for the service,
	// rooms first, each kind sorted by JID.
	MUCLightBlocking(ctx context.Context, user jid.JID, service string) ([]MUCLightBlock, error)
	// MUCLightBlockers returns those of users whose blocking list for
	// the room's service denies the room or the user other (bare JIDs),
	// sorted: the newcomers a membership change skips, read at once.
	MUCLightBlockers(ctx context.Context, users []jid.JID, room, other jid.JID) ([]jid.JID, error)
	// SetMUCLightBlocking adds the deny items and removes the allow items
	// (removing what is not there is not an error), in one transaction.
	SetMUCLightBlocking(ctx context.Context, user jid.JID, service string, deny, allow []MUCLightBlock) error
}
