package storagetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func init() {
	addSuite("Archive", testArchive)
	addSuite("ArchiveBatches", testArchiveBatches)
}

func testArchive(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	s, ok := b.(storage.ArchiveStore)
	if !ok {
		t.Skip("the backend does not store archives")
	}
	alice := jid.MustParse("alice@example.com")
	bob := jid.MustParse("bob@example.com")
	room := jid.MustParse("room@muclight.example.com")
	if err := b.CreateAccount(ctx, alice, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// alice talks with bob's two resources and with carol, and bob's
	// archive holds its side; ids grow with time.
	with := []jid.JID{
		jid.MustParse("bob@example.com/phone"), jid.MustParse("bob@example.com/laptop"),
		jid.MustParse("carol@example.org/x"),
	}
	var msgs []storage.ArchiveMessage
	for i := range 30 {
		msgs = append(msgs, storage.ArchiveMessage{
			ID: uint64(1000 + 10*i), Owner: alice, With: with[i%3], Outgoing: i%2 == 0,
			Stanza: fmt.Sprintf("<message xmlns='jabber:client'><body>%d</body></message>", i),
		})
	}
	if err := s.AppendArchive(ctx, msgs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendArchive(ctx, msgs[10:]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendArchive(ctx, []storage.ArchiveMessage{{ID: 5000, Owner: bob, With: jid.MustParse("alice@example.com/a"), Stanza: "<message/>"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendArchive(ctx, nil); err != nil {
		t.Fatalf("append nothing: %v", err)
	}
	// The same id twice is refused: ids are unique across archives.
	if err := s.AppendArchive(ctx, []storage.ArchiveMessage{{ID: 5000, Owner: room, With: alice, Stanza: "<message/>"}}); err == nil {
		t.Error("a duplicate id was stored")
	}

	ids := func(p storage.ArchivePage) []uint64 {
		var out []uint64
		for _, m := range p.Messages {
			out = append(out, m.ID)
		}
		return out
	}
	query := func(q storage.ArchiveQuery) storage.ArchivePage {
		t.Helper()
		p, err := s.QueryArchive(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The first page, then the last, oldest first in both.
	p := query(storage.ArchiveQuery{Owner: alice, Max: 3})
	if !slices.Equal(ids(p), []uint64{1000, 1010, 1020}) || p.Complete {
		t.Errorf("first page: %v complete=%v", ids(p), p.Complete)
	}
	m := p.Messages[0]
	if m.Owner != alice || m.With != with[0] || !m.Outgoing || m.Stanza != msgs[0].Stanza {
		t.Errorf("message read back: %+v", m)
	}
	p = query(storage.ArchiveQuery{Owner: alice, Max: 3, Last: true})
	if !slices.Equal(ids(p), []uint64{1270, 1280, 1290}) || p.Complete {
		t.Errorf("last page: %v complete=%v", ids(p), p.Complete)
	}
	// Complete when the page reaches the end of the range.
	p = query(storage.ArchiveQuery{Owner: alice, MinID: 1261, Max: 3})
	if !slices.Equal(ids(p), []uint64{1270, 1280, 1290}) || !p.Complete {
		t.Errorf("page at the end: %v complete=%v", ids(p), p.Complete)
	}
	p = query(storage.ArchiveQuery{Owner: alice, MaxID: 1029, Max: 3, Last: true})
	if !slices.Equal(ids(p), []uint64{1000, 1010, 1020}) || !p.Complete {
		t.Errorf("backwards page at the start: %v complete=%v", ids(p), p.Complete)
	}
	// A bare 'with' matches every resource, a full one only itself.
	p = query(storage.ArchiveQuery{Owner: alice, With: bob, Max: 100})
	if len(p.Messages) != 20 || !p.Complete {
		t.Errorf("with bob: %d messages complete=%v", len(p.Messages), p.Complete)
	}
	p = query(storage.ArchiveQuery{Owner: alice, With: with[1], Max: 4})
	if !slices.Equal(ids(p), []uint64{1010, 1040, 1070, 1100}) {
		t.Errorf("with bob/laptop: %v", ids(p))
	}
	p = query(storage.ArchiveQuery{Owner: alice, With: with[2], MinID: 1100, MaxID: 1200, Max: 10})
	if !slices.Equal(ids(p), []uint64{1110, 1140, 1170, 1200}) || !p.Complete {
		t.Errorf("with carol in a range: %v", ids(p))
	}
	// IDs.
	p = query(storage.ArchiveQuery{Owner: alice, IDs: []uint64{1290, 1000, 5000}, Max: 10})
	if !slices.Equal(ids(p), []uint64{1000, 1290}) {
		t.Errorf("by ids: %v (bob's message must not show)", ids(p))
	}
	if p := query(storage.ArchiveQuery{Owner: alice, IDs: []uint64{}, Max: 10}); len(p.Messages) != 0 {
		t.Errorf("empty id list: %v", ids(p))
	}
	// Counting ignores the page.
	if n, err := s.CountArchive(ctx, storage.ArchiveQuery{Owner: alice, With: bob, Max: 1}); err != nil || n != 20 {
		t.Errorf("count with bob: %d %v", n, err)
	}
	if n, err := s.CountArchive(ctx, storage.ArchiveQuery{Owner: alice, MinID: 1200}); err != nil || n != 10 {
		t.Errorf("count from 1200: %d %v", n, err)
	}
	// Lookups and bounds, per archive.
	for _, c := range []struct {
		owner jid.JID
		id    uint64
		want  bool
	}{{alice, 1000, true}, {alice, 5000, false}, {bob, 5000, true}, {alice, 1, false}} {
		if got, err := has(ctx, s, c.owner, c.id); err != nil || got != c.want {
			t.Errorf("has(%s, %d) = %v %v", c.owner, c.id, got, err)
		}
	}
	// Lookups of many ids at once: the unknown ones, each once, in the
	// order asked; another archive's ids are unknown here.
	for _, c := range []struct {
		name      string
		owner     jid.JID
		ids, want []uint64
	}{
		{"all known", alice, []uint64{1290, 1000, 1150}, nil},
		{"all unknown", alice, []uint64{7, 1001, 3}, []uint64{7, 1001, 3}},
		{"known and unknown", alice, []uint64{1000, 9, 1010, 1, 1290}, []uint64{9, 1}},
		{"another owner's", alice, []uint64{5000, 1000}, []uint64{5000}},
		{"not the other owner's", bob, []uint64{1000, 5000}, []uint64{1000}},
		{"repeated", alice, []uint64{9, 1000, 9, 1000}, []uint64{9}},
		{"empty list", alice, []uint64{}, nil},
		{"nil list", alice, nil, nil},
		{"empty archive", room, []uint64{1000, 5000}, []uint64{1000, 5000}},
	} {
		got, err := s.ArchiveMissing(ctx, c.owner, c.ids)
		if err != nil || !slices.Equal(got, c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("ArchiveMissing %s (%s, %v) = %v %v, want %v", c.name, c.owner, c.ids, got, err, c.want)
		}
	}
	// More ids than a backend may put in one statement.
	var many, manyMissing []uint64
	for i := range 2000 {
		id := uint64(1000 + 5*i) // every other one is alice's, up to 1290
		many = append(many, id)
		if id%10 != 0 || id > 1290 {
			manyMissing = append(manyMissing, id)
		}
	}
	if got, err := s.ArchiveMissing(ctx, alice, many); err != nil || !slices.Equal(got, manyMissing) {
		t.Errorf("ArchiveMissing of %d ids: %d missing %v, want %d", len(many), len(got), err, len(manyMissing))
	}
	// IDs use all 64 bits.
	dora := jid.MustParse("dora@example.com")
	big := []uint64{1<<63 - 1, 1 << 63, 1<<64 - 1}
	for _, id := range big {
		if err := s.AppendArchive(ctx, []storage.ArchiveMessage{{ID: id, Owner: dora, With: alice, Stanza: "<message/>"}}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.ArchiveMissing(ctx, dora, append([]uint64{1<<63 - 2, 1<<63 + 1}, big...)); err != nil || !slices.Equal(got, []uint64{1<<63 - 2, 1<<63 + 1}) {
		t.Errorf("ArchiveMissing of 64-bit ids = %v %v", got, err)
	}
	first, last, ok, err := s.ArchiveBounds(ctx, alice)
	if err != nil || !ok || first != 1000 || last != 1290 {
		t.Errorf("bounds: %d %d %v %v", first, last, ok, err)
	}
	if first, last, ok, err := s.ArchiveBounds(ctx, bob); err != nil || !ok || first != 5000 || last != 5000 {
		t.Errorf("bounds of a one-message archive: %d %d %v %v", first, last, ok, err)
	}
	if _, _, ok, err := s.ArchiveBounds(ctx, room); err != nil || ok {
		t.Errorf("bounds of an empty archive: %v %v", ok, err)
	}

	// Preferences.
	if _, ok, err := s.ArchivePrefs(ctx, alice); err != nil || ok {
		t.Errorf("no prefs yet: %v %v", ok, err)
	}
	prefs := storage.ArchivePrefs{Default: "roster", Always: []jid.JID{with[2].Bare()}, Never: []jid.JID{bob, jid.MustParse("example.net")}}
	if err := s.SetArchivePrefs(ctx, alice, prefs); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.ArchivePrefs(ctx, alice)
	if err != nil || !ok || got.Default != "roster" || !slices.Equal(got.Always, prefs.Always) || !slices.Equal(got.Never, prefs.Never) {
		t.Errorf("prefs: %+v %v %v", got, ok, err)
	}
	if err := s.SetArchivePrefs(ctx, alice, storage.ArchivePrefs{Default: "never"}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.ArchivePrefs(ctx, alice); got.Default != "never" || got.Always != nil || got.Never != nil {
		t.Errorf("prefs replaced: %+v", got)
	}

	// A room archive goes with RemoveArchive, an account's with the account.
	if err := s.AppendArchive(ctx, []storage.ArchiveMessage{{ID: 6000, Owner: room, With: alice, Stanza: "<message/>"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveArchive(ctx, room); err != nil {
		t.Fatal(err)
	}
	if ok, _ := has(ctx, s, room, 6000); ok {
		t.Error("the room archive outlived RemoveArchive")
	}
	if err := b.RemoveAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountArchive(ctx, storage.ArchiveQuery{Owner: alice}); n != 0 {
		t.Errorf("%d messages outlived their account", n)
	}
	if _, ok, _ := s.ArchivePrefs(ctx, alice); ok {
		t.Error("the preferences outlived their account")
	}
	if ok, _ := has(ctx, s, bob, 5000); !ok {
		t.Error("removing alice took bob's archive")
	}
}

// has reports whether owner's archive holds the message id: a lookup
// of one.
func has(ctx context.Context, s storage.ArchiveStore, owner jid.JID, id uint64) (bool, error) {
	missing, err := s.ArchiveMissing(ctx, owner, []uint64{id})
	return err == nil && len(missing) == 0, err
}

// testArchiveBatches: a large batch is stored whole, in order, and a
// batch with one bad message is stored not at all.
func testArchiveBatches(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	s, ok := b.(storage.ArchiveStore)
	if !ok {
		t.Skip("the backend does not store archives")
	}
	room := jid.MustParse("room@muclight.example.com")
	sender := jid.MustParse("alice@example.com")
	batch := func(from, n int) []storage.ArchiveMessage {
		var msgs []storage.ArchiveMessage
		for i := range n {
			msgs = append(msgs, storage.ArchiveMessage{ID: uint64(from + i), Owner: room, With: sender,
				Stanza: fmt.Sprintf("<message xmlns='jabber:client'><body>%d</body></message>", from+i)})
		}
		return msgs
	}
	if err := s.AppendArchive(ctx, batch(1, 1000)); err != nil {
		t.Fatal(err)
	}
	bad := batch(2000, 300)
	bad[150].ID = 500 // taken
	if err := s.AppendArchive(ctx, bad); err == nil {
		t.Fatal("a batch with a duplicate id was stored")
	}
	if n, err := s.CountArchive(ctx, storage.ArchiveQuery{Owner: room}); err != nil || n != 1000 {
		t.Fatalf("count after a failed batch = %d, %v; want 1000", n, err)
	}
	p, err := s.QueryArchive(ctx, storage.ArchiveQuery{Owner: room, MinID: 60, Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range p.Messages {
		if m.ID != uint64(60+i) || m.Stanza != fmt.Sprintf("<message xmlns='jabber:client'><body>%d</body></message>", 60+i) || m.With != sender {
			t.Fatalf("message %d of the page: %+v", i, m)
		}
	}
}
