package sasl

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
)

// FuzzStep feeds arbitrary first and second client messages to every
// mechanism on a TLS 1.3 connection offering both channel binding types.
// Step must not panic, must fail with a *Failure only, and must not
// authenticate anyone: the fuzzer cannot know the password.
func FuzzStep(f *testing.F) {
	c := tlsConn(f, tls.VersionTLS13, certP256)
	// One iteration keeps PLAIN fast; SCRAM does not run PBKDF2.
	cheap := make(map[string]Credentials)
	for u, p := range testPasswords {
		pw, _ := preparePassword(p + "-unguessable")
		var cred Credentials
		for _, h := range hashes {
			s, err := deriveSecret(h, pw, []byte("salt"), 1)
			if err != nil {
				f.Fatal(err)
			}
			*cred.secret(h) = s
		}
		cheap[u] = cred
	}
	st := &store{creds: cheap}
	srv, err := NewServer(Config{}, st.lookup)
	if err != nil {
		f.Fatal(err)
	}
	mechs := DefaultMechanisms()

	for i, seed := range [][2]string{
		{"n,,n=juliet,r=abc", "c=biws,r=abc,p=AAAA"},
		{"y,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "c=eSws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="},
		{"p=tls-exporter,a=juliet@example.com,n=Juliet,r=x,ext=1", "c=cD10bHMtZXhwb3J0ZXIsLA==,r=x,p=AAAA"},
		{"p=tls-server-end-point,,n=a=2Cb=3Dc,r=nonce", "c=,r=,p="},
		{"n,a=x=2C,n==3D,r=a", ""},
		{"", "n,,n=juliet,r=abc"},
		{"\x00juliet\x00r0m30myr0m30", ""},
		{"juliet@example.com\x00juliet\x00pencil", ""},
	} {
		for m := range mechs {
			f.Add(uint8(m+i), []byte(seed[0]), []byte(seed[1]))
		}
	}
	f.Fuzz(func(t *testing.T, mech uint8, first, second []byte) {
		conv, err := srv.Start(mechs[int(mech)%len(mechs)], c.server)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, msg := range [][]byte{first, second} {
			_, done, err := conv.Step(ctx, msg)
			if err != nil {
				var f *Failure
				if !errors.As(err, &f) {
					t.Fatalf("error %v is not a Failure", err)
				}
				if conv.Username() != "" {
					t.Fatal("Username set after failure")
				}
				return
			}
			if done {
				t.Fatalf("authenticated %q", conv.Username())
			}
		}
	})
}
