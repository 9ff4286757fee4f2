//go:build ignore

// gencorpus extracts the protocol examples of the XEPs and of RFC 6120/6121
// into a corpus of XMPP stanzas for the xmlstream parser tests, and writes
// the benchmark corpus. Standard library only; run from the module root:
//
//	go run ./xmlstream/testdata/gencorpus.go \
//		-specs /work/shared/specs \
//		-out xmlstream/testdata/corpus \
//		-bench xmlstream/testdata/bench
//
// Each kept example is written as <spec>-<NNN>.xml, NNN being the number of
// the example in the spec (the "Example NNN" of the rendered XEP; for the
// RFCs, the ordinal of the <artwork> block). A file holds one or more
// complete top-level elements, separated by white space, exactly as they are
// meant to be fed to the parser inside
//
//	<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>
//	...
//	</stream:stream>
//
// An example is kept only if, so wrapped, it is namespace-well-formed XML
// that uses none of the XML features RFC 6120 §11.1 forbids (comments are
// stripped first; processing instructions, DTDs and entity references other
// than the predefined and numeric ones cause a skip).
//
// Either part can be skipped: -specs ” writes only the benchmark corpus,
// -bench ” only the example corpus. Output is deterministic; stale *.xml
// files in -out are removed first.
package main

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

const (
	wrapOpen  = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
	wrapClose = "</stream:stream>"
	nsXML     = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS   = "http://www.w3.org/2000/xmlns/"
)

func main() {
	specs := flag.String("specs", "/work/shared/specs", "directory with xeps/*.xml and rfcs/*.xml ('' to skip the example corpus)")
	out := flag.String("out", "xmlstream/testdata/corpus", "output directory for the example corpus")
	rfcs := flag.String("rfcs", "rfc6120,rfc6121", "comma-separated RFCs (in <specs>/rfcs) whose C:/S: traces are included")
	bench := flag.String("bench", "", "output directory for the benchmark corpus ('' to skip)")
	verbose := flag.Bool("v", false, "print every skipped example with its reason")
	flag.Parse()

	if *specs != "" {
		if err := genCorpus(*specs, *out, *rfcs, *verbose); err != nil {
			fmt.Fprintln(os.Stderr, "gencorpus:", err)
			os.Exit(1)
		}
	}
	if *bench != "" {
		if err := genBench(*bench); err != nil {
			fmt.Fprintln(os.Stderr, "gencorpus:", err)
			os.Exit(1)
		}
	}
}

// ---------------------------------------------------------------------------
// Example corpus

type example struct {
	index    int    // 1-based ordinal among the spec's examples
	text     string // concatenated CDATA content
	nonCDATA bool   // the element had character data outside CDATA sections
}

type specStats struct {
	name    string
	seen    int
	kept    int
	bytes   int
	skipped map[string]int
}

func genCorpus(specsDir, outDir, rfcList string, verbose bool) error {
	xeps, err := filepath.Glob(filepath.Join(specsDir, "xeps", "xep-*.xml"))
	if err != nil {
		return err
	}
	if len(xeps) == 0 {
		return fmt.Errorf("no XEPs in %s", filepath.Join(specsDir, "xeps"))
	}
	sort.Strings(xeps)
	type source struct {
		path, name, tag string
		rfc             bool
	}
	var sources []source
	for _, p := range xeps {
		sources = append(sources, source{p, strings.TrimSuffix(filepath.Base(p), ".xml"), "example", false})
	}
	for _, r := range strings.Split(rfcList, ",") {
		if r = strings.TrimSpace(r); r != "" {
			sources = append(sources, source{filepath.Join(specsDir, "rfcs", r+".xml"), r, "artwork", true})
		}
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(outDir, "*.xml"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}

	var all []*specStats
	total := &specStats{name: "TOTAL", skipped: map[string]int{}}
	for _, s := range sources {
		src, err := os.ReadFile(s.path)
		if err != nil {
			return err
		}
		// XML line-end normalization applies to the spec file itself.
		text := strings.ReplaceAll(string(src), "\r\n", "\n")
		st := &specStats{name: s.name, skipped: map[string]int{}}
		for _, ex := range extract(text, s.tag) {
			st.seen++
			body, reason := prepare(ex, s.rfc)
			if reason == "" {
				reason = check(body)
			}
			if reason != "" {
				st.skipped[reason]++
				if verbose {
					fmt.Printf("skip %s-%03d: %s\n", s.name, ex.index, reason)
				}
				continue
			}
			name := fmt.Sprintf("%s-%03d.xml", s.name, ex.index)
			if err := os.WriteFile(filepath.Join(outDir, name), []byte(body), 0o644); err != nil {
				return err
			}
			st.kept++
			st.bytes += len(body)
		}
		all = append(all, st)
		total.seen += st.seen
		total.kept += st.kept
		total.bytes += st.bytes
		for k, v := range st.skipped {
			total.skipped[k] += v
		}
	}

	fmt.Printf("%-10s %5s %5s %8s  %s\n", "spec", "seen", "kept", "bytes", "skipped")
	for _, st := range append(all, total) {
		fmt.Printf("%-10s %5d %5d %8d  %s\n", st.name, st.seen, st.kept, st.bytes, fmtReasons(st.skipped))
	}
	return writeReadme(outDir, specsDir, total)
}

func fmtReasons(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

// extract returns the <tag> elements of a spec source in document order,
// ignoring those inside XML comments or CDATA sections of the spec itself.
func extract(src, tag string) []example {
	var out []example
	open, close := "<"+tag, "</"+tag
	for i := 0; i < len(src); {
		switch {
		case strings.HasPrefix(src[i:], "<!--"):
			i = skipPast(src, i+4, "-->")
		case strings.HasPrefix(src[i:], "<![CDATA["):
			i = skipPast(src, i+9, "]]>")
		case strings.HasPrefix(src[i:], open) && i+len(open) < len(src) && strings.IndexByte(" \t\n/>", src[i+len(open)]) >= 0:
			end, selfClosing := startTagEnd(src, i+len(open))
			i = end
			ex := example{index: len(out) + 1}
			if !selfClosing {
				var b strings.Builder
				for i < len(src) {
					switch {
					case strings.HasPrefix(src[i:], "<![CDATA["):
						j := skipPast(src, i+9, "]]>")
						b.WriteString(src[i+9 : max(i+9, j-3)])
						i = j
					case strings.HasPrefix(src[i:], "<!--"):
						i = skipPast(src, i+4, "-->")
					case strings.HasPrefix(src[i:], close):
						i = skipPast(src, i, ">")
						goto done
					default:
						if !isSpace(src[i]) {
							ex.nonCDATA = true
						}
						i++
					}
				}
			done:
				ex.text = b.String()
			}
			out = append(out, ex)
		default:
			i++
		}
	}
	return out
}

// skipPast returns the index just after the first occurrence of sep at or
// after i, or len(s).
func skipPast(s string, i int, sep string) int {
	j := strings.Index(s[i:], sep)
	if j < 0 {
		return len(s)
	}
	return i + j + len(sep)
}

// startTagEnd returns the index after the '>' closing a start tag whose
// attributes begin at i, honoring quoted attribute values.
func startTagEnd(s string, i int) (int, bool) {
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			return i + 1, i > 0 && s[i-1] == '/'
		}
	}
	return len(s), false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

var (
	// RFC 6120/6121 traces prefix each stanza with the sending party:
	// C: client, S: server, E: entity, R: receiving server, P: peer,
	// I: initiating server, CC:/CS:/UC:/US: in the examples with several
	// parties.
	rfcPrefix = regexp.MustCompile(`(?m)^[A-Z]{1,2}[0-9]?:( |$)`)
	// RFC 6121 traces mark elided steps with lines like "[ ... to resource1 ... ]".
	rfcNote = regexp.MustCompile(`(?m)^[ \t]*\[[^<>\n]*\][ \t]*$`)
	// XEP-0049 labels the parties on lines of their own ("CLIENT:",
	// "SERVER (optional error):"); XEP-0220 prefixes lines with "send:" and
	// "recv:".
	xepParty  = regexp.MustCompile(`(?m)^(CLIENT|SERVER)[^:<>\n]*:[ \t]*\n`)
	xepPrefix = regexp.MustCompile(`(?m)^(send|recv): `)
	// XEP-0045 follows a stanza sent to every occupant by a line "[ ... ]"
	// standing for the copies sent to the others.
	xepElided = regexp.MustCompile(`(?m)^[ \t]*\[[ \t]*(\.\.\.|…)[ \t]*\][ \t]*$`)
	// Stream headers and closing tags, prefixed (<stream:stream>) or not
	// (<stream xmlns='http://etherx.jabber.org/streams'>, RFC 6120 §4.8.5).
	streamTag   = regexp.MustCompile(`</?(stream:)?stream[\s/>]`)
	blankLines  = regexp.MustCompile(`\n[ \t]*\n([ \t]*\n)+`)
	commentLine = regexp.MustCompile(`(?ms)^[ \t]*<!--.*?-->[ \t]*\n`)
	commentRE   = regexp.MustCompile(`(?s)<!--.*?-->`)
	entityRef   = regexp.MustCompile(`&([^;&<>\s'"]*);`)
	placeholder = regexp.MustCompile(`\.\.\.|…|\[\s*\.\.\.\s*\]`)
)

// prepare turns the raw text of an example into the corpus file content, or
// returns the reason to skip it.
func prepare(ex example, rfc bool) (string, string) {
	t := ex.text
	if strings.TrimSpace(t) == "" {
		if ex.nonCDATA {
			return "", "no CDATA (prose/plain text)"
		}
		return "", "empty"
	}
	if rfc {
		// Replace the prefix by as many spaces, so that dedent keeps the
		// continuation lines aligned.
		t = rfcPrefix.ReplaceAllStringFunc(t, func(p string) string { return strings.Repeat(" ", len(p)) })
		t = rfcNote.ReplaceAllString(t, "")
	} else {
		t = xepParty.ReplaceAllString(t, "")
		t = xepPrefix.ReplaceAllString(t, "")
		t = xepElided.ReplaceAllString(t, "")
	}
	if !utf8.ValidString(t) {
		return "", "invalid UTF-8"
	}
	if strings.Contains(t, "<!--") {
		// Comments on lines of their own go with their lines.
		t = commentLine.ReplaceAllString(t, "")
		t = commentRE.ReplaceAllString(t, "")
		if strings.Contains(t, "<!--") || strings.Contains(t, "-->") {
			return "", "unterminated comment"
		}
	}
	t = strings.TrimSpace(blankLines.ReplaceAllString(dedent(t), "\n\n"))
	switch {
	case t == "":
		return "", "empty"
	case streamTag.MatchString(t) || strings.Contains(t, "<?xml"):
		return "", "stream header"
	case strings.Contains(t, "[<") || strings.Contains(t, ">]"):
		return "", "syntax template" // "[<text>...</text>]": optional element
	case strings.Contains(t, "<!DOCTYPE") || strings.Contains(t, "<!ENTITY"):
		return "", "DTD"
	case strings.Contains(t, "<?"):
		return "", "processing instruction"
	case !strings.HasPrefix(t, "<"):
		return "", "not XML (starts with text)"
	}
	return t + "\n", ""
}

// dedent removes the indentation common to all non-blank lines.
func dedent(t string) string {
	lines := strings.Split(t, "\n")
	prefix, first := "", true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = ind, false
			continue
		}
		for !strings.HasPrefix(ind, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	if prefix == "" {
		return t
	}
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, prefix)
	}
	return strings.Join(lines, "\n")
}

// check reports why body, wrapped in the stream element, is not acceptable
// corpus material ("" if it is).
func check(body string) string {
	doc := wrapOpen + body + wrapClose
	for _, m := range entityRef.FindAllStringSubmatch(doc, -1) {
		switch name := m[1]; {
		case name == "lt" || name == "gt" || name == "amp" || name == "quot" || name == "apos":
		case strings.HasPrefix(name, "#"):
		default:
			return "entity reference"
		}
	}

	// Well-formedness (encoding/xml, strict).
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if placeholder.MatchString(body) {
				return "placeholder"
			}
			return "not well-formed"
		}
		switch tok.(type) {
		case xml.Comment:
			return "comment"
		case xml.ProcInst:
			return "processing instruction"
		case xml.Directive:
			return "DTD"
		}
	}
	if strings.Contains(body, "]]>") && !strings.Contains(body, "<![CDATA[") {
		return "not well-formed" // "]]>" in character data
	}

	// Namespaces, duplicate attributes, top-level structure. RawToken keeps
	// the prefixes; tag matching was verified above.
	d = xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	type scope map[string]string // prefix -> namespace declared on this element
	stack := []scope{{"xml": nsXML}}
	lookup := func(prefix string) (string, bool) {
		for i := len(stack) - 1; i >= 0; i-- {
			if ns, ok := stack[i][prefix]; ok {
				return ns, ns != "" || prefix == ""
			}
		}
		return "", prefix == ""
	}
	depth, topLevel := 0, 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "not well-formed"
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				topLevel++
			}
			if strings.Contains(t.Name.Local, ":") || strings.Contains(t.Name.Space, ":") {
				return "bad qualified name"
			}
			sc := scope{}
			for _, a := range t.Attr {
				if strings.Contains(a.Name.Local, ":") {
					return "bad qualified name"
				}
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					if a.Value == nsXML || a.Value == nsXMLNS {
						return "namespace error"
					}
					sc[""] = a.Value
				case a.Name.Space == "xmlns":
					switch {
					case a.Value == "":
						return "namespace error" // undeclaring a prefix is XML 1.1 only
					case a.Name.Local == "xmlns":
						return "namespace error"
					case a.Name.Local == "xml" && a.Value != nsXML:
						return "namespace error"
					case a.Name.Local != "xml" && (a.Value == nsXML || a.Value == nsXMLNS):
						return "namespace error"
					}
					sc[a.Name.Local] = a.Value
				}
			}
			stack = append(stack, sc)
			if t.Name.Space != "" {
				if t.Name.Space == "xmlns" {
					return "namespace error"
				}
				if _, ok := lookup(t.Name.Space); !ok {
					return "unbound prefix"
				}
			}
			seen := map[string]bool{}
			for _, a := range t.Attr {
				raw := a.Name.Local
				if a.Name.Space != "" {
					raw = a.Name.Space + ":" + a.Name.Local
				}
				if seen[raw] {
					return "duplicate attribute"
				}
				seen[raw] = true
				if a.Name.Space == "" || a.Name.Space == "xmlns" {
					continue
				}
				ns, ok := lookup(a.Name.Space)
				if !ok {
					return "unbound prefix"
				}
				exp := "{" + ns + "}" + a.Name.Local
				if seen[exp] {
					return "duplicate attribute"
				}
				seen[exp] = true
			}
		case xml.EndElement:
			depth--
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if depth == 1 && len(bytes.TrimSpace(t)) > 0 {
				if placeholder.Match(t) {
					return "placeholder"
				}
				return "text between elements"
			}
		}
	}
	if topLevel == 0 {
		return "no element"
	}
	return ""
}

func writeReadme(outDir, specsDir string, total *specStats) error {
	notice, err := os.ReadFile(filepath.Join(specsDir, "xeps", "LICENSE.txt"))
	if err != nil {
		return err
	}
	stats := fmt.Sprintf("%d examples seen, %d kept (%d bytes); skipped: %s.",
		total.seen, total.kept, total.bytes, fmtReasons(total.skipped))
	text := strings.NewReplacer("«", "`", "»", "`", "{{stats}}", stats,
		"{{notice}}", strings.TrimSpace(strings.ReplaceAll(string(notice), "\r\n", "\n"))).Replace(readmeTemplate)
	return os.WriteFile(filepath.Join(outDir, "README.md"), []byte(text), 0o644)
}

// readmeTemplate is the corpus README; «» stand for backquotes.
const readmeTemplate = `# XMPP example corpus

Generated by «../gencorpus.go» — do not edit by hand. Each «.xml» file holds
one protocol example of a specification: one or more complete top-level
elements (stanzas, other first-level elements such as «<stream:features>» or
«<enable xmlns='urn:xmpp:sm:3'/>», and a few payload fragments such as a bare
«<storage xmlns='storage:bookmarks'>»), separated by white space. The parser
tests feed a file's content, unchanged, inside

    <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>
    ...
    </stream:stream>

## Where the files come from

- «xep-NNNN-MMM.xml»: Example MMM of XEP-NNNN, that is the CDATA content of the
  MMM-th «<example>» element of the XEP's XML source (examples commented out in
  the source are not counted), i.e. "Example MMM" of the rendered XEP.
- «rfc6120-MMM.xml», «rfc6121-MMM.xml»: the MMM-th «<artwork>» block of
  RFC 6120 (XMPP Core) or RFC 6121 (XMPP IM) when it holds XML.

The text is changed only as follows:

- XML comments are removed (RFC 6120 §11.1 forbids them on a stream), with
  the lines they leave blank;
- the RFC party prefixes («C:», «S:», «R:», «CS:», «S2:»...) and the lines
  marking elided steps («[ ... to resource1 ... ]») are removed, as are the
  «CLIENT:»/«SERVER:» lines of XEP-0049, the «send:»/«recv:» prefixes of
  XEP-0220 and the «[ ... ]» lines that stand for repeated stanzas in XEP-0045;
- the indentation common to all lines is removed, runs of blank lines are
  reduced to one, leading and trailing white space is trimmed and one newline
  is appended.

Examples are left out when they contain a stream header or closing tag or an
«<?xml» declaration, a DTD or a processing instruction, an entity reference
other than the five predefined ones and character references, a syntax
template («[<text>...</text>]»), an undeclared namespace prefix (the «db:»
prefix of the XEP-0220 examples is declared on a stream header they do not
show), or when they are not well-formed (a few errata in the specifications),
start with text (URIs, HTTP transcripts of XEP-0124/0206, diagrams,
pseudo-code) or have text between the top-level elements. Placeholders that
leave the XML well-formed («<body>[ ... ]</body>», «ver='...'») are kept as
they are.

Last generation: {{stats}}

## Regenerating

From the module root, with the specification sources at hand (they are not
needed to run the tests: the corpus is checked in):

    go run ./xmlstream/testdata/gencorpus.go -specs /work/shared/specs \
        -out xmlstream/testdata/corpus -bench xmlstream/testdata/bench

The program removes the old «*.xml» files of the output directory first and
is deterministic. «-v» lists every skipped example with the reason; «-specs ''»
regenerates only the benchmark files.

## License

The XEP examples come from XMPP Extension Protocols published by the XMPP
Standards Foundation (XSF) in accordance with the XSF's Intellectual Property
Rights Policy (https://xmpp.org/about/xsf/ipr-policy/). The notice that
accompanies the XEP sources (LICENSE.txt) is reproduced below; per its terms
the copyright notice and permission notice are included here.

The RFC 6120 and RFC 6121 examples come from IETF RFCs: Copyright (c) 2011
IETF Trust and the persons identified as the document authors. All rights
reserved. They are subject to BCP 78 and the IETF Trust's Legal Provisions
Relating to IETF Documents (https://trustee.ietf.org/license-info).

«««
{{notice}}
«««
`

// ---------------------------------------------------------------------------
// Benchmark corpus

func genBench(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []struct{ name, body, desc string }{
		{"chat.xml", benchChat, "one-to-one chat message: body, XEP-0085 «<active/>», XEP-0359 origin-id, XEP-0184 receipt request"},
		{"presence-caps.xml", benchPresence, "available presence: show, status (non-ASCII), priority, XEP-0115 caps, XEP-0153 vcard-update"},
		{"roster-push.xml", benchRosterPush, "roster push (iq set), one item with name, subscription and two groups"},
		{"disco-info.xml", compact(benchDiscoInfo), "server disco#info result: 2 identities, 12 features, XEP-0128 serverinfo form"},
		{"mam-result.xml", compact(benchMAM), "MAM result wrapping a forwarded message with delay, XHTML-IM mixed content, reference, markers, stanza-id; entities and non-ASCII text"},
		{"roster-1000.xml", roster1000(), "roster result with 1000 items (0–2 groups each), one item per line"},
	}
	var readme strings.Builder
	readme.WriteString(strings.NewReplacer("«", "`", "»", "`").Replace(benchReadme))
	for _, f := range files {
		fmt.Fprintf(&readme, "| «%s» | %d | %s |\n", f.name, len(f.body), f.desc)
		if r := check(f.body); r != "" {
			return fmt.Errorf("bench %s: %s", f.name, r)
		}
		if n := countTopLevel(f.body); n != 1 {
			return fmt.Errorf("bench %s: %d top-level elements", f.name, n)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.body), 0o644); err != nil {
			return err
		}
		fmt.Printf("bench %-18s %7d bytes\n", f.name, len(f.body))
	}
	text := strings.NewReplacer("«", "`", "»", "`").Replace(readme.String())
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(text), 0o644)
}

const benchReadme = `# Benchmark stanzas

Generated by «../gencorpus.go» (run with «-bench»; see «../corpus/README.md»)
— do not edit by hand. Each file is exactly one top-level element, without a
trailing newline, well-formed inside
«<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>»:
stanzas inherit «jabber:client» from the stream, extensions declare their own
namespace. Except roster-1000.xml they carry no white space between
elements, as most stanzas on the wire.

| file | bytes | content |
|------|------:|---------|
`

func countTopLevel(body string) int {
	d := xml.NewDecoder(strings.NewReader(wrapOpen + body + wrapClose))
	depth, n := 0, 0
	for {
		tok, err := d.RawToken()
		if err != nil {
			return n
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth++; depth == 2 {
				n++
			}
		case xml.EndElement:
			depth--
		}
	}
}

// compact removes the line breaks and indentation used to keep the sources
// below readable: stanzas on the wire usually carry no white space between
// elements. Only white space that starts with a newline is removed, so the
// spaces inside text and between attributes stay.
func compact(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, " \t")
	}
	var b strings.Builder
	for i, l := range lines {
		// A line that continues a start tag (attributes) needs a space.
		if i > 0 && !strings.HasPrefix(l, "<") && !strings.HasSuffix(lines[i-1], ">") {
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return b.String()
}

// The bench files carry no trailing newline: each is exactly one element.

const benchChat = `<message from='juliet@capulet.example/balcony' to='romeo@montague.example/orchard' id='qJ8tX3bR1mZ' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><active xmlns='http://jabber.org/protocol/chatstates'/><origin-id xmlns='urn:xmpp:sid:0' id='qJ8tX3bR1mZ'/><request xmlns='urn:xmpp:receipts'/></message>`

const benchPresence = `<presence from='romeo@montague.example/orchard' to='juliet@capulet.example' id='p8Xk2-41' xml:lang='en'><show>away</show><status>Under the balcony — back soon</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/><x xmlns='vcard-temp:x:update'><photo>01b87fcd030b72895ff8e88db57ec525450f000d</photo></x></presence>`

const benchRosterPush = `<iq to='juliet@capulet.example/balcony' id='a78b4q6ha463' type='set'><query xmlns='jabber:iq:roster' ver='ver15'><item jid='nurse@capulet.example' name='Nurse' subscription='both'><group>Capulets</group><group>Household</group></item></query></iq>`

const benchDiscoInfo = `
<iq from='capulet.example' to='juliet@capulet.example/balcony' id='disco1-9f3a' type='result'>
  <query xmlns='http://jabber.org/protocol/disco#info'>
    <identity category='server' type='im' name='Meerkat'/>
    <identity category='pubsub' type='pep'/>
    <feature var='http://jabber.org/protocol/disco#info'/>
    <feature var='http://jabber.org/protocol/disco#items'/>
    <feature var='jabber:iq:roster'/>
    <feature var='jabber:iq:version'/>
    <feature var='urn:xmpp:ping'/>
    <feature var='urn:xmpp:time'/>
    <feature var='urn:xmpp:carbons:2'/>
    <feature var='urn:xmpp:mam:2'/>
    <feature var='urn:xmpp:blocking'/>
    <feature var='urn:xmpp:push:0'/>
    <feature var='msgoffline'/>
    <feature var='http://jabber.org/protocol/pubsub#publish'/>
    <x xmlns='jabber:x:data' type='result'>
      <field var='FORM_TYPE' type='hidden'>
        <value>http://jabber.org/network/serverinfo</value>
      </field>
      <field var='abuse-addresses' type='list-multi'>
        <value>mailto:abuse@capulet.example</value>
        <value>xmpp:abuse@capulet.example</value>
      </field>
      <field var='admin-addresses' type='list-multi'>
        <value>mailto:admin@capulet.example</value>
        <value>xmpp:admin@capulet.example</value>
      </field>
      <field var='support-addresses' type='list-multi'>
        <value>https://capulet.example/support</value>
        <value>xmpp:support@conference.capulet.example?join</value>
      </field>
      <field var='feedback-addresses' type='list-multi'>
        <value>https://capulet.example/feedback</value>
      </field>
      <field var='security-addresses' type='list-multi'>
        <value>mailto:security@capulet.example</value>
      </field>
    </x>
  </query>
</iq>
`

const benchMAM = `
<message from='juliet@capulet.example' to='juliet@capulet.example/balcony' id='mam-res-5a1e'>
  <result xmlns='urn:xmpp:mam:2' queryid='f27a-19cd' id='28482-98726-73623'>
    <forwarded xmlns='urn:xmpp:forward:0'>
      <delay xmlns='urn:xmpp:delay' from='capulet.example' stamp='2024-07-10T23:08:25.417Z'/>
      <message xmlns='jabber:client' from='romeo@montague.example/orchard' to='juliet@capulet.example/balcony' type='chat' id='5e0a1c3b-8f2d-4b7a-a6c9-0d1e2f3a4b5c' xml:lang='en'>
        <thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread>
        <body>Juliet, with love's light wings did I o'erperch these walls; for stony limits cannot hold love out, &amp; what love can do, that dares love attempt. Therefore thy kinsmen are no stop to me. Tonight the café by the old bridge, 9 &lt; 10 so come early. 日本 has a word for this, I am told. Call me but love, and I'll be new baptized 🌹 By any other name, a rose would smell as sweet.</body>
        <html xmlns='http://jabber.org/protocol/xhtml-im'>
          <body xmlns='http://www.w3.org/1999/xhtml'>
            <p>Hello <strong>world</strong>!</p>
            <p><em>Juliet</em>, with love's light wings did I o'erperch these walls; for stony limits cannot hold love out, &amp; what love can do, that dares love attempt. Therefore thy kinsmen are no stop to me.</p>
            <p>Tonight the <a href='https://maps.example/?q=caf%C3%A9&amp;z=17'>café by the old bridge</a>, 9 &lt; 10 so come early. 日本 has a word for this, I am told.</p>
            <p>Call me but love, and I'll be new baptized 🌹 By any other name, a rose would smell as sweet.</p>
          </body>
        </html>
        <reference xmlns='urn:xmpp:reference:0' type='mention' begin='0' end='6' uri='xmpp:juliet@capulet.example'/>
        <markable xmlns='urn:xmpp:chat-markers:0'/>
        <active xmlns='http://jabber.org/protocol/chatstates'/>
        <request xmlns='urn:xmpp:receipts'/>
        <origin-id xmlns='urn:xmpp:sid:0' id='5e0a1c3b-8f2d-4b7a-a6c9-0d1e2f3a4b5c'/>
        <stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.example' id='28482-98726-73623'/>
      </message>
    </forwarded>
  </result>
</message>
`

// roster1000 is a roster result with 1000 contacts, one item per line, the
// way several servers pretty-print large results.
func roster1000() string {
	first := []string{"Romeo", "Juliet", "Mercutio", "Benvolio", "Tybalt", "Rosaline", "Paris",
		"Escalus", "Balthasar", "Sampson", "Gregory", "Abram", "Peter", "Zoë", "José", "Ἀντώνιος", "太郎", "Olivia"}
	last := []string{"Montague", "Capulet", "Verona", "Lawrence", "Mantua", "Friar", "Núñez", "Smith", "山田"}
	domains := []string{"example.net", "capulet.example", "montague.example", "verona.example"}
	groups := []string{"Friends", "Family", "Work", "Football club", "Verona & co", "Neighbours", "Book club", "Café crew"}
	subs := []string{"both", "both", "to", "both", "from"}

	var b strings.Builder
	b.WriteString("<iq to='juliet@capulet.example/balcony' id='roster-7c1d' type='result'>\n")
	b.WriteString("<query xmlns='jabber:iq:roster' ver='ver1000'>\n")
	for i := 1; i <= 1000; i++ {
		h := uint32(i) * 2654435761 // Knuth's multiplicative hash: varied, deterministic
		jid := fmt.Sprintf("contact%04d@%s", i, domains[h>>4%uint32(len(domains))])
		name := first[h>>8%uint32(len(first))] + " " + last[h>>16%uint32(len(last))]
		fmt.Fprintf(&b, "<item jid='%s' name='%s' subscription='%s'", jid, escapeAttr(name), subs[h>>12%uint32(len(subs))])
		ng := []int{0, 1, 1, 1, 2}[h>>20%5] // 0-2 groups, mostly one
		if ng == 0 {
			b.WriteString("/>\n")
			continue
		}
		b.WriteString(">")
		g := int(h >> 24 % uint32(len(groups)))
		for k := 0; k < ng; k++ {
			b.WriteString("<group>" + escapeText(groups[(g+k*3)%len(groups)]) + "</group>")
		}
		b.WriteString("</item>\n")
	}
	b.WriteString("</query>\n</iq>")
	return b.String()
}

func escapeText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func escapeAttr(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", "'", "&apos;", `"`, "&quot;").Replace(s)
}
