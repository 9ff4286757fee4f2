package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// Rosters and subscriptions (RFC 6121 §2, §3, Appendix A; versioning
// §2.6).
//
// roster_versions holds each user's roster version, a counter raised by
// every change a roster push shows, and its floor: RosterChanges can list
// every change made after a version v when floor <= v. The counter of a
// user starts (at the first change) at the current time in microseconds,
// so that an account removed and created again under the same name gives
// out versions above those of its predecessor: a client's cached version
// then never matches another roster.
//
// roster_items holds one row per (user, contact): roster items, and the
// hidden entries that only record an inbound subscription request
// (storage.RosterItem.Hidden). version is the roster version at which the
// item last changed (0 for hidden entries).
//
// roster_tombstones keeps, per user, the contacts removed from the roster
// with the version of the removal, so that RosterChanges can report
// removals. A user keeps the last rosterTombstones of them; pruning older
// ones raises the floor to the newest version pruned (clients that cached
// an older roster get the whole roster again).
//
// Removing an account deletes its rows in the three tables and the items
// of other users' rosters that refer to it, leaving tombstones in those
// rosters (with new versions) so their clients learn about the removal
// even when the account was removed by `meerkat user` with the server
// stopped.
func init() {
	addMigration(2, `CREATE TABLE roster_versions (
		domain   TEXT NOT NULL,
		username TEXT NOT NULL,
		version  INTEGER NOT NULL,
		floor    INTEGER NOT NULL,
		PRIMARY KEY (domain, username)
	) WITHOUT ROWID;
	CREATE TABLE roster_items (
		domain       TEXT NOT NULL,
		username     TEXT NOT NULL,
		contact      TEXT NOT NULL,              -- bare JID
		name         TEXT NOT NULL DEFAULT '',
		groups       TEXT NOT NULL DEFAULT '[]', -- JSON array of strings, in the client's order
		subscription TEXT NOT NULL DEFAULT 'none',
		pending_out  INTEGER NOT NULL DEFAULT 0,
		pending_in   INTEGER NOT NULL DEFAULT 0,
		request      TEXT NOT NULL DEFAULT '',   -- the inbound subscribe stanza when pending_in
		approved     INTEGER NOT NULL DEFAULT 0,
		hidden       INTEGER NOT NULL DEFAULT 0,
		version      INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (domain, username, contact)
	) WITHOUT ROWID;
	CREATE INDEX roster_items_contact ON roster_items (contact);
	CREATE INDEX roster_items_version ON roster_items (domain, username, version);
	CREATE TABLE roster_tombstones (
		domain   TEXT NOT NULL,
		username TEXT NOT NULL,
		contact  TEXT NOT NULL,
		version  INTEGER NOT NULL,
		PRIMARY KEY (domain, username, contact)
	) WITHOUT ROWID;
	CREATE INDEX roster_tombstones_version ON roster_tombstones (domain, username, version)`)

	// The account as a contact in other rosters: raise those rosters'
	// versions, leave tombstones, delete the items. ?1 is the domain, ?2
	// the username of the removed account.
	addAccountCleanup(`UPDATE roster_versions SET version = version + 1
		WHERE (domain, username) IN (SELECT domain, username FROM roster_items
			WHERE contact = ?2 || '@' || ?1 AND hidden = 0)`)
	addAccountCleanup(`INSERT OR REPLACE INTO roster_tombstones (domain, username, contact, version)
		SELECT i.domain, i.username, i.contact, v.version
		FROM roster_items i JOIN roster_versions v ON v.domain = i.domain AND v.username = i.username
		WHERE i.contact = ?2 || '@' || ?1 AND i.hidden = 0`)
	addAccountCleanup(`DELETE FROM roster_items WHERE contact = ?2 || '@' || ?1`)
	// The account's own roster.
	addAccountCleanup(`DELETE FROM roster_items WHERE domain = ?1 AND username = ?2`)
	addAccountCleanup(`DELETE FROM roster_tombstones WHERE domain = ?1 AND username = ?2`)
	addAccountCleanup(`DELETE FROM roster_versions WHERE domain = ?1 AND username = ?2`)
}

// rosterTombstones is how many tombstones a user keeps (a variable for
// the tests).
var rosterTombstones = 1000

var _ storage.RosterStore = (*Store)(nil)

const rosterColumns = `contact, name, groups, subscription, pending_out, pending_in, request, approved, hidden, version`

type scanner interface{ Scan(dest ...any) error }

func scanRosterItem(row scanner) (storage.RosterItem, error) {
	var (
		it                        storage.RosterItem
		contact, groups, sub      string
		out, in, approved, hidden bool
	)
	if err := row.Scan(&contact, &it.Name, &groups, &sub, &out, &in, &it.InboundRequest, &approved, &hidden, &it.Version); err != nil {
		return it, err
	}
	c, err := jid.Parse(contact)
	if err != nil {
		return it, fmt.Errorf("stored contact %q: %w", contact, err)
	}
	if err := json.Unmarshal([]byte(groups), &it.Groups); err != nil {
		return it, fmt.Errorf("stored groups of %s: %w", contact, err)
	}
	if len(it.Groups) == 0 {
		it.Groups = nil
	}
	it.Contact, it.Subscription = c, storage.Subscription(sub)
	it.PendingOut, it.PendingIn, it.PreApproved, it.Hidden = out, in, approved, hidden
	return it, nil
}

// Roster implements storage.RosterStore.
func (s *Store) Roster(ctx context.Context, user jid.JID) ([]storage.RosterItem, int64, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster of %s: %w", user, err)
	}
	defer tx.Rollback()
	version, _, err := rosterVersion(ctx, tx, user)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster of %s: %w", user, err)
	}
	items, err := queryRosterItems(ctx, tx, `SELECT `+rosterColumns+` FROM roster_items
		WHERE domain = ? AND username = ? AND hidden = 0 ORDER BY contact`, user.Domain(), user.Local())
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster of %s: %w", user, err)
	}
	return items, version, nil
}

// rowQuerier is what *sql.DB and *sql.Tx share for reading.
type rowQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func queryRosterItems(ctx context.Context, q rowQuerier, query string, args ...any) ([]storage.RosterItem, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []storage.RosterItem
	for rows.Next() {
		it, err := scanRosterItem(rows)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// rosterVersion returns the user's roster version and floor (0, 0 for a
// user who never had a roster).
func rosterVersion(ctx context.Context, q rowQuerier, user jid.JID) (version, floor int64, err error) {
	err = q.QueryRowContext(ctx, `SELECT version, floor FROM roster_versions WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&version, &floor)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return version, floor, err
}

// RosterItem implements storage.RosterStore.
func (s *Store) RosterItem(ctx context.Context, user, contact jid.JID) (storage.RosterItem, error) {
	it, err := scanRosterItem(s.r.QueryRowContext(ctx, `SELECT `+rosterColumns+` FROM roster_items
		WHERE domain = ? AND username = ? AND contact = ?`, user.Domain(), user.Local(), contact.Bare().String()))
	if errors.Is(err, sql.ErrNoRows) {
		return it, storage.ErrNotFound
	}
	if err != nil {
		return it, fmt.Errorf("sqlite: roster item %s of %s: %w", contact, user, err)
	}
	return it, nil
}

// nextRosterVersion raises the user's roster version and returns it.
func nextRosterVersion(ctx context.Context, tx *sql.Tx, user jid.JID) (int64, error) {
	start := max(time.Now().UnixMicro(), 1)
	var v int64
	err := tx.QueryRowContext(ctx, `INSERT INTO roster_versions (domain, username, version, floor) VALUES (?, ?, ?, ?)
		ON CONFLICT (domain, username) DO UPDATE SET version = version + 1 RETURNING version`,
		user.Domain(), user.Local(), start, start).Scan(&v)
	return v, err
}

// tombstone records the removal of contact at version v and prunes the
// oldest tombstones beyond rosterTombstones.
func tombstone(ctx context.Context, tx *sql.Tx, user jid.JID, contact string, v int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO roster_tombstones (domain, username, contact, version)
		VALUES (?, ?, ?, ?)`, user.Domain(), user.Local(), contact, v); err != nil {
		return err
	}
	var oldest int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM roster_tombstones WHERE domain = ? AND username = ?
		ORDER BY version DESC LIMIT 1 OFFSET ?`, user.Domain(), user.Local(), rosterTombstones).Scan(&oldest)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM roster_tombstones WHERE domain = ? AND username = ? AND version <= ?`,
		user.Domain(), user.Local(), oldest); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE roster_versions SET floor = max(floor, ?) WHERE domain = ? AND username = ?`,
		oldest, user.Domain(), user.Local())
	return err
}

// rosterVisiblyEqual reports whether a roster push would show no
// difference between a and b.
func rosterVisiblyEqual(a, b storage.RosterItem) bool {
	return a.Name == b.Name && slices.Equal(a.Groups, b.Groups) && a.Subscription == b.Subscription &&
		a.PendingOut == b.PendingOut && a.PreApproved == b.PreApproved
}

// PutRosterItem implements storage.RosterStore.
func (s *Store) PutRosterItem(ctx context.Context, user jid.JID, item storage.RosterItem) (int64, bool, error) {
	wrap := func(err error) error {
		return fmt.Errorf("sqlite: put roster item %s of %s: %w", item.Contact, user, err)
	}
	item.Contact = item.Contact.Bare()
	if item.Contact.IsZero() {
		return 0, false, wrap(errors.New("no contact"))
	}
	if item.Subscription == "" {
		item.Subscription = storage.SubNone
	}
	switch item.Subscription {
	case storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth:
	default:
		return 0, false, wrap(fmt.Errorf("subscription %q", item.Subscription))
	}
	contact := item.Contact.String()
	groups := item.Groups
	if groups == nil {
		groups = []string{}
	}
	gj, err := json.Marshal(groups)
	if err != nil {
		return 0, false, wrap(err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, wrap(err)
	}
	defer tx.Rollback()
	old, err := scanRosterItem(tx.QueryRowContext(ctx, `SELECT `+rosterColumns+` FROM roster_items
		WHERE domain = ? AND username = ? AND contact = ?`, user.Domain(), user.Local(), contact))
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, false, wrap(err)
	}
	wasItem := exists && !old.Hidden
	var version int64
	changed := false
	switch {
	case item.Hidden:
		item.Version = 0
		if wasItem {
			// A hidden entry over an item: the item leaves the roster.
			changed = true
			if version, err = nextRosterVersion(ctx, tx, user); err == nil {
				err = tombstone(ctx, tx, user, contact, version)
			}
		} else {
			version, _, err = rosterVersion(ctx, tx, user)
		}
	case !wasItem || !rosterVisiblyEqual(old, item):
		changed = true
		if version, err = nextRosterVersion(ctx, tx, user); err == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM roster_tombstones WHERE domain = ? AND username = ? AND contact = ?`,
				user.Domain(), user.Local(), contact)
		}
		item.Version = version
	default:
		item.Version = old.Version
		version, _, err = rosterVersion(ctx, tx, user)
	}
	if err != nil {
		return 0, false, wrap(err)
	}
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO roster_items (domain, username, `+rosterColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		user.Domain(), user.Local(), contact, item.Name, string(gj), string(item.Subscription),
		item.PendingOut, item.PendingIn, item.InboundRequest, item.PreApproved, item.Hidden, item.Version)
	if err != nil {
		return 0, false, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, wrap(err)
	}
	return version, changed, nil
}

// DeleteRosterItem implements storage.RosterStore.
func (s *Store) DeleteRosterItem(ctx context.Context, user, contact jid.JID) (int64, error) {
	wrap := func(err error) error {
		return fmt.Errorf("sqlite: delete roster item %s of %s: %w", contact, user, err)
	}
	c := contact.Bare().String()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, wrap(err)
	}
	defer tx.Rollback()
	var hidden bool
	err = tx.QueryRowContext(ctx, `DELETE FROM roster_items WHERE domain = ? AND username = ? AND contact = ? RETURNING hidden`,
		user.Domain(), user.Local(), c).Scan(&hidden)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, storage.ErrNotFound
	}
	if err != nil {
		return 0, wrap(err)
	}
	var version int64
	if hidden {
		version, _, err = rosterVersion(ctx, tx, user)
	} else if version, err = nextRosterVersion(ctx, tx, user); err == nil {
		err = tombstone(ctx, tx, user, c, version)
	}
	if err != nil {
		return 0, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, wrap(err)
	}
	return version, nil
}

// RosterChanges implements storage.RosterStore.
func (s *Store) RosterChanges(ctx context.Context, user jid.JID, since int64) ([]storage.RosterChange, int64, bool, error) {
	wrap := func(err error) error { return fmt.Errorf("sqlite: roster changes of %s: %w", user, err) }
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, false, wrap(err)
	}
	defer tx.Rollback()
	current, floor, err := rosterVersion(ctx, tx, user)
	if err != nil {
		return nil, 0, false, wrap(err)
	}
	switch {
	case since == current:
		return nil, current, true, nil
	case since > current || since < 0 || since != 0 && since < floor:
		return nil, current, false, nil
	}
	items, err := queryRosterItems(ctx, tx, `SELECT `+rosterColumns+` FROM roster_items
		WHERE domain = ? AND username = ? AND hidden = 0 AND version > ? ORDER BY version`,
		user.Domain(), user.Local(), since)
	if err != nil {
		return nil, 0, false, wrap(err)
	}
	changes := make([]storage.RosterChange, 0, len(items))
	for _, it := range items {
		changes = append(changes, storage.RosterChange{Item: it})
	}
	rows, err := tx.QueryContext(ctx, `SELECT contact, version FROM roster_tombstones
		WHERE domain = ? AND username = ? AND version > ? ORDER BY version`, user.Domain(), user.Local(), since)
	if err != nil {
		return nil, 0, false, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var v int64
		if err := rows.Scan(&c, &v); err != nil {
			return nil, 0, false, wrap(err)
		}
		j, err := jid.Parse(c)
		if err != nil {
			return nil, 0, false, wrap(fmt.Errorf("stored contact %q: %w", c, err))
		}
		changes = append(changes, storage.RosterChange{Item: storage.RosterItem{Contact: j, Version: v}, Removed: true})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, wrap(err)
	}
	slices.SortStableFunc(changes, func(a, b storage.RosterChange) int {
		switch {
		case a.Item.Version < b.Item.Version:
			return -1
		case a.Item.Version > b.Item.Version:
			return 1
		}
		return 0
	})
	return changes, current, true, nil
}

// RosterSize implements storage.RosterStore.
func (s *Store) RosterSize(ctx context.Context, user jid.JID) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM roster_items WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: roster size of %s: %w", user, err)
	}
	return n, nil
}

// RosterContacts implements storage.RosterStore.
func (s *Store) RosterContacts(ctx context.Context, user jid.JID, subs ...storage.Subscription) ([]jid.JID, error) {
	if len(subs) == 0 {
		return nil, nil
	}
	args := []any{user.Domain(), user.Local()}
	for _, sub := range subs {
		args = append(args, string(sub))
	}
	q := `SELECT contact FROM roster_items WHERE domain = ? AND username = ? AND hidden = 0
		AND subscription IN (?` + strings.Repeat(", ?", len(subs)-1) + `) ORDER BY contact`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: roster contacts of %s: %w", user, err)
	}
	defer rows.Close()
	var out []jid.JID
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("sqlite: roster contacts of %s: %w", user, err)
		}
		j, err := jid.Parse(c)
		if err != nil {
			return nil, fmt.Errorf("sqlite: roster contacts of %s: stored contact %q: %w", user, c, err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// RosterRequests implements storage.RosterStore.
func (s *Store) RosterRequests(ctx context.Context, user jid.JID) ([]storage.RosterItem, error) {
	items, err := queryRosterItems(ctx, s.r, `SELECT `+rosterColumns+` FROM roster_items
		WHERE domain = ? AND username = ? AND pending_in = 1 ORDER BY contact`, user.Domain(), user.Local())
	if err != nil {
		return nil, fmt.Errorf("sqlite: subscription requests of %s: %w", user, err)
	}
	return items, nil
}

// ContactsOf implements storage.RosterStore.
func (s *Store) ContactsOf(ctx context.Context, contact jid.JID) ([]jid.JID, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT username, domain FROM roster_items WHERE contact = ?`, contact.Bare().String())
	if err != nil {
		return nil, fmt.Errorf("sqlite: rosters with %s: %w", contact, err)
	}
	defer rows.Close()
	var out []jid.JID
	for rows.Next() {
		var local, domain string
		if err := rows.Scan(&local, &domain); err != nil {
			return nil, fmt.Errorf("sqlite: rosters with %s: %w", contact, err)
		}
		j, err := jid.New(local, domain, "")
		if err != nil {
			return nil, fmt.Errorf("sqlite: rosters with %s: stored %s@%s: %w", contact, local, domain, err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: rosters with %s: %w", contact, err)
	}
	slices.SortFunc(out, jid.JID.Compare)
	return out, nil
}
