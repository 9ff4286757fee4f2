package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// BenchmarkPushOffline stores a message for a user who already has
// queued ones: the cost must not grow with the queue (the limits are
// checked against offline_usage, not by summing the queue).
func BenchmarkPushOffline(b *testing.B) {
	for _, queued := range []int{0, 10000} {
		b.Run("queued="+strconv.Itoa(queued), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "b.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			user := jid.MustParse("bob@example.com")
			if err := s.CreateAccount(ctx, user, []byte("x")); err != nil {
				b.Fatal(err)
			}
			stanza := "<message xmlns='jabber:client' from='alice@example.com/phone' to='bob@example.com' type='chat'><body>Hello there</body></message>"
			lim := storage.OfflineLimits{MaxMessages: 1 << 30, MaxBytes: 1 << 40}
			for range queued {
				if err := s.PushOffline(ctx, user, &storage.OfflineMessage{From: user, Stanza: stanza}, lim); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.PushOffline(ctx, user, &storage.OfflineMessage{From: user, Stanza: stanza}, lim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
