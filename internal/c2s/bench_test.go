package c2s_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/story"
)

// The client side of these benchmarks runs in the same process as the
// server, on the same two cores: the figures are for both together.

func benchServer(b *testing.B) (*servertest.Server, story.Account) {
	srv := servertest.Start(b, func(c *config.Config) { c.C2S.MaxSessionsPerUser = 10000 })
	return srv, benchUser(b, srv, "bench")
}

// benchUser creates an account.
func benchUser(b *testing.B, srv *servertest.Server, local string) story.Account {
	const pw = "bench-password"
	if err := srv.CreateUser(context.Background(), local, pw); err != nil {
		b.Fatal(err)
	}
	return story.Account{Localpart: local, Password: pw, JID: jid.MustParse(local + "@" + srv.Domain())}
}

func tls13(srv *servertest.Server) *tls.Config {
	c := srv.TLSConfig()
	c.MinVersion = tls.VersionTLS13
	return c
}

// BenchmarkLogin is one complete login per operation: TCP connect,
// STARTTLS with TLS 1.3, SCRAM-SHA-256, bind, and a clean close.
func BenchmarkLogin(b *testing.B) {
	srv, acct := benchServer(b)
	opts := story.Options{Mechanism: story.ScramSHA256, NoPresence: true, TLS: tls13(srv)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := story.Connect(ctx, nil, srv, acct, opts)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkLoginParallel is BenchmarkLogin with 8 logins at a time.
func BenchmarkLoginParallel(b *testing.B) {
	srv, acct := benchServer(b)
	opts := story.Options{Mechanism: story.ScramSHA256, NoPresence: true, TLS: tls13(srv)}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := story.Connect(ctx, nil, srv, acct, opts)
			if err != nil {
				b.Error(err)
				return
			}
			c.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// rawClient logs in with a Raw connection: no reader goroutine of its own,
// so the benchmark's client side stays lean.
func rawClient(b *testing.B, srv *servertest.Server, acct story.Account, resource string) (*story.Raw, jid.JID) {
	r, full, err := story.DialRawLogin(context.Background(), srv, story.DirectTLS, acct, resource)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	r.StopRecording()
	return r, full
}

// BenchmarkRouteChat routes one-to-one chat messages through real sockets
// between two users per pair: each sender writes messages to its own
// receiver's full JID, the receiver reads and parses them. The message
// archive (XEP-0313, on by default) stores each message twice, in the
// sender's and in the receiver's archive; the timing ends when both
// copies of every message are on disk. One operation is one message
// delivered. pairs=10/archive=off is the same without the archive, for
// comparison.
func BenchmarkRouteChat(b *testing.B) {
	for _, c := range []struct {
		pairs   int
		archive bool
	}{{1, true}, {10, true}, {100, true}, {10, false}} {
		name := "pairs=" + strconv.Itoa(c.pairs)
		if !c.archive {
			name += "/archive=off"
		}
		pairs := c.pairs
		b.Run(name, func(b *testing.B) {
			srv := servertest.Start(b, func(cfg *config.Config) {
				if !c.archive {
					servertest.Modules("[modules.mam]\nenabled = false")(cfg)
				}
			})
			senders := make([]*story.Raw, pairs)
			receivers := make([]*story.Raw, pairs)
			targets := make([]jid.JID, pairs)
			for i := range pairs {
				from, to := benchUser(b, srv, fmt.Sprintf("s%d", i)), benchUser(b, srv, fmt.Sprintf("r%d", i))
				senders[i], _ = rawClient(b, srv, from, "phone")
				receivers[i], targets[i] = rawClient(b, srv, to, "phone")
			}
			// A chat message of about 250 bytes on the wire.
			body := "Art thou not Romeo, and a Montague? Neither, fair saint, if either thee dislike."
			b.SetBytes(250)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range pairs {
				n := b.N / pairs
				if i < b.N%pairs {
					n++
				}
				// At most window messages in flight per pair: a sender
				// faster than its receiver would otherwise fill the
				// receiver's queue until the server disconnects it.
				const window = 64
				inflight := make(chan struct{}, window)
				wg.Add(2)
				go func(i, n int) {
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
				}(i, n)
				go func(i, n int) {
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
				}(i, n)
			}
			wg.Wait()
			// Until the archive has written everything (what a stream
			// management <a/> waits for).
			for _, h := range srv.Hooks().BeforeAck.Hooks() {
				h.Fn(context.Background(), nil)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
