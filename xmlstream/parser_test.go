package xmlstream

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const testHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>`

// render turns events into comparable strings.
func render(ev Event) string {
	switch ev.Kind {
	case EventStreamOpen:
		return fmt.Sprintf("open %s %v", ev.Element, ev.Decls)
	case EventElement:
		return "element " + ev.Element.String()
	case EventStreamClose:
		return "close"
	}
	return "none"
}

// feedChunks parses chunks in order and returns the rendered events and the
// error, if any.
func feedChunks(mode Mode, lim Limits, chunks ...[]byte) ([]string, error) {
	p := NewParser(mode, lim)
	var out []string
	for _, c := range chunks {
		p.Feed(c)
		for {
			ev, err := p.Next()
			if err != nil {
				return out, err
			}
			if ev.Kind == EventNone {
				break
			}
			out = append(out, render(ev))
		}
	}
	return out, nil
}

// checkSplits parses input whole, split in two at every position, and one
// byte at a time (checkEverySplit), requires the same events and error
// every time, and returns them rendered.
func checkSplits(t *testing.T, mode Mode, lim Limits, input []byte) ([]string, error) {
	t.Helper()
	evs, err := checkEverySplit(t, mode, lim, input)
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = render(ev)
	}
	return out, err
}

func TestStreamEvents(t *testing.T) {
	input := testHeader + "\n  <message to='bob@example.com' type='chat'><body>Hi &amp; &#x263A; <![CDATA[<raw>]]>!</body></message> \r\n" +
		"<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features></stream:stream>  "
	got, err := checkSplits(t, ModeStream, Limits{}, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`open <stream xmlns='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'/> [{  jabber:client} {stream  http://etherx.jabber.org/streams}]`,
		`element <message xmlns='jabber:client' to='bob@example.com' type='chat'><body>Hi &amp; ☺ &lt;raw&gt;!</body></message>`,
		`element <iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`,
		`element <features xmlns='http://etherx.jabber.org/streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></features>`,
		`close`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestElementTree(t *testing.T) {
	p := NewParser(ModeFragments, Limits{})
	p.Feed([]byte(`<message xmlns='jabber:client' xmlns:x='urn:x' to='a@b' x:flag='1' xml:lang='fr'>` +
		`<body>one</body><x:data>t1<inner/>t2</x:data><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns=''>no ns</body></html></message>`))
	ev, err := p.Next()
	if err != nil || ev.Kind != EventElement {
		t.Fatalf("Next = %v, %v", ev.Kind, err)
	}
	m := ev.Element
	if m.Name != "message" || m.NS != "jabber:client" {
		t.Errorf("name %q ns %q", m.Name, m.NS)
	}
	if m.Attr("to") != "a@b" || m.Attr("flag") != "" || m.Lang() != "fr" {
		t.Errorf("attrs %+v", m.Attrs)
	}
	if v, ok := m.LookupAttr("urn:x", "flag"); !ok || v != "1" {
		t.Errorf("x:flag = %q %v", v, ok)
	}
	if got := m.ChildText("body", "jabber:client"); got != "one" {
		t.Errorf("body %q", got)
	}
	data := m.Child("data", "urn:x")
	if data == nil || data.Text() != "t1t2" || data.Child("inner", "jabber:client") == nil {
		t.Fatalf("x:data = %v", data)
	}
	html := m.ChildNS("http://jabber.org/protocol/xhtml-im")
	if html == nil || html.Child("body", "") == nil || html.Child("body", "").Text() != "no ns" {
		t.Fatalf("html = %v", html)
	}
	n := 0
	for range m.Elements() {
		n++
	}
	if n != 3 {
		t.Errorf("Elements yielded %d", n)
	}
	if ev, err := p.Next(); err != nil || ev.Kind != EventNone {
		t.Errorf("after the element: %v %v", ev.Kind, err)
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name, input, cond string
		raw               bool // input is the whole stream, not content after testHeader
	}{
		{"mismatched end tag", "<message><body>hi</message>", CondNotWellFormed, false},
		{"end tag of nothing", "<message/></body>", CondNotWellFormed, false},
		{"comment", "<message><!-- hi --></message>", CondRestrictedXML, false},
		{"comment between stanzas", "<!-- hi -->", CondRestrictedXML, false},
		{"doctype", "<!DOCTYPE stream>", CondRestrictedXML, true},
		{"processing instruction", "<?php echo 1; ?>", CondRestrictedXML, false},
		{"PI inside a stanza", "<message><?foo?></message>", CondRestrictedXML, false},
		{"xml declaration not at start", "<?xml version='1.0'?>", CondNotWellFormed, false},
		{"xml declaration after white space", " <?xml version='1.0'?><stream:stream/>", CondNotWellFormed, true},
		{"undefined entity", "<message>&nbsp;</message>", CondRestrictedXML, false},
		{"unterminated entity", "<message>&amp</message>", CondNotWellFormed, false},
		{"empty entity", "<message>&;</message>", CondNotWellFormed, false},
		{"NUL reference", "<message>&#0;</message>", CondNotWellFormed, false},
		{"surrogate reference", "<message>&#xD800;</message>", CondNotWellFormed, false},
		{"reference beyond Unicode", "<message>&#x110000;</message>", CondNotWellFormed, false},
		{"bad decimal reference", "<message>&#12a;</message>", CondNotWellFormed, false},
		{"control character", "<message>\x01</message>", CondNotWellFormed, false},
		{"control character in attribute", "<message a='\x08'/>", CondNotWellFormed, false},
		{"invalid UTF-8 in text", "<message>\xff</message>", CondNotWellFormed, false},
		{"truncated UTF-8 in text", "<message>\xc3</message>", CondNotWellFormed, false},
		{"U+FFFE in text", "<message>\uFFFE</message>", CondNotWellFormed, false},
		{"invalid UTF-8 in attribute", "<message a='\xc3('/>", CondNotWellFormed, false},
		{"invalid UTF-8 in name", "<mess\xc3(age/>", CondNotWellFormed, false},
		{"]]> in text", "<message>a]]>b</message>", CondNotWellFormed, false},
		{"duplicate attribute", "<message a='1' a='2'/>", CondNotWellFormed, false},
		{"duplicate expanded attribute", "<message xmlns:p='u' xmlns:q='u' p:a='1' q:a='2'/>", CondNotWellFormed, false},
		{"duplicate namespace declaration", "<message xmlns:p='u' xmlns:p='v'/>", CondNotWellFormed, false},
		{"duplicate default namespace", "<message xmlns='u' xmlns='v'/>", CondNotWellFormed, false},
		{"unbound element prefix", "<p:message/>", CondNotWellFormed, false},
		{"unbound attribute prefix", "<message p:a='1'/>", CondNotWellFormed, false},
		{"prefix out of scope", "<message xmlns:p='u'><p:a/></message><p:b/>", CondNotWellFormed, false},
		{"xmlns prefix on element", "<xmlns:message/>", CondNotWellFormed, false},
		{"undeclared prefix", "<message xmlns:p=''/>", CondNotWellFormed, false},
		{"rebinding xml", "<message xmlns:xml='urn:x'/>", CondNotWellFormed, false},
		{"binding the XML namespace", "<message xmlns:p='http://www.w3.org/XML/1998/namespace'/>", CondNotWellFormed, false},
		{"declaring xmlns", "<message xmlns:xmlns='urn:x'/>", CondNotWellFormed, false},
		{"XML namespace as default", "<message xmlns='http://www.w3.org/XML/1998/namespace'/>", CondNotWellFormed, false},
		{"two colons", "<a:b:c xmlns:a='u'/>", CondNotWellFormed, false},
		{"empty local part", "<a: xmlns:a='u'/>", CondNotWellFormed, false},
		{"unquoted attribute", "<message a=1/>", CondNotWellFormed, false},
		{"attribute without value", "<message a/>", CondNotWellFormed, false},
		{"< in attribute", "<message a='<'/>", CondNotWellFormed, false},
		{"no space between attributes", "<message a='1'b='2'/>", CondNotWellFormed, false},
		{"digit starts name", "<1message/>", CondNotWellFormed, false},
		{"space in empty tag", "<message/ >", CondNotWellFormed, false},
		{"space after <", "< message/>", CondNotWellFormed, false},
		{"junk in end tag", "<message></message x>", CondNotWellFormed, false},
		{"text between stanzas", "hello", CondBadFormat, false},
		{"entity between stanzas", "&amp;", CondBadFormat, false},
		{"CDATA between stanzas", "<![CDATA[x]]>", CondBadFormat, false},
		{"bad markup declaration", "<message><!ELEMENT x></message>", CondNotWellFormed, false},
		{"bad CDATA opener", "<message><![CDAT x]]></message>", CondNotWellFormed, false},
		{"stream close inside stanza", "<message></stream:stream>", CondNotWellFormed, false},
		{"wrong stream close", "</stream:streamx>", CondNotWellFormed, false},
		{"data after stream close", "</stream:stream><message/>", CondNotWellFormed, false},
		{"text after stream close", "</stream:stream>x", CondNotWellFormed, false},
		{"wrong streams namespace", "<stream:stream xmlns:stream='urn:wrong'>", CondInvalidNamespace, true},
		{"stanza instead of stream", "<message xmlns='jabber:client'/>", CondInvalidNamespace, true},
		{"stream element misnamed", "<stream:strem xmlns:stream='http://etherx.jabber.org/streams'>", CondBadFormat, true},
		{"text before stream", "hello <stream:stream/>", CondNotWellFormed, true},
		{"byte order mark", "\xef\xbb\xbf<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", CondNotWellFormed, true},
		{"UTF-16 big endian", "\xfe\xff\x00<", CondUnsupportedEncoding, true},
		{"UTF-16 little endian", "\xff\xfe<\x00", CondUnsupportedEncoding, true},
		{"UTF-16 without BOM", "\x00<\x00s", CondUnsupportedEncoding, true},
		{"declared encoding", "<?xml version='1.0' encoding='ISO-8859-1'?>", CondUnsupportedEncoding, true},
		{"declaration without version", "<?xml encoding='UTF-8'?>", CondNotWellFormed, true},
		{"declaration version 2", "<?xml version='2.0'?>", CondNotWellFormed, true},
		{"declaration version 1.1", "<?xml version='1.1'?>", CondNotWellFormed, true},
		{"declaration junk", "<?xml version='1.0' foo='bar'?>", CondNotWellFormed, true},
		{"PI before stream", "<?xml-stylesheet href='a'?>", CondRestrictedXML, true},
		{"end tag first", "</stream:stream>", CondNotWellFormed, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := tc.input
			if !tc.raw {
				input = testHeader + input
			}
			_, err := checkSplits(t, ModeStream, Limits{}, []byte(input))
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error = %v, want %s", err, tc.cond)
			}
			if perr.Condition != tc.cond {
				t.Fatalf("condition %s (%v), want %s", perr.Condition, perr, tc.cond)
			}
		})
	}
}

func TestWellFormedEdgeCases(t *testing.T) {
	tests := []struct{ name, input, want string }{
		{"attribute white space normalized", "<m a='x\ty\nz\r\nw'/>", `<m xmlns='jabber:client' a='x y z w'/>`},
		{"references in attributes kept", "<m a='&#x9;&#xA;&#xD;&lt;&apos;&quot;'/>", `<m xmlns='jabber:client' a='&#x9;&#xA;&#xD;&lt;&apos;"'/>`},
		{"line ends normalized in text", "<m>a\r\nb\rc\n</m>", "<m xmlns='jabber:client'>a\nb\nc\n</m>"},
		{"CR reference kept", "<m>a&#13;b</m>", "<m xmlns='jabber:client'>a&#xD;b</m>"},
		{"white space around =", "<m a = \"1\" b\n=\n'2' />", `<m xmlns='jabber:client' a='1' b='2'/>`},
		{"white space in end tag", "<m></m  >", `<m xmlns='jabber:client'/>`},
		{"brackets in text", "<m>]] ]>]</m>", `<m xmlns='jabber:client'>]] ]&gt;]</m>`},
		{"brackets in CDATA", "<m><![CDATA[]]]]><![CDATA[>]]]></m>", `<m xmlns='jabber:client'>]]&gt;]</m>`},
		{"empty CDATA", "<m>a<![CDATA[]]>b</m>", `<m xmlns='jabber:client'>ab</m>`},
		{"CDATA with markup", "<m><![CDATA[<b>&amp;</b>]]></m>", `<m xmlns='jabber:client'>&lt;b&gt;&amp;amp;&lt;/b&gt;</m>`},
		{"non-ASCII name", "<m><größe xmlns='urn:x'>ü</größe></m>", `<m xmlns='jabber:client'><größe xmlns='urn:x'>ü</größe></m>`},
		{"undeclaring default", "<m><x xmlns=''/></m>", `<m xmlns='jabber:client'><x xmlns=''/></m>`},
		{"xml prefix declared", "<m xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='de'/>", `<m xmlns='jabber:client' xml:lang='de'/>`},
		{"prefixed stanza", "<c:m xmlns:c='jabber:client'/>", `<m xmlns='jabber:client'/>`},
		{"stream prefix inside", "<stream:error><x xmlns='urn:x'/></stream:error>", `<error xmlns='http://etherx.jabber.org/streams'><x xmlns='urn:x'/></error>`},
		{"max char reference", "<m>&#x10FFFF;&#65;</m>", "<m xmlns='jabber:client'>\U0010FFFFA</m>"},
		{"C1 controls allowed", "<m>\u0085</m>", "<m xmlns='jabber:client'>\u0085</m>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkSplits(t, ModeStream, Limits{}, []byte(testHeader+tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[1] != "element "+tc.want {
				t.Fatalf("got %q\nwant element %s", got, tc.want)
			}
		})
	}
}

func TestXMLDeclarationForms(t *testing.T) {
	for _, decl := range []string{
		"",
		"<?xml version='1.0'?>",
		`<?xml version="1.0" encoding="utf-8"?>`,
		"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>",
		"<?xml version='1.0' standalone='no' ?>",
		"<?xml version = '1.0'\n?>",
	} {
		input := decl + "\n<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>"
		got, err := checkSplits(t, ModeStream, Limits{}, []byte(input))
		if err != nil || len(got) != 2 || got[1] != "close" {
			t.Errorf("%q: %q %v", decl, got, err)
		}
	}
}

func TestStreamRestart(t *testing.T) {
	p := NewParser(ModeStream, Limits{})
	p.Feed([]byte(testHeader + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
	for i := 0; i < 2; i++ {
		if _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
	}
	p.Reset()
	// After a restart a new header, XML declaration included, is expected.
	p.Feed([]byte(testHeader))
	ev, err := p.Next()
	if err != nil || ev.Kind != EventStreamOpen {
		t.Fatalf("after Reset: %v %v", ev.Kind, err)
	}
}

func TestFragments(t *testing.T) {
	input := `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>` +
		`<message xmlns='jabber:client'><body>x</body></message>` + "\n" +
		`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`
	got, err := checkSplits(t, ModeFragments, Limits{}, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`element <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>`,
		`element <message xmlns='jabber:client'><body>x</body></message>`,
		`element <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{"text", "</x>", "<a></b>"} {
		if _, err := feedChunks(ModeFragments, Limits{}, []byte(bad)); err == nil {
			t.Errorf("%q accepted in fragment mode", bad)
		}
	}
}

func TestLimits(t *testing.T) {
	const shortHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
	lim := Limits{MaxElementBytes: 200, MaxDepth: 4, MaxAttrs: 3, MaxTextBytes: 50, MaxAttrBytes: 40}
	ok := []string{
		"<a><b><c><d/></c></b></a>",
		"<a x='1' y='2' z='3'/>",
		"<a xmlns:p='u' p:x='1' y='2'/>",
		"<a>" + strings.Repeat("t", 50) + "</a>",
		"<a x='" + strings.Repeat("v", 40) + "'/>",
		"<a x='&amp;" + strings.Repeat("v", 39) + "'/>",
		"<a>" + strings.Repeat("y", 200-7) + "</a>"[:0] + "</a>",
	}
	ok[len(ok)-1] = "<a>" + strings.Repeat("<b/>", (200-7)/4) + "</a>"
	for _, in := range ok {
		if _, err := checkSplits(t, ModeStream, lim, []byte(shortHeader+in)); err != nil {
			t.Errorf("%.40q: %v", in, err)
		}
	}
	bad := []string{
		"<a><b><c><d><e/></d></c></b></a>",
		"<a x='1' y='2' z='3' w='4'/>",
		"<a xmlns:p='u' p:x='1' y='2' z='3'/>",
		"<a>" + strings.Repeat("t", 51) + "</a>",
		"<a>" + strings.Repeat("t", 40) + "<![CDATA[" + strings.Repeat("c", 11) + "]]></a>",
		"<a x='" + strings.Repeat("v", 41) + "'/>",
		"<a x='&amp;" + strings.Repeat("v", 40) + "'/>",
		"<a x='" + strings.Repeat("v", 39) + "\r\n\t'/>",
		"<a>" + strings.Repeat("<b/>", (200-7)/4+1) + "</a>",
		"<" + strings.Repeat("n", 1100) + "/>",
		"<a " + strings.Repeat("n", 1100) + "='1'/>",
	}
	for _, in := range bad {
		_, err := checkSplits(t, ModeStream, lim, []byte(shortHeader+in))
		var perr *Error
		if !errors.As(err, &perr) || perr.Condition != CondPolicyViolation {
			t.Errorf("%.40q: %v, want policy-violation", in, err)
		}
	}
	// A header larger than the element limit is refused too.
	big := "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' x='" + strings.Repeat("v", 39) + "' " +
		strings.Repeat(" ", 200) + ">"
	if _, err := feedChunks(ModeStream, lim, []byte(big)); err == nil {
		t.Error("oversized header accepted")
	}
}

// TestLimitReportedEarly checks that an oversized element is refused as
// soon as the limit is passed, without consuming the rest of the input.
func TestLimitReportedEarly(t *testing.T) {
	lim := Limits{MaxElementBytes: 1000}
	input := testHeader + "<message><body>" + strings.Repeat("x", 10<<20) + "</body></message>"
	p := NewParser(ModeStream, lim)
	p.Feed([]byte(input))
	if ev, err := p.Next(); err != nil || ev.Kind != EventStreamOpen {
		t.Fatal(ev.Kind, err)
	}
	_, err := p.Next()
	var perr *Error
	if !errors.As(err, &perr) || perr.Condition != CondPolicyViolation {
		t.Fatalf("error %v", err)
	}
	if limit := int64(len(testHeader) + 1000 + 1); perr.Offset > limit {
		t.Fatalf("error reported at byte %d, after the limit (%d)", perr.Offset, limit)
	}
}

// TestEachLimitReportedEarly: every limit is reported as soon as the input
// passes it, before the rest of the element has been fed: the parser is
// given only the start of an oversized element (cut before the text run,
// attribute value, start tag or nesting ends) and must fail at once, at
// the byte that passed the limit, and the same start followed by 10 MiB of
// input must fail at the same byte.
func TestEachLimitReportedEarly(t *testing.T) {
	lim := Limits{MaxElementBytes: 1 << 30, MaxTextBytes: 100, MaxAttrBytes: 50, MaxDepth: 8, MaxAttrs: 5}
	attrs := func(n int) string {
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, " a%d='v'", i)
		}
		return sb.String()
	}
	tests := []struct {
		name, start string
		over        int    // offset in start of the byte that passes the limit
		more        string // repeated to make the rest of the input
	}{
		{"text", "<message><body>" + strings.Repeat("t", 150), len("<message><body>") + 100, "t"},
		{"text with references", "<message><body>" + strings.Repeat("&amp;", 150), len("<message><body>") + 100*5 + 4, "&amp;"},
		{"CDATA", "<message><body><![CDATA[" + strings.Repeat("c", 150), len("<message><body><![CDATA[") + 100, "c"},
		{"attribute value", "<message to='" + strings.Repeat("v", 80), len("<message to='") + 50, "v"},
		{"depth", strings.Repeat("<a>", 12), 8*3 + 1, "<a>"}, // at the name of the ninth
		{"attributes", "<message" + attrs(8), len("<message" + attrs(5) + " "), " b='v'"},
		{"element name", "<message><" + strings.Repeat("n", 1500), len("<message><") + 1024, "n"},
		{"attribute name", "<message " + strings.Repeat("n", 1500), len("<message ") + 1024, "n"},
		{"end tag name", "<message></" + strings.Repeat("n", 1500), len("<message></") + 1024, "n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(how string, rest []byte) {
				t.Helper()
				p := NewParser(ModeStream, lim)
				p.Feed([]byte(testHeader))
				if ev, err := p.Next(); err != nil || ev.Kind != EventStreamOpen {
					t.Fatal(ev.Kind, err)
				}
				input := append([]byte(tc.start), rest...)
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				p.Feed(input)
				ev, err := p.Next()
				runtime.ReadMemStats(&after)
				if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
					t.Errorf("%s: %d bytes allocated: the rest of the input was buffered", how, grew)
				}
				var perr *Error
				if !errors.As(err, &perr) || perr.Condition != CondPolicyViolation {
					t.Fatalf("%s: Next = %v, %v; want policy-violation before the rest is fed", how, ev.Kind, err)
				}
				if at := perr.Offset - int64(len(testHeader)); at > int64(tc.over) {
					t.Fatalf("%s: reported at byte %d of the element, after the limit was passed (%d)", how, at, tc.over)
				}
			}
			check("start only", nil)
			check("start and 10 MiB", bytes.Repeat([]byte(tc.more), 10<<20/len(tc.more)))
		})
	}
}

func TestErrorIsSticky(t *testing.T) {
	p := NewParser(ModeStream, Limits{})
	p.Feed([]byte(testHeader + "<a></b>"))
	p.Next()
	_, err1 := p.Next()
	_, err2 := p.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v, %v", err1, err2)
	}
}

func TestFeedBeforeConsumedPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	p := NewParser(ModeStream, Limits{})
	p.Feed([]byte(testHeader + "<a/><b/>"))
	p.Next()
	p.Feed([]byte("<c/>"))
}

func TestDecoder(t *testing.T) {
	r := strings.NewReader(testHeader + "<a/><b>x</b></stream:stream>")
	d := NewDecoder(r, NewParser(ModeStream, Limits{}), 7)
	var kinds []EventKind
	for {
		ev, err := d.Next()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
		kinds = append(kinds, ev.Kind)
	}
	if fmt.Sprint(kinds) != fmt.Sprint([]EventKind{EventStreamOpen, EventElement, EventElement, EventStreamClose}) {
		t.Fatalf("kinds %v", kinds)
	}
}

// corpus returns the XEP example corpus (see testdata/corpus/README.md) and
// the benchmark files, each as the content of a client stream.
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, pattern := range []string{"testdata/corpus/*.xml", "testdata/bench/*.xml"} {
		names, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			files[name] = data
		}
	}
	if len(files) == 0 {
		t.Fatal("no corpus files")
	}
	return files
}

func wrap(content []byte) []byte {
	return append(append([]byte(testHeader), content...), "</stream:stream>"...)
}

// TestCorpusSplits feeds every corpus file, the benchmark files included,
// whole, split in two at every position and one byte at a time.
func TestCorpusSplits(t *testing.T) {
	for name, data := range corpus(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			got, err := checkSplits(t, ModeStream, Limits{MaxElementBytes: 1 << 20}, wrap(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) < 3 {
				t.Fatalf("only %d events", len(got))
			}
		})
	}
}

// parseElements returns the first-level elements of a stream.
func parseElements(t testing.TB, lim Limits, stream []byte) []*Element {
	t.Helper()
	p := NewParser(ModeStream, lim)
	p.Feed(stream)
	var els []*Element
	for {
		ev, err := p.Next()
		if err != nil {
			t.Fatalf("%v\n%s", err, stream)
		}
		switch ev.Kind {
		case EventNone:
			return els
		case EventElement:
			els = append(els, ev.Element)
		}
	}
}

// TestCorpusRoundTrip: parse → serialize → parse gives equal trees, both as
// first-level elements of a stream and as standalone documents.
func TestCorpusRoundTrip(t *testing.T) {
	for name, data := range corpus(t) {
		els := parseElements(t, Limits{MaxElementBytes: 1 << 20}, wrap(data))
		var out []byte
		for _, el := range els {
			start := len(out)
			out = el.AppendXML(out, StreamScope("jabber:client"))
			// In stream scope a stanza does not repeat the inherited namespace.
			if el.NS == "jabber:client" && bytes.HasPrefix(out[start:], []byte("<"+el.Name+" xmlns=")) {
				t.Errorf("%s: redundant xmlns in %s", name, out[start:])
			}
			alone, err := feedChunks(ModeFragments, Limits{MaxElementBytes: 1 << 20}, []byte(el.String()))
			if err != nil || len(alone) != 1 || alone[0] != "element "+el.String() {
				t.Fatalf("%s: standalone round trip: %v %q", name, err, alone)
			}
		}
		again := parseElements(t, Limits{MaxElementBytes: 1 << 20}, wrap(out))
		if len(again) != len(els) {
			t.Fatalf("%s: %d elements after round trip, want %d", name, len(again), len(els))
		}
		for i := range els {
			if !Equal(els[i], again[i]) {
				t.Fatalf("%s: element %d differs after round trip:\n%s\n%s", name, i, els[i], again[i])
			}
		}
	}
}

func TestParseAllocations(t *testing.T) {
	if raceEnabled || testing.CoverMode() != "" {
		t.Skip("allocation counts differ under the race detector and coverage")
	}
	data := []byte(`<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat' id='ktx72v49' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><active xmlns='http://jabber.org/protocol/chatstates'/><origin-id xmlns='urn:xmpp:sid:0' id='de305d54-75b4-431b-adb2-eb6b9e546014'/></message>`)
	p := NewParser(ModeStream, Limits{})
	p.Feed([]byte(testHeader))
	p.Next()
	allocs := testing.AllocsPerRun(200, func() {
		p.Feed(data)
		ev, err := p.Next()
		if err != nil || ev.Kind != EventElement {
			t.Fatal(ev.Kind, err)
		}
		p.Next()
	})
	// The tree: arena string, elements, attributes, child lists.
	if allocs > 4 {
		t.Fatalf("%v allocations per stanza, want at most 4", allocs)
	}
}

func TestRestartKeepsPipelinedInput(t *testing.T) {
	p := NewParser(ModeStream, Limits{})
	p.Feed([]byte(testHeader + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" + testHeader + "<iq type='set' id='b'/>"))
	for _, want := range []EventKind{EventStreamOpen, EventElement} {
		if ev, err := p.Next(); err != nil || ev.Kind != want {
			t.Fatalf("got %v %v, want %v", ev.Kind, err, want)
		}
	}
	p.Restart()
	for _, want := range []EventKind{EventStreamOpen, EventElement, EventNone} {
		if ev, err := p.Next(); err != nil || ev.Kind != want {
			t.Fatalf("after Restart: got %v %v, want %v", ev.Kind, err, want)
		}
	}
}

// TestQNameFastPath: the table-driven path agrees with the general one.
func TestQNameFastPath(t *testing.T) {
	alphabet := []string{"a", "Z", "_", "0", ".", "-", ":", "é", "·", "\xff", " "}
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if prefix != "" {
			c1, ok1 := checkQName([]byte(prefix))
			c2, ok2 := checkQNameSlow([]byte(prefix))
			if ok1 != ok2 || ok1 && c1 != c2 {
				t.Fatalf("%q: fast (%d, %v), slow (%d, %v)", prefix, c1, ok1, c2, ok2)
			}
		}
		if n == 0 {
			return
		}
		for _, a := range alphabet {
			gen(prefix+a, n-1)
		}
	}
	gen("", 4)
}

func TestParseStandalone(t *testing.T) {
	el, err := Parse([]byte(`<vCard xmlns='vcard-temp'><FN>Juliet &amp; co</FN></vCard>`))
	if err != nil || el.Name != "vCard" || el.ChildText("FN", "vcard-temp") != "Juliet & co" {
		t.Fatalf("%v %v", el, err)
	}
	for _, bad := range []string{"", "<a>", "<a/><b/>", "text", "<a></b>"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	big := "<a>" + strings.Repeat("x", 200<<10) + "</a>"
	if _, err := Parse([]byte(big)); err != nil {
		t.Errorf("large element: %v", err)
	}
}

func TestAppendStandalone(t *testing.T) {
	features := NewElement("features", NSStream).AddChild(NewElement("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl").
		AddChild(NewElement("mechanism", "urn:ietf:params:xml:ns:xmpp-sasl").AddText("PLAIN")))
	got := string(features.AppendStandalone(nil))
	want := `<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if again, err := Parse([]byte(got)); err != nil || !Equal(again, features) {
		t.Fatalf("reparse: %v", err)
	}
	msg := NewElement("message", "jabber:client").AddChild(NewElement("body", "jabber:client").AddText("hi"))
	if got := string(msg.AppendStandalone(nil)); got != `<message xmlns='jabber:client'><body>hi</body></message>` {
		t.Fatalf("message: %s", got)
	}
}
