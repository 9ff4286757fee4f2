package blocking

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage/sqlite"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// TestMatching: the rules of XEP-0191 §6 for each form of item.
func TestMatching(t *testing.T) {
	addrs := []string{
		"romeo@montague.net/orchard", "romeo@montague.net/garden", "romeo@montague.net",
		"benvolio@montague.net", "benvolio@montague.net/x", "montague.net", "montague.net/gateway",
		"montague.net/other", "romeo@capulet.com", "sub.montague.net", "x@sub.montague.net",
	}
	for _, tc := range []struct {
		item    string
		blocked []string
	}{
		// 1. user@domain/resource: only that resource.
		{"romeo@montague.net/orchard", []string{"romeo@montague.net/orchard"}},
		// 2. user@domain: any resource (and the bare JID).
		{"romeo@montague.net", []string{"romeo@montague.net/orchard", "romeo@montague.net/garden", "romeo@montague.net"}},
		// 3. domain/resource: only that resource.
		{"montague.net/gateway", []string{"montague.net/gateway"}},
		// 4. domain: the domain, every user@domain and domain/resource;
		// not subdomains, which XEP-0191 does not name.
		{"montague.net", []string{
			"romeo@montague.net/orchard", "romeo@montague.net/garden", "romeo@montague.net",
			"benvolio@montague.net", "benvolio@montague.net/x", "montague.net", "montague.net/gateway", "montague.net/other",
		}},
	} {
		l := newList([]jid.JID{jid.MustParse(tc.item)})
		for _, a := range addrs {
			want := false
			for _, b := range tc.blocked {
				want = want || a == b
			}
			if got := l.blocks(jid.MustParse(a)); got != want {
				t.Errorf("item %s, address %s: blocked %v, want %v", tc.item, a, got, want)
			}
		}
	}
	if emptyList.blocks(jid.MustParse("a@b")) || newList(nil).blocks(jid.MustParse("a@b")) {
		t.Error("an empty list blocks")
	}
	if newList([]jid.JID{jid.MustParse("a@b")}).blocks(jid.JID{}) {
		t.Error("the zero JID is blocked")
	}
}

// TestCacheBounded: lists of users without a session are evicted beyond
// the size; those of connected users never are.
func TestCacheBounded(t *testing.T) {
	var mu sync.Mutex
	online := map[jid.JID]bool{}
	c := newCache(100, func(u jid.JID) bool {
		mu.Lock()
		defer mu.Unlock()
		return online[u]
	})
	user := func(i int) jid.JID { return jid.MustParse(fmt.Sprintf("u%d@x", i)) }
	for i := range 50 {
		online[user(i)] = true
		c.put(user(i), emptyList)
	}
	for i := 50; i < 1000; i++ {
		c.put(user(i), emptyList)
		if c.len() > 100+16 {
			t.Fatalf("%d lists after %d insertions", c.len(), i+1)
		}
		if _, ok := c.get(user(i)); !ok {
			t.Fatalf("the list just stored was evicted")
		}
	}
	for i := range 50 {
		if _, ok := c.get(user(i)); !ok {
			t.Fatalf("the list of connected user %d was evicted", i)
		}
	}
	// More connected users than the size: they all stay, and the scans
	// do not run on every insertion.
	for i := 1000; i < 1300; i++ {
		online[user(i)] = true
		c.put(user(i), emptyList)
	}
	for i := 1000; i < 1300; i++ {
		if _, ok := c.get(user(i)); !ok {
			t.Fatalf("the list of connected user %d was evicted", i)
		}
	}
	c.drop(user(1000))
	if _, ok := c.get(user(1000)); ok {
		t.Fatal("drop")
	}
}

func TestConfigValidate(t *testing.T) {
	if errs := (&Config{MaxItems: 0, CacheSize: 1}).Validate(); len(errs) != 0 {
		t.Error(errs)
	}
	if errs := (&Config{MaxItems: -1, CacheSize: 0}).Validate(); len(errs) != 2 {
		t.Error(errs)
	}
}

type fakeSession struct {
	module.Session
	full jid.JID

	mu        sync.Mutex
	values    map[any]any
	delivered []*xmlstream.Element
}

func (s *fakeSession) JID() jid.JID    { return s.full }
func (s *fakeSession) Available() bool { return false }
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
func (s *fakeSession) Deliver(el *xmlstream.Element) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered = append(s.delivered, el)
	return true
}

type fakeHost struct {
	module.Host
	mu       sync.Mutex
	sessions map[jid.JID][]module.Session
}

func (h *fakeHost) Sessions(u jid.JID) []module.Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[u]
}

// TestCacheFollowsSessions: a list is dropped when its user's last
// session closes, and when the account is removed.
func TestCacheFollowsSessions(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	alice := jid.MustParse("alice@x")
	s1, s2 := &fakeSession{full: jid.MustParse("alice@x/1")}, &fakeSession{full: jid.MustParse("alice@x/2")}
	host := &fakeHost{sessions: map[jid.JID][]module.Session{alice: {s1, s2}}}
	hooks := &module.Hooks{}
	b := &Blocking{cfg: Config{CacheSize: 10}}
	if err := b.Start(ctx, &module.Env{Host: host, Hooks: hooks, Owner: "blocking", Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	closed := func(s module.Session) {
		for _, h := range hooks.SessionClosed.Hooks() {
			h.Fn(ctx, s)
		}
	}
	if _, err := b.list(ctx, alice); err != nil {
		t.Fatal(err)
	}
	host.sessions[alice] = []module.Session{s2}
	closed(s1)
	if _, ok := b.cache.get(alice); !ok {
		t.Fatal("dropped while a session is left")
	}
	host.sessions[alice] = nil
	closed(s2)
	if _, ok := b.cache.get(alice); ok {
		t.Fatal("kept after the last session closed")
	}
	b.list(ctx, alice)
	for _, h := range hooks.UserRemoved.Hooks() {
		h.Fn(ctx, alice)
	}
	if _, ok := b.cache.get(alice); ok {
		t.Fatal("kept after the account was removed")
	}
}

// TestConcurrentChanges: resources changing the list at once while
// others fetch it. The cache ends equal to storage, and a resource that
// applies the pushes it got, in order, to the list it fetched ends with
// the same list: the answer to a get never comes after a push it
// includes, and pushes come in the order of the changes.
func TestConcurrentChanges(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	alice := jid.MustParse("alice@x")
	store.CreateAccount(ctx, alice, []byte("x"))
	var sessions []module.Session
	for i := range 6 {
		sessions = append(sessions, &fakeSession{full: jid.MustParse(fmt.Sprintf("alice@x/%d", i))})
	}
	host := &fakeHost{sessions: map[jid.JID][]module.Session{alice: sessions}}
	b := &Blocking{cfg: Config{CacheSize: 10}}
	if err := b.Start(ctx, &module.Env{Host: host, Hooks: &module.Hooks{}, Owner: "blocking", Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	iq := func(s module.Session, typ string, payload *xmlstream.Element) *module.IQ {
		el := stanza.NewIQ(typ, "q", jid.JID{}, s.JID(), payload)
		st, serr := stanza.Parse(el, stanza.NSClient)
		if serr != nil {
			t.Fatal(serr)
		}
		return &module.IQ{Stanza: &st, Session: s, Target: module.TargetSelf}
	}
	targets := []jid.JID{jid.MustParse("a@y"), jid.MustParse("b@y"), jid.MustParse("y"), jid.MustParse("c@y/r")}
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Go(func() {
			if i%2 == 0 {
				if _, err := b.get(ctx, iq(s, "get", itemsElement("blocklist", nil))); err != module.ErrReplied {
					t.Error(err)
				}
			}
			for k := range 40 {
				j := targets[(i+k)%len(targets)]
				var payload *xmlstream.Element
				switch (i * k) % 5 {
				case 0, 1:
					payload = itemsElement("block", []jid.JID{j})
				case 2, 3:
					payload = itemsElement("unblock", []jid.JID{j})
				default:
					payload = itemsElement("unblock", nil)
				}
				if _, err := b.set(ctx, iq(s, "set", payload)); err != module.ErrReplied {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	stored, _ := store.BlockList(ctx, alice)
	cached, _ := b.cache.get(alice)
	if fmt.Sprint(stored) != fmt.Sprint(cached.items) {
		t.Fatalf("cache %v, storage %v", cached.items, stored)
	}
	for i, s := range sessions {
		if i%2 != 0 {
			continue
		}
		fs := s.(*fakeSession)
		var model []jid.JID
		fetched := false
		for _, el := range fs.delivered {
			if el.Attr("type") == "result" {
				if bl := el.Child("blocklist", NS); bl != nil {
					model, fetched = nil, true
					for it := range bl.ChildrenNamed("item", NS) {
						model = append(model, jid.MustParse(it.Attr("jid")))
					}
				}
				continue
			}
			if !fetched {
				t.Fatalf("session %d: a push before the list", i)
			}
			if c := el.Child("block", NS); c != nil {
				for it := range c.ChildrenNamed("item", NS) {
					if j := jid.MustParse(it.Attr("jid")); !slices.Contains(model, j) {
						model = append(model, j)
					}
				}
			}
			if c := el.Child("unblock", NS); c != nil {
				n := 0
				for it := range c.ChildrenNamed("item", NS) {
					n++
					j := jid.MustParse(it.Attr("jid"))
					model = slices.DeleteFunc(model, func(m jid.JID) bool { return m == j })
				}
				if n == 0 {
					model = nil
				}
			}
		}
		if fmt.Sprint(model) != fmt.Sprint(stored) {
			t.Errorf("session %d ends with %v, storage has %v", i, model, stored)
		}
	}
}
