package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func init() { addSuite("MUCLight", testMUCLight) }

func testMUCLight(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	s, ok := b.(storage.MUCLightStore)
	if !ok {
		t.Skip("the backend does not store MUC Light rooms")
	}
	const service = "muclight.example.com"
	alice := jid.MustParse("alice@example.com")
	bob := jid.MustParse("bob@example.com")
	carol := jid.MustParse("carol@example.org")
	for _, u := range []jid.JID{alice, bob, carol} {
		if err := b.CreateAccount(ctx, u, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	coven := jid.MustParse("coven@" + service)
	other := jid.MustParse("other@" + service)
	elsewhere := jid.MustParse("coven@muclight.example.org")
	owner := func(u jid.JID) storage.MUCLightOccupant {
		return storage.MUCLightOccupant{User: u, Affiliation: storage.MUCLightOwner}
	}
	member := func(u jid.JID) storage.MUCLightOccupant {
		return storage.MUCLightOccupant{User: u, Affiliation: storage.MUCLightMember}
	}
	cfg := []storage.MUCLightField{{Name: "roomname", Value: "The Coven"}, {Name: "subject", Value: ""}}
	show := func(r storage.MUCLightRoom) string {
		return fmt.Sprintf("%s %s %v %v", r.Room, r.Version, r.Config, r.Members)
	}
	check := func(what string, room jid.JID, want storage.MUCLightRoom) {
		t.Helper()
		got, err := s.MUCLightRoom(ctx, room)
		if err != nil || show(got) != show(want) {
			t.Fatalf("%s: %s %v, want %s", what, show(got), err, show(want))
		}
	}

	if _, err := s.MUCLightRoom(ctx, coven); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing room: %v", err)
	}
	// Members come back sorted by JID, whatever the order given.
	r1 := storage.MUCLightRoom{Room: coven, Version: "v1", Config: cfg, Members: []storage.MUCLightOccupant{member(carol), owner(alice), member(bob)}}
	if err := s.CreateMUCLightRoom(ctx, r1); err != nil {
		t.Fatal(err)
	}
	want := r1
	want.Members = []storage.MUCLightOccupant{owner(alice), member(bob), member(carol)}
	check("created", coven, want)
	if err := s.CreateMUCLightRoom(ctx, storage.MUCLightRoom{Room: coven, Version: "x", Members: []storage.MUCLightOccupant{owner(bob)}}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("create again: %v", err)
	}
	// The same name on another service is another room.
	if err := s.CreateMUCLightRoom(ctx, storage.MUCLightRoom{Room: elsewhere, Version: "e1", Config: cfg, Members: []storage.MUCLightOccupant{owner(bob)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMUCLightRoom(ctx, storage.MUCLightRoom{Room: other, Version: "o1", Config: []storage.MUCLightField{{Name: "roomname", Value: "Other"}}, Members: []storage.MUCLightOccupant{owner(bob)}}); err != nil {
		t.Fatal(err)
	}

	// Compare-and-swap on the version.
	r2 := storage.MUCLightRoom{Room: coven, Version: "v2", Config: []storage.MUCLightField{{Name: "roomname", Value: "Witches"}, {Name: "subject", Value: "Spells"}},
		Members: []storage.MUCLightOccupant{member(alice), owner(bob), member(jid.MustParse("dave@example.net"))}}
	if err := s.UpdateMUCLightRoom(ctx, r2, "v0"); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("update with a stale version: %v", err)
	}
	check("after a stale update", coven, want)
	if err := s.UpdateMUCLightRoom(ctx, r2, "v1"); err != nil {
		t.Fatal(err)
	}
	check("updated", coven, r2)
	if err := s.UpdateMUCLightRoom(ctx, storage.MUCLightRoom{Room: jid.MustParse("none@" + service), Version: "1"}, "0"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update a missing room: %v", err)
	}

	// Rooms of a user, per service, sorted.
	refs, err := s.MUCLightRoomsOf(ctx, bob, service)
	if err != nil || len(refs) != 2 || refs[0].Room != coven || refs[0].Version != "v2" || refs[0].Config[0].Value != "Witches" || refs[1].Room != other {
		t.Fatalf("rooms of bob: %v %v", refs, err)
	}
	if refs, err := s.MUCLightRoomsOf(ctx, carol, service); err != nil || len(refs) != 0 {
		t.Fatalf("rooms of carol, removed: %v %v", refs, err)
	}
	for user, want := range map[jid.JID]int{bob: 2, carol: 0} {
		if n, err := s.CountMUCLightRoomsOf(ctx, user, service); err != nil || n != want {
			t.Fatalf("count of rooms of %s: %d %v, want %d", user, n, err, want)
		}
	}
	if n, err := s.CountMUCLightRoomsOf(ctx, bob, "elsewhere."+service); err != nil || n != 0 {
		t.Fatalf("count of rooms of bob on another service: %d %v", n, err)
	}

	// Delete, with the version too.
	if err := s.DeleteMUCLightRoom(ctx, other, "o0"); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("delete stale: %v", err)
	}
	if err := s.DeleteMUCLightRoom(ctx, other, "o1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MUCLightRoom(ctx, other); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted room: %v", err)
	}
	if err := s.DeleteMUCLightRoom(ctx, other, "o1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if refs, _ := s.MUCLightRoomsOf(ctx, bob, service); len(refs) != 1 {
		t.Fatalf("rooms of bob after delete: %v", refs)
	}
	if n, _ := s.CountMUCLightRoomsOf(ctx, bob, service); n != 1 {
		t.Fatalf("count of rooms of bob after delete: %d", n)
	}
	// A room can be created again under a deleted name.
	if err := s.CreateMUCLightRoom(ctx, storage.MUCLightRoom{Room: other, Version: "o9", Members: []storage.MUCLightOccupant{owner(alice)}}); err != nil {
		t.Fatal(err)
	}

	// Blocking lists.
	if l, err := s.MUCLightBlocking(ctx, alice, service); err != nil || len(l) != 0 {
		t.Fatalf("empty blocking list: %v %v", l, err)
	}
	rb := storage.MUCLightBlock{Kind: "room", JID: coven}
	ub := storage.MUCLightBlock{Kind: "user", JID: bob}
	uc := storage.MUCLightBlock{Kind: "user", JID: carol}
	if err := s.SetMUCLightBlocking(ctx, alice, service, []storage.MUCLightBlock{uc, ub, rb, ub}, nil); err != nil {
		t.Fatal(err)
	}
	l, err := s.MUCLightBlocking(ctx, alice, service)
	if err != nil || !slices.Equal(l, []storage.MUCLightBlock{rb, ub, uc}) {
		t.Fatalf("blocking list: %v %v", l, err)
	}
	if err := s.SetMUCLightBlocking(ctx, alice, service, nil, []storage.MUCLightBlock{ub, {Kind: "room", JID: other}}); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.MUCLightBlocking(ctx, alice, service); !slices.Equal(l, []storage.MUCLightBlock{rb, uc}) {
		t.Fatalf("after allow: %v", l)
	}
	// Blockers, at once: alice blocks coven and carol (not bob any
	// more); bob blocks alice; carol blocks coven on another service.
	if err := s.SetMUCLightBlocking(ctx, bob, service, []storage.MUCLightBlock{{Kind: "user", JID: alice}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMUCLightBlocking(ctx, carol, "muclight.example.org", []storage.MUCLightBlock{{Kind: "room", JID: elsewhere}, {Kind: "user", JID: bob}}, nil); err != nil {
		t.Fatal(err)
	}
	dave := jid.MustParse("dave@example.com") // no list, no account
	for _, c := range []struct {
		users       []jid.JID
		room, other jid.JID
		want        []jid.JID
	}{
		{[]jid.JID{carol, bob, alice, dave}, coven, jid.MustParse("nobody@example.com"), []jid.JID{alice}},    // the room
		{[]jid.JID{carol, bob, alice, dave}, other, carol, []jid.JID{alice}},                                  // the other user
		{[]jid.JID{carol, bob, alice, dave}, other, jid.MustParse("alice@example.com/phone"), []jid.JID{bob}}, // a full JID counts as its bare one
		{[]jid.JID{carol, bob, alice, alice}, coven, alice, []jid.JID{alice, bob}},                            // both, each once, sorted
		{[]jid.JID{bob, dave}, other, bob, nil},                                                               // alice is not asked about
		{[]jid.JID{alice, bob, carol}, elsewhere, bob, []jid.JID{carol}},                                      // the room's service
		{nil, coven, alice, nil}, // nobody
	} {
		got, err := s.MUCLightBlockers(ctx, c.users, c.room, c.other)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("MUCLightBlockers(%v, %s, %s) = %v, %v; want %v", c.users, c.room, c.other, got, err, c.want)
		}
	}
	// Many users: the answer does not depend on how a backend splits them.
	many := make([]jid.JID, 0, 2503)
	for i := range 2500 {
		many = append(many, jid.MustParse(fmt.Sprintf("u%d@example.com", i)))
	}
	many = append(many, carol, bob, alice)
	if got, err := s.MUCLightBlockers(ctx, many, coven, alice); err != nil || !slices.Equal(got, []jid.JID{alice, bob}) {
		t.Errorf("blockers among %d users: %v, %v", len(many), got, err)
	}
	if err := s.SetMUCLightBlocking(ctx, bob, service, nil, []storage.MUCLightBlock{{Kind: "user", JID: alice}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMUCLightBlocking(ctx, carol, "muclight.example.org", nil, []storage.MUCLightBlock{{Kind: "room", JID: elsewhere}, {Kind: "user", JID: bob}}); err != nil {
		t.Fatal(err)
	}

	if l, _ := s.MUCLightBlocking(ctx, alice, "muclight.example.org"); len(l) != 0 {
		t.Fatalf("another service's list: %v", l)
	}
	if l, _ := s.MUCLightBlocking(ctx, bob, service); len(l) != 0 {
		t.Fatalf("another user's list: %v", l)
	}

	// Removing an account removes its list and its memberships.
	if err := b.RemoveAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.MUCLightBlocking(ctx, alice, service); len(l) != 0 {
		t.Fatalf("list of a removed account: %v", l)
	}
	if refs, _ := s.MUCLightRoomsOf(ctx, alice, service); len(refs) != 0 {
		t.Fatalf("rooms of a removed account: %v", refs)
	}
}
