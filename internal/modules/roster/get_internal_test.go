package roster

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/internal/storage/sqlite"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// countingStore counts the RosterSize queries.
type countingStore struct {
	*sqlite.Store
	sizes atomic.Int32
}

func (s *countingStore) RosterSize(ctx context.Context, user jid.JID) (int, error) {
	s.sizes.Add(1)
	return s.Store.RosterSize(ctx, user)
}

// fakeHost has the user's sessions; nothing else is called.
type fakeHost struct {
	module.Host
	sessions []module.Session
}

func (h *fakeHost) Sessions(jid.JID) []module.Session { return h.sessions }
func (h *fakeHost) IsLocal(d string) bool             { return d == "example.com" }

// fakeSession records what it gets.
type fakeSession struct {
	module.Session
	jid jid.JID
	mu  sync.Mutex
	got []*xmlstream.Element
	val map[any]any
}

func (s *fakeSession) JID() jid.JID { return s.jid }
func (s *fakeSession) Deliver(el *xmlstream.Element) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, el)
	return true
}
func (s *fakeSession) Value(k any) any { s.mu.Lock(); defer s.mu.Unlock(); return s.val[k] }
func (s *fakeSession) SetValue(k, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.val[k] = v
}
func (s *fakeSession) take() []*xmlstream.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// TestVersionedGetWithHooks: a versioned get (RFC 6121 §2.6.3) when
// RosterItem hooks add to items reads the roster once for the
// fingerprint: each item goes through the hooks once (the changed ones
// are pushed as they were rendered then, not rendered again), and the
// choice between interim pushes and the whole roster counts the items
// read instead of asking storage (RosterSize).
func TestVersionedGetWithHooks(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "meerkat.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	alice := jid.MustParse("alice@example.com")
	if err := st.CreateAccount(ctx, alice, []byte("x")); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	sess := &fakeSession{jid: jid.MustParse("alice@example.com/phone"), val: map[any]any{}}
	hooks := &module.Hooks{}
	r := &Roster{cfg: Config{MaxItems: 1000, MaxNameLength: 1024, MaxGroupLength: 1024, MaxGroups: 64}}
	if err := r.Start(ctx, &module.Env{Host: &fakeHost{sessions: []module.Session{sess}}, Hooks: hooks, Owner: "roster", Store: cs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	var rendered sync.Map // contact → *atomic.Int32
	hooks.RosterItem.Add("test", 0, func(_ context.Context, _ jid.JID, item *xmlstream.Element) {
		n, _ := rendered.LoadOrStore(item.Attr("jid"), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		item.AddChild(xmlstream.NewElement("note", "urn:example:note").AddText("n"))
	})
	renders := func() map[string]int32 {
		out := map[string]int32{}
		rendered.Range(func(k, v any) bool {
			out[k.(string)] = v.(*atomic.Int32).Swap(0)
			return true
		})
		return out
	}
	contacts := []jid.JID{jid.MustParse("bob@example.com"), jid.MustParse("carol@example.com"), jid.MustParse("dave@example.com")}
	for _, c := range contacts {
		if _, _, err := st.PutRosterItem(ctx, alice, storage.RosterItem{Contact: c, Subscription: storage.SubNone}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(ver string) {
		t.Helper()
		q := xmlstream.NewElement("query", NS)
		if ver != "" {
			q.SetAttr("ver", ver)
		}
		el := stanza.NewIQ(stanza.IQGet, "g1", jid.JID{}, sess.jid, q)
		p, serr := stanza.Parse(el, stanza.NSClient)
		if serr != nil {
			t.Fatal(serr)
		}
		if _, err := r.get(ctx, &module.IQ{Stanza: &p, Session: sess, Target: module.TargetSelf}); err != module.ErrReplied {
			t.Fatalf("get: %v", err)
		}
	}

	get("")
	res := sess.take()
	if len(res) != 1 {
		t.Fatalf("got %v", res)
	}
	ver := res[0].Child("query", NS).Attr("ver")
	renders()

	// Two of three items change: two interim pushes.
	for _, c := range contacts[:2] {
		if _, _, err := st.PutRosterItem(ctx, alice, storage.RosterItem{Contact: c, Name: "new", Subscription: storage.SubNone}); err != nil {
			t.Fatal(err)
		}
	}
	cs.sizes.Store(0)
	get(ver)
	got := sess.take()
	if len(got) != 3 || got[0].Attr("type") != "result" || got[0].FirstChild() != nil {
		t.Fatalf("want an empty result and two pushes, got %v", got)
	}
	for i, c := range contacts[:2] {
		it := got[i+1].Child("query", NS).Child("item", NS)
		if it.Attr("jid") != c.String() || it.Attr("name") != "new" || it.Child("note", "urn:example:note") == nil {
			t.Fatalf("push %d: %s", i, got[i+1])
		}
	}
	if n := renders(); len(n) != 3 || n["bob@example.com"] != 1 || n["carol@example.com"] != 1 || n["dave@example.com"] != 1 {
		t.Errorf("hook runs per item: %v, want one each", n)
	}
	if n := cs.sizes.Load(); n != 0 {
		t.Errorf("%d RosterSize queries, want none", n)
	}
}
