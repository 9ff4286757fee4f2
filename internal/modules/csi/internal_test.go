package csi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// fakeSession runs the module's Outgoing hook in Deliver, as c2s does,
// and records what gets through.
type fakeSession struct {
	c *CSI

	mu     sync.Mutex
	values map[any]any
	out    []*xmlstream.Element
}

var _ module.Session = (*fakeSession)(nil)

func newFake(cfg Config) *fakeSession {
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 100
	}
	if cfg.ChatStates == "" {
		cfg.ChatStates = ChatStatesLatest
	}
	if cfg.UrgentPayloads == nil {
		cfg.UrgentPayloads = DefaultUrgentPayloads
	}
	return &fakeSession{c: newCSI(cfg), values: map[any]any{}}
}

func (f *fakeSession) JID() jid.JID                 { return jid.MustParse("alice@x/phone") }
func (f *fakeSession) StreamID() string             { return "s" }
func (f *fakeSession) Available() bool              { return true }
func (f *fakeSession) Priority() int                { return 0 }
func (f *fakeSession) Presence() *xmlstream.Element { return nil }
func (f *fakeSession) LastActivity() time.Time      { return time.Time{} }
func (f *fakeSession) Close(*stanza.StreamError)    {}
func (f *fakeSession) Value(k any) any              { f.mu.Lock(); defer f.mu.Unlock(); return f.values[k] }
func (f *fakeSession) SetValue(k, v any)            { f.mu.Lock(); defer f.mu.Unlock(); f.values[k] = v }
func (f *fakeSession) inactive()                    { f.c.inactive(context.Background(), f, nil) }
func (f *fakeSession) active()                      { f.c.active(context.Background(), f, nil) }
func (f *fakeSession) sendAll(els ...*xmlstream.Element) {
	for _, el := range els {
		f.Deliver(el)
	}
}

func (f *fakeSession) Deliver(el *xmlstream.Element) bool {
	if f.c.outgoing(f, el) == module.Stop {
		return true
	}
	f.mu.Lock()
	f.out = append(f.out, el)
	f.mu.Unlock()
	return true
}

// take returns what was delivered since the last call, as short labels.
func (f *fakeSession) take() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, el := range f.out {
		s = append(s, el.Attr("id"))
	}
	f.out = nil
	return strings.Join(s, " ")
}

func presence(id, from, show string) *xmlstream.Element {
	p := xmlstream.NewElement("presence", stanza.NSClient).SetAttr("id", id).SetAttr("from", from)
	if show != "" {
		p.AddChild(xmlstream.NewElement("show", stanza.NSClient).AddText(show))
	}
	return p
}

func message(id, from string, children ...*xmlstream.Element) *xmlstream.Element {
	return xmlstream.NewElement("message", stanza.NSClient).SetAttr("id", id).SetAttr("from", from).SetAttr("type", "chat").AddChild(children...)
}

func bodyEl(s string) *xmlstream.Element {
	return xmlstream.NewElement("body", stanza.NSClient).AddText(s)
}

func chatState(name string) *xmlstream.Element { return xmlstream.NewElement(name, NSChatStates) }

func receipt() *xmlstream.Element {
	return xmlstream.NewElement("received", "urn:xmpp:receipts").SetAttr("id", "x")
}

func carbon(id, dir, user string, inner *xmlstream.Element) *xmlstream.Element {
	return xmlstream.NewElement("message", stanza.NSClient).SetAttr("id", id).SetAttr("from", user).AddChild(
		xmlstream.NewElement(dir, NSCarbons).AddChild(xmlstream.NewElement("forwarded", NSForward).AddChild(inner)))
}

func TestClassify(t *testing.T) {
	c := newFake(Config{}).c
	iq := xmlstream.NewElement("iq", stanza.NSClient).SetAttr("type", "result").SetAttr("from", "x")
	sub := presence("", "bob@y", "").SetAttr("type", "subscribe")
	unavailable := presence("", "bob@y/r", "").SetAttr("type", "unavailable")
	omemo := message("", "bob@y/r", xmlstream.NewElement("encrypted", "eu.siacs.conversations.axolotl"))
	store := message("", "bob@y/r", xmlstream.NewElement("store", NSHints))
	invite := message("", "room@muc", xmlstream.NewElement("x", NSMUCUser).AddChild(xmlstream.NewElement("invite", NSMUCUser)))
	errMsg := message("", "bob@y", receipt()).SetAttr("type", "error")
	stateAndReceipt := message("", "bob@y/r", chatState("active"), receipt())
	stateWithThread := message("", "bob@y/r", chatState("paused"), xmlstream.NewElement("thread", stanza.NSClient).AddText("t"), xmlstream.NewElement("no-store", NSHints))
	pep := message("", "bob@y", xmlstream.NewElement("event", "http://jabber.org/protocol/pubsub#event")).SetAttr("type", "headline")
	subject := message("", "room@muc", xmlstream.NewElement("subject", stanza.NSClient)).SetAttr("type", "groupchat")
	for _, tc := range []struct {
		name string
		el   *xmlstream.Element
		want class
	}{
		{"iq", iq, class{urgent: true, peer: "x"}},
		{"available", presence("", "bob@y/r", "away"), class{peer: "bob@y", key: "p bob@y/r"}},
		{"unavailable", unavailable, class{peer: "bob@y", key: "p bob@y/r"}},
		{"subscribe", sub, class{urgent: true, peer: "bob@y"}},
		{"body", message("", "bob@y/r", bodyEl("hi")), class{urgent: true, peer: "bob@y"}},
		{"subject", subject, class{urgent: true, peer: "room@muc"}},
		{"omemo", omemo, class{urgent: true, peer: "bob@y"}},
		{"store hint", store, class{urgent: true, peer: "bob@y"}},
		{"invitation", invite, class{urgent: true, peer: "room@muc"}},
		{"error", errMsg, class{urgent: true, peer: "bob@y"}},
		{"chat state", message("", "bob@y/r", chatState("composing")), class{chatState: true, peer: "bob@y", key: "c in bob@y/r"}},
		{"chat state with envelope", stateWithThread, class{chatState: true, peer: "bob@y", key: "c in bob@y/r"}},
		{"chat state and receipt", stateAndReceipt, class{peer: "bob@y"}},
		{"receipt", message("", "bob@y/r", receipt()), class{peer: "bob@y"}},
		{"pep", pep, class{peer: "bob@y"}},
		{"received carbon with body", carbon("", "received", "alice@x", message("", "bob@y/r", bodyEl("hi"))), class{urgent: true, peer: "bob@y"}},
		{"received carbon of a chat state", carbon("", "received", "alice@x", message("", "bob@y/r", chatState("composing"))), class{chatState: true, peer: "bob@y", key: "c in bob@y/r"}},
		{"sent carbon of a chat state", carbon("", "sent", "alice@x", message("", "alice@x/desk", chatState("active")).SetAttr("to", "bob@y")), class{chatState: true, peer: "bob@y", key: "c out bob@y"}},
		{"sent carbon of a marker", carbon("", "sent", "alice@x", message("", "alice@x/desk", xmlstream.NewElement("displayed", "urn:xmpp:chat-markers:0")).SetAttr("to", "bob@y")), class{peer: "bob@y"}},
		{"nonza", xmlstream.NewElement("r", "urn:xmpp:sm:3"), class{urgent: true}},
	} {
		if got := c.classify(tc.el); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestQueue: while inactive, presence and chat states keep the latest
// per contact (at the place of the latest), the rest keeps its order;
// everything comes on <active/>.
func TestQueue(t *testing.T) {
	f := newFake(Config{})
	f.sendAll(presence("a0", "bob@y/r", ""))
	f.inactive()
	f.sendAll(
		presence("b1", "bob@y/r", "away"),
		presence("c1", "carol@z/r", "away"),
		message("r1", "bob@y/r", receipt()),
		presence("b2", "bob@y/r", "dnd"),
		message("s1", "bob@y/r", chatState("composing")),
		message("s2", "bob@y/r", chatState("paused")),
		presence("b3", "bob@y/other", "xa"), // another resource: its own key
	)
	if got := f.take(); got != "a0" {
		t.Fatalf("delivered while inactive: %q", got)
	}
	f.active()
	if got := f.take(); got != "c1 r1 b2 s2 b3" {
		t.Fatalf("on <active/>: %q", got)
	}
	f.sendAll(presence("b4", "bob@y/r", ""))
	if got := f.take(); got != "b4" {
		t.Fatalf("active: %q", got)
	}
}

// TestQueueUrgent: an urgent stanza comes at once, after what the same
// sender had queued; the others' stay.
func TestQueueUrgent(t *testing.T) {
	f := newFake(Config{})
	f.inactive()
	f.sendAll(
		presence("b1", "bob@y/r", "away"),
		presence("c1", "carol@z/r", "away"),
		message("s1", "bob@y/phone", chatState("composing")),
		presence("b2", "bob@y/r", "dnd"),
		message("m1", "bob@y/phone", bodyEl("hi")),
	)
	if got := f.take(); got != "s1 b2 m1" {
		t.Fatalf("urgent: %q", got)
	}
	// Nothing queued for dave: at once.
	f.sendAll(message("m2", "dave@w/r", bodyEl("hi")))
	if got := f.take(); got != "m2" {
		t.Fatalf("urgent: %q", got)
	}
	// A carbon of bob's message flushes what bob had queued.
	f.sendAll(presence("b3", "bob@y/r", ""), carbon("k1", "received", "alice@x", message("", "bob@y/r", bodyEl("hi"))))
	if got := f.take(); got != "b3 k1" {
		t.Fatalf("carbon: %q", got)
	}
	f.active()
	if got := f.take(); got != "c1" {
		t.Fatalf("on <active/>: %q", got)
	}
}

// TestQueueOverflow: one stanza over max_queue delivers everything held.
func TestQueueOverflow(t *testing.T) {
	f := newFake(Config{MaxQueue: 3})
	f.inactive()
	f.sendAll(message("r1", "bob@y/r", receipt()), presence("p1", "carol@z/r", ""), presence("p2", "carol@z/r", "away"), message("r2", "bob@y/r", receipt()))
	if got := f.take(); got != "" {
		t.Fatalf("delivered before the limit: %q", got)
	}
	f.sendAll(message("r3", "dave@w/r", receipt()))
	if got := f.take(); got != "r1 p2 r2 r3" {
		t.Fatalf("overflow: %q", got)
	}
	// Still inactive.
	f.sendAll(presence("p3", "carol@z/r", ""))
	if got := f.take(); got != "" {
		t.Fatalf("after overflow: %q", got)
	}
}

// TestQueueDropChatStates: chat_states = "drop".
func TestQueueDropChatStates(t *testing.T) {
	f := newFake(Config{ChatStates: ChatStatesDrop})
	f.inactive()
	f.sendAll(message("s1", "bob@y/r", chatState("composing")), message("r1", "bob@y/r", receipt(), chatState("active")))
	f.active()
	if got := f.take(); got != "r1" {
		t.Fatalf("got %q", got)
	}
}

// TestQueueChurnCompacts: a contact changing presence forever does not
// grow the queue.
func TestQueueChurnCompacts(t *testing.T) {
	f := newFake(Config{MaxQueue: 5})
	f.inactive()
	for i := range 10000 {
		f.sendAll(presence("p"+strconv.Itoa(i), "bob@y/r", ""))
	}
	st := stateOf(f)
	st.mu.Lock()
	n := len(st.queue)
	st.mu.Unlock()
	if n > 64 {
		t.Fatalf("queue of %d entries for one held stanza", n)
	}
	f.active()
	if got := f.take(); got != "p9999" {
		t.Fatalf("got %q", got)
	}
}

// TestQueueClosed: a closed session holds nothing.
func TestQueueClosed(t *testing.T) {
	f := newFake(Config{})
	f.inactive()
	f.sendAll(presence("p1", "bob@y/r", ""))
	f.c.closed(context.Background(), f)
	f.sendAll(presence("p2", "bob@y/r", ""))
	f.active()
	if got := f.take(); got != "p2" {
		t.Fatalf("got %q", got)
	}
}

// TestQueueConcurrent: senders deliver while the client goes inactive and
// active over and over. Each sender's stanzas arrive in order; every
// message arrives exactly once; each sender's last presence arrives last.
func TestQueueConcurrent(t *testing.T) {
	f := newFake(Config{MaxQueue: 8})
	const senders, per = 6, 400
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var toggler sync.WaitGroup
	toggler.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.inactive()
			time.Sleep(time.Duration(rand.IntN(50)) * time.Microsecond)
			f.active()
		}
	})
	for s := range senders {
		wg.Go(func() {
			from := fmt.Sprintf("u%d@y/r", s)
			for i := range per {
				id := fmt.Sprintf("%d-%d", s, i)
				switch i % 5 {
				case 0:
					f.Deliver(message(id, from, bodyEl("hi")))
				case 1:
					f.Deliver(message(id, from, receipt()))
				default:
					f.Deliver(presence(id, from, ""))
				}
			}
			// A last presence, after which nothing comes from the sender.
			f.Deliver(presence(fmt.Sprintf("%d-%d", s, per), from, "xa"))
		})
	}
	wg.Wait()
	close(stop)
	toggler.Wait()
	f.active()

	last := map[int]int{}
	seen := map[string]bool{}
	for _, id := range strings.Fields(f.take()) {
		if seen[id] {
			t.Fatalf("%s delivered twice", id)
		}
		seen[id] = true
		var s, i int
		fmt.Sscanf(id, "%d-%d", &s, &i)
		if prev, ok := last[s]; ok && i <= prev {
			t.Fatalf("sender %d: %d after %d", s, i, prev)
		}
		last[s] = i
	}
	for s := range senders {
		if last[s] != per {
			t.Errorf("sender %d: last delivered %d, want its last presence %d", s, last[s], per)
		}
		for i := 0; i < per; i += 5 {
			if id := fmt.Sprintf("%d-%d", s, i); !seen[id] {
				t.Errorf("message %s lost", id)
			}
		}
	}
}
