package inbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/dataform"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/rsm"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func badRequest(format string, args ...any) error {
	return &stanza.Error{Type: stanza.ErrorModify, Condition: stanza.BadRequest, Text: fmt.Sprintf(format, args...)}
}

// queryForm answers the IQ get <query/>: the form of the fetch
// (spec "Query form"), a XEP-0004 form with FORM_TYPE NS.
func (ib *Inbox) queryForm(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if p := iq.Payload(); p.Name != "query" {
		return nil, badRequest("expected <query/>")
	}
	boxes := append([]dataform.Option{{Value: BoxAll}}, ib.boxOptions...)
	f := dataform.New(dataform.TypeForm, NS).
		Add(dataform.Field{Var: "start", Type: dataform.TextSingle}).
		Add(dataform.Field{Var: "end", Type: dataform.TextSingle}).
		Add(dataform.Field{Var: "order", Type: dataform.ListSingle, Values: []string{"desc"},
			Options: []dataform.Option{{Label: "Ascending by timestamp", Value: "asc"}, {Label: "Descending by timestamp", Value: "desc"}}}).
		Add(dataform.Field{Var: "hidden_read", Type: dataform.Boolean, Values: []string{"false"}}).
		Add(dataform.Field{Var: "box", Type: dataform.ListSingle, Values: []string{BoxAll}, Options: boxes}).
		Add(dataform.Field{Var: "archive", Type: dataform.Boolean})
	return xmlstream.NewElement("query", NS).AddChild(f.Element()), nil
}

// inboxSet dispatches the IQ sets of NS: the fetch and emptying the bin.
func (ib *Inbox) inboxSet(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	switch p := iq.Payload(); p.Name {
	case "inbox":
		return ib.fetch(ctx, iq)
	case "empty-bin":
		ib.syncWrites(ctx)
		n, err := ib.store.EmptyInboxBin(ctx, iq.From.Bare())
		if err != nil {
			return nil, fmt.Errorf("inbox: empty the bin of %s: %w", iq.From.Bare(), err)
		}
		return xmlstream.NewElement("empty-bin", NS).AddChild(
			xmlstream.NewElement("num", NS).AddText(strconv.Itoa(n))), nil
	}
	return nil, badRequest("expected <inbox/> or <empty-bin/>")
}

// fetchRequest is a parsed <inbox/>.
type fetchRequest struct {
	q         storage.InboxQuery
	hasRSM    bool
	countOnly bool
}

// parseFetch reads the form and RSM of an <inbox/> (spec "Fetching the
// inbox"). Without a form: every box but the bin, newest first. RSM
// <before/> and <after/> are XEP-0082 times (the 'first' and 'last' the
// server returns) and bound the stamps exclusively; they override the
// form's start and end.
func (ib *Inbox) parseFetch(p *xmlstream.Element, user jid.JID) (fetchRequest, error) {
	r := fetchRequest{q: storage.InboxQuery{Owner: user}}
	var form *dataform.Form
	var set *xmlstream.Element
	for c := range p.Elements() {
		switch {
		case c.Name == "x" && c.NS == dataform.NS:
			f, err := dataform.Parse(c)
			if err != nil {
				return r, badRequest("%v", err)
			}
			form = f
		case c.Name == "set" && c.NS == rsm.NS:
			set = c
		}
	}
	if form != nil {
		if err := ib.applyForm(&r.q, form); err != nil {
			return r, err
		}
	}
	req, err := rsm.Parse(set)
	if err != nil {
		return r, badRequest("%v", err)
	}
	r.hasRSM = set != nil
	if req.Index >= 0 {
		// XEP-0059 §2.6: paging by index is optional.
		return r, stanza.NewError(stanza.FeatureNotImplemented, "paging by <index/> is not supported; use <before/> or <after/>")
	}
	if req.HasAfter && req.After != "" {
		t, err := stanza.ParseTime(req.After)
		if err != nil {
			return r, badRequest("<after/> is not an XEP-0082 time: %q", req.After)
		}
		r.q.After, r.q.Start = t, time.Time{}
	}
	if req.HasBefore && req.Before != "" {
		t, err := stanza.ParseTime(req.Before)
		if err != nil {
			return r, badRequest("<before/> is not an XEP-0082 time: %q", req.Before)
		}
		r.q.Before, r.q.End = t, time.Time{}
	}
	r.q.Max = ib.cfg.MaxResultLimit
	switch {
	case req.Max == 0:
		r.countOnly = true // §2.7: the count only
	case req.Max > 0 && (r.q.Max == 0 || req.Max < r.q.Max):
		r.q.Max = req.Max
	}
	return r, nil
}

func (ib *Inbox) applyForm(q *storage.InboxQuery, f *dataform.Form) error {
	if f.Type != dataform.TypeSubmit {
		return badRequest("the form must be of type submit")
	}
	if ft := f.FormType(); ft != "" && ft != NS {
		return badRequest("FORM_TYPE %q is not %s", ft, NS)
	}
	archive := ""
	boxSet := false
	for _, fl := range f.Fields {
		v := ""
		if len(fl.Values) > 0 {
			v = fl.Values[0]
		}
		switch fl.Var {
		case dataform.FormTypeVar:
		case "start", "end":
			if v == "" {
				continue
			}
			t, err := stanza.ParseTime(v)
			if err != nil {
				return badRequest("field %s: %q is not an XEP-0082 time", fl.Var, v)
			}
			if fl.Var == "start" {
				q.Start = t
			} else {
				q.End = t
			}
		case "order":
			switch v {
			case "asc":
				q.Ascending = true
			case "desc", "":
				q.Ascending = false
			default:
				return badRequest("field order: %q is neither asc nor desc", v)
			}
		case "hidden_read":
			if v == "" {
				continue
			}
			b, err := dataform.Bool(v)
			if err != nil {
				return badRequest("field hidden_read: %q is not a boolean", v)
			}
			q.UnreadOnly = b
		case "box":
			switch {
			case v == BoxAll:
				q.AllBoxes, boxSet = true, true
			case v == "":
			case ib.boxes[v]:
				q.Box, boxSet = v, true
			default:
				return badRequest("field box: no box %q", v)
			}
		case "archive":
			if v == "" {
				continue
			}
			b, err := dataform.Bool(v)
			if err != nil {
				return badRequest("field archive: %q is not a boolean", v)
			}
			archive = storage.BoxInbox
			if b {
				archive = storage.BoxArchive
			}
		default:
			return badRequest("unknown field %q", fl.Var)
		}
	}
	// The older boolean: archive=true is box=archive, false box=inbox;
	// box wins when both are there.
	if archive != "" && !boxSet {
		q.Box = archive
	}
	return nil
}

var resultSeq atomic.Uint64

// resultOverhead is about what a result message adds to the last message
// it carries (the envelope, <result/>, <forwarded/>, <delay/>, box,
// archive, mute), for max_result_bytes.
const resultOverhead = 350

// fetch answers the <inbox/> IQ set: one message per entry to the
// requesting resource, then the IQ result with the <fin/>.
func (ib *Inbox) fetch(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	user := iq.From.Bare()
	p := iq.Payload()
	r, err := ib.parseFetch(p, user)
	if err != nil {
		return nil, err
	}
	queryID := p.Attr("queryid")
	if queryID == "" {
		queryID = iq.ID
	}
	ib.syncWrites(ctx)
	var entries []storage.InboxEntry
	if !r.countOnly {
		entries, err = ib.store.QueryInbox(ctx, r.q)
		if err != nil {
			return nil, fmt.Errorf("inbox: query of %s: %w", user, err)
		}
	}
	now := ib.now()
	count, unread, active, size := 0, 0, 0, 0
	truncated := false
	for i, e := range entries {
		// The results are queued for the client at once: past
		// max_result_bytes the page ends, and the fin's <set/> says
		// where the next one starts.
		size += len(e.Message) + resultOverhead
		if ib.cfg.MaxResultBytes > 0 && count > 0 && size > ib.cfg.MaxResultBytes {
			entries, truncated = entries[:i], true
			break
		}
		msg, err := ib.resultMessage(e, iq.From, queryID, now)
		if err != nil {
			ib.log.Error("inbox: skipping an unreadable entry", "user", user.String(), "with", e.With.String(), "error", err)
			continue
		}
		ib.deliver(ctx, iq, msg)
		count++
		unread += e.Unread
		if e.Unread > 0 {
			active++
		}
	}
	// The fin (spec "Fetching the inbox"): entries returned, their unread
	// messages, how many have some.
	fin := xmlstream.NewElement("fin", NS).AddChild(
		xmlstream.NewElement("count", NS).AddText(strconv.Itoa(count)),
		xmlstream.NewElement("unread-messages", NS).AddText(strconv.Itoa(unread)),
		xmlstream.NewElement("active-conversations", NS).AddText(strconv.Itoa(active)),
	)
	if r.hasRSM || truncated || r.q.Max > 0 && len(entries) == r.q.Max {
		// XEP-0059 §2.1: first and last of the page (their stamps, the
		// markers for the next page) and the size of the whole set.
		all := r.q
		all.Max, all.After, all.Before = 0, time.Time{}, time.Time{}
		total, err := ib.store.CountInbox(ctx, all)
		if err != nil {
			return nil, fmt.Errorf("inbox: count of %s: %w", user, err)
		}
		res := rsm.Result{FirstIndex: -1, Count: total}
		if len(entries) > 0 {
			res.First = stanza.FormatTime(entries[0].Stamp)
			res.Last = stanza.FormatTime(entries[len(entries)-1].Stamp)
		}
		fin.AddChild(res.Element())
	}
	return fin, nil
}

// deliver sends el to the requesting resource, before the IQ result (a
// session that is ending drops it, as it will the result).
func (ib *Inbox) deliver(ctx context.Context, iq *module.IQ, el *xmlstream.Element) {
	if iq.Session != nil {
		iq.Session.Deliver(el)
		return
	}
	ib.host.Send(ctx, el)
}

// resultMessage builds the message of one entry (spec "Fetching the
// inbox"): <result unread queryid> with the last message in a XEP-0297
// <forwarded/> stamped with a XEP-0203 <delay/>, then box, archive and
// mute.
func (ib *Inbox) resultMessage(e storage.InboxEntry, to jid.JID, queryID string, now time.Time) (*xmlstream.Element, error) {
	fwd, err := forwarded(e)
	if err != nil {
		return nil, err
	}
	res := xmlstream.NewElement("result", NS).
		SetAttr("unread", strconv.Itoa(e.Unread)).
		SetAttr("queryid", queryID).
		AddChild(fwd).
		AddChild(filing(NS, e, now)...)
	return xmlstream.NewElement("message", stanza.NSClient).
		SetAttr("from", e.Owner.String()).
		SetAttr("to", to.String()).
		SetAttr("id", "inbox-"+strconv.FormatUint(resultSeq.Add(1), 36)).
		AddChild(res), nil
}

func forwarded(e storage.InboxEntry) (*xmlstream.Element, error) {
	msg, err := xmlstream.Parse([]byte(e.Message))
	if err != nil {
		return nil, fmt.Errorf("stored message: %w", err)
	}
	return stanza.Forwarded(msg, e.Stamp), nil
}

// muteValue is "0" or the RFC 3339 time the mute ends.
func muteValue(e storage.InboxEntry, now time.Time) string {
	if e.MutedUntil.IsZero() || !e.MutedUntil.After(now) {
		return "0"
	}
	return stanza.FormatTime(e.MutedUntil)
}

// filing is an entry's box, archive and mute, in namespace ns: what a
// fetch's result and the entry's properties both carry.
func filing(ns string, e storage.InboxEntry, now time.Time) []*xmlstream.Element {
	return []*xmlstream.Element{
		xmlstream.NewElement("box", ns).AddText(e.Box),
		xmlstream.NewElement("archive", ns).AddText(strconv.FormatBool(e.Box == storage.BoxArchive)),
		xmlstream.NewElement("mute", ns).AddText(muteValue(e, now)),
	}
}

// properties appends an entry's properties to parent (spec "Entry
// properties"): box, archive, mute, read, in NSConversation.
func properties(parent *xmlstream.Element, e storage.InboxEntry, now time.Time) *xmlstream.Element {
	return parent.AddChild(filing(NSConversation, e, now)...).
		AddChild(xmlstream.NewElement("read", NSConversation).AddText(strconv.FormatBool(e.Unread == 0)))
}

// entryJID reads the 'jid' of a #conversation query.
func entryJID(p *xmlstream.Element) (jid.JID, error) {
	v := p.Attr("jid")
	j, err := jid.Parse(v)
	if err != nil {
		return j, &stanza.Error{Type: stanza.ErrorModify, Condition: stanza.JIDMalformed, Text: fmt.Sprintf("%q is not a JID", v)}
	}
	return j.Bare(), nil
}

// conversationGet answers the IQ get <query xmlns='…#conversation'/>:
// without 'jid' the form of the settable properties; with it the entry's
// properties, and its last message with complete='true'.
func (ib *Inbox) conversationGet(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	p := iq.Payload()
	if p.Name != "query" {
		return nil, badRequest("expected <query/>")
	}
	if p.Attr("jid") == "" {
		f := dataform.New(dataform.TypeForm, NSConversation).
			Add(dataform.Field{Var: "archive", Type: dataform.Boolean, Values: []string{"false"}}).
			Add(dataform.Field{Var: "read", Type: dataform.Boolean, Values: []string{"false"}}).
			Add(dataform.Field{Var: "mute", Type: dataform.TextSingle, Values: []string{"0"}}).
			Add(dataform.Field{Var: "box", Type: dataform.ListSingle, Values: []string{storage.BoxInbox}, Options: ib.boxOptions})
		return xmlstream.NewElement("query", NSConversation).AddChild(f.Element()), nil
	}
	with, err := entryJID(p)
	if err != nil {
		return nil, err
	}
	ib.syncWrites(ctx)
	e, err := ib.store.InboxEntry(ctx, iq.From.Bare(), with)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, stanza.NewError(stanza.ItemNotFound, "no inbox entry for "+with.String())
	}
	if err != nil {
		return nil, fmt.Errorf("inbox: entry of %s for %s: %w", iq.From.Bare(), with, err)
	}
	res := xmlstream.NewElement("query", NSConversation)
	if complete, _ := dataform.Bool(p.Attr("complete")); complete {
		fwd, err := forwarded(e)
		if err != nil {
			return nil, fmt.Errorf("inbox: entry of %s for %s: %w", iq.From.Bare(), with, err)
		}
		res.AddChild(fwd)
	}
	return properties(res, e, ib.now()), nil
}

// parseProperties reads the children of a #conversation set. Every value
// is checked before anything changes: a bad one gives bad-request.
func (ib *Inbox) parseProperties(p *xmlstream.Element, now time.Time) (storage.InboxProperties, error) {
	var props storage.InboxProperties
	var archive *string
	n := 0
	for c := range p.Elements() {
		if c.NS != NSConversation {
			continue
		}
		v := strings.TrimSpace(c.Text())
		switch c.Name {
		case "box":
			if !ib.boxes[v] {
				return props, badRequest("no box %q", v)
			}
			props.Box = &v
		case "archive":
			b, err := dataform.Bool(v)
			if err != nil {
				return props, badRequest("archive: %q is not a boolean", v)
			}
			box := storage.BoxInbox
			if b {
				box = storage.BoxArchive
			}
			archive = &box
		case "read":
			b, err := dataform.Bool(v)
			if err != nil {
				return props, badRequest("read: %q is not a boolean", v)
			}
			props.Read = &b
		case "mute":
			s, err := strconv.ParseInt(v, 10, 64)
			if err != nil || s < 0 || s > 100*365*24*3600 {
				return props, badRequest("mute: %q is not a number of seconds", v)
			}
			until := time.Time{}
			if s > 0 {
				until = now.Add(time.Duration(s) * time.Second).UTC().Truncate(time.Microsecond)
			}
			props.MutedUntil = &until
		default:
			return props, badRequest("unknown property <%s/>", c.Name)
		}
		n++
	}
	if n == 0 {
		return props, badRequest("no property to set")
	}
	if archive != nil {
		if props.Box != nil && *props.Box != *archive {
			return props, badRequest("<box/> and <archive/> disagree")
		}
		props.Box = archive
	}
	return props, nil
}

// conversationSet changes an entry's properties, tells every resource of
// the user (a message from the bare JID to the bare JID with
// <x xmlns='…#conversation' jid='peer'>), then answers with the
// properties.
//
// MongooseIM's older <reset jid='peer'/> is read=true with an empty result.
func (ib *Inbox) conversationSet(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	p := iq.Payload()
	reset := p.Name == "reset"
	if p.Name != "query" && !reset {
		return nil, badRequest("expected <query/>")
	}
	if p.Attr("jid") == "" {
		return nil, badRequest("no 'jid'")
	}
	with, err := entryJID(p)
	if err != nil {
		return nil, err
	}
	now := ib.now()
	var props storage.InboxProperties
	if reset {
		read := true
		props.Read = &read
	} else if props, err = ib.parseProperties(p, now); err != nil {
		return nil, err
	}
	user := iq.From.Bare()
	ib.syncWrites(ctx)
	e, err := ib.store.SetInboxProperties(ctx, user, with, props, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, stanza.NewError(stanza.ItemNotFound, "no inbox entry for "+with.String())
	}
	if err != nil {
		return nil, fmt.Errorf("inbox: set properties of %s for %s: %w", user, with, err)
	}
	push := xmlstream.NewElement("message", stanza.NSClient).
		SetAttr("from", user.String()).SetAttr("to", user.String()).
		SetAttr("id", "inbox-"+strconv.FormatUint(resultSeq.Add(1), 36)).
		AddChild(properties(xmlstream.NewElement("x", NSConversation).SetAttr("jid", with.String()), e, now))
	// Every session of the user, the requesting one first; directly,
	// since the router gives a message to a bare JID only to the most
	// available resources (RFC 6121 §8.5.2.1.1).
	if iq.Session != nil {
		iq.Session.Deliver(push)
	}
	for _, s := range ib.host.Sessions(user) {
		if s != iq.Session {
			s.Deliver(push)
		}
	}
	if reset {
		return nil, nil
	}
	return properties(xmlstream.NewElement("query", NSConversation), e, now), nil
}
