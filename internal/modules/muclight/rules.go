package muclight

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
)

// Affiliations (muclight.md "Rules": owner and member; none means remove).
const (
	Owner  = storage.MUCLightOwner
	Member = storage.MUCLightMember
	None   = storage.MUCLightNone
)

// Change is one affiliation change: a user and its new affiliation.
type Change struct {
	User jid.JID
	Aff  storage.MUCLightAffiliation
}

// Rules are the service options the affiliation changes obey
// (muclight.md "Service options").
type Rules struct {
	MultipleOwners          bool // allow_multiple_owners
	AllCanInvite            bool // all_can_invite
	EqualOccupants          bool // equal_occupants
	PromoteOnLastOwnerLeave bool // promote_on_last_owner_leave
	MaxOccupants            int  // 0: no limit
}

// Outcome is what a request does to a room's members.
type Outcome struct {
	// Members after the change, sorted by JID; empty when the room is to
	// be destroyed (its last member left).
	Members []storage.MUCLightOccupant
	// Changes actually made, in request order, then the implied ones
	// (the demoted owner, the promoted successor).
	Changes []Change
}

// Apply applies the changes requested by requester to the members of a
// room (muclight.md "Members"). creating means the room is being created
// by requester, who is already in members with its initial affiliation,
// and may name every initial member. skip says which newcomers to leave
// out silently: those who blocked the room or the requester.
//
// Rules, in order: each JID at most once; every change must change
// something (member→member is bad-request); a member may leave (self →
// none) and, with AllCanInvite, add members, but never make owners or
// remove others (not-allowed); in equal mode nobody is owner; in
// single-owner mode one new owner at most, and making someone owner
// demotes the current owner to member; when the last owner leaves, a
// member becomes owner (PromoteOnLastOwnerLeave) or the request is
// refused; the room may not grow beyond MaxOccupants.
func (r Rules) Apply(members []storage.MUCLightOccupant, requester jid.JID, reqs []Change, creating bool, skip func(jid.JID) bool) (Outcome, *stanza.Error) {
	cur := make(map[jid.JID]storage.MUCLightAffiliation, len(members))
	hadOwner := false
	for _, m := range members {
		cur[m.User] = m.Affiliation
		hadOwner = hadOwner || m.Affiliation == Owner
	}
	isOwner := creating || cur[requester] == Owner
	next := make(map[jid.JID]storage.MUCLightAffiliation, len(cur)+len(reqs))
	for u, a := range cur {
		next[u] = a
	}
	seen := make(map[jid.JID]bool, len(reqs))
	var out Outcome
	var newOwners []jid.JID
	for _, c := range reqs {
		if seen[c.User] {
			return Outcome{}, stanza.NewError(stanza.BadRequest, c.User.String()+" is named twice")
		}
		seen[c.User] = true
		old, ok := cur[c.User]
		if !ok {
			old = None
		}
		if old == c.Aff {
			return Outcome{}, stanza.NewError(stanza.BadRequest, c.User.String()+" is already "+string(old))
		}
		if old == None && skip != nil && skip(c.User) {
			continue // muclight.md "Members": "skipped silently"
		}
		if c.Aff == Owner && r.EqualOccupants {
			return Outcome{}, stanza.NewError(stanza.NotAllowed, "the rooms of this service have no owners")
		}
		if !isOwner {
			leave := c.User == requester && c.Aff == None
			invite := old == None && c.Aff == Member && r.AllCanInvite
			if !leave && !invite {
				return Outcome{}, stanza.NewError(stanza.NotAllowed, "members may not make this change")
			}
		}
		if c.Aff == None {
			delete(next, c.User)
		} else {
			next[c.User] = c.Aff
		}
		if c.Aff == Owner {
			newOwners = append(newOwners, c.User)
		}
		out.Changes = append(out.Changes, c)
	}
	// Single-owner mode: the current owner hands over (muclight.md
	// "Members": "making someone owner demotes the old owner to member").
	if !r.MultipleOwners && !r.EqualOccupants && len(newOwners) > 0 {
		if len(newOwners) > 1 {
			return Outcome{}, stanza.NewError(stanza.BadRequest, "a room has one owner")
		}
		for _, u := range sortedUsers(next) {
			if next[u] == Owner && u != newOwners[0] {
				next[u] = Member
				out.Changes = append(out.Changes, Change{User: u, Aff: Member})
			}
		}
	}
	if len(next) == 0 {
		return out, nil // the last member left: the room goes
	}
	if !r.EqualOccupants && (hadOwner || creating) && !hasOwner(next) {
		// muclight.md "Members": "an owner leaving may name a successor
		// in the same request, otherwise the service picks one (or
		// refuses)".
		if !r.PromoteOnLastOwnerLeave {
			return Outcome{}, stanza.NewError(stanza.NotAllowed, "the last owner may not leave without naming a successor")
		}
		// The heir: the first member (by JID) that the request did not
		// name, so that an owner stepping down does not get it back.
		users := sortedUsers(next)
		heir := users[0]
		for _, u := range users {
			if !seen[u] {
				heir = u
				break
			}
		}
		next[heir] = Owner
		out.Changes = append(out.Changes, Change{User: heir, Aff: Owner})
	}
	if r.MaxOccupants > 0 && len(next) > r.MaxOccupants && len(next) > len(cur) {
		return Outcome{}, stanza.NewError(stanza.NotAllowed, "a room has at most "+strconv.Itoa(r.MaxOccupants)+" members")
	}
	users := sortedUsers(next)
	out.Members = make([]storage.MUCLightOccupant, len(users))
	for i, u := range users {
		out.Members[i] = storage.MUCLightOccupant{User: u, Affiliation: next[u]}
	}
	return out, nil
}

func hasOwner(m map[jid.JID]storage.MUCLightAffiliation) bool {
	for _, a := range m {
		if a == Owner {
			return true
		}
	}
	return false
}

func sortedUsers(m map[jid.JID]storage.MUCLightAffiliation) []jid.JID {
	users := make([]jid.JID, 0, len(m))
	for u := range m {
		users = append(users, u)
	}
	slices.SortFunc(users, jid.JID.Compare)
	return users
}

// nextVersion returns the version string following prev (muclight.md
// "Rules": "a new room version string (unique per room …)"): a counter in
// base 36, raised at every change, so that a room never gets a version
// twice, and 8 random hex digits, so that a room created again under the
// same name does not repeat the versions of its predecessor that
// clients may have cached.
func nextVersion(prev string) string {
	var seq uint64
	if i := strings.IndexByte(prev, '-'); i > 0 {
		seq, _ = strconv.ParseUint(prev[:i], 36, 64)
	}
	var b [4]byte
	rand.Read(b[:])
	return strconv.FormatUint(seq+1, 36) + "-" + hex.EncodeToString(b[:])
}
