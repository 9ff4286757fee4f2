package xmlstream

import (
	"strings"
	"testing"
)

func TestSetAttr(t *testing.T) {
	e := NewElement("message", "jabber:client")
	if e.SetAttr("to", "a@b") != e {
		t.Fatal("SetAttr does not return its element")
	}
	e.SetAttr("type", "chat").SetAttr("to", "c@d")
	if len(e.Attrs) != 2 || e.Attr("to") != "c@d" || e.Attr("type") != "chat" {
		t.Fatalf("attrs %+v", e.Attrs)
	}
	// Replacing keeps the position.
	if e.Attrs[0].Name != "to" {
		t.Fatalf("order %+v", e.Attrs)
	}
	e.SetAttr("id", "")
	if v, ok := e.LookupAttr("", "id"); !ok || v != "" {
		t.Fatalf("empty attribute: %q %v", v, ok)
	}
}

func TestSetAttrNS(t *testing.T) {
	e := NewElement("message", "jabber:client")
	e.SetAttr("lang", "plain").SetAttrNS(NSXML, "lang", "en").SetAttrNS("urn:x", "lang", "x")
	if len(e.Attrs) != 3 {
		t.Fatalf("attrs %+v", e.Attrs)
	}
	if e.Attr("lang") != "plain" || e.Lang() != "en" {
		t.Fatalf("lang %q, xml:lang %q", e.Attr("lang"), e.Lang())
	}
	if v, ok := e.LookupAttr("urn:x", "lang"); !ok || v != "x" {
		t.Fatalf("urn:x lang %q %v", v, ok)
	}
	e.SetAttrNS(NSXML, "lang", "de")
	if len(e.Attrs) != 3 || e.Lang() != "de" || e.Attr("lang") != "plain" {
		t.Fatalf("after replacing xml:lang: %+v", e.Attrs)
	}
}

func TestRemoveAttr(t *testing.T) {
	e := NewElement("iq", "jabber:client").SetAttr("a", "1").SetAttrNS("urn:x", "b", "2").SetAttr("b", "3").SetAttr("c", "4")
	shared := e.Attrs
	e.RemoveAttr("b")
	want := []Attr{{Name: "a", Value: "1"}, {Name: "b", NS: "urn:x", Value: "2"}, {Name: "c", Value: "4"}}
	if len(e.Attrs) != len(want) {
		t.Fatalf("attrs %+v", e.Attrs)
	}
	for i := range want {
		if e.Attrs[i] != want[i] {
			t.Fatalf("attrs %+v, want %+v", e.Attrs, want)
		}
	}
	// The namespaced attribute of the same name stays, and the old slice,
	// which a copy of the element may share, is untouched.
	if shared[2].Value != "3" || shared[3].Value != "4" {
		t.Fatalf("shared attribute slice changed: %+v", shared)
	}
	if e.RemoveAttr("missing") != e || len(e.Attrs) != 3 {
		t.Fatal("removing a missing attribute")
	}
	e.RemoveAttr("a").RemoveAttr("c")
	if len(e.Attrs) != 1 || e.Attrs[0].NS != "urn:x" {
		t.Fatalf("attrs %+v", e.Attrs)
	}
}

func TestAddChildAndText(t *testing.T) {
	body := NewElement("body", "jabber:client").AddText("hi").AddText("").AddText(" there")
	e := NewElement("message", "jabber:client").AddChild(body, NewElement("active", "http://jabber.org/protocol/chatstates")).AddText("tail")
	if len(body.Children) != 2 || body.Text() != "hi there" {
		t.Fatalf("body %+v", body.Children)
	}
	if len(e.Children) != 3 || e.Children[0].Elem != body || e.Children[2].Text != "tail" {
		t.Fatalf("children %+v", e.Children)
	}
	if e.Child("body", "jabber:client") != body || e.ChildText("body", "jabber:client") != "hi there" {
		t.Fatal("Child")
	}
	if e.ChildNS("http://jabber.org/protocol/chatstates").Name != "active" || e.FirstChild() != body {
		t.Fatal("ChildNS / FirstChild")
	}
	if e.AddChild() != e || len(e.Children) != 3 {
		t.Fatal("AddChild with no children")
	}
	got := e.String()
	want := `<message xmlns='jabber:client'><body>hi there</body><active xmlns='http://jabber.org/protocol/chatstates'/>tail</message>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestSerializeNamespacedAttrs covers the prefixes AppendXML generates for
// namespaced attributes: one declaration per namespace per element, reused
// by later attributes in the same namespace, numbered again on each element,
// and never for xml:* or unprefixed attributes.
func TestSerializeNamespacedAttrs(t *testing.T) {
	child := NewElement("item", "urn:a").SetAttrNS("urn:y", "k", "1").SetAttr("plain", "p")
	e := NewElement("x", "urn:a").
		SetAttrNS("urn:y", "one", "1").
		SetAttrNS(NSXML, "lang", "en").
		SetAttrNS("urn:z", "two", "2").
		SetAttr("plain", "p").
		SetAttrNS("urn:y", "three", "3").
		SetAttrNS("urn:a", "four", "4"). // the element's own namespace still needs a prefix
		AddChild(child)
	got := e.String()
	want := `<x xmlns='urn:a' xmlns:ns1='urn:y' ns1:one='1' xml:lang='en' xmlns:ns2='urn:z' ns2:two='2' plain='p' ns1:three='3' xmlns:ns3='urn:a' ns3:four='4'>` +
		`<item xmlns:ns1='urn:y' ns1:k='1' plain='p'/></x>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	again, err := Parse([]byte(got))
	if err != nil || !Equal(again, e) {
		t.Fatalf("reparse: %v\n%s", err, again)
	}
	// A namespace with characters to escape.
	odd := NewElement("x", "").SetAttrNS("urn:a'b&c", "v", "<'&>")
	got = odd.String()
	if want := `<x xmlns:ns1='urn:a&apos;b&amp;c' ns1:v='&lt;&apos;&amp;>'/>`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if again, err := Parse([]byte(got)); err != nil || !Equal(again, odd) {
		t.Fatalf("reparse: %v %s", err, again)
	}
}

func TestSerializeEscaping(t *testing.T) {
	tests := []struct{ text, wantText, attr, wantAttr string }{
		{"a<b>c&d", "a&lt;b&gt;c&amp;d", "a<b>c&d", "a&lt;b>c&amp;d"},
		{`'quotes' "too"`, `'quotes' "too"`, `'quotes' "too"`, `&apos;quotes&apos; "too"`},
		{"tab\tnl\ncr\r", "tab\tnl\ncr&#xD;", "tab\tnl\ncr\r", "tab&#x9;nl&#xA;cr&#xD;"},
		{"]]>", "]]&gt;", "]]>", "]]>"},
		{"ctl\x00\x01\x1f.", "ctl\uFFFD\uFFFD\uFFFD.", "ctl\x08.", "ctl\uFFFD."},
		{"bad\xff\xc3utf8", "bad\uFFFD\uFFFDutf8", "bad\xffutf8", "bad\uFFFDutf8"},
		{"nonchar\uFFFE\uFFFF", "nonchar\uFFFD\uFFFD", "\uFFFE", "\uFFFD"},
		{"ünïcödé ☺ \U0001F600", "ünïcödé ☺ \U0001F600", "☺", "☺"},
	}
	for _, tc := range tests {
		e := NewElement("m", "jabber:client").SetAttr("a", tc.attr).AddText(tc.text)
		got := e.String()
		want := "<m xmlns='jabber:client' a='" + tc.wantAttr + "'>" + tc.wantText + "</m>"
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
			continue
		}
		again, err := Parse([]byte(got))
		if err != nil {
			t.Errorf("%q: %v", got, err)
			continue
		}
		// What XML can carry comes back unchanged (the rest was replaced
		// by U+FFFD).
		if valid := !strings.Contains(tc.wantAttr, "\uFFFD"); valid && again.Attr("a") != tc.attr {
			t.Errorf("attribute %q came back as %q", tc.attr, again.Attr("a"))
		}
		if valid := !strings.Contains(tc.wantText, "\uFFFD"); valid && again.Text() != tc.text {
			t.Errorf("text %q came back as %q", tc.text, again.Text())
		}
	}
	if got := string(AppendEscapedText([]byte("x"), "<&>")); got != "x&lt;&amp;&gt;" {
		t.Errorf("AppendEscapedText: %q", got)
	}
	if got := string(AppendEscapedAttr(nil, "'\t")); got != "&apos;&#x9;" {
		t.Errorf("AppendEscapedAttr: %q", got)
	}
}

// TestBuiltTreeRoundTrip: trees built with the element API, in every
// namespace situation AppendXML handles, serialize to XML that parses
// back into an equal tree, in stream scope and standalone.
func TestBuiltTreeRoundTrip(t *testing.T) {
	trees := map[string]*Element{
		"stanza": NewElement("message", "jabber:client").SetAttr("to", "romeo@example.net").SetAttr("type", "chat").
			SetAttrNS(NSXML, "lang", "en").
			AddChild(NewElement("body", "jabber:client").AddText("Art thou not Romeo & a Montague? <yes>")).
			AddChild(NewElement("active", "http://jabber.org/protocol/chatstates")),
		"nested namespaces": NewElement("iq", "jabber:client").SetAttr("type", "result").
			AddChild(NewElement("query", "jabber:iq:roster").
				AddChild(NewElement("item", "jabber:iq:roster").SetAttr("jid", "a@b").
					AddChild(NewElement("group", "jabber:iq:roster").AddText("Friends"))).
				AddChild(NewElement("x", "").AddText("no namespace").
					AddChild(NewElement("y", "").AddChild(NewElement("z", "urn:z"))))),
		"stream namespace": NewElement("features", NSStream).
			AddChild(NewElement("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl").
				AddChild(NewElement("mechanism", "urn:ietf:params:xml:ns:xmpp-sasl").AddText("SCRAM-SHA-256"))).
			AddChild(NewElement("error", NSStream).AddText("inner")),
		"namespaced attributes": NewElement("a", "urn:a").SetAttrNS("urn:b", "x", "1").SetAttrNS("urn:c", "x", "2").SetAttr("x", "3").
			AddChild(NewElement("b", "urn:b").SetAttrNS("urn:b", "y", "4").SetAttrNS("urn:a", "y", "5")),
		"mixed content": NewElement("p", "http://www.w3.org/1999/xhtml").AddText("a").
			AddChild(NewElement("em", "http://www.w3.org/1999/xhtml").AddText("b")).AddText("c\r\nd\te").
			AddChild(NewElement("br", "http://www.w3.org/1999/xhtml")),
		"escaping everywhere": NewElement("m", "urn:'&<>\"").SetAttr("a", "'\"<>&\t\n\r").AddText("]]>&<\r"),
	}
	for name, tree := range trees {
		t.Run(name, func(t *testing.T) {
			standalone := tree.AppendStandalone(nil)
			again, err := Parse(standalone)
			if err != nil || !Equal(again, tree) {
				t.Fatalf("standalone: %v\n%s\n%s", err, standalone, again)
			}
			// As a first-level element of a client stream.
			out := tree.AppendXML(nil, StreamScope("jabber:client"))
			els := parseElements(t, Limits{}, wrap(out))
			if len(els) != 1 || !Equal(els[0], tree) {
				t.Fatalf("in a stream: %s", out)
			}
			// Serializing the parsed tree gives the same bytes.
			if again := els[0].AppendXML(nil, StreamScope("jabber:client")); string(again) != string(out) {
				t.Fatalf("second serialization differs:\n%s\n%s", out, again)
			}
			// Copies are equal, and changing a ShallowCopy leaves the original.
			if !Equal(tree.Clone(), tree) {
				t.Fatal("Clone differs")
			}
			c := tree.ShallowCopy().SetAttr("added", "1").AddText("more")
			if Equal(c, tree) {
				t.Fatal("changed copy still equal")
			}
			if _, ok := tree.LookupAttr("", "added"); ok {
				t.Fatal("ShallowCopy shares its attributes with the original")
			}
		})
	}
}
