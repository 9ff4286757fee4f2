package muclight

import (
	"context"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// message handles a message to the service or a room (muclight.md
// "Messages"), on the sender's goroutine: one member-list lookup (the
// cache), the RoomMessage hooks once, then one copy per member through
// the router.
func (m *MUCLight) message(ctx context.Context, st *stanza.Stanza) {
	if st.IsError() {
		return // bounces of copies the room sent: nothing to do
	}
	to := st.To
	if to.Local() == "" || !to.IsBare() {
		// Messages go to rooms; a room has no occupant JIDs.
		if st.Type != stanza.MessageHeadline {
			m.bounce(ctx, st, stanza.NewError(stanza.BadRequest, "messages go to a room's bare JID"))
		}
		return
	}
	r, err := m.load(ctx, to)
	if err != nil {
		m.log.Error("muclight: room message", "room", to.String(), "error", err)
		m.bounce(ctx, st, stanza.NewError(stanza.InternalServerError, ""))
		return
	}
	sender := st.From.Bare()
	if r == nil || r.aff[sender] == "" {
		// muclight.md "Messages": "A non-member gets an item-not-found
		// error."
		m.bounce(ctx, st, stanza.NewError(stanza.ItemNotFound, ""))
		return
	}
	if st.Type != stanza.MessageGroupchat {
		// muclight.md "Messages": "Only groupchat messages are routed."
		if st.Type != stanza.MessageHeadline {
			m.bounce(ctx, st, stanza.NewError(stanza.BadRequest, "only groupchat messages go to a room"))
		}
		return
	}
	// "from room@muclight.example.com/sender@example.com (the sender's
	// bare JID is the resource), keeping the message id and all child
	// elements". Notifications are the room's own: a member cannot forge
	// them.
	from, err := jid.New(to.Local(), to.Domain(), sender.String())
	if err != nil {
		m.bounce(ctx, st, stanza.NewError(stanza.JIDMalformed, ""))
		return
	}
	out := withoutRoomPayloads(st.El)
	out.RemoveAttr("to")
	out.SetAttr("from", from.String())
	ev := &module.StanzaEvent{
		Stanza: &stanza.Stanza{El: out, Kind: stanza.KindMessage, Type: stanza.MessageGroupchat, ID: st.ID, From: from},
		User:   r.Room,
	}
	// The archive stamps its <stanza-id/> on ev.Stanza.El here.
	if module.RunStanza(ctx, &m.hooks.RoomMessage, ev) == module.Stop {
		return
	}
	base := ev.Stanza.El
	for _, o := range r.Members {
		m.sendTo(ctx, base.ShallowCopy(), stanza.KindMessage, stanza.MessageGroupchat, from, o.User)
	}
}

// withoutRoomPayloads copies el without the children in the MUC Light
// namespaces, which only the room may send.
func withoutRoomPayloads(el *xmlstream.Element) *xmlstream.Element {
	c := el.ShallowCopy()
	c.Children = c.Children[:0]
	for _, n := range el.Children {
		if n.Elem != nil && strings.HasPrefix(n.Elem.NS, NS) {
			continue
		}
		c.Children = append(c.Children, n)
	}
	return c
}
