package dataform

import (
	"reflect"
	"testing"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// FuzzParse: forms come from clients (MAM and Inbox queries, in-band
// registration). Parse never panics, and a form it accepts serializes to
// one it reads back with the same fields.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='with'><value>juliet@capulet.lit</value></field></x>`,
		`<x xmlns='jabber:x:data' type='form'><title>T</title><instructions>a</instructions><field var='f' type='list-multi' label='L'><required/><option label='o'><value>1</value></option><value>1</value><value>2</value></field><field type='fixed'><value>text</value></field></x>`,
		`<x xmlns='jabber:x:data' type='result'/>`,
		`<x xmlns='jabber:x:data' type='cancel'><field var='a'/><field var='a'/></x>`,
		`<x xmlns='jabber:x:data'/>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.Parse([]byte(s))
		if err != nil {
			return
		}
		form, err := Parse(el)
		if err != nil {
			return
		}
		again, err := Parse(form.Element())
		if err != nil {
			t.Fatalf("the serialized form of %s does not parse: %v\n%s", s, err, form.Element())
		}
		if again.Type != form.Type || !reflect.DeepEqual(normalize(again.Fields), normalize(form.Fields)) {
			t.Fatalf("round trip changed the fields:\n%+v\n%+v", form.Fields, again.Fields)
		}
	})
}

// normalize makes empty and nil slices alike.
func normalize(fields []Field) []Field {
	out := make([]Field, len(fields))
	for i, f := range fields {
		if len(f.Values) == 0 {
			f.Values = nil
		}
		if len(f.Options) == 0 {
			f.Options = nil
		}
		out[i] = f
	}
	return out
}
