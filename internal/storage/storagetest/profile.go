package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func init() { addSuite("Profile", testProfile) }

// testProfile checks storage.ProfileStore: vCards, private XML with its
// quota, last logouts, and that all of them go with the account.
func testProfile(t *testing.T, b storage.Backend) {
	ps, ok := b.(storage.ProfileStore)
	if !ok {
		t.Fatalf("%T does not implement storage.ProfileStore", b)
	}
	ctx := context.Background()
	alice := jid.MustParse("alice@example.com")
	bob := jid.MustParse("bob@example.com")
	ghost := jid.MustParse("ghost@example.com")
	for _, u := range []jid.JID{alice, bob} {
		if err := b.CreateAccount(ctx, u, []byte("c")); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("VCard", func(t *testing.T) {
		if _, err := ps.VCard(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("vcard before set: %v", err)
		}
		v1 := "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>"
		v2 := "<vCard xmlns='vcard-temp'><FN>Alice Ä</FN><NICKNAME>al</NICKNAME></vCard>"
		for _, v := range []string{v1, v2} {
			if err := ps.SetVCard(ctx, alice, v); err != nil {
				t.Fatal(err)
			}
			if got, err := ps.VCard(ctx, alice); err != nil || got != v {
				t.Fatalf("vcard %q %v, want %q", got, err, v)
			}
		}
		if _, err := ps.VCard(ctx, bob); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("bob's vcard: %v", err)
		}
		if err := ps.SetVCard(ctx, ghost, v1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("vcard of a missing account: %v", err)
		}
		if _, err := ps.VCard(ctx, ghost); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("vcard of a missing account stored: %v", err)
		}
		if err := ps.SetVCard(ctx, bob, v1); err != nil {
			t.Fatal(err)
		}
		if err := ps.SetVCard(ctx, bob, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := ps.VCard(ctx, bob); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("vcard after removal: %v", err)
		}
		if err := ps.SetVCard(ctx, bob, ""); err != nil {
			t.Fatalf("removing a missing vcard: %v", err)
		}
	})

	t.Run("PrivateXML", func(t *testing.T) {
		if _, err := ps.PrivateXML(ctx, alice, "a:prefs", "prefs"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("private before set: %v", err)
		}
		a := storage.PrivateItem{NS: "a:prefs", Name: "prefs", XML: "<prefs xmlns='a:prefs'><x>1</x></prefs>"}
		a2 := storage.PrivateItem{NS: "a:prefs", Name: "other", XML: "<other xmlns='a:prefs'/>"}
		bm := storage.PrivateItem{NS: "storage:bookmarks", Name: "storage", XML: "<storage xmlns='storage:bookmarks'/>"}
		if err := ps.PutPrivateXML(ctx, alice, []storage.PrivateItem{a, a2, bm}, 0); err != nil {
			t.Fatal(err)
		}
		for _, it := range []storage.PrivateItem{a, a2, bm} {
			if got, err := ps.PrivateXML(ctx, alice, it.NS, it.Name); err != nil || got != it.XML {
				t.Fatalf("private %s %s: %q %v", it.NS, it.Name, got, err)
			}
		}
		if _, err := ps.PrivateXML(ctx, bob, a.NS, a.Name); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("bob sees alice's private xml: %v", err)
		}
		// Replace one, remove another.
		a.XML = "<prefs xmlns='a:prefs'><x>2</x></prefs>"
		if err := ps.PutPrivateXML(ctx, alice, []storage.PrivateItem{a, {NS: a2.NS, Name: a2.Name}}, 0); err != nil {
			t.Fatal(err)
		}
		if got, _ := ps.PrivateXML(ctx, alice, a.NS, a.Name); got != a.XML {
			t.Fatalf("replaced private %q", got)
		}
		if _, err := ps.PrivateXML(ctx, alice, a2.NS, a2.Name); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("removed private: %v", err)
		}
		if err := ps.PutPrivateXML(ctx, ghost, []storage.PrivateItem{a}, 0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("private of a missing account: %v", err)
		}

		// Quota: bytes, not characters, over everything the account stores.
		big := storage.PrivateItem{NS: "b:big", Name: "big", XML: "<big xmlns='b:big'>ääää</big>"}
		if err := ps.PutPrivateXML(ctx, bob, []storage.PrivateItem{big}, int64(len(big.XML)-1)); !errors.Is(err, storage.ErrQuota) {
			t.Fatalf("one byte over the quota: %v", err)
		}
		if err := ps.PutPrivateXML(ctx, bob, []storage.PrivateItem{big}, int64(len(big.XML))); err != nil {
			t.Fatalf("exactly at the quota: %v", err)
		}
		more := storage.PrivateItem{NS: "b:more", Name: "more", XML: "<more xmlns='b:more'/>"}
		if err := ps.PutPrivateXML(ctx, bob, []storage.PrivateItem{more}, int64(len(big.XML))); !errors.Is(err, storage.ErrQuota) {
			t.Fatalf("over the quota: %v", err)
		}
		if _, err := ps.PrivateXML(ctx, bob, more.NS, more.Name); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stored although over the quota: %v", err)
		}
		// Replacing counts the new size only; removing in the same
		// request makes room.
		if err := ps.PutPrivateXML(ctx, bob, []storage.PrivateItem{{NS: big.NS, Name: big.Name}, more}, int64(len(big.XML))); err != nil {
			t.Fatalf("remove and add within the quota: %v", err)
		}
		if got, _ := ps.PrivateXML(ctx, bob, more.NS, more.Name); got != more.XML {
			t.Fatalf("private after remove and add: %q", got)
		}
	})

	t.Run("LastActivity", func(t *testing.T) {
		if _, err := ps.LastActivity(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("last activity before set: %v", err)
		}
		at := time.Unix(1700000000, 0)
		for _, l := range []storage.LastActivity{{At: at, Status: "Heading home"}, {At: at.Add(time.Hour + 300*time.Millisecond)}} {
			if err := ps.SetLastActivity(ctx, alice, l); err != nil {
				t.Fatal(err)
			}
			got, err := ps.LastActivity(ctx, alice)
			if err != nil || got.At.Unix() != l.At.Unix() || got.Status != l.Status {
				t.Fatalf("last activity %+v %v, want %+v", got, err, l)
			}
		}
		if err := ps.SetLastActivity(ctx, ghost, storage.LastActivity{At: at}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("last activity of a missing account: %v", err)
		}
		if _, err := ps.LastActivity(ctx, ghost); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("last activity of a missing account stored: %v", err)
		}
	})

	t.Run("RemoveAccount", func(t *testing.T) {
		if err := b.RemoveAccount(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := ps.VCard(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("vcard survives the account: %v", err)
		}
		if _, err := ps.PrivateXML(ctx, alice, "a:prefs", "prefs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("private xml survives the account: %v", err)
		}
		if _, err := ps.LastActivity(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("last activity survives the account: %v", err)
		}
		// A new account of the same name starts empty.
		if err := b.CreateAccount(ctx, alice, []byte("c")); err != nil {
			t.Fatal(err)
		}
		if _, err := ps.VCard(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("vcard of the new account: %v", err)
		}
		if got, _ := ps.PrivateXML(ctx, bob, "b:more", "more"); got == "" {
			t.Error("removing alice took bob's data")
		}
	})
}
