// Package storagetest is the conformance suite every storage backend
// passes: the backend's tests call Run with a function opening a fresh,
// empty backend.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// Opener returns a fresh, empty backend; it is closed by the suite.
type Opener func(t *testing.T) storage.Backend

// suites are the conformance tests of each feature's store, registered
// by their files (addSuite in an init function).
var suites = map[string]func(t *testing.T, b storage.Backend){}

func addSuite(name string, fn func(t *testing.T, b storage.Backend)) { suites[name] = fn }

// Run runs the whole suite: one subtest per store, each on a fresh backend.
func Run(t *testing.T, open Opener) {
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, open(t)) })
	names := make([]string, 0, len(suites))
	for name := range suites {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			defer b.Close()
			suites[name](t, b)
		})
	}
}

func testAccounts(t *testing.T, b storage.Backend) {
	defer b.Close()
	ctx := context.Background()
	alice := jid.MustParse("alice@example.com")
	bob := jid.MustParse("bob@example.com")
	carol := jid.MustParse("carol@example.org")

	if ok, err := b.AccountExists(ctx, alice); err != nil || ok {
		t.Fatalf("exists before create: %v %v", ok, err)
	}
	if _, err := b.AccountCredentials(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("credentials of missing account: %v", err)
	}
	for _, u := range []jid.JID{bob, alice, carol} {
		if err := b.CreateAccount(ctx, u, []byte("creds-"+u.Local())); err != nil {
			t.Fatalf("create %s: %v", u, err)
		}
	}
	if err := b.CreateAccount(ctx, alice, []byte("x")); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if ok, err := b.AccountExists(ctx, alice); err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	creds, err := b.AccountCredentials(ctx, alice)
	if err != nil || !bytes.Equal(creds, []byte("creds-alice")) {
		t.Fatalf("credentials: %q %v", creds, err)
	}
	if err := b.SetAccountCredentials(ctx, alice, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if creds, _ := b.AccountCredentials(ctx, alice); string(creds) != "new" {
		t.Fatalf("credentials after set: %q", creds)
	}
	if err := b.SetAccountCredentials(ctx, jid.MustParse("nobody@example.com"), []byte("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("set on missing account: %v", err)
	}
	list, err := b.ListAccounts(ctx, "example.com")
	if err != nil || len(list) != 2 || list[0] != alice || list[1] != bob {
		t.Fatalf("list example.com: %v %v", list, err)
	}
	all, err := b.ListAccounts(ctx, "")
	if err != nil || len(all) != 3 || all[2] != carol {
		t.Fatalf("list all: %v %v", all, err)
	}
	if err := b.RemoveAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveAccount(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if ok, _ := b.AccountExists(ctx, alice); ok {
		t.Fatal("account still exists after remove")
	}
	if ok, _ := b.AccountExists(ctx, bob); !ok {
		t.Fatal("remove took another account")
	}
}
