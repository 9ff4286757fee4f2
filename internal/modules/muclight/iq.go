package muclight

import (
	"context"
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
	features := []string{NS, stanza.NSDiscoInfo, stanza.NSDiscoItems, rsm.NS}
	if m.cfg.Blocking {
		features = append(features, NSBlocking)
	}
	return discoInfo("MUC Light", features), nil
}

// discoInfo is a disco#info answer: identity conference/text with the
// name, and the features sorted.
func discoInfo(name string, features []string) *xmlstream.Element {
	q := xmlstream.NewElement("query", stanza.NSDiscoInfo)
	q.AddChild(xmlstream.NewElement("identity", stanza.NSDiscoInfo).SetAttr("category", "conference").SetAttr("type", "text").SetAttr("name", name))
	slices.Sort(features)
	for _, f := range features {
		q.AddChild(xmlstream.NewElement("feature", stanza.NSDiscoInfo).SetAttr("var", f))
	}
	return q
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
		q.AddChild(xmlstream.NewElement("item", stanza.NSDiscoItems).SetAttr("jid", r.Room.String()).
			SetAttr("name", field(r.Config, "roomname")).SetAttr("version", r.Version))
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
		// muclight.md "Errors": "Stanza to a room the sender does not
		// belong to: item-not-found" — archive queries included, so that
		// a non-member cannot tell the room exists.
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
	features := []string{NS, stanza.NSDiscoInfo}
	for _, ns := range []string{NSMAM2, NSMAM1} {
		if m.hooks.IQHandler(stanza.IQSet, module.TargetRoom, ns) != nil {
			features = append(features, ns)
		}
	}
	return discoInfo(r.field("roomname"), features)
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
func (m *MUCLight) parseFields(el *xmlstream.Element) ([]storage.MUCLightField, error) {
	var out []storage.MUCLightField
	for c := range el.Elements() {
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
