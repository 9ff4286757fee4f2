package relay

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

func dial(t *testing.T, addr string, id uint32) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	if _, err := c.Write(b[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, b[:1]); err != nil || b[0] != 1 {
		t.Fatalf("no acknowledgement: %v", err)
	}
	return c
}

func frame(dest uint32, payload string) []byte {
	b := make([]byte, 6, 6+len(payload))
	binary.BigEndian.PutUint32(b, dest)
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	return append(b, payload...)
}

func read(t *testing.T, c net.Conn) string {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(h[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRelayForwards(t *testing.T) {
	addr, stop, err := StartLocal()
	if err != nil {
		t.Fatal(err)
	}
	a := dial(t, addr, 1)
	b := dial(t, addr, 2)
	// To nobody: dropped; then to b, and back to a.
	if _, err := a.Write(append(frame(99, "lost"), frame(2, "hello b")...)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b); got != "hello b" {
		t.Fatalf("b got %q", got)
	}
	if _, err := b.Write(frame(1, "hello a")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, a); got != "hello a" {
		t.Fatalf("a got %q", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Serve closed the connections.
	if _, err := io.ReadFull(a, make([]byte, 1)); err == nil {
		t.Fatal("a connection is still open after Serve returned")
	}
}
