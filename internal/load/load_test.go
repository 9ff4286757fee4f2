package load

import (
	"context"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func TestRegistry(t *testing.T) {
	want := []string{"login", "mam", "muc-light", "one-to-one", "presence"}
	got := Names()
	for _, n := range want {
		s, ok := Lookup(n)
		if !ok || s.Name != n || s.New == nil || s.Doc == "" {
			t.Errorf("scenario %q: %+v, %v", n, s, ok)
		}
	}
	if len(got) < len(want) {
		t.Fatalf("Names() = %v", got)
	}
	if _, ok := Lookup("nope"); ok {
		t.Fatal("found an unknown scenario")
	}
	Register(Scenario{Name: "test-extra", Doc: "x", New: func(*Run) Behaviour { return Nop{} }})
	// Unregistered at the end, so that the test can run again (-count).
	t.Cleanup(func() { registryMu.Lock(); delete(registry, "test-extra"); registryMu.Unlock() })
	if _, ok := Lookup("test-extra"); !ok {
		t.Fatal("a registered scenario is not found")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a name twice did not panic")
		}
	}()
	Register(Scenario{Name: "test-extra", New: func(*Run) Behaviour { return Nop{} }})
}

func TestPacer(t *testing.T) {
	start := time.Unix(1000, 0)
	p := NewPacer(start, 200) // one every 5 ms
	if got := p.Due(0); !got.Equal(start) {
		t.Fatalf("event 0 due at %v", got)
	}
	if got := p.Due(200); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("event 200 due at %v", got)
	}
	if got := p.Due(1); !got.Equal(start.Add(5 * time.Millisecond)) {
		t.Fatalf("event 1 due at %v", got)
	}
	// Open loop: a late event is due at once, and its lag is reported.
	past := NewPacer(time.Now().Add(-time.Second), 10)
	lag, ok := past.Wait(context.Background(), 5) // due half a second ago
	if !ok || lag < 400*time.Millisecond {
		t.Fatalf("Wait of a past event: lag %v, ok %v", lag, ok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := NewPacer(time.Now().Add(time.Hour), 1).Wait(ctx, 0); ok {
		t.Fatal("Wait ignored a cancelled context")
	}
	if got := NewPacer(start, 0).Due(1 << 40); !got.Equal(start) {
		t.Fatalf("unpaced event due at %v, want %v", got, start)
	}
}

func TestStampRoundTrip(t *testing.T) {
	before := time.Now().Truncate(time.Microsecond)
	b := Message("bob@localhost", "chat", "1-1", 50)
	el, err := xmlstream.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	sent, ok, delayed := Stamp(el)
	if !ok || delayed || sent.Before(before) || time.Since(sent) > time.Second {
		t.Fatalf("stamp %v ok %v delayed %v", sent, ok, delayed)
	}
	if got := len(el.ChildText("body", "jabber:client")); got != 50 {
		t.Fatalf("body of %d bytes", got)
	}
	el, _ = xmlstream.Parse([]byte("<message xmlns='jabber:client'><ts xmlns='" + NSStamp + "' us='5'/><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>"))
	if _, ok, delayed := Stamp(el); !ok || !delayed {
		t.Fatal("a delayed stanza is not seen as delayed")
	}
	el, _ = xmlstream.Parse(Presence("bob@localhost", "away <&>"))
	if _, ok, _ := Stamp(el); !ok || el.ChildText("status", "jabber:client") != "away <&>" {
		t.Fatalf("presence %s", el)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Scenario: "one-to-one", Users: 10, Addr: "127.0.0.1:5222", Sources: 4}
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.To != 10 || c.UserName(3) != "load3" || c.Password(3) != "loadpass3" {
		t.Fatalf("defaults %+v", c)
	}
	if ip := c.source(5); ip.String() != "127.0.0.2" {
		t.Fatalf("source of user 5: %v", ip)
	}
	c.Addr = "wss://127.0.0.1:5281/ws-xmpp"
	if ip := c.source(6); ip.String() != "127.0.0.3" {
		t.Fatalf("source of user 6 over WebSocket: %v", ip)
	}
	c.Addr = "xmpp.example.com:5222"
	if ip := c.source(6); ip != nil {
		t.Fatalf("source address %v for a remote target", ip)
	}
	for _, bad := range []Config{
		{Scenario: "nope", Users: 1},
		{Scenario: "login", Users: 10, From: 5, To: 5},
		{Scenario: "login", Users: 10, To: 11},
		{Scenario: "login", Users: 10, Provision: "cmd"},
		{Scenario: "login", Users: 10, UserPattern: "fixed"},
	} {
		if err := bad.defaults(); err == nil {
			t.Errorf("no error for %+v", bad)
		}
	}
}
