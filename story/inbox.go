package story

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Inbox (MongooseIM's erlang-solutions.com:xmpp:inbox:0) builders,
// predicates and a fetch helper.
const (
	NSInbox             = "erlang-solutions.com:xmpp:inbox:0"
	NSInboxConversation = NSInbox + "#conversation"
	NSChatMarkers       = "urn:xmpp:chat-markers:0" // XEP-0333
)

// InboxQuery is an inbox fetch: the fields of its data form and its
// result set management (XEP-0059). Zero fields are left out; with no
// form field at all the request has no form.
type InboxQuery struct {
	QueryID    string
	Start, End time.Time
	Order      string // "asc" or "desc"
	HiddenRead *bool
	Box        string
	Archive    *bool
	// Fields are extra raw form fields (var → value), for error cases.
	Fields map[string]string
	// FormType replaces the FORM_TYPE ("" for NSInbox).
	FormType string
	// Max is the RSM page size (0: none; use MaxZero for <max>0</max>).
	Max     int
	MaxZero bool
	// After and Before are RSM markers (times the server returned).
	After, Before string
}

// Bool returns a pointer to b, for the optional fields.
func Bool(b bool) *bool { return &b }

// InboxFetch builds the IQ set of an inbox fetch.
func InboxFetch(q InboxQuery) *xmlstream.Element {
	inbox := el("inbox", NSInbox)
	if q.QueryID != "" {
		inbox.SetAttr("queryid", q.QueryID)
	}
	form := el("x", stanza.NSDataForms).SetAttr("type", "submit")
	field := func(name, value string) {
		form.AddChild(el("field", stanza.NSDataForms).SetAttr("var", name).AddChild(textEl("value", stanza.NSDataForms, value)))
	}
	ft := q.FormType
	if ft == "" {
		ft = NSInbox
	}
	field("FORM_TYPE", ft)
	n := len(form.Children)
	if !q.Start.IsZero() {
		field("start", xmppTime(q.Start))
	}
	if !q.End.IsZero() {
		field("end", xmppTime(q.End))
	}
	if q.Order != "" {
		field("order", q.Order)
	}
	if q.HiddenRead != nil {
		field("hidden_read", strconv.FormatBool(*q.HiddenRead))
	}
	if q.Box != "" {
		field("box", q.Box)
	}
	if q.Archive != nil {
		field("archive", strconv.FormatBool(*q.Archive))
	}
	for _, k := range slices.Sorted(maps.Keys(q.Fields)) {
		field(k, q.Fields[k])
	}
	if len(form.Children) > n || q.FormType != "" {
		inbox.AddChild(form)
	}
	if q.Max > 0 || q.MaxZero || q.After != "" || q.Before != "" {
		set := el("set", stanza.NSRSM)
		if q.Max > 0 || q.MaxZero {
			set.AddChild(textEl("max", stanza.NSRSM, strconv.Itoa(q.Max)))
		}
		if q.After != "" {
			set.AddChild(textEl("after", stanza.NSRSM, q.After))
		}
		if q.Before != "" {
			set.AddChild(textEl("before", stanza.NSRSM, q.Before))
		}
		inbox.AddChild(set)
	}
	return IQSet(nil, inbox)
}

// InboxForm asks for the form of inbox fetches (an IQ get).
func InboxForm() *xmlstream.Element { return IQGet(nil, el("query", NSInbox)) }

// InboxEmptyBin empties the user's bin.
func InboxEmptyBin() *xmlstream.Element { return IQSet(nil, el("empty-bin", NSInbox)) }

// InboxEntryGet asks for the properties of the entry for with (nil: the
// form of the settable properties); complete asks for the last message
// too.
func InboxEntryGet(with Addr, complete bool) *xmlstream.Element {
	q := el("query", NSInboxConversation)
	if !isNilAddr(with) {
		q.SetAttr("jid", with.String())
	}
	if complete {
		q.SetAttr("complete", "true")
	}
	return IQGet(nil, q)
}

// InboxEntrySet sets properties of the entry for with; build them with
// InboxProp.
func InboxEntrySet(with Addr, props ...*xmlstream.Element) *xmlstream.Element {
	q := el("query", NSInboxConversation)
	if !isNilAddr(with) {
		q.SetAttr("jid", with.String())
	}
	return IQSet(nil, q.AddChild(props...))
}

// InboxProp is one property of an entry: box, archive, mute (seconds) or
// read, with its value as text.
func InboxProp(name, value string) *xmlstream.Element {
	return textEl(name, NSInboxConversation, value)
}

// Marker builds a chat marker (XEP-0333 §4.2): kind is received, displayed
// or acknowledged, id the id of the message marked.
func Marker(typ string, to Addr, kind, id string) *xmlstream.Element {
	return Message(typ, to, "").AddChild(el(kind, NSChatMarkers).SetAttr("id", id))
}

// IsInboxResult matches a message carrying an inbox result for queryID
// ("" for any).
func IsInboxResult(queryID string) Predicate {
	return Predicate{
		Desc: fmt.Sprintf("an inbox result for query %q", queryID),
		Match: func(e *xmlstream.Element) bool {
			if !isKind(e, "message") {
				return false
			}
			r := e.Child("result", NSInbox)
			return r != nil && (queryID == "" || r.Attr("queryid") == queryID)
		},
	}
}

// IsInboxFin matches the IQ result ending an inbox fetch with IQ id id
// ("" for any).
func IsInboxFin(id string) Predicate {
	return IsIQResultWith(id, Predicate{
		Desc:  "an inbox <fin/>",
		Match: func(e *xmlstream.Element) bool { return e.Name == "fin" && e.NS == NSInbox },
	})
}

// IsInboxEntryPush matches the message telling the user's resources that
// the properties of the entry for with changed.
func IsInboxEntryPush(with Addr) Predicate {
	return Predicate{
		Desc: "an inbox entry push for " + with.String(),
		Match: func(e *xmlstream.Element) bool {
			if !isKind(e, "message") {
				return false
			}
			x := e.Child("x", NSInboxConversation)
			return x != nil && addrMatch(x.Attr("jid"), with)
		},
	}
}

// InboxEntry is one inbox result, read.
type InboxEntry struct {
	QueryID string
	Unread  int
	Box     string
	Archive bool
	Mute    string // "0" or a time
	Stamp   time.Time
	// Message is the forwarded last message.
	Message *xmlstream.Element
	El      *xmlstream.Element // the whole result message
}

// ParseInboxResult reads an inbox result message.
func ParseInboxResult(m *xmlstream.Element) (InboxEntry, error) {
	r := m.Child("result", NSInbox)
	if r == nil {
		return InboxEntry{}, fmt.Errorf("story: not an inbox result: %s", serialize(m))
	}
	e := InboxEntry{QueryID: r.Attr("queryid"), Box: r.ChildText("box", NSInbox), Mute: r.ChildText("mute", NSInbox), El: m}
	var err error
	if e.Unread, err = strconv.Atoi(r.Attr("unread")); err != nil {
		return e, fmt.Errorf("story: inbox result unread %q: %w", r.Attr("unread"), err)
	}
	e.Archive = r.ChildText("archive", NSInbox) == "true"
	fwd := r.Child("forwarded", stanza.NSForward)
	if fwd == nil {
		return e, fmt.Errorf("story: inbox result without <forwarded/>: %s", serialize(m))
	}
	if d := fwd.Child("delay", stanza.NSDelay); d != nil {
		if e.Stamp, err = stanza.ParseTime(d.Attr("stamp")); err != nil {
			return e, err
		}
	}
	e.Message = fwd.Child("message", stanza.NSClient)
	if e.Message == nil {
		return e, fmt.Errorf("story: inbox result without a message: %s", serialize(m))
	}
	return e, nil
}

// With is the peer of the entry: the other party of the forwarded
// message (its 'from' when it is not the user, else its 'to'), as a bare
// JID string; for a room message, the room.
func (e InboxEntry) With(user Addr) string {
	from, to := e.Message.Attr("from"), e.Message.Attr("to")
	if from != "" && !addrMatch(from, bareOf(user)) {
		return bareString(from)
	}
	return bareString(to)
}

// Body is the body of the last message.
func (e InboxEntry) Body() string { return e.Message.ChildText("body", stanza.NSClient) }

// FetchInbox sends an inbox fetch and returns the results, in the order
// they came, and the <fin/>; it fails the test on an error reply.
func (c *Client) FetchInbox(q InboxQuery) ([]InboxEntry, *xmlstream.Element) {
	c.helper()
	iq := InboxFetch(q)
	reply := c.IQ(iq)
	if reply.Attr("type") != "result" {
		c.fatalf("story: %s: inbox fetch failed: %s", c.name, serialize(reply))
		return nil, nil
	}
	queryID := q.QueryID
	if queryID == "" {
		queryID = iq.Attr("id")
	}
	// The results came before the IQ result: they are queued.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	var out []InboxEntry
	for {
		m, err := c.WaitFor(done, IsInboxResult(queryID))
		if err != nil {
			break
		}
		e, err := ParseInboxResult(m)
		if err != nil {
			c.fatalf("%v", err)
			return nil, nil
		}
		out = append(out, e)
	}
	return out, reply.Child("fin", NSInbox)
}

func bareString(s string) string {
	bare, _, _ := strings.Cut(s, "/")
	return bare
}

func bareOf(a Addr) Addr { return RawAddr(bareString(a.String())) }
