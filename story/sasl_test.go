package story

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// scramVector is an exchange from an RFC.
type scramVector struct {
	mech                     string
	nonce                    string
	clientFirst, serverFirst string
	clientFinal, serverFinal string
	user, password           string
}

var scramVectors = []scramVector{
	{ // RFC 5802 §5
		mech: ScramSHA1, user: "user", password: "pencil",
		nonce:       "fyko+d2lbbFgONRv9qkxdawL",
		clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
		clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
	},
	{ // RFC 7677 §3
		mech: ScramSHA256, user: "user", password: "pencil",
		nonce:       "rOprNGfwEbeRWgbNEkqO",
		clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
	},
}

func TestScramVectors(t *testing.T) {
	for _, v := range scramVectors {
		t.Run(v.mech, func(t *testing.T) {
			m, err := newScram(v.mech, v.user, v.password, noBinding, false, 0, func() string { return v.nonce })
			if err != nil {
				t.Fatal(err)
			}
			first, err := m.start()
			if err != nil || string(first) != v.clientFirst {
				t.Fatalf("client-first %q, %v; want %q", first, err, v.clientFirst)
			}
			final, err := m.step([]byte(v.serverFirst))
			if err != nil || string(final) != v.clientFinal {
				t.Fatalf("client-final %q, %v; want %q", final, err, v.clientFinal)
			}
			if err := m.finish([]byte(v.serverFinal)); err != nil {
				t.Fatalf("server-final: %v", err)
			}
		})
		t.Run(v.mech+" forged server signature", func(t *testing.T) {
			m, _ := newScram(v.mech, v.user, v.password, noBinding, false, 0, func() string { return v.nonce })
			m.start()
			m.step([]byte(v.serverFirst))
			forged := v.serverFinal[:len(v.serverFinal)-5] + "AAAA="
			if err := m.finish([]byte(forged)); err == nil {
				t.Fatal("a forged server signature was accepted")
			}
		})
		t.Run(v.mech+" success without data", func(t *testing.T) {
			m, _ := newScram(v.mech, v.user, v.password, noBinding, false, 0, func() string { return v.nonce })
			m.start()
			m.step([]byte(v.serverFirst))
			if err := m.finish(nil); err == nil {
				t.Fatal("success without server-final-message was accepted")
			}
		})
	}
}

func TestScramGS2Flags(t *testing.T) {
	nonce := func() string { return "abc" }
	m, _ := newScram(ScramSHA256, "u", "p", noBinding, true, 0, nonce)
	if first, _ := m.start(); !strings.HasPrefix(string(first), "y,,n=u,") {
		t.Errorf("advertising client-first %q", first)
	}
	st := &tls.ConnectionState{Version: tls.VersionTLS12, TLSUnique: []byte("0123456789ab")}
	cb, err := channelBinding(st, nil, TLSUnique)
	if err != nil {
		t.Fatal(err)
	}
	m, _ = newScram(ScramSHA256Plus, "u", "p", cb, false, 0, nonce)
	if first, _ := m.start(); !strings.HasPrefix(string(first), "p=tls-unique,,n=u,") {
		t.Errorf("binding client-first %q", first)
	}
	if _, err := newScram("SCRAM-MD5", "u", "p", noBinding, false, 0, nil); err == nil {
		t.Error("unknown SCRAM variant accepted")
	}
	// Too few iterations are refused (RFC 5802 §5.1 recommends 4096).
	m, _ = newScram(ScramSHA1, "u", "p", noBinding, false, 0, nonce)
	m.start()
	if _, err := m.step([]byte("r=abcdef,s=QSXCR+Q6sek8bf92,i=1000")); err == nil {
		t.Error("1000 iterations accepted with the default minimum")
	}
	m, _ = newScram(ScramSHA1, "u", "p", noBinding, false, 1000, nonce)
	m.start()
	if _, err := m.step([]byte("r=abcdef,s=QSXCR+Q6sek8bf92,i=1000")); err != nil {
		t.Errorf("1000 iterations refused with MinSCRAMIterations 1000: %v", err)
	}
}

func TestPlain(t *testing.T) {
	m := &plainMech{user: "alice", pass: "sécret"}
	first, _ := m.start()
	if string(first) != "\x00alice\x00sécret" {
		t.Errorf("PLAIN initial response %q", first)
	}
}

func features(t *testing.T, mechs []string, cb []string) *xmlstream.Element {
	f := xmlstream.NewElement("features", xmlstream.NSStream)
	m := xmlstream.NewElement("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")
	for _, name := range mechs {
		m.AddChild(xmlstream.NewElement("mechanism", "urn:ietf:params:xml:ns:xmpp-sasl").AddText(name))
	}
	f.AddChild(m)
	if cb != nil {
		c := xmlstream.NewElement("sasl-channel-binding", nsSASLChannelBind)
		for _, typ := range cb {
			c.AddChild(xmlstream.NewElement("channel-binding", nsSASLChannelBind).SetAttr("type", typ))
		}
		f.AddChild(c)
	}
	return parse(t, serialize(f))
}

func TestChooseMechanism(t *testing.T) {
	// Without a live connection tls-exporter cannot be computed; these
	// cases use states where the binding is computable or clearly not.
	tls12 := &tls.ConnectionState{Version: tls.VersionTLS12, TLSUnique: []byte("0123456789ab")}
	all := []string{Plain, ScramSHA1, ScramSHA1Plus, ScramSHA256, ScramSHA256Plus, ScramSHA512, ScramSHA512Plus}
	cases := []struct {
		name   string
		st     *tls.ConnectionState
		mechs  []string
		cb     []string
		forced string
		want   string
	}{
		{"no TLS: no -PLUS", nil, all, nil, "", ScramSHA512},
		{"TLS 1.2 guess tls-server-end-point, no cert: no -PLUS", tls12, all, nil, "", ScramSHA512},
		{"advertised tls-unique on TLS 1.2", tls12, all, []string{TLSUnique}, "", ScramSHA512Plus},
		{"advertised exporter only on TLS 1.2", tls12, all, []string{TLSExporter}, "", ScramSHA512},
		{"strongest", nil, []string{ScramSHA1, Plain, ScramSHA256}, nil, "", ScramSHA256},
		{"PLAIN last", nil, []string{"X-OAUTH2", Plain}, nil, "", Plain},
		{"forced", nil, all, nil, ScramSHA1, ScramSHA1},
	}
	for _, tc := range cases {
		f := features(t, tc.mechs, tc.cb)
		got, err := chooseMechanism(offeredMechanisms(f), tc.forced, tc.st, f, "")
		if err != nil || got != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	f := features(t, []string{"X-OAUTH2"}, nil)
	if _, err := chooseMechanism(offeredMechanisms(f), "", nil, f, ""); err == nil || !strings.Contains(err.Error(), "no supported mechanism among X-OAUTH2") {
		t.Errorf("nothing supported: %v", err)
	}
	if _, err := chooseMechanism(offeredMechanisms(f), Plain, nil, f, ""); err == nil || !strings.Contains(err.Error(), "does not offer PLAIN") {
		t.Errorf("forced missing: %v", err)
	}
}

func TestChannelBindingErrors(t *testing.T) {
	if _, err := channelBinding(nil, nil, ""); err == nil {
		t.Error("binding without TLS")
	}
	tls13 := &tls.ConnectionState{Version: tls.VersionTLS13}
	if _, err := channelBinding(tls13, nil, TLSUnique); err == nil || !strings.Contains(err.Error(), "tls-unique") {
		t.Errorf("tls-unique on TLS 1.3: %v", err)
	}
	tls12 := &tls.ConnectionState{Version: tls.VersionTLS12}
	if _, err := channelBinding(tls12, nil, TLSExporter); err == nil || !strings.Contains(err.Error(), "needs TLS 1.3") {
		t.Errorf("tls-exporter on TLS 1.2: %v", err)
	}
	if _, err := channelBinding(tls12, nil, "tls-nonsense"); err == nil {
		t.Error("unknown binding type accepted")
	}
}

func TestSASLBase64(t *testing.T) {
	if encodeSASL(nil) != "=" || encodeSASL([]byte("a")) != "YQ==" {
		t.Error("encodeSASL")
	}
	for in, want := range map[string]string{"=": "", "": "", " YQ== ": "a"} {
		got, err := decodeSASL(in)
		if err != nil || string(got) != want {
			t.Errorf("decodeSASL(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := decodeSASL("!!"); err == nil {
		t.Error("bad base64 accepted")
	}
}

var noBinding = scram.ChannelBinding{}
