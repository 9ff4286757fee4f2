package sasl

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

// TestSCRAMVectors replays the exchanges of RFC 5802 §5 and RFC 7677 §3
// with the server nonce fixed, and checks every server message.
func TestSCRAMVectors(t *testing.T) {
	tests := []struct {
		rfc         string
		mech        string
		salt        string
		serverNonce string
		msgs        [4]string // client-first, server-first, client-final, server-final
	}{
		{
			rfc:         "RFC 5802 §5",
			mech:        SCRAMSHA1,
			salt:        "QSXCR+Q6sek8bf92",
			serverNonce: "3rfcNHYJY1ZVvWVs7j",
			msgs: [4]string{
				"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
				"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
				"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
				"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
			},
		},
		{
			rfc:         "RFC 7677 §3",
			mech:        SCRAMSHA256,
			salt:        "W22ZaJ0SNY7soEsUEjb6gQ==",
			serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			msgs: [4]string{
				"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
				"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
				"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
				"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.rfc, func(t *testing.T) {
			salt, err := base64.StdEncoding.DecodeString(tt.salt)
			if err != nil {
				t.Fatal(err)
			}
			h := hashOf(t, tt.mech)
			sec, err := deriveSecret(h, "pencil", salt, 4096)
			if err != nil {
				t.Fatal(err)
			}
			var cred Credentials
			*cred.secret(h) = sec
			st := &store{creds: map[string]Credentials{"user": cred}}
			srv, err := NewServer(Config{}, st.lookup)
			if err != nil {
				t.Fatal(err)
			}
			srv.nonce = func() string { return tt.serverNonce }

			conv, err := srv.Start(tt.mech, plainConn.server)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			s1, done, err := conv.Step(ctx, []byte(tt.msgs[0]))
			if err != nil || done || string(s1) != tt.msgs[1] {
				t.Fatalf("server-first-message = %q, %v, %v; want %q", s1, done, err, tt.msgs[1])
			}
			s2, done, err := conv.Step(ctx, []byte(tt.msgs[2]))
			if err != nil || !done || string(s2) != tt.msgs[3] {
				t.Fatalf("server-final-message = %q, %v, %v; want %q", s2, done, err, tt.msgs[3])
			}
			if conv.Username() != "user" {
				t.Errorf("Username() = %q", conv.Username())
			}
		})
	}
}

// TestSCRAMConversations runs full exchanges with an xdg-go client for every
// SCRAM mechanism over real TLS connections, with each channel binding
// type the connection offers.
func TestSCRAMConversations(t *testing.T) {
	conns := []struct {
		name string
		c    conn
	}{
		{"no TLS", plainConn},
		{"TLS 1.2 P-256", tlsConn(t, tls.VersionTLS12, certP256)},
		{"TLS 1.2 P-384", tlsConn(t, tls.VersionTLS12, certP384)},
		{"TLS 1.3 P-256", tlsConn(t, tls.VersionTLS13, certP256)},
		{"TLS 1.3 P-384", tlsConn(t, tls.VersionTLS13, certP384)},
		{"TLS 1.3 Ed25519", tlsConn(t, tls.VersionTLS13, certEd25519)},
	}
	srv, _ := newTestServer(t)
	for _, c := range conns {
		offered := srv.Mechanisms(c.c.server)
		cbTypes := srv.ChannelBindingTypes(c.c.server)
		ran := 0
		for _, m := range mechanisms {
			if m.hash == nil || !slices.Contains(offered, m.name) {
				continue
			}
			types := []string{""}
			if m.plus {
				types = cbTypes
			}
			for _, typ := range types {
				name := c.name + "/" + m.name
				if typ != "" {
					name += "/" + typ
				}
				t.Run(name, func(t *testing.T) {
					cl := scramClient(t, m.hash, "juliet", testPasswords["juliet"], "")
					cc := cl.NewConversation()
					if typ != "" {
						cc = cl.NewConversationWithChannelBinding(clientCB(t, &c.c.client, typ))
					}
					conv, err := exchange(t, srv, m.name, c.c.server, cc)
					if err != nil {
						t.Fatal(err)
					}
					if conv.Username() != "juliet" || conv.Mechanism() != m.name {
						t.Errorf("Username() = %q, Mechanism() = %q", conv.Username(), conv.Mechanism())
					}
				})
				ran++
			}
		}
		if ran == 0 {
			t.Errorf("%s: no SCRAM exchange", c.name)
		}
	}
}

// TestSCRAMNoInitialResponse starts SCRAM without initial response: the
// server answers with an empty challenge and then proceeds.
func TestSCRAMNoInitialResponse(t *testing.T) {
	srv, _ := newTestServer(t)
	ctx := context.Background()
	conv, err := srv.Start(SCRAMSHA256, plainConn.server)
	if err != nil {
		t.Fatal(err)
	}
	ch, done, err := conv.Step(ctx, nil)
	if err != nil || done || len(ch) != 0 {
		t.Fatalf("Step(empty) = %q, %v, %v; want empty challenge", ch, done, err)
	}
	cc := scramClient(t, hashSHA256, "juliet", testPasswords["juliet"], "").NewConversation()
	c1, _ := cc.Step("")
	s1, _, err := conv.Step(ctx, []byte(c1))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := cc.Step(string(s1))
	if err != nil {
		t.Fatal(err)
	}
	s2, done, err := conv.Step(ctx, []byte(c2))
	if err != nil || !done {
		t.Fatalf("final: %v, %v", done, err)
	}
	if _, err := cc.Step(string(s2)); err != nil || !cc.Valid() {
		t.Fatal("client rejects server")
	}

	// A second empty message is not a client-first-message.
	conv, _ = srv.Start(SCRAMSHA256, plainConn.server)
	conv.Step(ctx, []byte{})
	_, _, err = conv.Step(ctx, []byte{})
	wantFailure(t, err, MalformedRequest)
}

func TestSCRAMAuthFailures(t *testing.T) {
	tls13 := tlsConn(t, tls.VersionTLS13, certP256)
	tls12 := tlsConn(t, tls.VersionTLS12, certP256)
	tls12NoCert := tls12
	tls12NoCert.server.Certificate = nil
	other13 := tlsConn(t, tls.VersionTLS13, certP256)
	otherCert := tlsConn(t, tls.VersionTLS13, certP384)

	srv, _ := newTestServer(t)
	noPlus, _ := newTestServer(t, SCRAMSHA256, SCRAMSHA1, Plain)
	pass := testPasswords["juliet"]
	cl := func(user, pass, authzid string) *scram.Client {
		return scramClient(t, hashSHA256, user, pass, authzid)
	}

	tests := []struct {
		name string
		srv  *Server
		mech string
		ci   ConnInfo
		cc   *scram.ClientConversation
		want Condition // "" for success
	}{
		{"wrong password", srv, SCRAMSHA256, plainConn.server, cl("juliet", "wrong", "").NewConversation(), NotAuthorized},
		{"unknown user", srv, SCRAMSHA256, plainConn.server, cl("nobody", pass, "").NewConversation(), NotAuthorized},
		{"invalid username", srv, SCRAMSHA256, plainConn.server, cl("jul@iet", pass, "").NewConversation(), NotAuthorized},
		{"authzid own bare JID", srv, SCRAMSHA256, plainConn.server, cl("juliet", pass, "juliet@example.com").NewConversation(), ""},
		{"authzid own bare JID unnormalized", srv, SCRAMSHA256, plainConn.server, cl("juliet", pass, "Juliet@Example.COM").NewConversation(), ""},
		{"authzid other user", srv, SCRAMSHA256, plainConn.server, cl("juliet", pass, "romeo@example.com").NewConversation(), InvalidAuthzID},
		{"authzid full JID", srv, SCRAMSHA256, plainConn.server, cl("juliet", pass, "juliet@example.com/balcony").NewConversation(), InvalidAuthzID},
		{"authzid other domain", srv, SCRAMSHA256, plainConn.server, cl("juliet", pass, "juliet@example.org").NewConversation(), InvalidAuthzID},
		{"authzid invalid", srv, SCRAMSHA256, plainConn.server, cl("juliet", pass, "@@").NewConversation(), InvalidAuthzID},
		{"authzid domain", srv, SCRAMSHA256, plainConn.server, cl("juliet", pass, "example.com").NewConversation(), InvalidAuthzID},

		// Channel binding, RFC 5802 §6.
		{"tampered tls-exporter", srv, SCRAMSHA256Plus, tls13.server,
			cl("juliet", pass, "").NewConversationWithChannelBinding(clientCB(t, &other13.client, TLSExporter)), NotAuthorized},
		{"tampered tls-server-end-point", srv, SCRAMSHA256Plus, tls13.server,
			cl("juliet", pass, "").NewConversationWithChannelBinding(clientCB(t, &otherCert.client, TLSServerEndPoint)), NotAuthorized},
		{"tls-exporter on TLS 1.2", srv, SCRAMSHA256Plus, tls12.server,
			cl("juliet", pass, "").NewConversationWithChannelBinding(clientCB(t, &tls12.client, TLSExporter)), NotAuthorized},
		{"tls-unique", srv, SCRAMSHA256Plus, tls13.server,
			cl("juliet", pass, "").NewConversationWithChannelBinding(scram.NewTLSUniqueBinding([]byte("finished"))), NotAuthorized},
		{"downgrade: y while PLUS offered", srv, SCRAMSHA256, tls13.server,
			cl("juliet", pass, "").NewConversationAdvertisingChannelBinding(), NotAuthorized},
		{"y without PLUS configured", noPlus, SCRAMSHA256, tls13.server,
			cl("juliet", pass, "").NewConversationAdvertisingChannelBinding(), ""},
		{"y without TLS", srv, SCRAMSHA256, plainConn.server,
			cl("juliet", pass, "").NewConversationAdvertisingChannelBinding(), ""},
		{"y without channel binding type", srv, SCRAMSHA256, noBinding(tls12NoCert.server),
			cl("juliet", pass, "").NewConversationAdvertisingChannelBinding(), ""},
		{"p= on non-PLUS mechanism", srv, SCRAMSHA256, tls13.server,
			cl("juliet", pass, "").NewConversationWithChannelBinding(clientCB(t, &tls13.client, TLSExporter)), MalformedRequest},
		{"n on PLUS mechanism", srv, SCRAMSHA256Plus, tls13.server, cl("juliet", pass, "").NewConversation(), MalformedRequest},
		{"y on PLUS mechanism", srv, SCRAMSHA256Plus, tls13.server,
			cl("juliet", pass, "").NewConversationAdvertisingChannelBinding(), MalformedRequest},
		{"wrong password with channel binding", srv, SCRAMSHA256Plus, tls13.server,
			cl("juliet", "wrong", "").NewConversationWithChannelBinding(clientCB(t, &tls13.client, TLSExporter)), NotAuthorized},
	}
	// why has the expected reason for some failures.
	why := map[string]string{
		"wrong password":                      "wrong password",
		"unknown user":                        "unknown user",
		"tampered tls-exporter":               "channel bindings do not match",
		"tampered tls-server-end-point":       "channel bindings do not match",
		"tls-exporter on TLS 1.2":             "unsupported channel binding type",
		"tls-unique":                          "unsupported channel binding type",
		"downgrade: y while PLUS offered":     "downgrade",
		"p= on non-PLUS mechanism":            "requires a -PLUS mechanism",
		"n on PLUS mechanism":                 "requires channel binding",
		"wrong password with channel binding": "wrong password",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv, err := exchange(t, tt.srv, tt.mech, tt.ci, tt.cc)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if conv.Username() != "juliet" {
					t.Errorf("Username() = %q", conv.Username())
				}
				return
			}
			wantFailure(t, err, tt.want)
			if w := why[tt.name]; !strings.Contains(err.Error(), w) {
				t.Errorf("failed for the wrong reason: %v, want %q", err, w)
			}
			if conv != nil && conv.Username() != "" {
				t.Errorf("Username() = %q after failure", conv.Username())
			}
		})
	}
}

// TestSCRAMUnknownUserLikeWrongPassword checks that an unknown user fails
// exactly like a wrong password: at the final step, after a normal-looking
// server-first-message with a stable salt.
func TestSCRAMUnknownUserLikeWrongPassword(t *testing.T) {
	srv, _ := newTestServer(t)
	ctx := context.Background()
	first := func(user string) (string, *Conversation) {
		t.Helper()
		conv, err := srv.Start(SCRAMSHA256, plainConn.server)
		if err != nil {
			t.Fatal(err)
		}
		s1, _, err := conv.Step(ctx, []byte("n,,n="+user+",r=abcdef"))
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		return string(s1), conv
	}
	salt := func(s1 string) string {
		_, rest, _ := strings.Cut(s1, ",s=")
		s, _, _ := strings.Cut(rest, ",")
		return s
	}
	a1, _ := first("nobody")
	a2, conv := first("nobody")
	b, _ := first("somebody")
	known, _ := first("juliet")
	if salt(a1) != salt(a2) {
		t.Errorf("unknown user's salt changes: %s, %s", a1, a2)
	}
	if salt(a1) == salt(b) {
		t.Errorf("two unknown users share a salt: %s, %s", a1, b)
	}
	if len(salt(a1)) != len(salt(known)) || !strings.HasSuffix(a1, ",i=4096") {
		t.Errorf("unknown user's server-first-message %q does not look like %q", a1, known)
	}
	nonce := strings.TrimPrefix(strings.SplitN(a2, ",", 2)[0], "r=")
	_, _, err := conv.Step(ctx, []byte("c=biws,r="+nonce+",p="+base64.StdEncoding.EncodeToString(make([]byte, 32))))
	wantFailure(t, err, NotAuthorized)
	if !errors.Is(err, ErrUnknownUser) {
		t.Errorf("cause = %v, want ErrUnknownUser", err)
	}
}

func TestSCRAMMalformed(t *testing.T) {
	tls13 := tlsConn(t, tls.VersionTLS13, certP256)
	srv, st := newTestServer(t)
	ctx := context.Background()
	first := []struct {
		msg  string
		mech string
		want Condition
	}{
		{"garbage", SCRAMSHA256, MalformedRequest},
		{"n,,n=juliet", SCRAMSHA256, MalformedRequest},
		{"n,,n=juliet,", SCRAMSHA256, MalformedRequest},
		{"n,,n=juliet,r=", SCRAMSHA256, MalformedRequest},
		{"n,,n=juliet,x=abc", SCRAMSHA256, MalformedRequest},
		{"n,,n=juliet,r=a b", SCRAMSHA256, MalformedRequest},
		{"x,,n=juliet,r=abc", SCRAMSHA256, MalformedRequest},
		{"n,x=y,n=juliet,r=abc", SCRAMSHA256, MalformedRequest},
		{"n,a=,n=juliet,r=abc", SCRAMSHA256, MalformedRequest},
		{"n,a=juliet=40example.com,n=juliet,r=abc", SCRAMSHA256, MalformedRequest},
		{"n,,m=ext,n=juliet,r=abc", SCRAMSHA256, MalformedRequest},
		{"n,,x=juliet,r=abc", SCRAMSHA256, MalformedRequest},
		{"n,,n=,r=abc", SCRAMSHA256, MalformedRequest},
		{"n,,n=jul=iet,r=abc", SCRAMSHA256, MalformedRequest},
		{"n,,n=jul=2,r=abc", SCRAMSHA256, MalformedRequest},
		{",,n=juliet,r=abc", SCRAMSHA256, MalformedRequest},
		{"p=,,n=juliet,r=abc", SCRAMSHA256Plus, MalformedRequest},
		{"p=tls exporter,,n=juliet,r=abc", SCRAMSHA256Plus, MalformedRequest},
		{"p=tls-foo,,n=juliet,r=abc", SCRAMSHA256Plus, NotAuthorized},
		{"n,,n=\xff,r=abc", SCRAMSHA256, NotAuthorized},
		{"n,,n=a\x00b,r=abc", SCRAMSHA256, NotAuthorized},
		{"n,,n=jul/iet,r=abc", SCRAMSHA256, NotAuthorized},
		{"n,a=\xff,n=juliet,r=abc", SCRAMSHA256, InvalidAuthzID},
	}
	for _, tt := range first {
		conv, err := srv.Start(tt.mech, tls13.server)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = conv.Step(ctx, []byte(tt.msg))
		if err == nil {
			t.Errorf("%q: no error", tt.msg)
			continue
		}
		var f *Failure
		if !errors.As(err, &f) || f.Condition != tt.want {
			t.Errorf("%q: %v, want %s", tt.msg, err, tt.want)
		}
		if _, _, err := conv.Step(ctx, []byte("n,,n=juliet,r=abc")); err == nil {
			t.Errorf("%q: Step after failure succeeds", tt.msg)
		}
	}
	st.mu.Lock()
	asked := len(st.asked)
	st.mu.Unlock()
	if asked != 0 {
		t.Errorf("looked up %d users for malformed messages", asked)
	}

	// A valid username with '=' and ',' escaped.
	conv, _ := srv.Start(SCRAMSHA256, tls13.server)
	if _, _, err := conv.Step(ctx, []byte("n,,n=A=2Cb=3Dc,r=abc,x=ext")); err != nil {
		t.Errorf("escaped username: %v", err)
	}
	st.mu.Lock()
	if got := st.asked[len(st.asked)-1]; got != "a,b=c" {
		t.Errorf("looked up %q, want %q", got, "a,b=c")
	}
	st.mu.Unlock()

	final := []struct {
		msg  func(nonce string) string
		want Condition
	}{
		{func(string) string { return "" }, MalformedRequest},
		{func(string) string { return "garbage" }, MalformedRequest},
		{func(n string) string { return "c=biws,r=" + n }, MalformedRequest},
		{func(n string) string { return "c=***,r=" + n + ",p=AAAA" }, MalformedRequest},
		{func(n string) string { return "c=biws,r=" + n + ",p=***" }, MalformedRequest},
		{func(n string) string { return "r=" + n + ",c=biws,p=AAAA" }, MalformedRequest},
		{func(n string) string { return "c=biws,r=" + n + ",p=AAAA" }, NotAuthorized},
		{func(n string) string { return "c=biws,r=" + n + "x,p=AAAA" }, NotAuthorized},
		{func(n string) string { return "c=eSws,r=" + n + ",p=AAAA" }, NotAuthorized},
	}
	for i, tt := range final {
		conv, _ := srv.Start(SCRAMSHA256, plainConn.server)
		s1, _, err := conv.Step(ctx, []byte("n,,n=juliet,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		nonce := strings.TrimPrefix(strings.SplitN(string(s1), ",", 2)[0], "r=")
		_, done, err := conv.Step(ctx, []byte(tt.msg(nonce)))
		if done || err == nil {
			t.Errorf("final %d: accepted", i)
			continue
		}
		var f *Failure
		if !errors.As(err, &f) || f.Condition != tt.want {
			t.Errorf("final %d %q: %v, want %s", i, tt.msg(nonce), err, tt.want)
		}
	}
}

func TestSCRAMMissingSecret(t *testing.T) {
	c := testCredentials()["juliet"]
	c.SHA512 = Secret{}
	st := &store{creds: map[string]Credentials{"juliet": c}}
	srv, err := NewServer(Config{}, st.lookup)
	if err != nil {
		t.Fatal(err)
	}
	pass := testPasswords["juliet"]
	_, err = exchange(t, srv, SCRAMSHA512, plainConn.server, scramClient(t, hashSHA512, "juliet", pass, "").NewConversation())
	wantFailure(t, err, NotAuthorized)
	if !errors.Is(err, errNoSecret) {
		t.Errorf("cause = %v", err)
	}
	if _, err := exchange(t, srv, SCRAMSHA256, plainConn.server, scramClient(t, hashSHA256, "juliet", pass, "").NewConversation()); err != nil {
		t.Error(err)
	}

	// A corrupt secret is a server problem.
	c.SHA256.StoredKey = c.SHA256.StoredKey[:5]
	st.creds["juliet"] = c
	_, err = exchange(t, srv, SCRAMSHA256, plainConn.server, scramClient(t, hashSHA256, "juliet", pass, "").NewConversation())
	wantFailure(t, err, TemporaryAuthFailure)
}

func TestLookupError(t *testing.T) {
	srv, st := newTestServer(t)
	st.err = errors.New("database on fire")
	pass := testPasswords["juliet"]
	_, err := exchange(t, srv, SCRAMSHA256, plainConn.server, scramClient(t, hashSHA256, "juliet", pass, "").NewConversation())
	wantFailure(t, err, TemporaryAuthFailure)
	if !errors.Is(err, st.err) {
		t.Errorf("cause lost: %v", err)
	}

	c := tlsConn(t, tls.VersionTLS13, certP256)
	conv, err := srv.Start(Plain, c.server)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = conv.Step(context.Background(), []byte("\x00juliet\x00"+pass))
	wantFailure(t, err, TemporaryAuthFailure)
}

func TestUsernameCaseFolding(t *testing.T) {
	srv, st := newTestServer(t)
	c := tlsConn(t, tls.VersionTLS13, certP256)
	pass := testPasswords["juliet"]
	for _, user := range []string{"Juliet", "JULIET", "ｊｕｌｉｅｔ"} {
		conv, err := exchange(t, srv, SCRAMSHA256Plus, c.server,
			scramClient(t, hashSHA256, user, pass, "").NewConversationWithChannelBinding(clientCB(t, &c.client, TLSExporter)))
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if conv.Username() != "juliet" {
			t.Errorf("%s: Username() = %q", user, conv.Username())
		}
		conv, err = c.plainLogin(srv, "", user, pass)
		if err != nil {
			t.Fatalf("PLAIN %s: %v", user, err)
		}
		if conv.Username() != "juliet" {
			t.Errorf("PLAIN %s: Username() = %q", user, conv.Username())
		}
	}
	for _, u := range st.asked {
		if u != "juliet" {
			t.Errorf("looked up %q", u)
		}
	}
}

func TestStepAfterDone(t *testing.T) {
	srv, _ := newTestServer(t)
	conv, err := exchange(t, srv, SCRAMSHA1, plainConn.server, scramClient(t, hashSHA1, "juliet", testPasswords["juliet"], "").NewConversation())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = conv.Step(context.Background(), []byte("n,,n=juliet,r=abc"))
	wantFailure(t, err, MalformedRequest)
	if conv.Username() != "juliet" {
		t.Errorf("Username() = %q", conv.Username())
	}
}
