package mam

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/meerkat-xmpp/meerkat/dataform"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/rsm"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// maxIDs bounds the 'ids' field of a query.
const maxIDs = 250

// handleIQ answers the IQs of namespace ns to a user's own archive.
func (m *MAM) handleIQ(ns string) module.IQHandler {
	return func(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
		owner := iq.From.Bare()
		switch p := iq.Payload(); {
		case p.Name == "query":
			return m.query(ctx, iq, owner, ns)
		case p.Name == "prefs":
			return m.handlePrefs(ctx, iq, ns)
		case p.Name == "metadata" && iq.Type == stanza.IQGet:
			return m.metadata(ctx, owner, ns)
		}
		return nil, stanza.NewError(stanza.FeatureNotImplemented, "")
	}
}

// handleRoomIQ answers the IQs of namespace ns to a room's archive
// (XEP-0313 §6.1.2), which the room module dispatches after checking that
// the sender is a member.
func (m *MAM) handleRoomIQ(ns string) module.IQHandler {
	return func(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
		room := iq.To.Bare()
		switch p := iq.Payload(); {
		case p.Name == "query":
			return m.query(ctx, iq, room, ns)
		case p.Name == "metadata" && iq.Type == stanza.IQGet:
			return m.metadata(ctx, room, ns)
		}
		return nil, stanza.NewError(stanza.FeatureNotImplemented, "")
	}
}

// queryForm is the search form (XEP-0313 §4.1.1, and the extended fields
// of §7).
func queryForm(ns string) *xmlstream.Element {
	f := dataform.New(dataform.TypeForm, ns)
	f.Add(dataform.Field{Var: "with", Type: dataform.JIDSingle})
	f.Add(dataform.Field{Var: "start", Type: dataform.TextSingle})
	f.Add(dataform.Field{Var: "end", Type: dataform.TextSingle})
	f.Add(dataform.Field{Var: "before-id", Type: dataform.TextSingle})
	f.Add(dataform.Field{Var: "after-id", Type: dataform.TextSingle})
	f.Add(dataform.Field{Var: "ids", Type: dataform.TextMulti})
	return xmlstream.NewElement("query", ns).AddChild(f.Element())
}

// query answers a query of owner's archive (XEP-0313 §4): the results go
// to the asking session as messages, then the IQ result carries <fin/>.
func (m *MAM) query(ctx context.Context, iq *module.IQ, owner jid.JID, ns string) (*xmlstream.Element, error) {
	if iq.Type == stanza.IQGet {
		return queryForm(ns), nil
	}
	if iq.Session == nil {
		return nil, stanza.NewError(stanza.ServiceUnavailable, "archives are read by clients of this server")
	}
	// Read your writes: what reached the archive before the query (a
	// message the client just got) is in the results. Like MongooseIM's
	// asynchronous writer, the query waits for the queue to be written.
	if err := m.writer.Wait(ctx); err != nil {
		return nil, fmt.Errorf("mam: waiting for the archive writer: %w", err)
	}
	q := iq.Payload()
	aq, cursor, err := m.parseQuery(ctx, q, owner, ns)
	if err != nil {
		return nil, err
	}
	var page storage.ArchivePage
	count := -1
	if aq.Max == 0 {
		// XEP-0059 §2.7: max 0 asks for the count only.
		if count, err = m.store.CountArchive(ctx, aq); err != nil {
			return nil, fmt.Errorf("mam: counting the archive of %s: %w", owner, err)
		}
		page.Complete = count == 0
	} else if page, err = m.store.QueryArchive(ctx, aq); err != nil {
		return nil, fmt.Errorf("mam: querying the archive of %s: %w", owner, err)
	}

	queryID := q.Attr("queryid")
	msgs := page.Messages
	if q.Child("flip-page", ns) != nil {
		// §4.3.4: the page is the same, sent newest first.
		msgs = slices.Clone(msgs)
		slices.Reverse(msgs)
	}
	for _, msg := range msgs {
		res, err := m.resultMessage(msg, owner, iq.From, ns, queryID)
		if err != nil {
			m.log.Error("skipping an unreadable archived message", "owner", owner, "id", msg.ID, "error", err)
			continue
		}
		if !iq.Session.Deliver(res) {
			return nil, module.ErrReplied // the session is gone
		}
	}

	set := rsm.Result{FirstIndex: -1, Count: count}
	n := len(page.Messages)
	if n > 0 {
		set.First = m.codec.encode(page.Messages[0].ID)
		set.Last = m.codec.encode(page.Messages[n-1].ID)
	}
	// Without a cursor, a complete page is the whole result set: its
	// count is free.
	if aq.Max > 0 && page.Complete && !cursor {
		set.Count = n
		if n > 0 {
			set.FirstIndex = 0
		}
	}
	fin := xmlstream.NewElement("fin", ns)
	if page.Complete {
		fin.SetAttr("complete", "true")
	}
	if queryID != "" && ns == NSv1 {
		fin.SetAttr("queryid", queryID)
	}
	return fin.AddChild(set.Element()), nil
}

// parseQuery reads the form and the RSM set of a query.
func (m *MAM) parseQuery(ctx context.Context, q *xmlstream.Element, owner jid.JID, ns string) (aq storage.ArchiveQuery, cursor bool, err error) {
	// cursor tells an RSM <after/> or <before/> with an item: the page is
	// then a part of the result set whatever its completeness.
	aq.Owner = owner
	bad := func(format string, args ...any) error {
		return stanza.NewError(stanza.BadRequest, fmt.Sprintf(format, args...))
	}
	// known checks that a UID names a message of this archive (§4.1.3,
	// §4.3.2: item-not-found otherwise).
	known := func(uid string) (uint64, error) {
		ids, err := m.knownIDs(ctx, owner, []string{uid})
		if err != nil {
			return 0, err
		}
		return ids[0], nil
	}
	lower := func(id uint64) { aq.MinID = max(aq.MinID, id) }
	upper := func(id uint64) {
		if aq.MaxID == 0 || id < aq.MaxID {
			aq.MaxID = id
		}
	}

	if x := q.Child("x", dataform.NS); x != nil {
		form, err := dataform.Parse(x)
		if err != nil {
			return aq, false, bad("%v", err)
		}
		if ft := form.FormType(); ft != "" && ft != NS && ft != NSv1 {
			return aq, false, bad("FORM_TYPE %q is not %s", ft, ns)
		}
		for _, f := range form.Fields {
			v := ""
			if len(f.Values) > 0 {
				v = f.Values[0]
			}
			switch f.Var {
			case dataform.FormTypeVar:
			case "with":
				if aq.With, err = jid.Parse(v); err != nil {
					return aq, false, bad("with: %v", err)
				}
			case "start", "end":
				t, err := stanza.ParseTime(v)
				if err != nil {
					return aq, false, bad("%s: %v", f.Var, err)
				}
				if f.Var == "start" {
					lower(idAt(t))
				} else {
					// Inclusive, to the microsecond.
					upper(idAt(t.Truncate(time.Microsecond)) | 0xff)
				}
			case "after-id", "before-id":
				id, err := known(v)
				if err != nil {
					return aq, false, err
				}
				if f.Var == "after-id" {
					lower(id + 1)
				} else {
					upper(id - 1)
				}
			case "ids":
				if len(f.Values) > maxIDs {
					return aq, false, bad("more than %d ids", maxIDs)
				}
				if aq.IDs, err = m.knownIDs(ctx, owner, f.Values); err != nil {
					return aq, false, err
				}
			default:
				// §4.1.5: a field the server does not recognise.
				return aq, false, stanza.NewError(stanza.FeatureNotImplemented, "unknown field "+f.Var)
			}
		}
	}

	req, err := rsm.Parse(q.Child("set", rsm.NS))
	if err != nil {
		return aq, false, bad("%v", err)
	}
	if req.Index >= 0 {
		return aq, false, stanza.NewError(stanza.FeatureNotImplemented, "paging by index")
	}
	switch {
	case req.Max < 0:
		aq.Max = m.cfg.DefaultPageSize
	default:
		aq.Max = min(req.Max, m.cfg.MaxPageSize)
	}
	if req.HasAfter && req.HasBefore {
		// §4.3.2: use before-id and after-id for a range.
		return aq, false, bad("both <after/> and <before/>")
	}
	if req.HasAfter {
		id, err := known(req.After)
		if err != nil {
			return aq, false, err
		}
		lower(id + 1)
	}
	if req.HasBefore {
		// XEP-0059 §2.3, §2.5: the page just before an item, or with an empty
		// <before/> the last page.
		aq.Last = true
		if req.Before != "" {
			id, err := known(req.Before)
			if err != nil {
				return aq, false, err
			}
			upper(id - 1)
		}
	}
	if aq.MaxID != 0 && aq.MinID > aq.MaxID {
		aq.IDs = []uint64{} // an empty range
	}
	return aq, req.HasAfter || req.Before != "", nil
}

// knownIDs checks the UIDs of an 'ids' field with one storage lookup
// (XEP-0313 §4.1.3: any UID not in the archive fails the query with
// item-not-found) and returns their IDs. The error names the first UID
// in the field's order that is not in the archive, as checking them one
// by one would: the UIDs before the first one that does not decode are
// looked up, and if they are all there, that one is the culprit.
func (m *MAM) knownIDs(ctx context.Context, owner jid.JID, uids []string) ([]uint64, error) {
	ids := make([]uint64, 0, len(uids))
	for _, uid := range uids {
		id, ok := m.codec.decode(uid)
		if !ok {
			break
		}
		ids = append(ids, id)
	}
	var missing []uint64
	if len(ids) > 0 {
		var err error
		if missing, err = m.store.ArchiveMissing(ctx, owner, ids); err != nil {
			return nil, fmt.Errorf("mam: looking up %d ids in the archive of %s: %w", len(ids), owner, err)
		}
	}
	bad := len(ids) // the first UID that does not decode, if any
	if len(missing) > 0 {
		bad = slices.Index(ids, missing[0]) // missing keeps the order of ids
	}
	if bad < len(uids) {
		return nil, stanza.NewError(stanza.ItemNotFound, "no message "+uids[bad]+" in the archive")
	}
	return ids, nil
}

// resultMessage wraps an archived message for the requester (XEP-0313
// §4.2): from the archive's JID, with the message in a <forwarded/> and
// its archiving time in a <delay/>.
func (m *MAM) resultMessage(msg storage.ArchiveMessage, owner, to jid.JID, ns, queryID string) (*xmlstream.Element, error) {
	stored, err := xmlstream.Parse([]byte(msg.Stanza))
	if err != nil {
		return nil, fmt.Errorf("mam: archived message %d: %w", msg.ID, err)
	}
	uid := m.codec.encode(msg.ID)
	result := xmlstream.NewElement("result", ns).SetAttr("id", uid)
	if queryID != "" {
		result.SetAttr("queryid", queryID)
	}
	result.AddChild(stanza.Forwarded(stored, stampOf(msg.ID)))
	return xmlstream.NewElement("message", stanza.NSClient).
		SetAttr("from", owner.String()).SetAttr("to", to.String()).SetAttr("id", uid).
		AddChild(result), nil
}

// metadata answers an archive metadata request (XEP-0313 §5): the first
// and last messages of the archive.
func (m *MAM) metadata(ctx context.Context, owner jid.JID, ns string) (*xmlstream.Element, error) {
	if err := m.writer.Wait(ctx); err != nil {
		return nil, fmt.Errorf("mam: waiting for the archive writer: %w", err)
	}
	first, last, ok, err := m.store.ArchiveBounds(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("mam: the bounds of the archive of %s: %w", owner, err)
	}
	md := xmlstream.NewElement("metadata", ns)
	if ok {
		for _, b := range []struct {
			name string
			id   uint64
		}{{"start", first}, {"end", last}} {
			md.AddChild(xmlstream.NewElement(b.name, ns).
				SetAttr("id", m.codec.encode(b.id)).SetAttr("timestamp", stanza.FormatTime(stampOf(b.id))))
		}
	}
	return md, nil
}
