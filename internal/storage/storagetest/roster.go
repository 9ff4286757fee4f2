package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func init() { addSuite("Roster", testRoster) }

func testRoster(t *testing.T, b storage.Backend) {
	s, ok := b.(storage.RosterStore)
	if !ok {
		t.Skip("the backend has no roster store")
	}
	ctx := context.Background()
	alice := jid.MustParse("alice@example.com")
	bob := jid.MustParse("bob@example.com")
	carol := jid.MustParse("carol@example.org")
	dave := jid.MustParse("dave@example.net")

	put := func(user jid.JID, it storage.RosterItem) (int64, bool) {
		t.Helper()
		v, changed, err := s.PutRosterItem(ctx, user, it)
		if err != nil {
			t.Fatalf("put %s in %s: %v", it.Contact, user, err)
		}
		return v, changed
	}
	changesSince := func(user jid.JID, since int64) ([]storage.RosterChange, int64, bool) {
		t.Helper()
		ch, cur, ok, err := s.RosterChanges(ctx, user, since)
		if err != nil {
			t.Fatal(err)
		}
		return ch, cur, ok
	}

	// An account without a roster: empty, version 0, and no changes.
	items, v0, err := s.Roster(ctx, alice)
	if err != nil || len(items) != 0 || v0 != 0 {
		t.Fatalf("empty roster: %v %d %v", items, v0, err)
	}
	if ch, cur, ok := changesSince(alice, 0); !ok || len(ch) != 0 || cur != 0 {
		t.Fatalf("changes of an empty roster: %v %d %v", ch, cur, ok)
	}
	if _, err := s.RosterItem(ctx, alice, bob); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing item: %v", err)
	}
	if _, err := s.DeleteRosterItem(ctx, alice, bob); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete missing item: %v", err)
	}

	// Adding an item gives it a version; putting it again unchanged does not.
	bobItem := storage.RosterItem{Contact: bob, Name: "Bob", Groups: []string{"Work", "Friends"},
		Subscription: storage.SubTo, PendingIn: true, InboundRequest: "<presence type='subscribe'/>"}
	v1, changed := put(alice, bobItem)
	if !changed || v1 <= 0 {
		t.Fatalf("first put: version %d changed %v", v1, changed)
	}
	got, err := s.RosterItem(ctx, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	want := bobItem
	want.Version = v1
	if !equalItems(got, want) {
		t.Fatalf("stored %+v, want %+v (groups in the client's order)", got, want)
	}
	if v, changed := put(alice, bobItem); changed || v != v1 {
		t.Fatalf("put unchanged: version %d changed %v, want %d false", v, changed, v1)
	}
	// The pending inbound request is not visible in the roster: changing
	// it alone is not a roster modification (RFC 6121 §2.6.3).
	bobItem.PendingIn, bobItem.InboundRequest = false, ""
	if v, changed := put(alice, bobItem); changed || v != v1 {
		t.Fatalf("put with only PendingIn changed: version %d changed %v", v, changed)
	}
	if got, _ := s.RosterItem(ctx, alice, bob); got.PendingIn || got.InboundRequest != "" || got.Version != v1 {
		t.Fatalf("PendingIn not updated: %+v", got)
	}
	// Every visible field is a modification.
	last := v1
	for i, change := range []func(*storage.RosterItem){
		func(it *storage.RosterItem) { it.Name = "Bobby" },
		func(it *storage.RosterItem) { it.Groups = []string{"Friends", "Work"} },
		func(it *storage.RosterItem) { it.Groups = nil },
		func(it *storage.RosterItem) { it.Subscription = storage.SubBoth },
		func(it *storage.RosterItem) { it.Subscription, it.PendingOut = storage.SubNone, true },
		func(it *storage.RosterItem) { it.PreApproved = true },
	} {
		change(&bobItem)
		v, changed := put(alice, bobItem)
		if !changed || v <= last {
			t.Fatalf("change %d: version %d (previous %d) changed %v", i, v, last, changed)
		}
		last = v
	}
	if got, _ := s.RosterItem(ctx, alice, bob); got.Groups != nil || got.Version != last || !got.PreApproved || !got.PendingOut {
		t.Fatalf("after changes: %+v", got)
	}

	// A hidden entry (an inbound request only) is not in the roster.
	carolReq := storage.RosterItem{Contact: carol, Hidden: true, PendingIn: true, InboundRequest: "<presence from='carol@example.org' type='subscribe'/>"}
	if v, changed := put(alice, carolReq); changed || v != last {
		t.Fatalf("hidden put: version %d changed %v, want %d false", v, changed, last)
	}
	items, v, err := s.Roster(ctx, alice)
	if err != nil || len(items) != 1 || items[0].Contact != bob || v != last {
		t.Fatalf("roster with a hidden entry: %v %d %v", items, v, err)
	}
	if got, err := s.RosterItem(ctx, alice, carol); err != nil || !got.Hidden || !got.PendingIn || got.InboundRequest != carolReq.InboundRequest {
		t.Fatalf("hidden entry: %+v %v", got, err)
	}
	if n, err := s.RosterSize(ctx, alice); err != nil || n != 2 {
		t.Fatalf("size counts hidden entries: %d %v", n, err)
	}
	reqs, err := s.RosterRequests(ctx, alice)
	if err != nil || len(reqs) != 1 || reqs[0].Contact != carol {
		t.Fatalf("requests: %v %v", reqs, err)
	}
	if ch, _, _ := changesSince(alice, v1); len(ch) != 1 || ch[0].Item.Contact != bob {
		t.Fatalf("a hidden entry is not a change: %v", ch)
	}
	// Approving makes it an item: a modification.
	carolItem := storage.RosterItem{Contact: carol, Subscription: storage.SubFrom}
	vCarol, changed := put(alice, carolItem)
	if !changed || vCarol <= last {
		t.Fatalf("hidden to visible: %d %v", vCarol, changed)
	}
	last = vCarol

	// Changes since a version: every item changed after it, once, in
	// version order; nothing since the current one; not ok from the future.
	ch, cur, ok := changesSince(alice, v1)
	if !ok || cur != last || len(ch) != 2 || ch[0].Item.Contact != bob || ch[1].Item.Contact != carol || ch[1].Item.Version != vCarol {
		t.Fatalf("changes since %d: %+v %d %v", v1, ch, cur, ok)
	}
	if ch, cur, ok := changesSince(alice, last); !ok || len(ch) != 0 || cur != last {
		t.Fatalf("changes since the current version: %v %d %v", ch, cur, ok)
	}
	if _, _, ok := changesSince(alice, last+1); ok {
		t.Fatal("changes since a version ahead of the roster")
	}
	if ch, _, ok := changesSince(alice, 0); !ok || len(ch) != 2 {
		t.Fatalf("changes since 0 (an empty cached roster): %v %v", ch, ok)
	}

	// Deleting an item leaves a tombstone: a removal at a new version.
	vDel, err := s.DeleteRosterItem(ctx, alice, bob)
	if err != nil || vDel <= last {
		t.Fatalf("delete: %d %v", vDel, err)
	}
	ch, _, ok = changesSince(alice, vCarol)
	if !ok || len(ch) != 1 || !ch[0].Removed || ch[0].Item.Contact != bob || ch[0].Item.Version != vDel {
		t.Fatalf("removal: %+v %v", ch, ok)
	}
	if ch, _, _ := changesSince(alice, v1); len(ch) != 2 || ch[0].Item.Contact != carol || !ch[1].Removed {
		t.Fatalf("changes in version order: %+v", ch)
	}
	// Adding it back: a change, no removal any more.
	vBack, _ := put(alice, storage.RosterItem{Contact: bob})
	if ch, _, _ := changesSince(alice, vCarol); len(ch) != 1 || ch[0].Removed || ch[0].Item.Version != vBack {
		t.Fatalf("re-added item: %+v", ch)
	}
	// A hidden entry over an item takes it out of the roster.
	vHide, changed := put(alice, storage.RosterItem{Contact: bob, Hidden: true, PendingIn: true})
	if !changed || vHide <= vBack {
		t.Fatalf("item made hidden: %d %v", vHide, changed)
	}
	if ch, _, _ := changesSince(alice, vBack); len(ch) != 1 || !ch[0].Removed || ch[0].Item.Contact != bob {
		t.Fatalf("item made hidden is a removal: %+v", ch)
	}
	// Deleting a hidden entry is not a roster modification.
	if v, err := s.DeleteRosterItem(ctx, alice, bob); err != nil || v != vHide {
		t.Fatalf("delete hidden: %d %v (version %d)", v, err, vHide)
	}

	// Subscription filters.
	put(alice, storage.RosterItem{Contact: bob, Subscription: storage.SubBoth})
	put(alice, storage.RosterItem{Contact: dave, Subscription: storage.SubTo})
	put(alice, storage.RosterItem{Contact: jid.MustParse("eve@example.com"), Hidden: true, PendingIn: true})
	for _, c := range []struct {
		subs []storage.Subscription
		want []jid.JID
	}{
		{[]storage.Subscription{storage.SubFrom, storage.SubBoth}, []jid.JID{bob, carol}},
		{[]storage.Subscription{storage.SubTo, storage.SubBoth}, []jid.JID{bob, dave}},
		{[]storage.Subscription{storage.SubNone}, nil},
		{nil, nil},
	} {
		got, err := s.RosterContacts(ctx, alice, c.subs...)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("contacts %v: %v %v, want %v", c.subs, got, err, c.want)
		}
	}
	items, _, _ = s.Roster(ctx, alice)
	if len(items) != 3 || items[0].Contact != bob || items[1].Contact != carol || items[2].Contact != dave {
		t.Fatalf("roster sorted by contact: %v", items)
	}

	// Another user's roster is separate.
	put(bob, storage.RosterItem{Contact: alice, Subscription: storage.SubBoth})
	put(carol, storage.RosterItem{Contact: bob, Hidden: true, PendingIn: true})
	if items, _, _ := s.Roster(ctx, bob); len(items) != 1 || items[0].Contact != alice {
		t.Fatalf("bob's roster: %v", items)
	}
	if users, err := s.ContactsOf(ctx, bob); err != nil || !slices.Equal(users, []jid.JID{alice, carol}) {
		t.Fatalf("contacts of bob: %v %v", users, err)
	}

	// Removing an account removes its roster and the items referring to
	// it in other rosters, with tombstones there.
	for _, u := range []jid.JID{alice, bob} {
		if err := b.CreateAccount(ctx, u, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	_, before, _ := s.Roster(ctx, alice)
	_, bobVersion, _ := s.Roster(ctx, bob)
	if err := b.RemoveAccount(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if items, v, _ := s.Roster(ctx, bob); len(items) != 0 || v != 0 {
		t.Fatalf("removed account's roster: %v %d", items, v)
	}
	if users, _ := s.ContactsOf(ctx, bob); len(users) != 0 {
		t.Fatalf("removed account still in rosters of %v", users)
	}
	if _, err := s.RosterItem(ctx, carol, bob); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("hidden entry for the removed account: %v", err)
	}
	ch, after, ok := changesSince(alice, before)
	if !ok || after <= before || len(ch) != 1 || !ch[0].Removed || ch[0].Item.Contact != bob || ch[0].Item.Version != after {
		t.Fatalf("alice's changes after bob's removal: %+v %d→%d %v", ch, before, after, ok)
	}
	if items, _, _ := s.Roster(ctx, alice); len(items) != 2 {
		t.Fatalf("alice's roster after bob's removal: %v", items)
	}
	// An account created again under the same name gives out versions
	// above its predecessor's, so a cached version cannot match.
	if err := b.CreateAccount(ctx, bob, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, _ := put(bob, storage.RosterItem{Contact: carol}); v <= bobVersion {
		t.Fatalf("re-created account: version %d, predecessor's %d", v, bobVersion)
	}
	if _, _, ok := changesSince(bob, bobVersion); ok {
		t.Fatal("changes since a version of the predecessor account")
	}
}

func equalItems(a, b storage.RosterItem) bool {
	return a.Contact == b.Contact && a.Name == b.Name && slices.Equal(a.Groups, b.Groups) &&
		a.Subscription == b.Subscription && a.PendingOut == b.PendingOut && a.PendingIn == b.PendingIn &&
		a.InboundRequest == b.InboundRequest && a.PreApproved == b.PreApproved && a.Hidden == b.Hidden &&
		a.Version == b.Version
}
