package story

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Addr is anything that names an XMPP address by its String method: a
// jid.JID, a *Client (its full JID; use c.Bare() for the bare one), or a
// RawAddr for an address that need not be valid. A nil Addr, or one whose
// String is empty, means "no address": the stanza gets no 'to', which
// addresses the user's own account or the server (RFC 6120 §10.3).
type Addr interface{ String() string }

// RawAddr is an address written as it is, valid or not.
type RawAddr string

func (a RawAddr) String() string { return string(a) }

func isNilAddr(a Addr) bool {
	if a == nil {
		return true
	}
	if v := reflect.ValueOf(a); v.Kind() == reflect.Pointer && v.IsNil() {
		return true
	}
	return a.String() == ""
}

// Namespaces of the payloads the builders make.
const (
	NSPing    = "urn:xmpp:ping"        // XEP-0199
	NSVersion = "jabber:iq:version"    // XEP-0092
	NSTime    = "urn:xmpp:time"        // XEP-0202
	NSVcard   = "vcard-temp"           // XEP-0054
	NSMAM     = "urn:xmpp:mam:2"       // XEP-0313
	NSStoryTS = "urn:meerkat:story:ts" // send timestamps (StampSendTime)
)

var (
	idPrefix  = randomHex(4)
	idCounter atomic.Uint64
)

// NewID returns an id unique within the process (and, with high
// probability, across processes): "story-<random>-<counter>".
func NewID() string {
	return "story-" + idPrefix + "-" + strconv.FormatUint(idCounter.Add(1), 10)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func el(name, ns string) *xmlstream.Element { return xmlstream.NewElement(name, ns) }

func textEl(name, ns, text string) *xmlstream.Element { return el(name, ns).AddText(text) }

func setTo(e *xmlstream.Element, to Addr) *xmlstream.Element {
	if !isNilAddr(to) {
		e.SetAttr("to", to.String())
	}
	return e
}

// Message builds a message of type typ ("" for none, which means normal)
// to to, with a body unless body is empty (RFC 6121 §5.2). Messages get no
// id; set one with SetAttr("id", NewID()) when a test needs it.
func Message(typ string, to Addr, body string) *xmlstream.Element {
	m := setTo(el("message", stanza.NSClient), to)
	if typ != "" {
		m.SetAttr("type", typ)
	}
	if body != "" {
		m.AddChild(textEl("body", stanza.NSClient, body))
	}
	return m
}

// Chat builds a chat message (RFC 6121 §5.2.2).
func Chat(to Addr, body string) *xmlstream.Element { return Message(stanza.MessageChat, to, body) }

// Groupchat builds a groupchat message, for a room (XEP-0045 §7.4).
func Groupchat(to Addr, body string) *xmlstream.Element {
	return Message(stanza.MessageGroupchat, to, body)
}

// Presence builds presence of type typ ("" for available) without 'to':
// broadcast presence (RFC 6121 §4.2, §4.4).
func Presence(typ string) *xmlstream.Element { return PresenceTo(nil, typ) }

// PresenceTo builds directed presence of type typ to to (RFC 6121 §4.6).
func PresenceTo(to Addr, typ string) *xmlstream.Element {
	p := setTo(el("presence", stanza.NSClient), to)
	if typ != "" {
		p.SetAttr("type", typ)
	}
	return p
}

// Subscribe builds a subscription request (RFC 6121 §3.1.1).
func Subscribe(to Addr) *xmlstream.Element { return PresenceTo(to, stanza.PresenceSubscribe) }

// Subscribed approves a subscription request (RFC 6121 §3.1.4).
func Subscribed(to Addr) *xmlstream.Element { return PresenceTo(to, stanza.PresenceSubscribed) }

// Unsubscribe cancels a subscription to to's presence (RFC 6121 §3.3).
func Unsubscribe(to Addr) *xmlstream.Element { return PresenceTo(to, stanza.PresenceUnsubscribe) }

// Unsubscribed cancels to's subscription to ours (RFC 6121 §3.2).
func Unsubscribed(to Addr) *xmlstream.Element { return PresenceTo(to, stanza.PresenceUnsubscribed) }

// Probe builds a presence probe (RFC 6121 §4.3); clients rarely send one,
// servers must handle it.
func Probe(to Addr) *xmlstream.Element { return PresenceTo(to, stanza.PresenceProbe) }

func iq(typ string, to Addr, payload *xmlstream.Element) *xmlstream.Element {
	q := setTo(el("iq", stanza.NSClient), to)
	q.SetAttr("type", typ).SetAttr("id", NewID())
	if payload != nil {
		q.AddChild(payload)
	}
	return q
}

// IQGet builds an IQ get with a fresh id (RFC 6120 §8.2.3).
func IQGet(to Addr, payload *xmlstream.Element) *xmlstream.Element { return iq("get", to, payload) }

// IQSet builds an IQ set with a fresh id.
func IQSet(to Addr, payload *xmlstream.Element) *xmlstream.Element { return iq("set", to, payload) }

// IQResult builds the result answering a received IQ get or set: same id,
// addressed to its sender, with an optional payload.
func IQResult(req *xmlstream.Element, payload *xmlstream.Element) *xmlstream.Element {
	r := setTo(el("iq", stanza.NSClient), RawAddr(req.Attr("from")))
	r.SetAttr("type", "result").SetAttr("id", req.Attr("id"))
	if payload != nil {
		r.AddChild(payload)
	}
	return r
}

// IQError builds the error answering a received IQ get or set (RFC 6120
// §8.3): same id, addressed to its sender, the request's payload echoed,
// and an <error/> of the given type and defined condition.
func IQError(req *xmlstream.Element, typ, condition string) *xmlstream.Element {
	r := stanza.ErrorReply(req, &stanza.Error{Type: stanza.ErrorType(typ), Condition: stanza.Condition(condition)})
	r.RemoveAttr("from")
	return r
}

// RosterGet asks for the roster (RFC 6121 §2.1.3).
func RosterGet() *xmlstream.Element { return IQGet(nil, el("query", stanza.NSRoster)) }

// RosterSet adds or updates a roster item (RFC 6121 §2.1.5); name may be
// empty.
func RosterSet(contact Addr, name string, groups ...string) *xmlstream.Element {
	item := el("item", stanza.NSRoster).SetAttr("jid", contact.String())
	if name != "" {
		item.SetAttr("name", name)
	}
	for _, g := range groups {
		item.AddChild(textEl("group", stanza.NSRoster, g))
	}
	return IQSet(nil, el("query", stanza.NSRoster).AddChild(item))
}

// RosterRemove deletes a roster item (RFC 6121 §2.1.5, §2.5).
func RosterRemove(contact Addr) *xmlstream.Element {
	item := el("item", stanza.NSRoster).SetAttr("jid", contact.String()).SetAttr("subscription", "remove")
	return IQSet(nil, el("query", stanza.NSRoster).AddChild(item))
}

func discoQuery(ns string, to Addr, node string) *xmlstream.Element {
	q := el("query", ns)
	if node != "" {
		q.SetAttr("node", node)
	}
	return IQGet(to, q)
}

// DiscoInfo queries an entity's identities and features (XEP-0030 §3.1);
// node may be empty.
func DiscoInfo(to Addr, node string) *xmlstream.Element {
	return discoQuery(stanza.NSDiscoInfo, to, node)
}

// DiscoItems queries an entity's items (XEP-0030 §4.1); node may be empty.
func DiscoItems(to Addr, node string) *xmlstream.Element {
	return discoQuery(stanza.NSDiscoItems, to, node)
}

// Ping builds an XMPP ping (XEP-0199 §4); a nil to pings the server.
func Ping(to Addr) *xmlstream.Element { return IQGet(to, el("ping", NSPing)) }

// Version asks for software version (XEP-0092 §3).
func Version(to Addr) *xmlstream.Element { return IQGet(to, el("query", NSVersion)) }

// Time asks for an entity's time (XEP-0202 §3).
func Time(to Addr) *xmlstream.Element { return IQGet(to, el("time", NSTime)) }

// VcardGet asks for a vCard (XEP-0054 §3.1, §3.3); a nil to asks for the
// user's own.
func VcardGet(to Addr) *xmlstream.Element { return IQGet(to, el("vCard", NSVcard)) }

// VcardSet publishes the user's own vCard (XEP-0054 §3.2) made of fields,
// built with VcardField or by hand in the vcard-temp namespace.
func VcardSet(fields ...*xmlstream.Element) *xmlstream.Element {
	return IQSet(nil, el("vCard", NSVcard).AddChild(fields...))
}

// VcardField is a simple vCard field such as FN or NICKNAME.
func VcardField(name, value string) *xmlstream.Element { return textEl(name, NSVcard, value) }

// MAMQuery is an archive query (XEP-0313 §4) with its filters (§4.1) and
// result set management (XEP-0059). Zero fields are left out.
type MAMQuery struct {
	To      Addr   // the archive: nil for the user's own
	QueryID string // echoed in every result message
	With    Addr
	Start   time.Time
	End     time.Time
	// Max is the page size (RSM <max/>); 0 leaves it to the server.
	Max int
	// After and Before page forwards and backwards from a result id
	// (XEP-0059 §2.2, §2.3). Last asks for the last page (an empty
	// <before/>, §2.5) when Before is empty.
	After  string
	Before string
	Last   bool
	// AfterID, BeforeID and IDs are the extended filters (XEP-0313 §4.1.3
	// 'after-id', 'before-id', 'ids'); FlipPage asks for the page newest
	// first (§4.3.4); NS queries another version (urn:xmpp:mam:1).
	AfterID  string
	BeforeID string
	IDs      []string
	FlipPage bool
	NS       string
}

// MAM builds the IQ set of an archive query.
func MAM(q MAMQuery) *xmlstream.Element {
	ns := cmp.Or(q.NS, NSMAM)
	query := el("query", ns)
	if q.QueryID != "" {
		query.SetAttr("queryid", q.QueryID)
	}
	form := el("x", stanza.NSDataForms).SetAttr("type", "submit")
	field := func(name, value string) *xmlstream.Element {
		return el("field", stanza.NSDataForms).SetAttr("var", name).AddChild(textEl("value", stanza.NSDataForms, value))
	}
	form.AddChild(field("FORM_TYPE", ns).SetAttr("type", "hidden"))
	if !isNilAddr(q.With) {
		form.AddChild(field("with", q.With.String()))
	}
	if !q.Start.IsZero() {
		form.AddChild(field("start", xmppTime(q.Start)))
	}
	if !q.End.IsZero() {
		form.AddChild(field("end", xmppTime(q.End)))
	}
	if q.AfterID != "" {
		form.AddChild(field("after-id", q.AfterID))
	}
	if q.BeforeID != "" {
		form.AddChild(field("before-id", q.BeforeID))
	}
	if len(q.IDs) > 0 {
		ids := el("field", stanza.NSDataForms).SetAttr("var", "ids")
		for _, id := range q.IDs {
			ids.AddChild(textEl("value", stanza.NSDataForms, id))
		}
		form.AddChild(ids)
	}
	query.AddChild(form)
	if q.Max > 0 || q.After != "" || q.Before != "" || q.Last {
		set := el("set", stanza.NSRSM)
		if q.Max > 0 {
			set.AddChild(textEl("max", stanza.NSRSM, strconv.Itoa(q.Max)))
		}
		if q.After != "" {
			set.AddChild(textEl("after", stanza.NSRSM, q.After))
		}
		if q.Before != "" || q.Last {
			set.AddChild(textEl("before", stanza.NSRSM, q.Before))
		}
		query.AddChild(set)
	}
	if q.FlipPage {
		query.AddChild(el("flip-page", ns))
	}
	return IQSet(q.To, query)
}

// xmppTime is an XEP-0082 DateTime in UTC, with microseconds only when
// the time has a fraction of a second.
func xmppTime(t time.Time) string { return stanza.FormatTime(t) }

// MUC Light (MongooseIM's "urn:xmpp:muclight:0") builders and predicates
// are in muclight.go.

// StampSendTime adds (or replaces) the send timestamp of el: a
// <ts xmlns='urn:meerkat:story:ts' us='…'/> child holding the current time
// in microseconds since the Unix epoch. Servers pass unknown children of
// messages through (RFC 6120 §8.4), so the receiver can read it with
// SendTimeOf and, with the receive time from ExpectTimed or WaitForTimed,
// compute the time to deliver. It returns el.
func StampSendTime(e *xmlstream.Element) *xmlstream.Element {
	e.RemoveChildren("ts", NSStoryTS)
	return e.AddChild(el("ts", NSStoryTS).SetAttr("us", strconv.FormatInt(time.Now().UnixMicro(), 10)))
}

// SendTimeOf reads the timestamp StampSendTime added.
func SendTimeOf(e *xmlstream.Element) (time.Time, bool) {
	ts := e.Child("ts", NSStoryTS)
	if ts == nil {
		return time.Time{}, false
	}
	us, err := strconv.ParseInt(ts.Attr("us"), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(us), true
}
