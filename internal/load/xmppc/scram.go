package xmppc

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// SCRAM client (RFC 5802 §3, §5) without channel binding (gs2 header
// "n,,"), written here rather than taken from xdg-go/scram so that the
// salted password can be cached by user, salt and iteration count: a
// reconnecting user, or a user of a second run against the same server,
// costs the load tool no PBKDF2, and the client stays cheaper than the
// server it measures. The load tool's user names and passwords are
// printable ASCII, for which SASLprep (RFC 4013) changes nothing, so it
// is skipped; '=' and ',' in names are escaped (RFC 5802 §5.1).

// KeyCache holds salted passwords by mechanism, user, salt and
// iterations. The zero value is ready; it is safe for concurrent use.
type KeyCache struct {
	m           sync.Map     // string -> []byte
	derivations atomic.Int64 // PBKDF2 runs (cache misses)
}

// Derivations returns the number of PBKDF2 computations so far.
func (k *KeyCache) Derivations() int { return int(k.derivations.Load()) }

func (k *KeyCache) salted(h func() hash.Hash, mech, user, pass string, salt []byte, iters int) ([]byte, error) {
	// The password enters the key only hashed: the cache is saved to disk.
	sum := sha256.Sum256([]byte(pass))
	key := mech + "\x00" + user + "\x00" + string(sum[:]) + "\x00" + string(salt) + "\x00" + strconv.Itoa(iters)
	if k != nil {
		if v, ok := k.m.Load(key); ok {
			return v.([]byte), nil
		}
	}
	sp, err := pbkdf2.Key(h, pass, salt, iters, h().Size())
	if err != nil {
		return nil, fmt.Errorf("scram: pbkdf2: %w", err)
	}
	if k != nil {
		k.m.Store(key, sp)
		k.derivations.Add(1)
	}
	return sp, nil
}

// hashFor returns the hash of a SCRAM mechanism name.
func hashFor(mech string) (func() hash.Hash, bool) {
	switch mech {
	case "SCRAM-SHA-1":
		return sha1.New, true
	case "SCRAM-SHA-256":
		return sha256.New, true
	case "SCRAM-SHA-512":
		return sha512.New, true
	}
	return nil, false
}

// minIterations refuses servers that ask for fewer PBKDF2 rounds than
// RFC 7677 §4 recommends as a minimum for SCRAM-SHA-256.
const minIterations = 4096

// scram is one conversation.
type scram struct {
	h          func() hash.Hash
	mech       string
	user, pass string
	keys       *KeyCache
	nonce      string
	first      string // client-first-message-bare
	serverSig  []byte
}

func newSCRAM(mech, user, pass string, keys *KeyCache) (*scram, error) {
	h, ok := hashFor(mech)
	if !ok {
		return nil, fmt.Errorf("scram: unknown mechanism %q", mech)
	}
	b := make([]byte, 18)
	rand.Read(b)
	return &scram{h: h, mech: mech, user: user, pass: pass, keys: keys, nonce: base64.RawStdEncoding.EncodeToString(b)}, nil
}

// start returns the client-first-message (RFC 5802 §7).
func (s *scram) start() []byte {
	name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
	s.first = "n=" + name + ",r=" + s.nonce
	return []byte("n,," + s.first)
}

// step answers the server-first-message with the client-final-message.
func (s *scram) step(serverFirst []byte) ([]byte, error) {
	var nonce, salt64 string
	iters := 0
	for _, f := range strings.Split(string(serverFirst), ",") {
		if len(f) < 2 || f[1] != '=' {
			continue
		}
		switch f[0] {
		case 'r':
			nonce = f[2:]
		case 's':
			salt64 = f[2:]
		case 'i':
			iters, _ = strconv.Atoi(f[2:])
		case 'm':
			return nil, errors.New("scram: mandatory extension")
		}
	}
	if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) {
		return nil, errors.New("scram: the server nonce does not extend ours")
	}
	if iters < minIterations {
		return nil, fmt.Errorf("scram: %d iterations", iters)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return nil, fmt.Errorf("scram: salt: %w", err)
	}
	sp, err := s.keys.salted(s.h, s.mech, s.user, s.pass, salt, iters)
	if err != nil {
		return nil, err
	}
	clientKey := s.hmac(sp, "Client Key")
	stored := s.h()
	stored.Write(clientKey)
	storedKey := stored.Sum(nil)
	final := "c=biws,r=" + nonce // biws: base64 of "n,,"
	auth := s.first + "," + string(serverFirst) + "," + final
	sig := s.hmac(storedKey, auth)
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, sig)
	s.serverSig = s.hmac(s.hmac(sp, "Server Key"), auth)
	return []byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// verify checks the server-final-message.
func (s *scram) verify(serverFinal []byte) error {
	f := string(serverFinal)
	if strings.HasPrefix(f, "e=") {
		return fmt.Errorf("scram: server error %s", f[2:])
	}
	v, ok := strings.CutPrefix(f, "v=")
	if !ok {
		return errors.New("scram: no server signature")
	}
	got, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !hmac.Equal(got, s.serverSig) {
		return errors.New("scram: wrong server signature")
	}
	return nil
}

func (s *scram) hmac(key []byte, msg string) []byte {
	m := hmac.New(s.h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Save writes the cache to path (mode 0600: it holds salted passwords),
// so that a later run against the same server and users starts warm.
func (k *KeyCache) Save(path string) error {
	m := map[string]string{}
	k.m.Range(func(key, v any) bool {
		m[base64.StdEncoding.EncodeToString([]byte(key.(string)))] = base64.StdEncoding.EncodeToString(v.([]byte))
		return true
	})
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("key cache: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("key cache: %w", err)
	}
	return nil
}

// Load adds the entries of a file Save wrote; a missing file is empty.
func (k *KeyCache) Load(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("key cache: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("key cache %s: %w", path, err)
	}
	for key, v := range m {
		kb, err1 := base64.StdEncoding.DecodeString(key)
		vb, err2 := base64.StdEncoding.DecodeString(v)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("key cache %s: bad entry", path)
		}
		k.m.Store(string(kb), vb)
	}
	return nil
}
