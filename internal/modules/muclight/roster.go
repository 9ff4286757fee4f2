package muclight

import (
	"context"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Roster integration (muclight.md "Roster integration"): with
// rooms_in_rosters, a local member has the room in its roster as an item
// with subscription 'to', group urn:xmpp:muclight:0 and the room name.
// The roster module makes the change (Hooks.RosterChange): it stores the
// item (so roster versioning covers it) under its lock of the user and
// pushes it as it pushes its own changes, to the user's interested
// resources (RFC 6121 §2.1.6) with the roster version (§2.6). The roster
// module serializes every item: the RosterItem hook (rosterItem) adds the
// room's <version/> there.
//
// These are called with the room's lock held, so that a member's pushes
// follow the room's changes in order; the roster module's lock of the
// user is taken inside. The reverse order never happens: the RosterItem
// hook, which runs under the user's lock, does not wait for a room's
// lock (peek).

func (m *MUCLight) rosterAdd(ctx context.Context, user jid.JID, r *room) {
	m.rosterChange(ctx, module.RosterChange{User: user, Contact: r.Room, Name: r.field("roomname"), Groups: []string{NS}, Subscription: "to"})
}

func (m *MUCLight) rosterRemove(ctx context.Context, user, roomJID jid.JID) {
	m.rosterChange(ctx, module.RosterChange{User: user, Contact: roomJID, Remove: true})
}

func (m *MUCLight) rosterChange(ctx context.Context, ch module.RosterChange) {
	if !m.cfg.RoomsInRosters || !m.host.IsLocal(ch.User.Domain()) {
		return
	}
	change, ok := m.hooks.RosterChange.Get()
	if !ok {
		// Checked at start (CheckDependencies); the roster module is
		// stopping.
		m.log.Error("muclight: rooms_in_rosters without the roster module", "user", ch.User.String(), "room", ch.Contact.String())
		return
	}
	if _, err := change(ctx, ch); err != nil {
		m.log.Error("muclight: roster item", "user", ch.User.String(), "room", ch.Contact.String(), "error", err)
	}
}

// rosterItem is the RosterItem hook: an item of the service's rooms in
// the muclight group gets the room's current <version/> when user is a
// member. Other items cost a map lookup; a room's, a cache lookup
// (storage on a miss).
func (m *MUCLight) rosterItem(ctx context.Context, user jid.JID, item *xmlstream.Element) {
	raw := item.Attr("jid")
	at := strings.IndexByte(raw, '@')
	if at < 0 || !m.services[raw[at+1:]] || item.Child("version", stanza.NSRoster) != nil {
		return
	}
	inGroup := false
	for g := range item.ChildrenNamed("group", stanza.NSRoster) {
		inGroup = inGroup || g.Text() == NS
	}
	if !inGroup {
		return
	}
	j, err := jid.Parse(raw)
	if err != nil {
		return
	}
	r, err := m.peek(ctx, j)
	if err != nil {
		m.log.Error("muclight: roster item", "user", user.String(), "room", raw, "error", err)
		return
	}
	if r == nil {
		return
	}
	if _, member := r.aff[user]; member {
		item.AddChild(textElement("version", stanza.NSRoster, r.Version))
	}
}
