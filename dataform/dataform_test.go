package dataform

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func TestParseMAMQuery(t *testing.T) {
	// XEP-0313 Example 6, with a multi-valued field.
	el, err := xmlstream.Parse([]byte(`<x xmlns='jabber:x:data' type='submit'>
		<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>
		<field var='with'><value>juliet@capulet.lit</value></field>
		<field var='ids' type='text-multi'><value>a</value><value>b</value></field>
		<field var='empty'/></x>`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(el)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != TypeSubmit || f.FormType() != "urn:xmpp:mam:2" {
		t.Errorf("type %q form type %q", f.Type, f.FormType())
	}
	if v, ok := f.Value("with"); !ok || v != "juliet@capulet.lit" {
		t.Errorf("with = %q %v", v, ok)
	}
	if got := f.Field("ids").Values; len(got) != 2 || got[1] != "b" {
		t.Errorf("ids = %v", got)
	}
	if v, ok := f.Value("empty"); !ok || v != "" {
		t.Errorf("empty = %q %v", v, ok)
	}
	if _, ok := f.Value("nope"); ok {
		t.Error("a missing field was found")
	}
}

func TestParseErrors(t *testing.T) {
	for _, doc := range []string{
		`<x xmlns='urn:other' type='submit'/>`,
		`<x xmlns='jabber:x:data' type='nonsense'/>`,
		`<x xmlns='jabber:x:data' type='submit'><field><value>v</value></field></x>`,
		`<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>`,
	} {
		el, err := xmlstream.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(el); err == nil {
			t.Errorf("%s: no error", doc)
		}
	}
	if _, err := Parse(nil); err != ErrNotAForm {
		t.Errorf("nil: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	f := New(TypeForm, "urn:xmpp:mam:2")
	f.Title = "Archive query"
	f.Instructions = "line one\nline two"
	f.Add(Field{Var: "with", Type: JIDSingle, Label: "With", Required: true})
	f.Add(Field{Var: "box", Type: ListSingle, Values: []string{"all"}, Options: []Option{{Label: "All", Value: "all"}, {Value: "inbox"}}})
	el := f.Element()
	want := `<x xmlns='jabber:x:data' type='form'><title>Archive query</title><instructions>line one</instructions><instructions>line two</instructions>` +
		`<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>` +
		`<field var='with' type='jid-single' label='With'><required/></field>` +
		`<field var='box' type='list-single'><value>all</value><option label='All'><value>all</value></option><option><value>inbox</value></option></field></x>`
	if got := string(el.AppendStandalone(nil)); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	back, err := Parse(el)
	if err != nil {
		t.Fatal(err)
	}
	if back.Title != f.Title || back.Instructions != f.Instructions || !back.Field("with").Required || len(back.Field("box").Options) != 2 {
		t.Errorf("round trip: %+v", back)
	}
}

func TestBool(t *testing.T) {
	for in, want := range map[string]bool{"1": true, "true": true, "0": false, "false": false} {
		if got, err := Bool(in); err != nil || got != want {
			t.Errorf("Bool(%q) = %v %v", in, got, err)
		}
	}
	if _, err := Bool("yes"); err == nil {
		t.Error("Bool(yes): no error")
	}
}
