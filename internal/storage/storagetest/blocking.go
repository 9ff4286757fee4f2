package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func init() { addSuite("Blocking", testBlocking) }

func testBlocking(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	s, ok := b.(storage.BlockingStore)
	if !ok {
		t.Skip("the backend does not store block lists")
	}
	alice := jid.MustParse("alice@example.com")
	bob := jid.MustParse("bob@example.com")
	for _, u := range []jid.JID{alice, bob} {
		if err := b.CreateAccount(ctx, u, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// Every form of XEP-0191 §6.
	full := jid.MustParse("romeo@montague.net/orchard")
	bare := jid.MustParse("iago@shakespeare.lit")
	domRes := jid.MustParse("montague.net/gateway")
	domain := jid.MustParse("evil.example")
	check := func(what string, got []jid.JID, err error, want ...jid.JID) {
		t.Helper()
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: %v %v, want %v", what, got, err, want)
		}
	}

	list, err := s.BlockList(ctx, alice)
	check("empty list", list, err)
	if _, err := s.BlockJIDs(ctx, jid.MustParse("nobody@example.com"), []jid.JID{bare}, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("block for a missing account: %v", err)
	}
	list, err = s.BlockJIDs(ctx, alice, []jid.JID{full, bare, full}, 4)
	check("block", list, err, full, bare)
	list, err = s.BlockJIDs(ctx, alice, []jid.JID{domain, bare, domRes}, 4)
	check("block more, one already blocked", list, err, full, bare, domain, domRes)
	if _, err := s.BlockJIDs(ctx, alice, []jid.JID{jid.MustParse("x@y")}, 4); !errors.Is(err, storage.ErrBlocklistFull) {
		t.Fatalf("block over the limit: %v", err)
	}
	// Blocking what is blocked already does not count against the limit.
	list, err = s.BlockJIDs(ctx, alice, []jid.JID{bare}, 4)
	check("block again at the limit", list, err, full, bare, domain, domRes)
	list, err = s.BlockList(ctx, alice)
	check("list", list, err, full, bare, domain, domRes)
	list, err = s.BlockList(ctx, bob)
	check("another user's list", list, err)

	list, err = s.UnblockJIDs(ctx, alice, []jid.JID{bare, jid.MustParse("never@blocked")})
	check("unblock", list, err, full, domain, domRes)
	if _, err := s.BlockJIDs(ctx, bob, []jid.JID{bare}, 0); err != nil {
		t.Fatal(err)
	}
	list, err = s.UnblockAll(ctx, alice)
	check("unblock all", list, err, full, domain, domRes)
	list, err = s.BlockList(ctx, alice)
	check("list after unblock all", list, err)
	list, err = s.BlockList(ctx, bob)
	check("unblock all took another user's list", list, err, bare)

	// Removing an account removes its list.
	if err := b.RemoveAccount(ctx, bob); err != nil {
		t.Fatal(err)
	}
	list, err = s.BlockList(ctx, bob)
	check("list of a removed account", list, err)
}
