package story

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// MUC Light (MongooseIM's urn:xmpp:muclight:0): invite-only group chat
// without presence. The builders make the IQs of the protocol; the
// predicates and MUCLightNoticeOf read the notifications rooms send.
const (
	NSMUCLight              = "urn:xmpp:muclight:0"
	NSMUCLightCreate        = NSMUCLight + "#create"
	NSMUCLightDestroy       = NSMUCLight + "#destroy"
	NSMUCLightConfiguration = NSMUCLight + "#configuration"
	NSMUCLightAffiliations  = NSMUCLight + "#affiliations"
	NSMUCLightInfo          = NSMUCLight + "#info"
	NSMUCLightBlocking      = NSMUCLight + "#blocking"
)

// MUCLightField is a configuration field (roomname, subject, …).
type MUCLightField struct{ Name, Value string }

// MUCLightUser is a member and its affiliation: "owner", "member", or
// "none" (remove) in a change.
type MUCLightUser struct {
	JID         Addr
	Affiliation string
}

// Owner, Member and Kick make MUCLightUser items.
func Owner(u Addr) MUCLightUser  { return MUCLightUser{JID: u, Affiliation: "owner"} }
func Member(u Addr) MUCLightUser { return MUCLightUser{JID: u, Affiliation: "member"} }
func Kick(u Addr) MUCLightUser   { return MUCLightUser{JID: u, Affiliation: "none"} }

// mucLightJID is the JID a MUC Light request names a user by: a
// client's bare JID, any other address as it is.
func mucLightJID(a Addr) string {
	if c, ok := a.(*Client); ok {
		return c.Bare().String()
	}
	return a.String()
}

func mucLightUsers(parent *xmlstream.Element, ns string, users []MUCLightUser) *xmlstream.Element {
	for _, u := range users {
		parent.AddChild(textEl("user", ns, mucLightJID(u.JID)).SetAttr("affiliation", u.Affiliation))
	}
	return parent
}

func mucLightFields(parent *xmlstream.Element, ns string, fields []MUCLightField) *xmlstream.Element {
	for _, f := range fields {
		parent.AddChild(textEl(f.Name, ns, f.Value))
	}
	return parent
}

// MUCLightCreate creates a room: to is the room's JID (a name chosen by
// the client) or the service's (a name chosen by the service). The
// configuration and occupants are left out when empty.
func MUCLightCreate(to Addr, config []MUCLightField, occupants ...MUCLightUser) *xmlstream.Element {
	q := el("query", NSMUCLightCreate)
	if len(config) > 0 {
		q.AddChild(mucLightFields(el("configuration", NSMUCLightCreate), NSMUCLightCreate, config))
	}
	if len(occupants) > 0 {
		q.AddChild(mucLightUsers(el("occupants", NSMUCLightCreate), NSMUCLightCreate, occupants))
	}
	return IQSet(to, q)
}

func versioned(ns, version string) *xmlstream.Element {
	q := el("query", ns)
	if version != "" {
		q.AddChild(textEl("version", ns, version))
	}
	return q
}

// MUCLightConfigGet asks for a room's configuration; with the version the
// client has, the answer is empty when it is current.
func MUCLightConfigGet(room Addr, version string) *xmlstream.Element {
	return IQGet(room, versioned(NSMUCLightConfiguration, version))
}

// MUCLightConfigSet changes configuration fields.
func MUCLightConfigSet(room Addr, fields ...MUCLightField) *xmlstream.Element {
	return IQSet(room, mucLightFields(el("query", NSMUCLightConfiguration), NSMUCLightConfiguration, fields))
}

// MUCLightAffiliationsGet asks for the member list.
func MUCLightAffiliationsGet(room Addr, version string) *xmlstream.Element {
	return IQGet(room, versioned(NSMUCLightAffiliations, version))
}

// MUCLightAffiliationsSet invites, kicks, promotes, leaves.
func MUCLightAffiliationsSet(room Addr, users ...MUCLightUser) *xmlstream.Element {
	return IQSet(room, mucLightUsers(el("query", NSMUCLightAffiliations), NSMUCLightAffiliations, users))
}

// MUCLightInfoGet asks for configuration and members at once.
func MUCLightInfoGet(room Addr, version string) *xmlstream.Element {
	return IQGet(room, versioned(NSMUCLightInfo, version))
}

// MUCLightDestroy destroys a room.
func MUCLightDestroy(room Addr) *xmlstream.Element {
	return IQSet(room, el("query", NSMUCLightDestroy))
}

// MUCLightBlockItem is an item of the blocking list: Kind "room" or
// "user", Action "deny" or "allow".
type MUCLightBlockItem struct {
	Kind, Action string
	JID          Addr
}

// MUCLightBlockingGet asks the service for the user's blocking list.
func MUCLightBlockingGet(service Addr) *xmlstream.Element {
	return IQGet(service, el("query", NSMUCLightBlocking))
}

// MUCLightBlockingSet changes the user's blocking list.
func MUCLightBlockingSet(service Addr, items ...MUCLightBlockItem) *xmlstream.Element {
	q := el("query", NSMUCLightBlocking)
	for _, it := range items {
		q.AddChild(textEl(it.Kind, NSMUCLightBlocking, mucLightJID(it.JID)).SetAttr("action", it.Action))
	}
	return IQSet(service, q)
}

// MUCLightNotice is what an <x/> of a room notification, or a query of a
// result, holds.
type MUCLightNotice struct {
	Version, PrevVersion       string
	HasVersion, HasPrevVersion bool
	// Users are "bare JID=affiliation", sorted.
	Users []string
	// Fields are the other leaf children (configuration fields), in order.
	Fields []MUCLightField
}

// MUCLightNoticeOf reads the child x (or query) in namespace ns of el, or
// el itself when it is one; nil when there is none.
func MUCLightNoticeOf(e *xmlstream.Element, ns string) *MUCLightNotice {
	x := e
	if e.NS != ns {
		if x = e.Child("x", ns); x == nil {
			if x = e.Child("query", ns); x == nil {
				return nil
			}
		}
	}
	n := &MUCLightNotice{}
	var walk func(p *xmlstream.Element)
	walk = func(p *xmlstream.Element) {
		for c := range p.Elements() {
			switch c.Name {
			case "version":
				n.Version, n.HasVersion = c.Text(), true
			case "prev-version":
				n.PrevVersion, n.HasPrevVersion = c.Text(), true
			case "user":
				n.Users = append(n.Users, c.Text()+"="+c.Attr("affiliation"))
			case "configuration", "occupants":
				walk(c)
			default:
				n.Fields = append(n.Fields, MUCLightField{Name: c.Name, Value: c.Text()})
			}
		}
	}
	walk(x)
	slices.Sort(n.Users)
	return n
}

// Field returns the value of a configuration field of the notice.
func (n *MUCLightNotice) Field(name string) (string, bool) {
	for _, f := range n.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// MUCLightUsersString renders users as MUCLightNotice.Users does.
func MUCLightUsersString(users ...MUCLightUser) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = mucLightJID(u.JID) + "=" + u.Affiliation
	}
	slices.Sort(out)
	return out
}

// IsMUCLightNotice matches a groupchat notification from room (its bare
// JID) with an <x/> in namespace ns ("…#affiliations",
// "…#configuration") listing exactly users (when users is not nil).
func IsMUCLightNotice(room Addr, ns string, users ...MUCLightUser) Predicate {
	want := MUCLightUsersString(users...)
	desc := fmt.Sprintf("a groupchat notification from %s with <x xmlns='%s'/>", room, ns)
	if users != nil {
		desc += " listing " + strings.Join(want, ", ")
	}
	return Predicate{Desc: desc, Match: func(e *xmlstream.Element) bool {
		if !isKind(e, "message") || messageType(e) != stanza.MessageGroupchat || e.Attr("from") != room.String() {
			return false
		}
		x := e.Child("x", ns)
		if x == nil {
			return false
		}
		return users == nil || slices.Equal(MUCLightNoticeOf(x, ns).Users, want)
	}}
}

// IsMUCLightDestroyed matches the notification of a destroyed room.
func IsMUCLightDestroyed(room Addr) Predicate {
	return And(IsMUCLightNotice(room, NSMUCLightAffiliations), HasChild("x", NSMUCLightDestroy))
}

// IsRoomMessage matches a groupchat message with body from a room,
// sent by sender (the room's JID with sender's bare JID as resource).
func IsRoomMessage(room, sender Addr, body string) Predicate {
	from := room.String() + "/" + mucLightJID(sender)
	return And(IsGroupchat(body), Predicate{Desc: "from " + from, Match: func(e *xmlstream.Element) bool {
		return e.Attr("from") == from
	}})
}
