package xmppc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// A login with stream management, where the server asks for an
// acknowledgement after every stanza: the client answers the requests
// that come during the login too, and hands the stanzas received there
// (its own presence, reflected) to Run.
func TestDialSMAndEarlyStanzas(t *testing.T) {
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.SMAckEvery = 1 })
	ctx := context.Background()
	if err := srv.CreateUser(ctx, "alice", "alicepass"); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []story.Transport{story.TCP, story.DirectTLS, story.WebSocket} {
		t.Run(string(tr), func(t *testing.T) {
			addr, _ := srv.Addr(tr)
			o := xmppc.Options{Addr: addr, Domain: srv.Domain(), SM: true, Presence: true, Transport: map[story.Transport]string{story.TCP: xmppc.StartTLS, story.DirectTLS: xmppc.DirectTLS, story.WebSocket: xmppc.WebSocket}[tr]}
			c, timing, err := xmppc.Dial(ctx, o, "alice", "alicepass")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if timing.Login < timing.Connect || c.JID == "" || c.Mech == "" {
				t.Fatalf("timing %+v, jid %q, mechanism %q", timing, c.JID, c.Mech)
			}
			var mu sync.Mutex
			var got []string
			done := make(chan error, 1)
			seen := make(chan struct{}, 16)
			go func() {
				done <- c.Run(func(el *xmlstream.Element, _ time.Time) {
					mu.Lock()
					got = append(got, el.Name+" "+el.Attr("from"))
					mu.Unlock()
					seen <- struct{}{}
				})
			}()
			// Our own message comes back: the session is alive and acked.
			if err := c.Send([]byte("<message xmlns='jabber:client' to='" + c.JID + "' type='chat'><body>hi</body></message>")); err != nil {
				t.Fatal(err)
			}
			for {
				select {
				case <-seen:
				case err := <-done:
					t.Fatalf("Run ended: %v", err)
				case <-time.After(10 * time.Second):
					t.Fatalf("no message back; got %v", got)
				}
				mu.Lock()
				n := len(got)
				last := ""
				if n > 0 {
					last = got[n-1]
				}
				first := got
				mu.Unlock()
				if last == "message "+c.JID {
					if first[0] != "presence "+c.JID {
						t.Fatalf("the reflected presence did not come first: %v", first)
					}
					for _, g := range first {
						// Requests for acknowledgements (XEP-0198 <r/>) are
						// answered by the client, never handed on.
						if g == "r " {
							t.Fatalf("an <r/> reached the callback: %v", first)
						}
					}
					break
				}
			}
			c.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
