package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xdg-go/scram"
	"golang.org/x/text/secure/precis"
)

// DefaultIterations is the PBKDF2 iteration count of new credentials, the
// minimum that RFC 7677 §4 recommends. NewCredentials accepts no less.
const DefaultIterations = 4096

// saltSize is the size in bytes of the random salts of new credentials.
const saltSize = 16

// Secret is the SCRAM authentication information stored for one hash
// function (RFC 5802 §3):
//
//	SaltedPassword = Hi(Normalize(password), Salt, Iterations)
//	StoredKey      = H(HMAC(SaltedPassword, "Client Key"))
//	ServerKey      = HMAC(SaltedPassword, "Server Key")
//
// The zero Secret means that there is none.
type Secret struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// IsZero reports whether s is the zero Secret.
func (s Secret) IsZero() bool {
	return s.Salt == nil && s.Iterations == 0 && s.StoredKey == nil && s.ServerKey == nil
}

// Credentials are what the server stores for an account: a Secret per hash
// function. A zero Secret disables the mechanisms using that hash for the
// account; PLAIN uses the SHA-256 secret, or else the SHA-512 or SHA-1 one.
//
// Credentials marshal to text (MarshalText) for storage.
type Credentials struct {
	SHA1   Secret
	SHA256 Secret
	SHA512 Secret
}

// hashAlg is a hash function of the SCRAM family.
type hashAlg struct {
	// scheme is the name of the SCRAM mechanism without channel binding,
	// which is also the RFC 5803 scheme name.
	scheme string
	gen    scram.HashGeneratorFcn
	size   int
}

var (
	hashSHA1   = &hashAlg{"SCRAM-SHA-1", scram.SHA1, sha1.Size}
	hashSHA256 = &hashAlg{"SCRAM-SHA-256", scram.SHA256, sha256.Size}
	hashSHA512 = &hashAlg{"SCRAM-SHA-512", scram.SHA512, sha512.Size}
	// hashes is in the order of the text form.
	hashes = []*hashAlg{hashSHA1, hashSHA256, hashSHA512}
	// plainHashes is PLAIN's order of preference.
	plainHashes = []*hashAlg{hashSHA256, hashSHA512, hashSHA1}
)

// secret returns c's secret for h.
func (c *Credentials) secret(h *hashAlg) *Secret {
	switch h {
	case hashSHA1:
		return &c.SHA1
	case hashSHA256:
		return &c.SHA256
	default:
		return &c.SHA512
	}
}

// NewCredentials prepares password with the PRECIS OpaqueString profile
// (RFC 8265 §4.2, as RFC 7622 §3.1 requires for XMPP; it replaces SASLprep)
// and derives the SCRAM secrets for SHA-1, SHA-256 and SHA-512, each with a
// fresh random salt. iterations is the PBKDF2 iteration count: 0 means
// DefaultIterations, and less than DefaultIterations is refused (RFC 7677
// §4). An empty password, or one that OpaqueString rejects (for instance
// one with control characters), is an error.
func NewCredentials(password string, iterations int) (Credentials, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if iterations < DefaultIterations {
		return Credentials{}, fmt.Errorf("sasl: %d iterations, want at least %d", iterations, DefaultIterations)
	}
	pw, err := preparePassword(password)
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	for _, h := range hashes {
		salt := make([]byte, saltSize)
		rand.Read(salt)
		s, err := deriveSecret(h, pw, salt, iterations)
		if err != nil {
			return Credentials{}, err
		}
		*c.secret(h) = s
	}
	return c, nil
}

// preparePassword applies the PRECIS OpaqueString profile (RFC 8265 §4.2).
func preparePassword(password string) (string, error) {
	// PRECIS would silently map invalid UTF-8 to U+FFFD.
	if !utf8.ValidString(password) {
		return "", errors.New("sasl: password is not valid UTF-8")
	}
	pw, err := precis.OpaqueString.String(password)
	if err != nil {
		return "", fmt.Errorf("sasl: password: %w", err)
	}
	return pw, nil
}

// deriveSecret computes the RFC 5802 §3 secret of the prepared password pw.
func deriveSecret(h *hashAlg, pw string, salt []byte, iterations int) (Secret, error) {
	salted, err := pbkdf2.Key(h.gen, pw, salt, iterations, h.size)
	if err != nil {
		return Secret{}, fmt.Errorf("sasl: %s: %w", h.scheme, err)
	}
	clientKey := hmacSum(h, salted, "Client Key")
	storedKey := h.gen()
	storedKey.Write(clientKey)
	return Secret{
		Salt:       bytes.Clone(salt),
		Iterations: iterations,
		StoredKey:  storedKey.Sum(nil),
		ServerKey:  hmacSum(h, salted, "Server Key"),
	}, nil
}

func hmacSum(h *hashAlg, key []byte, data string) []byte {
	m := hmac.New(h.gen, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// check reports whether s is usable with h.
func (s *Secret) check(h *hashAlg) error {
	switch {
	case len(s.Salt) == 0:
		return errors.New("empty salt")
	case s.Iterations < 1:
		return fmt.Errorf("iteration count %d", s.Iterations)
	case len(s.StoredKey) != h.size || len(s.ServerKey) != h.size:
		return fmt.Errorf("keys of %d and %d bytes, want %d", len(s.StoredKey), len(s.ServerKey), h.size)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler. The text holds one secret
// per hash, separated by a space, each in the form of the RFC 5803 §3
// authPassword attribute:
//
//	SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
//
// Zero secrets are left out; zero Credentials marshal to empty text.
func (c Credentials) MarshalText() ([]byte, error) {
	var b []byte
	for _, h := range hashes {
		s := c.secret(h)
		if s.IsZero() {
			continue
		}
		if err := s.check(h); err != nil {
			return nil, fmt.Errorf("sasl: marshal %s secret: %w", h.scheme, err)
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, h.scheme...)
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(s.Iterations), 10)
		b = append(b, ':')
		b = base64.StdEncoding.AppendEncode(b, s.Salt)
		b = append(b, '$')
		b = base64.StdEncoding.AppendEncode(b, s.StoredKey)
		b = append(b, ':')
		b = base64.StdEncoding.AppendEncode(b, s.ServerKey)
	}
	return b, nil
}

// UnmarshalText implements encoding.TextUnmarshaler for the form written
// by MarshalText. Secrets may be separated by any white space and come in
// any order, but each hash at most once.
func (c *Credentials) UnmarshalText(text []byte) error {
	var out Credentials
	for _, f := range strings.Fields(string(text)) {
		scheme, rest, _ := strings.Cut(f, "$")
		var h *hashAlg
		for _, hh := range hashes {
			if hh.scheme == scheme {
				h = hh
			}
		}
		if h == nil {
			return fmt.Errorf("sasl: unmarshal credentials: unknown scheme %q", scheme)
		}
		s := out.secret(h)
		if !s.IsZero() {
			return fmt.Errorf("sasl: unmarshal credentials: duplicate %s secret", scheme)
		}
		v, err := parseSecret(rest)
		if err == nil {
			err = v.check(h)
		}
		if err != nil {
			return fmt.Errorf("sasl: unmarshal %s secret: %w", scheme, err)
		}
		*s = v
	}
	*c = out
	return nil
}

// parseSecret parses "<iterations>:<salt>$<StoredKey>:<ServerKey>".
func parseSecret(s string) (Secret, error) {
	info, value, ok := strings.Cut(s, "$")
	if !ok {
		return Secret{}, errors.New("missing '$'")
	}
	iter, salt, ok1 := strings.Cut(info, ":")
	stored, server, ok2 := strings.Cut(value, ":")
	if !ok1 || !ok2 {
		return Secret{}, errors.New("missing ':'")
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 || n > math.MaxInt32 {
		return Secret{}, fmt.Errorf("bad iteration count %q", iter)
	}
	var v Secret
	v.Iterations = n
	for _, f := range []struct {
		dst *[]byte
		src string
	}{{&v.Salt, salt}, {&v.StoredKey, stored}, {&v.ServerKey, server}} {
		if *f.dst, err = base64.StdEncoding.DecodeString(f.src); err != nil {
			return Secret{}, err
		}
	}
	return v, nil
}
