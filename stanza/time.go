package stanza

import (
	"fmt"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
	"time"
)

// FormatTime writes t as an XEP-0082 DateTime in UTC, with microseconds
// only when t has a fraction of a second.
func FormatTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000000Z")
}

// ParseTime reads an XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD).
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stanza: %q is not an XEP-0082 DateTime", s)
	}
	return t, nil
}

// Forwarded wraps a stanza in a XEP-0297 <forwarded/> with a XEP-0203
// <delay/> stamped at (archive results, inbox entries).
func Forwarded(el *xmlstream.Element, at time.Time) *xmlstream.Element {
	return xmlstream.NewElement("forwarded", NSForward).AddChild(
		xmlstream.NewElement("delay", NSDelay).SetAttr("stamp", FormatTime(at)), el)
}
