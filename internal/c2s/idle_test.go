package c2s_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/c2s"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// An idle TLS session's reader waits for the socket with a shallow stack
// (transport read, Session.run), which the runtime shrinks to 4 KiB; a
// reader blocked inside crypto/tls keeps 8 KiB. The clients here are
// xmppc connections without a reader goroutine, so the stacks counted are
// the server's. Then every idle session still answers.
func TestIdleSessionStack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's frames and stack guard are larger")
	}
	const n = 200
	idle := make(chan struct{}, 4*n)
	c2s.SetOnIdle(func() {
		select {
		case idle <- struct{}{}:
		default:
		}
	})
	defer c2s.SetOnIdle(nil)
	srv := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr, _ := srv.Addr(story.TCP)
	for i := range n {
		if err := srv.CreateUser(ctx, fmt.Sprintf("idle%d", i), "idlepass"); err != nil {
			t.Fatal(err)
		}
	}
	stacks := func() uint64 {
		var ms runtime.MemStats
		for range 6 { // a GC halves a stack at most once
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.StackInuse
	}
	before := stacks()
	conns := make([]*xmppc.Conn, n)
	for i := range conns {
		c, _, err := xmppc.Dial(ctx, xmppc.Options{Addr: addr, Domain: srv.Domain(), Presence: true}, fmt.Sprintf("idle%d", i), "idlepass")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for range n {
		select {
		case <-idle:
		case <-ctx.Done():
			t.Fatal("the sessions did not go idle")
		}
	}
	// Only readers waiting idle now: drain what earlier ones signalled.
	for len(idle) > 0 {
		<-idle
	}
	perSession := float64(stacks()-before) / n
	t.Logf("goroutine stack per idle session: %.0f bytes", perSession)
	if perSession > 6*1024 {
		t.Errorf("goroutine stack per idle session: %.0f bytes, want about 4 KiB", perSession)
	}
	// Idle readers wake up: each session answers a ping.
	for i, c := range conns {
		got := make(chan *xmlstream.Element, 1)
		go c.Run(func(el *xmlstream.Element, _ time.Time) {
			if el.Name == "iq" {
				got <- el
			}
		})
		if err := c.Send([]byte(fmt.Sprintf("<iq xmlns='jabber:client' type='get' id='p%d' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", i, srv.Domain()))); err != nil {
			t.Fatal(err)
		}
		select {
		case el := <-got:
			if el.Attr("type") != "result" || el.Attr("id") != fmt.Sprintf("p%d", i) {
				t.Fatalf("session %d answered %s", i, el)
			}
		case <-ctx.Done():
			t.Fatalf("idle session %d did not answer", i)
		}
	}
}
