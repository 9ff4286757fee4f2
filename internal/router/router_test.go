package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

type fakeSession struct {
	jid       jid.JID
	available bool
	priority  int

	mu     sync.Mutex
	got    []*xmlstream.Element
	closed *stanza.StreamError
}

func (s *fakeSession) JID() jid.JID                 { return s.jid }
func (s *fakeSession) StreamID() string             { return "x" }
func (s *fakeSession) Available() bool              { return s.available }
func (s *fakeSession) Priority() int                { return s.priority }
func (s *fakeSession) Presence() *xmlstream.Element { return nil }
func (s *fakeSession) LastActivity() time.Time      { return time.Time{} }
func (s *fakeSession) Value(any) any                { return nil }
func (s *fakeSession) SetValue(any, any)            {}
func (s *fakeSession) Close(err *stanza.StreamError) {
	s.mu.Lock()
	s.closed = err
	s.mu.Unlock()
}
func (s *fakeSession) Deliver(el *xmlstream.Element) bool {
	s.mu.Lock()
	s.got = append(s.got, el)
	s.mu.Unlock()
	return true
}
func (s *fakeSession) take() []*xmlstream.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.got
	s.got = nil
	return g
}

type fakeAccounts map[jid.JID]bool

func (a fakeAccounts) AccountExists(_ context.Context, j jid.JID) (bool, error) { return a[j], nil }

func newRouter(accounts fakeAccounts) (*Router, *module.Hooks) {
	return newRouterMax(accounts, 5)
}

func newRouterMax(accounts fakeAccounts, maxSessions int) (*Router, *module.Hooks) {
	h := &module.Hooks{}
	r := New(Options{Domains: []string{"example.com"}, MaxSessionsPerUser: maxSessions}, h, accounts,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	return r, h
}

func parseStanza(t *testing.T, s string) *stanza.Stanza {
	t.Helper()
	p := xmlstream.NewParser(xmlstream.ModeFragments, xmlstream.Limits{})
	p.Feed([]byte(s))
	ev, err := p.Next()
	if err != nil {
		t.Fatal(err)
	}
	st, serr := stanza.Parse(ev.Element, stanza.NSClient)
	if serr != nil {
		t.Fatal(serr)
	}
	return &st
}

// TestMessageDeliveryRules checks RFC 6121 §8.5 Table 1 with the options
// Meerkat takes: E = error back to the sender, S = silently ignored,
// O = offline (the Offline hooks), D:<resources> = delivered to those.
func TestMessageDeliveryRules(t *testing.T) {
	type res struct {
		name      string
		available bool
		priority  int
	}
	conditions := []struct {
		name      string
		exists    bool
		resources []res
	}{
		{"account does not exist", false, nil},
		{"no active resources", true, nil},
		{"connected but not available", true, []res{{"a", false, 0}}},
		{"one negative resource", true, []res{{"a", true, -1}}},
		{"one non-negative resource", true, []res{{"a", true, 0}}},
		{"several non-negative resources", true, []res{{"a", true, 1}, {"b", true, 5}, {"c", true, 5}, {"n", true, -3}}},
	}
	types := []string{"normal", "chat", "groupchat", "headline", "error"}
	// want[condition][address] = outcome per type, in the order of types.
	want := map[string]map[string][]string{
		"account does not exist": {
			"bare":          {"E", "E", "E", "S", "S"},
			"full no match": {"E", "E", "E", "S", "S"},
		},
		"no active resources": {
			"bare":          {"O", "O", "E", "S", "S"},
			"full no match": {"E", "O", "E", "E", "S"},
		},
		"connected but not available": {
			"bare":          {"O", "O", "E", "S", "S"},
			"full match":    {"D:a", "D:a", "D:a", "D:a", "D:a"},
			"full no match": {"E", "O", "E", "E", "S"},
		},
		"one negative resource": {
			"bare":          {"O", "O", "E", "S", "S"},
			"full match":    {"D:a", "D:a", "D:a", "D:a", "D:a"},
			"full no match": {"E", "O", "E", "E", "S"},
		},
		"one non-negative resource": {
			"bare":          {"D:a", "D:a", "E", "D:a", "S"},
			"full match":    {"D:a", "D:a", "D:a", "D:a", "D:a"},
			"full no match": {"E", "D:a", "E", "E", "S"},
		},
		"several non-negative resources": {
			// The "most available" resources (highest priority) for normal
			// and chat; every non-negative one for headline.
			"bare":          {"D:b,c", "D:b,c", "E", "D:a,b,c", "S"},
			"full match":    {"D:a", "D:a", "D:a", "D:a", "D:a"},
			"full no match": {"E", "D:b,c", "E", "E", "S"},
		},
	}
	for _, c := range conditions {
		for addr, outcomes := range want[c.name] {
			for i, typ := range types {
				name := fmt.Sprintf("%s/%s/%s", c.name, addr, typ)
				t.Run(name, func(t *testing.T) {
					user := jid.MustParse("user@example.com")
					accounts := fakeAccounts{jid.MustParse("sender@example.com"): true}
					if c.exists {
						accounts[user] = true
					}
					r, h := newRouter(accounts)
					offline := 0
					h.Offline.Add("test", 0, func(context.Context, *module.StanzaEvent) module.Result {
						offline++
						return module.Stop
					})
					sender := &fakeSession{jid: jid.MustParse("sender@example.com/s"), available: true}
					r.Register(sender)
					var sessions []*fakeSession
					for _, rs := range c.resources {
						s := &fakeSession{jid: jid.MustParse("user@example.com/" + rs.name), available: rs.available, priority: rs.priority}
						if _, err := r.Register(s); err != nil {
							t.Fatal(err)
						}
						sessions = append(sessions, s)
					}
					to := "user@example.com"
					switch addr {
					case "full match":
						to += "/a"
					case "full no match":
						to += "/zz"
					}
					st := parseStanza(t, fmt.Sprintf(`<message xmlns='jabber:client' from='sender@example.com/s' to='%s' type='%s' id='m1'><body>hi</body></message>`, to, typ))
					r.Route(context.Background(), st)

					var got string
					var delivered []string
					for _, s := range sessions {
						if len(s.take()) > 0 {
							delivered = append(delivered, s.jid.Resource())
						}
					}
					bounced := sender.take()
					switch {
					case len(delivered) > 0:
						slices.Sort(delivered)
						got = "D:" + strings.Join(delivered, ",")
					case offline > 0:
						got = "O"
					case len(bounced) > 0:
						got = "E"
						if b := bounced[0]; b.Attr("type") != "error" || b.Attr("id") != "m1" || b.Attr("to") != "sender@example.com/s" ||
							b.Child("error", stanza.NSClient).Child("service-unavailable", stanza.NSStanzaErrors) == nil {
							t.Errorf("bounce %s", b)
						}
					default:
						got = "S"
					}
					if got != outcomes[i] {
						t.Errorf("got %s, want %s", got, outcomes[i])
					}
				})
			}
		}
	}
}

func TestPresenceToBareGoesToAvailableResources(t *testing.T) {
	r, _ := newRouter(fakeAccounts{jid.MustParse("user@example.com"): true})
	a := &fakeSession{jid: jid.MustParse("user@example.com/a"), available: true, priority: -5}
	b := &fakeSession{jid: jid.MustParse("user@example.com/b")}
	r.Register(a)
	r.Register(b)
	r.Route(context.Background(), parseStanza(t, `<presence xmlns='jabber:client' from='x@example.com/r' to='user@example.com'/>`))
	if len(a.take()) != 1 || len(b.take()) != 0 {
		t.Fatal("presence not delivered to exactly the available resources")
	}
	// Presence to a missing account is ignored (§8.5.1).
	r.Route(context.Background(), parseStanza(t, `<presence xmlns='jabber:client' from='x@example.com/r' to='nobody@example.com'/>`))
}

func TestIQDispatch(t *testing.T) {
	r, h := newRouter(fakeAccounts{jid.MustParse("user@example.com"): true, jid.MustParse("other@example.com"): true})
	u := &fakeSession{jid: jid.MustParse("user@example.com/a"), available: true}
	r.Register(u)
	var seen []module.Target
	handler := func(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
		seen = append(seen, iq.Target)
		switch iq.Payload().Attr("mode") {
		case "error":
			return nil, stanza.NewError(stanza.ItemNotFound, "")
		case "fail":
			return nil, fmt.Errorf("disk on fire")
		}
		return xmlstream.NewElement("pong", "urn:test"), nil
	}
	for _, tg := range []module.Target{module.TargetHost, module.TargetBare} {
		if err := h.HandleIQ("test", stanza.IQGet, tg, "urn:test", handler); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.HandleIQ("other", stanza.IQGet, module.TargetHost, "urn:test", handler); err == nil {
		t.Fatal("second handler for the same key accepted")
	}
	ctx := context.Background()
	cases := []struct {
		iq, want string
	}{
		{`<iq xmlns='jabber:client' type='get' id='1' to='example.com'><q xmlns='urn:test'/></iq>`,
			`<iq to='user@example.com/a' from='example.com' type='result' id='1'><pong xmlns='urn:test'/></iq>`},
		{`<iq xmlns='jabber:client' type='get' id='2' to='example.com'><q xmlns='urn:unknown'/></iq>`,
			`<iq id='2' from='example.com' to='user@example.com/a' type='error'><q xmlns='urn:unknown'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		{`<iq xmlns='jabber:client' type='get' id='3' to='example.com'><q xmlns='urn:test' mode='error'/></iq>`,
			`<iq id='3' from='example.com' to='user@example.com/a' type='error'><q xmlns='urn:test' mode='error'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		{`<iq xmlns='jabber:client' type='get' id='4' to='example.com'><q xmlns='urn:test' mode='fail'/></iq>`,
			`<iq id='4' from='example.com' to='user@example.com/a' type='error'><q xmlns='urn:test' mode='fail'/><error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		// No 'to': handled on behalf of the account, by the TargetBare handler
		// as no TargetSelf one exists; the result has no 'from'.
		{`<iq xmlns='jabber:client' type='get' id='5'><q xmlns='urn:test'/></iq>`,
			`<iq to='user@example.com/a' type='result' id='5'><pong xmlns='urn:test'/></iq>`},
		{`<iq xmlns='jabber:client' type='get' id='6' to='other@example.com'><q xmlns='urn:test'/></iq>`,
			`<iq to='user@example.com/a' from='other@example.com' type='result' id='6'><pong xmlns='urn:test'/></iq>`},
		{`<iq xmlns='jabber:client' type='get' id='7' to='nobody@example.com'><q xmlns='urn:test'/></iq>`,
			`<iq id='7' from='nobody@example.com' to='user@example.com/a' type='error'><q xmlns='urn:test'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		{`<iq xmlns='jabber:client' type='get' id='8' to='user@elsewhere.org'><q xmlns='urn:test'/></iq>`,
			`<iq id='8' from='user@elsewhere.org' to='user@example.com/a' type='error'><q xmlns='urn:test'/><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`},
		// Results and errors are never answered.
		{`<iq xmlns='jabber:client' type='result' id='9' to='example.com'/>`, ``},
		{`<iq xmlns='jabber:client' type='error' id='10' to='other@example.com'/>`, ``},
	}
	for _, c := range cases {
		st := parseStanza(t, c.iq)
		st.El.SetAttr("from", "user@example.com/a")
		st.From = u.jid
		r.FromClient(ctx, u, st)
		got := u.take()
		s := ""
		for _, g := range got {
			s += string(g.AppendXML(nil, xmlstream.StreamScope(stanza.NSClient)))
		}
		if s != c.want {
			t.Errorf("%s\n got  %s\n want %s", c.iq, s, c.want)
		}
	}
	h.RemoveOwner("test")
	if h.IQHandler(stanza.IQGet, module.TargetHost, "urn:test") != nil || h.Owners()["test"] {
		t.Fatal("handlers survive RemoveOwner")
	}
}

func TestRegisterConflictAndLimit(t *testing.T) {
	r, _ := newRouterMax(fakeAccounts{}, 3)
	a1 := &fakeSession{jid: jid.MustParse("u@example.com/a")}
	a2 := &fakeSession{jid: jid.MustParse("u@example.com/a")}
	if old, err := r.Register(a1); old != nil || err != nil {
		t.Fatal(old, err)
	}
	if old, err := r.Register(a2); old != a1 || err != nil {
		t.Fatalf("replaced = %v, %v", old, err)
	}
	if r.Unregister(a1) {
		t.Fatal("unregistered a replaced session")
	}
	if r.SessionOf(jid.MustParse("u@example.com/a")) != a2 {
		t.Fatal("lookup does not find the new session")
	}
	for _, res := range []string{"b", "c"} {
		if _, err := r.Register(&fakeSession{jid: jid.MustParse("u@example.com/" + res)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Register(&fakeSession{jid: jid.MustParse("u@example.com/d")}); err != ErrTooManySessions {
		t.Fatalf("fourth session: %v", err)
	}
	if r.SessionCount() != 3 {
		t.Fatalf("count %d", r.SessionCount())
	}
	n := 0
	r.RangeSessions(func(module.Session) bool { n++; return true })
	if n != 3 || !r.Unregister(a2) || r.SessionCount() != 2 {
		t.Fatal("range/unregister")
	}
}

func TestSendIQ(t *testing.T) {
	r, _ := newRouter(fakeAccounts{jid.MustParse("u@example.com"): true})
	u := &fakeSession{jid: jid.MustParse("u@example.com/a"), available: true}
	other := &fakeSession{jid: jid.MustParse("u@example.com/b"), available: true}
	r.Register(u)
	r.Register(other)
	answers := make(chan *stanza.Stanza, 2)
	ctx := context.Background()
	r.SendIQ(ctx, stanza.NewIQ(stanza.IQGet, "", u.jid, jid.MustParse("example.com"), xmlstream.NewElement("ping", "urn:xmpp:ping")), time.Minute,
		func(st *stanza.Stanza) { answers <- st })
	sent := u.take()
	if len(sent) != 1 {
		t.Fatal("ping not delivered")
	}
	id := sent[0].Attr("id")
	reply := func(from *fakeSession) {
		st := parseStanza(t, `<iq xmlns='jabber:client' type='result' id='`+id+`' to='example.com'/>`)
		st.From = from.jid
		r.FromClient(ctx, from, st)
	}
	reply(other) // another resource cannot answer for u
	select {
	case <-answers:
		t.Fatal("answer from the wrong entity accepted")
	default:
	}
	reply(u)
	if a := <-answers; a == nil || a.From != u.jid {
		t.Fatalf("answer %v", a)
	}
	// Timeout: fn gets nil.
	r.SendIQ(ctx, stanza.NewIQ(stanza.IQGet, "", u.jid, jid.MustParse("example.com"), xmlstream.NewElement("ping", "urn:xmpp:ping")), time.Millisecond,
		func(st *stanza.Stanza) { answers <- st })
	if a := <-answers; a != nil {
		t.Fatalf("timeout gave %v", a)
	}
}

func TestServices(t *testing.T) {
	r, _ := newRouter(fakeAccounts{})
	var got []string
	if err := r.RegisterService("muclight.example.com", func(_ context.Context, st *stanza.Stanza, _ module.Session) {
		got = append(got, st.To.String())
	}); err != nil {
		t.Fatal(err)
	}
	if r.RegisterService("example.com", nil) == nil || r.RegisterService("muclight.example.com", nil) == nil {
		t.Fatal("bad service registration accepted")
	}
	r.Route(context.Background(), parseStanza(t, `<message xmlns='jabber:client' from='a@example.com/r' to='room@muclight.example.com'/>`))
	r.UnregisterService("muclight.example.com")
	r.Route(context.Background(), parseStanza(t, `<message xmlns='jabber:client' from='a@example.com/r' to='room@muclight.example.com' type='error'/>`))
	if len(got) != 1 || got[0] != "room@muclight.example.com" {
		t.Fatalf("service got %v", got)
	}
}

type countingAccounts struct {
	fakeAccounts
	mu    sync.Mutex
	calls int
}

func (a *countingAccounts) AccountExists(ctx context.Context, j jid.JID) (bool, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	return a.fakeAccounts.AccountExists(ctx, j)
}

// TestGroupchatFromServiceRoom: a groupchat message from a room of a
// registered service (MUC Light) to a member's bare JID goes to every
// available resource with a non-negative priority; a member without a
// session costs no account lookup and gets nothing; groupchat from
// anyone else to a bare JID is still refused (RFC 6121 §8.5.2.1.1).
func TestGroupchatFromServiceRoom(t *testing.T) {
	accounts := &countingAccounts{fakeAccounts: fakeAccounts{jid.MustParse("user@example.com"): true, jid.MustParse("off@example.com"): true, jid.MustParse("sender@example.com"): true}}
	h := &module.Hooks{}
	r := New(Options{Domains: []string{"example.com"}, MaxSessionsPerUser: 5}, h, accounts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var toRoom []*stanza.Stanza
	if err := r.RegisterService("rooms.example.com", func(_ context.Context, st *stanza.Stanza, _ module.Session) {
		toRoom = append(toRoom, st)
	}); err != nil {
		t.Fatal(err)
	}
	sessions := map[string]*fakeSession{}
	for _, s := range []*fakeSession{
		{jid: jid.MustParse("user@example.com/a"), available: true, priority: 0},
		{jid: jid.MustParse("user@example.com/b"), available: true, priority: 5},
		{jid: jid.MustParse("user@example.com/n"), available: true, priority: -1},
		{jid: jid.MustParse("user@example.com/u")},
	} {
		r.Register(s)
		sessions[s.jid.Resource()] = s
	}
	route := func(from, to string) {
		r.Route(context.Background(), parseStanza(t, `<message xmlns='jabber:client' from='`+from+`' to='`+to+`' type='groupchat'><body>hi</body></message>`))
	}
	route("room@rooms.example.com/sender@example.com", "user@example.com")
	for name, want := range map[string]int{"a": 1, "b": 1, "n": 0, "u": 0} {
		if got := len(sessions[name].take()); got != want {
			t.Errorf("resource %s got %d copies, want %d", name, got, want)
		}
	}
	before := accounts.calls
	route("room@rooms.example.com/sender@example.com", "off@example.com")
	if accounts.calls != before || len(toRoom) != 0 {
		t.Errorf("offline member: %d account lookups, %d stanzas back to the room", accounts.calls-before, len(toRoom))
	}
	sender := &fakeSession{jid: jid.MustParse("sender@example.com/s"), available: true}
	r.Register(sender)
	route("sender@example.com/s", "user@example.com")
	if b := sender.take(); len(b) != 1 || b[0].Attr("type") != "error" {
		t.Errorf("groupchat from a user to a bare JID: %v", b)
	}
	for _, s := range sessions {
		if len(s.take()) != 0 {
			t.Errorf("%s got groupchat from a user", s.jid)
		}
	}
}
