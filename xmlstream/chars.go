package xmlstream

import (
	"encoding/binary"
	"unicode"
	"unicode/utf8"
)

// Byte classes for the scanning loops. A zero class means "copy and go on";
// anything else makes the loop stop and look at the byte.
var (
	// textClass: '<' '&' ']' '\r' and control characters stop a run of
	// character data. Bytes >= 0x80 are copied and validated when the run ends.
	textClass [256]uint8
	// cdataClass: ']' '\r' and control characters stop a CDATA run.
	cdataClass [256]uint8
	// attrClassApos / attrClassQuot: the closing quote, '&', '<', white space
	// to normalize and control characters stop an attribute value.
	attrClassApos, attrClassQuot [256]uint8
	// nameByte: bytes that can be part of a name (ASCII name characters and
	// any byte of a multi-byte character, checked when the name ends).
	nameByte [256]bool
)

func init() {
	for c := 0; c < 0x20; c++ {
		textClass[c], cdataClass[c], attrClassApos[c], attrClassQuot[c] = 1, 1, 1, 1
	}
	for _, c := range "\t\n" {
		textClass[c], cdataClass[c] = 0, 0
	}
	for _, c := range "<&]" {
		textClass[c] = 1
	}
	cdataClass[']'] = 1
	for _, c := range "&<" {
		attrClassApos[c], attrClassQuot[c] = 1, 1
	}
	attrClassApos['\''], attrClassQuot['"'] = 1, 1
	for c := 'a'; c <= 'z'; c++ {
		nameByte[c], nameByte[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		nameByte[c] = true
	}
	for _, c := range "_:.-" {
		nameByte[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		nameByte[c] = true
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// validChars reports whether b is UTF-8 made only of characters XML 1.0
// allows (§2.2 Char). ASCII control characters are rejected by the scanning
// loops before they get here, so only multi-byte sequences are checked.
func validChars(b []byte) bool {
	for i := 0; i < len(b); {
		// Skip ASCII eight bytes at a time.
		for i+8 <= len(b) && binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 == 0 {
			i += 8
		}
		if i >= len(b) {
			break
		}
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		i += size
	}
	return true
}

// isChar reports whether r is an XML 1.0 Char (§2.2).
func isChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// qnameClass classifies ASCII bytes for checkQName's fast path.
var qnameClass = func() (t [256]uint8) {
	const start, other, colon, high = 1, 2, 3, 4
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = start, start
	}
	t['_'] = start
	for c := '0'; c <= '9'; c++ {
		t[c] = other
	}
	t['.'], t['-'], t[':'] = other, other, colon
	for c := 0x80; c < 0x100; c++ {
		t[c] = high
	}
	return t
}()

// checkQName validates a qualified name (Namespaces in XML §4: an NCName,
// optionally prefixed by an NCName and a colon) and returns the index of the
// colon, or -1. ASCII names, nearly all of them, take a table-driven path.
func checkQName(b []byte) (colon int, ok bool) {
	if len(b) == 0 || qnameClass[b[0]] != 1 {
		if len(b) > 0 && qnameClass[b[0]] == 4 {
			return checkQNameSlow(b)
		}
		return -1, false
	}
	colon = -1
	for i := 1; i < len(b); i++ {
		switch qnameClass[b[i]] {
		case 1, 2:
		case 3:
			if colon >= 0 || i+1 == len(b) {
				return -1, false
			}
			switch qnameClass[b[i+1]] {
			case 1:
			case 4:
				return checkQNameSlow(b)
			default:
				return -1, false
			}
			colon = i
			i++
		case 4:
			return checkQNameSlow(b)
		default:
			return -1, false
		}
	}
	return colon, true
}

// checkQNameSlow is checkQName for names with non-ASCII characters.
func checkQNameSlow(b []byte) (colon int, ok bool) {
	colon = -1
	start := true // at the start of an NCName
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == ':':
				if start || colon >= 0 {
					return -1, false
				}
				colon = i
				start = true
				i++
				continue
			case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_':
			case '0' <= c && c <= '9' || c == '.' || c == '-':
				if start {
					return -1, false
				}
			default:
				return -1, false
			}
			start = false
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return -1, false
		}
		if !unicode.Is(nameFirst, r) && (start || !unicode.Is(nameSecond, r)) {
			return -1, false
		}
		start = false
		i += size
	}
	return colon, len(b) > 0 && !start
}
