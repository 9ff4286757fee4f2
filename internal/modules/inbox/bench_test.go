package inbox_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/story"
)

// The client side of these benchmarks runs in the same process as the
// server, on the same cores: the figures are for both together.

// rawLogin logs in with a Raw connection (no reader goroutine of its own).
func rawLogin(b *testing.B, srv *servertest.Server, local, password, resource string) (*story.Raw, jid.JID) {
	b.Helper()
	r, full, err := story.DialRawLogin(context.Background(), srv, story.DirectTLS, story.Account{Localpart: local, Password: password}, resource)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	r.StopRecording()
	return r, full
}

const benchMessage = "<message xmlns='jabber:client' from='peer0@localhost/phone' to='owner@localhost' type='chat' id='3f1c2a9e-5b7d-4e0a-9c1b-2d3e4f5a6b7c'>" +
	"<body>Are we still on for lunch tomorrow? I can book the usual place.</body></message>"

// BenchmarkInboxFetch is one inbox query over a socket for a user with
// 1,000 conversations, from the IQ sent to the fin read: the whole inbox
// (1,000 result messages), and the newest page of 50.
func BenchmarkInboxFetch(b *testing.B) {
	srv := servertest.Start(b)
	ctx := context.Background()
	const pw = "bench-password"
	if err := srv.CreateUser(ctx, "owner", pw); err != nil {
		b.Fatal(err)
	}
	owner := jid.MustParse("owner@" + srv.Domain())
	t0 := time.Now().Add(-time.Hour)
	var ops []storage.InboxOp
	for i := range 1000 {
		ops = append(ops, storage.InboxOp{Update: storage.InboxUpdate{Owner: owner, With: jid.MustParse(fmt.Sprintf("peer%d@%s", i, srv.Domain())),
			Message: benchMessage, Stamp: t0.Add(time.Duration(i) * time.Millisecond), Unread: storage.InboxUnread(i % 2)}})
	}
	if err := srv.Store().(storage.InboxStore).ApplyInbox(ctx, ops); err != nil {
		b.Fatal(err)
	}
	r, _ := rawLogin(b, srv, "owner", pw, "bench")
	for _, tc := range []struct {
		name string
		iq   string
		want int
	}{
		{"all=1000", "<iq type='set' id='q'><inbox xmlns='" + story.NSInbox + "'/></iq>", 1000},
		{"newest=50", "<iq type='set' id='q'><inbox xmlns='" + story.NSInbox + "'><set xmlns='http://jabber.org/protocol/rsm'><max>50</max></set></inbox></iq>", 50},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Send(tc.iq); err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					el, err := r.Next()
					if err != nil {
						b.Fatal(err)
					}
					if el.Name == "message" {
						n++
						continue
					}
					if el.Name == "iq" {
						if el.Attr("type") != "result" || n != tc.want {
							b.Fatalf("%d results, then %s", n, el)
						}
						break
					}
				}
			}
		})
	}
}

// BenchmarkInboxRouteChat routes one-to-one chat messages between 10
// pairs of accounts through real sockets, without the inbox and with
// each write mode: the cost of the inbox on the message path (two entries
// per message). One operation is one message delivered.
func BenchmarkInboxRouteChat(b *testing.B) {
	for _, mode := range []string{"off", "batch", "sync"} {
		b.Run("inbox="+mode, func(b *testing.B) {
			modules := "[modules.inbox]\nwrites = \"" + mode + "\""
			if mode == "off" {
				modules = "[modules.inbox]\nenabled = false"
			}
			srv := servertest.Start(b, servertest.Modules(modules), func(c *config.Config) { c.C2S.MaxSessionsPerUser = 10000 })
			const pairs, pw = 10, "bench-password"
			senders := make([]*story.Raw, pairs)
			receivers := make([]*story.Raw, pairs)
			targets := make([]jid.JID, pairs)
			for i := range pairs {
				for _, name := range []string{"s", "r"} {
					if err := srv.CreateUser(context.Background(), name+strconv.Itoa(i), pw); err != nil {
						b.Fatal(err)
					}
				}
				senders[i], _ = rawLogin(b, srv, "s"+strconv.Itoa(i), pw, "phone")
				receivers[i], targets[i] = rawLogin(b, srv, "r"+strconv.Itoa(i), pw, "phone")
			}
			body := "Art thou not Romeo, and a Montague? Neither, fair saint, if either thee dislike."
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range pairs {
				n := b.N / pairs
				if i < b.N%pairs {
					n++
				}
				const window = 64
				inflight := make(chan struct{}, window)
				wg.Add(2)
				go func() {
					defer wg.Done()
					msg := "<message type='chat' to='" + targets[i].String() + "' id='m'><body>" + body + "</body></message>"
					var batch []byte
					for k := 0; k < n; k++ {
						inflight <- struct{}{}
						batch = append(batch, msg...)
						if len(inflight) == window || k == n-1 || len(batch) > 8<<10 {
							if err := senders[i].Send(string(batch)); err != nil {
								b.Error(err)
								return
							}
							batch = batch[:0]
						}
					}
				}()
				go func() {
					defer wg.Done()
					for k := 0; k < n; {
						el, err := receivers[i].Next()
						if err != nil {
							b.Error(err)
							return
						}
						if el.Name == "message" {
							k++
							<-inflight
						}
					}
				}()
			}
			wg.Wait()
			// Until the batch writer has committed everything (what a
			// stream management <a/> waits for).
			for _, h := range srv.Hooks().BeforeAck.Hooks() {
				h.Fn(context.Background(), nil)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
