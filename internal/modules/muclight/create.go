package muclight

// Creating rooms (muclight.md "Create") and the notifications rooms send.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// create makes a room (muclight.md "Create"): named when roomJID is set,
// else named by the service.
func (m *MUCLight) create(ctx context.Context, req *request, roomJID jid.JID) (*xmlstream.Element, error) {
	p := req.Payload()
	if err := onlyChildren(p, "configuration", "occupants"); err != nil {
		return nil, err
	}
	cfg := make([]storage.MUCLightField, len(m.cfg.ConfigFields))
	for i, name := range m.cfg.ConfigFields {
		cfg[i] = storage.MUCLightField{Name: name}
		if name == "roomname" {
			cfg[i].Value = m.cfg.DefaultRoomName
		}
	}
	if c := p.Child("configuration", NSCreate); c != nil {
		fields, err := m.parseFields(c)
		if err != nil {
			return nil, err
		}
		for _, f := range fields {
			cfg[slices.Index(m.cfg.ConfigFields, f.Name)].Value = f.Value
		}
	}
	var occupants []Change
	if o := p.Child("occupants", NSCreate); o != nil {
		var err error
		if occupants, err = parseUsers(o, false); err != nil {
			return nil, err
		}
		if err := m.checkUsers(occupants); err != nil {
			return nil, err
		}
	}
	creator := req.sender
	if err := m.checkRoomsPerUser(ctx, creator, req.To.Domain()); err != nil {
		return nil, err
	}
	named := !roomJID.IsZero()
	for attempt := 0; ; attempt++ {
		if !named {
			var b [8]byte
			rand.Read(b[:])
			j, err := jid.New(hex.EncodeToString(b[:]), req.To.Domain(), "")
			if err != nil {
				return nil, fmt.Errorf("muclight: room name: %w", err)
			}
			roomJID = j
		}
		// Read before the room's lock is taken.
		skip, err := m.blockers(ctx, occupants, roomJID, creator)
		if err != nil {
			return nil, err
		}
		res, err := m.createRoom(ctx, req, roomJID, creator, cfg, occupants, skip)
		if errors.Is(err, storage.ErrExists) {
			if named {
				// muclight.md "Create": "if it exists, error conflict".
				return nil, stanza.NewError(stanza.Conflict, "")
			}
			if attempt < 5 {
				continue
			}
		}
		req.replyFrom = roomJID
		return res, err
	}
}

// createRoom stores the room unless it exists; skip holds the
// newcomers who blocked the room or the creator.
func (m *MUCLight) createRoom(ctx context.Context, req *request, roomJID, creator jid.JID, cfg []storage.MUCLightField, occupants []Change, skip map[jid.JID]bool) (*xmlstream.Element, error) {
	mu := m.lockOf(roomJID)
	mu.Lock()
	defer mu.Unlock()
	if r, err := m.loadFresh(ctx, roomJID); err != nil {
		return nil, err
	} else if r != nil {
		return nil, storage.ErrExists
	}
	initial := Owner
	if m.cfg.EqualOccupants {
		initial = Member
	}
	start := []storage.MUCLightOccupant{{User: creator, Affiliation: initial}}
	out, serr := m.rules.Apply(start, creator, occupants, true, func(u jid.JID) bool { return skip[u] })
	if serr != nil {
		return nil, serr
	}
	if len(out.Members) == 0 {
		return nil, errBadRequest("a room needs a member")
	}
	for _, o := range out.Members {
		if o.User != creator {
			if err := m.checkRoomsPerUser(ctx, o.User, roomJID.Domain()); err != nil {
				return nil, err
			}
		}
	}
	sr := storage.MUCLightRoom{Room: roomJID, Version: nextVersion(""), Config: cfg, Members: out.Members}
	if err := m.store.CreateMUCLightRoom(ctx, sr); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return nil, err
		}
		return nil, fmt.Errorf("muclight: create %s: %w", roomJID, err)
	}
	r := newRoom(sr)
	m.cache.put(roomJID, r)
	// muclight.md "Archive (MAM) rules": "room creation is archived as
	// one membership change listing all initial members".
	all := make([]Change, len(out.Members))
	for i, o := range out.Members {
		all[i] = Change{User: o.User, Aff: o.Affiliation}
	}
	m.archiveMembership(ctx, r, req.ID, all)
	// muclight.md "Create": "every initial member (creator included) gets
	// a groupchat message … holding <version> and only the recipient's
	// own <user> entry, no <prev-version>, and an empty <body/>".
	for _, o := range out.Members {
		x := xmlstream.NewElement("x", NSAffiliations).AddChild(textElement("version", NSAffiliations, r.Version), userElement(NSAffiliations, o.User, o.Affiliation))
		m.notify(ctx, r.Room, req.ID, o.User, x)
		m.rosterAdd(ctx, o.User, r)
	}
	return nil, nil
}

func (m *MUCLight) checkRoomsPerUser(ctx context.Context, user jid.JID, service string) error {
	if m.cfg.RoomsPerUser <= 0 {
		return nil
	}
	n, err := m.store.CountMUCLightRoomsOf(ctx, user, service)
	if err != nil {
		return fmt.Errorf("muclight: rooms of %s: %w", user, err)
	}
	if n >= m.cfg.RoomsPerUser {
		return stanza.NewError(stanza.NotAllowed, user.String()+" is in "+strconv.Itoa(m.cfg.RoomsPerUser)+" rooms, the most allowed")
	}
	return nil
}

// notify sends a notification of the room to one user: a groupchat
// message from the room with the IQ's id, the given payloads and an
// empty body (muclight.md "Create": "The notification messages carry the
// same id as the IQ").
func (m *MUCLight) notify(ctx context.Context, roomJID jid.JID, id string, to jid.JID, payloads ...*xmlstream.Element) {
	m.sendTo(ctx, roomNotice(roomJID, id, payloads...), stanza.KindMessage, stanza.MessageGroupchat, roomJID, to)
}

// roomNotice is a message of the room itself: from the room JID, with
// the IQ's id, the payloads and an empty body.
func roomNotice(roomJID jid.JID, id string, payloads ...*xmlstream.Element) *xmlstream.Element {
	msg := xmlstream.NewElement("message", stanza.NSClient).SetAttr("from", roomJID.String()).SetAttr("type", stanza.MessageGroupchat)
	if id != "" {
		msg.SetAttr("id", id)
	}
	msg.AddChild(payloads...)
	return msg.AddChild(xmlstream.NewElement("body", stanza.NSClient))
}

// archiveMembership runs the RoomMessage hooks for a membership change as
// the archive keeps it: <version>, every change, no <prev-version>
// (muclight.md "Archive (MAM) rules"). It is delivered to nobody.
func (m *MUCLight) archiveMembership(ctx context.Context, r *room, id string, changes []Change) {
	if m.hooks.RoomMessage.Len() == 0 {
		return
	}
	x := xmlstream.NewElement("x", NSAffiliations).AddChild(textElement("version", NSAffiliations, r.Version))
	for _, c := range changes {
		x.AddChild(userElement(NSAffiliations, c.User, c.Aff))
	}
	st := &stanza.Stanza{El: roomNotice(r.Room, id, x), Kind: stanza.KindMessage, Type: stanza.MessageGroupchat, ID: id, From: r.Room}
	module.RunStanza(ctx, &m.hooks.RoomMessage, &module.StanzaEvent{Stanza: st, User: r.Room})
}
