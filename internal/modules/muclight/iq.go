package muclight

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
	"github.com/meerkat-xmpp/meerkat/rsm"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// request is an IQ get or set to the service or a room.
type request struct {
	*stanza.Stanza
	session module.Session
	sender  jid.JID // bare
	// replyFrom is where the result comes from: the IQ's 'to', or the
	// new room for a room created at the service's JID.
	replyFrom jid.JID
}

func errBadRequest(text string) error { return stanza.NewError(stanza.BadRequest, text) }

// iq answers an IQ to the service or one of its rooms.
func (m *MUCLight) iq(ctx context.Context, st *stanza.Stanza, from module.Session) {
	if st.Type != stanza.IQGet && st.Type != stanza.IQSet {
		return // results and errors are not answered (RFC 6120 §8.2.3)
	}
	req := &request{Stanza: st, session: from, sender: st.From.Bare(), replyFrom: st.To}
	var res *xmlstream.Element
	var err error
	switch {
	case !st.To.IsBare():
		// MUC Light has no occupant JIDs.
		err = stanza.NewError(stanza.ItemNotFound, "")
	case st.To.Local() == "":
		res, err = m.serviceIQ(ctx, req)
	default:
		res, err = m.roomIQ(ctx, req)
	}
	if err != nil {
		if errors.Is(err, module.ErrReplied) {
			return
		}
		var se *stanza.Error
		if !errors.As(err, &se) {
			m.log.Error("muclight: IQ failed", "ns", st.Payload().NS, "type", st.Type, "to", st.To.String(), "from", st.From.String(), "error", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		m.bounce(ctx, st, se)
		return
	}
	result := stanza.NewIQ(stanza.IQResult, st.ID, st.From, req.replyFrom, res)
	m.host.Route(ctx, &stanza.Stanza{El: result, Kind: stanza.KindIQ, Type: stanza.IQResult, ID: st.ID, To: st.From, From: req.replyFrom})
}

// serviceIQ answers IQs to the service's JID.
func (m *MUCLight) serviceIQ(ctx context.Context, req *request) (*xmlstream.Element, error) {
	p := req.Payload()
	switch {
	case req.Type == stanza.IQGet && p.NS == stanza.NSDiscoInfo:
		return m.serviceInfo(p)
	case req.Type == stanza.IQGet && p.NS == stanza.NSDiscoItems:
		return m.serviceItems(ctx, req, p)
	case p.NS == NSCreate:
		if req.Type != stanza.IQSet {
			return nil, errBadRequest("create is a set")
		}
		return m.create(ctx, req, jid.JID{})
	case p.NS == NSBlocking && m.cfg.Blocking:
		if req.Type == stanza.IQGet {
			return m.blockingGet(ctx, req)
		}
		return m.blockingSet(ctx, req)
	}
	// RFC 6120 §8.4: a namespace the service does not know.
	return nil, stanza.NewError(stanza.ServiceUnavailable, "")
}

// serviceInfo: muclight.md "Service discovery": "identity
// conference/text, feature urn:xmpp:muclight:0".
func (m *MUCLight) serviceInfo(p *xmlstream.Element) (*xmlstream.Element, error) {
	if p.Attr("node") != "" {
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	q := xmlstream.NewElement("query", stanza.NSDiscoInfo)
	q.AddChild(xmlstream.NewElement("identity", stanza.NSDiscoInfo).SetAttr("category", "conference").SetAttr("type", "text").SetAttr("name", "MUC Light"))
	features := []string{NS, stanza.NSDiscoInfo, stanza.NSDiscoItems, rsm.NS}
	if m.cfg.Blocking {
		features = append(features, NSBlocking)
	}
	slices.Sort(features)
	for _, f := range features {
		q.AddChild(xmlstream.NewElement("feature", stanza.NSDiscoInfo).SetAttr("var", f))
	}
	return q, nil
}

// serviceItems lists the rooms of the asking user (muclight.md "Service
// discovery": "each item with jid, name and version; paged with RSM").
// Items are in room JID order; <after/> and <before/> name a room JID.
func (m *MUCLight) serviceItems(ctx context.Context, req *request, p *xmlstream.Element) (*xmlstream.Element, error) {
	if p.Attr("node") != "" {
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	page, err := rsm.Parse(p.Child("set", rsm.NS))
	if err != nil {
		return nil, errBadRequest(err.Error())
	}
	refs, err := m.store.MUCLightRoomsOf(ctx, req.sender, req.To.Domain())
	if err != nil {
		return nil, fmt.Errorf("muclight: rooms of %s: %w", req.sender, err)
	}
	size := m.cfg.RoomsPerPage
	if page.Max >= 0 {
		size = min(page.Max, 10*m.cfg.RoomsPerPage)
	}
	start, end := 0, len(refs)
	pos := func(after string) int {
		return slices.IndexFunc(refs, func(r storage.MUCLightRoomRef) bool { return r.Room.String() == after })
	}
	switch {
	case page.HasAfter && page.After != "":
		i := pos(page.After)
		if i < 0 {
			return nil, stanza.NewError(stanza.ItemNotFound, "no such room in the list")
		}
		start = i + 1
		end = min(start+size, len(refs))
	case page.HasBefore:
		if page.Before != "" {
			i := pos(page.Before)
			if i < 0 {
				return nil, stanza.NewError(stanza.ItemNotFound, "no such room in the list")
			}
			end = i
		}
		start = max(end-size, 0)
	case page.Index >= 0:
		start = min(page.Index, len(refs))
		end = min(start+size, len(refs))
	default:
		end = min(size, len(refs))
	}
	q := xmlstream.NewElement("query", stanza.NSDiscoItems)
	for _, r := range refs[start:end] {
		name := ""
		for _, f := range r.Config {
			if f.Name == "roomname" {
				name = f.Value
			}
		}
		q.AddChild(xmlstream.NewElement("item", stanza.NSDiscoItems).SetAttr("jid", r.Room.String()).
			SetAttr("name", name).SetAttr("version", r.Version))
	}
	res := rsm.Result{FirstIndex: -1, Count: len(refs)}
	if end > start {
		res.First, res.FirstIndex, res.Last = refs[start].Room.String(), start, refs[end-1].Room.String()
	}
	return q.AddChild(res.Element()), nil
}

// roomIQ answers IQs to a room's JID.
func (m *MUCLight) roomIQ(ctx context.Context, req *request) (*xmlstream.Element, error) {
	p := req.Payload()
	if p.NS == NSCreate {
		if req.Type != stanza.IQSet {
			return nil, errBadRequest("create is a set")
		}
		return m.create(ctx, req, req.To)
	}
	r, err := m.load(ctx, req.To)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	if _, member := r.aff[req.sender]; !member {
		if p.NS == NSMAM2 || p.NS == NSMAM1 {
			// XEP-0313: a room archive is for its members.
			return nil, stanza.NewError(stanza.Forbidden, "")
		}
		// muclight.md "Errors": "Stanza to a room the sender does not
		// belong to: item-not-found".
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	get := req.Type == stanza.IQGet
	switch p.NS {
	case NSConfiguration:
		if get {
			return m.configGet(r, p)
		}
		return m.configSet(ctx, req, p)
	case NSAffiliations:
		if get {
			return m.affiliationsGet(r, p)
		}
		return m.affiliationsSet(ctx, req, p)
	case NSInfo:
		if !get {
			return nil, errBadRequest("info is a get")
		}
		return m.info(r, p)
	case NSDestroy:
		if get {
			return nil, errBadRequest("destroy is a set")
		}
		return m.destroy(ctx, req)
	case stanza.NSDiscoInfo:
		if !get {
			return nil, errBadRequest("")
		}
		return m.roomDiscoInfo(r), nil
	case NSMAM2, NSMAM1:
		// muclight.md "Archive (MAM) rules": "queried at the room's JID";
		// answered by the archive module through the TargetRoom hook.
		h := m.hooks.IQHandler(req.Type, module.TargetRoom, p.NS)
		if h == nil {
			return nil, stanza.NewError(stanza.ServiceUnavailable, "")
		}
		return h(ctx, &module.IQ{Stanza: req.Stanza, Session: req.session, Target: module.TargetRoom})
	}
	return nil, stanza.NewError(stanza.ServiceUnavailable, "")
}

func (m *MUCLight) roomDiscoInfo(r *room) *xmlstream.Element {
	q := xmlstream.NewElement("query", stanza.NSDiscoInfo)
	q.AddChild(xmlstream.NewElement("identity", stanza.NSDiscoInfo).SetAttr("category", "conference").SetAttr("type", "text").SetAttr("name", r.field("roomname")))
	features := []string{NS, stanza.NSDiscoInfo}
	for _, ns := range []string{NSMAM2, NSMAM1} {
		if m.hooks.IQHandler(stanza.IQSet, module.TargetRoom, ns) != nil {
			features = append(features, ns)
		}
	}
	slices.Sort(features)
	for _, f := range features {
		q.AddChild(xmlstream.NewElement("feature", stanza.NSDiscoInfo).SetAttr("var", f))
	}
	return q
}

// onlyChildren fails unless every child element of p is one of names in
// p's namespace (muclight.md "Errors": "Malformed or unknown query
// content: bad-request").
func onlyChildren(p *xmlstream.Element, names ...string) error {
	for c := range p.Elements() {
		if c.NS != p.NS || !slices.Contains(names, c.Name) {
			return errBadRequest("unexpected <" + c.Name + "/>")
		}
	}
	return nil
}

func hasElements(el *xmlstream.Element) bool {
	for range el.Elements() {
		return true
	}
	return false
}

// parseFields reads configuration fields: each a leaf element named
// after a field of the schema, at most once, no longer than
// max_field_size. The names version and prev-version are reserved
// (muclight.md "Configuration").
func (m *MUCLight) parseFields(el *xmlstream.Element, skip ...string) ([]storage.MUCLightField, error) {
	var out []storage.MUCLightField
	for c := range el.Elements() {
		if slices.Contains(skip, c.Name) && c.NS == el.NS {
			continue
		}
		if c.NS != el.NS || c.Name == "version" || c.Name == "prev-version" || !slices.Contains(m.cfg.ConfigFields, c.Name) || hasElements(c) {
			return nil, errBadRequest("unknown configuration field <" + c.Name + "/>")
		}
		if slices.ContainsFunc(out, func(f storage.MUCLightField) bool { return f.Name == c.Name }) {
			return nil, errBadRequest("<" + c.Name + "/> given twice")
		}
		v := c.Text()
		if m.cfg.MaxFieldSize > 0 && len(v) > m.cfg.MaxFieldSize {
			return nil, stanza.NewError(stanza.NotAcceptable, c.Name+" is longer than "+strconv.Itoa(m.cfg.MaxFieldSize)+" bytes")
		}
		out = append(out, storage.MUCLightField{Name: c.Name, Value: v})
	}
	return out, nil
}

// parseUsers reads <user affiliation='…'>bare JID</user> items.
func parseUsers(el *xmlstream.Element, allowNone bool) ([]Change, error) {
	var out []Change
	for c := range el.Elements() {
		if c.Name != "user" || c.NS != el.NS {
			return nil, errBadRequest("unexpected <" + c.Name + "/>")
		}
		aff := storage.MUCLightAffiliation(c.Attr("affiliation"))
		if aff != Owner && aff != Member && (aff != None || !allowNone) {
			return nil, errBadRequest("affiliation " + strconv.Quote(string(aff)))
		}
		u, err := jid.Parse(c.Text())
		if err != nil || !u.IsBare() || u.Local() == "" {
			return nil, errBadRequest(strconv.Quote(c.Text()) + " is not a user's bare JID")
		}
		out = append(out, Change{User: u, Aff: aff})
	}
	return out, nil
}

// checkUsers refuses rooms of the service as members: a room's copies
// and notifications would come back to the service, under the lock of
// the room that sends them.
func (m *MUCLight) checkUsers(cs []Change) error {
	for _, c := range cs {
		if m.services[c.User.Domain()] {
			return errBadRequest(c.User.String() + " is a room, not a user")
		}
	}
	return nil
}

func userElement(ns string, u jid.JID, aff storage.MUCLightAffiliation) *xmlstream.Element {
	return xmlstream.NewElement("user", ns).SetAttr("affiliation", string(aff)).AddText(u.String())
}

func textElement(name, ns, text string) *xmlstream.Element {
	return xmlstream.NewElement(name, ns).AddText(text)
}

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
		res, err := m.createRoom(ctx, req, roomJID, creator, cfg, occupants)
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

func (m *MUCLight) createRoom(ctx context.Context, req *request, roomJID, creator jid.JID, cfg []storage.MUCLightField, occupants []Change) (*xmlstream.Element, error) {
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
	out, serr := m.rules.Apply(start, creator, occupants, true, func(u jid.JID) bool { return m.blocked(ctx, u, roomJID, creator) })
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
	refs, err := m.store.MUCLightRoomsOf(ctx, user, service)
	if err != nil {
		return fmt.Errorf("muclight: rooms of %s: %w", user, err)
	}
	if len(refs) >= m.cfg.RoomsPerUser {
		return stanza.NewError(stanza.NotAllowed, user.String()+" is in "+strconv.Itoa(m.cfg.RoomsPerUser)+" rooms, the most allowed")
	}
	return nil
}

// notify sends a notification of the room to one user: a groupchat
// message from the room with the IQ's id, the given payloads and an
// empty body (muclight.md "Create": "The notification messages carry the
// same id as the IQ").
func (m *MUCLight) notify(ctx context.Context, roomJID jid.JID, id string, to jid.JID, payloads ...*xmlstream.Element) {
	msg := xmlstream.NewElement("message", stanza.NSClient).SetAttr("from", roomJID.String()).SetAttr("type", stanza.MessageGroupchat)
	if id != "" {
		msg.SetAttr("id", id)
	}
	msg.AddChild(payloads...)
	msg.AddChild(xmlstream.NewElement("body", stanza.NSClient))
	m.sendTo(ctx, msg, stanza.KindMessage, stanza.MessageGroupchat, roomJID, to)
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
	msg := xmlstream.NewElement("message", stanza.NSClient).SetAttr("from", r.Room.String()).SetAttr("type", stanza.MessageGroupchat)
	if id != "" {
		msg.SetAttr("id", id)
	}
	msg.AddChild(x, xmlstream.NewElement("body", stanza.NSClient))
	st := &stanza.Stanza{El: msg, Kind: stanza.KindMessage, Type: stanza.MessageGroupchat, ID: id, From: r.Room}
	module.RunStanza(ctx, &m.hooks.RoomMessage, &module.StanzaEvent{Stanza: st, User: r.Room})
}

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
	for _, f := range r.Config {
		q.AddChild(textElement(f.Name, NSConfiguration, f.Value))
	}
	return q, nil
}

func (m *MUCLight) affiliationsGet(r *room, p *xmlstream.Element) (*xmlstream.Element, error) {
	if err := onlyChildren(p, "version"); err != nil {
		return nil, err
	}
	if versionMatches(r, p) {
		return nil, nil
	}
	q := xmlstream.NewElement("query", NSAffiliations).AddChild(textElement("version", NSAffiliations, r.Version))
	for _, o := range r.Members {
		q.AddChild(userElement(NSAffiliations, o.User, o.Affiliation))
	}
	return q, nil
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
	cfg := xmlstream.NewElement("configuration", NSInfo)
	for _, f := range r.Config {
		cfg.AddChild(textElement(f.Name, NSInfo, f.Value))
	}
	occ := xmlstream.NewElement("occupants", NSInfo)
	for _, o := range r.Members {
		occ.AddChild(userElement(NSInfo, o.User, o.Affiliation))
	}
	return xmlstream.NewElement("query", NSInfo).AddChild(textElement("version", NSInfo, r.Version), cfg, occ), nil
}

// change runs fn on the room's stored state under the room's lock and
// retries it when another node changed the room in between
// (storage.ErrStale). fn returns nil when the room is gone.
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
		if err := m.store.UpdateMUCLightRoom(ctx, sr, r.Version); err != nil {
			if errors.Is(err, storage.ErrStale) {
				return err
			}
			return fmt.Errorf("muclight: configure %s: %w", r.Room, err)
		}
		nr := newRoom(sr)
		m.cache.put(r.Room, nr)
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
	var done []Change
	err = m.change(ctx, req.To, func(r *room) error {
		var err error
		done, err = m.applyAffiliations(ctx, r, req.sender, reqs, req.ID)
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
// asks for; the caller holds the room's lock.
func (m *MUCLight) applyAffiliations(ctx context.Context, r *room, requester jid.JID, reqs []Change, id string) ([]Change, error) {
	if _, ok := r.aff[requester]; !ok {
		return nil, stanza.NewError(stanza.ItemNotFound, "")
	}
	out, serr := m.rules.Apply(r.Members, requester, reqs, false, func(u jid.JID) bool { return m.blocked(ctx, u, r.Room, requester) })
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
		if err := m.store.DeleteMUCLightRoom(ctx, r.Room, r.Version); err != nil {
			if errors.Is(err, storage.ErrStale) {
				return nil, err
			}
			return nil, fmt.Errorf("muclight: remove %s: %w", r.Room, err)
		}
		m.cache.drop(r.Room)
		for _, c := range out.Changes {
			m.notify(ctx, r.Room, id, c.User, xmlstream.NewElement("x", NSAffiliations).AddChild(userElement(NSAffiliations, c.User, None)))
			m.rosterRemove(ctx, c.User, r.Room)
		}
		return out.Changes, nil
	}
	sr := r.MUCLightRoom
	sr.Version, sr.Members = nextVersion(r.Version), out.Members
	if err := m.store.UpdateMUCLightRoom(ctx, sr, r.Version); err != nil {
		if errors.Is(err, storage.ErrStale) {
			return nil, err
		}
		return nil, fmt.Errorf("muclight: change members of %s: %w", r.Room, err)
	}
	nr := newRoom(sr)
	m.cache.put(r.Room, nr)
	m.archiveMembership(ctx, nr, id, out.Changes)
	m.announce(ctx, r, nr, id, out.Changes)
	return out.Changes, nil
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
		if err := m.store.DeleteMUCLightRoom(ctx, r.Room, r.Version); err != nil {
			if errors.Is(err, storage.ErrStale) {
				return err
			}
			return fmt.Errorf("muclight: destroy %s: %w", r.Room, err)
		}
		m.cache.drop(r.Room)
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

// blockingGet: muclight.md "Blocking": "Get returns the deny items only".
func (m *MUCLight) blockingGet(ctx context.Context, req *request) (*xmlstream.Element, error) {
	if err := onlyChildren(req.Payload()); err != nil {
		return nil, err
	}
	list, err := m.store.MUCLightBlocking(ctx, req.sender, req.To.Domain())
	if err != nil {
		return nil, fmt.Errorf("muclight: blocking list of %s: %w", req.sender, err)
	}
	q := xmlstream.NewElement("query", NSBlocking)
	for _, b := range list {
		q.AddChild(xmlstream.NewElement(b.Kind, NSBlocking).SetAttr("action", "deny").AddText(b.JID.String()))
	}
	return q, nil
}

// blockingSet: <room action='deny|allow'> and <user action='deny|allow'>
// items, mixed freely; allowing what is not blocked is not an error.
func (m *MUCLight) blockingSet(ctx context.Context, req *request) (*xmlstream.Element, error) {
	p := req.Payload()
	var deny, allow []storage.MUCLightBlock
	for c := range p.Elements() {
		if c.NS != NSBlocking || c.Name != "room" && c.Name != "user" {
			return nil, errBadRequest("unexpected <" + c.Name + "/>")
		}
		j, err := jid.Parse(c.Text())
		if err != nil || !j.IsBare() || j.Local() == "" || c.Name == "room" && j.Domain() != req.To.Domain() {
			return nil, errBadRequest(strconv.Quote(c.Text()) + " is not a " + c.Name)
		}
		b := storage.MUCLightBlock{Kind: c.Name, JID: j}
		switch c.Attr("action") {
		case "deny":
			deny = append(deny, b)
		case "allow":
			allow = append(allow, b)
		default:
			return nil, errBadRequest("action must be deny or allow")
		}
	}
	if len(deny)+len(allow) == 0 {
		return nil, errBadRequest("no item")
	}
	if err := m.store.SetMUCLightBlocking(ctx, req.sender, req.To.Domain(), deny, allow); err != nil {
		return nil, fmt.Errorf("muclight: blocking list of %s: %w", req.sender, err)
	}
	return nil, nil
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
				_, err := m.applyAffiliations(ctx, r, user, []Change{{User: user, Aff: None}}, "")
				return err
			})
			if err != nil {
				m.log.Error("muclight: a removed account leaves a room", "user", user.String(), "room", ref.Room.String(), "error", err)
			}
		}
	}
}
