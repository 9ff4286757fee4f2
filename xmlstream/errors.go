package xmlstream

import "fmt"

// Stream error conditions (RFC 6120 §4.9.3) that parse failures map to.
const (
	CondNotWellFormed       = "not-well-formed"      // §4.9.3.13
	CondRestrictedXML       = "restricted-xml"       // §4.9.3.18, forbidden XML features (§11.1)
	CondInvalidNamespace    = "invalid-namespace"    // §4.9.3.10
	CondBadFormat           = "bad-format"           // §4.9.3.1
	CondUnsupportedEncoding = "unsupported-encoding" // §4.9.3.22
	CondPolicyViolation     = "policy-violation"     // §4.9.3.14, a limit was exceeded
)

// Error is a parse failure. Condition is the stream error the session
// should send before closing the stream.
type Error struct {
	Condition string
	Offset    int64 // byte offset in the stream where the problem was found
	Msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("xmlstream: %s at byte %d: %s", e.Condition, e.Offset, e.Msg)
}
