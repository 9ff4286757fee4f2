package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/microclock"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/internal/storage/sqlite"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func parse(t *testing.T, s string) *stanza.Stanza {
	t.Helper()
	el, err := xmlstream.Parse([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil {
		t.Fatalf("%s: %v", s, serr)
	}
	return &st
}

func TestDecisions(t *testing.T) {
	alice := jid.MustParse("alice@x")
	const (
		aff     = "<x xmlns='urn:xmpp:muclight:0#affiliations'><user affiliation='%s'>%s</user></x>"
		marker  = "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"
		receivd = "<received xmlns='urn:xmpp:chat-markers:0' id='m1'/>"
	)
	for _, tc := range []struct {
		name     string
		sent     bool
		msg      string
		want     []change
		noMUCL   bool
		noAffs   bool
		noRemove bool
	}{
		{name: "sent chat", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='bob@x/r' type='chat'><body>hi</body></message>",
			want: []change{{op: opUpdate, with: jid.MustParse("bob@x"), unread: storage.UnreadReset}}},
		{name: "sent normal, empty body", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='bob@x'><body/></message>",
			want: []change{{op: opUpdate, with: jid.MustParse("bob@x"), unread: storage.UnreadReset}}},
		{name: "sent chat state", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='bob@x' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"},
		{name: "sent headline", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='bob@x' type='headline'><body>x</body></message>"},
		{name: "sent to self", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='alice@x/other' type='chat'><body>x</body></message>"},
		{name: "sent to a server", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='x' type='chat'><body>x</body></message>"},
		{name: "sent marker", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='bob@x' type='chat'>" + marker + "</message>",
			want: []change{{op: opReset, with: jid.MustParse("bob@x"), markerID: "m1"}}},
		{name: "sent marker not configured", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='bob@x' type='chat'>" + receivd + "</message>"},
		{name: "sent marker with a body", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='bob@x' type='chat'><body>ok</body>" + marker + "</message>",
			want: []change{{op: opReset, with: jid.MustParse("bob@x"), markerID: "m1"}, {op: opUpdate, with: jid.MustParse("bob@x"), unread: storage.UnreadReset}}},
		{name: "sent groupchat", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='room@muclight.x' type='groupchat'><body>hi</body></message>"},
		{name: "sent groupchat marker", sent: true, msg: "<message xmlns='jabber:client' from='alice@x/r' to='room@muclight.x' type='groupchat'>" + marker + "</message>",
			want: []change{{op: opReset, with: jid.MustParse("room@muclight.x"), markerID: "m1"}}},

		{name: "received chat", msg: "<message xmlns='jabber:client' from='bob@x/r' to='alice@x' type='chat'><body>hi</body></message>",
			want: []change{{op: opUpdate, with: jid.MustParse("bob@x"), unread: storage.UnreadIncrement}}},
		{name: "received error", msg: "<message xmlns='jabber:client' from='bob@x/r' to='alice@x' type='error'><body>hi</body></message>"},
		{name: "received from a server", msg: "<message xmlns='jabber:client' from='x' to='alice@x'><body>motd</body></message>"},
		{name: "received from another resource", msg: "<message xmlns='jabber:client' from='alice@x/r' to='alice@x/s' type='chat'><body>hi</body></message>"},
		{name: "received marker", msg: "<message xmlns='jabber:client' from='bob@x/r' to='alice@x' type='chat'>" + marker + "</message>"},
		{name: "room message", msg: "<message xmlns='jabber:client' from='room@muclight.x/bob@x' to='alice@x' type='groupchat'><body>hi</body></message>",
			want: []change{{op: opUpdate, with: jid.MustParse("room@muclight.x"), unread: storage.UnreadIncrement}}},
		{name: "own room message", msg: "<message xmlns='jabber:client' from='room@muclight.x/alice@x' to='alice@x' type='groupchat'><body>hi</body></message>",
			want: []change{{op: opUpdate, with: jid.MustParse("room@muclight.x"), unread: storage.UnreadKeep}}},
		{name: "room message, groupchat off", noMUCL: true, msg: "<message xmlns='jabber:client' from='room@muclight.x/bob@x' to='alice@x' type='groupchat'><body>hi</body></message>"},
		{name: "room message without body", msg: "<message xmlns='jabber:client' from='room@muclight.x/bob@x' to='alice@x' type='groupchat'><subject>s</subject></message>"},
		{name: "classic MUC", msg: "<message xmlns='jabber:client' from='room@conference.x/Bob' to='alice@x' type='groupchat'><body>hi</body></message>"},
		{name: "added", msg: "<message xmlns='jabber:client' from='room@muclight.x' to='alice@x' type='groupchat'>" + fmt.Sprintf(aff, "member", "alice@x") + "</message>",
			want: []change{{op: opUpdate, with: jid.MustParse("room@muclight.x"), unread: storage.UnreadIncrement}}},
		{name: "added, aff_changes off", noAffs: true, msg: "<message xmlns='jabber:client' from='room@muclight.x' to='alice@x' type='groupchat'>" + fmt.Sprintf(aff, "member", "alice@x") + "</message>"},
		{name: "someone else added", msg: "<message xmlns='jabber:client' from='room@muclight.x' to='alice@x' type='groupchat'>" + fmt.Sprintf(aff, "member", "bob@x") + "</message>"},
		{name: "removed", msg: "<message xmlns='jabber:client' from='room@muclight.x' to='alice@x' type='groupchat'>" + fmt.Sprintf(aff, "none", "alice@x") + "</message>",
			want: []change{{op: opRemove, with: jid.MustParse("room@muclight.x")}}},
		{name: "removed, remove_on_kicked off", noRemove: true, msg: "<message xmlns='jabber:client' from='room@muclight.x' to='alice@x' type='groupchat'>" + fmt.Sprintf(aff, "none", "alice@x") + "</message>"},
		{name: "destroyed", msg: "<message xmlns='jabber:client' from='room@muclight.x' to='alice@x' type='groupchat'><x xmlns='urn:xmpp:muclight:0#destroy'/></message>",
			want: []change{{op: opRemove, with: jid.MustParse("room@muclight.x")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.noMUCL {
				cfg.Groupchat = nil
			}
			cfg.AffChanges = !tc.noAffs
			cfg.RemoveOnKicked = !tc.noRemove
			ib := New(cfg)
			st := parse(t, tc.msg)
			var got []change
			if tc.sent {
				got = ib.onSent(st, alice)
			} else {
				got = ib.onReceived(st, alice)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMessageIDs(t *testing.T) {
	st := parse(t, "<message xmlns='jabber:client' id='a' from='b@x/r'><body>x</body>"+
		"<origin-id xmlns='urn:xmpp:sid:0' id='o'/><stanza-id xmlns='urn:xmpp:sid:0' id='s' by='alice@x'/><stanza-id xmlns='urn:example' id='no'/></message>")
	if got := messageIDs(st.El); !slices.Equal(got, []string{"a", "o", "s"}) {
		t.Errorf("%v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Boxes = []string{"favourites", "work"}
	if errs := good.Validate(); len(errs) != 0 {
		t.Errorf("%v", errs)
	}
	bad := Config{
		Boxes:          []string{"inbox", "all", "", "x", "x"},
		ResetMarkers:   []string{"seen"},
		Groupchat:      []string{"muc"},
		MaxResultLimit: -1,
		MaxResultBytes: -1,
		BinTTL:         config.Duration{Duration: time.Hour},
	}
	if errs := bad.Validate(); len(errs) != 10 {
		t.Errorf("want 10 errors, got %d: %v", len(errs), errs)
	}
}

// TestBinJanitor: entries in the bin longer than bin_ttl are purged, by
// the time they entered the bin.
func TestBinJanitor(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	cfg := DefaultConfig()
	cfg.BinTTL = config.Duration{Duration: 24 * time.Hour}
	ib := New(cfg)
	// The clock is set before Start: the janitor Start launches purges at
	// once, and with the real clock it would purge "young" too.
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ib.now = func() time.Time { return now }
	if err := ib.Start(ctx, testEnv(store)); err != nil {
		t.Fatal(err)
	}
	defer ib.Stop()
	alice := jid.MustParse("alice@x")
	bin := storage.BoxBin
	for i, peer := range []string{"old@x", "young@x", "kept@x"} {
		with := jid.MustParse(peer)
		if err := store.ApplyInbox(ctx, []storage.InboxOp{{Update: storage.InboxUpdate{Owner: alice, With: with, Message: "<message/>", Stamp: now.Add(-100 * time.Hour)}}}); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			// old entered the bin 25 hours ago, young 23.
			if _, err := store.SetInboxProperties(ctx, alice, with, storage.InboxProperties{Box: &bin}, now.Add(time.Duration(-25+2*i)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	ib.purgeBins(ctx)
	es, err := store.QueryInbox(ctx, storage.InboxQuery{Owner: alice, AllBoxes: true, Ascending: true})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range es {
		left = append(left, e.With.String())
	}
	if !slices.Equal(left, []string{"kept@x", "young@x"}) && !slices.Equal(left, []string{"young@x", "kept@x"}) {
		t.Errorf("left after the purge: %v", left)
	}
}

// TestMuteValue: a mute is reported as the time it ends while it lasts,
// 0 once it has ended (and when there is none).
func TestMuteValue(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		until time.Time
		want  string
	}{
		{time.Time{}, "0"},
		{now.Add(-time.Second), "0"},
		{now, "0"},
		{now.Add(time.Microsecond), "2026-05-01T12:00:00.000001Z"},
		{now.Add(time.Hour), "2026-05-01T13:00:00Z"},
	} {
		if got := muteValue(storage.InboxEntry{MutedUntil: tc.until}, now); got != tc.want {
			t.Errorf("muted until %v: %q, want %q", tc.until, got, tc.want)
		}
	}
}

// TestStartWithoutStore: a backend without inboxes is a start error.
func TestStartWithoutStore(t *testing.T) {
	err := New(DefaultConfig()).Start(context.Background(), &module.Env{Hooks: &module.Hooks{}, Store: struct{}{}})
	if err == nil {
		t.Fatal("started without a store")
	}
}

// FuzzRequests feeds client requests to the parsers of the fetch and of
// entry properties: an error is fine, a panic is not, and a fetch that
// parses asks for a sane page.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		"<inbox xmlns='erlang-solutions.com:xmpp:inbox:0'/>",
		"<inbox xmlns='erlang-solutions.com:xmpp:inbox:0' queryid='q'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>erlang-solutions.com:xmpp:inbox:0</value></field>" +
			"<field var='start'><value>2024-01-01T00:00:00Z</value></field><field var='order'><value>asc</value></field><field var='box'><value>all</value></field>" +
			"<field var='hidden_read'><value>1</value></field><field var='archive'><value>true</value></field></x>" +
			"<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before>2024-01-01T00:00:00.000001Z</before><after/></set></inbox>",
		"<query xmlns='erlang-solutions.com:xmpp:inbox:0#conversation' jid='bob@x'><box>bin</box><mute>3600</mute><read>false</read><archive>0</archive></query>",
		"<query xmlns='erlang-solutions.com:xmpp:inbox:0#conversation' jid='bob@x'><mute>99999999999999999999</mute></query>",
	} {
		f.Add(s)
	}
	cfg := DefaultConfig()
	cfg.Boxes = []string{"favourites"}
	ib := New(cfg)
	alice := jid.MustParse("alice@x")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.Parse([]byte(s))
		if err != nil {
			return
		}
		if r, err := ib.parseFetch(el, alice); err == nil {
			if r.q.Max < 0 || r.q.Max > cfg.MaxResultLimit || r.q.Owner != alice || r.q.Box != "" && !ib.boxes[r.q.Box] {
				t.Errorf("%s: %+v", s, r)
			}
		}
		if p, err := ib.parseProperties(el, now); err == nil {
			if p.Box != nil && !ib.boxes[*p.Box] || p.MutedUntil != nil && !p.MutedUntil.IsZero() && p.MutedUntil.Before(now) {
				t.Errorf("%s: %+v", s, p)
			}
		}
	})
}

// discard is a logger for writers under test.
var discard = slog.New(slog.DiscardHandler)

// testEnv starts a module on store alone.
func testEnv(store Store) *module.Env {
	return &module.Env{Hooks: &module.Hooks{}, Owner: "inbox", Store: store, Logger: discard}
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// TestWriterStop: stopping the module commits what the writer queued, and
// writes after that are applied at once.
func TestWriterStop(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	ib := New(DefaultConfig())
	if err := ib.Start(ctx, testEnv(store)); err != nil {
		t.Fatal(err)
	}
	alice := jid.MustParse("alice@x")
	ev := func(from string) *module.StanzaEvent {
		return &module.StanzaEvent{User: alice, Stanza: parse(t, "<message xmlns='jabber:client' from='"+from+"/r' to='alice@x' type='chat'><body>hi</body></message>")}
	}
	for i := range 100 {
		ib.received(ctx, ev(fmt.Sprintf("p%d@x", i)))
	}
	ib.Stop()
	if n, err := store.CountInbox(ctx, storage.InboxQuery{Owner: alice}); err != nil || n != 100 {
		t.Fatalf("%d entries after stop, %v", n, err)
	}
	ib.received(ctx, ev("late@x"))
	if _, err := store.InboxEntry(ctx, alice, jid.MustParse("late@x")); err != nil {
		t.Fatalf("a write after stop: %v", err)
	}
}

// failingStore fails batches holding a write for "bad@x".
type failingStore struct {
	Store
}

func (s failingStore) ApplyInbox(ctx context.Context, ops []storage.InboxOp) error {
	for _, op := range ops {
		if op.Update.With.String() == "bad@x" {
			return errors.New("refused")
		}
	}
	return s.Store.ApplyInbox(ctx, ops)
}

// TestWriterBadWrite: a batch that fails is written one by one, so one
// bad write loses only itself.
func TestWriterBadWrite(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	var last time.Time
	w := newWriter(failingStore{store}, discard, 0, func() time.Time { last = last.Add(time.Second); return last })
	alice := jid.MustParse("alice@x")
	var ops []storage.InboxOp
	for _, p := range []string{"a@x", "bad@x", "b@x"} {
		ops = append(ops, storage.InboxOp{Update: storage.InboxUpdate{Owner: alice, With: jid.MustParse(p), Message: "<message/>"}})
	}
	w.Add(ops...)
	w.Wait(ctx)
	w.Close()
	es, err := store.QueryInbox(ctx, storage.InboxQuery{Owner: alice, Ascending: true})
	if err != nil || len(es) != 2 || es[0].With.String() != "a@x" || es[1].With.String() != "b@x" {
		t.Fatalf("%+v %v", es, err)
	}
}

// blockingStore holds every batch until release is closed.
type blockingStore struct {
	Store
	release chan struct{}
}

func (s blockingStore) ApplyInbox(ctx context.Context, ops []storage.InboxOp) error {
	<-s.release
	return s.Store.ApplyInbox(ctx, ops)
}

// TestWriterFull: with the database stalled, queueing past maxQueue
// waits (internal/batch tests the waiting itself); everything is
// committed once it goes on, with stamps in queue order.
func TestWriterFull(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	release := make(chan struct{})
	var ss microclock.Clock
	w := newWriter(blockingStore{store, release}, discard, 0, func() time.Time { return ss.Next(time.Now()) })
	alice := jid.MustParse("alice@x")
	op := func(i int) storage.InboxOp {
		return storage.InboxOp{Update: storage.InboxUpdate{Owner: alice, With: jid.MustParse(fmt.Sprintf("p%d@x", i%100)), Message: "<message/>"}}
	}
	done := make(chan struct{})
	go func() {
		for i := range maxQueue + maxBatch + 1 {
			w.Add(op(i))
		}
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("queued past the limit without waiting")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-done
	w.Close()
	es, err := store.QueryInbox(ctx, storage.InboxQuery{Owner: alice, Ascending: true})
	if err != nil || len(es) != 100 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	// The last 100 writes, one per peer, in queue order.
	for i, e := range es {
		if want := fmt.Sprintf("p%d@x", (maxQueue+maxBatch+1-100+i)%100); e.With.String() != want {
			t.Fatalf("entry %d is %s, want %s", i, e.With, want)
		}
	}
}

// downStore fails its first calls, as a database that is briefly
// unavailable does.
type downStore struct {
	Store
	mu    sync.Mutex
	fails int
}

func (s *downStore) ApplyInbox(ctx context.Context, ops []storage.InboxOp) error {
	s.mu.Lock()
	down := s.fails > 0
	s.fails--
	s.mu.Unlock()
	if down {
		return errors.New("database unavailable")
	}
	return s.Store.ApplyInbox(ctx, ops)
}

// TestWriterDatabaseDown: a batch of which no write went through, alone
// or together, is tried again (the batch writer waits between tries):
// nothing is lost and nothing counted twice.
func TestWriterDatabaseDown(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	var last time.Time
	// The batch, then each of its three writes alone: all fail once.
	w := newWriter(&downStore{Store: store, fails: 4}, discard, 0, func() time.Time { last = last.Add(time.Second); return last })
	alice := jid.MustParse("alice@x")
	var ops []storage.InboxOp
	for _, p := range []string{"a@x", "b@x", "c@x"} {
		ops = append(ops, storage.InboxOp{Update: storage.InboxUpdate{Owner: alice, With: jid.MustParse(p), Message: "<message/>", Unread: storage.UnreadIncrement}})
	}
	w.Add(ops...)
	w.Wait(ctx)
	w.Close()
	es, err := store.QueryInbox(ctx, storage.InboxQuery{Owner: alice, Ascending: true})
	if err != nil || len(es) != 3 {
		t.Fatalf("%+v %v", es, err)
	}
	for _, e := range es {
		if e.Unread != 1 {
			t.Errorf("%s: unread %d, want 1", e.With, e.Unread)
		}
	}
}
