package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// XML namespaces.
const (
	// NS qualifies the SASL elements of XMPP (RFC 6120 §6.4).
	NS = "urn:ietf:params:xml:ns:xmpp-sasl"
	// NSChannelBinding qualifies <sasl-channel-binding/>, the list of
	// channel binding types in <mechanisms/> (XEP-0440).
	NSChannelBinding = "urn:xmpp:sasl-cb:0"
)

// Mechanism names.
const (
	SCRAMSHA1       = "SCRAM-SHA-1"
	SCRAMSHA1Plus   = "SCRAM-SHA-1-PLUS"
	SCRAMSHA256     = "SCRAM-SHA-256"
	SCRAMSHA256Plus = "SCRAM-SHA-256-PLUS"
	SCRAMSHA512     = "SCRAM-SHA-512"
	SCRAMSHA512Plus = "SCRAM-SHA-512-PLUS"
	Plain           = "PLAIN"
)

// mechanism is a supported SASL mechanism.
type mechanism struct {
	name string
	hash *hashAlg // nil for PLAIN
	plus bool     // requires channel binding
}

// mechanisms lists the supported mechanisms in the default order of
// preference, strongest first (RFC 6120 §6.3.3).
var mechanisms = []*mechanism{
	{SCRAMSHA512Plus, hashSHA512, true},
	{SCRAMSHA256Plus, hashSHA256, true},
	{SCRAMSHA1Plus, hashSHA1, true},
	{SCRAMSHA512, hashSHA512, false},
	{SCRAMSHA256, hashSHA256, false},
	{SCRAMSHA1, hashSHA1, false},
	{Plain, nil, false},
}

// tlsOnly reports whether m is offered on TLS-protected streams only.
func (m *mechanism) tlsOnly() bool { return m.plus || m.hash == nil }

// DefaultMechanisms returns the mechanisms offered when Config.Mechanisms
// is nil, in order of preference.
func DefaultMechanisms() []string {
	names := make([]string, len(mechanisms))
	for i, m := range mechanisms {
		names[i] = m.name
	}
	return names
}

// Config configures a Server.
type Config struct {
	// Mechanisms are the mechanism names to offer, in order of preference
	// (RFC 6120 §6.3.3). Nil means DefaultMechanisms().
	Mechanisms []string
}

// Lookup returns the credentials of the user with the given normalized
// localpart. It returns an error wrapping ErrUnknownUser if there is no such
// account; any other error fails the exchange with TemporaryAuthFailure.
type Lookup func(ctx context.Context, username string) (Credentials, error)

// ConnInfo describes the stream being authenticated.
type ConnInfo struct {
	// Domain is the domain the stream is addressed to (the 'to' of the
	// stream header); users authenticate as localpart@Domain. Only its
	// domainpart is used.
	Domain jid.JID
	// TLS is the state of the TLS connection, nil if the stream is not
	// TLS-protected.
	TLS *tls.ConnectionState
	// Certificate is the leaf certificate the server presented on this
	// connection (tls.Certificate.Leaf), for the tls-server-end-point
	// channel binding. Nil disables that binding.
	Certificate *x509.Certificate
	// Encrypted says the stream is protected though TLS is nil: a proxy
	// in front terminated TLS, or the stream is BOSH, whose requests may
	// come over several TLS connections. No channel binding is possible.
	Encrypted bool
}

// secure reports whether the stream is protected.
func (ci *ConnInfo) secure() bool { return ci.Encrypted || ci.bindable() }

// bindable reports whether there is a TLS channel to bind to.
func (ci *ConnInfo) bindable() bool { return ci.TLS != nil && ci.TLS.HandshakeComplete }

// Server authenticates users against the credentials returned by a Lookup.
// It is safe for concurrent use.
type Server struct {
	mechs  []*mechanism // offered, in order of preference
	plus   bool         // some -PLUS mechanism is configured
	lookup Lookup
	// fakeKey derives the fake credentials of unknown users.
	fakeKey []byte
	// nonce, if set, replaces the random server nonce (tests only).
	nonce func() string
}

// NewServer returns a Server offering cfg.Mechanisms and looking up
// credentials with lookup. It fails if a mechanism name is unknown or
// repeated.
func NewServer(cfg Config, lookup Lookup) (*Server, error) {
	if lookup == nil {
		return nil, errors.New("sasl: nil lookup")
	}
	names := cfg.Mechanisms
	if names == nil {
		names = DefaultMechanisms()
	}
	if len(names) == 0 {
		return nil, errors.New("sasl: no mechanisms")
	}
	s := &Server{lookup: lookup, fakeKey: make([]byte, 32)}
	rand.Read(s.fakeKey)
	var errs []error
	for _, name := range names {
		i := slices.IndexFunc(mechanisms, func(m *mechanism) bool { return m.name == name })
		switch {
		case i < 0:
			errs = append(errs, fmt.Errorf("sasl: unknown mechanism %q", name))
		case slices.Contains(s.mechs, mechanisms[i]):
			errs = append(errs, fmt.Errorf("sasl: mechanism %s listed twice", name))
		default:
			s.mechs = append(s.mechs, mechanisms[i])
			s.plus = s.plus || mechanisms[i].plus
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// offered reports whether m is offered on the connection; cbTypes are the
// connection's channel binding types.
func (s *Server) offered(m *mechanism, ci *ConnInfo, cbTypes []string) bool {
	switch {
	case m.tlsOnly() && !ci.secure():
		// RFC 6120 §6.3.4: not before TLS. -PLUS needs a TLS channel
		// to bind to, and PLAIN sends the password in the clear.
		return false
	case m.plus:
		return len(cbTypes) > 0
	}
	return true
}

// Mechanisms returns the names of the mechanisms offered on the connection,
// in order of preference (RFC 6120 §6.4.1): -PLUS mechanisms only if a
// channel binding type is available, PLAIN only over TLS.
func (s *Server) Mechanisms(ci ConnInfo) []string {
	cbTypes := channelBindingTypes(&ci)
	var names []string
	for _, m := range s.mechs {
		if s.offered(m, &ci, cbTypes) {
			names = append(names, m.name)
		}
	}
	return names
}

// ChannelBindingTypes returns the channel binding types to advertise on
// the connection with XEP-0440, in order of preference; none if no -PLUS
// mechanism is offered.
func (s *Server) ChannelBindingTypes(ci ConnInfo) []string {
	if !s.plus {
		return nil
	}
	return channelBindingTypes(&ci)
}

// plusOffered reports whether some -PLUS mechanism is offered on the
// connection.
func (s *Server) plusOffered(ci *ConnInfo, cbTypes []string) bool {
	return s.plus && ci.bindable() && len(cbTypes) > 0
}

// Start begins an exchange with the mechanism the client chose in <auth/>
// (RFC 6120 §6.4.2). A mechanism that is not offered on the connection
// fails with InvalidMechanism, or with EncryptionRequired if it is
// configured but needs TLS (RFC 6120 §6.5.4).
func (s *Server) Start(mech string, ci ConnInfo) (*Conversation, error) {
	i := slices.IndexFunc(s.mechs, func(m *mechanism) bool { return m.name == mech })
	if i < 0 {
		return nil, fail(InvalidMechanism, "", fmt.Errorf("mechanism %q not offered", mech))
	}
	m := s.mechs[i]
	if m.tlsOnly() && !ci.secure() {
		return nil, fail(EncryptionRequired, "", fmt.Errorf("%s without TLS", mech))
	}
	cbTypes := channelBindingTypes(&ci)
	if !s.offered(m, &ci, cbTypes) {
		return nil, fail(InvalidMechanism, "", fmt.Errorf("%s: no channel binding on this connection", mech))
	}
	if ci.Domain.IsZero() {
		return nil, fail(TemporaryAuthFailure, "", errors.New("no domain in ConnInfo"))
	}
	ci.Domain = ci.Domain.Domainpart()
	return &Conversation{s: s, mech: m, ci: ci, cbTypes: cbTypes}, nil
}

// state is the progress of a Conversation.
type state uint8

const (
	stateStart      state = iota // expecting the first client message
	stateChallenged              // sent an empty challenge, expecting the first client message
	stateFinal                   // SCRAM: sent server-first-message, expecting client-final-message
	stateDone                    // succeeded or failed
)

// Conversation is one authentication exchange. It is not safe for
// concurrent use.
type Conversation struct {
	s       *Server
	mech    *mechanism
	ci      ConnInfo
	cbTypes []string
	state   state
	user    jid.JID // the authenticated user (bare JID), set on success
	scram   scramState
}

// Step processes a client message — the initial response of <auth/>, or a
// <response/> — after base64 decoding, and returns the server's reply. If
// done is false the reply goes in a <challenge/>. If done is true the user
// is authenticated and the reply is the additional data with success
// (RFC 6120 §6.3.10) to send in <success/>; it is empty for PLAIN.
//
// An empty first message (no initial response, or "=") is answered with
// an empty challenge asking for the mechanism's first message.
//
// Errors are *Failure; the exchange is then over. Policies beyond the
// password (disabled accounts, expired credentials) are the caller's: it
// checks them when Step reports done, and sends such a Failure instead of
// <success/>.
func (c *Conversation) Step(ctx context.Context, msg []byte) (reply []byte, done bool, err error) {
	switch c.state {
	case stateStart:
		if len(msg) == 0 {
			c.state = stateChallenged
			return []byte{}, false, nil
		}
	case stateDone:
		return nil, false, fail(MalformedRequest, "exchange already finished", nil)
	}
	if c.mech.hash == nil {
		reply, done, err = c.stepPlain(ctx, msg)
	} else {
		reply, done, err = c.stepSCRAM(ctx, msg)
	}
	if err != nil || done {
		c.state = stateDone
		c.scram = scramState{}
	}
	if err != nil {
		return nil, false, err
	}
	return reply, done, nil
}

// Mechanism returns the name of the conversation's mechanism.
func (c *Conversation) Mechanism() string { return c.mech.name }

// Username returns the normalized localpart of the authenticated user once
// Step has reported done, and "" before.
func (c *Conversation) Username() string { return c.user.Local() }

// userJID normalizes the authentication identity name as a JID localpart
// (RFC 7622 §3.3) and returns the bare JID name@domain.
func (c *Conversation) userJID(name string) (jid.JID, error) {
	if name == "" {
		return jid.JID{}, fail(MalformedRequest, "empty username", nil)
	}
	u, err := jid.New(name, c.ci.Domain.String(), "")
	if err != nil {
		return jid.JID{}, fail(NotAuthorized, "", err)
	}
	return u, nil
}

// checkAuthzID accepts an empty authorization identity or the user's own
// bare JID (RFC 6120 §6.3.8).
func checkAuthzID(authzid string, user jid.JID) error {
	if authzid == "" {
		return nil
	}
	a, err := jid.Parse(authzid)
	if err != nil {
		return fail(InvalidAuthzID, "", err)
	}
	if a != user {
		return fail(InvalidAuthzID, "", fmt.Errorf("%s may not act as %s", user, a))
	}
	return nil
}

// credentials looks up the user's credentials. For an unknown user it
// returns zero Credentials and unknown set; the exchange then goes on with
// fake secrets (see secret), so that it fails with the same condition, at
// the same step and for the same work as with a wrong password.
func (c *Conversation) credentials(ctx context.Context, user string) (cred Credentials, unknown bool, err error) {
	cred, err = c.s.lookup(ctx, user)
	switch {
	case errors.Is(err, ErrUnknownUser):
		return Credentials{}, true, nil
	case err != nil:
		return Credentials{}, false, fail(TemporaryAuthFailure, "", fmt.Errorf("lookup %s: %w", user, err))
	}
	return cred, false, nil
}

// secret returns the user's secret for h, or a fake one if there is none.
// ok is false if the secret is fake.
func (c *Conversation) secret(cred *Credentials, h *hashAlg, user string) (s Secret, ok bool, err error) {
	p := cred.secret(h)
	if p.IsZero() {
		return c.s.fakeSecret(h, user), false, nil
	}
	if err := p.check(h); err != nil {
		return Secret{}, false, fail(TemporaryAuthFailure, "", fmt.Errorf("%s secret of %s: %w", h.scheme, user, err))
	}
	return *p, true, nil
}

// fakeSecret returns the secret of a user without one. The salt is
// derived from the user name and the Server's key, so that it is stable like
// a real user's; the keys match no password.
func (s *Server) fakeSecret(h *hashAlg, user string) Secret {
	m := hmac.New(sha256.New, s.fakeKey)
	m.Write([]byte(h.scheme))
	m.Write([]byte{0})
	m.Write([]byte(user))
	sum := m.Sum(nil)
	// The keys are never revealed; any value of the right size will do.
	keys := hmacSum(h, s.fakeKey, "fake keys")
	return Secret{
		Salt:       sum[:saltSize],
		Iterations: DefaultIterations,
		StoredKey:  keys,
		ServerKey:  keys,
	}
}
