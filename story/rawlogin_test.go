package story

import (
	"context"
	"errors"
	"testing"
)

func TestDialRawLogin(t *testing.T) {
	fs := newFakeServer(t)
	acct := fs.addUser("alice")
	for _, tr := range []Transport{TCP, DirectTLS} {
		r, full, err := DialRawLogin(context.Background(), fs, tr, acct, "raw")
		if err != nil || full.String() != "alice@fake.test/raw" {
			t.Fatalf("%s: %s, %v", tr, full, err)
		}
		if st, ok := r.ConnectionState(); !ok || !st.HandshakeComplete {
			t.Fatalf("%s: no TLS", tr)
		}
		r.Send("</stream:stream>")
		if err := r.ExpectClosed(); err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
	}
	// Without a resource: logged in, nothing bound.
	r, full, err := DialRawLogin(context.Background(), fs, DirectTLS, acct, "")
	if err != nil || !full.IsZero() {
		t.Fatalf("no resource: %s, %v", full, err)
	}
	r.Close()
	acct.Password = "wrong"
	r, _, err = DialRawLogin(context.Background(), fs, DirectTLS, acct, "raw")
	var se *SASLError
	if !errors.As(err, &se) || se.Condition != "not-authorized" || r != nil {
		t.Fatalf("wrong password: %v, %v", r, err)
	}
}
