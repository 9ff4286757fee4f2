package story

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Predicate is a test on a received element with a description of what it
// accepts; the description is what failure messages show ("expected a chat
// message with body "hi" and from alice@localhost/res1").
type Predicate struct {
	Desc  string
	Match func(*xmlstream.Element) bool
}

func (p Predicate) String() string { return p.Desc }

// Any matches every element.
var Any = Predicate{Desc: "any element", Match: func(*xmlstream.Element) bool { return true }}

// And matches elements that match all of ps; And() is Any.
func And(ps ...Predicate) Predicate {
	switch len(ps) {
	case 0:
		return Any
	case 1:
		return ps[0]
	}
	descs := make([]string, len(ps))
	for i, p := range ps {
		descs[i] = p.Desc
	}
	return Predicate{
		Desc: strings.Join(descs, " and "),
		Match: func(el *xmlstream.Element) bool {
			for _, p := range ps {
				if !p.Match(el) {
					return false
				}
			}
			return true
		},
	}
}

// Or matches elements that match at least one of ps.
func Or(ps ...Predicate) Predicate {
	descs := make([]string, len(ps))
	for i, p := range ps {
		descs[i] = p.Desc
	}
	return Predicate{
		Desc: "(" + strings.Join(descs, " or ") + ")",
		Match: func(el *xmlstream.Element) bool {
			for _, p := range ps {
				if p.Match(el) {
					return true
				}
			}
			return false
		},
	}
}

// Not matches elements p does not match.
func Not(p Predicate) Predicate {
	return Predicate{
		Desc:  "not (" + p.Desc + ")",
		Match: func(el *xmlstream.Element) bool { return !p.Match(el) },
	}
}

func isKind(el *xmlstream.Element, name string) bool {
	return el.Name == name && el.NS == stanza.NSClient
}

// messageType is the type of a message, "normal" when absent (RFC 6121 §5.2.2).
func messageType(el *xmlstream.Element) string {
	if t := el.Attr("type"); t != "" {
		return t
	}
	return stanza.MessageNormal
}

// IsMessage matches any message stanza.
func IsMessage() Predicate {
	return Predicate{Desc: "a message", Match: func(el *xmlstream.Element) bool { return isKind(el, "message") }}
}

// IsMessageType matches messages of type typ ("normal" also matches a
// message without a type).
func IsMessageType(typ string) Predicate {
	return Predicate{
		Desc:  fmt.Sprintf("a message of type %q", typ),
		Match: func(el *xmlstream.Element) bool { return isKind(el, "message") && messageType(el) == typ },
	}
}

// HasBody matches stanzas whose <body/> is exactly body.
func HasBody(body string) Predicate {
	return Predicate{
		Desc: fmt.Sprintf("with body %q", body),
		Match: func(el *xmlstream.Element) bool {
			b := el.Child("body", stanza.NSClient)
			return b != nil && b.Text() == body
		},
	}
}

// IsChat matches a chat message whose body is body (RFC 6121 §5.2.2).
func IsChat(body string) Predicate {
	return Predicate{
		Desc: fmt.Sprintf("a chat message with body %q", body),
		Match: func(el *xmlstream.Element) bool {
			return IsMessageType(stanza.MessageChat).Match(el) && HasBody(body).Match(el)
		},
	}
}

// IsGroupchat matches a groupchat message whose body is body.
func IsGroupchat(body string) Predicate {
	return Predicate{
		Desc: fmt.Sprintf("a groupchat message with body %q", body),
		Match: func(el *xmlstream.Element) bool {
			return IsMessageType(stanza.MessageGroupchat).Match(el) && HasBody(body).Match(el)
		},
	}
}

// IsPresenceType matches presence of type typ ("" for available,
// RFC 6121 §4.7.1).
func IsPresenceType(typ string) Predicate {
	return Predicate{
		Desc:  "a presence of type " + presenceTypeName(typ),
		Match: func(el *xmlstream.Element) bool { return isKind(el, "presence") && el.Attr("type") == typ },
	}
}

func presenceTypeName(typ string) string {
	if typ == "" {
		return "available"
	}
	return fmt.Sprintf("%q", typ)
}

// IsPresence matches presence of type typ ("" for available) from from,
// compared as IsFrom does; a nil from matches any sender.
func IsPresence(typ string, from Addr) Predicate {
	if isNilAddr(from) {
		return IsPresenceType(typ)
	}
	return And(IsPresenceType(typ), IsFrom(from))
}

// IsIQ matches IQs of type typ (RFC 6120 §8.2.3).
func IsIQ(typ string) Predicate {
	return Predicate{
		Desc:  fmt.Sprintf("an IQ of type %q", typ),
		Match: func(el *xmlstream.Element) bool { return isKind(el, "iq") && el.Attr("type") == typ },
	}
}

func isIQWithID(typ, id string) Predicate {
	desc := fmt.Sprintf("an IQ %s", typ)
	if id != "" {
		desc += fmt.Sprintf(" with id %q", id)
	}
	return Predicate{
		Desc: desc,
		Match: func(el *xmlstream.Element) bool {
			return isKind(el, "iq") && el.Attr("type") == typ && (id == "" || el.Attr("id") == id)
		},
	}
}

// IsIQResult matches an IQ result with the given id ("" for any id).
func IsIQResult(id string) Predicate { return isIQWithID("result", id) }

// IsIQResultWith matches an IQ result with the given id ("" for any) whose
// payload (first child element) matches payload.
func IsIQResultWith(id string, payload Predicate) Predicate {
	r := IsIQResult(id)
	return Predicate{
		Desc: r.Desc + " whose payload is " + payload.Desc,
		Match: func(el *xmlstream.Element) bool {
			if !r.Match(el) {
				return false
			}
			p := el.FirstChild()
			return p != nil && payload.Match(p)
		},
	}
}

// IsIQError matches an IQ error with the given id ("" for any id).
func IsIQError(id string) Predicate { return isIQWithID("error", id) }

// IsStanzaError matches a stanza of type error whose <error/> has the given
// type ("" for any) and defined condition (RFC 6120 §8.3).
func IsStanzaError(typ, condition string) Predicate {
	desc := fmt.Sprintf("a stanza error %s", condition)
	if typ != "" {
		desc += fmt.Sprintf(" of type %q", typ)
	}
	return Predicate{
		Desc: desc,
		Match: func(el *xmlstream.Element) bool {
			if el.NS != stanza.NSClient || el.Attr("type") != "error" {
				return false
			}
			e, ok := stanza.ParseError(el)
			return ok && string(e.Condition) == condition && (typ == "" || string(e.Type) == typ)
		},
	}
}

// IsStreamError matches <stream:error/> with the given condition ("" for
// any) (RFC 6120 §4.9).
func IsStreamError(condition string) Predicate {
	desc := "a stream error"
	if condition != "" {
		desc += " " + condition
	}
	return Predicate{
		Desc: desc,
		Match: func(el *xmlstream.Element) bool {
			e, ok := stanza.ParseStreamError(el)
			return ok && (condition == "" || string(e.Condition) == condition)
		},
	}
}

// addrMatch compares the JID attribute value v with want: exactly when want
// is a full JID, by bare JID when want is bare. Both are normalized first
// (RFC 7622); an unparsable side is compared as a string.
func addrMatch(v string, want Addr) bool {
	ws := want.String()
	wj, err := jid.Parse(ws)
	if err != nil {
		return v == ws
	}
	vj, err := jid.Parse(v)
	if err != nil {
		return false
	}
	if wj.IsBare() {
		return vj.Bare() == wj
	}
	return vj == wj
}

// IsFrom matches stanzas from addr: exactly when addr is a full JID, from
// any resource when it is a bare JID.
func IsFrom(addr Addr) Predicate {
	return Predicate{
		Desc:  "from " + addr.String(),
		Match: func(el *xmlstream.Element) bool { return addrMatch(el.Attr("from"), addr) },
	}
}

// IsTo matches stanzas addressed to addr, compared as IsFrom does.
func IsTo(addr Addr) Predicate {
	return Predicate{
		Desc:  "to " + addr.String(),
		Match: func(el *xmlstream.Element) bool { return addrMatch(el.Attr("to"), addr) },
	}
}

// HasChild matches elements with a child element name in namespace ns.
func HasChild(name, ns string) Predicate {
	return Predicate{
		Desc:  fmt.Sprintf("with a <%s xmlns='%s'/> child", name, ns),
		Match: func(el *xmlstream.Element) bool { return el.Child(name, ns) != nil },
	}
}

// IsRosterPush matches a roster push (RFC 6121 §2.1.6): an IQ set with a
// jabber:iq:roster query holding one item, for the contact item (any item
// when item is nil).
func IsRosterPush(item Addr) Predicate {
	desc := "a roster push"
	if !isNilAddr(item) {
		desc += " for " + item.String()
	}
	return Predicate{
		Desc: desc,
		Match: func(el *xmlstream.Element) bool {
			if !isKind(el, "iq") || el.Attr("type") != "set" {
				return false
			}
			q := el.Child("query", stanza.NSRoster)
			if q == nil {
				return false
			}
			it := q.Child("item", stanza.NSRoster)
			return it != nil && (isNilAddr(item) || addrMatch(it.Attr("jid"), item))
		},
	}
}

// IsRosterResult matches the result of a roster get (RFC 6121 §2.1.3),
// with the given id ("" for any).
func IsRosterResult(id string) Predicate {
	return IsIQResultWith(id, Predicate{
		Desc:  "a jabber:iq:roster query",
		Match: func(el *xmlstream.Element) bool { return el.Name == "query" && el.NS == stanza.NSRoster },
	})
}

// IsSMAck matches a Stream Management <a/> (XEP-0198 §4).
func IsSMAck() Predicate {
	return Predicate{Desc: "a stream management <a/>", Match: func(el *xmlstream.Element) bool {
		return el.Name == "a" && el.NS == NSSM
	}}
}

// IsMAMResult matches a message carrying a MAM result (XEP-0313 §4.2) for
// the query queryID ("" for any).
func IsMAMResult(queryID string) Predicate {
	desc := "a MAM result message"
	if queryID != "" {
		desc += fmt.Sprintf(" for query %q", queryID)
	}
	return Predicate{
		Desc: desc,
		Match: func(el *xmlstream.Element) bool {
			if !isKind(el, "message") {
				return false
			}
			r := el.Child("result", NSMAM)
			return r != nil && (queryID == "" || r.Attr("queryid") == queryID)
		},
	}
}

// IsMAMFin matches the IQ result ending a MAM query (XEP-0313 §4.2) with
// the given IQ id ("" for any).
func IsMAMFin(id string) Predicate {
	return IsIQResultWith(id, Predicate{
		Desc:  "a MAM <fin/>",
		Match: func(el *xmlstream.Element) bool { return el.Name == "fin" && el.NS == NSMAM },
	})
}

// Check reports whether el matches all of preds, with the first predicate
// that does not match.
func Check(el *xmlstream.Element, preds ...Predicate) error {
	if el == nil {
		return fmt.Errorf("expected %s, got no element", And(preds...).Desc)
	}
	for _, p := range preds {
		if !p.Match(el) {
			return fmt.Errorf("expected %s, got:\n    %s", p.Desc, clip(serialize(el), maxShown))
		}
	}
	return nil
}

// AssertStanza fails the test unless el matches all of preds.
func AssertStanza(t testing.TB, el *xmlstream.Element, preds ...Predicate) {
	t.Helper()
	if err := Check(el, preds...); err != nil {
		t.Fatalf("story: %v", err)
	}
}
