package offline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/internal/storage/sqlite"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func parse(t *testing.T, s string) *stanza.Stanza {
	t.Helper()
	el, err := parseStored(s)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil {
		t.Fatalf("%s: %v", s, serr)
	}
	return &st
}

func parsePresence(t *testing.T, s string) *stanza.Stanza {
	t.Helper()
	el, err := xmlstream.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil {
		t.Fatal(serr)
	}
	return &st
}

func TestClassify(t *testing.T) {
	const m = "<message xmlns='jabber:client' from='a@x/r' to='b@x'"
	for _, tc := range []struct {
		msg  string
		want Verdict
	}{
		{m + "><body>hi</body></message>", Keep},
		{m + " type='chat'><body>hi</body></message>", Keep},
		{m + " type='chat'><body/></message>", Keep},
		{m + " type='chat'><subject>s</subject></message>", Keep},
		{m + "><x xmlns='jabber:x:conference' jid='room@muc.x'/></message>", Keep},
		{m + " type='chat'><received xmlns='urn:xmpp:receipts' id='1'/></message>", Keep},
		{m + " type='chat'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>", Keep},
		// XEP-0085 §5.8: standalone notifications are not stored.
		{m + " type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", Drop},
		{m + " type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread></message>", Drop},
		{m + " type='chat'><x xmlns='jabber:x:event'><composing/></x></message>", Drop},
		{m + " type='chat'/>", Drop},
		// XEP-0334 §4.
		{m + " type='chat'><body>hi</body><no-store xmlns='urn:xmpp:hints'/></message>", Refuse},
		{m + " type='chat'><body>hi</body><no-store xmlns='urn:xmpp:hints'/><store xmlns='urn:xmpp:hints'/></message>", Refuse},
		{m + " type='chat'><gone xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>", Drop},
		{m + " type='chat'><store xmlns='urn:xmpp:hints'/></message>", Keep},
		{m + " type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/><store xmlns='urn:xmpp:hints'/></message>", Keep},
		{m + " type='chat'><body>otr</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>", Keep},
		// XEP-0160 §3.
		{m + " type='headline'><body>hi</body></message>", Refuse},
		{m + " type='groupchat'><body>hi</body></message>", Refuse},
		{m + " type='error'><body>hi</body><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>", Refuse},
	} {
		if got := Classify(parse(t, tc.msg)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.msg, got, tc.want)
		}
	}
}

func TestDelay(t *testing.T) {
	at := time.Date(2002, 9, 10, 23, 8, 25, 123456789, time.FixedZone("x", 3600))
	got := Delay(jid.MustParse("capulet.com"), at, "Offline Storage").String()
	want := "<delay xmlns='urn:xmpp:delay' from='capulet.com' stamp='2002-09-10T22:08:25.123456Z'>Offline Storage</delay>"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	got = Delay(jid.MustParse("capulet.com"), at.Truncate(time.Second), "").String()
	want = "<delay xmlns='urn:xmpp:delay' from='capulet.com' stamp='2002-09-10T22:08:25Z'/>"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestForgedDelays(t *testing.T) {
	st := parse(t, "<message xmlns='jabber:client' to='b@x'><body>hi</body>"+
		"<delay xmlns='urn:xmpp:delay' from='x' stamp='2001-01-01T00:00:00Z'/>"+
		"<delay xmlns='urn:xmpp:delay' from='muc.y' stamp='2001-01-01T00:00:00Z'/></message>")
	before := st.El.String()
	got := withoutForgedDelays(st.El, "x").String()
	want := "<message xmlns='jabber:client' to='b@x'><body>hi</body><delay xmlns='urn:xmpp:delay' from='muc.y' stamp='2001-01-01T00:00:00Z'/></message>"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	if st.El.String() != before {
		t.Error("the received element was modified")
	}
	if withoutForgedDelays(st.El, "z") != st.El {
		t.Error("copied without need")
	}
}

// fakeSession is a module.Session that records what it is given.
type fakeSession struct {
	full      jid.JID
	available bool
	priority  int
	refuse    bool // Deliver reports false: the session is ending

	mu        sync.Mutex
	delivered []*xmlstream.Element
	values    map[any]any
}

func (s *fakeSession) JID() jid.JID                  { return s.full }
func (s *fakeSession) StreamID() string              { return "s" }
func (s *fakeSession) Available() bool               { return s.available }
func (s *fakeSession) Priority() int                 { return s.priority }
func (s *fakeSession) Presence() *xmlstream.Element  { return nil }
func (s *fakeSession) LastActivity() time.Time       { return time.Now() }
func (s *fakeSession) Close(err *stanza.StreamError) {}
func (s *fakeSession) Deliver(el *xmlstream.Element) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse {
		return false
	}
	s.delivered = append(s.delivered, el)
	return true
}
func (s *fakeSession) Value(key any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[key]
}
func (s *fakeSession) SetValue(key, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[any]any{}
	}
	s.values[key] = value
}

// fakeHost is the part of module.Host the module uses.
type fakeHost struct {
	module.Host
	sessions []module.Session
	sent     []*xmlstream.Element
	routed   []*stanza.Stanza
	rerouted []time.Time
}

func (h *fakeHost) Route(ctx context.Context, st *stanza.Stanza) {
	at, _ := module.Rerouted(ctx)
	h.routed = append(h.routed, st)
	h.rerouted = append(h.rerouted, at)
}

func (h *fakeHost) Sessions(jid.JID) []module.Session             { return h.sessions }
func (h *fakeHost) Send(_ context.Context, el *xmlstream.Element) { h.sent = append(h.sent, el) }

func start(t *testing.T, cfg Config, host module.Host) (*Offline, storage.Backend) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	o := &Offline{cfg: cfg}
	env := &module.Env{Host: host, Hooks: &module.Hooks{}, Owner: "offline", Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := o.Start(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	return o, store
}

// TestStoredWhileDraining: a message whose storing commits after a session
// claimed the queue at login (the router saw no available resource just
// before) is delivered to that session at once instead of waiting for its
// next login.
func TestStoredWhileDraining(t *testing.T) {
	ctx := context.Background()
	bob := &fakeSession{full: jid.MustParse("bob@x/r"), available: true}
	host := &fakeHost{sessions: []module.Session{bob}}
	o, store := start(t, Config{OverflowError: OverflowServiceUnavailable}, host)
	if err := store.CreateAccount(ctx, bob.full.Bare(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	o.sessionOpened(ctx, bob)
	ev := func(body string) *module.StanzaEvent {
		return &module.StanzaEvent{User: bob.full.Bare(), Stanza: parse(t, "<message xmlns='jabber:client' from='a@x/r' to='bob@x' type='chat'><body>"+body+"</body></message>")}
	}
	// Before bob's initial presence: stored, not delivered.
	if o.storeMessage(ctx, ev("early")) != module.Stop || len(bob.delivered) != 0 {
		t.Fatalf("early message: %v", bob.delivered)
	}
	o.initialPresence(ctx, bob)
	if len(bob.delivered) != 1 {
		t.Fatalf("at login: %d delivered", len(bob.delivered))
	}
	// The race: stored after the login's claim.
	if o.storeMessage(ctx, ev("late")) != module.Stop {
		t.Fatal("late message not taken")
	}
	if len(bob.delivered) != 2 || bob.delivered[1].ChildText("body", stanza.NSClient) != "late" {
		t.Fatalf("the late message was not delivered at once: %v", bob.delivered)
	}
	if n, _ := store.(storage.OfflineStore).OfflineCount(ctx, bob.full.Bare()); n != 0 {
		t.Fatalf("%d left in storage", n)
	}
	// A session with a negative priority does not get it.
	bob.priority = -1
	o.storeMessage(ctx, ev("held"))
	if len(bob.delivered) != 2 {
		t.Fatal("delivered to a negative priority")
	}
}

// TestGate: while a session is eligible and not drained, the normal and
// chat messages given to it are held, and delivered after the stored
// ones; a session that ends before taking them has them routed again to
// the bare JID, marked as rerouted, except the copies made for it.
func TestGate(t *testing.T) {
	ctx := context.Background()
	bob := &fakeSession{full: jid.MustParse("bob@x/r")}
	host := &fakeHost{sessions: []module.Session{bob}}
	o, store := start(t, Config{OverflowError: OverflowServiceUnavailable}, host)
	if err := store.CreateAccount(ctx, bob.full.Bare(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	o.sessionOpened(ctx, bob)
	msg := func(attrs, body string) *xmlstream.Element {
		return parse(t, "<message xmlns='jabber:client' to='bob@x' "+attrs+"><body>"+body+"</body></message>").El
	}
	// Not available: messages (to the full JID) pass.
	if o.outgoing(bob, msg("from='a@x/r' type='chat'", "before")) != module.Continue {
		t.Fatal("held before presence")
	}
	o.storeMessage(ctx, &module.StanzaEvent{User: bob.full.Bare(), Stanza: parse(t, "<message xmlns='jabber:client' from='a@x/r' to='bob@x' type='chat'><body>stored</body></message>")})
	bob.available = true
	for _, tc := range []struct {
		el   *xmlstream.Element
		want module.Result
	}{
		{msg("from='a@x/r' type='chat'", "live"), module.Stop},
		{msg("from='a@x/r'", "normal"), module.Stop},
		{msg("from='bob@x' type='chat'", "carbon"), module.Stop},
		{msg("from='a@x/r' type='headline'", "headline"), module.Continue},
		{xmlstream.NewElement("presence", stanza.NSClient), module.Continue},
	} {
		if got := o.outgoing(bob, tc.el); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.el, got, tc.want)
		}
	}
	bob.refuse = true // it ends
	o.initialPresence(ctx, bob)
	if len(bob.delivered) != 0 {
		t.Fatalf("delivered to an ending session: %v", bob.delivered)
	}
	if len(host.routed) != 2 {
		t.Fatalf("routed again: %v", host.routed)
	}
	for i, body := range []string{"live", "normal"} {
		st := host.routed[i]
		if st.El.ChildText("body", stanza.NSClient) != body || st.To != bob.full.Bare() || st.El.Attr("to") != "bob@x" ||
			st.El.Child("delay", NSDelay) == nil || host.rerouted[i].IsZero() {
			t.Errorf("routed again: %s to %v (rerouted at %v), want %q to bob@x with a delay", st.El, st.To, host.rerouted[i], body)
		}
	}
	if n, _ := store.(storage.OfflineStore).OfflineCount(ctx, bob.full.Bare()); n != 1 {
		t.Errorf("%d stored, want the one bob did not take", n)
	}
	// The gate is open: messages pass.
	bob.refuse = false
	if o.outgoing(bob, msg("from='a@x/r' type='chat'", "after")) != module.Continue {
		t.Error("held after the drain")
	}
	// Negative priority: closed again, but not eligible, so nothing is
	// held; back to 0, the gate holds until the drain.
	bob.priority = -1
	o.presenceChange(ctx, &module.StanzaEvent{Session: bob, Stanza: parsePresence(t, "<presence xmlns='jabber:client' from='bob@x/r'><priority>-1</priority></presence>")})
	if o.outgoing(bob, msg("from='a@x/r' type='chat'", "negative")) != module.Continue {
		t.Error("held by a session with a negative priority")
	}
	bob.priority = 0
	if o.outgoing(bob, msg("from='a@x/r' type='chat'", "held")) != module.Stop {
		t.Error("not held before the drain")
	}
	o.presenceChange(ctx, &module.StanzaEvent{Session: bob, Stanza: parsePresence(t, "<presence xmlns='jabber:client' from='bob@x/r'/>")})
	var got []string
	for _, el := range bob.delivered {
		got = append(got, el.ChildText("body", stanza.NSClient))
	}
	if want := "[stored held]"; fmt.Sprint(got) != want {
		t.Errorf("delivered %v, want %s", got, want)
	}
}

// TestReleaseAtStart: claims left by a process that died while delivering
// are given back when the module starts.
func TestReleaseAtStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bob := jid.MustParse("bob@x")
	store.CreateAccount(ctx, bob, []byte("x"))
	store.PushOffline(ctx, bob, &storage.OfflineMessage{Stanza: "<message xmlns='jabber:client'><body>x</body></message>"}, storage.OfflineLimits{})
	if got, _ := store.ClaimOffline(ctx, bob, "dead-process", time.Now().Add(-time.Minute)); len(got) != 1 {
		t.Fatal("claim failed")
	}
	o := &Offline{cfg: Config{OverflowError: OverflowServiceUnavailable}}
	env := &module.Env{Host: &fakeHost{}, Hooks: &module.Hooks{}, Owner: "offline", Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := o.Start(ctx, env); err != nil {
		t.Fatal(err)
	}
	s := &fakeSession{full: jid.MustParse("bob@x/r"), available: true}
	o.initialPresence(ctx, s)
	if len(s.delivered) != 1 {
		t.Fatalf("%d delivered after restart", len(s.delivered))
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{MaxMessages: 0, MaxBytes: 0, OverflowError: OverflowResourceConstraint}
	if errs := good.Validate(); len(errs) != 0 {
		t.Errorf("%v", errs)
	}
	bad := Config{MaxMessages: -1, MaxBytes: -1, OverflowError: "item-not-found"}
	if errs := bad.Validate(); len(errs) != 3 {
		t.Errorf("want 3 errors, got %v", errs)
	}
}

// TestStoredLateToTheMostAvailable: a message stored after the sessions
// drained goes to the eligible session with the highest priority (RFC
// 6121 §8.5.2.1.1), and to the next one when that one is ending; it does
// not stay stored while a session could take it.
func TestStoredLateToTheMostAvailable(t *testing.T) {
	ctx := context.Background()
	low := &fakeSession{full: jid.MustParse("bob@x/low"), available: true}
	high := &fakeSession{full: jid.MustParse("bob@x/high"), available: true, priority: 5}
	host := &fakeHost{sessions: []module.Session{low, high}}
	o, store := start(t, Config{OverflowError: OverflowServiceUnavailable}, host)
	if err := store.CreateAccount(ctx, low.full.Bare(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*fakeSession{low, high} {
		o.sessionOpened(ctx, s)
		o.initialPresence(ctx, s)
	}
	ev := func(body string) *module.StanzaEvent {
		return &module.StanzaEvent{User: low.full.Bare(), Stanza: parse(t, "<message xmlns='jabber:client' from='a@x/r' to='bob@x' type='chat'><body>"+body+"</body></message>")}
	}
	o.storeMessage(ctx, ev("first"))
	if len(high.delivered) != 1 || len(low.delivered) != 0 {
		t.Fatalf("delivered to high %d, low %d; want the highest priority", len(high.delivered), len(low.delivered))
	}
	high.refuse = true // ending
	o.storeMessage(ctx, ev("second"))
	if len(low.delivered) != 1 || low.delivered[0].ChildText("body", stanza.NSClient) != "second" {
		t.Fatalf("the next session did not get it: %v", low.delivered)
	}
	if n, _ := store.(storage.OfflineStore).OfflineCount(ctx, low.full.Bare()); n != 0 {
		t.Fatalf("%d left stored while a session could take them", n)
	}
}

// TestSessionClosedReroutesHeld: what a gate still holds when its session
// ends is routed again to the bare JID.
func TestSessionClosedReroutesHeld(t *testing.T) {
	ctx := context.Background()
	bob := &fakeSession{full: jid.MustParse("bob@x/r"), available: true}
	host := &fakeHost{sessions: []module.Session{bob}}
	o, _ := start(t, Config{OverflowError: OverflowServiceUnavailable}, host)
	o.sessionOpened(ctx, bob)
	m := parse(t, "<message xmlns='jabber:client' from='a@x/r' to='bob@x/r' type='chat'><body>held</body></message>").El
	if o.outgoing(bob, m) != module.Stop {
		t.Fatal("not held before the drain")
	}
	o.sessionClosed(ctx, bob)
	if len(host.routed) != 1 || host.routed[0].To != bob.full.Bare() || host.rerouted[0].IsZero() {
		t.Fatalf("routed again: %v", host.routed)
	}
	o.sessionClosed(ctx, bob) // nothing twice
	if len(host.routed) != 1 {
		t.Fatalf("routed twice: %v", host.routed)
	}
}
