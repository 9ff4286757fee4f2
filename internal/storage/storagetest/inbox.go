package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func init() { addSuite("Inbox", testInbox) }

func testInbox(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	s, ok := b.(storage.InboxStore)
	if !ok {
		t.Skip("the backend does not store inboxes")
	}
	alice := jid.MustParse("alice@example.com")
	bob := jid.MustParse("bob@example.com")
	carol := jid.MustParse("carol@example.org")
	room := jid.MustParse("room@muclight.example.com")
	for _, u := range []jid.JID{alice, bob} {
		if err := b.CreateAccount(ctx, u, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	update := func(owner, with jid.JID, i int, unread storage.InboxUnread, ids ...string) {
		t.Helper()
		err := s.ApplyInbox(ctx, []storage.InboxOp{{Update: storage.InboxUpdate{Owner: owner, With: with, Message: fmt.Sprintf("<message>%d</message>", i),
			MessageIDs: ids, Stamp: at(i), Unread: unread}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	entry := func(owner, with jid.JID) storage.InboxEntry {
		t.Helper()
		e, err := s.InboxEntry(ctx, owner, with)
		if err != nil {
			t.Fatalf("entry %s/%s: %v", owner, with, err)
		}
		return e
	}
	peers := func(q storage.InboxQuery) string {
		t.Helper()
		es, err := s.QueryInbox(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.CountInbox(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if q.Max == 0 && n != len(es) {
			t.Errorf("count %d, query returned %d", n, len(es))
		}
		out := ""
		for _, e := range es {
			if e.Owner != q.Owner {
				t.Errorf("entry of %s in the inbox of %s", e.Owner, q.Owner)
			}
			out += e.With.Local() + " "
		}
		return out
	}

	if _, err := s.InboxEntry(ctx, alice, bob); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing entry: %v", err)
	}
	if got := peers(storage.InboxQuery{Owner: alice}); got != "" {
		t.Fatalf("empty inbox: %q", got)
	}
	// Received messages count, a sent one resets, one kept keeps.
	update(alice, bob, 1, storage.UnreadIncrement, "m1", "o1")
	update(alice, bob, 2, storage.UnreadIncrement, "m2")
	e := entry(alice, bob)
	if e.Unread != 2 || e.Message != "<message>2</message>" || !e.Stamp.Equal(at(2)) || e.Box != storage.BoxInbox || !e.MutedUntil.IsZero() || e.With != bob {
		t.Fatalf("after two received: %+v", e)
	}
	update(alice, jid.MustParse("carol@example.org/phone"), 3, storage.UnreadReset)
	if e := entry(alice, carol); e.Unread != 0 || e.With != carol {
		t.Fatalf("sent: %+v", e)
	}
	update(alice, room, 4, storage.UnreadIncrement)
	update(alice, room, 5, storage.UnreadKeep)
	if e := entry(alice, room); e.Unread != 1 || !e.Stamp.Equal(at(5)) {
		t.Fatalf("kept: %+v", e)
	}
	update(bob, alice, 6, storage.UnreadReset)
	if got := peers(storage.InboxQuery{Owner: alice}); got != "room carol bob " {
		t.Fatalf("newest first: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, Ascending: true}); got != "bob carol room " {
		t.Fatalf("oldest first: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, Max: 2}); got != "room carol " {
		t.Fatalf("max 2: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, UnreadOnly: true}); got != "room bob " {
		t.Fatalf("unread only: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, Start: at(2), End: at(4)}); got != "carol bob " {
		t.Fatalf("start/end inclusive: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, After: at(2), Before: at(5)}); got != "carol " {
		t.Fatalf("after/before exclusive: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, Before: at(5), Max: 1}); got != "carol " {
		t.Fatalf("next page: %q", got)
	}
	if n, _ := s.CountInbox(ctx, storage.InboxQuery{Owner: alice, Max: 1}); n != 3 {
		t.Fatalf("count ignores max: %d", n)
	}

	// Markers (batch writes, as the module makes them): an id of the
	// last message, or none, resets.
	apply := func(what string, op storage.InboxOp) {
		t.Helper()
		if err := s.ApplyInbox(ctx, []storage.InboxOp{op}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	reset := func(with jid.JID, id string) {
		t.Helper()
		apply("reset", storage.InboxOp{Kind: storage.InboxOpReset, Update: storage.InboxUpdate{Owner: alice, With: with}, MarkerID: id})
	}
	remove := func(with jid.JID) {
		t.Helper()
		apply("remove", storage.InboxOp{Kind: storage.InboxOpRemove, Update: storage.InboxUpdate{Owner: alice, With: with}})
	}
	if reset(bob, "m1"); entry(alice, bob).Unread != 2 {
		t.Fatalf("reset by an older id: %+v", entry(alice, bob))
	}
	if reset(bob, "m"); entry(alice, bob).Unread != 2 {
		t.Fatalf("reset by a prefix: %+v", entry(alice, bob))
	}
	if reset(bob, "m2"); entry(alice, bob).Unread != 0 {
		t.Fatalf("reset by the last id: %+v", entry(alice, bob))
	}
	update(alice, bob, 7, storage.UnreadIncrement, "a", "b")
	if reset(bob, "b"); entry(alice, bob).Unread != 0 {
		t.Fatalf("reset by the second id: %+v", entry(alice, bob))
	}
	update(alice, bob, 8, storage.UnreadIncrement)
	if reset(bob, ""); entry(alice, bob).Unread != 0 {
		t.Fatalf("reset without id: %+v", entry(alice, bob))
	}
	reset(jid.MustParse("nobody@x"), "")
	if _, err := s.InboxEntry(ctx, alice, jid.MustParse("nobody@x")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("reset of a missing entry created it: %v", err)
	}

	// Properties.
	str := func(v string) *string { return &v }
	yes, no := true, false
	muted := at(100)
	if _, err := s.SetInboxProperties(ctx, alice, jid.MustParse("nobody@x"), storage.InboxProperties{Box: str("archive")}, at(9)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("set on a missing entry: %v", err)
	}
	e, err := s.SetInboxProperties(ctx, alice, bob, storage.InboxProperties{Box: str(storage.BoxArchive), Read: &no, MutedUntil: &muted}, at(9))
	if err != nil || e.Box != storage.BoxArchive || e.Unread != 1 || !e.MutedUntil.Equal(muted) || e.Message != "<message>8</message>" {
		t.Fatalf("set: %+v %v", e, err)
	}
	e, err = s.SetInboxProperties(ctx, alice, bob, storage.InboxProperties{Read: &no}, at(9))
	if err != nil || e.Unread != 1 {
		t.Fatalf("unread stays 1: %+v %v", e, err)
	}
	if e, err = s.SetInboxProperties(ctx, alice, room, storage.InboxProperties{Read: &no}, at(9)); err != nil || e.Unread != 1 {
		t.Fatalf("read=false on a count of 1 keeps it: %+v %v", e, err)
	}
	if e, err = s.SetInboxProperties(ctx, alice, room, storage.InboxProperties{Read: &yes}, at(9)); err != nil || e.Unread != 0 {
		t.Fatalf("read=true: %+v %v", e, err)
	}
	// read=false leaves a count above 1 as it is (not 1), and sets 0 to 1.
	erin := jid.MustParse("erin@example.com")
	for i := range 3 {
		update(alice, erin, 9, storage.UnreadIncrement, fmt.Sprint("e", i))
	}
	if e, err = s.SetInboxProperties(ctx, alice, erin, storage.InboxProperties{Read: &no}, at(9)); err != nil || e.Unread != 3 {
		t.Fatalf("read=false on a count of 3 keeps it: %+v %v", e, err)
	}
	if e := entry(alice, erin); e.Unread != 3 {
		t.Fatalf("read=false on a count of 3, stored: %+v", e)
	}
	if e, err = s.SetInboxProperties(ctx, alice, erin, storage.InboxProperties{Read: &no, Box: str(storage.BoxArchive)}, at(9)); err != nil || e.Unread != 3 || e.Box != storage.BoxArchive {
		t.Fatalf("read=false with a box on a count of 3: %+v %v", e, err)
	}
	if e, err = s.SetInboxProperties(ctx, alice, erin, storage.InboxProperties{Read: &yes}, at(9)); err != nil || e.Unread != 0 {
		t.Fatalf("read=true on a count of 3: %+v %v", e, err)
	}
	if e, err = s.SetInboxProperties(ctx, alice, erin, storage.InboxProperties{Read: &no}, at(9)); err != nil || e.Unread != 1 || entry(alice, erin).Unread != 1 {
		t.Fatalf("read=false on a count of 0: %+v %v", e, err)
	}
	remove(erin)
	if _, err := s.InboxEntry(ctx, alice, erin); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("removed entry: %v", err)
	}
	if e, err = s.SetInboxProperties(ctx, alice, room, storage.InboxProperties{}, at(9)); err != nil || e.With != room {
		t.Fatalf("no change: %+v %v", e, err)
	}
	unmute := time.Time{}
	if e, err = s.SetInboxProperties(ctx, alice, bob, storage.InboxProperties{MutedUntil: &unmute}, at(9)); err != nil || !e.MutedUntil.IsZero() {
		t.Fatalf("unmute: %+v %v", e, err)
	}
	if got := peers(storage.InboxQuery{Owner: alice, Box: storage.BoxArchive}); got != "bob " {
		t.Fatalf("archive box: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, Box: storage.BoxInbox}); got != "room carol " {
		t.Fatalf("inbox box: %q", got)
	}
	// A new message moves an archived entry back to the inbox, but not
	// one filed in another box.
	update(alice, bob, 10, storage.UnreadIncrement)
	if e := entry(alice, bob); e.Box != storage.BoxInbox || e.Unread != 2 {
		t.Fatalf("unarchived: %+v", e)
	}
	s.SetInboxProperties(ctx, alice, room, storage.InboxProperties{Box: str("favourites")}, at(10))
	update(alice, room, 11, storage.UnreadIncrement)
	if e := entry(alice, room); e.Box != "favourites" {
		t.Fatalf("custom box: %+v", e)
	}

	// The bin: hidden by default, shown with all boxes, emptied, purged
	// by the time entries entered it.
	s.SetInboxProperties(ctx, alice, carol, storage.InboxProperties{Box: str(storage.BoxBin)}, at(20))
	s.SetInboxProperties(ctx, alice, bob, storage.InboxProperties{Box: str(storage.BoxBin)}, at(30))
	s.SetInboxProperties(ctx, alice, bob, storage.InboxProperties{Box: str(storage.BoxBin)}, at(40)) // no change: still since 30
	if got := peers(storage.InboxQuery{Owner: alice}); got != "room " {
		t.Fatalf("without the bin: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, AllBoxes: true}); got != "room bob carol " {
		t.Fatalf("all boxes: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: alice, Box: storage.BoxBin}); got != "bob carol " {
		t.Fatalf("bin: %q", got)
	}
	update(bob, carol, 12, storage.UnreadIncrement)
	s.SetInboxProperties(ctx, bob, carol, storage.InboxProperties{Box: str(storage.BoxBin)}, at(25))
	if n, err := s.PurgeInboxBin(ctx, at(30)); err != nil || n != 2 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if got := peers(storage.InboxQuery{Owner: alice, Box: storage.BoxBin}); got != "bob " {
		t.Fatalf("bin after purge: %q", got)
	}
	// A new message takes an entry out of the bin.
	update(alice, bob, 13, storage.UnreadIncrement)
	if e := entry(alice, bob); e.Box != storage.BoxInbox {
		t.Fatalf("out of the bin: %+v", e)
	}
	s.SetInboxProperties(ctx, alice, bob, storage.InboxProperties{Box: str(storage.BoxBin)}, at(50))
	if n, err := s.EmptyInboxBin(ctx, alice); err != nil || n != 1 {
		t.Fatalf("empty bin: %d %v", n, err)
	}
	if n, err := s.EmptyInboxBin(ctx, alice); err != nil || n != 0 {
		t.Fatalf("empty an empty bin: %d %v", n, err)
	}
	remove(room)
	remove(room) // no entry: nothing to do
	if got := peers(storage.InboxQuery{Owner: alice, AllBoxes: true}); got != "" {
		t.Fatalf("after removals: %q", got)
	}

	// A batch applies in order, in one transaction.
	dave := jid.MustParse("dave@example.com")
	msg := func(i int, unread storage.InboxUnread, ids ...string) storage.InboxUpdate {
		return storage.InboxUpdate{Owner: alice, With: dave, Message: fmt.Sprintf("<message>%d</message>", i), MessageIDs: ids, Stamp: at(i), Unread: unread}
	}
	err = s.ApplyInbox(ctx, []storage.InboxOp{
		{Kind: storage.InboxOpUpdate, Update: msg(70, storage.UnreadIncrement, "x")},
		{Kind: storage.InboxOpUpdate, Update: msg(71, storage.UnreadIncrement, "y")},
		{Kind: storage.InboxOpReset, Update: storage.InboxUpdate{Owner: alice, With: dave}, MarkerID: "x"}, // not the last
		{Kind: storage.InboxOpUpdate, Update: msg(72, storage.UnreadKeep)},
		{Kind: storage.InboxOpUpdate, Update: storage.InboxUpdate{Owner: alice, With: room, Message: "<message>r</message>", Stamp: at(73)}},
		{Kind: storage.InboxOpRemove, Update: storage.InboxUpdate{Owner: alice, With: room}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := entry(alice, dave); e.Unread != 2 || e.Message != "<message>72</message>" || !e.Stamp.Equal(at(72)) {
		t.Fatalf("after a batch: %+v", e)
	}
	if got := peers(storage.InboxQuery{Owner: alice, AllBoxes: true}); got != "dave " {
		t.Fatalf("after a batch: %q", got)
	}
	if err := s.ApplyInbox(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyInbox(ctx, []storage.InboxOp{{Kind: storage.InboxOpReset, Update: storage.InboxUpdate{Owner: alice, With: dave}}}); err != nil || entry(alice, dave).Unread != 0 {
		t.Fatalf("reset in a batch: %v", err)
	}

	update(carol, alice, 74, storage.UnreadIncrement)
	update(carol, bob, 75, storage.UnreadIncrement)
	update(bob, carol, 76, storage.UnreadIncrement)
	if err := s.RemoveInbox(ctx, carol); err != nil {
		t.Fatal(err)
	}
	if got := peers(storage.InboxQuery{Owner: carol, AllBoxes: true}); got != "" {
		t.Fatalf("after RemoveInbox: %q", got)
	}
	if e := entry(bob, carol); e.Unread != 1 || e.Message != "<message>76</message>" {
		t.Fatalf("RemoveInbox took another inbox's entry: %+v", e)
	}

	// Removing an account removes its inbox, not the others'.
	update(alice, bob, 60, storage.UnreadIncrement)
	if err := b.RemoveAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if got := peers(storage.InboxQuery{Owner: alice, AllBoxes: true}); got != "" {
		t.Fatalf("inbox of a removed account: %q", got)
	}
	if got := peers(storage.InboxQuery{Owner: bob, AllBoxes: true}); got != "carol alice " {
		t.Fatalf("inbox of bob: %q", got)
	}
}
