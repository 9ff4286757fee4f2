package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// Message archives (XEP-0313). The rowid is the archive ID the module
// assigns, which grows with time: the newest page of an archive is a
// backwards walk of the (owner, id) index, a conversation's the same on
// (owner, peer, id), and a time range an ID range — no scan grows with
// the size of the archive.
func init() {
	addMigration(7, `CREATE TABLE archive (
		id       INTEGER PRIMARY KEY,
		owner    TEXT NOT NULL,    -- bare JID of the archive
		peer     TEXT NOT NULL,    -- bare JID of the other party
		resource TEXT NOT NULL,    -- its resource, '' for none
		outgoing INTEGER NOT NULL,
		stanza   TEXT NOT NULL
	);
	CREATE INDEX archive_owner ON archive (owner, id);
	CREATE INDEX archive_owner_peer ON archive (owner, peer, id);
	CREATE TABLE archive_prefs (
		owner        TEXT PRIMARY KEY,
		default_mode TEXT NOT NULL,
		always       TEXT NOT NULL, -- JIDs, one per line
		never        TEXT NOT NULL
	) WITHOUT ROWID`)
	// The cleanup statements take the domain (?1) and username (?2).
	addAccountCleanup(`DELETE FROM archive WHERE owner = ?2 || '@' || ?1`)
	addAccountCleanup(`DELETE FROM archive_prefs WHERE owner = ?2 || '@' || ?1`)
}

var _ storage.ArchiveStore = (*Store)(nil)

// archiveRowsPerInsert is how many messages one INSERT statement writes:
// database/sql costs a dozen allocations per statement executed, so a
// batch goes in a few multi-row statements rather than one per message.
const archiveRowsPerInsert = 64

// AppendArchive implements storage.ArchiveStore.
func (s *Store) AppendArchive(ctx context.Context, msgs []storage.ArchiveMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: archive %d messages: %w", len(msgs), err)
	}
	defer tx.Rollback()
	var full *sql.Stmt
	args := make([]any, 0, 6*archiveRowsPerInsert)
	for len(msgs) > 0 {
		chunk := msgs[:min(len(msgs), archiveRowsPerInsert)]
		msgs = msgs[len(chunk):]
		args = args[:0]
		for _, m := range chunk {
			args = append(args, int64(m.ID), m.Owner.String(), m.With.Bare().String(), m.With.Resource(), m.Outgoing, m.Stanza)
		}
		if len(chunk) == archiveRowsPerInsert {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, archiveInsert(archiveRowsPerInsert)); err != nil {
					return fmt.Errorf("sqlite: archive messages: %w", err)
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, archiveInsert(len(chunk)), args...)
		}
		if err != nil {
			return fmt.Errorf("sqlite: archive messages %d… for %s: %w", chunk[0].ID, chunk[0].Owner, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: archive messages: %w", err)
	}
	return nil
}

// archiveInsert is an INSERT of n messages.
func archiveInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO archive (id, owner, peer, resource, outgoing, stanza) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?)`)
	}
	return b.String()
}

// archiveWhere builds the conditions of q, without paging.
func archiveWhere(q storage.ArchiveQuery) (string, []any) {
	var b strings.Builder
	args := []any{q.Owner.String()}
	b.WriteString(`owner = ?`)
	if !q.With.IsZero() {
		b.WriteString(` AND peer = ?`)
		args = append(args, q.With.Bare().String())
		if !q.With.IsBare() {
			b.WriteString(` AND resource = ?`)
			args = append(args, q.With.Resource())
		}
	}
	if q.MinID > 0 {
		b.WriteString(` AND id >= ?`)
		args = append(args, int64(q.MinID))
	}
	if q.MaxID > 0 {
		b.WriteString(` AND id <= ?`)
		args = append(args, int64(min(q.MaxID, 1<<63-1)))
	}
	if q.IDs != nil {
		b.WriteString(` AND id IN (`)
		for i, id := range q.IDs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
			args = append(args, int64(id))
		}
		if len(q.IDs) == 0 {
			b.WriteString(`NULL`)
		}
		b.WriteByte(')')
	}
	return b.String(), args
}

// QueryArchive implements storage.ArchiveStore.
func (s *Store) QueryArchive(ctx context.Context, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	if q.Max < 1 {
		return storage.ArchivePage{}, errors.New("sqlite: archive query without a page size")
	}
	where, args := archiveWhere(q)
	order := `ASC`
	if q.Last {
		order = `DESC`
	}
	// One more than the page tells whether the page is complete.
	rows, err := s.r.QueryContext(ctx, `SELECT id, peer, resource, outgoing, stanza FROM archive WHERE `+where+
		` ORDER BY id `+order+` LIMIT ?`, append(args, q.Max+1)...)
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("sqlite: query archive of %s: %w", q.Owner, err)
	}
	defer rows.Close()
	var page storage.ArchivePage
	for rows.Next() {
		var (
			id             int64
			peer, resource string
			m              = storage.ArchiveMessage{Owner: q.Owner}
		)
		if err := rows.Scan(&id, &peer, &resource, &m.Outgoing, &m.Stanza); err != nil {
			return storage.ArchivePage{}, fmt.Errorf("sqlite: query archive of %s: %w", q.Owner, err)
		}
		m.ID = uint64(id)
		if m.With, err = jid.Parse(peer); err == nil && resource != "" {
			m.With, err = m.With.WithResource(resource)
		}
		if err != nil {
			return storage.ArchivePage{}, fmt.Errorf("sqlite: query archive of %s: stored JID %q/%q: %w", q.Owner, peer, resource, err)
		}
		page.Messages = append(page.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return storage.ArchivePage{}, fmt.Errorf("sqlite: query archive of %s: %w", q.Owner, err)
	}
	page.Complete = len(page.Messages) <= q.Max
	if !page.Complete {
		page.Messages = page.Messages[:q.Max]
	}
	if q.Last {
		slices.Reverse(page.Messages)
	}
	return page, nil
}

// CountArchive implements storage.ArchiveStore.
func (s *Store) CountArchive(ctx context.Context, q storage.ArchiveQuery) (int, error) {
	where, args := archiveWhere(q)
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM archive WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count archive of %s: %w", q.Owner, err)
	}
	return n, nil
}

// ArchiveMissing implements storage.ArchiveStore: one statement, the ids
// passed as one JSON array (no bound on their number, and one argument
// rather than one each), found on the (owner, id) index.
func (s *Store) ArchiveMissing(ctx context.Context, owner jid.JID, ids []uint64) ([]uint64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	fail := func(err error) ([]uint64, error) {
		return nil, fmt.Errorf("sqlite: look up %d archive messages of %s: %w", len(ids), owner, err)
	}
	list := make([]byte, 0, 2+20*len(ids))
	list = append(list, '[')
	for i, id := range ids {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, int64(id), 10)
	}
	list = append(list, ']')
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM archive WHERE owner = ? AND id IN (SELECT value FROM json_each(?))`,
		owner.String(), string(list)) // text: a BLOB would be read as JSONB
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	found := make(map[uint64]bool, len(ids))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fail(err)
		}
		found[uint64(id)] = true
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	var missing []uint64
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
			found[id] = true // once
		}
	}
	return missing, nil
}

// ArchiveBounds implements storage.ArchiveStore: one statement, two
// probes of the (owner, id) index, which holds the ids (the rowid), so
// no message is read.
func (s *Store) ArchiveBounds(ctx context.Context, owner jid.JID) (first, last uint64, ok bool, err error) {
	var lo, hi sql.NullInt64
	err = s.r.QueryRowContext(ctx, `SELECT
		(SELECT id FROM archive WHERE owner = ?1 ORDER BY id ASC LIMIT 1),
		(SELECT id FROM archive WHERE owner = ?1 ORDER BY id DESC LIMIT 1)`, owner.String()).Scan(&lo, &hi)
	if err != nil {
		return 0, 0, false, fmt.Errorf("sqlite: the bounds of the archive of %s: %w", owner, err)
	}
	if !lo.Valid || !hi.Valid {
		return 0, 0, false, nil
	}
	return uint64(lo.Int64), uint64(hi.Int64), true, nil
}

// RemoveArchive implements storage.ArchiveStore.
func (s *Store) RemoveArchive(ctx context.Context, owner jid.JID) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM archive WHERE owner = ?`, owner.String()); err != nil {
		return fmt.Errorf("sqlite: remove archive of %s: %w", owner, err)
	}
	return nil
}

// ArchivePrefs implements storage.ArchiveStore.
func (s *Store) ArchivePrefs(ctx context.Context, user jid.JID) (storage.ArchivePrefs, bool, error) {
	var p storage.ArchivePrefs
	var always, never string
	err := s.r.QueryRowContext(ctx, `SELECT default_mode, always, never FROM archive_prefs WHERE owner = ?`, user.String()).
		Scan(&p.Default, &always, &never)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("sqlite: archive preferences of %s: %w", user, err)
	}
	if p.Always, err = parseJIDLines(always); err == nil {
		p.Never, err = parseJIDLines(never)
	}
	if err != nil {
		return p, false, fmt.Errorf("sqlite: archive preferences of %s: %w", user, err)
	}
	return p, true, nil
}

// SetArchivePrefs implements storage.ArchiveStore.
func (s *Store) SetArchivePrefs(ctx context.Context, user jid.JID, p storage.ArchivePrefs) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO archive_prefs (owner, default_mode, always, never) VALUES (?, ?, ?, ?)
		ON CONFLICT (owner) DO UPDATE SET default_mode = excluded.default_mode, always = excluded.always, never = excluded.never`,
		user.String(), p.Default, jidLines(p.Always), jidLines(p.Never))
	if err != nil {
		return fmt.Errorf("sqlite: set archive preferences of %s: %w", user, err)
	}
	return nil
}

func jidLines(jids []jid.JID) string {
	var b strings.Builder
	for i, j := range jids {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(j.String())
	}
	return b.String()
}

func parseJIDLines(s string) ([]jid.JID, error) {
	if s == "" {
		return nil, nil
	}
	var out []jid.JID
	for line := range strings.SplitSeq(s, "\n") {
		j, err := jid.Parse(line)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}
