package sasl

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
)

// plainLogin runs a PLAIN exchange with the initial response.
func (c conn) plainLogin(srv *Server, authzid, user, pass string) (*Conversation, error) {
	conv, err := srv.Start(Plain, c.server)
	if err != nil {
		return nil, err
	}
	reply, done, err := conv.Step(context.Background(), []byte(authzid+"\x00"+user+"\x00"+pass))
	if err != nil {
		return conv, err
	}
	if !done || len(reply) != 0 {
		return conv, errors.New("PLAIN: not done or non-empty success data")
	}
	return conv, nil
}

func TestPlain(t *testing.T) {
	srv, _ := newTestServer(t)
	c := tlsConn(t, tls.VersionTLS12, certP256)
	pass := testPasswords["juliet"]
	tests := []struct {
		name                string
		authzid, user, pass string
		want                Condition
	}{
		{"ok", "", "juliet", pass, ""},
		{"authzid", "juliet@example.com", "juliet", pass, ""},
		{"non-ASCII password", "", "romeo", testPasswords["romeo"], ""},
		{"non-ASCII space in password", "", "romeo", "pässwörd\u00a0ünïcode", ""}, // OpaqueString maps it to U+0020
		{"escaped name is literal in PLAIN", "", "a,b=c", testPasswords["a,b=c"], ""},
		{"wrong password", "", "juliet", "r0m30myr0m31", NotAuthorized},
		{"unknown user", "", "nobody", pass, NotAuthorized},
		{"invalid user", "", "jul@iet", pass, NotAuthorized},
		{"bad authzid", "romeo@example.com", "juliet", pass, InvalidAuthzID},
		{"password with control character", "", "juliet", "r0m30\x01", NotAuthorized},
		{"empty user", "", "", pass, MalformedRequest},
		{"empty password", "", "juliet", "", MalformedRequest},
		{"extra NUL", "", "juliet", pass + "\x00", MalformedRequest},
		{"invalid UTF-8", "", "juliet", "\xff", MalformedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv, err := c.plainLogin(srv, tt.authzid, tt.user, tt.pass)
			if tt.want != "" {
				wantFailure(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if conv.Username() != tt.user {
				t.Errorf("Username() = %q", conv.Username())
			}
		})
	}

	for _, msg := range []string{"juliet", "juliet\x00" + pass, "\x00\x00"} {
		conv, err := srv.Start(Plain, c.server)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = conv.Step(context.Background(), []byte(msg))
		wantFailure(t, err, MalformedRequest)
	}
}

// TestPlainNoInitialResponse: PLAIN without initial response gets an empty
// challenge first.
func TestPlainNoInitialResponse(t *testing.T) {
	srv, _ := newTestServer(t)
	c := tlsConn(t, tls.VersionTLS13, certP256)
	conv, err := srv.Start(Plain, c.server)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ch, done, err := conv.Step(ctx, nil)
	if err != nil || done || len(ch) != 0 {
		t.Fatalf("Step(empty) = %q, %v, %v", ch, done, err)
	}
	if _, done, err := conv.Step(ctx, []byte("\x00juliet\x00"+testPasswords["juliet"])); err != nil || !done {
		t.Fatalf("Step = %v, %v", done, err)
	}
}

// TestPlainAndSCRAMSamePassword: credentials made once accept the same
// password through PLAIN and every SCRAM hash, and PLAIN falls back to
// other hashes when SHA-256 is missing.
func TestPlainAndSCRAMSamePassword(t *testing.T) {
	c := tlsConn(t, tls.VersionTLS13, certP256)
	for _, user := range []string{"juliet", "romeo"} {
		pass := testPasswords[user]
		full := testCredentials()[user]
		for _, drop := range [][]*hashAlg{nil, {hashSHA256}, {hashSHA256, hashSHA512}} {
			cred := full
			for _, h := range drop {
				*cred.secret(h) = Secret{}
			}
			st := &store{creds: map[string]Credentials{user: cred}}
			srv, err := NewServer(Config{}, st.lookup)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.plainLogin(srv, "", user, pass); err != nil {
				t.Errorf("%s, without %d hashes: PLAIN: %v", user, len(drop), err)
			}
			if _, err := c.plainLogin(srv, "", user, pass+"x"); err == nil {
				t.Errorf("%s, without %d hashes: PLAIN accepts a wrong password", user, len(drop))
			}
		}
		srv, _ := newTestServer(t)
		for _, h := range hashes {
			if _, err := exchange(t, srv, h.scheme, c.server, scramClient(t, h, user, pass, "").NewConversation()); err != nil {
				t.Errorf("%s %s: %v", user, h.scheme, err)
			}
		}
	}

	// No secret at all: fails like a wrong password.
	st := &store{creds: map[string]Credentials{"juliet": {}}}
	srv, _ := NewServer(Config{}, st.lookup)
	_, err := c.plainLogin(srv, "", "juliet", testPasswords["juliet"])
	wantFailure(t, err, NotAuthorized)
}

func TestPlainNeedsTLS(t *testing.T) {
	srv, st := newTestServer(t)
	_, err := plainConn.plainLogin(srv, "", "juliet", testPasswords["juliet"])
	wantFailure(t, err, EncryptionRequired)
	if len(st.asked) != 0 {
		t.Error("looked up a user")
	}
	// A handshake that has not completed is not TLS.
	ci := plainConn.server
	ci.TLS = &tls.ConnectionState{Version: tls.VersionTLS13}
	if _, err := srv.Start(Plain, ci); err == nil {
		t.Error("PLAIN started before the TLS handshake completed")
	}
}
