package muclight

// Configuration, members, info and destruction of a room (muclight.md
// "Configuration", "Members", "Destroy").

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// versionMatches reads the <version/> of a get: when it is the room's
// current version the answer is empty (muclight.md "Configuration",
// "Members").
func versionMatches(r *room, p *xmlstream.Element) bool {
	v := p.Child("version", p.NS)
	return v != nil && v.Text() == r.Version
}

func (m *MUCLight) configGet(r *room, p *xmlstream.Element) (*xmlstream.Element, error) {
	if err := onlyChildren(p, "version"); err != nil {
		return nil, err
	}
	if versionMatches(r, p) {
		return nil, nil
	}
	q := xmlstream.NewElement("query", NSConfiguration).AddChild(textElement("version", NSConfiguration, r.Version))
	return addFields(q, NSConfiguration, r.Config), nil
}

func (m *MUCLight) affiliationsGet(r *room, p *xmlstream.Element) (*xmlstream.Element, error) {
	if err := onlyChildren(p, "version"); err != nil {
		return nil, err
	}
	if versionMatches(r, p) {
		return nil, nil
	}
	q := xmlstream.NewElement("query", NSAffiliations).AddChild(textElement("version", NSAffiliations, r.Version))
	return addMembers(q, NSAffiliations, r.Members), nil
}

// info: muclight.md "Members": "…#info get returns <version>,
// <configuration> and <occupants> together".
func (m *MUCLight) info(r *room, p *xmlstream.Element) (*xmlstream.Element, error) {
	if err := onlyChildren(p, "version"); err != nil {
		return nil, err
	}
	if versionMatches(r, p) {
		return nil, nil
	}
	cfg := addFields(xmlstream.NewElement("configuration", NSInfo), NSInfo, r.Config)
	occ := addMembers(xmlstream.NewElement("occupants", NSInfo), NSInfo, r.Members)
	return xmlstream.NewElement("query", NSInfo).AddChild(textElement("version", NSInfo, r.Version), cfg, occ), nil
}

// addFields adds one element per configuration field to parent.
func addFields(parent *xmlstream.Element, ns string, cfg []storage.MUCLightField) *xmlstream.Element {
	for _, f := range cfg {
		parent.AddChild(textElement(f.Name, ns, f.Value))
	}
	return parent
}

// addMembers adds one <user/> per member to parent.
func addMembers(parent *xmlstream.Element, ns string, members []storage.MUCLightOccupant) *xmlstream.Element {
	for _, o := range members {
		parent.AddChild(userElement(ns, o.User, o.Affiliation))
	}
	return parent
}

// change runs fn on the room's stored state under the room's lock and
// retries it when another node changed the room in between
// (storage.ErrStale). A room that is gone is item-not-found; fn is not run.
func (m *MUCLight) change(ctx context.Context, roomJID jid.JID, fn func(r *room) error) error {
	mu := m.lockOf(roomJID)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		r, err := m.loadFresh(ctx, roomJID)
		if err != nil {
			return err
		}
		if r == nil {
			return stanza.NewError(stanza.ItemNotFound, "")
		}
		err = fn(r)
		if errors.Is(err, storage.ErrStale) && attempt < 3 {
			continue
		}
		return err
	}
}

// configSet changes fields (muclight.md "Configuration": "partial
// updates keep the other fields"; "Owners may set; the service may allow
// members"; "Subject changes are ordinary configuration changes").
func (m *MUCLight) configSet(ctx context.Context, req *request, p *xmlstream.Element) (*xmlstream.Element, error) {
	fields, err := m.parseFields(p)
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, errBadRequest("no field to change")
	}
	err = m.change(ctx, req.To, func(r *room) error {
		aff, ok := r.aff[req.sender]
		if !ok {
			return stanza.NewError(stanza.ItemNotFound, "")
		}
		onlySubject := !slices.ContainsFunc(fields, func(f storage.MUCLightField) bool { return f.Name != "subject" })
		if aff != Owner && !m.cfg.AllCanConfigure && !onlySubject {
			return stanza.NewError(stanza.NotAllowed, "only owners change the configuration")
		}
		next := slices.Clone(r.Config)
		var changed []storage.MUCLightField
		for _, f := range fields {
			i := slices.IndexFunc(next, func(g storage.MUCLightField) bool { return g.Name == f.Name })
			if i < 0 {
				next = append(next, f)
			} else if next[i].Value == f.Value {
				continue
			} else {
				next[i].Value = f.Value
			}
			changed = append(changed, f)
		}
		if len(changed) == 0 {
			return nil // nothing changes: no new version
		}
		sr := r.MUCLightRoom
		sr.Version, sr.Config = nextVersion(r.Version), next
		nr, err := m.update(ctx, r, sr, "configure")
		if err != nil {
			return err
		}
		// muclight.md "Configuration": "Every member is notified (before
		// the IQ result) with <x xmlns='…#configuration'> holding
		// <prev-version>, <version> and the changed fields".
		x := xmlstream.NewElement("x", NSConfiguration).AddChild(
			textElement("prev-version", NSConfiguration, r.Version), textElement("version", NSConfiguration, nr.Version))
		for _, f := range changed {
			x.AddChild(textElement(f.Name, NSConfiguration, f.Value))
		}
		renamed := slices.ContainsFunc(changed, func(f storage.MUCLightField) bool { return f.Name == "roomname" })
		for _, o := range nr.Members {
			m.notify(ctx, nr.Room, req.ID, o.User, x)
			if renamed {
				m.rosterAdd(ctx, o.User, nr)
			}
		}
		return nil
	})
	return nil, err
}

// affiliationsSet applies membership changes (muclight.md "Members").
func (m *MUCLight) affiliationsSet(ctx context.Context, req *request, p *xmlstream.Element) (*xmlstream.Element, error) {
	reqs, err := parseUsers(p, true)
	if err != nil {
		return nil, err
	}
	if err := m.checkUsers(reqs); err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, errBadRequest("no change")
	}
	skip, err := m.blockers(ctx, reqs, req.To, req.sender)
	if err != nil {
		return nil, err
	}
	var done []Change
	err = m.change(ctx, req.To, func(r *room) error {
		var err error
		done, err = m.applyAffiliations(ctx, r, req.sender, reqs, skip, req.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	// muclight.md "Members": "The IQ result lists the changed items."
	q := xmlstream.NewElement("query", NSAffiliations)
	for _, c := range done {
		q.AddChild(userElement(NSAffiliations, c.User, c.Aff))
	}
	return q, nil
}

// applyAffiliations applies, stores and announces the changes requester
// asks for, skipping the newcomers in skip (blockers); the caller holds
// the room's lock.
func (m *MUCLight) applyAffiliations(ctx context.Context, r *room, requester jid.JID, reqs []Change, skip map[jid.JID]bool, id string) ([]Change, error) {
	if _, ok := r.aff[requester]; !ok {
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	out, serr := m.rules.Apply(r.Members, requester, reqs, false, func(u jid.JID) bool { return skip[u] })
	if serr != nil {
		return nil, serr
	}
	if len(out.Changes) == 0 {
		return nil, nil // everyone named was skipped
	}
	for _, c := range out.Changes {
		if _, was := r.aff[c.User]; !was {
			if err := m.checkRoomsPerUser(ctx, c.User, r.Room.Domain()); err != nil {
				return nil, err
			}
		}
	}
	if len(out.Members) == 0 {
		// muclight.md "Rules": "A room whose member list becomes empty is
		// destroyed."
		if err := m.remove(ctx, r, "remove"); err != nil {
			return nil, err
		}
		for _, c := range out.Changes {
			m.notify(ctx, r.Room, id, c.User, xmlstream.NewElement("x", NSAffiliations).AddChild(userElement(NSAffiliations, c.User, None)))
			m.rosterRemove(ctx, c.User, r.Room)
		}
		return out.Changes, nil
	}
	sr := r.MUCLightRoom
	sr.Version, sr.Members = nextVersion(r.Version), out.Members
	nr, err := m.update(ctx, r, sr, "change members of")
	if err != nil {
		return nil, err
	}
	m.archiveMembership(ctx, nr, id, out.Changes)
	m.announce(ctx, r, nr, id, out.Changes)
	return out.Changes, nil
}

// update stores sr, the next state of r, and caches it; the caller
// holds the room's lock. ErrStale is returned as is (change retries);
// other errors name op.
func (m *MUCLight) update(ctx context.Context, r *room, sr storage.MUCLightRoom, op string) (*room, error) {
	if err := m.store.UpdateMUCLightRoom(ctx, sr, r.Version); err != nil {
		if errors.Is(err, storage.ErrStale) {
			return nil, err
		}
		return nil, fmt.Errorf("muclight: %s %s: %w", op, r.Room, err)
	}
	nr := newRoom(sr)
	m.cache.put(r.Room, nr)
	return nr, nil
}

// remove deletes r from storage and the cache and runs the
// RoomDestroyed hooks; the caller holds the room's lock. ErrStale is
// returned as is; other errors name op.
func (m *MUCLight) remove(ctx context.Context, r *room, op string) error {
	if err := m.store.DeleteMUCLightRoom(ctx, r.Room, r.Version); err != nil {
		if errors.Is(err, storage.ErrStale) {
			return err
		}
		return fmt.Errorf("muclight: %s %s: %w", op, r.Room, err)
	}
	m.cache.drop(r.Room)
	m.roomDestroyed(ctx, r.Room)
	return nil
}

// announce sends the notifications of a membership change (muclight.md
// "Members"): members who stay get <prev-version>, <version> and every
// change; newcomers <version> and their own entry; removed users only
// their own none entry.
func (m *MUCLight) announce(ctx context.Context, old, nr *room, id string, changes []Change) {
	stay := xmlstream.NewElement("x", NSAffiliations).AddChild(
		textElement("prev-version", NSAffiliations, old.Version), textElement("version", NSAffiliations, nr.Version))
	for _, c := range changes {
		stay.AddChild(userElement(NSAffiliations, c.User, c.Aff))
	}
	for _, o := range nr.Members {
		if _, was := old.aff[o.User]; was {
			m.notify(ctx, nr.Room, id, o.User, stay)
			continue
		}
		m.notify(ctx, nr.Room, id, o.User, xmlstream.NewElement("x", NSAffiliations).AddChild(
			textElement("version", NSAffiliations, nr.Version), userElement(NSAffiliations, o.User, o.Affiliation)))
		m.rosterAdd(ctx, o.User, nr)
	}
	for _, c := range changes {
		if c.Aff == None {
			m.notify(ctx, nr.Room, id, c.User, xmlstream.NewElement("x", NSAffiliations).AddChild(userElement(NSAffiliations, c.User, None)))
			m.rosterRemove(ctx, c.User, nr.Room)
		}
	}
}

// destroy: muclight.md "Destroy": "Owner sends IQ set …#destroy. Before
// the result, every member gets <x …#affiliations><user
// affiliation='none'>self</user></x><x …#destroy/>". In equal mode,
// where nobody is owner, any member may.
func (m *MUCLight) destroy(ctx context.Context, req *request) (*xmlstream.Element, error) {
	if err := onlyChildren(req.Payload()); err != nil {
		return nil, err
	}
	err := m.change(ctx, req.To, func(r *room) error {
		aff, ok := r.aff[req.sender]
		if !ok {
			return stanza.NewError(stanza.ItemNotFound, "")
		}
		if aff != Owner && !m.cfg.EqualOccupants {
			return stanza.NewError(stanza.NotAllowed, "only owners destroy the room")
		}
		if err := m.remove(ctx, r, "destroy"); err != nil {
			return err
		}
		for _, o := range r.Members {
			m.notify(ctx, r.Room, req.ID, o.User,
				xmlstream.NewElement("x", NSAffiliations).AddChild(userElement(NSAffiliations, o.User, None)),
				xmlstream.NewElement("x", NSDestroy))
			m.rosterRemove(ctx, o.User, r.Room)
		}
		return nil
	})
	return nil, err
}

// userRemoving makes a removed account leave its rooms, with the usual
// notifications.
func (m *MUCLight) userRemoving(ctx context.Context, user jid.JID) {
	for svc := range m.services {
		refs, err := m.store.MUCLightRoomsOf(ctx, user, svc)
		if err != nil {
			m.log.Error("muclight: rooms of a removed account", "user", user.String(), "error", err)
			continue
		}
		for _, ref := range refs {
			err := m.change(ctx, ref.Room, func(r *room) error {
				_, err := m.applyAffiliations(ctx, r, user, []Change{{User: user, Aff: None}}, nil, "")
				return err
			})
			if err != nil {
				m.log.Error("muclight: a removed account leaves a room", "user", user.String(), "room", ref.Room.String(), "error", err)
			}
		}
	}
}

// roomDestroyed runs the RoomDestroyed hooks (the room archive goes).
func (m *MUCLight) roomDestroyed(ctx context.Context, room jid.JID) {
	for _, h := range m.hooks.RoomDestroyed.Hooks() {
		h.Fn(ctx, room)
	}
}
