package muclight

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage/sqlite"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// fakeHost records what the module routes, per recipient, in order.
type fakeHost struct {
	module.Host
	mu      sync.Mutex
	got     map[jid.JID][]*xmlstream.Element
	handler module.ServiceHandler
}

func (h *fakeHost) Domains() []string                 { return []string{"x"} }
func (h *fakeHost) IsLocal(d string) bool             { return d == "x" }
func (h *fakeHost) Sessions(jid.JID) []module.Session { return nil }
func (h *fakeHost) RegisterService(_ string, fn module.ServiceHandler) error {
	h.handler = fn
	return nil
}
func (h *fakeHost) UnregisterService(string) {}
func (h *fakeHost) Route(_ context.Context, st *stanza.Stanza) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got[st.To.Bare()] = append(h.got[st.To.Bare()], st.El)
}

func startModule(t *testing.T, cfg Config) (*MUCLight, *fakeHost) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	host := &fakeHost{got: map[jid.JID][]*xmlstream.Element{}}
	m := New(cfg)
	if err := m.Start(ctx, &module.Env{Host: host, Hooks: &module.Hooks{}, Owner: "muclight", Store: store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	return m, host
}

func send(m *MUCLight, from jid.JID, el *xmlstream.Element) {
	el.SetAttr("from", from.String())
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil {
		panic(serr)
	}
	m.serve(context.Background(), &st, nil)
}

func affSet(room jid.JID, id string, changes ...Change) *xmlstream.Element {
	q := xmlstream.NewElement("query", NSAffiliations)
	for _, c := range changes {
		q.AddChild(userElement(NSAffiliations, c.User, c.Aff))
	}
	return stanza.NewIQ(stanza.IQSet, id, room, jid.JID{}, q)
}

// TestConcurrentChanges: members invite and leave, the owner renames the
// room and members send messages, all at once. The cache ends equal to
// storage, and the owner, who stays throughout, sees every change once,
// in version order: each notification's prev-version is the version of
// the one before.
func TestConcurrentChanges(t *testing.T) {
	cfg := *DefaultConfig()
	cfg.AllCanInvite = true
	m, host := startModule(t, cfg)
	u := func(i int) jid.JID { return jid.MustParse(fmt.Sprintf("u%d@x", i)) }
	owner := jid.MustParse("owner@x/r")
	room := jid.MustParse("room@muclight.x")
	create := xmlstream.NewElement("query", NSCreate)
	occ := xmlstream.NewElement("occupants", NSCreate)
	for i := range 6 {
		occ.AddChild(userElement(NSCreate, u(i), Member))
	}
	send(m, owner, stanza.NewIQ(stanza.IQSet, "c", room, jid.JID{}, create.AddChild(occ)))

	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			guest := u(100 + i)
			for k := range 15 {
				send(m, jid.MustParse(u(i).String()+"/r"), affSet(room, fmt.Sprintf("i%d-%d", i, k), Change{User: guest, Aff: Member}))
				send(m, jid.MustParse(guest.String()+"/r"), affSet(room, fmt.Sprintf("l%d-%d", i, k), Change{User: guest, Aff: None}))
				msg := stanza.NewMessage(stanza.MessageGroupchat, room, jid.JID{}, "hi")
				send(m, jid.MustParse(u(i).String()+"/r"), msg)
			}
		})
	}
	wg.Go(func() {
		for k := range 20 {
			q := xmlstream.NewElement("query", NSConfiguration).AddChild(textElement("roomname", NSConfiguration, fmt.Sprint("name", k)))
			send(m, owner, stanza.NewIQ(stanza.IQSet, fmt.Sprint("n", k), room, jid.JID{}, q))
		}
	})
	wg.Wait()

	stored, err := m.store.MUCLightRoom(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	cached, _ := m.cache.get(room)
	if fmt.Sprint(cached.MUCLightRoom) != fmt.Sprint(stored) {
		t.Fatalf("cache %v, storage %v", cached.MUCLightRoom, stored)
	}
	if len(stored.Members) != 7 {
		t.Fatalf("members %v", stored.Members)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	var version string
	changes, messages := 0, 0
	for _, el := range host.got[owner.Bare()] {
		if el.Name != "message" {
			continue
		}
		var x *xmlstream.Element
		for _, ns := range []string{NSAffiliations, NSConfiguration} {
			if c := el.Child("x", ns); c != nil {
				x = c
			}
		}
		if x == nil {
			messages++
			continue
		}
		v, prev := x.ChildText("version", x.NS), x.ChildText("prev-version", x.NS)
		if version != "" && prev != version {
			t.Fatalf("notification %d: prev-version %s after version %s", changes, prev, version)
		}
		version = v
		changes++
	}
	if want := 1 + 6*15*2 + 20; changes != want || version != stored.Version {
		t.Fatalf("%d notifications ending at %s, want %d ending at %s", changes, version, want, stored.Version)
	}
	if messages != 6*15 {
		t.Fatalf("%d messages", messages)
	}
}
