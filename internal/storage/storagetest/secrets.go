package storagetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
)

func init() { addSuite("Secrets", testSecrets) }

func testSecrets(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	s, ok := b.(storage.SecretStore)
	if !ok {
		t.Skip("the backend does not keep secrets")
	}
	a, err := s.Secret(ctx, "archive-ids", 32)
	if err != nil || len(a) != 32 {
		t.Fatalf("first: %x %v", a, err)
	}
	again, err := s.Secret(ctx, "archive-ids", 32)
	if err != nil || !bytes.Equal(a, again) {
		t.Fatalf("second: %x %v, want %x", again, err, a)
	}
	other, err := s.Secret(ctx, "other", 32)
	if err != nil || bytes.Equal(a, other) {
		t.Fatalf("another secret: %x %v", other, err)
	}
}
