package jid

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// golang.org/x/net/idna implements UTS #46, which accepts code points that
// IDNA2008 disallows (UTS #46 status NV8, mostly symbols and punctuation such
// as U+265A BLACK CHESS KING). RFC 7622 §3.2 requires IDNA2008, so U-labels
// are additionally checked against the derived properties of RFC 5892.

// derivedProperty is an IDNA2008 derived property (RFC 5892 §3).
type derivedProperty uint8

const (
	disallowed derivedProperty = iota
	pvalid
	contextj
	contexto
)

// idnaProperty returns the IDNA2008 derived property of the non-ASCII code
// point r, following the algorithm of RFC 5892 §3. The Unstable category
// (RFC 5892 §2.2) is not computed: code points that UTS #46 lets through
// after mapping are stable under NFKC and case folding, except for the
// deviation characters, which are exceptions below.
func idnaProperty(r rune) derivedProperty {
	switch r { // Exceptions (RFC 5892 §2.6)
	case 0x00DF, 0x03C2, 0x06FD, 0x06FE, 0x0F0B, 0x3007:
		return pvalid
	case 0x00B7, 0x0375, 0x05F3, 0x05F4, 0x30FB:
		return contexto
	case 0x0640, 0x07FA, 0x302E, 0x302F, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303B:
		return disallowed
	}
	switch {
	case 0x0660 <= r && r <= 0x0669, 0x06F0 <= r && r <= 0x06F9: // exceptions
		return contexto
	case r == 0x200C || r == 0x200D: // JoinControl (RFC 5892 §2.8)
		return contextj
	case unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector,
		unicode.White_Space, unicode.Noncharacter_Code_Point): // IgnorableProperties (§2.3)
		return disallowed
	case 0x20D0 <= r && r <= 0x20FF, // IgnorableBlocks (§2.4): Combining Diacritical Marks for Symbols,
		0x1D100 <= r && r <= 0x1D24F: // Musical Symbols, Ancient Greek Musical Notation
		return disallowed
	case 0x1100 <= r && r <= 0x11FF, 0xA960 <= r && r <= 0xA97F, 0xD7B0 <= r && r <= 0xD7FF: // OldHangulJamo (§2.9)
		return disallowed
	case unicode.In(r, unicode.Ll, unicode.Lu, unicode.Lo, unicode.Nd, unicode.Lm, unicode.Mn, unicode.Mc): // LetterDigits (§2.1)
		return pvalid
	}
	return disallowed
}

// checkIDNA2008 checks the non-ASCII code points of a U-label produced by
// x/net/idna: each must be PVALID, CONTEXTJ (whose rules x/net/idna checks)
// or CONTEXTO with its rule satisfied (RFC 5892 Appendix A).
func checkIDNA2008(label string) error {
	for i, r := range label {
		if r < utf8.RuneSelf {
			continue
		}
		switch idnaProperty(r) {
		case pvalid, contextj:
		case contexto:
			if !contextO(label, i, r) {
				return fmt.Errorf("code point %U not allowed in this context", r)
			}
		default:
			return fmt.Errorf("disallowed code point %U", r)
		}
	}
	return nil
}

// contextO reports whether the CONTEXTO code point r at byte offset i of
// label satisfies its rule (RFC 5892 Appendix A.3-A.9).
func contextO(label string, i int, r rune) bool {
	before, _ := utf8.DecodeLastRuneInString(label[:i])
	after, _ := utf8.DecodeRuneInString(label[i+utf8.RuneLen(r):])
	switch {
	case r == 0x00B7: // A.3 MIDDLE DOT: between two 'l'
		return before == 'l' && after == 'l'
	case r == 0x0375: // A.4 GREEK LOWER NUMERAL SIGN: followed by Greek
		return unicode.Is(unicode.Greek, after)
	case r == 0x05F3, r == 0x05F4: // A.5, A.6 HEBREW GERESH, GERSHAYIM: preceded by Hebrew
		return unicode.Is(unicode.Hebrew, before)
	case r == 0x30FB: // A.7 KATAKANA MIDDLE DOT: label has Hiragana, Katakana or Han
		return strings.ContainsFunc(label, func(c rune) bool {
			return c != 0x30FB && unicode.In(c, unicode.Hiragana, unicode.Katakana, unicode.Han)
		})
	case 0x0660 <= r && r <= 0x0669: // A.8 ARABIC-INDIC DIGITS: not mixed with extended ones
		return !strings.ContainsFunc(label, func(c rune) bool { return 0x06F0 <= c && c <= 0x06F9 })
	case 0x06F0 <= r && r <= 0x06F9: // A.9 EXTENDED ARABIC-INDIC DIGITS
		return !strings.ContainsFunc(label, func(c rune) bool { return 0x0660 <= c && c <= 0x0669 })
	}
	return false
}
