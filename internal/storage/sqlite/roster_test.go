package sqlite

import (
	"context"
	"strconv"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// TestRosterTombstonesPruned: a user keeps the last rosterTombstones
// removals; a client whose cached version is older gets "not ok" (and so
// the whole roster), one whose version is newer than the pruned removals
// still gets the changes.
func TestRosterTombstonesPruned(t *testing.T) {
	prev := rosterTombstones
	rosterTombstones = 3
	defer func() { rosterTombstones = prev }()
	ctx := context.Background()
	s := open(t).(*Store)
	defer s.Close()
	alice := jid.MustParse("alice@example.com")
	var versions []int64
	for i := range 6 {
		c := jid.MustParse("c" + strconv.Itoa(i) + "@example.com")
		if _, _, err := s.PutRosterItem(ctx, alice, storage.RosterItem{Contact: c}); err != nil {
			t.Fatal(err)
		}
	}
	_, beforeRemovals, _ := s.Roster(ctx, alice)
	for i := range 5 {
		v, err := s.DeleteRosterItem(ctx, alice, jid.MustParse("c"+strconv.Itoa(i)+"@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	var n int
	s.r.QueryRow(`SELECT COUNT(*) FROM roster_tombstones`).Scan(&n)
	if n != 3 {
		t.Fatalf("%d tombstones kept, want 3", n)
	}
	if _, _, ok, _ := s.RosterChanges(ctx, alice, beforeRemovals); ok {
		t.Fatal("changes since a version older than the pruned tombstones")
	}
	// The two oldest removals were pruned: from the second one on, the
	// three kept cover every removal.
	ch, _, ok, err := s.RosterChanges(ctx, alice, versions[1])
	if err != nil || !ok || len(ch) != 3 || !ch[0].Removed || ch[0].Item.Version != versions[2] {
		t.Fatalf("changes since %d: %+v %v %v", versions[1], ch, ok, err)
	}
	if _, _, ok, _ := s.RosterChanges(ctx, alice, versions[0]); ok {
		t.Fatal("changes since a version whose next removal was pruned")
	}
	// Hidden entries and account cleanup leave the floor alone.
	if ch, _, ok, _ := s.RosterChanges(ctx, alice, 0); !ok || len(ch) != 4 {
		t.Fatalf("changes since 0: %+v %v", ch, ok)
	}
}
