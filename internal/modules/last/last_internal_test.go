package last

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// fakeStore stores last activity and rosters in maps.
type fakeStore struct {
	mu      sync.Mutex
	last    map[jid.JID]storage.LastActivity
	roster  map[[2]jid.JID]storage.RosterItem
	failing bool // roster reads fail
}

func newFakeStore() *fakeStore {
	return &fakeStore{last: map[jid.JID]storage.LastActivity{}, roster: map[[2]jid.JID]storage.RosterItem{}}
}

func (f *fakeStore) LastActivity(_ context.Context, u jid.JID) (storage.LastActivity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.last[u]
	if !ok {
		return l, storage.ErrNotFound
	}
	return l, nil
}

func (f *fakeStore) SetLastActivity(_ context.Context, u jid.JID, l storage.LastActivity) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last[u] = l
	return nil
}

func (f *fakeStore) RosterItem(_ context.Context, u, c jid.JID) (storage.RosterItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return storage.RosterItem{}, errors.New("disk on fire")
	}
	it, ok := f.roster[[2]jid.JID{u, c}]
	if !ok {
		return it, storage.ErrNotFound
	}
	return it, nil
}

// lastOnly has no rosters.
type lastOnly struct{ *fakeStore }

// RosterItem with another signature hides the promoted one.
func (lastOnly) RosterItem() {}

// fakeHost knows sessions and records what modules send.
type fakeHost struct {
	module.Host
	mu       sync.Mutex
	sessions map[jid.JID][]module.Session
	sent     []*xmlstream.Element
}

func (h *fakeHost) Sessions(bare jid.JID) []module.Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[bare]
}

func (h *fakeHost) Send(_ context.Context, el *xmlstream.Element) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, el)
}

type fakeSession struct {
	module.Session
	jid    jid.JID
	values map[any]any
}

func (s *fakeSession) JID() jid.JID      { return s.jid }
func (s *fakeSession) Value(k any) any   { return s.values[k] }
func (s *fakeSession) SetValue(k, v any) { s.values[k] = v }
func newSession(full string) *fakeSession {
	return &fakeSession{jid: jid.MustParse(full), values: map[any]any{}}
}
func (s *fakeSession) Deliver(*xmlstream.Element) bool { return true }

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func start(t *testing.T, store any, cfg Config) (*Last, *module.Hooks, *fakeHost, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1700000000, 0)}
	l := &Last{cfg: cfg, now: c.now}
	hooks := &module.Hooks{}
	host := &fakeHost{sessions: map[jid.JID][]module.Session{}}
	env := &module.Env{Host: host, Hooks: hooks, Owner: "last", Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := l.Start(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	return l, hooks, host, c
}

func iqGet(from, to string, target module.Target) *module.IQ {
	st := &stanza.Stanza{Kind: stanza.KindIQ, Type: stanza.IQGet, ID: "q1", From: jid.MustParse(from)}
	if to != "" {
		st.To = jid.MustParse(to)
	}
	st.El = stanza.NewIQ(stanza.IQGet, "q1", st.To, st.From, xmlstream.NewElement("query", NS))
	return &module.IQ{Stanza: st, Target: target}
}

// seconds asks with h and returns the answer's seconds and text.
func seconds(t *testing.T, h module.IQHandler, iq *module.IQ) (string, string) {
	t.Helper()
	el, err := h(context.Background(), iq)
	if err != nil {
		t.Fatalf("error %v", err)
	}
	return el.Attr("seconds"), el.Text()
}

func condition(err error) stanza.Condition {
	var se *stanza.Error
	if errors.As(err, &se) {
		return se.Condition
	}
	return ""
}

var (
	alice = jid.MustParse("alice@example.com")
	bob   = jid.MustParse("bob@example.com")
)

func TestUptime(t *testing.T) {
	_, hooks, _, c := start(t, newFakeStore(), Config{Uptime: true})
	c.advance(34*time.Hour + 1500*time.Millisecond)
	h := hooks.IQHandler(stanza.IQGet, module.TargetHost, NS)
	s, text := seconds(t, h, iqGet("bob@example.com/a", "example.com", module.TargetHost))
	if s != "122401" || text != "" {
		t.Errorf("uptime %q %q", s, text)
	}
	_, hooks, _, _ = start(t, newFakeStore(), Config{Uptime: false})
	if hooks.IQHandler(stanza.IQGet, module.TargetHost, NS) != nil {
		t.Error("uptime answered although disabled")
	}
	for _, h := range hooks.ServerFeatures.Hooks() {
		if h.Fn == NS {
			t.Error("server feature advertised without uptime")
		}
	}
}

// TestLogoutRecorded: the logout of the last session is recorded with the
// status of its unavailable presence; seconds count from it.
func TestLogoutRecorded(t *testing.T) {
	store := newFakeStore()
	store.roster[[2]jid.JID{alice, bob}] = storage.RosterItem{Contact: bob, Subscription: storage.SubBoth}
	_, hooks, host, c := start(t, store, Config{})
	ctx := context.Background()
	s1, s2 := newSession("alice@example.com/one"), newSession("alice@example.com/two")
	host.sessions[alice] = []module.Session{s1, s2}
	ask := hooks.IQHandler(stanza.IQGet, module.TargetBare, NS)

	if sec, _ := seconds(t, ask, iqGet("bob@example.com/x", "alice@example.com", module.TargetBare)); sec != "0" {
		t.Errorf("online: %s", sec)
	}
	unavailable := func(s *fakeSession, status string) {
		p := stanza.NewPresence(stanza.PresenceUnavailable, jid.JID{}, s.jid)
		if status != "" {
			p.AddChild(xmlstream.NewElement("status", stanza.NSClient).AddText(status))
		}
		st := &stanza.Stanza{El: p, Kind: stanza.KindPresence, Type: stanza.PresenceUnavailable, From: s.jid}
		module.RunStanza(ctx, &hooks.UserSend, &module.StanzaEvent{Stanza: st, Session: s, User: alice})
	}
	closed := func(s *fakeSession) {
		host.mu.Lock()
		var rest []module.Session
		for _, o := range host.sessions[alice] {
			if o != module.Session(s) {
				rest = append(rest, o)
			}
		}
		host.sessions[alice] = rest
		host.mu.Unlock()
		for _, h := range hooks.SessionClosed.Hooks() {
			h.Fn(ctx, s)
		}
	}
	unavailable(s1, "first out")
	closed(s1)
	if _, err := store.LastActivity(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("recorded while a session remains: %v", err)
	}
	unavailable(s2, "Heading Home")
	closed(s2)
	c.advance(903 * time.Second)
	sec, text := seconds(t, ask, iqGet("bob@example.com/x", "alice@example.com", module.TargetBare))
	if sec != "903" || text != "Heading Home" {
		t.Errorf("after logout: %q %q", sec, text)
	}
	// Self query, through the TargetSelf fallback.
	sec, _ = seconds(t, ask, iqGet("alice@example.com/new", "", module.TargetSelf))
	if sec != "903" {
		t.Errorf("self: %q", sec)
	}

	// An available presence forgets the status; a dropped connection
	// records none.
	s3 := newSession("alice@example.com/three")
	host.sessions[alice] = []module.Session{s3}
	unavailable(s3, "brb")
	st := &stanza.Stanza{El: stanza.NewPresence("", jid.JID{}, s3.jid), Kind: stanza.KindPresence, From: s3.jid}
	module.RunStanza(ctx, &hooks.UserSend, &module.StanzaEvent{Stanza: st, Session: s3, User: alice})
	closed(s3)
	if _, text := seconds(t, ask, iqGet("bob@example.com/x", "alice@example.com", module.TargetBare)); text != "" {
		t.Errorf("status %q after an available presence", text)
	}
}

func TestWhoMayAsk(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		sub  storage.Subscription
		item bool
		want stanza.Condition
	}{
		{storage.SubFrom, true, ""},
		{storage.SubBoth, true, ""},
		{storage.SubTo, true, stanza.Forbidden},
		{storage.SubNone, true, stanza.Forbidden},
		{"", false, stanza.Forbidden},
	} {
		store := newFakeStore()
		store.last[alice] = storage.LastActivity{At: time.Unix(1700000000, 0)}
		if tc.item {
			store.roster[[2]jid.JID{alice, bob}] = storage.RosterItem{Contact: bob, Subscription: tc.sub}
		}
		// bob's roster saying alice is subscribed to him means nothing.
		store.roster[[2]jid.JID{bob, alice}] = storage.RosterItem{Contact: alice, Subscription: storage.SubBoth}
		_, hooks, _, _ := start(t, store, Config{})
		ask := hooks.IQHandler(stanza.IQGet, module.TargetBare, NS)
		_, err := ask(ctx, iqGet("bob@example.com/x", "alice@example.com", module.TargetBare))
		if got := condition(err); got != tc.want || tc.want == "" && err != nil {
			t.Errorf("subscription %q (item %v): %v, want %q", tc.sub, tc.item, err, tc.want)
		}
	}

	// Never logged out: item-not-found.
	store := newFakeStore()
	_, hooks, _, _ := start(t, store, Config{})
	_, err := hooks.IQHandler(stanza.IQGet, module.TargetSelf, NS)(ctx, iqGet("alice@example.com/x", "", module.TargetSelf))
	if condition(err) != stanza.ItemNotFound {
		t.Errorf("never logged out: %v", err)
	}

	// A failing roster is an internal error, not an answer.
	store = newFakeStore()
	store.failing = true
	_, hooks, _, _ = start(t, store, Config{})
	_, err = hooks.IQHandler(stanza.IQGet, module.TargetBare, NS)(ctx, iqGet("bob@example.com/x", "alice@example.com", module.TargetBare))
	var se *stanza.Error
	if err == nil || errors.As(err, &se) {
		t.Errorf("failing roster: %v", err)
	}

	// Without rosters only the user may ask.
	store = newFakeStore()
	store.last[alice] = storage.LastActivity{At: time.Unix(1700000000, 0)}
	_, hooks, _, _ = start(t, lastOnly{store}, Config{})
	ask := hooks.IQHandler(stanza.IQGet, module.TargetBare, NS)
	if _, err := ask(ctx, iqGet("bob@example.com/x", "alice@example.com", module.TargetBare)); condition(err) != stanza.Forbidden {
		t.Errorf("no roster store, bob: %v", err)
	}
	if _, err := ask(ctx, iqGet("alice@example.com/x", "", module.TargetSelf)); err != nil {
		t.Errorf("no roster store, alice herself: %v", err)
	}
}

// TestFullJIDGuard: a query to a full JID from someone who may not see
// the user's presence is answered forbidden and not delivered (§4).
func TestFullJIDGuard(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	_, hooks, host, _ := start(t, store, Config{})
	run := func(from string, payload *xmlstream.Element, typ string) module.Result {
		f, to := jid.MustParse(from), jid.MustParse("alice@example.com/phone")
		st := &stanza.Stanza{El: stanza.NewIQ(typ, "g1", to, f, payload), Kind: stanza.KindIQ, Type: typ, ID: "g1", From: f, To: to}
		return module.RunStanza(ctx, &hooks.UserReceive, &module.StanzaEvent{Stanza: st, User: alice})
	}
	if run("bob@example.com/x", xmlstream.NewElement("query", NS), stanza.IQGet) != module.Stop {
		t.Fatal("query from a stranger delivered")
	}
	if len(host.sent) != 1 || host.sent[0].Attr("type") != "error" || host.sent[0].Attr("to") != "bob@example.com/x" {
		t.Fatalf("sent %v", host.sent)
	}
	if e, ok := stanza.ParseError(host.sent[0]); !ok || e.Condition != stanza.Forbidden {
		t.Errorf("error %v", host.sent[0])
	}
	for _, tc := range []struct {
		from    string
		payload *xmlstream.Element
		typ     string
	}{
		{"alice@example.com/laptop", xmlstream.NewElement("query", NS), stanza.IQGet}, // own resource
		{"bob@example.com/x", xmlstream.NewElement("ping", "urn:xmpp:ping"), stanza.IQGet},
		{"bob@example.com/x", xmlstream.NewElement("query", NS), stanza.IQSet},
	} {
		if run(tc.from, tc.payload, tc.typ) != module.Continue {
			t.Errorf("%s %s from %s stopped", tc.typ, tc.payload.NS, tc.from)
		}
	}
	store.roster[[2]jid.JID{alice, bob}] = storage.RosterItem{Contact: bob, Subscription: storage.SubFrom}
	if run("bob@example.com/x", xmlstream.NewElement("query", NS), stanza.IQGet) != module.Continue {
		t.Error("query from a subscribed contact stopped")
	}
}
