package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// Offline messages (XEP-0160). Rows are in storage order by id (a rowid:
// a new row always gets a larger id than every row present). claim and
// claimed_at mark messages being delivered (storage.OfflineStore).
func init() {
	addMigration(3, `CREATE TABLE offline_messages (
		id         INTEGER PRIMARY KEY,
		domain     TEXT NOT NULL,
		username   TEXT NOT NULL,
		stored_at  INTEGER NOT NULL, -- unix milliseconds
		sender     TEXT NOT NULL,
		stanza     TEXT NOT NULL,
		size       INTEGER NOT NULL, -- bytes of stanza
		claim      TEXT,
		claimed_at INTEGER           -- unix milliseconds
	);
	CREATE INDEX offline_messages_user ON offline_messages (domain, username, id)`)
	addAccountCleanup(`DELETE FROM offline_messages WHERE domain = ? AND username = ?`)
	// Each user's count and bytes, kept by triggers so that the limits
	// are checked in constant time rather than by summing the queue on
	// every message stored.
	addMigration(6, `CREATE TABLE offline_usage (
		domain   TEXT NOT NULL,
		username TEXT NOT NULL,
		messages INTEGER NOT NULL,
		bytes    INTEGER NOT NULL,
		PRIMARY KEY (domain, username)
	) WITHOUT ROWID;
	INSERT INTO offline_usage (domain, username, messages, bytes)
		SELECT domain, username, COUNT(*), SUM(size) FROM offline_messages GROUP BY domain, username;
	CREATE TRIGGER offline_usage_insert AFTER INSERT ON offline_messages BEGIN
		INSERT INTO offline_usage (domain, username, messages, bytes) VALUES (NEW.domain, NEW.username, 1, NEW.size)
			ON CONFLICT (domain, username) DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes;
	END;
	CREATE TRIGGER offline_usage_delete AFTER DELETE ON offline_messages BEGIN
		UPDATE offline_usage SET messages = messages - 1, bytes = bytes - OLD.size
			WHERE domain = OLD.domain AND username = OLD.username;
		DELETE FROM offline_usage WHERE domain = OLD.domain AND username = OLD.username AND messages <= 0;
	END`)
}

var _ storage.OfflineStore = (*Store)(nil)

// PushOffline implements storage.OfflineStore.
func (s *Store) PushOffline(ctx context.Context, user jid.JID, msg *storage.OfflineMessage, lim storage.OfflineLimits) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: store offline message for %s: %w", user, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: store offline message for %s: %w", user, err)
	}
	if lim.MaxMessages > 0 || lim.MaxBytes > 0 {
		var count, size int
		err := tx.QueryRowContext(ctx, `SELECT messages, bytes FROM offline_usage
			WHERE domain = ? AND username = ?`, user.Domain(), user.Local()).Scan(&count, &size)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: store offline message for %s: %w", user, err)
		}
		if lim.MaxMessages > 0 && count >= lim.MaxMessages || lim.MaxBytes > 0 && size+len(msg.Stanza) > lim.MaxBytes {
			return storage.ErrOfflineFull
		}
	}
	if msg.Stored.IsZero() {
		msg.Stored = time.Now()
	}
	msg.Stored = time.UnixMilli(msg.Stored.UnixMilli())
	res, err := tx.ExecContext(ctx, `INSERT INTO offline_messages (domain, username, stored_at, sender, stanza, size)
		VALUES (?, ?, ?, ?, ?, ?)`,
		user.Domain(), user.Local(), msg.Stored.UnixMilli(), msg.From.String(), msg.Stanza, len(msg.Stanza))
	if err != nil {
		return fmt.Errorf("sqlite: store offline message for %s: %w", user, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("sqlite: store offline message for %s: %w", user, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: store offline message for %s: %w", user, err)
	}
	msg.ID = id
	return nil
}

// ClaimOffline implements storage.OfflineStore.
func (s *Store) ClaimOffline(ctx context.Context, user jid.JID, claim string, staleBefore time.Time) ([]storage.OfflineMessage, error) {
	if claim == "" {
		return nil, errors.New("sqlite: claim offline messages: empty claim")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim offline messages of %s: %w", user, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE offline_messages SET claim = ?, claimed_at = ?
		WHERE domain = ? AND username = ? AND (claim IS NULL OR claimed_at < ?)`,
		claim, time.Now().UnixMilli(), user.Domain(), user.Local(), staleBefore.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim offline messages of %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, tx.Commit()
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, stored_at, sender, stanza FROM offline_messages
		WHERE domain = ? AND username = ? AND claim = ? ORDER BY id`, user.Domain(), user.Local(), claim)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim offline messages of %s: %w", user, err)
	}
	defer rows.Close()
	var out []storage.OfflineMessage
	for rows.Next() {
		var m storage.OfflineMessage
		var stored int64
		var sender string
		if err := rows.Scan(&m.ID, &stored, &sender, &m.Stanza); err != nil {
			return nil, fmt.Errorf("sqlite: claim offline messages of %s: %w", user, err)
		}
		m.Stored = time.UnixMilli(stored)
		m.From, _ = jid.Parse(sender) // stored from a parsed JID; zero if it ever fails
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: claim offline messages of %s: %w", user, err)
	}
	rows.Close()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: claim offline messages of %s: %w", user, err)
	}
	return out, nil
}

// DeleteClaimedOffline implements storage.OfflineStore.
func (s *Store) DeleteClaimedOffline(ctx context.Context, user jid.JID, claim string) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM offline_messages WHERE domain = ? AND username = ? AND claim = ?`,
		user.Domain(), user.Local(), claim)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete delivered offline messages of %s: %w", user, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// DeleteClaimedOfflineThrough implements storage.OfflineStore.
func (s *Store) DeleteClaimedOfflineThrough(ctx context.Context, user jid.JID, claim string, lastID int64) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM offline_messages WHERE domain = ? AND username = ? AND claim = ? AND id <= ?`,
		user.Domain(), user.Local(), claim, lastID)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete delivered offline messages of %s: %w", user, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ReleaseOffline implements storage.OfflineStore.
func (s *Store) ReleaseOffline(ctx context.Context, user jid.JID, claim string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE offline_messages SET claim = NULL, claimed_at = NULL
		WHERE domain = ? AND username = ? AND claim = ?`, user.Domain(), user.Local(), claim)
	if err != nil {
		return fmt.Errorf("sqlite: release offline messages of %s: %w", user, err)
	}
	return nil
}

// ReleaseAllOfflineClaims implements storage.OfflineStore.
func (s *Store) ReleaseAllOfflineClaims(ctx context.Context) error {
	_, err := s.w.ExecContext(ctx, `UPDATE offline_messages SET claim = NULL, claimed_at = NULL WHERE claim IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("sqlite: release offline messages: %w", err)
	}
	return nil
}

// OfflineCount implements storage.OfflineStore.
func (s *Store) OfflineCount(ctx context.Context, user jid.JID) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(messages), 0) FROM offline_usage WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count offline messages of %s: %w", user, err)
	}
	return n, nil
}

// OfflineCounts implements storage.OfflineStore.
func (s *Store) OfflineCounts(ctx context.Context, domain string) ([]storage.OfflineCount, error) {
	q := `SELECT username, domain, messages FROM offline_usage ORDER BY domain, username`
	var args []any
	if domain != "" {
		q = `SELECT username, domain, messages FROM offline_usage WHERE domain = ? ORDER BY username`
		args = append(args, domain)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count offline messages: %w", err)
	}
	defer rows.Close()
	var out []storage.OfflineCount
	for rows.Next() {
		var local, dom string
		var n int
		if err := rows.Scan(&local, &dom, &n); err != nil {
			return nil, fmt.Errorf("sqlite: count offline messages: %w", err)
		}
		j, err := jid.New(local, dom, "")
		if err != nil {
			return nil, fmt.Errorf("sqlite: count offline messages: stored %s@%s: %w", local, dom, err)
		}
		out = append(out, storage.OfflineCount{User: j, Count: n})
	}
	return out, rows.Err()
}

// PurgeOffline implements storage.OfflineStore.
func (s *Store) PurgeOffline(ctx context.Context, user jid.JID) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM offline_messages WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local())
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge offline messages of %s: %w", user, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PurgeAllOffline implements storage.OfflineStore.
func (s *Store) PurgeAllOffline(ctx context.Context, domain string) (int, error) {
	q, args := `DELETE FROM offline_messages`, []any{}
	if domain != "" {
		q, args = `DELETE FROM offline_messages WHERE domain = ?`, append(args, domain)
	}
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge offline messages: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
