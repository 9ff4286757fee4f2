package jid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unsafe"
)

type validCase struct {
	in                string
	want              string // normalized form
	local, domain, rs string // expected parts
}

// RFC 7622 §3.5, Table 1: A Sample of Legal JIDs.
var rfcValid = []validCase{
	// 1 | <juliet@example.com> | A "bare JID"
	{"juliet@example.com", "juliet@example.com", "juliet", "example.com", ""},
	// 2 | <juliet@example.com/foo> | A "full JID"
	{"juliet@example.com/foo", "juliet@example.com/foo", "juliet", "example.com", "foo"},
	// 3 | <juliet@example.com/foo bar> | Single space in resourcepart
	{"juliet@example.com/foo bar", "juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
	// 4 | <juliet@example.com/foo@bar> | "At" sign in resourcepart
	{"juliet@example.com/foo@bar", "juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
	// 5 | <foo\20bar@example.com> | Single space in localpart, as optionally
	//   escaped using the XMPP JID Escaping extension
	{`foo\20bar@example.com`, `foo\20bar@example.com`, `foo\20bar`, "example.com", ""},
	// 6 | <fussball@example.com> | Another bare JID
	{"fussball@example.com", "fussball@example.com", "fussball", "example.com", ""},
	// 7 | <fu&#xDF;ball@example.com> | The third character is LATIN SMALL
	//   LETTER SHARP S (U+00DF)
	{"fu\u00DFball@example.com", "fu\u00DFball@example.com", "fu\u00DFball", "example.com", ""},
	// 8 | <&#x3C0;@example.com> | A localpart of GREEK SMALL LETTER PI
	//   (U+03C0)
	{"\u03C0@example.com", "\u03C0@example.com", "\u03C0", "example.com", ""},
	// 9 | <&#x3A3;@example.com/foo> | A localpart of GREEK CAPITAL LETTER
	//   SIGMA (U+03A3); case-mapped to U+03C3 (matches example 10).
	{"\u03A3@example.com/foo", "\u03C3@example.com/foo", "\u03C3", "example.com", "foo"},
	// 10 | <&#x3C3;@example.com/foo> | A localpart of GREEK SMALL LETTER
	//   SIGMA (U+03C3)
	{"\u03C3@example.com/foo", "\u03C3@example.com/foo", "\u03C3", "example.com", "foo"},
	// 11 | <&#x3C2;@example.com/foo> | A localpart of GREEK SMALL LETTER
	//   FINAL SIGMA (U+03C2); not matched with examples 9 and 10.
	{"\u03C2@example.com/foo", "\u03C2@example.com/foo", "\u03C2", "example.com", "foo"},
	// 12 | <king@example.com/&#x265A> | A resourcepart of the Unicode
	//   character BLACK CHESS KING (U+265A)
	{"king@example.com/\u265A", "king@example.com/\u265A", "king", "example.com", "\u265A"},
	// 13 | <example.com> | A domainpart
	{"example.com", "example.com", "", "example.com", ""},
	// 14 | <example.com/foobar> | A domainpart and resourcepart
	{"example.com/foobar", "example.com/foobar", "", "example.com", "foobar"},
	// 15 | <a.example.com/b@example.net> | A domainpart followed by a
	//   resourcepart that contains an "at" sign
	{"a.example.com/b@example.net", "a.example.com/b@example.net", "", "a.example.com", "b@example.net"},

	// 18 | <juliet@example.com/ foo> | Leading space in resourcepart
	//
	// DEVIATION: Table 2 lists this as invalid, but the normative rule (RFC
	// 7622 §3.4: the resourcepart is an instance of OpaqueString, RFC 8265
	// §4.2) allows ASCII space anywhere, and so does x/text's OpaqueString.
	// We follow the normative text.
	{"juliet@example.com/ foo", "juliet@example.com/ foo", "juliet", "example.com", " foo"},
}

var ownValid = []validCase{
	// Case mapping of localpart and domainpart; resourcepart case preserved.
	{"JuLiEt@EXAMPLE.com", "juliet@example.com", "juliet", "example.com", ""},
	{"JuLiEt@EXAMPLE.com/BalCony", "juliet@example.com/BalCony", "juliet", "example.com", "BalCony"},
	{"juliet@example.com/BalCony", "juliet@example.com/BalCony", "juliet", "example.com", "BalCony"},
	{"EXAMPLE.COM", "example.com", "", "example.com", ""},
	{"Example.Com/R", "example.com/R", "", "example.com", "R"},
	// Unicode localparts.
	{"\u03A3\u0391\u03A3@example.com", "\u03C3\u03B1\u03C3@example.com", "\u03C3\u03B1\u03C3", "example.com", ""},
	{"\u00C9lise@example.com", "\u00E9lise@example.com", "\u00E9lise", "example.com", ""},
	{"E\u0301lise@example.com", "\u00E9lise@example.com", "\u00E9lise", "example.com", ""}, // NFC
	{"m\u00FCller.@example.com", "m\u00FCller.@example.com", "m\u00FCller.", "example.com", ""},
	{"\u0645\u0631\u062D\u0628\u0627@example.com", "\u0645\u0631\u062D\u0628\u0627@example.com", "\u0645\u0631\u062D\u0628\u0627", "example.com", ""},
	{"\u5F20\u4E09@example.com/\u624B\u673A", "\u5F20\u4E09@example.com/\u624B\u673A", "\u5F20\u4E09", "example.com", "\u624B\u673A"},
	// Fullwidth characters are width-mapped in localparts and domainparts,
	// not in resourceparts.
	{"\uFF2A\uFF35\uFF2C\uFF29\uFF25\uFF34@example.com", "juliet@example.com", "juliet", "example.com", ""},
	{"juliet@\uFF25\uFF38\uFF21\uFF2D\uFF30\uFF2C\uFF25\uFF0Ecom", "juliet@example.com", "juliet", "example.com", ""},
	{"juliet@example.com/\uFF21", "juliet@example.com/\uFF21", "juliet", "example.com", "\uFF21"},
	// Non-ASCII spaces are mapped to ASCII space in resourceparts.
	{"juliet@example.com/foo\u00A0bar", "juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
	{"juliet@example.com/foo\u3000", "juliet@example.com/foo ", "juliet", "example.com", "foo "},
	{"juliet@example.com/ ", "juliet@example.com/ ", "juliet", "example.com", " "},
	// RFC 7622 §3.5: U+2163 and U+265A are allowed in resourceparts.
	{"juliet@example.com/henry\u2163", "juliet@example.com/henry\u2163", "juliet", "example.com", "henry\u2163"},
	// IDN: A-labels are converted to U-labels (RFC 7622 §3.2.1).
	{"juliet@xn--bcher-kva.example", "juliet@b\u00FCcher.example", "juliet", "b\u00FCcher.example", ""},
	{"juliet@XN--BCHER-KVA.example/r", "juliet@b\u00FCcher.example/r", "juliet", "b\u00FCcher.example", "r"},
	{"juliet@B\u00DCCHER.example", "juliet@b\u00FCcher.example", "juliet", "b\u00FCcher.example", ""},
	{"juliet@b\u00FCcher.example", "juliet@b\u00FCcher.example", "juliet", "b\u00FCcher.example", ""},
	{"xn--mgbh0fb.xn--kgbechtv", "\u0645\u062B\u0627\u0644.\u0625\u062E\u062A\u0628\u0627\u0631", "", "\u0645\u062B\u0627\u0644.\u0625\u062E\u062A\u0628\u0627\u0631", ""},
	{"fu\u00DFball.example", "fu\u00DFball.example", "", "fu\u00DFball.example", ""}, // non-transitional
	{"a\u00ADb.example", "ab.example", "", "ab.example", ""},                         // soft hyphen ignored
	// RFC 5892 Appendix A CONTEXTO rules.
	{"col\u00B7legi.cat", "col\u00B7legi.cat", "", "col\u00B7legi.cat", ""},
	{"\u30A2\u30FB\u30A4.example", "\u30A2\u30FB\u30A4.example", "", "\u30A2\u30FB\u30A4.example", ""},
	{"\u05D0\u05F3.example", "\u05D0\u05F3.example", "", "\u05D0\u05F3.example", ""},
	// IP literals.
	{"juliet@127.0.0.1", "juliet@127.0.0.1", "juliet", "127.0.0.1", ""},
	{"juliet@[::1]/r", "juliet@[::1]/r", "juliet", "[::1]", "r"},
	{"[2001:DB8:0:0::1]", "[2001:db8::1]", "", "[2001:db8::1]", ""},
	{"[::FFFF:192.0.2.1]", "[::ffff:192.0.2.1]", "", "[::ffff:192.0.2.1]", ""},
	{"01.02.03.04", "01.02.03.04", "", "01.02.03.04", ""}, // not an IPv4 literal, but a valid name
	{"\uFF11.2.3.4", "1.2.3.4", "", "1.2.3.4", ""},
	// RFC 7622 §3.2: one trailing dot is stripped.
	{"juliet@example.com.", "juliet@example.com", "juliet", "example.com", ""},
	{"juliet@example.com./r", "juliet@example.com/r", "juliet", "example.com", "r"},
	{"example.com.", "example.com", "", "example.com", ""},
	{"Example.com.", "example.com", "", "example.com", ""},
	{"127.0.0.1.", "127.0.0.1", "", "127.0.0.1", ""},
	{"[::1].", "[::1]", "", "[::1]", ""},
	// Underscores, unqualified names, hyphens.
	{"_xmpp-client._tcp.example.com", "_xmpp-client._tcp.example.com", "", "_xmpp-client._tcp.example.com", ""},
	{"juliet@a_b.example", "juliet@a_b.example", "juliet", "a_b.example", ""},
	{"localhost", "localhost", "", "localhost", ""},
	{"juliet@a-b-c.example", "juliet@a-b-c.example", "juliet", "a-b-c.example", ""},
	{"juliet@\u2163.example", "juliet@iv.example", "juliet", "iv.example", ""}, // UTS #46 mapping
	// RFC 7622 §3.2: split at the first '/', then the first '@'.
	{"example.com/a/b", "example.com/a/b", "", "example.com", "a/b"},
	{"juliet@example.com/foo/bar@baz", "juliet@example.com/foo/bar@baz", "juliet", "example.com", "foo/bar@baz"},
	{"juliet@example.com//", "juliet@example.com//", "juliet", "example.com", "/"},
	{"juliet@example.com/@", "juliet@example.com/@", "juliet", "example.com", "@"},
	// Printable ASCII allowed in localparts.
	{"a!#$%*+-.=?^_`{|}~\\[]()0,;@example.com", "a!#$%*+-.=?^_`{|}~\\[]()0,;@example.com", "a!#$%*+-.=?^_`{|}~\\[]()0,;", "example.com", ""},
}

type invalidCase struct {
	in   string
	want error
}

// RFC 7622 §3.5, Table 2: A Sample of Strings That Violate the JID Rules.
var rfcInvalid = []invalidCase{
	// 16 | <"juliet"@example.com> | Quotation marks (U+0022) in localpart
	{`"juliet"@example.com`, ErrLocalpart},
	// 17 | <foo bar@example.com> | Space (U+0020) in localpart
	{"foo bar@example.com", ErrLocalpart},
	// 18 | <juliet@example.com/ foo> | Leading space in resourcepart
	//   Accepted, see the DEVIATION note in rfcValid.
	// 19 | <@example.com/> | Zero-length localpart and resourcepart
	{"@example.com/", ErrLocalpart},
	// 20 | <henry&#x2163;@example.com> | The sixth character is ROMAN
	//   NUMERAL FOUR (U+2163)
	{"henry\u2163@example.com", ErrLocalpart},
	// 21 | <&#x265A;@example.com> | A localpart of BLACK CHESS KING (U+265A)
	{"\u265A@example.com", ErrLocalpart},
	// 22 | <juliet@> | A localpart without a domainpart
	{"juliet@", ErrDomainpart},
	// 23 | </foobar> | A resourcepart without a domainpart
	{"/foobar", ErrDomainpart},
}

var ownInvalid = []invalidCase{
	{"", ErrEmpty},
	{"@", ErrLocalpart},
	{"@example.com", ErrLocalpart},
	{"juliet@example.com/", ErrResourcepart},
	{"example.com/", ErrResourcepart},
	{"/", ErrDomainpart},
	{".", ErrDomainpart},
	{"..", ErrDomainpart},
	{"juliet@.", ErrDomainpart},
	{"juliet@./r", ErrDomainpart},
	{"a@b@c", ErrDomainpart},
	{"juliet@a..b", ErrDomainpart},
	{"juliet@.example.com", ErrDomainpart},
	{"juliet@example.com..", ErrDomainpart},
	{"juliet@exa mple.com", ErrDomainpart},
	{"juliet@exa!mple.com", ErrDomainpart},
	{"juliet@exa:mple.com", ErrDomainpart},
	{"juliet@-example.com", ErrDomainpart},
	{"juliet@example-.com", ErrDomainpart},
	{"juliet@ab--cd.example", ErrDomainpart},
	{"juliet@xn--zz.example", ErrDomainpart},
	{"juliet@xn--.example", ErrDomainpart},
	{"juliet@xn--abc.example", ErrDomainpart},    // A-label decoding to ASCII
	{"juliet@example.com\u3002", ErrDomainpart},  // maps to a trailing empty label
	{"example\uFF0Ecom\uFF0Ffoo", ErrDomainpart}, // U+FF0F maps to '/'
	{"juliet@exa\u0000mple.com", ErrDomainpart},
	{"juliet@\u265A.example", ErrDomainpart},       // UTS #46 NV8, not IDNA2008
	{"juliet@xn--45h.example", ErrDomainpart},      // A-label of U+265A
	{"juliet@a\u2665b.example", ErrDomainpart},     // BLACK HEART SUIT
	{"juliet@a\u00B7b.cat", ErrDomainpart},         // MIDDLE DOT not between 'l'
	{"juliet@\u30FB.example", ErrDomainpart},       // KATAKANA MIDDLE DOT alone
	{"juliet@\u0661\u06F1.example", ErrDomainpart}, // mixed Arabic-Indic digits
	{"juliet@\u0640\u0628.example", ErrDomainpart}, // ARABIC TATWEEL
	{"juliet@a\u20DDb.example", ErrDomainpart},     // IgnorableBlocks
	{"juliet@\u1100.example", ErrDomainpart},       // OldHangulJamo
	{"::1", ErrDomainpart},
	{"juliet@::1", ErrDomainpart},
	{"[::1", ErrDomainpart},
	{"[::1]]", ErrDomainpart},
	{"[1.2.3.4]", ErrDomainpart},
	{"[fe80::1%eth0]", ErrDomainpart},
	{"[]", ErrDomainpart},
	{"[example.com]", ErrDomainpart},
	{"juliet@\xff.example", ErrDomainpart},
	{"jul\x00iet@example.com", ErrLocalpart},
	{"jul\x7fiet@example.com", ErrLocalpart},
	{"jul\xffiet@example.com", ErrLocalpart},
	{"jul\tiet@example.com", ErrLocalpart},
	{"jul:iet@example.com", ErrLocalpart},
	{"jul<iet@example.com", ErrLocalpart},
	{"jul>iet@example.com", ErrLocalpart},
	{"jul&iet@example.com", ErrLocalpart},
	{"jul'iet@example.com", ErrLocalpart},
	{"\uFF4A\uFF20@example.com", ErrLocalpart},        // U+FF20 maps to '@'
	{"\uFF4A\uFF1A@example.com", ErrLocalpart},        // U+FF1A maps to ':'
	{"a\u0645\u0631\u062D@example.com", ErrLocalpart}, // Bidi Rule
	{"juliet\u00A0@example.com", ErrLocalpart},        // spaces are not identifiers
	{"juliet@example.com/\x00", ErrResourcepart},
	{"juliet@example.com/a\x07b", ErrResourcepart},
	{"juliet@example.com/\x7f", ErrResourcepart},
	{"juliet@example.com/\xff", ErrResourcepart},
	{"juliet@example.com/\u200B", ErrResourcepart}, // ZERO WIDTH SPACE: Cf, disallowed
}

// checkJID checks the accessors of a valid JID against the expected parts.
func checkJID(t *testing.T, j JID, c validCase) {
	t.Helper()
	if got := j.String(); got != c.want {
		t.Errorf("Parse(%q) = %q, want %q", c.in, got, c.want)
	}
	if got := j.Local(); got != c.local {
		t.Errorf("Parse(%q).Local() = %q, want %q", c.in, got, c.local)
	}
	if got := j.Domain(); got != c.domain {
		t.Errorf("Parse(%q).Domain() = %q, want %q", c.in, got, c.domain)
	}
	if got := j.Resource(); got != c.rs {
		t.Errorf("Parse(%q).Resource() = %q, want %q", c.in, got, c.rs)
	}
	if got, want := j.IsBare(), c.rs == ""; got != want {
		t.Errorf("Parse(%q).IsBare() = %v, want %v", c.in, got, want)
	}
	bare := c.domain
	if c.local != "" {
		bare = c.local + "@" + bare
	}
	if b := j.Bare(); b.String() != bare || b.Local() != c.local || b.Domain() != c.domain || b.Resource() != "" || !b.IsBare() {
		t.Errorf("Parse(%q).Bare() = %q (%q, %q, %q), want %q", c.in, b, b.Local(), b.Domain(), b.Resource(), bare)
	}
	if d := j.Domainpart(); d.String() != c.domain || d.Local() != "" || d.Domain() != c.domain || d.Resource() != "" {
		t.Errorf("Parse(%q).Domainpart() = %q, want %q", c.in, d, c.domain)
	}
	if j.IsZero() {
		t.Errorf("Parse(%q).IsZero() = true", c.in)
	}
	// The accessors must give the same JIDs as parsing their output.
	if b := j.Bare(); b != MustParse(bare) {
		t.Errorf("Parse(%q).Bare() = %#v, want %#v", c.in, b, MustParse(bare))
	}
	if d := j.Domainpart(); d != MustParse(c.domain) {
		t.Errorf("Parse(%q).Domainpart() = %#v, want %#v", c.in, d, MustParse(c.domain))
	}
}

func TestParseValid(t *testing.T) {
	for _, c := range append(rfcValid, ownValid...) {
		for _, fast := range []bool{true, false} {
			j, err := parse(c.in, fast)
			if err != nil {
				t.Errorf("parse(%q, fast=%v): %v", c.in, fast, err)
				continue
			}
			checkJID(t, j, c)
			// Idempotence.
			if j2, err := Parse(j.String()); err != nil || j2 != j {
				t.Errorf("Parse(%q) = %#v, %v; want %#v", j.String(), j2, err, j)
			}
			// New from the parts gives the same JID.
			if j2, err := New(c.local, c.domain, c.rs); err != nil || j2 != j {
				t.Errorf("New(%q, %q, %q) = %#v, %v; want %#v", c.local, c.domain, c.rs, j2, err, j)
			}
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, c := range append(rfcInvalid, ownInvalid...) {
		for _, fast := range []bool{true, false} {
			j, err := parse(c.in, fast)
			if err == nil {
				t.Errorf("parse(%q, fast=%v) = %q, want error %v", c.in, fast, j, c.want)
				continue
			}
			if !errors.Is(err, c.want) {
				t.Errorf("parse(%q, fast=%v) = %v, want %v", c.in, fast, err, c.want)
			}
			if !j.IsZero() {
				t.Errorf("parse(%q, fast=%v) returned non-zero JID %#v with error", c.in, fast, j)
			}
			if !strings.HasPrefix(err.Error(), "jid: ") {
				t.Errorf("parse(%q): error %q lacks prefix", c.in, err)
			}
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Parse("foo bar@example.com")
	const want = `jid: invalid localpart in "foo bar@example.com": precis: disallowed rune encountered`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %s", err, want)
	}
	var e *parseError
	if !errors.As(err, &e) {
		t.Errorf("error %T is not a *parseError", err)
	}
	// Long inputs are truncated in messages, at a rune boundary.
	_, err = Parse(strings.Repeat("\u00E9", 100) + " @example.com")
	if err == nil || !strings.Contains(err.Error(), `"`+strings.Repeat("\u00E9", maxQuoted/2)+`..."`) {
		t.Errorf("Parse error = %v, want truncated input", err)
	}
	if _, err := Parse(""); err != ErrEmpty {
		t.Errorf("Parse(\"\") = %v, want ErrEmpty", err)
	}
	for in, want := range map[string]string{
		"juliet@example.com:5222":                  `disallowed character ':' in label`,
		"juliet@xn--45h.example":                   "disallowed code point U+265A",
		"jul\xffiet@example.com":                   "invalid UTF-8",
		"example.com/" + strings.Repeat("r", 1024): "longer than 1023 bytes",
		"juliet@a..b":                              "empty label",
	} {
		if _, err := Parse(in); err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Parse(%.30q) error = %v, want suffix %q", in, err, want)
		}
	}
}

func TestLengthLimits(t *testing.T) {
	// RFC 7622 §3.1: each part is 1 to 1023 bytes after enforcement.
	label63 := strings.Repeat("a", 63)
	domain1023 := strings.Repeat(label63+".", 15) + label63 // 16*63 + 15
	if len(domain1023) != 1023 {
		t.Fatalf("len(domain1023) = %d", len(domain1023))
	}
	// 17 labels, each at most 63 bytes, 1024 bytes in total.
	domain1024 := strings.Repeat(label63+".", 15) + strings.Repeat("a", 62) + ".a"
	if len(domain1024) != 1024 {
		t.Fatalf("len(domain1024) = %d", len(domain1024))
	}
	valid := []string{
		strings.Repeat("a", 1023) + "@example.com",
		strings.Repeat("A", 1023) + "@example.com",
		strings.Repeat("\u00DF", 511) + "a@example.com", // 1023 bytes
		strings.Repeat("\uFF41", 1023) + "@example.com", // width-mapped to 1023 bytes
		"example.com/" + strings.Repeat("r", 1023),      // resource
		"example.com/" + strings.Repeat("\u265A", 341),  // 1023 bytes
		"example.com/" + strings.Repeat("\u00A0", 1023), // 2046 bytes mapped to 1023
		domain1023,
		domain1023 + ".", // trailing dot stripped first
		strings.ToUpper(domain1023),
		"juliet@" + label63 + ".example",
		"juliet@" + strings.Repeat("\u00FC", 10) + ".example", // short A-label
		strings.Repeat("a", 1023) + "@" + domain1023 + "/" + strings.Repeat("r", 1023),
	}
	for _, s := range valid {
		for _, fast := range []bool{true, false} {
			if _, err := parse(s, fast); err != nil {
				t.Errorf("parse(%.20q... (%d bytes), %v): %v", s, len(s), fast, err)
			}
		}
	}
	j := MustParse(valid[len(valid)-1])
	if len(j.String()) != 3071 || len(j.Local()) != 1023 || len(j.Domain()) != 1023 || len(j.Resource()) != 1023 {
		t.Errorf("maximal JID: lengths %d, %d, %d, %d", len(j.String()), len(j.Local()), len(j.Domain()), len(j.Resource()))
	}
	invalid := []invalidCase{
		{strings.Repeat("a", 1024) + "@example.com", ErrLocalpart},
		{strings.Repeat("\u00DF", 512) + "@example.com", ErrLocalpart},
		{strings.Repeat("\uFF41", 1024) + "@example.com", ErrLocalpart},
		{"example.com/" + strings.Repeat("r", 1024), ErrResourcepart},
		{"example.com/" + strings.Repeat("\u265A", 342), ErrResourcepart},
		{"example.com/" + strings.Repeat("\u00A0", 1024), ErrResourcepart},
		{domain1024, ErrDomainpart},
		{domain1024 + ".", ErrDomainpart},
		{strings.ToUpper(domain1024), ErrDomainpart},
		{"juliet@a" + label63 + ".example", ErrDomainpart},
		{"juliet@" + strings.Repeat("\u00FC", 63) + ".example", ErrDomainpart}, // A-label > 63 bytes
	}
	for _, c := range invalid {
		for _, fast := range []bool{true, false} {
			if _, err := parse(c.in, fast); !errors.Is(err, c.want) {
				t.Errorf("parse(%.20q... (%d bytes), %v) = %v, want %v", c.in, len(c.in), fast, err, c.want)
			}
		}
	}
	if _, err := Parse(domain1024); !errors.Is(err, errTooLong) {
		t.Errorf("Parse(domain1024) = %v, want errTooLong", err)
	}
}

func TestFastPathShares(t *testing.T) {
	for _, s := range []string{
		"juliet@example.com/balcony",
		"juliet@example.com",
		"example.com",
		"example.com/r",
		"\u03C3@example.com", // normalized non-ASCII is reused too
	} {
		j := MustParse(s)
		if unsafe.StringData(j.String()) != unsafe.StringData(s) || j.String() != s {
			t.Errorf("Parse(%q) does not share the input string", s)
		}
	}
	s := "juliet@example.com."
	if j := MustParse(s); unsafe.StringData(j.String()) != unsafe.StringData(s) {
		t.Errorf("Parse(%q) does not share the input string", s)
	}
}

func TestAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful with coverage or race detector")
	}
	j := MustParse("juliet@example.com/balcony")
	o := MustParse("juliet@example.com/garden")
	var sink JID
	var str string
	var b bool
	tests := []struct {
		name string
		want float64
		f    func()
	}{
		{"Parse/full", 0, func() { sink, _ = Parse("juliet@example.com/balcony") }},
		{"Parse/bare", 0, func() { sink, _ = Parse("juliet@example.com") }},
		{"Parse/domain", 0, func() { sink, _ = Parse("example.com") }},
		{"Parse/trailing-dot", 0, func() { sink, _ = Parse("juliet@example.com.") }},
		{"Parse/uppercase", 1, func() { sink, _ = Parse("JuLiEt@Example.COM/Balcony") }},
		{"Bare", 0, func() { sink = j.Bare() }},
		{"Domainpart", 0, func() { sink = j.Domainpart() }},
		{"String", 0, func() { str = j.String() }},
		{"Local", 0, func() { str = j.Local() }},
		{"Domain", 0, func() { str = j.Domain() }},
		{"Resource", 0, func() { str = j.Resource() }},
		{"BareEqual", 0, func() { b = j.BareEqual(o) }},
		{"Equal", 0, func() { b = j.Equal(o) }},
		{"WithResource", 1, func() { sink, _ = j.WithResource("garden") }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got != tt.want {
			t.Errorf("%s: %v allocations, want %v", tt.name, got, tt.want)
		}
	}
	_, _, _ = sink, str, b
}

// TestFastSlowASCII checks that the ASCII fast path gives the same result as
// the PRECIS/IDNA path for every ASCII byte in every position of every part,
// for all two-byte parts, and for short domain names over the alphabet that
// matters for label rules.
func TestFastSlowASCII(t *testing.T) {
	var inputs []string
	for c := 0; c < 0x80; c++ {
		ch := string(rune(c))
		inputs = append(inputs,
			// localpart
			ch+"uliet@example.com/res", "ju"+ch+"liet@example.com", "juliet"+ch+"@example.com/res",
			"JU"+ch+"LIET@example.com", ch+"@example.com",
			// domainpart
			"juliet@"+ch+"xample.com/res", "juliet@ex"+ch+"ample.com", "juliet@example"+ch+".com",
			"juliet@example.com"+ch+"/res", "juliet@example.co"+ch, "juliet@EX"+ch+"AMPLE.com",
			ch+".example", "a"+ch, ch, ch+"/r", "x."+ch+".y",
			// resourcepart
			"juliet@example.com/"+ch+"es", "juliet@example.com/r"+ch+"s", "juliet@example.com/res"+ch,
			"juliet@example.com/"+ch, "example.com/"+ch+ch,
		)
		for d := 0; d < 0x80; d++ {
			two := ch + string(rune(d))
			inputs = append(inputs, two+"@example.com", "example.com/"+two, "juliet@"+two, two)
		}
	}
	alphabet := []string{"a", "Z", "x", "n", "-", "_", ".", "1", "[", ":"}
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if n == 0 {
			return
		}
		for _, a := range alphabet {
			s := prefix + a
			inputs = append(inputs, s, "j@"+s+"/r")
			gen(s, n-1)
		}
	}
	gen("", 5)
	for _, n := range []int{62, 63, 64} {
		l := strings.Repeat("a", n)
		inputs = append(inputs, l, l+".example", "-"+l, l+"-", strings.ToUpper(l)+".com", "ab--"+l)
	}
	for _, s := range inputs {
		compareFastSlow(t, s)
	}
	t.Logf("%d inputs", len(inputs))
}

// compareFastSlow checks that the fast and the slow path agree on s.
func compareFastSlow(t *testing.T, s string) {
	t.Helper()
	fj, ferr := parse(s, true)
	sj, serr := parse(s, false)
	if fj != sj || (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
		t.Errorf("parse(%q): fast = %#v, %v; slow = %#v, %v", s, fj, ferr, sj, serr)
	}
}

func TestNew(t *testing.T) {
	valid := []struct {
		local, domain, resource, want string
	}{
		{"JuLiet", "Example.COM", "Res", "juliet@example.com/Res"},
		{"", "example.com", "", "example.com"},
		{"", "Example.com.", "", "example.com"},
		{"", "example.com", "a/b", "example.com/a/b"},
		{"juliet", "example.com", "foo@bar", "juliet@example.com/foo@bar"},
		{"\u03A3", "xn--bcher-kva.example", "\u265A", "\u03C3@b\u00FCcher.example/\u265A"},
		{"juliet", "[::1]", "", "juliet@[::1]"},
	}
	for _, c := range valid {
		j, err := New(c.local, c.domain, c.resource)
		if err != nil || j.String() != c.want {
			t.Errorf("New(%q, %q, %q) = %q, %v; want %q", c.local, c.domain, c.resource, j, err, c.want)
			continue
		}
		if p := MustParse(c.want); p != j {
			t.Errorf("New(%q, %q, %q) = %#v, want %#v", c.local, c.domain, c.resource, j, p)
		}
	}
	invalid := []struct {
		local, domain, resource string
		want                    error
	}{
		{"a@b", "example.com", "", ErrLocalpart},
		{"a/b", "example.com", "", ErrLocalpart},
		{"a b", "example.com", "", ErrLocalpart},
		{"a", "", "", ErrDomainpart},
		{"", "", "", ErrDomainpart},
		{"a", "exa/mple", "", ErrDomainpart},
		{"a", "exa@mple", "", ErrDomainpart},
		{"a", "example.com", "\x00", ErrResourcepart},
	}
	for _, c := range invalid {
		if j, err := New(c.local, c.domain, c.resource); !errors.Is(err, c.want) {
			t.Errorf("New(%q, %q, %q) = %q, %v; want %v", c.local, c.domain, c.resource, j, err, c.want)
		}
	}
}

func TestWithResource(t *testing.T) {
	j := MustParse("juliet@example.com/balcony")
	r, err := j.WithResource("Garden\u00A0Party")
	if err != nil || r.String() != "juliet@example.com/Garden Party" || r != MustParse("juliet@example.com/Garden Party") {
		t.Errorf("WithResource = %#v, %v", r, err)
	}
	if r, err := j.WithResource(""); err != nil || r != j.Bare() {
		t.Errorf("WithResource(\"\") = %#v, %v; want bare", r, err)
	}
	if r, err := MustParse("example.com").WithResource("a/b"); err != nil || r != MustParse("example.com/a/b") {
		t.Errorf("WithResource(\"a/b\") = %#v, %v", r, err)
	}
	if _, err := j.WithResource("\x00"); !errors.Is(err, ErrResourcepart) {
		t.Errorf("WithResource(\"\\x00\") = %v, want ErrResourcepart", err)
	}
	if _, err := (JID{}).WithResource("r"); !errors.Is(err, ErrDomainpart) {
		t.Errorf("JID{}.WithResource = %v, want ErrDomainpart", err)
	}
}

func TestZero(t *testing.T) {
	var j JID
	if !j.IsZero() || j.String() != "" || j.Local() != "" || j.Domain() != "" || j.Resource() != "" || !j.IsBare() {
		t.Errorf("zero JID accessors: %#v", j)
	}
	if j.Bare() != j || j.Domainpart() != j || !j.BareEqual(JID{}) || j.Compare(JID{}) != 0 {
		t.Errorf("zero JID: Bare/Domainpart/BareEqual/Compare")
	}
	if j.Compare(MustParse("a")) != -1 {
		t.Errorf("zero JID does not sort first")
	}
}

func TestCompare(t *testing.T) {
	a := MustParse("JULIET@example.com/balcony")
	b := MustParse("juliet@EXAMPLE.com./balcony")
	c := MustParse("juliet@example.com/garden")
	d := MustParse("romeo@example.net")
	if a != b || !a.Equal(b) || a.Compare(b) != 0 {
		t.Errorf("%#v and %#v differ", a, b)
	}
	if a.Equal(c) || a.Compare(c) != -1 || c.Compare(a) != 1 {
		t.Errorf("Equal/Compare(%v, %v)", a, c)
	}
	if !a.BareEqual(c) || a.BareEqual(d) || !a.Bare().BareEqual(c) {
		t.Errorf("BareEqual")
	}
	// RFC 7622 §3.5 examples 9-11: Σ matches σ but not ς.
	if MustParse("\u03A3@example.com") != MustParse("\u03C3@example.com") ||
		MustParse("\u03C3@example.com") == MustParse("\u03C2@example.com") {
		t.Errorf("sigma comparison")
	}
	m := map[JID]int{a: 1}
	if m[b] != 1 || m[c] != 0 {
		t.Errorf("map lookup")
	}
	if size := unsafe.Sizeof(JID{}); size > 24 {
		t.Errorf("sizeof(JID) = %d", size)
	}
}

func TestText(t *testing.T) {
	j := MustParse("JuLiEt@Example.com/Balcony")
	text, err := j.MarshalText()
	if err != nil || string(text) != "juliet@example.com/Balcony" {
		t.Errorf("MarshalText = %q, %v", text, err)
	}
	if b, _ := j.AppendText([]byte("to=")); string(b) != "to=juliet@example.com/Balcony" {
		t.Errorf("AppendText = %q", b)
	}
	var u JID
	if err := u.UnmarshalText([]byte("JuLiEt@Example.com/Balcony")); err != nil || u != j {
		t.Errorf("UnmarshalText = %#v, %v", u, err)
	}
	if err := u.UnmarshalText(nil); err != nil || !u.IsZero() {
		t.Errorf("UnmarshalText(nil) = %#v, %v", u, err)
	}
	if err := u.UnmarshalText([]byte("@example.com")); !errors.Is(err, ErrLocalpart) {
		t.Errorf("UnmarshalText(invalid) = %v", err)
	}

	type msg struct {
		To   JID `json:"to"`
		From JID `json:"from"`
	}
	data, err := json.Marshal(msg{To: j})
	if err != nil || string(data) != `{"to":"juliet@example.com/Balcony","from":""}` {
		t.Errorf("json.Marshal = %s, %v", data, err)
	}
	var m msg
	if err := json.Unmarshal(data, &m); err != nil || m.To != j || !m.From.IsZero() {
		t.Errorf("json.Unmarshal = %#v, %v", m, err)
	}
	if j := MustParse("a@b"); j.String() != "a@b" {
		t.Errorf("MustParse")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("MustParse did not panic")
		}
	}()
	MustParse("@")
}
