package xmppc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/load/relay"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// In-band registration creates the account (and fills the key cache),
// a second registration of the same name is not an error, and a wrong
// password afterwards fails the login with the SASL condition.
func TestRegisterThenLogin(t *testing.T) {
	srv := servertest.Start(t, servertest.Modules("[modules.register]\nenabled = true\nregistrations_per_minute = 0"))
	ctx := context.Background()
	addr, _ := srv.Addr("tcp")
	keys := &xmppc.KeyCache{}
	o := xmppc.Options{Addr: addr, Domain: srv.Domain(), Keys: keys}
	if err := xmppc.Register(ctx, o, "carol", "carolpass1"); err != nil {
		t.Fatal(err)
	}
	if err := xmppc.Register(ctx, o, "carol", "carolpass1"); err != nil {
		t.Fatalf("registering an existing account: %v", err)
	}
	derived := keys.Derivations()
	if derived == 0 {
		t.Fatal("the registration's login put no key in the cache")
	}
	c, _, err := xmppc.Dial(ctx, o, "carol", "carolpass1")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if keys.Derivations() != derived {
		t.Errorf("a login with a cached key derived again: %d, then %d", derived, keys.Derivations())
	}
	if _, _, err := xmppc.Dial(ctx, o, "carol", "wrong-password"); err == nil || !strings.Contains(err.Error(), "not-authorized") {
		t.Fatalf("login with a wrong password: %v", err)
	}
}

// IQ hands the answer to its caller, not to Run's callback; an error
// answer gives its condition.
func TestIQ(t *testing.T) {
	srv := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.CreateUser(ctx, "alice", "alicepass"); err != nil {
		t.Fatal(err)
	}
	addr, _ := srv.Addr("tcp")
	c, _, err := xmppc.Dial(ctx, xmppc.Options{Addr: addr, Domain: srv.Domain()}, "alice", "alicepass")
	if err != nil {
		t.Fatal(err)
	}
	stray := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(func(el *xmlstream.Element, _ time.Time) { stray <- el.String() })
	}()
	id := c.NextID()
	if id == c.NextID() {
		t.Fatal("NextID repeats itself")
	}
	res, err := c.IQ(ctx, id, []byte("<iq xmlns='jabber:client' type='get' id='"+id+"' to='"+srv.Domain()+"'><ping xmlns='urn:xmpp:ping'/></iq>"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Attr("type") != "result" || res.Attr("id") != id {
		t.Fatalf("ping answer: %s", res)
	}
	id = c.NextID()
	res, err = c.IQ(ctx, id, []byte("<iq xmlns='jabber:client' type='get' id='"+id+"' to='"+srv.Domain()+"'><nothing xmlns='urn:example:none'/></iq>"))
	if err != nil {
		t.Fatal(err)
	}
	if got := xmppc.ErrorCondition(res); got != "service-unavailable" {
		t.Fatalf("condition %q in %s", got, res)
	}
	if got := xmppc.ErrorCondition(xmlstream.NewElement("iq", "jabber:client").SetAttr("type", "error")); got != "error of type error" {
		t.Fatalf("condition of an error without one: %q", got)
	}
	// An IQ whose answer never comes (a whitespace keepalive is sent
	// for it) ends with the context.
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if _, err := c.IQ(short, "never", []byte(" ")); err == nil {
		t.Fatal("an IQ without an answer returned no error")
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-stray:
		t.Fatalf("Run's callback got %s", s)
	default:
	}
}

// Over the baseline relay the client sends frames to a user index and
// parses what it receives as stanzas.
func TestRelay(t *testing.T) {
	addr, stop, err := relay.StartLocal()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("relay: %v", err)
		}
	}()
	ctx := context.Background()
	o := xmppc.Options{Addr: addr, Domain: "localhost", Transport: xmppc.Relay}
	var conns [2]*xmppc.Conn
	for i := range conns {
		o.RelayID = uint32(i)
		if conns[i], _, err = xmppc.Dial(ctx, o, "u", "p"); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	got := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- conns[1].Run(func(el *xmlstream.Element, _ time.Time) { got <- el.String() })
	}()
	const msg = "<message xmlns='jabber:client' type='chat'><body>over the relay</body></message>"
	if err := conns[0].SendTo(1, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != msg {
			t.Fatalf("received %s", s)
		}
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received over the relay")
	}
	if err := conns[0].SendTo(1, make([]byte, 0x10000)); err == nil {
		t.Fatal("a frame over 64 KiB was sent")
	}
	conns[1].Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
