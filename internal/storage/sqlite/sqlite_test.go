package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/internal/storage/storagetest"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func open(t *testing.T) storage.Backend {
	s, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "db", "meerkat.db")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) { storagetest.Run(t, open) }

func TestMigrationsAreIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, jid.MustParse("a@b"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopening (a second process, a restart) neither fails nor loses data.
	s, err = Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Migrations(ctx); err != nil || len(v) != len(migrations) {
		t.Fatalf("migrations %v %v", v, err)
	}
	if ok, _ := s.AccountExists(ctx, jid.MustParse("a@b")); !ok {
		t.Fatal("account lost on reopen")
	}
}

func TestTwoHandlesOnOneFile(t *testing.T) {
	// The server and a `meerkat user` command use the file at once.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateAccount(ctx, jid.MustParse("x@y"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.AccountExists(ctx, jid.MustParse("x@y")); err != nil || !ok {
		t.Fatalf("the other handle does not see the account: %v %v", ok, err)
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := Open(context.Background(), Options{}); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := Open(context.Background(), Options{Path: filepath.Join(t.TempDir(), "x.db"), Synchronous: "OFF"}); err == nil {
		t.Error("synchronous=OFF accepted")
	}
}

// TestNewerDatabaseRefused: a database migrated by a newer program is not
// opened by an older one.
func TestNewerDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "n.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, Options{Path: path}); err == nil {
		t.Fatal("database with an unknown migration opened")
	}
}

// TestOfflineUsageBackfilled: a database with offline messages stored
// before the usage table existed (migration 6) gets their counts.
func TestOfflineUsageBackfilled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	user := jid.MustParse("a@b")
	if err := s.CreateAccount(ctx, user, []byte("c")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.PushOffline(ctx, user, &storage.OfflineMessage{From: user, Stanza: "<message/>"}, storage.OfflineLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	// Back to version 5.
	if _, err := s.w.ExecContext(ctx, `DROP TABLE offline_usage; DROP TRIGGER offline_usage_insert;
		DROP TRIGGER offline_usage_delete; DELETE FROM schema_migrations WHERE version = 6`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.OfflineCount(ctx, user); err != nil || n != 3 {
		t.Fatalf("count after the migration: %d %v", n, err)
	}
	if err := s.PushOffline(ctx, user, &storage.OfflineMessage{From: user, Stanza: "<message/>"}, storage.OfflineLimits{MaxMessages: 3}); err != storage.ErrOfflineFull {
		t.Fatalf("push over the limit after the migration: %v", err)
	}
}
