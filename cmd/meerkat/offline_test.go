package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/server"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/story"
)

// storeOffline stores n messages for user in the database of data, as the
// server would.
func storeOffline(t *testing.T, data, user string, n int) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = data
	cfg.Domains = []string{"localhost", "example.net"}
	store, err := server.OpenStorage(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for range n {
		m := &storage.OfflineMessage{From: jid.MustParse("romeo@example.org/r"), Stanza: "<message xmlns='jabber:client'><body>hi</body></message>"}
		if err := store.(storage.OfflineStore).PushOffline(context.Background(), jid.MustParse(user), m, storage.OfflineLimits{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOfflineCommands(t *testing.T) {
	data := t.TempDir()
	for _, u := range []string{"alice@localhost", "bob@localhost", "carol@localhost", "erin@example.net"} {
		if code, _, errOut := meerkat(t, "", "user", "add", "--data", data, "--domain", "localhost", "--domain", "example.net", u, "pw"); code != 0 {
			t.Fatal(errOut)
		}
	}
	storeOffline(t, data, "alice@localhost", 3)
	storeOffline(t, data, "bob@localhost", 1)
	storeOffline(t, data, "erin@example.net", 2)
	d := []string{"--data", data, "--domain", "localhost", "--domain", "example.net"}
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"offline", "count", "alice@localhost"}, 0, "3\n"},
		{[]string{"offline", "count", "Alice@LocalHost"}, 0, "3\n"},
		{[]string{"offline", "count", "carol@localhost"}, 0, "0\n"},
		{[]string{"offline", "count", "nobody@localhost"}, 1, "nobody@localhost does not exist"},
		{[]string{"offline", "count", "alice@elsewhere.org"}, 1, "not a served domain"},
		{[]string{"offline", "count"}, 1, "usage: meerkat offline count JID"},
		{[]string{"offline", "count", "--all"}, 0, "erin@example.net\t2\nalice@localhost\t3\nbob@localhost\t1\n"}, // by domain, then user
		{[]string{"offline", "count", "--all", "localhost"}, 0, "alice@localhost\t3\nbob@localhost\t1\n"},
		{[]string{"offline", "count", "--all", "elsewhere.org"}, 1, "not a served domain"},
		{[]string{"offline", "count", "--all", "a", "b"}, 1, "usage"},
		{[]string{"offline", "purge", "bob@localhost"}, 0, "deleted 1 offline messages of bob@localhost\n"},
		{[]string{"offline", "count", "bob@localhost"}, 0, "0\n"},
		{[]string{"offline", "purge", "--all", "example.net"}, 0, "deleted 2 offline messages\n"},
		{[]string{"offline", "count", "--all"}, 0, "alice@localhost\t3\n"},
		{[]string{"offline", "purge", "--all"}, 0, "deleted 3 offline messages\n"},
		{[]string{"offline", "count", "--all"}, 0, ""},
		{[]string{"offline", "frob"}, 1, "unknown command"},
		{[]string{"offline"}, 1, "count or purge"},
	}
	for _, s := range steps {
		// meerkat offline SUB --data … --domain … [ARGS]
		args := s.args
		if len(s.args) >= 2 {
			args = slices.Concat(s.args[:2], d, s.args[2:])
		}
		code, out, errOut := meerkat(t, "", args...)
		if code != s.code || s.code == 0 && out != s.out || s.code != 0 && !strings.Contains(errOut, s.out) {
			t.Errorf("meerkat %s: %d %q %q, want %d %q", strings.Join(args, " "), code, out, errOut, s.code, s.out)
		}
	}
}

// TestOfflineCommandsWhileServing: the commands work on the database of a
// running server (SQLite in WAL mode, shared), and the server sees what
// they did.
func TestOfflineCommandsWhileServing(t *testing.T) {
	srv := servertest.Start(t)
	data := srv.Config.DataDir
	bob := story.NewAccount(t, srv, "bob")
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		alice.Send(story.Chat(bob.JID, "one"))
		alice.Send(story.Chat(bob.JID, "two"))
		alice.IQ(story.Ping(nil)) // both are stored now
		if code, out, errOut := meerkat(t, "", "offline", "count", "--data", data, bob.JID.String()); code != 0 || out != "2\n" {
			t.Fatalf("count: %d %q %q", code, out, errOut)
		}
		if code, out, errOut := meerkat(t, "", "offline", "count", "--all", "--data", data); code != 0 || out != bob.JID.String()+"\t2\n" {
			t.Fatalf("count --all: %d %q %q", code, out, errOut)
		}
		if code, out, errOut := meerkat(t, "", "offline", "purge", "--data", data, bob.JID.String()); code != 0 || !strings.Contains(out, "deleted 2") {
			t.Fatalf("purge: %d %q %q", code, out, errOut)
		}
		b := story.MustConnect(t, srv, bob, story.Options{Name: "bob"})
		b.ExpectNothing(200*time.Millisecond, story.IsMessage())
		// The server goes on storing after the purge.
		b.Close()
		alice.Send(story.Chat(bob.JID, "three"))
		alice.IQ(story.Ping(nil))
		if code, out, _ := meerkat(t, "", "offline", "count", "--data", data, bob.JID.String()); code != 0 || out != "1\n" {
			t.Fatalf("count after purge: %d %q", code, out)
		}
	})
}
