package sasl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/xdg-go/scram"
)

// scramState is the state of a SCRAM exchange between the first and the
// final client message.
type scramState struct {
	conv *scram.ServerConversation
	user jid.JID
	// fake is why the exchange will fail whatever the proof (unknown
	// user, no secret for the hash); nil for a real secret.
	fake error
}

// stepSCRAM runs a SCRAM step (RFC 5802 §5) with xdg-go/scram, which sees
// the stored keys only: the server never runs PBKDF2.
func (c *Conversation) stepSCRAM(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if c.state == stateFinal {
		return c.scramFinal(string(msg))
	}
	return c.scramFirst(ctx, string(msg))
}

// scramFirst handles client-first-message. Before handing it to xdg-go it
// checks the GS2 header against the mechanism and the connection, and
// normalizes and looks up the user.
func (c *Conversation) scramFirst(ctx context.Context, msg string) ([]byte, bool, error) {
	hdr, name, err := parseClientFirst(msg)
	if err != nil {
		return nil, false, fail(MalformedRequest, "invalid client-first-message", err)
	}

	// Channel binding negotiation, RFC 5802 §6.
	switch {
	case c.mech.plus && hdr.flag != 'p':
		return nil, false, fail(MalformedRequest, c.mech.name+" requires channel binding", nil)
	case c.mech.plus && !slices.Contains(c.cbTypes, hdr.cbType):
		return nil, false, fail(NotAuthorized, "unsupported channel binding type", fmt.Errorf("channel binding type %q", hdr.cbType))
	case !c.mech.plus && hdr.flag == 'p':
		return nil, false, fail(MalformedRequest, "channel binding requires a -PLUS mechanism", nil)
	case hdr.flag == 'y' && c.s.plusOffered(&c.ci, c.cbTypes):
		// The client supports channel binding but thinks that we do
		// not: someone removed the -PLUS mechanisms from the offer.
		return nil, false, fail(NotAuthorized, "channel binding downgrade", errors.New("gs2 flag 'y' but -PLUS was offered"))
	}

	user, err := c.userJID(name)
	if err != nil {
		return nil, false, err
	}
	if err := checkAuthzID(hdr.authzid, user); err != nil {
		return nil, false, err
	}

	var cb scram.ChannelBinding
	if hdr.flag == 'p' {
		data, err := channelBindingData(&c.ci, hdr.cbType)
		if err != nil {
			return nil, false, fail(TemporaryAuthFailure, "", fmt.Errorf("%s channel binding: %w", hdr.cbType, err))
		}
		cb = scram.ChannelBinding{Type: scram.ChannelBindingType(hdr.cbType), Data: data}
	}

	cred, unknown, err := c.credentials(ctx, user.Local())
	if err != nil {
		return nil, false, err
	}
	sec, own, err := c.secret(&cred, c.mech.hash, user.Local())
	if err != nil {
		return nil, false, err
	}
	var fake error
	switch {
	case unknown:
		fake = ErrUnknownUser
	case !own:
		fake = errNoSecret
	}

	stored := scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(sec.Salt), Iters: sec.Iterations},
		StoredKey:  sec.StoredKey,
		ServerKey:  sec.ServerKey,
	}
	srv, err := c.mech.hash.gen.NewServer(func(string) (scram.StoredCredentials, error) { return stored, nil })
	if err != nil {
		return nil, false, fail(TemporaryAuthFailure, "", err)
	}
	if c.s.nonce != nil {
		srv.WithNonceGenerator(c.s.nonce)
	}
	var conv *scram.ServerConversation
	if hdr.flag == 'p' {
		conv = srv.NewConversationWithChannelBindingRequired(cb)
	} else {
		// Flags 'n' and 'y' were checked above.
		conv = srv.NewConversation()
	}
	reply, err := conv.Step(msg)
	if err != nil {
		return nil, false, fail(MalformedRequest, "invalid client-first-message", err)
	}
	c.scram = scramState{conv: conv, user: user, fake: fake}
	c.state = stateFinal
	return []byte(reply), false, nil
}

// scramFinal handles client-final-message and returns server-final-message,
// the additional data with success.
func (c *Conversation) scramFinal(msg string) ([]byte, bool, error) {
	reply, err := c.scram.conv.Step(msg)
	switch {
	case err != nil && reply == "":
		return nil, false, fail(MalformedRequest, "invalid client-final-message", err)
	case reply == scram.ErrChannelBindingsDontMatch:
		return nil, false, fail(NotAuthorized, "channel bindings do not match", err)
	case err != nil:
		if c.scram.fake != nil {
			err = c.scram.fake
		} else if reply == scram.ErrInvalidProof {
			err = errWrongPassword
		}
		return nil, false, fail(NotAuthorized, "", err)
	case !c.scram.conv.Valid() || c.scram.fake != nil:
		// Unreachable: a proof cannot match fake keys.
		return nil, false, fail(NotAuthorized, "", c.scram.fake)
	}
	c.user = c.scram.user
	return []byte(reply), true, nil
}

// gs2Header is the GS2 header of client-first-message (RFC 5802 §7).
type gs2Header struct {
	flag    byte   // 'n', 'y' or 'p'
	cbType  string // the channel binding type if flag is 'p'
	authzid string // decoded
}

// parseClientFirst checks the syntax of client-first-message (RFC 5802
// §7) up to the nonce and returns its GS2 header and decoded user name;
// xdg-go parses the message again.
//
//	client-first-message = gs2-header client-first-message-bare
//	gs2-header = gs2-cbind-flag "," [ authzid ] ","
//	gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
//	client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
func parseClientFirst(msg string) (h gs2Header, user string, err error) {
	f := strings.SplitN(msg, ",", 4)
	if len(f) < 4 {
		return h, "", errors.New("too few attributes")
	}
	switch flag := f[0]; {
	case flag == "n" || flag == "y":
		h.flag = flag[0]
	case strings.HasPrefix(flag, "p="):
		h.flag, h.cbType = 'p', flag[2:]
		if !validCBName(h.cbType) {
			return h, "", fmt.Errorf("invalid channel binding type %q", h.cbType)
		}
	default:
		return h, "", fmt.Errorf("invalid gs2-cbind-flag %q", flag)
	}
	if f[1] != "" {
		a, ok := strings.CutPrefix(f[1], "a=")
		if !ok {
			return h, "", errors.New("invalid authzid attribute")
		}
		if h.authzid, ok = decodeSASLName(a); !ok {
			return h, "", errors.New("invalid authzid encoding")
		}
	}
	if strings.HasPrefix(f[2], "m=") {
		// RFC 5802 §5.1: mandatory extensions we do not know fail.
		return h, "", errors.New("unsupported mandatory extension")
	}
	n, ok := strings.CutPrefix(f[2], "n=")
	if !ok {
		return h, "", errors.New("missing username")
	}
	if user, ok = decodeSASLName(n); !ok {
		return h, "", errors.New("invalid username encoding")
	}
	nonce, ok := strings.CutPrefix(f[3], "r=")
	if !ok {
		return h, "", errors.New("missing nonce")
	}
	nonce, _, _ = strings.Cut(nonce, ",")
	if !validNonce(nonce) {
		return h, "", errors.New("invalid nonce")
	}
	return h, user, nil
}

// decodeSASLName decodes a saslname (RFC 5802 §5.1, §7): "=2C" is ',' and
// "=3D" is '='; any other '=' is invalid, as is the empty name.
func decodeSASLName(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '=')
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		s = s[i+3:]
	}
}

// validCBName reports whether s matches cb-name = 1*(ALPHA / DIGIT / "." /
// "-") (RFC 5802 §7).
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validNonce reports whether s matches c-nonce = printable, that is one or
// more of %x21-2B / %x2D-7E (RFC 5802 §7).
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}
