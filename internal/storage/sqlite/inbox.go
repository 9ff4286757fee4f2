package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// Inboxes (MongooseIM's Inbox): one row per conversation of a user. The
// message path writes one row per party with one UPSERT; a query reads
// the owner's rows in stamp order off the (owner, stamp) index, so it
// never looks at other users' entries.
//
// Times are microseconds since the Unix epoch; muted_until is 0 when not
// muted. box_since is when the entry entered its box: the bin is purged
// by it. msg_ids holds the ids of the last message, each followed by a
// newline, for chat markers.
func init() {
	addMigration(20, `CREATE TABLE inbox (
		id          INTEGER PRIMARY KEY,
		owner       TEXT NOT NULL,    -- bare JID of the user
		peer        TEXT NOT NULL,    -- bare JID of the peer or room
		stamp       INTEGER NOT NULL,
		unread      INTEGER NOT NULL,
		box         TEXT NOT NULL,
		box_since   INTEGER NOT NULL,
		muted_until INTEGER NOT NULL,
		msg_ids     TEXT NOT NULL,
		message     TEXT NOT NULL,
		UNIQUE (owner, peer)
	);
	CREATE INDEX inbox_owner_stamp ON inbox (owner, stamp);
	CREATE INDEX inbox_bin ON inbox (box_since) WHERE box = 'bin'`)
	// The cleanup statements take the domain (?1) and username (?2).
	addAccountCleanup(`DELETE FROM inbox WHERE owner = ?2 || '@' || ?1`)
}

var _ storage.InboxStore = (*Store)(nil)

func inboxMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func inboxFromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func inboxJoinIDs(ids []string) string {
	var b strings.Builder
	for _, id := range ids {
		if id == "" || strings.Contains(id, "\n") {
			continue
		}
		b.WriteString(id)
		b.WriteByte('\n')
	}
	return b.String()
}

// inboxReset is the statement of an InboxOpReset; with a marker id it
// resets only when the id is one of the last message's.
func inboxReset(owner, with jid.JID, id string) (string, []any) {
	q := `UPDATE inbox SET unread = 0 WHERE owner = ? AND peer = ? AND unread <> 0`
	args := []any{owner.String(), with.Bare().String()}
	if id != "" {
		q += ` AND instr(char(10) || msg_ids, char(10) || ? || char(10)) > 0`
		args = append(args, id)
	}
	return q, args
}

const inboxRemove = `DELETE FROM inbox WHERE owner = ? AND peer = ?`

// ApplyInbox implements storage.InboxStore: one transaction, the upsert
// prepared once, and successive updates of one entry merged into one
// write (a conversation in full swing updates its two entries with every
// message; a batch holds many of them).
func (s *Store) ApplyInbox(ctx context.Context, ops []storage.InboxOp) error {
	if len(ops) == 0 {
		return nil
	}
	fail := func(err error) error { return fmt.Errorf("sqlite: apply %d inbox writes: %w", len(ops), err) }
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var upsert *sql.Stmt
	for _, w := range mergeInboxOps(ops) {
		u := w.op.Update
		switch w.op.Kind {
		case storage.InboxOpUpdate:
			if upsert == nil {
				if upsert, err = tx.PrepareContext(ctx, inboxMergedUpsert); err != nil {
					return fail(err)
				}
				defer upsert.Close()
			}
			reset := 0
			if w.reset {
				reset = 1
			}
			_, err = upsert.ExecContext(ctx, u.Owner.String(), u.With.Bare().String(), u.Stamp.UnixMicro(), w.add, inboxJoinIDs(u.MessageIDs), u.Message, reset)
		case storage.InboxOpReset:
			q, args := inboxReset(u.Owner, u.With, w.op.MarkerID)
			_, err = tx.ExecContext(ctx, q, args...)
		case storage.InboxOpRemove:
			_, err = tx.ExecContext(ctx, inboxRemove, u.Owner.String(), u.With.Bare().String())
		default:
			err = fmt.Errorf("unknown inbox write %d", w.op.Kind)
		}
		if err != nil {
			return fail(fmt.Errorf("%s for %s: %w", u.Owner, u.With, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// inboxMergedUpsert writes the merge of successive updates of an entry:
// the last message, and the unread count reset to ?4 (?7 = 1) or raised
// by ?4; a new entry starts at ?4 either way.
const inboxMergedUpsert = `INSERT INTO inbox (owner, peer, stamp, unread, box, box_since, muted_until, msg_ids, message)
		VALUES (?1, ?2, ?3, ?4, 'inbox', ?3, 0, ?5, ?6)
		ON CONFLICT (owner, peer) DO UPDATE SET
			stamp = excluded.stamp, message = excluded.message, msg_ids = excluded.msg_ids,
			unread = CASE ?7 WHEN 1 THEN ?4 ELSE unread + ?4 END,
			box_since = CASE WHEN box IN ('archive', 'bin') THEN excluded.stamp ELSE box_since END,
			box = CASE WHEN box IN ('archive', 'bin') THEN 'inbox' ELSE box END`

// mergedInboxOp is an op of a batch, an update standing for a run of
// updates of one entry: its last message, and their effect on the
// unread count (reset first when one of them reset it, then add).
type mergedInboxOp struct {
	op    storage.InboxOp
	reset bool
	add   int
}

type inboxKey struct{ owner, with string }

// mergeInboxOps folds each update into the previous update of the same
// entry unless a reset or a removal of that entry came in between. Ops
// on different entries commute, so moving a later update into an earlier
// one's place changes nothing.
func mergeInboxOps(ops []storage.InboxOp) []mergedInboxOp {
	out := make([]mergedInboxOp, 0, len(ops))
	pending := make(map[inboxKey]int, len(ops))
	for _, op := range ops {
		k := inboxKey{op.Update.Owner.String(), op.Update.With.Bare().String()}
		if op.Kind != storage.InboxOpUpdate {
			delete(pending, k)
			out = append(out, mergedInboxOp{op: op})
			continue
		}
		i, ok := pending[k]
		if !ok {
			i = len(out)
			pending[k] = i
			out = append(out, mergedInboxOp{})
		}
		m := &out[i]
		m.op = op
		switch op.Update.Unread {
		case storage.UnreadIncrement:
			m.add++
		case storage.UnreadReset:
			m.reset, m.add = true, 0
		}
	}
	return out
}

func inboxWhere(q storage.InboxQuery) (string, []any) {
	var b strings.Builder
	args := []any{q.Owner.String()}
	b.WriteString(`owner = ?`)
	switch {
	case q.AllBoxes:
	case q.Box == "":
		b.WriteString(` AND box <> 'bin'`)
	default:
		b.WriteString(` AND box = ?`)
		args = append(args, q.Box)
	}
	if !q.Start.IsZero() {
		b.WriteString(` AND stamp >= ?`)
		args = append(args, q.Start.UnixMicro())
	}
	if !q.End.IsZero() {
		b.WriteString(` AND stamp <= ?`)
		args = append(args, q.End.UnixMicro())
	}
	if !q.After.IsZero() {
		b.WriteString(` AND stamp > ?`)
		args = append(args, q.After.UnixMicro())
	}
	if !q.Before.IsZero() {
		b.WriteString(` AND stamp < ?`)
		args = append(args, q.Before.UnixMicro())
	}
	if q.UnreadOnly {
		b.WriteString(` AND unread > 0`)
	}
	return b.String(), args
}

const inboxColumns = `owner, peer, message, stamp, unread, box, muted_until`

func scanInbox(r scanner) (storage.InboxEntry, error) {
	var (
		e            storage.InboxEntry
		owner, peer  string
		stamp, muted int64
	)
	if err := r.Scan(&owner, &peer, &e.Message, &stamp, &e.Unread, &e.Box, &muted); err != nil {
		return e, err
	}
	var err error
	if e.Owner, err = jid.Parse(owner); err != nil {
		return e, fmt.Errorf("stored owner %q: %w", owner, err)
	}
	if e.With, err = jid.Parse(peer); err != nil {
		return e, fmt.Errorf("stored peer %q: %w", peer, err)
	}
	e.Stamp, e.MutedUntil = inboxFromMicros(stamp), inboxFromMicros(muted)
	return e, nil
}

// QueryInbox implements storage.InboxStore.
func (s *Store) QueryInbox(ctx context.Context, q storage.InboxQuery) ([]storage.InboxEntry, error) {
	where, args := inboxWhere(q)
	order := ` ORDER BY stamp DESC, peer DESC`
	if q.Ascending {
		order = ` ORDER BY stamp, peer`
	}
	query := `SELECT ` + inboxColumns + ` FROM inbox WHERE ` + where + order
	if q.Max > 0 {
		query += ` LIMIT ?`
		args = append(args, q.Max)
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query inbox of %s: %w", q.Owner, err)
	}
	defer rows.Close()
	var out []storage.InboxEntry
	for rows.Next() {
		e, err := scanInbox(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: query inbox of %s: %w", q.Owner, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: query inbox of %s: %w", q.Owner, err)
	}
	return out, nil
}

// CountInbox implements storage.InboxStore.
func (s *Store) CountInbox(ctx context.Context, q storage.InboxQuery) (int, error) {
	where, args := inboxWhere(q)
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM inbox WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count inbox of %s: %w", q.Owner, err)
	}
	return n, nil
}

func inboxEntry(ctx context.Context, q rowQuerier, owner, with jid.JID) (storage.InboxEntry, error) {
	e, err := scanInbox(q.QueryRowContext(ctx, `SELECT `+inboxColumns+` FROM inbox WHERE owner = ? AND peer = ?`,
		owner.String(), with.Bare().String()))
	if errors.Is(err, sql.ErrNoRows) {
		return e, storage.ErrNotFound
	}
	return e, err
}

// InboxEntry implements storage.InboxStore.
func (s *Store) InboxEntry(ctx context.Context, owner, with jid.JID) (storage.InboxEntry, error) {
	e, err := inboxEntry(ctx, s.r, owner, with)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return e, fmt.Errorf("sqlite: inbox entry of %s for %s: %w", owner, with, err)
	}
	return e, err
}

// SetInboxProperties implements storage.InboxStore.
func (s *Store) SetInboxProperties(ctx context.Context, owner, with jid.JID, p storage.InboxProperties, now time.Time) (storage.InboxEntry, error) {
	fail := func(err error) (storage.InboxEntry, error) {
		return storage.InboxEntry{}, fmt.Errorf("sqlite: set inbox properties of %s for %s: %w", owner, with, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var set []string
	var args []any
	if p.Box != nil {
		set = append(set, `box_since = CASE WHEN box <> ? THEN ? ELSE box_since END`, `box = ?`)
		args = append(args, *p.Box, now.UnixMicro(), *p.Box)
	}
	if p.Read != nil {
		if *p.Read {
			set = append(set, `unread = 0`)
		} else {
			set = append(set, `unread = CASE WHEN unread = 0 THEN 1 ELSE unread END`)
		}
	}
	if p.MutedUntil != nil {
		set = append(set, `muted_until = ?`)
		args = append(args, inboxMicros(*p.MutedUntil))
	}
	if len(set) > 0 {
		args = append(args, owner.String(), with.Bare().String())
		res, err := tx.ExecContext(ctx, `UPDATE inbox SET `+strings.Join(set, ", ")+` WHERE owner = ? AND peer = ?`, args...)
		if err != nil {
			return fail(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return storage.InboxEntry{}, storage.ErrNotFound
		}
	}
	e, err := inboxEntry(ctx, tx, owner, with)
	if errors.Is(err, storage.ErrNotFound) {
		return e, err
	}
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return e, nil
}

// RemoveInbox implements storage.InboxStore.
func (s *Store) RemoveInbox(ctx context.Context, owner jid.JID) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM inbox WHERE owner = ?`, owner.String()); err != nil {
		return fmt.Errorf("sqlite: remove the inbox of %s: %w", owner, err)
	}
	return nil
}

// EmptyInboxBin implements storage.InboxStore.
func (s *Store) EmptyInboxBin(ctx context.Context, owner jid.JID) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM inbox WHERE owner = ? AND box = 'bin'`, owner.String())
	if err != nil {
		return 0, fmt.Errorf("sqlite: empty the inbox bin of %s: %w", owner, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PurgeInboxBin implements storage.InboxStore.
func (s *Store) PurgeInboxBin(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM inbox WHERE box = 'bin' AND box_since < ?`, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge inbox bins: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
