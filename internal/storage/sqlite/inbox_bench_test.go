package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

const benchInboxMessage = "<message xmlns='jabber:client' from='peer0@example.com/phone' to='owner@example.com' type='chat' id='3f1c2a9e-5b7d-4e0a-9c1b-2d3e4f5a6b7c'>" +
	"<body>Are we still on for lunch tomorrow? I can book the usual place.</body>" +
	"<stanza-id xmlns='urn:xmpp:sid:0' id='0q5v8u1m2k3j4h5g6f7e8d9c0b' by='owner@example.com'/></message>"

// benchInboxPeers are the peers of owner's conversations in benchInbox.
var benchInboxPeers = func() []jid.JID {
	peers := make([]jid.JID, 1000)
	for i := range peers {
		peers[i] = jid.MustParse(fmt.Sprintf("peer%d@example.com", i))
	}
	return peers
}()

// benchInbox opens a store (closed when b ends) and gives owner one
// conversation with each of benchInboxPeers, a second apart from t0,
// every other one unread, and 20 other users 50 each.
func benchInbox(b *testing.B) (s *Store, owner jid.JID, t0 time.Time) {
	b.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "b.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	owner = jid.MustParse("owner@example.com")
	t0 = time.Now().Add(-time.Duration(len(benchInboxPeers)) * time.Second)
	var ops []storage.InboxOp
	for i, peer := range benchInboxPeers {
		ops = append(ops, storage.InboxOp{Update: storage.InboxUpdate{Owner: owner, With: peer, Message: benchInboxMessage,
			MessageIDs: []string{"id", "sid"}, Stamp: t0.Add(time.Duration(i) * time.Second), Unread: storage.InboxUnread(i % 2)}})
	}
	for o := range 20 {
		other := jid.MustParse(fmt.Sprintf("other%d@example.com", o))
		for _, peer := range benchInboxPeers[:50] {
			ops = append(ops, storage.InboxOp{Update: storage.InboxUpdate{Owner: other, With: peer, Message: benchInboxMessage, Stamp: t0}})
		}
	}
	if err := s.ApplyInbox(ctx, ops); err != nil {
		b.Fatal(err)
	}
	return s, owner, t0
}

// BenchmarkInboxQuery reads a user's inbox of 1,000 conversations: all
// of it, the newest page of 50, the unread ones, and a page of 50 further
// back (RSM before).
func BenchmarkInboxQuery(b *testing.B) {
	ctx := context.Background()
	s, owner, t0 := benchInbox(b)
	for _, tc := range []struct {
		name string
		q    storage.InboxQuery
		want int
	}{
		{"all=1000", storage.InboxQuery{Owner: owner}, 1000},
		{"newest=50", storage.InboxQuery{Owner: owner, Max: 50}, 50},
		{"unread=500", storage.InboxQuery{Owner: owner, UnreadOnly: true}, 500},
		{"before=50", storage.InboxQuery{Owner: owner, Max: 50, Before: t0.Add(500 * time.Second)}, 50},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				es, err := s.QueryInbox(ctx, tc.q)
				if err != nil || len(es) != tc.want {
					b.Fatalf("%d entries, %v", len(es), err)
				}
			}
		})
	}
}

// BenchmarkInboxApply is the cost per update of an existing entry when
// the module's writer commits them in batches (ApplyInbox; WAL,
// synchronous=NORMAL): batch=1 is the write one message costs each party
// with writes = "sync". ns/update is the figure.
func BenchmarkInboxApply(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run("batch="+fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			s, owner, _ := benchInbox(b)
			ops := make([]storage.InboxOp, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for k := range ops {
					ops[k] = storage.InboxOp{Update: storage.InboxUpdate{Owner: owner, With: benchInboxPeers[i%len(benchInboxPeers)],
						Message: benchInboxMessage, MessageIDs: []string{"id", "sid"}, Stamp: time.Now(), Unread: storage.UnreadIncrement}}
					i++
				}
				if err := s.ApplyInbox(ctx, ops); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/update")
		})
	}
}
