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

// The per-account documents of storage.ProfileStore: vCards (XEP-0054),
// private XML (XEP-0049) and last logouts (XEP-0012).

var _ storage.ProfileStore = (*Store)(nil)

func init() {
	addMigration(5, `
	CREATE TABLE vcards (
		domain   TEXT NOT NULL,
		username TEXT NOT NULL,
		xml      TEXT NOT NULL,
		PRIMARY KEY (domain, username)
	) WITHOUT ROWID;
	CREATE TABLE private_xml (
		domain   TEXT NOT NULL,
		username TEXT NOT NULL,
		ns       TEXT NOT NULL,
		name     TEXT NOT NULL,
		xml      TEXT NOT NULL,
		PRIMARY KEY (domain, username, ns, name)
	) WITHOUT ROWID;
	CREATE TABLE last_activity (
		domain   TEXT NOT NULL,
		username TEXT NOT NULL,
		at       INTEGER NOT NULL,
		status   TEXT NOT NULL,
		PRIMARY KEY (domain, username)
	) WITHOUT ROWID`)
	addAccountCleanup(`DELETE FROM vcards WHERE domain = ? AND username = ?`)
	addAccountCleanup(`DELETE FROM private_xml WHERE domain = ? AND username = ?`)
	addAccountCleanup(`DELETE FROM last_activity WHERE domain = ? AND username = ?`)
}

// accountExists is the condition of the writes below: a document is only
// stored for an existing account, checked in the same statement, so that
// a write racing with the account's removal cannot leave a row behind.
const accountExists = `EXISTS (SELECT 1 FROM accounts WHERE domain = ?1 AND username = ?2)`

// VCard implements storage.ProfileStore.
func (s *Store) VCard(ctx context.Context, user jid.JID) (string, error) {
	var x string
	err := s.r.QueryRowContext(ctx, `SELECT xml FROM vcards WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&x)
	if errors.Is(err, sql.ErrNoRows) {
		return "", storage.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: vcard of %s: %w", user, err)
	}
	return x, nil
}

// SetVCard implements storage.ProfileStore.
func (s *Store) SetVCard(ctx context.Context, user jid.JID, vcard string) error {
	if vcard == "" {
		if _, err := s.w.ExecContext(ctx, `DELETE FROM vcards WHERE domain = ? AND username = ?`,
			user.Domain(), user.Local()); err != nil {
			return fmt.Errorf("sqlite: remove vcard of %s: %w", user, err)
		}
		return nil
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO vcards (domain, username, xml)
		SELECT ?1, ?2, ?3 WHERE `+accountExists+`
		ON CONFLICT (domain, username) DO UPDATE SET xml = excluded.xml`,
		user.Domain(), user.Local(), vcard)
	return written(res, err, "set vcard of", user)
}

// written turns the result of a conditional write into ErrNotFound when
// nothing was written (the account does not exist).
func written(res sql.Result, err error, what string, user jid.JID) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", what, user, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", what, user, err)
	} else if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// PrivateXML implements storage.ProfileStore.
func (s *Store) PrivateXML(ctx context.Context, user jid.JID, ns, name string) (string, error) {
	var x string
	err := s.r.QueryRowContext(ctx, `SELECT xml FROM private_xml WHERE domain = ? AND username = ? AND ns = ? AND name = ?`,
		user.Domain(), user.Local(), ns, name).Scan(&x)
	if errors.Is(err, sql.ErrNoRows) {
		return "", storage.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: private xml %s %s of %s: %w", ns, name, user, err)
	}
	return x, nil
}

// PutPrivateXML implements storage.ProfileStore: the items are written,
// then the total is checked, and the transaction rolled back if it is
// over the quota.
func (s *Store) PutPrivateXML(ctx context.Context, user jid.JID, items []storage.PrivateItem, quota int64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: put private xml of %s: %w", user, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: put private xml of %s: %w", user, err)
	}
	for _, it := range items {
		if it.XML == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM private_xml WHERE domain = ? AND username = ? AND ns = ? AND name = ?`,
				user.Domain(), user.Local(), it.NS, it.Name)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO private_xml (domain, username, ns, name, xml) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (domain, username, ns, name) DO UPDATE SET xml = excluded.xml`,
				user.Domain(), user.Local(), it.NS, it.Name, it.XML)
		}
		if err != nil {
			return fmt.Errorf("sqlite: put private xml %s %s of %s: %w", it.NS, it.Name, user, err)
		}
	}
	if quota > 0 {
		var total int64
		// length() of a BLOB counts bytes; of TEXT, characters.
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(length(CAST(xml AS BLOB))), 0) FROM private_xml WHERE domain = ? AND username = ?`,
			user.Domain(), user.Local()).Scan(&total)
		if err != nil {
			return fmt.Errorf("sqlite: put private xml of %s: %w", user, err)
		}
		if total > quota {
			return storage.ErrQuota
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: put private xml of %s: %w", user, err)
	}
	return nil
}

// LastActivity implements storage.ProfileStore.
func (s *Store) LastActivity(ctx context.Context, user jid.JID) (storage.LastActivity, error) {
	var at int64
	var status string
	err := s.r.QueryRowContext(ctx, `SELECT at, status FROM last_activity WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&at, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.LastActivity{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.LastActivity{}, fmt.Errorf("sqlite: last activity of %s: %w", user, err)
	}
	return storage.LastActivity{At: time.Unix(at, 0), Status: status}, nil
}

// SetLastActivity implements storage.ProfileStore.
func (s *Store) SetLastActivity(ctx context.Context, user jid.JID, last storage.LastActivity) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO last_activity (domain, username, at, status)
		SELECT ?1, ?2, ?3, ?4 WHERE `+accountExists+`
		ON CONFLICT (domain, username) DO UPDATE SET at = excluded.at, status = excluded.status`,
		user.Domain(), user.Local(), last.At.Unix(), last.Status)
	return written(res, err, "set last activity of", user)
}
