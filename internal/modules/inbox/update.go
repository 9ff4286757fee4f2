package inbox

import (
	"context"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// op is what one stanza does to one entry of the user's inbox.
type op uint8

const (
	opUpdate op = iota + 1 // new last message (unread as change.unread)
	opReset                // a chat marker: unread 0 if it points at the last message
	opRemove               // the user left the room
)

// change is one change to the user's entry for with.
type change struct {
	op       op
	with     jid.JID // bare
	unread   storage.InboxUnread
	markerID string // opReset
}

// sent is the UserSend hook: the sender's own entry.
func (ib *Inbox) sent(ctx context.Context, ev *module.StanzaEvent) module.Result {
	if ev.Stanza.Kind == stanza.KindMessage {
		ib.apply(ctx, ev.User, ev.Stanza, ib.onSent(ev.Stanza, ev.User))
	}
	return module.Continue
}

// received is the UserReceive hook: the recipient's entry, with the
// message as it will be delivered (the archive's stanza-id in it). A
// message routed again (a session ended without taking it) was counted
// the first time.
func (ib *Inbox) received(ctx context.Context, ev *module.StanzaEvent) module.Result {
	if ev.Stanza.Kind != stanza.KindMessage {
		return module.Continue
	}
	if _, again := module.Rerouted(ctx); !again {
		ib.apply(ctx, ev.User, ev.Stanza, ib.onReceived(ev.Stanza, ev.User))
	}
	return module.Continue
}

// onSent decides what a message the user sends does to the user's inbox:
//   - with a body, to someone else (one-to-one), it becomes the last
//     message of the peer's entry, which is read;
//   - a chat marker of a configured kind (XEP-0333 §4, "displayed" by
//     default) resets the unread count of the conversation it is sent to,
//     one-to-one or group (the spec: "A chat marker (XEP-0333) sent by
//     the user resets the unread count of that conversation");
//   - a group chat message does nothing else here: the room sends it back
//     to the user, and received updates the room's entry.
func (ib *Inbox) onSent(st *stanza.Stanza, user jid.JID) []change {
	if !isAccount(st.To) || st.To.Bare() == user {
		return nil
	}
	with := st.To.Bare()
	var out []change
	if id, ok := ib.resetMarker(st.El); ok {
		out = append(out, change{op: opReset, with: with, markerID: id})
	}
	switch st.Type {
	case stanza.MessageChat, stanza.MessageNormal:
		if hasBody(st.El) {
			out = append(out, change{op: opUpdate, with: with, unread: storage.UnreadReset})
		}
	}
	return out
}

// onReceived decides what a message addressed to the user does to the
// user's inbox:
//   - one-to-one with a body: the sender's entry gets it as last message
//     and one more unread;
//   - from a MUC Light room (type groupchat, from room@service/sender
//     where the resource is the sender's bare JID): the room's entry gets
//     it, with one more unread unless the user sent it;
//   - a MUC Light affiliation change from the room itself that names the
//     user: added (aff_changes) counts as a message; removed
//     (remove_on_kicked) removes the entry, as does the room's
//     destruction.
//
// Headlines, errors and messages without a body (chat states, markers,
// receipts) change nothing.
func (ib *Inbox) onReceived(st *stanza.Stanza, user jid.JID) []change {
	from := st.From
	if !isAccount(from) || from.Bare() == user {
		return nil
	}
	switch st.Type {
	case stanza.MessageChat, stanza.MessageNormal:
		if hasBody(st.El) {
			return []change{{op: opUpdate, with: from.Bare(), unread: storage.UnreadIncrement}}
		}
	case stanza.MessageGroupchat:
		if ib.mucl {
			return ib.onRoomMessage(st, user)
		}
	}
	return nil
}

func (ib *Inbox) onRoomMessage(st *stanza.Stanza, user jid.JID) []change {
	room := st.From.Bare()
	if st.From.Resource() == "" {
		// The room itself: affiliation changes and destruction.
		if st.El.Child("x", NSMUCLightDestroy) != nil {
			if ib.cfg.RemoveOnKicked {
				return []change{{op: opRemove, with: room}}
			}
			return nil
		}
		x := st.El.Child("x", NSMUCLightAffiliations)
		if x == nil {
			return nil
		}
		for u := range x.ChildrenNamed("user", NSMUCLightAffiliations) {
			j, err := jid.Parse(u.Text())
			if err != nil || j.Bare() != user {
				continue
			}
			if u.Attr("affiliation") == "none" {
				if ib.cfg.RemoveOnKicked {
					return []change{{op: opRemove, with: room}}
				}
				return nil
			}
			if ib.cfg.AffChanges {
				return []change{{op: opUpdate, with: room, unread: storage.UnreadIncrement}}
			}
		}
		return nil
	}
	sender, err := jid.Parse(st.From.Resource())
	if err != nil || !isAccount(sender) || !sender.IsBare() || !hasBody(st.El) {
		// Not MUC Light's room@service/user@domain, or no content.
		return nil
	}
	if sender == user {
		// The user's own message coming back: it is the last message,
		// and the count of what the user has not read stays.
		return []change{{op: opUpdate, with: room, unread: storage.UnreadKeep}}
	}
	return []change{{op: opUpdate, with: room, unread: storage.UnreadIncrement}}
}

// resetMarker returns the id of a chat marker of a configured kind
// (XEP-0333 §4.2: <received/>, <displayed/>, <acknowledged/> with the id of
// the message marked).
func (ib *Inbox) resetMarker(el *xmlstream.Element) (string, bool) {
	for c := range el.Elements() {
		if c.NS == NSMarkers && ib.markers[c.Name] {
			return c.Attr("id"), true
		}
	}
	return "", false
}

func hasBody(el *xmlstream.Element) bool { return el.Child("body", stanza.NSClient) != nil }

// messageIDs are the ids a chat marker may use for a message: its 'id'
// (XEP-0333 §4), its origin-id and its stanza-ids (XEP-0359; group chat
// markers use the room's stanza-id, XEP-0333 §4.3).
func messageIDs(el *xmlstream.Element) []string {
	var ids []string
	if id := el.Attr("id"); id != "" {
		ids = append(ids, id)
	}
	for c := range el.Elements() {
		if c.NS == NSOriginID && (c.Name == "origin-id" || c.Name == "stanza-id") {
			if id := c.Attr("id"); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// apply writes the changes of one stanza: queued for the batch writer,
// or committed in one transaction before the hook returns (writes =
// "sync"). Either way they are durable before the server acknowledges
// the stanza (XEP-0198).
func (ib *Inbox) apply(ctx context.Context, user jid.JID, st *stanza.Stanza, changes []change) {
	if len(changes) == 0 {
		return
	}
	ops := make([]storage.InboxOp, 0, len(changes))
	for _, c := range changes {
		op := storage.InboxOp{Update: storage.InboxUpdate{Owner: user, With: c.with}}
		switch c.op {
		case opUpdate:
			op.Kind = storage.InboxOpUpdate
			op.Update.Message = st.El.String()
			op.Update.MessageIDs = messageIDs(st.El)
			// Stamped by the writer, in queue order, or here.
			if ib.writer == nil {
				op.Update.Stamp = ib.stamps.Next(ib.now())
			}
			op.Update.Unread = c.unread
		case opReset:
			op.Kind, op.MarkerID = storage.InboxOpReset, c.markerID
		case opRemove:
			op.Kind = storage.InboxOpRemove
		}
		ops = append(ops, op)
	}
	if ib.writer != nil {
		ib.writer.Add(ops...)
		return
	}
	if err := ib.store.ApplyInbox(ctx, ops); err != nil {
		ib.log.Error("inbox: updating entries", "user", user.String(), "error", err)
	}
}
