package rsm

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func parse(t *testing.T, doc string) (Request, error) {
	t.Helper()
	el, err := xmlstream.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(el)
}

func TestParse(t *testing.T) {
	r, err := parse(t, `<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set>`)
	if err != nil || r.Max != 10 || !r.HasBefore || r.Before != "" || r.HasAfter || r.Index != -1 {
		t.Errorf("last page: %+v %v", r, err)
	}
	r, err = parse(t, `<set xmlns='http://jabber.org/protocol/rsm'><after>09af3</after><index>3</index></set>`)
	if err != nil || r.Max != -1 || r.After != "09af3" || !r.HasAfter || r.Index != 3 {
		t.Errorf("after: %+v %v", r, err)
	}
	for _, bad := range []string{
		`<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>`,
		`<set xmlns='http://jabber.org/protocol/rsm'><max>ten</max></set>`,
		`<set xmlns='http://jabber.org/protocol/rsm'><index>x</index></set>`,
		`<set xmlns='urn:other'/>`,
	} {
		if _, err := parse(t, bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if r, err := Parse(nil); err != nil || r.Max != -1 || r.Index != -1 {
		t.Errorf("nil: %+v %v", r, err)
	}
}

func TestResult(t *testing.T) {
	got := string(Result{First: "a", Last: "b", FirstIndex: 0, Count: 20}.Element().AppendStandalone(nil))
	want := `<set xmlns='http://jabber.org/protocol/rsm'><first index='0'>a</first><last>b</last><count>20</count></set>`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	got = string(Result{FirstIndex: -1, Count: -1}.Element().AppendStandalone(nil))
	if want := `<set xmlns='http://jabber.org/protocol/rsm'/>`; got != want {
		t.Errorf("empty page: %s", got)
	}
}
