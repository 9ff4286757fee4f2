package load_test

import (
	"context"
	"sync"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/load"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// fakeMUCLight is a stand-in for MUC Light (../shared/specs/muclight.md)
// as far as the muc-light scenario uses it, so that the scenario runs in
// tests before Meerkat has the real module: a #create IQ to a room makes
// the room with the creator and the listed occupants, and a groupchat
// message to a room goes to every member's sessions, from
// room/sender-bare-jid. Nothing else of the protocol.
type fakeMUCLight struct {
	env   *module.Env
	mu    sync.Mutex
	rooms map[string][]jid.JID
}

func init() {
	module.Register(module.Factory{
		Name: "loadtest_muclight", Doc: "a stand-in for MUC Light, for the load tests",
		New: func(any) (module.Module, error) { return &fakeMUCLight{rooms: map[string][]jid.JID{}}, nil },
	})
}

func (m *fakeMUCLight) Start(_ context.Context, env *module.Env) error {
	m.env = env
	return env.Host.RegisterService("muclight."+env.Host.Domains()[0], m.handle)
}

func (m *fakeMUCLight) Stop() error { return nil }

func (m *fakeMUCLight) handle(ctx context.Context, st *stanza.Stanza, _ module.Session) {
	room := st.To.Bare()
	switch {
	case st.El.Name == "iq" && st.Type == "set":
		q := st.Payload()
		if q == nil || q.NS != load.NSMUCLight+"#create" {
			return
		}
		members := []jid.JID{st.From.Bare()}
		if occ := q.Child("occupants", q.NS); occ != nil {
			for u := range occ.ChildrenNamed("user", q.NS) {
				if j, err := jid.Parse(u.Text()); err == nil {
					members = append(members, j)
				}
			}
		}
		m.mu.Lock()
		m.rooms[room.String()] = members
		m.mu.Unlock()
		m.env.Host.Send(ctx, stanza.NewIQ(stanza.IQResult, st.ID, st.From, room, nil))
	case st.El.Name == "message" && st.Type == "groupchat":
		m.mu.Lock()
		members := m.rooms[room.String()]
		m.mu.Unlock()
		from, err := room.WithResource(st.From.Bare().String())
		if err != nil {
			return
		}
		for _, member := range members {
			for _, s := range m.env.Host.Sessions(member) {
				el := xmlstream.NewElement("message", stanza.NSClient).
					SetAttr("from", from.String()).SetAttr("to", s.JID().String()).
					SetAttr("type", "groupchat").SetAttr("id", st.ID)
				for c := range st.El.Elements() {
					el.AddChild(c)
				}
				s.Deliver(el)
			}
		}
	}
}

// The muc-light scenario against the stand-in: rooms are created, every
// groupchat message reaches every member, the sender included.
func TestLoadMUCLightAgainstStandIn(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Modules("[modules.loadtest_muclight]\nenabled = true\n"))
	res := run(t, srv, load.Config{Scenario: "muc-light", Users: 20, RoomSize: 5, Rate: 4})
	delivered(t, res, 5)
	if res.Counters["iqs"] != 4 {
		t.Fatalf("%d rooms created, want 4", res.Counters["iqs"])
	}
}
