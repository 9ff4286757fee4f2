package muclight

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Roster integration (muclight.md "Roster integration"): with
// rooms_in_rosters, a local member has the room in its roster as an item
// with subscription 'to', group urn:xmpp:muclight:0 and the room name,
// stored in the roster itself (so roster versioning covers it) and pushed
// to the member's sessions with a <version/> child. The roster module
// serializes the items of roster gets (and its own pushes): the
// RosterItem hook (rosterItem) adds the <version/> there.

var rosterPushSeq atomic.Uint64

func (m *MUCLight) rosterAdd(ctx context.Context, user jid.JID, r *room) {
	if m.roster == nil || !m.host.IsLocal(user.Domain()) {
		return
	}
	item := storage.RosterItem{Contact: r.Room, Name: r.field("roomname"), Groups: []string{NS}, Subscription: storage.SubTo}
	ver, changed, err := m.roster.PutRosterItem(ctx, user, item)
	if err != nil {
		m.log.Error("muclight: roster item", "user", user.String(), "room", r.Room.String(), "error", err)
		return
	}
	if !changed {
		return
	}
	el := xmlstream.NewElement("item", stanza.NSRoster).SetAttr("jid", r.Room.String()).SetAttr("subscription", "to")
	if item.Name != "" {
		el.SetAttr("name", item.Name)
	}
	el.AddChild(textElement("group", stanza.NSRoster, NS), textElement("version", stanza.NSRoster, r.Version))
	m.rosterPush(user, el, ver)
}

func (m *MUCLight) rosterRemove(ctx context.Context, user, roomJID jid.JID) {
	if m.roster == nil || !m.host.IsLocal(user.Domain()) {
		return
	}
	ver, err := m.roster.DeleteRosterItem(ctx, user, roomJID)
	if errors.Is(err, storage.ErrNotFound) {
		return
	}
	if err != nil {
		m.log.Error("muclight: roster item", "user", user.String(), "room", roomJID.String(), "error", err)
		return
	}
	m.rosterPush(user, xmlstream.NewElement("item", stanza.NSRoster).SetAttr("jid", roomJID.String()).SetAttr("subscription", "remove"), ver)
}

// rosterPush sends a roster push (RFC 6121 §2.1.6) to every session of
// user; the roster module's record of which sessions asked for the
// roster is its own.
func (m *MUCLight) rosterPush(user jid.JID, item *xmlstream.Element, ver int64) {
	q := xmlstream.NewElement("query", stanza.NSRoster).SetAttr("ver", strconv.FormatInt(ver, 10)).AddChild(item)
	for _, s := range m.host.Sessions(user) {
		id := "muclight-push-" + strconv.FormatUint(rosterPushSeq.Add(1), 36)
		s.Deliver(stanza.NewIQ(stanza.IQSet, id, s.JID(), jid.JID{}, q))
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
	r, err := m.load(ctx, j)
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
