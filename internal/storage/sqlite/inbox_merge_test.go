package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// TestApplyInboxMergesLikeOneByOne: a batch whose updates ApplyInbox
// merges leaves every entry as applying the ops one at a time does —
// unread counts, last message, marker resets against the right message,
// removals, box moves.
func TestApplyInboxMergesLikeOneByOne(t *testing.T) {
	ctx := context.Background()
	open := func(name string) *Store {
		s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), name)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	owners := []jid.JID{jid.MustParse("alice@example.com"), jid.MustParse("bob@example.com")}
	peers := []jid.JID{jid.MustParse("carol@example.com"), jid.MustParse("dave@example.net"), jid.MustParse("room@muclight.example.com")}
	rng := rand.New(rand.NewPCG(7, 11))
	base := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	for round := range 50 {
		batched, single := open(fmt.Sprintf("b%d.db", round)), open(fmt.Sprintf("s%d.db", round))
		// Both start with the same entries, some filed in the archive,
		// the bin or another box, which an update moves back or not.
		for _, o := range owners {
			for _, p := range peers[:2] {
				box := []string{storage.BoxInbox, storage.BoxArchive, storage.BoxBin, "favourites"}[rng.IntN(4)]
				seed := []storage.InboxOp{{Update: storage.InboxUpdate{Owner: o, With: p, Message: "<message/>", Stamp: base, Unread: storage.UnreadIncrement}}}
				for _, s := range []*Store{batched, single} {
					if err := s.ApplyInbox(ctx, seed); err != nil {
						t.Fatal(err)
					}
					if _, err := s.SetInboxProperties(ctx, o, p, storage.InboxProperties{Box: &box}, base); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		var ops []storage.InboxOp
		var lastIDs []string
		for i := range 1 + rng.IntN(40) {
			u := storage.InboxUpdate{Owner: owners[rng.IntN(len(owners))], With: peers[rng.IntN(len(peers))]}
			op := storage.InboxOp{Update: u}
			switch r := rng.IntN(10); {
			case r < 6:
				id := fmt.Sprintf("m%d-%d", round, i)
				op.Update.Message = "<message id='" + id + "'/>"
				op.Update.MessageIDs = []string{id}
				op.Update.Stamp = base.Add(time.Duration(round*100+i) * time.Millisecond)
				op.Update.Unread = storage.InboxUnread(rng.IntN(3))
				lastIDs = append(lastIDs, id)
			case r < 9:
				op.Kind = storage.InboxOpReset
				if len(lastIDs) > 0 && rng.IntN(3) > 0 {
					op.MarkerID = lastIDs[rng.IntN(len(lastIDs))]
				}
			default:
				op.Kind = storage.InboxOpRemove
			}
			ops = append(ops, op)
		}
		if err := batched.ApplyInbox(ctx, ops); err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if err := single.ApplyInbox(ctx, []storage.InboxOp{op}); err != nil {
				t.Fatal(err)
			}
		}
		for _, o := range owners {
			q := storage.InboxQuery{Owner: o, AllBoxes: true, Ascending: true}
			got, err1 := batched.QueryInbox(ctx, q)
			want, err2 := single.QueryInbox(ctx, q)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d, %s:\nbatched %v\none by one %v\nops %+v", round, o, got, want, ops)
			}
		}
	}
}
