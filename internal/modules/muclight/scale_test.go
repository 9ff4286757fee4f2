package muclight_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// A rig is one big room: n members, each with one client connected over
// TCP with STARTTLS and available, the first the owner.
type rig struct {
	srv      *servertest.Server
	room     jid.JID
	accounts []story.Account
	clients  []*story.Client
}

const setupParallelism = 16

func newRig(tb testing.TB, n int) *rig {
	tb.Helper()
	// The clients do not answer the server's pings: a member that only
	// receives for minutes would be disconnected.
	srv := servertest.Start(tb, servertest.Modules(fmt.Sprintf("[modules.muclight]\nmax_occupants = %d\n[modules.ping]\nenabled = false", n)))
	r := &rig{srv: srv, room: jid.MustParse("big-" + story.NewID() + "@muclight." + srv.Domain()),
		accounts: make([]story.Account, n), clients: make([]*story.Client, n)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r.parallel(tb, n, func(i int) error {
		r.accounts[i] = story.NewAccount(tb, srv, "m"+strconv.Itoa(i))
		return nil
	})
	r.parallel(tb, n, func(i int) error {
		c, err := story.Connect(ctx, nil, srv, r.accounts[i], story.Options{Timeout: time.Minute})
		r.clients[i] = c
		return err
	})
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, c := range r.clients {
			if c != nil {
				wg.Go(func() { c.Close() })
			}
		}
		wg.Wait()
	})
	occ := make([]story.MUCLightUser, 0, n-1)
	for _, a := range r.accounts[1:] {
		occ = append(occ, story.Member(a.JID))
	}
	res, err := r.clients[0].RequestIQ(ctx, story.MUCLightCreate(r.room, nil, occ...))
	if err != nil || res.Attr("type") != "result" {
		tb.Fatalf("create the room: %v %v", res, err)
	}
	r.parallel(tb, n, func(i int) error {
		_, err := r.clients[i].WaitFor(ctx, story.IsMUCLightNotice(r.room, NSAff))
		return err
	})
	return r
}

// parallel runs fn for 0…n-1 on setupParallelism goroutines.
func (r *rig) parallel(tb testing.TB, n int, fn func(i int) error) {
	tb.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range min(setupParallelism, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		tb.Fatalf("%v", first)
	}
}

// fanout has member `from` send one message and returns the time until
// every member has its copy: the latest receive time (taken by each
// client's reader when it parsed the copy) minus the send time.
func (r *rig) fanout(tb testing.TB, from int, body string) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sent := time.Now()
	r.clients[from].Send(story.Groupchat(r.room, body))
	var last time.Time
	for _, c := range r.clients {
		_, at, err := c.WaitForTimed(ctx, story.IsGroupchat(body))
		if err != nil {
			tb.Fatalf("%v", err)
		}
		if at.After(last) {
			last = at
		}
	}
	return last.Sub(sent)
}

// throughput has senders members send msgs messages each, each waiting
// for its own copy before the next (one message in flight per sender),
// and returns the deliveries per second until every member has them all.
func (r *rig) throughput(tb testing.TB, senders, msgs int) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	total := senders * msgs
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(r.clients)+senders)
	for s := range senders {
		wg.Go(func() {
			c := r.clients[s]
			for k := range msgs {
				body := fmt.Sprintf("t%d-%d", s, k)
				c.Send(story.Groupchat(r.room, body))
				if _, err := c.WaitFor(ctx, story.IsGroupchat(body)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i, c := range r.clients {
		wg.Go(func() {
			// Senders take their own copies off the queue themselves.
			want, pred := total, story.IsMessageType("groupchat")
			if i < senders {
				own := r.room.String() + "/" + c.Bare().String()
				want -= msgs
				pred = story.And(pred, story.Predicate{Desc: "not from " + own, Match: func(el *xmlstream.Element) bool {
					return el.Attr("from") != own
				}})
			}
			for range want {
				if _, err := c.WaitFor(ctx, pred); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		tb.Fatalf("%v", err)
	}
	return float64(total*len(r.clients)) / elapsed.Seconds()
}

// presenceBytes has every member reconnect once, as members of a room do
// when their phones change networks or wake up, then counts the bytes of
// the <presence/> stanzas every member received from anyone but its own
// account (its own presence reflected by its server, and that of its
// previous connection going away, are not the room's). MUC Light
// sends none (muclight.md "Rules": "No <presence/> is exchanged inside a
// room").
func (r *rig) presenceBytes(tb testing.TB) (bytes, stanzas int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var mu sync.Mutex
	count := func(c *story.Client) {
		for _, p := range c.Pending() {
			if p.El.Name != "presence" {
				continue
			}
			if from, err := jid.Parse(p.El.Attr("from")); err == nil && from.Bare() == c.Bare() {
				// The account's own presence: the reflection, or its
				// previous connection going (RFC 6121 §4.2.2, §4.5.2).
				continue
			}
			mu.Lock()
			bytes += len(p.El.String())
			stanzas++
			mu.Unlock()
			tb.Logf("presence to %s: %s", c.JID(), p.El)
		}
	}
	r.parallel(tb, len(r.clients), func(i int) error {
		old := r.clients[i]
		count(old)
		if err := old.Close(); err != nil {
			return err
		}
		c, err := story.Connect(ctx, nil, r.srv, r.accounts[i], story.Options{Timeout: time.Minute})
		mu.Lock()
		r.clients[i] = c
		mu.Unlock()
		return err
	})
	// A message through the room marks the end: what the room sent
	// before it has arrived when it does.
	body := "marker-" + story.NewID()
	r.fanout(tb, 0, body)
	for _, c := range r.clients {
		count(c)
	}
	return bytes, stanzas
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestMUCLightFanout50: a 50-member room under go test: every member gets
// every message once, several senders at once.
func TestMUCLightFanout50(t *testing.T) {
	t.Parallel()
	r := newRig(t, 50)
	for i := range 5 {
		r.fanout(t, i, "hello "+strconv.Itoa(i))
	}
	if rate := r.throughput(t, 5, 10); rate <= 0 {
		t.Fatal(rate)
	}
	for _, c := range r.clients {
		c.ExpectNothing(0, story.IsMessage())
	}
}

// TestMUCLightPresenceBytes50: members of a 50-member room reconnect;
// they receive 0 bytes of presence.
func TestMUCLightPresenceBytes50(t *testing.T) {
	t.Parallel()
	r := newRig(t, 50)
	if bytes, n := r.presenceBytes(t); bytes != 0 {
		t.Fatalf("%d presence stanzas, %d bytes, to members", n, bytes)
	}
}

// BenchmarkMUCLightFanout1000: one member of a 1,000-member room sends;
// the time until all 1,000 copies arrived, per message (p50, p99).
//
//	go test -run '^$' -bench MUCLightFanout1000 -benchtime 200x ./internal/modules/muclight/
func BenchmarkMUCLightFanout1000(b *testing.B) {
	r := newRig(b, 1000)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		lat = append(lat, r.fanout(b, i%len(r.clients), "b"+strconv.Itoa(i)))
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(r.clients)), "copies/op")
}

// BenchmarkMUCLightThroughput1000: 10 members of a 1,000-member room send
// continuously (one message in flight each); deliveries per second.
//
//	go test -run '^$' -bench MUCLightThroughput1000 -benchtime 20x ./internal/modules/muclight/
func BenchmarkMUCLightThroughput1000(b *testing.B) {
	r := newRig(b, 1000)
	b.ResetTimer()
	rate := r.throughput(b, 10, b.N)
	b.StopTimer()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMUCLightReconnectPresence1000: every member of a 1,000-member
// room reconnects once (a room whose members reconnect every 10 minutes,
// over 10 minutes); the presence bytes members received.
//
//	go test -run '^$' -bench MUCLightReconnectPresence1000 -benchtime 1x ./internal/modules/muclight/
func BenchmarkMUCLightReconnectPresence1000(b *testing.B) {
	r := newRig(b, 1000)
	b.ResetTimer()
	var bytes, n int
	for range b.N {
		bb, nn := r.presenceBytes(b)
		bytes, n = bytes+bb, n+nn
	}
	b.StopTimer()
	b.ReportMetric(float64(bytes)/float64(b.N), "presence-bytes/op")
	b.ReportMetric(float64(n)/float64(b.N), "presence-stanzas/op")
	if bytes != 0 {
		b.Fatalf("%d presence stanzas, %d bytes, to members", n, bytes)
	}
}

// BenchmarkMUCLightOfflineMembers1000: one connected member sends to a
// 1,000-member room whose 999 other members are offline; the time until
// the room has routed every copy (a ping sent after the message is
// answered once the sender's goroutine is done with it). For members
// without a session the router checks that the account exists (a
// storage query) and drops the copy.
//
//	go test -run '^$' -bench MUCLightOfflineMembers1000 -benchtime 200x ./internal/modules/muclight/
func BenchmarkMUCLightOfflineMembers1000(b *testing.B) {
	const n = 1000
	srv := servertest.Start(b, servertest.Modules(fmt.Sprintf("[modules.muclight]\nmax_occupants = %d\n[modules.ping]\nenabled = false", n)))
	r := &rig{srv: srv, accounts: make([]story.Account, n)}
	r.parallel(b, n, func(i int) error {
		r.accounts[i] = story.NewAccount(b, srv, "o"+strconv.Itoa(i))
		return nil
	})
	sender := story.MustConnect(b, srv, r.accounts[0], story.Options{Timeout: time.Minute})
	room := jid.MustParse("offline-" + story.NewID() + "@muclight." + srv.Domain())
	occ := make([]story.MUCLightUser, 0, n-1)
	for _, a := range r.accounts[1:] {
		occ = append(occ, story.Member(a.JID))
	}
	if res := sender.IQ(story.MUCLightCreate(room, nil, occ...)); res.Attr("type") != "result" {
		b.Fatalf("create: %s", res)
	}
	sender.Expect(story.IsMUCLightNotice(room, NSAff))
	b.ResetTimer()
	for i := range b.N {
		body := "o" + strconv.Itoa(i)
		sender.Send(story.Groupchat(room, body))
		sender.IQ(story.Ping(nil))
		sender.Expect(story.IsGroupchat(body))
	}
	b.StopTimer()
	b.ReportMetric(float64(n-1)*float64(b.N)/b.Elapsed().Seconds(), "offline-copies/s")
}
