package storagetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func init() { addSuite("Offline", testOffline) }

func testOffline(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	s, ok := b.(storage.OfflineStore)
	if !ok {
		t.Skip("the backend does not store offline messages")
	}
	alice := jid.MustParse("alice@example.com")
	bob := jid.MustParse("bob@example.com")
	carol := jid.MustParse("carol@example.org")
	sender := jid.MustParse("romeo@example.net/orchard")
	for _, u := range []jid.JID{alice, bob, carol} {
		if err := b.CreateAccount(ctx, u, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(body string) *storage.OfflineMessage {
		return &storage.OfflineMessage{From: sender, Stanza: "<message xmlns='jabber:client'><body>" + body + "</body></message>"}
	}

	if err := s.PushOffline(ctx, jid.MustParse("nobody@example.com"), msg("x"), storage.OfflineLimits{}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("push for a missing account: %v", err)
	}
	start := time.Now()
	var ids []int64
	for i := range 3 {
		m := msg("m" + strconv.Itoa(i))
		if err := s.PushOffline(ctx, alice, m, storage.OfflineLimits{MaxMessages: 3}); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		if len(ids) > 0 && m.ID <= ids[len(ids)-1] {
			t.Fatalf("ids do not increase: %v then %d", ids, m.ID)
		}
		if m.Stored.Before(start.Truncate(time.Millisecond)) || m.Stored.Nanosecond()%int(time.Millisecond) != 0 {
			t.Fatalf("stored stamp %v (start %v): not set or not in milliseconds", m.Stored, start)
		}
		ids = append(ids, m.ID)
	}
	if err := s.PushOffline(ctx, alice, msg("too many"), storage.OfflineLimits{MaxMessages: 3}); !errors.Is(err, storage.ErrOfflineFull) {
		t.Fatalf("push over the count limit: %v", err)
	}
	// The byte limit counts the stored stanzas.
	size := len(msg("m0").Stanza)
	if err := s.PushOffline(ctx, bob, msg("m0"), storage.OfflineLimits{MaxBytes: 2 * size}); err != nil {
		t.Fatal(err)
	}
	if err := s.PushOffline(ctx, bob, msg("m1"), storage.OfflineLimits{MaxBytes: 2 * size}); err != nil {
		t.Fatal(err)
	}
	if err := s.PushOffline(ctx, bob, msg("m2"), storage.OfflineLimits{MaxBytes: 2 * size}); !errors.Is(err, storage.ErrOfflineFull) {
		t.Fatalf("push over the byte limit: %v", err)
	}
	if n, err := s.OfflineCount(ctx, alice); err != nil || n != 3 {
		t.Fatalf("count: %d %v", n, err)
	}

	// A claim takes every message, in order; a second claimer gets none
	// while the claim is fresh.
	got, err := s.ClaimOffline(ctx, alice, "c1", time.Now().Add(-time.Minute))
	if err != nil || len(got) != 3 {
		t.Fatalf("claim: %v %v", got, err)
	}
	for i, m := range got {
		if m.ID != ids[i] || m.Stanza != msg("m"+strconv.Itoa(i)).Stanza || m.From != sender || m.Stored.IsZero() {
			t.Fatalf("claimed message %d: %+v", i, m)
		}
	}
	if again, err := s.ClaimOffline(ctx, alice, "c2", time.Now().Add(-time.Minute)); err != nil || len(again) != 0 {
		t.Fatalf("second claim got %v %v", again, err)
	}
	// A stale claim can be taken over.
	if stale, err := s.ClaimOffline(ctx, alice, "c3", time.Now().Add(time.Second)); err != nil || len(stale) != 3 {
		t.Fatalf("claim of stale claims: %v %v", stale, err)
	}
	if n, err := s.DeleteClaimedOffline(ctx, alice, "c1"); err != nil || n != 0 {
		t.Fatalf("delete with a lost claim: %d %v", n, err)
	}
	// Released messages can be claimed again.
	if err := s.ReleaseOffline(ctx, alice, "c3"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimOffline(ctx, alice, "c4", time.Now().Add(-time.Minute)); err != nil || len(got) != 3 {
		t.Fatalf("claim after release: %v %v", got, err)
	}
	// A message stored during delivery is not part of the claim.
	late := msg("late")
	if err := s.PushOffline(ctx, alice, late, storage.OfflineLimits{}); err != nil {
		t.Fatal(err)
	}
	// A delivery that stopped after the first message deletes only that
	// one and gives the others back.
	if n, err := s.DeleteClaimedOfflineThrough(ctx, alice, "c4", ids[0]); err != nil || n != 1 {
		t.Fatalf("delete through the first: %d %v", n, err)
	}
	if err := s.ReleaseOffline(ctx, alice, "c4"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimOffline(ctx, alice, "c4", time.Now().Add(-time.Minute)); err != nil || len(got) != 3 || got[0].ID != ids[1] || got[2].ID != late.ID {
		t.Fatalf("claim after a partial delivery: %v %v", got, err)
	}
	if err := s.ReleaseOffline(ctx, alice, "c4"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimOffline(ctx, alice, "c4", time.Now().Add(-time.Minute)); err != nil || len(got) != 3 {
		t.Fatalf("claim again: %v %v", got, err)
	}
	if n, err := s.DeleteClaimedOffline(ctx, alice, "c4"); err != nil || n != 3 {
		t.Fatalf("delete claimed: %d %v", n, err)
	}
	if err := s.PushOffline(ctx, alice, late, storage.OfflineLimits{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.OfflineCount(ctx, alice); n != 1 {
		t.Fatalf("count after delivery: %d", n)
	}
	if _, err := s.ClaimOffline(ctx, alice, "c5", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseAllOfflineClaims(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimOffline(ctx, alice, "c6", time.Now().Add(-time.Minute)); err != nil || len(got) != 1 || got[0].ID != late.ID {
		t.Fatalf("claim after releasing all: %v %v", got, err)
	}
	if err := s.ReleaseOffline(ctx, alice, "c6"); err != nil {
		t.Fatal(err)
	}

	// Concurrent claimers (resources logging in at once) share the
	// messages without overlap, and none is lost.
	for i := range 20 {
		if err := s.PushOffline(ctx, bob, msg("c"+strconv.Itoa(i)), storage.OfflineLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			got, err := s.ClaimOffline(ctx, bob, "g"+strconv.Itoa(g), time.Now().Add(-time.Minute))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range got {
				claimed[m.ID]++
			}
		})
	}
	wg.Wait()
	if len(claimed) != 22 { // bob's two from the byte limit test, and 20
		t.Fatalf("concurrent claims got %d distinct messages, want 22", len(claimed))
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("message %d claimed %d times", id, n)
		}
	}
	if err := s.ReleaseAllOfflineClaims(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeOffline(ctx, bob); err != nil || n != 22 {
		t.Fatalf("purge after concurrent claims: %d %v", n, err)
	}
	for _, body := range []string{"m0", "m1"} {
		if err := s.PushOffline(ctx, bob, msg(body), storage.OfflineLimits{}); err != nil {
			t.Fatal(err)
		}
	}

	// Administration.
	if err := s.PushOffline(ctx, carol, msg("x"), storage.OfflineLimits{}); err != nil {
		t.Fatal(err)
	}
	counts, err := s.OfflineCounts(ctx, "")
	want := []storage.OfflineCount{{User: alice, Count: 1}, {User: bob, Count: 2}, {User: carol, Count: 1}}
	if err != nil || len(counts) != len(want) {
		t.Fatalf("counts: %v %v", counts, err)
	}
	for i := range want {
		if counts[i] != want[i] {
			t.Fatalf("counts: %v, want %v", counts, want)
		}
	}
	if counts, err := s.OfflineCounts(ctx, "example.org"); err != nil || len(counts) != 1 || counts[0] != (storage.OfflineCount{User: carol, Count: 1}) {
		t.Fatalf("counts of example.org: %v %v", counts, err)
	}
	if n, err := s.PurgeOffline(ctx, bob); err != nil || n != 2 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if n, err := s.PurgeAllOffline(ctx, "example.org"); err != nil || n != 1 {
		t.Fatalf("purge example.org: %d %v", n, err)
	}
	if n, _ := s.OfflineCount(ctx, alice); n != 1 {
		t.Fatal("purging a domain took another domain's messages")
	}
	if err := s.PushOffline(ctx, bob, msg("x"), storage.OfflineLimits{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeAllOffline(ctx, ""); err != nil || n != 2 {
		t.Fatalf("purge all: %d %v", n, err)
	}

	// The limits count what is left after deliveries and purges.
	lim := storage.OfflineLimits{MaxMessages: 2, MaxBytes: 2 * size}
	for _, body := range []string{"m0", "m1"} {
		if err := s.PushOffline(ctx, bob, msg(body), lim); err != nil {
			t.Fatalf("push after purges: %v", err)
		}
	}
	if err := s.PushOffline(ctx, bob, msg("m2"), lim); !errors.Is(err, storage.ErrOfflineFull) {
		t.Fatalf("push over the limit after purges: %v", err)
	}
	got, err = s.ClaimOffline(ctx, bob, "d1", time.Now().Add(-time.Minute))
	if err != nil || len(got) != 2 {
		t.Fatalf("claim: %v %v", got, err)
	}
	if n, err := s.DeleteClaimedOfflineThrough(ctx, bob, "d1", got[0].ID); err != nil || n != 1 {
		t.Fatalf("partial delivery: %d %v", n, err)
	}
	if err := s.PushOffline(ctx, bob, msg("m2"), lim); err != nil {
		t.Fatalf("push after a delivery made room: %v", err)
	}
	if err := s.PushOffline(ctx, bob, msg("m3"), lim); !errors.Is(err, storage.ErrOfflineFull) {
		t.Fatalf("push over the limit after a delivery: %v", err)
	}

	// Removing an account removes its messages, and its usage: a new
	// account of that name starts empty.
	if err := s.PushOffline(ctx, alice, msg("x"), storage.OfflineLimits{}); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.OfflineCount(ctx, alice); n != 0 {
		t.Fatalf("%d messages outlived their account", n)
	}
	if err := b.CreateAccount(ctx, alice, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.PushOffline(ctx, alice, msg("m0"), storage.OfflineLimits{MaxMessages: 1}); err != nil {
		t.Fatalf("push for a new account of a removed one's name: %v", err)
	}
}
