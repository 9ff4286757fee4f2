package sasl

import "errors"

// Condition is a SASL error condition, the child element of <failure/>
// (RFC 6120 §6.5).
type Condition string

// The SASL error conditions of RFC 6120 §6.5.
const (
	Aborted              Condition = "aborted"                // §6.5.1
	AccountDisabled      Condition = "account-disabled"       // §6.5.2
	CredentialsExpired   Condition = "credentials-expired"    // §6.5.3
	EncryptionRequired   Condition = "encryption-required"    // §6.5.4
	IncorrectEncoding    Condition = "incorrect-encoding"     // §6.5.5
	InvalidAuthzID       Condition = "invalid-authzid"        // §6.5.6
	InvalidMechanism     Condition = "invalid-mechanism"      // §6.5.7
	MalformedRequest     Condition = "malformed-request"      // §6.5.8
	MechanismTooWeak     Condition = "mechanism-too-weak"     // §6.5.9
	NotAuthorized        Condition = "not-authorized"         // §6.5.10
	TemporaryAuthFailure Condition = "temporary-auth-failure" // §6.5.11
)

// Failure is a failed SASL exchange: what the XMPP layer reports in
// <failure/> (RFC 6120 §6.4.5).
type Failure struct {
	Condition Condition
	// Text is an optional human-readable description that may be sent to
	// the peer in <text/>. It never tells an unknown user from a wrong
	// password.
	Text string
	// Err is the underlying cause, for logs only: it is not for the peer.
	Err error
}

func (f *Failure) Error() string {
	s := "sasl: " + string(f.Condition)
	if f.Text != "" {
		s += ": " + f.Text
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (f *Failure) Unwrap() error { return f.Err }

// ErrUnknownUser is returned by a Lookup for a user without an account.
var ErrUnknownUser = errors.New("sasl: unknown user")

// Errors recorded as the cause (Failure.Err) of NotAuthorized failures, so
// that logs can tell them apart; the peer cannot.
var (
	errWrongPassword = errors.New("wrong password")
	errNoSecret      = errors.New("no credentials for this mechanism")
)

func fail(c Condition, text string, err error) *Failure {
	return &Failure{Condition: c, Text: text, Err: err}
}
