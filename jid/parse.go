package jid

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// maxPart is the maximum length in bytes of each part after enforcement
// (RFC 7622 §3.1).
const maxPart = 1023

// maxLabel is the maximum length of a DNS label in bytes (RFC 1034 §3.1).
const maxLabel = 63

// excludedLocal lists the characters that RFC 7622 §3.3.1 disallows in
// localparts although UsernameCaseMapped allows them.
const excludedLocal = "\"&'/:<>@"

// Reasons wrapped by *parseError.
var (
	errEmptyPart   = errors.New("empty part")
	errTooLong     = fmt.Errorf("longer than %d bytes", maxPart)
	errEmptyLabel  = errors.New("empty label")
	errLongLabel   = fmt.Errorf("label longer than %d bytes", maxLabel)
	errIPv6Literal = errors.New("invalid IPv6 literal")
	errIPv6Bracket = errors.New("IPv6 address must be enclosed in brackets")
	errUTF8        = errors.New("invalid UTF-8")
)

// Byte classes of the ASCII fast path; see the class table.
const (
	cLocal  = 1 << iota // allowed in a localpart: 0x21-0x7E except excludedLocal
	cDomain             // allowed in a domain label: A-Z a-z 0-9 - _
	cUpper              // A-Z, must be lower-cased in localparts and domainparts
	cRes                // allowed unchanged in a resourcepart: 0x20-0x7E
)

// class maps each byte to its fast path classes. Non-ASCII bytes and ASCII
// control characters have no class. It is never modified.
var class = func() (t [256]uint8) {
	for c := 0x20; c <= 0x7E; c++ {
		t[c] |= cRes
		if c != ' ' && strings.IndexByte(excludedLocal, byte(c)) < 0 {
			t[c] |= cLocal
		}
		switch {
		case 'A' <= c && c <= 'Z':
			t[c] |= cDomain | cUpper
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			t[c] |= cDomain
		}
	}
	return t
}()

// localProfile is PRECIS UsernameCaseMapped (RFC 8265) without the Bidi
// Rule: precis.UsernameCaseMapped applies the Bidi Rule to every non-ASCII
// string, rejecting e.g. "müller." or "ü-", but the directionality rule of RFC
// 8265 requires it only for strings that contain right-to-left characters,
// which enforceLocal checks separately. Otherwise the profile is identical to
// precis.UsernameCaseMapped, and accepts a superset of it.
var localProfile = precis.NewIdentifier(
	precis.FoldWidth,
	precis.LowerCase(),
	precis.Norm(norm.NFC),
)

// domainProfile maps and validates domain names per IDNA2008 (RFC 5891 §5)
// with the UTS #46 lookup mappings (case, width, NFC), non-transitional so
// that e.g. 'ß' is kept, and the Bidi Rule (RFC 5893). ASCII characters
// outside LDH are let through here and checked by enforceDomain, so that
// underscores are accepted.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
)

// part is an enforced JID part.
type part struct {
	s string
	// lower is set by the fast path if s is ASCII and must be lower-cased
	// when copied into the normalized JID.
	lower bool
}

// Parse parses s as a JID (RFC 7622 §3), enforcing and normalizing each part.
// The returned error is ErrEmpty for the empty string, and otherwise wraps
// ErrLocalpart, ErrDomainpart or ErrResourcepart.
func Parse(s string) (JID, error) { return parse(s, true) }

// parse implements Parse; fast selects the ASCII fast path and is false only
// in tests that compare both paths.
func parse(s string, fast bool) (JID, error) {
	if s == "" {
		return JID{}, ErrEmpty
	}
	// RFC 7622 §3.2: remove the resourcepart from the first '/', then the
	// localpart up to the first '@'. Splitting happens before any mapping
	// (RFC 7622 §3.1).
	bare, resource := s, ""
	slash := strings.IndexByte(s, '/')
	hasRes := slash >= 0
	if hasRes {
		bare, resource = s[:slash], s[slash+1:]
	}
	local, domain := "", bare
	at := strings.IndexByte(bare, '@')
	hasLocal := at >= 0
	if hasLocal {
		local, domain = bare[:at], bare[at+1:]
	}

	var lp, dp, rp part
	var err error
	if hasLocal {
		if lp, err = enforceLocal(local, fast); err != nil {
			return JID{}, newError(ErrLocalpart, s, err)
		}
	}
	if dp, err = enforceDomain(domain, fast); err != nil {
		return JID{}, newError(ErrDomainpart, s, err)
	}
	if hasRes {
		if rp, err = enforceResource(resource, fast); err != nil {
			return JID{}, newError(ErrResourcepart, s, err)
		}
	}

	// Reuse the input if it is already normalized. enforceDomain may only
	// have removed the trailing dot, which is still a prefix of s if there
	// is no resourcepart.
	dom := 0
	if hasLocal {
		dom = at + 1
	}
	if !lp.lower && !dp.lower && lp.s == local && rp.s == resource {
		if dp.s == domain {
			return makeJID(s, dom, len(dp.s)), nil
		}
		if !hasRes && len(dp.s) < len(domain) && dp.s == domain[:len(dp.s)] {
			return makeJID(s[:dom+len(dp.s)], dom, len(dp.s)), nil
		}
	}
	return join(lp, dp, rp, hasLocal, hasRes), nil
}

// New returns the JID with the given parts, each enforced as for Parse. An
// empty local or resource means that the part is absent.
func New(local, domain, resource string) (JID, error) {
	var lp, dp, rp part
	var err error
	if local != "" {
		if lp, err = enforceLocal(local, true); err != nil {
			return JID{}, newError(ErrLocalpart, local, err)
		}
	}
	if dp, err = enforceDomain(domain, true); err != nil {
		return JID{}, newError(ErrDomainpart, domain, err)
	}
	if resource != "" {
		if rp, err = enforceResource(resource, true); err != nil {
			return JID{}, newError(ErrResourcepart, resource, err)
		}
	}
	if local == "" && resource == "" && !dp.lower {
		return JID{s: dp.s, res: int16(len(dp.s))}, nil
	}
	return join(lp, dp, rp, local != "", resource != ""), nil
}

// makeJID returns the JID for the normalized string s whose domainpart starts
// at dom and is n bytes long.
func makeJID(s string, dom, n int) JID {
	return JID{s: s, dom: int16(dom), res: int16(dom + n)}
}

// join builds the normalized string from enforced parts with a single
// allocation.
func join(lp, dp, rp part, hasLocal, hasRes bool) JID {
	n := len(dp.s)
	if hasLocal {
		n += len(lp.s) + 1
	}
	if hasRes {
		n += 1 + len(rp.s)
	}
	var b strings.Builder
	b.Grow(n)
	dom := 0
	if hasLocal {
		write(&b, lp)
		b.WriteByte('@')
		dom = len(lp.s) + 1
	}
	write(&b, dp)
	if hasRes {
		b.WriteByte('/')
		write(&b, rp)
	}
	return JID{s: b.String(), dom: int16(dom), res: int16(dom + len(dp.s))}
}

func write(b *strings.Builder, p part) {
	if !p.lower {
		b.WriteString(p.s)
		return
	}
	for i := 0; i < len(p.s); i++ {
		c := p.s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

// enforceLocal enforces the localpart rules of RFC 7622 §3.3.
func enforceLocal(l string, fast bool) (part, error) {
	if fast {
		// ASCII fast path: UsernameCaseMapped allows 0x21-0x7E (RFC 8264
		// §9.11, ASCII7) and only lower-cases them; the Bidi Rule does not
		// apply to ASCII.
		if ok, upper := fastLocal(l); ok {
			return part{s: l, lower: upper}, nil
		}
	}
	if l == "" {
		return part{}, errEmptyPart
	}
	// RFC 7622 §3.1: JIDs are UTF-8. PRECIS would silently map invalid
	// sequences to U+FFFD.
	if !utf8.ValidString(l) {
		return part{}, errUTF8
	}
	out, err := localProfile.String(l)
	if err != nil {
		return part{}, err
	}
	if out == "" {
		return part{}, errEmptyPart
	}
	// RFC 8265 directionality rule: the Bidi Rule (RFC 5893) applies to
	// strings containing right-to-left characters.
	if bidirule.DirectionString(out) != bidi.LeftToRight && !bidirule.ValidString(out) {
		return part{}, bidirule.ErrInvalid
	}
	// RFC 7622 §3.3.1, checked after mapping since e.g. U+FF20 FULLWIDTH
	// COMMERCIAL AT is width-mapped to '@'.
	if i := strings.IndexAny(out, excludedLocal); i >= 0 {
		return part{}, fmt.Errorf("disallowed character %q", out[i])
	}
	if len(out) > maxPart {
		return part{}, errTooLong
	}
	return part{s: out}, nil
}

// fastLocal reports whether the ASCII fast path accepts localpart l, and
// whether l has upper-case letters.
func fastLocal(l string) (ok, upper bool) {
	if len(l) == 0 || len(l) > maxPart {
		return false, false
	}
	var or uint8
	and := uint8(cLocal)
	for i := 0; i < len(l); i++ {
		k := class[l[i]]
		and &= k
		or |= k
	}
	return and != 0, or&cUpper != 0
}

// enforceDomain enforces the domainpart rules of RFC 7622 §3.2.
func enforceDomain(d string, fast bool) (part, error) {
	// RFC 7622 §3.2: a final dot is stripped before any other
	// canonicalization.
	if strings.HasSuffix(d, ".") {
		d = d[:len(d)-1]
	}
	if fast {
		if ok, upper := fastDomain(d); ok {
			return part{s: d, lower: upper}, nil
		}
	}
	if d == "" {
		return part{}, errEmptyPart
	}
	if !utf8.ValidString(d) {
		return part{}, errUTF8
	}
	// RFC 7622 §3.2 allows IP-literal (RFC 6874) and IPv4address (RFC
	// 3986).
	if d[0] == '[' {
		if d[len(d)-1] != ']' {
			return part{}, errIPv6Literal
		}
		a, err := netip.ParseAddr(d[1 : len(d)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return part{}, errIPv6Literal
		}
		return part{s: "[" + a.String() + "]"}, nil
	}
	if a, err := netip.ParseAddr(d); err == nil {
		if !a.Is4() {
			return part{}, errIPv6Bracket
		}
		return part{s: a.String()}, nil
	}
	// RFC 7622 §3.2.1-§3.2.2: IDNA2008 mappings, U-labels instead of
	// A-labels.
	out, err := domainProfile.ToUnicode(d)
	if err != nil {
		return part{}, err
	}
	if len(out) > maxPart {
		return part{}, errTooLong
	}
	for rest := out; ; {
		label := rest
		i := strings.IndexByte(rest, '.')
		if i >= 0 {
			label, rest = rest[:i], rest[i+1:]
		}
		if err := checkLabel(label); err != nil {
			return part{}, err
		}
		if i < 0 {
			break
		}
	}
	return part{s: out}, nil
}

// checkLabel checks a label of a mapped domain name: ASCII labels may contain
// letters, digits, hyphens and underscores; the A-label form of other labels
// must fit in a DNS label.
func checkLabel(label string) error {
	if label == "" {
		return errEmptyLabel
	}
	ascii := true
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c >= utf8.RuneSelf {
			ascii = false
		} else if class[c]&cDomain == 0 {
			return fmt.Errorf("disallowed character %q in label", c)
		}
	}
	n := len(label)
	if !ascii {
		if err := checkIDNA2008(label); err != nil {
			return err
		}
		a, err := idna.Punycode.ToASCII(label)
		if err != nil {
			return err
		}
		n = len(a)
	}
	if n > maxLabel {
		return errLongLabel
	}
	return nil
}

// fastDomain reports whether the ASCII fast path accepts domainpart d (with
// the trailing dot already removed), and whether d has upper-case letters.
// It accepts only names made of labels that IDNA2008 leaves unchanged but for
// lower-casing: non-empty, at most 63 bytes, made of letters, digits,
// hyphens and underscores, not starting or ending with '-' and without "--"
// in the third and fourth positions (RFC 5891 §4.2.3.1, which also covers
// A-labels).
func fastDomain(d string) (ok, upper bool) {
	if len(d) == 0 || len(d) > maxPart {
		return false, false
	}
	var or uint8
	start := 0
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c == '.' {
			if !fastLabel(d[start:i]) {
				return false, false
			}
			start = i + 1
			continue
		}
		k := class[c]
		if k&cDomain == 0 {
			return false, false
		}
		or |= k
	}
	if !fastLabel(d[start:]) {
		return false, false
	}
	return true, or&cUpper != 0
}

func fastLabel(l string) bool {
	n := len(l)
	return n > 0 && n <= maxLabel && l[0] != '-' && l[n-1] != '-' &&
		(n < 4 || l[2] != '-' || l[3] != '-')
}

// enforceResource enforces the resourcepart rules of RFC 7622 §3.4.
func enforceResource(r string, fast bool) (part, error) {
	if fast && fastResource(r) {
		return part{s: r}, nil
	}
	if r == "" {
		return part{}, errEmptyPart
	}
	if !utf8.ValidString(r) {
		return part{}, errUTF8
	}
	out, err := precis.OpaqueString.String(r)
	if err != nil {
		return part{}, err
	}
	if len(out) > maxPart {
		return part{}, errTooLong
	}
	return part{s: out}, nil
}

// fastResource reports whether the ASCII fast path accepts resourcepart r:
// OpaqueString leaves printable ASCII, including spaces anywhere, unchanged.
func fastResource(r string) bool {
	if len(r) == 0 || len(r) > maxPart {
		return false
	}
	and := uint8(cRes)
	for i := 0; i < len(r); i++ {
		and &= class[r[i]]
	}
	return and != 0
}
