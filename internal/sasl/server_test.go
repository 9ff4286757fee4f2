package sasl

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/jid"
)

func TestNewServer(t *testing.T) {
	lookup := (&store{}).lookup
	if _, err := NewServer(Config{}, nil); err == nil {
		t.Error("nil lookup accepted")
	}
	if _, err := NewServer(Config{Mechanisms: []string{}}, lookup); err == nil {
		t.Error("empty mechanism list accepted")
	}
	_, err := NewServer(Config{Mechanisms: []string{"DIGEST-MD5", Plain, "scram-sha-1", Plain}}, lookup)
	if err == nil {
		t.Fatal("bad mechanisms accepted")
	}
	// Every error is reported.
	for _, s := range []string{"DIGEST-MD5", "scram-sha-1", "PLAIN listed twice"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestMechanisms(t *testing.T) {
	tls12 := tlsConn(t, tls.VersionTLS12, certP256)
	tls13 := tlsConn(t, tls.VersionTLS13, certP256)
	tls12Ed := tlsConn(t, tls.VersionTLS12, certEd25519)
	tls12NoCert, tls13NoCert := tls12, tls13
	tls12NoCert.server.Certificate = nil
	tls13NoCert.server.Certificate = nil

	all, _ := newTestServer(t)
	custom, _ := newTestServer(t, Plain, SCRAMSHA1, SCRAMSHA256Plus)
	noPlus, _ := newTestServer(t, SCRAMSHA256, Plain)
	scram := []string{SCRAMSHA512, SCRAMSHA256, SCRAMSHA1}
	tests := []struct {
		name   string
		srv    *Server
		ci     ConnInfo
		mechs  []string
		cbType []string
	}{
		{"no TLS", all, plainConn.server, scram, nil},
		{"encrypted without TLS state (BOSH, TLS proxy)", all, ConnInfo{Encrypted: true, Certificate: tls13.server.Certificate, Domain: plainConn.server.Domain},
			append(scram, Plain), nil},
		{"TLS 1.2", all, tls12.server, DefaultMechanisms(), []string{TLSServerEndPoint, TLSUnique}},
		{"TLS 1.2 no cert", all, tls12NoCert.server, DefaultMechanisms(), []string{TLSUnique}},
		{"TLS 1.2 Ed25519", all, tls12Ed.server, DefaultMechanisms(), []string{TLSUnique}},
		{"TLS 1.2 no binding", all, noBinding(tls12NoCert.server), append(scram, Plain), nil},
		{"TLS 1.3", all, tls13.server, DefaultMechanisms(), []string{TLSExporter, TLSServerEndPoint}},
		{"TLS 1.3 no cert", all, tls13NoCert.server, DefaultMechanisms(), []string{TLSExporter}},
		{"custom no TLS", custom, plainConn.server, []string{SCRAMSHA1}, nil},
		{"custom TLS 1.3", custom, tls13.server, []string{Plain, SCRAMSHA1, SCRAMSHA256Plus}, []string{TLSExporter, TLSServerEndPoint}},
		{"no PLUS TLS 1.3", noPlus, tls13.server, []string{SCRAMSHA256, Plain}, nil},
	}
	for _, tt := range tests {
		if got := tt.srv.Mechanisms(tt.ci); !slices.Equal(got, tt.mechs) {
			t.Errorf("%s: Mechanisms = %v, want %v", tt.name, got, tt.mechs)
		}
		if got := tt.srv.ChannelBindingTypes(tt.ci); !slices.Equal(got, tt.cbType) {
			t.Errorf("%s: ChannelBindingTypes = %v, want %v", tt.name, got, tt.cbType)
		}
		// Start accepts exactly the offered mechanisms.
		for _, m := range DefaultMechanisms() {
			_, err := tt.srv.Start(m, tt.ci)
			if offered := slices.Contains(tt.mechs, m); offered != (err == nil) {
				t.Errorf("%s: Start(%s): %v, offered %v", tt.name, m, err, offered)
			}
		}
	}
}

func TestStartFailures(t *testing.T) {
	srv, _ := newTestServer(t)
	noPlain, _ := newTestServer(t, SCRAMSHA256)
	tls12NoCert := tlsConn(t, tls.VersionTLS12, certP256)
	tls12NoCert.server.Certificate = nil
	tests := []struct {
		srv  *Server
		mech string
		ci   ConnInfo
		want Condition
	}{
		{srv, "DIGEST-MD5", plainConn.server, InvalidMechanism},
		{srv, "", plainConn.server, InvalidMechanism},
		{srv, "scram-sha-256", plainConn.server, InvalidMechanism},
		{noPlain, Plain, tls12NoCert.server, InvalidMechanism},
		{srv, Plain, plainConn.server, EncryptionRequired},
		{srv, SCRAMSHA256Plus, plainConn.server, EncryptionRequired},
		{srv, SCRAMSHA256Plus, noBinding(tls12NoCert.server), InvalidMechanism},
		{srv, SCRAMSHA256, ConnInfo{}, TemporaryAuthFailure},
	}
	for _, tt := range tests {
		_, err := tt.srv.Start(tt.mech, tt.ci)
		wantFailure(t, err, tt.want)
	}
	// The domainpart of the Domain JID is used.
	ci := plainConn.server
	ci.Domain = jid.MustParse("someone@example.com/res")
	conv, err := exchange(t, srv, SCRAMSHA256, ci,
		scramClient(t, hashSHA256, "juliet", testPasswords["juliet"], "juliet@example.com").NewConversation())
	if err != nil || conv.Username() != "juliet" {
		t.Errorf("Domain with localpart and resource: %v", err)
	}
}

func TestEndPointHash(t *testing.T) {
	raw := []byte("certificate")
	s256, s384, s512 := sha256.Sum256(raw), sha512.Sum384(raw), sha512.Sum512(raw)
	tests := []struct {
		alg  x509.SignatureAlgorithm
		want []byte
	}{
		{x509.MD5WithRSA, s256[:]},
		{x509.SHA1WithRSA, s256[:]},
		{x509.ECDSAWithSHA1, s256[:]},
		{x509.SHA256WithRSA, s256[:]},
		{x509.SHA256WithRSAPSS, s256[:]},
		{x509.ECDSAWithSHA256, s256[:]},
		{x509.SHA384WithRSA, s384[:]},
		{x509.ECDSAWithSHA384, s384[:]},
		{x509.SHA512WithRSAPSS, s512[:]},
		{x509.ECDSAWithSHA512, s512[:]},
		{x509.PureEd25519, nil},
		{x509.MD2WithRSA, nil},
		{x509.UnknownSignatureAlgorithm, nil},
	}
	tls := tlsConn(t, tls.VersionTLS12, certP256)
	for _, tt := range tests {
		ci := noBinding(tls.server) // tls-unique aside
		ci.Certificate = &x509.Certificate{Raw: raw, SignatureAlgorithm: tt.alg}
		types := channelBindingTypes(&ci)
		got, err := channelBindingData(&ci, TLSServerEndPoint)
		if tt.want == nil {
			if len(types) != 0 || err == nil {
				t.Errorf("%v: types %v, data %x, %v; want none", tt.alg, types, got, err)
			}
			continue
		}
		if !slices.Equal(types, []string{TLSServerEndPoint}) || err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%v: types %v, data %x, %v; want %x", tt.alg, types, got, err, tt.want)
		}
	}
}

func TestFailureError(t *testing.T) {
	cause := errors.New("boom")
	f := &Failure{Condition: TemporaryAuthFailure, Text: "try later", Err: cause}
	if got := f.Error(); got != "sasl: temporary-auth-failure: try later: boom" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(f, cause) {
		t.Error("Unwrap lost the cause")
	}
	if got := (&Failure{Condition: NotAuthorized}).Error(); got != "sasl: not-authorized" {
		t.Errorf("Error() = %q", got)
	}
}

// noBinding returns ci without tls-unique (as after a TLS 1.2 resumption
// without extended master secret) and without a certificate.
func noBinding(ci ConnInfo) ConnInfo {
	st := *ci.TLS
	st.TLSUnique = nil
	ci.TLS = &st
	ci.Certificate = nil
	return ci
}
