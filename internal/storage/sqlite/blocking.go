package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// Block lists (XEP-0191): one row per blocked JID, in blocking order by id.
func init() {
	addMigration(4, `CREATE TABLE blocklist (
		id       INTEGER PRIMARY KEY,
		domain   TEXT NOT NULL,
		username TEXT NOT NULL,
		jid      TEXT NOT NULL,
		UNIQUE (domain, username, jid)
	)`)
	addAccountCleanup(`DELETE FROM blocklist WHERE domain = ? AND username = ?`)
}

var _ storage.BlockingStore = (*Store)(nil)

// blockingQuerier is what *sql.DB and *sql.Tx share for reading.
type blockingQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryBlockList(ctx context.Context, q blockingQuerier, user jid.JID) ([]jid.JID, error) {
	rows, err := q.QueryContext(ctx, `SELECT jid FROM blocklist WHERE domain = ? AND username = ? ORDER BY id`,
		user.Domain(), user.Local())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []jid.JID
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		j, err := jid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("stored JID %q: %w", s, err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// BlockList implements storage.BlockingStore.
func (s *Store) BlockList(ctx context.Context, user jid.JID) ([]jid.JID, error) {
	list, err := queryBlockList(ctx, s.r, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: block list of %s: %w", user, err)
	}
	return list, nil
}

// BlockJIDs implements storage.BlockingStore.
func (s *Store) BlockJIDs(ctx context.Context, user jid.JID, jids []jid.JID, max int) ([]jid.JID, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: block for %s: %w", user, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: block for %s: %w", user, err)
	}
	list, err := queryBlockList(ctx, tx, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: block for %s: %w", user, err)
	}
	have := make(map[jid.JID]bool, len(list)+len(jids))
	for _, j := range list {
		have[j] = true
	}
	var added []jid.JID
	for _, j := range jids {
		if !have[j] {
			have[j] = true
			added = append(added, j)
		}
	}
	if max > 0 && len(list)+len(added) > max {
		return nil, storage.ErrBlocklistFull
	}
	for _, j := range added {
		if _, err := tx.ExecContext(ctx, `INSERT INTO blocklist (domain, username, jid) VALUES (?, ?, ?)`,
			user.Domain(), user.Local(), j.String()); err != nil {
			return nil, fmt.Errorf("sqlite: block %s for %s: %w", j, user, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: block for %s: %w", user, err)
	}
	return append(list, added...), nil
}

// UnblockJIDs implements storage.BlockingStore.
func (s *Store) UnblockJIDs(ctx context.Context, user jid.JID, jids []jid.JID) ([]jid.JID, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: unblock for %s: %w", user, err)
	}
	defer tx.Rollback()
	for _, j := range jids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM blocklist WHERE domain = ? AND username = ? AND jid = ?`,
			user.Domain(), user.Local(), j.String()); err != nil {
			return nil, fmt.Errorf("sqlite: unblock %s for %s: %w", j, user, err)
		}
	}
	list, err := queryBlockList(ctx, tx, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: unblock for %s: %w", user, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: unblock for %s: %w", user, err)
	}
	return list, nil
}

// UnblockAll implements storage.BlockingStore.
func (s *Store) UnblockAll(ctx context.Context, user jid.JID) ([]jid.JID, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: unblock all for %s: %w", user, err)
	}
	defer tx.Rollback()
	list, err := queryBlockList(ctx, tx, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: unblock all for %s: %w", user, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM blocklist WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()); err != nil {
		return nil, fmt.Errorf("sqlite: unblock all for %s: %w", user, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: unblock all for %s: %w", user, err)
	}
	return list, nil
}
