package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
)

// Server-wide secrets, created on first use.
func init() {
	addMigration(8, `CREATE TABLE secrets (
		name  TEXT PRIMARY KEY,
		value BLOB NOT NULL
	) WITHOUT ROWID`)
}

var _ storage.SecretStore = (*Store)(nil)

// Secret implements storage.SecretStore.
func (s *Store) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	fresh := make([]byte, size)
	rand.Read(fresh)
	// Two processes creating it at once: the first insert wins and both
	// read the same value back.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, fmt.Errorf("sqlite: secret %s: %w", name, err)
	}
	var value []byte
	if err := s.w.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&value); err != nil {
		return nil, fmt.Errorf("sqlite: secret %s: %w", name, err)
	}
	return value, nil
}
