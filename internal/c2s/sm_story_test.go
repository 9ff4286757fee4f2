package c2s_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Stream management (XEP-0198) stories, over TCP and WebSocket.

var smTransports = []story.Transport{story.TCP, story.WebSocket, story.BOSH}

func smAccount(t *testing.T, srv *servertest.Server, name string) story.Account {
	u := createUser(t, srv, name, "pw")
	return story.Account{Localpart: u.Local(), Password: "pw", JID: u}
}

// TestStorySMEnable: <enable/> with and without resumption, acks both ways.
func TestStorySMEnable(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, tr := range smTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			story.RunWith(t, srv, story.Users{"alice": 1, "bob": 1}, story.Options{Transport: tr, StreamManagement: true, Resume: true},
				func(alice, bob *story.Client) {
					if alice.SMID() == "" {
						t.Fatal("no resumption id")
					}
					for i := range 12 {
						alice.Send(story.Chat(bob.JID(), "m"+strconv.Itoa(i)))
					}
					for i := range 12 {
						bob.Expect(story.IsChat("m" + strconv.Itoa(i)))
					}
					// Bob counted the reflection of his presence and the 12
					// messages; the server asked for acks after the 5th
					// and the 10th stanza (sm_ack_every = 5), and he
					// answered (TestStorySMAckRequestsEveryN checks the
					// <r/>s themselves, on the wire).
					if h, acked := bob.SMHandled(), bob.SMAcked(); h != 13 || acked != 10 {
						t.Fatalf("handled %d, acknowledged %d; want 13, 10", h, acked)
					}
					// The client asks: the server answers with what it got,
					// alice's presence and her 12 messages.
					alice.SendRaw("<r xmlns='urn:xmpp:sm:3'/>")
					if a := alice.Expect(story.IsSMAck()); wire(a) != "<a xmlns='urn:xmpp:sm:3' h='13'/>" {
						t.Fatalf("server answered %s", wire(a))
					}
				})
		})
	}
}

// TestStorySMErrors: the misuses of XEP-0198 §3, §5 and §6.
func TestStorySMErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			acct := smAccount(t, srv, "raw")
			r, _ := rawLogin(t, srv, tr, acct, "raw")
			// <r/> before enabling is not allowed.
			r.Send("<r xmlns='urn:xmpp:sm:3'/>")
			if err := r.ExpectStreamError("unsupported-stanza-type"); err != nil {
				t.Fatal(err)
			}

			// Enabling before binding fails (§3).
			r, _ = rawLogin(t, srv, tr, acct, "")
			r.Send("<enable xmlns='urn:xmpp:sm:3'/>")
			expectWire(t, r, "<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
			// Resuming an unknown session fails, and the client can still bind.
			r.Send("<resume xmlns='urn:xmpp:sm:3' previd='nosuchsession' h='0'/>")
			expectWire(t, r, "<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
			if _, err := r.Bind("after"); err != nil {
				t.Fatal(err)
			}
			r.Send("<enable xmlns='urn:xmpp:sm:3'/>")
			expectWire(t, r, "<enabled xmlns='urn:xmpp:sm:3'/>")
			// Acknowledging more than was sent (§6).
			r.Send("<a xmlns='urn:xmpp:sm:3' h='99'/>")
			expectWire(t, r, "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"+
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>you acknowledged 99 stanzas, but only 0 were sent</text>"+
				"<handled-count-too-high xmlns='urn:xmpp:sm:3' h='99' send-count='0'/></stream:error>")

			// Enabling twice: <failed/>, then the stream ends (§3).
			r, _ = rawLogin(t, srv, tr, acct, "twice")
			rawEnable(t, r, "")
			r.Send("<enable xmlns='urn:xmpp:sm:3'/>")
			expectWire(t, r, "<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
			if err := r.ExpectStreamError("policy-violation"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStorySMResume: bob's connection is cut; messages sent meanwhile
// come on the resumed connection, with those he had not handled.
func TestStorySMResume(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, tr := range smTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{Transport: tr})
			bobAcct := smAccount(t, srv, "bob")
			opts := story.Options{Transport: tr, StreamManagement: true, Resume: true}
			bob := story.MustConnect(t, srv, bobAcct, opts)
			alice.Send(story.Chat(bob.JID(), "before"))
			bob.Expect(story.IsChat("before"))
			bob.Cut()
			// Sent while bob is away: kept for him.
			alice.Send(story.Chat(bob.JID(), "during 1"))
			alice.Send(story.Chat(bob.Bare(), "during 2"))
			alice.IQ(story.Ping(nil)) // routed by now
			resumed, err := story.Connect(context.Background(), t, srv, bobAcct, story.Options{Transport: tr, ResumeFrom: bob})
			if err != nil {
				t.Fatal(err)
			}
			if resumed.JID() != bob.JID() {
				t.Fatalf("resumed as %s, was %s", resumed.JID(), bob.JID())
			}
			resumed.Expect(story.IsChat("during 1"))
			resumed.Expect(story.IsChat("during 2"))
			// The session kept its presence: a message to the bare JID
			// still reaches it.
			alice.Send(story.Chat(bob.Bare(), "after"))
			resumed.Expect(story.IsChat("after"))
			// Nothing bob had handled came again: it would have come
			// before "after", with the retransmitted stanzas.
			for _, p := range resumed.Pending() {
				if p.El.Name == "message" {
					t.Fatalf("received again: %s", wire(p.El))
				}
			}
		})
	}
}

// TestStorySMTakeover: a client resumes while the server still thinks the
// old connection is alive; the new one takes over (§5), and the old
// stream gets a <conflict/> stream error and is closed.
func TestStorySMTakeover(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			acct := smAccount(t, srv, "bob")
			old := story.MustConnect(t, srv, acct, story.Options{Transport: tr, StreamManagement: true, Resume: true})
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			alice.Send(story.Chat(old.JID(), "to the old connection"))
			old.Expect(story.IsChat("to the old connection"))
			// The old connection is not cut: the client just went elsewhere.
			resumed := story.MustConnect(t, srv, acct, story.Options{Transport: tr, ResumeFrom: old})
			alice.Send(story.Chat(old.JID(), "to the new connection"))
			resumed.Expect(story.IsChat("to the new connection"))
			// The old stream got <conflict/> and was closed (§5).
			e := old.Expect(story.IsStreamError("conflict"))
			if got, want := wire(e), "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"+
				"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>the session was resumed on another connection</text></stream:error>"; got != want {
				t.Errorf("the old stream got %s, want %s", got, want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := old.WaitFor(ctx, story.IsChat("never")); err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the old connection is still open: %v", err)
			}
		})
	}
}

// TestStorySMResumeTimeout: after the timeout the session is gone, its
// unacknowledged messages went to offline storage, and a resumption
// fails; a new login gets the messages, stamped with the time they first
// came.
func TestStorySMResumeTimeout(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMResumeTimeout = config.Duration{Duration: 300 * time.Millisecond}
		c.C2S.SMAckEvery = 1000 // no acks: everything stays unacknowledged
	})
	closed := srv.WatchEnded()
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			bobAcct := smAccount(t, srv, "bob")
			bob := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, StreamManagement: true, Resume: true})
			before := time.Now().Add(-time.Millisecond)
			alice.Send(story.Chat(bob.JID(), "unacknowledged"))
			bob.Expect(story.IsChat("unacknowledged"))
			bob.Cut() // bob never acknowledged it
			alice.Send(story.Chat(bob.JID(), "while away"))
			alice.IQ(story.Ping(nil)) // routed by now, well before the timeout
			routed := time.Now()
			closed.Wait(t, bob.JID(), 1)
			_, err := story.Connect(context.Background(), t, srv, bobAcct, story.Options{Transport: tr, ResumeFrom: bob})
			var re *story.ResumeError
			if !errors.As(err, &re) || re.Failed.Child("item-not-found", stanza.NSStanzaErrors) == nil {
				t.Fatalf("resumption after the timeout: %v", err)
			}
			again := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr})
			// Both were rerouted to offline storage, with one <delay/>:
			// offline storage's, stamped with when they first came
			// (XEP-0198 §4), not with when the session timed out.
			for _, body := range []string{"unacknowledged", "while away"} {
				m := again.Expect(story.IsChat(body))
				var delays []*xmlstream.Element
				for c := range m.Elements() {
					if c.Name == "delay" && c.NS == stanza.NSDelay {
						delays = append(delays, c)
					}
				}
				if len(delays) != 1 {
					t.Fatalf("%s with %d <delay/>s: %s", body, len(delays), wire(m))
				}
				d := delays[0]
				if want := fmt.Sprintf("<delay xmlns='urn:xmpp:delay' from='%s' stamp='%s'>Offline Storage</delay>", srv.Domain(), d.Attr("stamp")); wire(d) != want {
					t.Errorf("%s: %s, want %s", body, wire(d), want)
				}
				stamp, err := time.Parse(time.RFC3339Nano, d.Attr("stamp"))
				if err != nil || stamp.Before(before.Truncate(time.Millisecond)) || stamp.After(routed) {
					t.Errorf("%s: stamp %s, not between %s and %s", body, d.Attr("stamp"), before.UTC(), routed.UTC())
				}
			}
		})
	}
}

// TestStorySMUnackedToOtherResource: when a session ends without
// resumption, its unacknowledged messages go to another resource.
func TestStorySMUnackedToOtherResource(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.SMAckEvery = 1000 })
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			bobAcct := smAccount(t, srv, "bob")
			phone := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, StreamManagement: true, Resource: "phone"})
			laptop := story.MustConnect(t, srv, bobAcct, story.Options{Transport: tr, Resource: "laptop"})
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			alice.Send(story.Chat(phone.JID(), "to the phone"))
			phone.Expect(story.IsChat("to the phone"))
			phone.Cut() // no resumption was enabled: the session ends at once
			m := laptop.Expect(story.IsChat("to the phone"))
			if m.Child("delay", stanza.NSDelay) == nil {
				t.Errorf("rerouted without <delay/>: %s", m)
			}
		})
	}
}

// TestStorySMQueueOverflow: a client that never acknowledges is
// disconnected once the queue is full, with <resource-constraint/>;
// nothing routed to it is lost: the queue and what came after go to
// offline storage.
func TestStorySMQueueOverflow(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.SMMaxUnacked = 10 })
	for _, tr := range smStreamTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
			bob := smAccount(t, srv, "bob")
			r, full := rawLogin(t, srv, tr, bob, "phone")
			rawEnable(t, r, "")
			r.Send("<presence xmlns='jabber:client'/>")
			expectWire(t, r, fmt.Sprintf("<presence from='%s'/>", full))
			for i := range 30 {
				alice.Send(story.Chat(full, strconv.Itoa(i)))
			}
			// The presence, 9 messages and <r/>s, then the error.
			for i := range 9 {
				el, err := r.Next()
				for err == nil && el.Name == "r" {
					el, err = r.Next()
				}
				if err != nil || el.ChildText("body", stanza.NSClient) != strconv.Itoa(i) {
					t.Fatalf("message %d: %v %v", i, el, err)
				}
			}
			for {
				el, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if el.Name == "r" {
					continue
				}
				if got, want := wire(el), "<stream:error><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"+
					"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>too many unacknowledged stanzas</text></stream:error>"; got != want {
					t.Fatalf("after 9 messages: %s, want %s", got, want)
				}
				break
			}
			r.Close()
			// The next login gets every message from offline storage, in order.
			again := story.MustConnect(t, srv, bob, story.Options{Transport: tr})
			for i := range 30 {
				again.Expect(story.IsChat(strconv.Itoa(i)))
			}
		})
	}
}

// TestStorySMLossUnderCuts: alice sends 10,000 numbered messages while
// bob's connection is cut (the TCP connection dropped, under TLS and
// WebSocket alike) at random moments, every hundred messages on average.
// Each login decides how its session will end:
//
//   - most ask for a long resumption time (max='60'): after each cut bob
//     resumes, over TCP, WebSocket or direct TLS, and gets again exactly
//     what he had not handled; now and then he gives up on the session
//     instead and logs in again on the same resource, which replaces it;
//   - the others keep the server's (200 ms): after the cut bob waits past
//     the timeout, the resumption fails with <failed h='1'/> (his
//     presence), and he logs in again and gets the rest from offline
//     storage.
//
// Before he gives up on a session bob acknowledges what he handled, so
// that what the server reroutes is exactly what he did not get. Every
// message arrives exactly once; the cuts, resumptions, timeouts and
// replacements are counted and checked against the sessions the server
// ended.
func TestStorySMLossUnderCuts(t *testing.T) {
	t.Parallel()
	total, maxBatch := 10000, 200
	if raceEnabled {
		total, maxBatch = 2000, 100
	}
	srv := servertest.Start(t, func(c *config.Config) {
		c.C2S.SMResumeTimeout = config.Duration{Duration: 200 * time.Millisecond}
		c.C2S.SMMaxUnacked = 50000 // overflows have their own story
		c.C2S.SMAckEvery = 50
	}, servertest.Modules("[modules.offline]\nmax_messages = 20000\nmax_bytes = 50000000"))
	closed := srv.WatchEnded()
	alice := story.MustConnect(t, srv, smAccount(t, srv, "alice"), story.Options{})
	bobAcct := smAccount(t, srv, "bob")

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)
	transports := []story.Transport{story.TCP, story.WebSocket, story.DirectTLS}
	connect := func(prev *story.Client, max int) (*story.Client, error) {
		opts := story.Options{Transport: transports[rng.IntN(len(transports))], StreamManagement: true, Resume: true,
			Resource: "phone", ResumeMax: max, ResumeFrom: prev, Timeout: 20 * time.Second}
		return story.Connect(context.Background(), t, srv, bobAcct, opts)
	}

	// Alice keeps at most window messages ahead of what bob got, so that
	// the cuts are spread over the whole stream rather than after a burst
	// bob's reader would swallow at once.
	window := maxBatch / 2
	var (
		mu       sync.Mutex
		progress = sync.NewCond(&mu)
		received int // distinct messages bob got
		stop     bool
	)
	t.Cleanup(func() {
		mu.Lock()
		stop = true
		progress.Broadcast()
		mu.Unlock()
	})
	sent := make(chan error, 1)
	go func() {
		for i := range total {
			mu.Lock()
			for i-received > window && !stop {
				progress.Wait()
			}
			mu.Unlock()
			if err := alice.TrySend(story.Chat(bobAcct.JID, strconv.Itoa(i))); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()

	seen := make([]int, total)
	where := make([][]string, total)
	stage := "login 1"
	fromOffline := 0
	chain := map[int]bool{} // what this session delivered, across its resumptions
	record := func(el *xmlstream.Element) {
		num, err := strconv.Atoi(el.ChildText("body", stanza.NSClient))
		if err != nil || num < 0 || num >= total {
			t.Fatalf("unexpected message %s", wire(el))
		}
		if chain[num] {
			t.Fatalf("message %d arrived twice in one session", num)
		}
		chain[num] = true
		if seen[num] == 0 {
			mu.Lock()
			received++
			progress.Broadcast()
			mu.Unlock()
		}
		seen[num]++
		w := stage
		if d := el.Child("delay", stanza.NSDelay); d != nil {
			w += " delay:" + d.Text() + d.Attr("from")
			if d.Text() == "Offline Storage" {
				fromOffline++
			}
		}
		where[num] = append(where[num], w)
	}
	isNumber := story.Predicate{Desc: "a numbered message from alice", Match: func(el *xmlstream.Element) bool {
		return el.Name == "message" && el.Attr("type") == "chat" && el.ChildText("body", stanza.NSClient) != ""
	}}
	read := func(bob *story.Client, n int) {
		for ; n > 0 && received < total; n-- {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			el, err := bob.WaitFor(ctx, isNumber)
			cancel()
			if err != nil {
				missing := []int{}
				for i := 0; i < total && len(missing) < 10; i++ {
					if seen[i] == 0 {
						missing = append(missing, i)
					}
				}
				t.Fatalf("after %d of %d messages: %v; first missing: %v", received, total, err, missing)
			}
			record(el)
		}
	}
	// resumeFails checks that the session of prev is over and tells how
	// many of bob's stanzas it handled: his presence.
	resumeFails := func(prev *story.Client) {
		_, err := connect(prev, 0)
		var re *story.ResumeError
		if !errors.As(err, &re) {
			t.Fatalf("resuming an ended session: %v", err)
		}
		if got, want := wire(re.Failed), "<failed xmlns='urn:xmpp:sm:3' h='1'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"; got != want {
			t.Fatalf("resuming an ended session: %s, want %s", got, want)
		}
	}

	const long = 60
	logins, cuts, resumes, timeouts, replaced := 0, 0, 0, 0, 0
	login := func() (*story.Client, bool) {
		// The first session resumes, the second times out; then at random.
		short := logins == 1 || logins > 1 && rng.IntN(3) == 0
		logins++
		max := long
		if short {
			max = 0
		}
		bob, err := connect(nil, max)
		if err != nil {
			t.Fatal(err)
		}
		chain = map[int]bool{}
		stage = fmt.Sprintf("login %d (short %v)", logins, short)
		return bob, short
	}
	bob, short := login()
	for {
		read(bob, rng.IntN(maxBatch)+1)
		if received == total {
			break
		}
		giveUp := short || cuts > 0 && rng.IntN(5) == 0
		if giveUp {
			// What bob handled is acknowledged before the connection is
			// lost: what the server reroutes is what he did not get.
			if _, err := bob.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		bob.Cut()
		cuts++
		acked := bob.SMAcked() // an answer to an <r/> may have followed
		for _, p := range bob.Pending() {
			if !isNumber.Match(p.El) {
				continue
			}
			// What the client read before the cut counts as handled (it is
			// in its 'h', as on a phone whose app got it) when it resumes;
			// when it gives up, only what it acknowledged.
			if !giveUp || int32(p.SMCount-acked) <= 0 {
				stage += " pending"
				record(p.El)
				stage = strings.TrimSuffix(stage, " pending")
			}
		}
		switch {
		case !giveUp:
			resumed, err := connect(bob, 0)
			if err != nil {
				t.Fatalf("resumption %d: %v", resumes+1, err)
			}
			resumes++
			bob = resumed
			stage += " resumed"
		case short:
			// Past the resumption timeout the session ends and its
			// unacknowledged messages go to offline storage.
			closed.Wait(t, bob.JID(), timeouts+replaced+1)
			timeouts++
			resumeFails(bob)
			bob, short = login()
		default:
			// A new login on the same resource replaces the session
			// waiting for a resumption; its unacknowledged messages go to
			// the new one or to offline storage.
			prev := bob
			bob, short = login()
			closed.Wait(t, prev.JID(), timeouts+replaced+1)
			replaced++
			resumeFails(prev)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// Anything still on its way would come before this.
	alice.Send(story.Chat(bobAcct.JID, "the end"))
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		el, err := bob.WaitFor(ctx, isNumber)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if el.ChildText("body", stanza.NSClient) == "the end" {
			break
		}
		record(el)
	}
	t.Logf("%d messages, %d cuts, %d resumptions, %d timeouts, %d replaced sessions, %d messages from offline storage",
		total, cuts, resumes, timeouts, replaced, fromOffline)
	for i, n := range seen {
		if n != 1 {
			t.Errorf("message %d arrived %d times: %q", i, n, where[i])
		}
	}
	if cuts != resumes+timeouts+replaced {
		t.Errorf("%d cuts, but %d resumptions, %d timeouts and %d replaced sessions", cuts, resumes, timeouts, replaced)
	}
	if n := closed.Count(bob.JID()); n != timeouts+replaced {
		t.Errorf("%d sessions ended, for %d timeouts and %d replaced sessions", n, timeouts, replaced)
	}
	if cuts < total/(2*maxBatch) || resumes == 0 || timeouts == 0 {
		t.Errorf("the test did not exercise enough (%d cuts, %d resumptions, %d timeouts)", cuts, resumes, timeouts)
	}
}
