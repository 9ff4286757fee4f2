// Package jid implements XMPP addresses (JIDs) as defined in RFC 7622.
//
// A JID has the form
//
//	[ localpart "@" ] domainpart [ "/" resourcepart ]
//
// Parse splits the input before any transformation (RFC 7622 §3.1): the
// resourcepart is everything after the first '/', and the localpart is
// everything before the first '@' in the remainder (RFC 7622 §3.2). Each
// part is then enforced and normalized:
//
//   - localpart (RFC 7622 §3.3): PRECIS UsernameCaseMapped profile (RFC
//     8265: width folding, lower-casing, NFC, and the Bidi Rule for strings
//     containing right-to-left characters), and the characters
//     " & ' / : < > @ are rejected (RFC 7622 §3.3.1). The profile is built
//     here rather than taken from precis.UsernameCaseMapped because x/text
//     applies the Bidi Rule (RFC 5893) to every string, which rejects
//     left-to-right localparts such as "müller." or "ü-" that the
//     directionality rule of RFC 8265 allows: it asks for the Bidi Rule only
//     on strings with right-to-left characters, and so do we. On every
//     localpart that precis.UsernameCaseMapped accepts, the result is the
//     same (TestLocalProfileMatchesUsernameCaseMapped). Performance is not
//     the reason: both run the same PRECIS transformations, and ASCII
//     localparts take the fast path below either way;
//   - domainpart (RFC 7622 §3.2): one trailing '.' is removed, then the
//     part must be an IPv4 literal, a bracketed IPv6 literal (written in
//     canonical RFC 5952 form, without zone), or an IDNA2008 domain name,
//     mapped as for lookup (UTS #46, non-transitional: lower-casing, width
//     mapping, NFC) and written with U-labels, so A-labels ("xn--...") are
//     decoded. Non-ASCII code points must be allowed by IDNA2008 (RFC 5892). ASCII characters in labels are restricted to letters, digits,
//     '-' and '_' (underscores are accepted for compatibility with existing
//     deployments); labels must not be empty or longer than 63 bytes (in
//     A-label form);
//   - resourcepart (RFC 7622 §3.4): PRECIS OpaqueString profile (RFC 8265:
//     non-ASCII spaces mapped to U+0020, NFC). Case and spaces, including
//     leading and trailing ones, are preserved. This is a deliberate
//     deviation from example 18 of RFC 7622 §3.5 (Table 2 lists
//     "juliet@example.com/ foo" as invalid): the normative rule,
//     OpaqueString, allows ASCII space anywhere, and we follow it.
//
// Each part must be 1 to 1023 bytes long after enforcement (RFC 7622 §3.1).
//
// Parsing is on the hot path of stanza routing. When a part consists of
// printable ASCII that is already in normalized form, it is validated by a
// single table-driven scan and neither PRECIS nor IDNA is invoked; if all
// parts are like this, the returned JID shares the input string and Parse does
// not allocate. ASCII parts that only need lower-casing are lower-cased while
// the normalized string is built, with a single allocation. Everything else
// takes the full PRECIS/IDNA path. Both paths give identical results for every
// input.
package jid

import (
	"errors"
	"strconv"
	"strings"
)

// JID is a validated, normalized XMPP address. The zero value is the empty
// JID, which is not a valid address.
//
// Because a JID always holds the normalized form, two JIDs denote the same
// address exactly when they are equal with ==, and JIDs can be used as map
// keys.
type JID struct {
	s string
	// dom is the offset of the domainpart in s: 0 without localpart, the
	// index of the '@' separator plus one otherwise.
	dom int16
	// res is the end of the domainpart in s: len(s) without resourcepart,
	// the index of the '/' separator otherwise.
	res int16
}

// MustParse is like Parse but panics if s is not a valid JID. It is intended
// for tests and for initializing variables with constant addresses.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// String returns the normalized form of j. It does not allocate.
func (j JID) String() string { return j.s }

// Local returns the localpart of j, or "" if it has none.
func (j JID) Local() string {
	if j.dom == 0 {
		return ""
	}
	return j.s[:j.dom-1]
}

// Domain returns the domainpart of j.
func (j JID) Domain() string { return j.s[j.dom:j.res] }

// Resource returns the resourcepart of j, or "" if it has none.
func (j JID) Resource() string {
	if int(j.res) == len(j.s) {
		return ""
	}
	return j.s[j.res+1:]
}

// Bare returns j without its resourcepart (localpart@domainpart or
// domainpart). It does not allocate.
func (j JID) Bare() JID {
	return JID{s: j.s[:j.res], dom: j.dom, res: j.res}
}

// Domainpart returns the JID consisting of the domainpart of j only. It does
// not allocate.
func (j JID) Domainpart() JID {
	return JID{s: j.s[j.dom:j.res], res: j.res - j.dom}
}

// IsBare reports whether j has no resourcepart. The zero JID is bare.
func (j JID) IsBare() bool { return int(j.res) == len(j.s) }

// IsZero reports whether j is the zero (empty, invalid) JID.
func (j JID) IsZero() bool { return j.s == "" }

// WithResource returns j with its resourcepart replaced by r, which is
// enforced as a resourcepart (RFC 7622 §3.4). An empty r yields the bare JID.
func (j JID) WithResource(r string) (JID, error) {
	if j.IsZero() {
		return JID{}, &parseError{part: ErrDomainpart, input: "", err: errEmptyPart}
	}
	if r == "" {
		return j.Bare(), nil
	}
	rp, err := enforceResource(r, true)
	if err != nil {
		return JID{}, newError(ErrResourcepart, r, err)
	}
	bare := j.s[:j.res]
	var b strings.Builder
	b.Grow(len(bare) + 1 + len(rp.s))
	b.WriteString(bare)
	b.WriteByte('/')
	b.WriteString(rp.s)
	return JID{s: b.String(), dom: j.dom, res: j.res}, nil
}

// Equal reports whether j and o are the same address. It is the same as ==.
func (j JID) Equal(o JID) bool { return j == o }

// Compare returns -1, 0 or +1 depending on whether the normalized form of j
// sorts before, equal to or after that of o (byte-wise). The zero JID sorts
// first.
func (j JID) Compare(o JID) int { return strings.Compare(j.s, o.s) }

// BareEqual reports whether j and o have the same bare JID, that is equal
// localparts and domainparts. It does not allocate.
func (j JID) BareEqual(o JID) bool { return j.s[:j.res] == o.s[:o.res] }

// MarshalText implements encoding.TextMarshaler. The zero JID marshals to
// empty text.
func (j JID) MarshalText() ([]byte, error) { return []byte(j.s), nil }

// AppendText implements encoding.TextAppender.
func (j JID) AppendText(b []byte) ([]byte, error) { return append(b, j.s...), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Empty text yields the
// zero JID (an absent address), anything else must be a valid JID.
func (j *JID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*j = JID{}
		return nil
	}
	p, err := Parse(string(text))
	if err != nil {
		return err
	}
	*j = p
	return nil
}

// Errors reported by Parse, New, WithResource and UnmarshalText. Except for
// ErrEmpty, which is returned as is, returned errors wrap one of these
// together with the input and the reason; use errors.Is to test for them.
var (
	// ErrEmpty is returned by Parse for the empty string.
	ErrEmpty = errors.New("jid: empty address")
	// ErrLocalpart reports an invalid localpart (RFC 7622 §3.3).
	ErrLocalpart = errors.New("jid: invalid localpart")
	// ErrDomainpart reports an invalid or missing domainpart (RFC 7622 §3.2).
	ErrDomainpart = errors.New("jid: invalid domainpart")
	// ErrResourcepart reports an invalid resourcepart (RFC 7622 §3.4).
	ErrResourcepart = errors.New("jid: invalid resourcepart")
)

// parseError describes why a string is not a valid JID or JID part.
type parseError struct {
	part  error  // ErrLocalpart, ErrDomainpart or ErrResourcepart
	input string // the offending input, possibly truncated
	err   error  // the underlying reason
}

// maxQuoted is the number of input bytes quoted in error messages.
const maxQuoted = 80

func newError(part error, input string, err error) *parseError {
	if len(input) > maxQuoted {
		n := maxQuoted
		for n > 0 && input[n]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
			n--
		}
		input = input[:n] + "..."
	}
	return &parseError{part: part, input: input, err: err}
}

func (e *parseError) Error() string {
	return e.part.Error() + " in " + strconv.Quote(e.input) + ": " + e.err.Error()
}

// Unwrap returns the sentinel (ErrLocalpart, ErrDomainpart or
// ErrResourcepart) and the underlying reason.
func (e *parseError) Unwrap() []error { return []error{e.part, e.err} }
