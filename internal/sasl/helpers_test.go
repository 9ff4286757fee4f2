package sasl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/xdg-go/scram"
)

var testDomain = jid.MustParse("example.com")

// testPasswords are the accounts of newTestServer.
var testPasswords = map[string]string{
	"juliet": "r0m30myr0m30",
	"user":   "pencil",
	"a,b=c":  "commas and equals",
	"romeo":  "pässwörd ünïcode",
}

// testCredentials derives the credentials of testPasswords once.
var testCredentials = sync.OnceValue(func() map[string]Credentials {
	m := make(map[string]Credentials)
	for u, p := range testPasswords {
		c, err := NewCredentials(p, 0)
		if err != nil {
			panic(err)
		}
		m[u] = c
	}
	return m
})

// store is a Lookup over a map that records the names looked up.
type store struct {
	mu    sync.Mutex
	creds map[string]Credentials
	err   error // returned by every lookup if set
	asked []string
}

func (s *store) lookup(ctx context.Context, user string) (Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, user)
	if s.err != nil {
		return Credentials{}, s.err
	}
	c, ok := s.creds[user]
	if !ok {
		return Credentials{}, ErrUnknownUser
	}
	return c, nil
}

func newTestServer(t testing.TB, mechs ...string) (*Server, *store) {
	t.Helper()
	st := &store{creds: testCredentials()}
	srv, err := NewServer(Config{Mechanisms: mechs}, st.lookup)
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// certKind selects the key and signature algorithm of a test certificate.
type certKind int

const (
	certP256    certKind = iota // ECDSA P-256, signed with ECDSA-SHA256
	certP384                    // ECDSA P-384, signed with ECDSA-SHA384
	certEd25519                 // Ed25519: tls-server-end-point undefined
)

var certs sync.Map // certKind → tls.Certificate

func testCert(t testing.TB, kind certKind) tls.Certificate {
	t.Helper()
	if c, ok := certs.Load(kind); ok {
		return c.(tls.Certificate)
	}
	var key crypto.Signer
	var err error
	switch kind {
	case certP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case certP384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case certEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "example.com"},
		DNSNames:     []string{"example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	certs.Store(kind, c)
	return c
}

// conn is both ends of a TLS connection.
type conn struct {
	server ConnInfo            // the server's view, for Server
	client tls.ConnectionState // the client's view, for the xdg-go client
}

// tlsConn performs a TLS handshake of the given version over net.Pipe with
// a certificate of the given kind.
func tlsConn(t testing.TB, version uint16, kind certKind) conn {
	t.Helper()
	cert := testCert(t, kind)
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c1.Close(); c2.Close() })
	srv := tls.Server(c1, &tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             version,
		MaxVersion:             version,
		SessionTicketsDisabled: true,
	})
	cli := tls.Client(c2, &tls.Config{
		InsecureSkipVerify: true,
		MinVersion:         version,
		MaxVersion:         version,
		ServerName:         "example.com",
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }() // ends with the handshake
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ss, cs := srv.ConnectionState(), cli.ConnectionState()
	if ss.Version != version {
		t.Fatalf("negotiated %x, want %x", ss.Version, version)
	}
	return conn{
		server: ConnInfo{Domain: testDomain, TLS: &ss, Certificate: cert.Leaf},
		client: cs,
	}
}

// plainConn is a stream without TLS.
var plainConn = conn{server: ConnInfo{Domain: testDomain}}

var clients sync.Map // clientKey → *scram.Client

type clientKey struct {
	hash                *hashAlg
	user, pass, authzid string
}

// scramClient returns an xdg-go client, cached so that its derived keys
// are computed once.
func scramClient(t testing.TB, h *hashAlg, user, pass, authzid string) *scram.Client {
	t.Helper()
	k := clientKey{h, user, pass, authzid}
	if c, ok := clients.Load(k); ok {
		return c.(*scram.Client)
	}
	c, err := h.gen.NewClient(user, pass, authzid)
	if err != nil {
		t.Fatal(err)
	}
	clients.Store(k, c)
	return c
}

// clientCB returns the client's view of the channel binding typ.
func clientCB(t testing.TB, cs *tls.ConnectionState, typ string) scram.ChannelBinding {
	t.Helper()
	var cb scram.ChannelBinding
	var err error
	switch typ {
	case TLSExporter:
		cb, err = scram.NewTLSExporterBinding(cs)
	case TLSServerEndPoint:
		cb, err = scram.NewTLSServerEndpointBinding(cs)
	case TLSUnique:
		cb = scram.NewTLSUniqueBinding(cs.TLSUnique)
	default:
		t.Fatalf("channel binding %q", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// exchange runs a SCRAM exchange between cc and srv. It returns the
// conversation and the server's error, if any; it fails the test if the
// client rejects a successful server.
func exchange(t testing.TB, srv *Server, mech string, ci ConnInfo, cc *scram.ClientConversation) (*Conversation, error) {
	t.Helper()
	ctx := context.Background()
	conv, err := srv.Start(mech, ci)
	if err != nil {
		return nil, err
	}
	c1, err := cc.Step("")
	if err != nil {
		t.Fatal(err)
	}
	s1, done, err := conv.Step(ctx, []byte(c1))
	if err != nil {
		return conv, err
	}
	if done {
		t.Fatal("done after client-first-message")
	}
	c2, err := cc.Step(string(s1))
	if err != nil {
		t.Fatalf("client rejects %q: %v", s1, err)
	}
	s2, done, err := conv.Step(ctx, []byte(c2))
	if err != nil {
		return conv, err
	}
	if !done {
		t.Fatal("not done after client-final-message")
	}
	if _, err := cc.Step(string(s2)); err != nil || !cc.Valid() {
		t.Fatalf("client rejects server-final-message %q: %v", s2, err)
	}
	return conv, nil
}

// wantFailure fails the test unless err is a *Failure with condition c.
func wantFailure(t testing.TB, err error, c Condition) {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("got error %v, want Failure %s", err, c)
	}
	if f.Condition != c {
		t.Fatalf("got %v, want Failure %s", err, c)
	}
}

// hashOf returns the hash of a SCRAM mechanism name.
func hashOf(t testing.TB, mech string) *hashAlg {
	t.Helper()
	for _, m := range mechanisms {
		if m.name == mech {
			if m.hash == nil {
				t.Fatalf("%s is not SCRAM", mech)
			}
			return m.hash
		}
	}
	t.Fatalf("unknown mechanism %s", mech)
	return nil
}
