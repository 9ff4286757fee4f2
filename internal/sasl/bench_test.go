package sasl

import (
	"context"
	"crypto/tls"
	"testing"
)

// benchSCRAM runs one full SCRAM exchange per op, client side included
// (xdg-go, with its derived keys cached so that neither side runs PBKDF2).
func benchSCRAM(b *testing.B, mech string, ci ConnInfo, newConv func() clientConv) {
	srv, _ := newTestServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cc := newConv()
		conv, err := srv.Start(mech, ci)
		if err != nil {
			b.Fatal(err)
		}
		c1, _ := cc.Step("")
		s1, _, err := conv.Step(ctx, []byte(c1))
		if err != nil {
			b.Fatal(err)
		}
		c2, err := cc.Step(string(s1))
		if err != nil {
			b.Fatal(err)
		}
		s2, done, err := conv.Step(ctx, []byte(c2))
		if err != nil || !done {
			b.Fatal(err)
		}
		if _, err := cc.Step(string(s2)); err != nil {
			b.Fatal(err)
		}
	}
}

type clientConv interface{ Step(string) (string, error) }

func BenchmarkSCRAMSHA256(b *testing.B) {
	cl := scramClient(b, hashSHA256, "juliet", testPasswords["juliet"], "")
	benchSCRAM(b, SCRAMSHA256, plainConn.server, func() clientConv { return cl.NewConversation() })
}

func BenchmarkSCRAMSHA256PlusExporter(b *testing.B) {
	c := tlsConn(b, tls.VersionTLS13, certP256)
	cl := scramClient(b, hashSHA256, "juliet", testPasswords["juliet"], "")
	cb := clientCB(b, &c.client, TLSExporter)
	benchSCRAM(b, SCRAMSHA256Plus, c.server, func() clientConv { return cl.NewConversationWithChannelBinding(cb) })
}

// BenchmarkPlain is dominated by PBKDF2-SHA-256 with DefaultIterations.
func BenchmarkPlain(b *testing.B) {
	c := tlsConn(b, tls.VersionTLS13, certP256)
	srv, _ := newTestServer(b)
	msg := []byte("\x00juliet\x00" + testPasswords["juliet"])
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		conv, err := srv.Start(Plain, c.server)
		if err != nil {
			b.Fatal(err)
		}
		if _, done, err := conv.Step(ctx, msg); err != nil || !done {
			b.Fatal(err)
		}
	}
}
