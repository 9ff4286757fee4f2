package jid

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

func FuzzParse(f *testing.F) {
	for _, c := range rfcValid {
		f.Add(c.in)
	}
	for _, c := range rfcInvalid {
		f.Add(c.in)
	}
	for _, s := range []string{
		"JuLiEt@EXAMPLE.com/BalCony",
		"juliet@xn--bcher-kva.example./r",
		"[2001:DB8::1]/r",
		"\uFF2A\uFF20\uFF25.com/\u00A0",
		"a@b@c/d@e/f",
		"col\u00B7legi.cat",
		"_xmpp._tcp.example.com",
		"xn--mgbh0fb.xn--kgbechtv",
		"\u0645\u0631\u062D\u0628\u0627@\u0645\u062B\u0627\u0644.\u0625\u062E\u062A\u0628\u0627\u0631/\u05D0",
		"\u05D0\u05F3@\u05D0\u05F3.example",
		"\u01C5@\u01C5.example/\u01C5",
		"\uFB00@\uFB03.example/\uFB00",
		"\u0130@\u1E9E.de/\u0130",
		"\u03C2@\u03C2.gr",
		"a\u200Db@a\u094D\u200Db.example",
		"\u30A2\u30FB@\u30A2\u30FB.jp",
		"e\u0301\u0327@e\u0301\u0327.example/e\u0301\u0327",
		"\uFF21\uFF0F\uFF20@[::1]./\u2000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)

		// The fast path must not change any result.
		sj, serr := parse(s, false)
		if j != sj || (err == nil) != (serr == nil) || (err != nil && err.Error() != serr.Error()) {
			t.Fatalf("parse(%q): fast = %#v, %v; slow = %#v, %v", s, j, err, sj, serr)
		}

		// The relaxed Bidi handling of the localpart only accepts more:
		// whatever UsernameCaseMapped accepts is mapped identically.
		if utf8.ValidString(s) {
			if want, err := precis.UsernameCaseMapped.String(s); err == nil {
				if got, err := localProfile.String(s); err != nil || got != want {
					t.Fatalf("localProfile(%q) = %q, %v; UsernameCaseMapped = %q", s, got, err, want)
				}
			}
		}

		if err != nil {
			if !j.IsZero() {
				t.Fatalf("Parse(%q) = %#v with error %v", s, j, err)
			}
			return
		}
		n := j.String()
		if n == "" || !utf8.ValidString(n) {
			t.Fatalf("Parse(%q) = %q", s, n)
		}
		l, d, r := j.Local(), j.Domain(), j.Resource()
		if len(l) > maxPart || len(d) > maxPart || len(r) > maxPart || d == "" {
			t.Fatalf("Parse(%q): part lengths %d, %d, %d", s, len(l), len(d), len(r))
		}
		want := d
		if l != "" {
			want = l + "@" + want
		}
		if !j.IsBare() {
			if r == "" {
				t.Fatalf("Parse(%q): empty resourcepart in full JID", s)
			}
			want += "/" + r
		}
		if n != want {
			t.Fatalf("Parse(%q) = %q, but parts give %q", s, n, want)
		}
		if strings.ContainsAny(l, excludedLocal) || strings.ContainsAny(d, "@/") {
			t.Fatalf("Parse(%q) = %q: separator in local or domain", s, n)
		}

		// Idempotence.
		j2, err := Parse(n)
		if err != nil || j2 != j {
			t.Fatalf("Parse(%q) = %#v; Parse(%q) = %#v, %v", s, j, n, j2, err)
		}
		// New from the parts yields the same JID.
		j3, err := New(l, d, r)
		if err != nil || j3 != j {
			t.Fatalf("Parse(%q) = %#v; New(%q, %q, %q) = %#v, %v", s, j, l, d, r, j3, err)
		}
		if b := j.Bare(); b != MustParse(n[:len(n)-len(r)-btoi(r != "")]) {
			t.Fatalf("Parse(%q).Bare() = %#v", s, b)
		}
		if dp := j.Domainpart(); dp != MustParse(d) {
			t.Fatalf("Parse(%q).Domainpart() = %#v", s, dp)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
