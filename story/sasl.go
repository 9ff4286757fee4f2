package story

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xdg-go/scram"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// SASL mechanism names (RFC 4616, RFC 5802, RFC 7677, and the SHA-512
// variant registered by draft-melnikov-scram-sha-512).
const (
	Plain              = "PLAIN"
	ScramSHA1          = "SCRAM-SHA-1"
	ScramSHA1Plus      = "SCRAM-SHA-1-PLUS"
	ScramSHA256        = "SCRAM-SHA-256"
	ScramSHA256Plus    = "SCRAM-SHA-256-PLUS"
	ScramSHA512        = "SCRAM-SHA-512"
	ScramSHA512Plus    = "SCRAM-SHA-512-PLUS"
	nsSASLChannelBind  = "urn:xmpp:sasl-cb:0" // XEP-0440
	defaultMinScramItr = 4096                 // RFC 5802 §5.1 / RFC 7677 §4
)

// Channel binding types (RFC 5929, RFC 9266).
const (
	TLSExporter       = "tls-exporter"
	TLSServerEndPoint = "tls-server-end-point"
	TLSUnique         = "tls-unique"
)

// preference lists the mechanisms in the order they are tried when none
// is forced: the strongest SCRAM, channel-bound first, then PLAIN.
var preference = []string{
	ScramSHA512Plus, ScramSHA256Plus, ScramSHA1Plus,
	ScramSHA512, ScramSHA256, ScramSHA1,
	Plain,
}

// SASLError is a SASL <failure/> (RFC 6120 §6.5).
type SASLError struct {
	Mechanism string
	Condition string // aborted, not-authorized, …
	Text      string
}

func (e *SASLError) Error() string {
	s := "sasl " + e.Mechanism + " failure: " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// offeredMechanisms reads <mechanisms/> from stream features (RFC 6120 §6.4.1).
func offeredMechanisms(features *xmlstream.Element) []string {
	var out []string
	m := features.Child("mechanisms", stanza.NSSASL)
	if m == nil {
		return nil
	}
	for c := range m.ChildrenNamed("mechanism", stanza.NSSASL) {
		out = append(out, strings.TrimSpace(c.Text()))
	}
	return out
}

// advertisedBindings reads the XEP-0440 <sasl-channel-binding/> list; ok is
// false when the server does not advertise.
func advertisedBindings(features *xmlstream.Element) (types []string, ok bool) {
	cb := features.Child("sasl-channel-binding", nsSASLChannelBind)
	if cb == nil {
		return nil, false
	}
	for c := range cb.ChildrenNamed("channel-binding", nsSASLChannelBind) {
		types = append(types, c.Attr("type"))
	}
	return types, true
}

// channelBinding chooses the channel binding for a -PLUS mechanism over the
// connection state st. With a XEP-0440 advertisement the first type we can
// compute, in the order tls-exporter, tls-server-end-point, tls-unique, that
// the server lists wins. Without one, tls-exporter is used on TLS 1.3 and
// tls-server-end-point otherwise (RFC 9266 §3 defines tls-exporter for TLS
// 1.3; RFC 5929 §4 tls-server-end-point for any version). forced names a
// type to use regardless.
func channelBinding(st *tls.ConnectionState, features *xmlstream.Element, forced string) (scram.ChannelBinding, error) {
	if st == nil {
		return scram.ChannelBinding{}, errors.New("channel binding needs TLS")
	}
	candidates := []string{TLSExporter, TLSServerEndPoint, TLSUnique}
	if forced != "" {
		candidates = []string{forced}
	} else if adv, ok := advertisedBindings(features); ok {
		candidates = slices.DeleteFunc(candidates, func(t string) bool { return !slices.Contains(adv, t) })
	} else if st.Version >= tls.VersionTLS13 {
		candidates = []string{TLSExporter}
	} else {
		candidates = []string{TLSServerEndPoint}
	}
	var errs []error
	for _, t := range candidates {
		cb, err := computeBinding(st, t)
		if err == nil {
			return cb, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
	}
	if len(errs) == 0 {
		return scram.ChannelBinding{}, errors.New("no channel binding type in common with the server")
	}
	return scram.ChannelBinding{}, errors.Join(errs...)
}

func computeBinding(st *tls.ConnectionState, typ string) (scram.ChannelBinding, error) {
	switch typ {
	case TLSExporter:
		// RFC 9266 §2: defined for TLS 1.3 (and TLS 1.2 only with extended
		// master secret, which crypto/tls does not let us check).
		if st.Version < tls.VersionTLS13 {
			return scram.ChannelBinding{}, errors.New("needs TLS 1.3")
		}
		return scram.NewTLSExporterBinding(st)
	case TLSServerEndPoint:
		return scram.NewTLSServerEndpointBinding(st)
	case TLSUnique:
		if len(st.TLSUnique) == 0 {
			return scram.ChannelBinding{}, errors.New("not available (TLS 1.3 or resumed session)")
		}
		return scram.NewTLSUniqueBinding(st.TLSUnique), nil
	}
	return scram.ChannelBinding{}, fmt.Errorf("unknown channel binding type %q", typ)
}

// canBind reports whether some channel binding would be found.
func canBind(st *tls.ConnectionState, features *xmlstream.Element, forced string) bool {
	_, err := channelBinding(st, features, forced)
	return err == nil
}

// chooseMechanism picks the mechanism to use from those offered: forced
// when set (it must be offered), otherwise the first of preference that is
// offered and usable (-PLUS needs a channel binding we can compute).
func chooseMechanism(offered []string, forced string, st *tls.ConnectionState, features *xmlstream.Element, forcedCB string) (string, error) {
	if forced != "" {
		if !slices.Contains(offered, forced) {
			return "", fmt.Errorf("sasl: the server does not offer %s (it offers %s)", forced, strings.Join(offered, ", "))
		}
		return forced, nil
	}
	for _, m := range preference {
		if !slices.Contains(offered, m) {
			continue
		}
		if strings.HasSuffix(m, "-PLUS") && !canBind(st, features, forcedCB) {
			continue
		}
		return m, nil
	}
	return "", fmt.Errorf("sasl: no supported mechanism among %s", strings.Join(offered, ", "))
}

// mechanism is the client side of one SASL exchange.
type mechanism interface {
	// start returns the initial response (RFC 6120 §6.4.2).
	start() ([]byte, error)
	// step answers a challenge.
	step(challenge []byte) ([]byte, error)
	// finish checks the additional data of <success/> (RFC 6120 §6.4.6),
	// or completes when there is none.
	finish(data []byte) error
}

type plainMech struct{ user, pass string }

// RFC 4616 §2: [authzid] NUL authcid NUL passwd.
func (m *plainMech) start() ([]byte, error) {
	return []byte("\x00" + m.user + "\x00" + m.pass), nil
}
func (m *plainMech) step([]byte) ([]byte, error) { return nil, errors.New("PLAIN has no challenges") }
func (m *plainMech) finish([]byte) error         { return nil }

// scramClients caches SCRAM clients by hash, user, password and minimum
// iteration count.
var scramClients sync.Map

// scramMech wraps the SCRAM client conversation (RFC 5802 §3, §5).
type scramMech struct {
	conv *scram.ClientConversation
}

func newScram(name, user, pass string, cb scram.ChannelBinding, advertiseCB bool, minIters int, nonce func() string) (*scramMech, error) {
	var h scram.HashGeneratorFcn
	switch strings.TrimSuffix(name, "-PLUS") {
	case ScramSHA1:
		h = scram.SHA1
	case ScramSHA256:
		h = scram.SHA256
	case ScramSHA512:
		h = scram.SHA512
	default:
		return nil, fmt.Errorf("sasl: unknown mechanism %q", name)
	}
	if minIters <= 0 {
		minIters = defaultMinScramItr
	}
	// A scram.Client caches the keys it derives from the password (one
	// PBKDF2 per salt): reusing it across logins keeps the client side
	// cheap for benchmarks and the load generator.
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%d", strings.TrimSuffix(name, "-PLUS"), user, pass, minIters)
	var c *scram.Client
	if cached, ok := scramClients.Load(key); ok && nonce == nil {
		c = cached.(*scram.Client)
	} else {
		var err error
		if c, err = h.NewClient(user, pass, ""); err != nil {
			// SASLprep (RFC 4013) refused the password: send it as it is, as
			// servers that skip SASLprep expect.
			if c, err = h.NewClientUnprepped(user, pass, ""); err != nil {
				return nil, fmt.Errorf("sasl: %w", err)
			}
		}
		c = c.WithMinIterations(minIters)
		if nonce != nil {
			c = c.WithNonceGenerator(nonce)
		} else {
			scramClients.Store(key, c)
		}
	}
	var conv *scram.ClientConversation
	switch {
	case strings.HasSuffix(name, "-PLUS"):
		conv = c.NewConversationWithChannelBinding(cb)
	case advertiseCB:
		// RFC 5802 §6: the client supports channel binding but the server
		// did not offer a -PLUS mechanism: gs2 flag "y".
		conv = c.NewConversationAdvertisingChannelBinding()
	default:
		conv = c.NewConversation()
	}
	return &scramMech{conv: conv}, nil
}

func (m *scramMech) start() ([]byte, error) {
	s, err := m.conv.Step("")
	return []byte(s), err
}

func (m *scramMech) step(ch []byte) ([]byte, error) {
	if m.conv.Done() {
		return nil, errors.New("challenge after the SCRAM exchange completed")
	}
	s, err := m.conv.Step(string(ch))
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func (m *scramMech) finish(data []byte) error {
	if !m.conv.Done() {
		if data == nil {
			return errors.New("success without server-final-message")
		}
		if _, err := m.conv.Step(string(data)); err != nil {
			return fmt.Errorf("verify server-final-message: %w", err)
		}
	}
	if !m.conv.Valid() {
		return errors.New("server signature not verified")
	}
	return nil
}

// saslConfig is what an authentication needs besides the stream.
type saslConfig struct {
	user, pass     string
	mechanism      string // forced, or ""
	channelBinding string // forced, or ""
	minIterations  int
	timeout        time.Duration
	nonce          func() string // tests only
}

// authenticate runs SASL negotiation (RFC 6120 §6.4) on s, whose last
// features are given, and returns the mechanism used. The caller restarts
// the stream after success (§6.4.6).
//
// When the mechanism was picked automatically, is a -PLUS variant, and the
// channel binding type had to be guessed because the server does not
// advertise its types (XEP-0440), a failure is followed by one retry with
// the same hash without channel binding (RFC 6120 §6.4.5 allows retries):
// servers such as ejabberd 23.01 offer -PLUS on TLS 1.3 but accept only
// tls-unique, which TLS 1.3 does not define.
func authenticate(s *stream, features *xmlstream.Element, cfg saslConfig) (string, error) {
	offered := offeredMechanisms(features)
	if len(offered) == 0 {
		return "", errors.New("sasl: the server offers no SASL mechanisms")
	}
	st := s.tlsState()
	name, err := chooseMechanism(offered, cfg.mechanism, st, features, cfg.channelBinding)
	if err != nil {
		return "", err
	}
	plus := strings.HasSuffix(name, "-PLUS")
	err = authenticateWith(s, features, offered, name, cfg)
	_, advertised := advertisedBindings(features)
	var failure *SASLError
	if err != nil && plus && cfg.mechanism == "" && cfg.channelBinding == "" && !advertised && errors.As(err, &failure) {
		plain := strings.TrimSuffix(name, "-PLUS")
		if err2 := authenticateWith(s, features, offered, plain, cfg); err2 != nil {
			return plain, fmt.Errorf("%w (retried after %s failed: %v)", err2, name, err)
		}
		return plain, nil
	}
	return name, err
}

// authenticateWith runs one SASL exchange with mechanism name.
func authenticateWith(s *stream, features *xmlstream.Element, offered []string, name string, cfg saslConfig) error {
	st := s.tlsState()
	var mech mechanism
	if name == Plain {
		mech = &plainMech{user: cfg.user, pass: cfg.pass}
	} else {
		var cb scram.ChannelBinding
		var err error
		plus := strings.HasSuffix(name, "-PLUS")
		if plus {
			if cb, err = channelBinding(st, features, cfg.channelBinding); err != nil {
				return fmt.Errorf("sasl %s: %w", name, err)
			}
		}
		// Advertise support ("y") only when the server offered no -PLUS
		// at all; a client that chose not to bind although the server
		// could says "n" (RFC 5802 §6).
		advertise := !plus && st != nil && !slices.ContainsFunc(offered, func(m string) bool { return strings.HasSuffix(m, "-PLUS") })
		if mech, err = newScram(name, cfg.user, cfg.pass, cb, advertise, cfg.minIterations, cfg.nonce); err != nil {
			return err
		}
	}
	first, err := mech.start()
	if err != nil {
		return fmt.Errorf("sasl %s: %w", name, err)
	}
	auth := xmlstream.NewElement("auth", stanza.NSSASL).SetAttr("mechanism", name).AddText(encodeSASL(first))
	if err := s.writeElement(auth, cfg.timeout); err != nil {
		return fmt.Errorf("sasl %s: send auth: %w", name, err)
	}
	for {
		el, err := s.nextElement()
		if err != nil {
			return fmt.Errorf("sasl %s: %w", name, err)
		}
		if el.NS != stanza.NSSASL {
			return fmt.Errorf("sasl %s: unexpected %s", name, brief(el))
		}
		switch el.Name {
		case "challenge":
			ch, err := decodeSASL(el.Text())
			if err != nil {
				return fmt.Errorf("sasl %s: challenge: %w", name, err)
			}
			resp, err := mech.step(ch)
			if err != nil {
				// RFC 6120 §6.4.4: abort; the server answers <failure><aborted/>.
				s.writeElement(xmlstream.NewElement("abort", stanza.NSSASL), cfg.timeout)
				return fmt.Errorf("sasl %s: %w", name, err)
			}
			r := xmlstream.NewElement("response", stanza.NSSASL).AddText(encodeSASL(resp))
			if err := s.writeElement(r, cfg.timeout); err != nil {
				return fmt.Errorf("sasl %s: send response: %w", name, err)
			}
		case "success":
			var data []byte
			if t := strings.TrimSpace(el.Text()); t != "" {
				if data, err = decodeSASL(t); err != nil {
					return fmt.Errorf("sasl %s: success: %w", name, err)
				}
			}
			if err := mech.finish(data); err != nil {
				return fmt.Errorf("sasl %s: %w", name, err)
			}
			return nil
		case "failure":
			f := &SASLError{Mechanism: name, Text: el.ChildText("text", stanza.NSSASL)}
			for c := range el.Elements() {
				if c.Name != "text" {
					f.Condition = c.Name
					break
				}
			}
			return f
		default:
			return fmt.Errorf("sasl %s: unexpected %s", name, brief(el))
		}
	}
}

// encodeSASL is the base64 of RFC 6120 §6.4.2: "=" for empty data.
func encodeSASL(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decodeSASL(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}
