package rsm

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// FuzzParse: <set/> comes from clients. Parse never panics, and what it
// accepts is within bounds.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>x</after></set>`,
		`<set xmlns='http://jabber.org/protocol/rsm'><max>0</max><before/></set>`,
		`<set xmlns='http://jabber.org/protocol/rsm'><index>3</index><max>-1</max></set>`,
		`<set xmlns='http://jabber.org/protocol/rsm'><max>99999999999999999999</max></set>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.Parse([]byte(s))
		if err != nil {
			return
		}
		r, err := Parse(el)
		if err != nil {
			return
		}
		if r.Max < -1 || r.Index < -1 {
			t.Fatalf("accepted %s as %+v", s, r)
		}
		if !r.HasAfter && r.After != "" || !r.HasBefore && r.Before != "" {
			t.Fatalf("inconsistent %+v", r)
		}
	})
}
