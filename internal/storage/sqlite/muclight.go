package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// MUC Light rooms (../shared/specs/muclight.md): one row per room with its
// version and configuration (a JSON array of [name, value] pairs), one
// row per member, and the users' blocking lists.
func init() {
	addMigration(30, `
	CREATE TABLE muclight_rooms (
		id      INTEGER PRIMARY KEY,
		service TEXT NOT NULL,
		name    TEXT NOT NULL,
		version TEXT NOT NULL,
		config  TEXT NOT NULL,
		UNIQUE (service, name)
	);
	CREATE TABLE muclight_members (
		room_id     INTEGER NOT NULL REFERENCES muclight_rooms (id) ON DELETE CASCADE,
		jid         TEXT NOT NULL,
		domain      TEXT NOT NULL,
		username    TEXT NOT NULL,
		affiliation TEXT NOT NULL,
		PRIMARY KEY (room_id, jid)
	) WITHOUT ROWID;
	CREATE INDEX muclight_members_user ON muclight_members (domain, username);
	CREATE TABLE muclight_blocking (
		domain   TEXT NOT NULL,
		username TEXT NOT NULL,
		service  TEXT NOT NULL,
		kind     TEXT NOT NULL,
		jid      TEXT NOT NULL,
		PRIMARY KEY (domain, username, service, kind, jid)
	) WITHOUT ROWID`)
	addAccountCleanup(`DELETE FROM muclight_blocking WHERE domain = ? AND username = ?`)
	addAccountCleanup(`DELETE FROM muclight_members WHERE domain = ? AND username = ?`)
}

var _ storage.MUCLightStore = (*Store)(nil)

func encodeConfig(cfg []storage.MUCLightField) (string, error) {
	pairs := make([][2]string, len(cfg))
	for i, f := range cfg {
		pairs[i] = [2]string{f.Name, f.Value}
	}
	b, err := json.Marshal(pairs)
	return string(b), err
}

func decodeConfig(s string) ([]storage.MUCLightField, error) {
	var pairs [][2]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, fmt.Errorf("stored configuration: %w", err)
	}
	cfg := make([]storage.MUCLightField, len(pairs))
	for i, p := range pairs {
		cfg[i] = storage.MUCLightField{Name: p[0], Value: p[1]}
	}
	return cfg, nil
}

func loadRoom(ctx context.Context, q rowQuerier, room jid.JID) (storage.MUCLightRoom, int64, error) {
	r := storage.MUCLightRoom{Room: room}
	var id int64
	var cfg string
	err := q.QueryRowContext(ctx, `SELECT id, version, config FROM muclight_rooms WHERE service = ? AND name = ?`,
		room.Domain(), room.Local()).Scan(&id, &r.Version, &cfg)
	if errors.Is(err, sql.ErrNoRows) {
		return r, 0, storage.ErrNotFound
	}
	if err != nil {
		return r, 0, err
	}
	if r.Config, err = decodeConfig(cfg); err != nil {
		return r, 0, err
	}
	rows, err := q.QueryContext(ctx, `SELECT jid, affiliation FROM muclight_members WHERE room_id = ? ORDER BY jid`, id)
	if err != nil {
		return r, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var s, aff string
		if err := rows.Scan(&s, &aff); err != nil {
			return r, 0, err
		}
		j, err := jid.Parse(s)
		if err != nil {
			return r, 0, fmt.Errorf("stored member %q: %w", s, err)
		}
		r.Members = append(r.Members, storage.MUCLightOccupant{User: j, Affiliation: storage.MUCLightAffiliation(aff)})
	}
	return r, id, rows.Err()
}

// MUCLightRoom implements storage.MUCLightStore.
func (s *Store) MUCLightRoom(ctx context.Context, room jid.JID) (storage.MUCLightRoom, error) {
	r, _, err := loadRoom(ctx, s.r, room)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return r, fmt.Errorf("sqlite: muclight room %s: %w", room, err)
	}
	return r, err
}

func insertMembers(ctx context.Context, tx *sql.Tx, id int64, members []storage.MUCLightOccupant) error {
	for _, m := range members {
		if _, err := tx.ExecContext(ctx, `INSERT INTO muclight_members (room_id, jid, domain, username, affiliation) VALUES (?, ?, ?, ?, ?)`,
			id, m.User.String(), m.User.Domain(), m.User.Local(), string(m.Affiliation)); err != nil {
			return fmt.Errorf("member %s: %w", m.User, err)
		}
	}
	return nil
}

// CreateMUCLightRoom implements storage.MUCLightStore.
func (s *Store) CreateMUCLightRoom(ctx context.Context, room storage.MUCLightRoom) error {
	cfg, err := encodeConfig(room.Config)
	if err != nil {
		return fmt.Errorf("sqlite: create muclight room %s: %w", room.Room, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create muclight room %s: %w", room.Room, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO muclight_rooms (service, name, version, config) VALUES (?, ?, ?, ?)`,
		room.Room.Domain(), room.Room.Local(), room.Version, cfg)
	if isUnique(err) {
		return storage.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create muclight room %s: %w", room.Room, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("sqlite: create muclight room %s: %w", room.Room, err)
	}
	if err := insertMembers(ctx, tx, id, room.Members); err != nil {
		return fmt.Errorf("sqlite: create muclight room %s: %w", room.Room, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create muclight room %s: %w", room.Room, err)
	}
	return nil
}

// UpdateMUCLightRoom implements storage.MUCLightStore. Only the members
// that changed are written.
func (s *Store) UpdateMUCLightRoom(ctx context.Context, room storage.MUCLightRoom, prevVersion string) error {
	cfg, err := encodeConfig(room.Config)
	if err != nil {
		return fmt.Errorf("sqlite: update muclight room %s: %w", room.Room, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: update muclight room %s: %w", room.Room, err)
	}
	defer tx.Rollback()
	cur, id, err := loadRoom(ctx, tx, room.Room)
	if errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: update muclight room %s: %w", room.Room, err)
	}
	if cur.Version != prevVersion {
		return storage.ErrStale
	}
	if _, err := tx.ExecContext(ctx, `UPDATE muclight_rooms SET version = ?, config = ? WHERE id = ?`, room.Version, cfg, id); err != nil {
		return fmt.Errorf("sqlite: update muclight room %s: %w", room.Room, err)
	}
	old := make(map[jid.JID]storage.MUCLightAffiliation, len(cur.Members))
	for _, m := range cur.Members {
		old[m.User] = m.Affiliation
	}
	var added []storage.MUCLightOccupant
	for _, m := range room.Members {
		aff, ok := old[m.User]
		delete(old, m.User)
		switch {
		case !ok:
			added = append(added, m)
		case aff != m.Affiliation:
			if _, err := tx.ExecContext(ctx, `UPDATE muclight_members SET affiliation = ? WHERE room_id = ? AND jid = ?`,
				string(m.Affiliation), id, m.User.String()); err != nil {
				return fmt.Errorf("sqlite: update muclight room %s: %w", room.Room, err)
			}
		}
	}
	for u := range old {
		if _, err := tx.ExecContext(ctx, `DELETE FROM muclight_members WHERE room_id = ? AND jid = ?`, id, u.String()); err != nil {
			return fmt.Errorf("sqlite: update muclight room %s: %w", room.Room, err)
		}
	}
	if err := insertMembers(ctx, tx, id, added); err != nil {
		return fmt.Errorf("sqlite: update muclight room %s: %w", room.Room, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: update muclight room %s: %w", room.Room, err)
	}
	return nil
}

// DeleteMUCLightRoom implements storage.MUCLightStore.
func (s *Store) DeleteMUCLightRoom(ctx context.Context, room jid.JID, prevVersion string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete muclight room %s: %w", room, err)
	}
	defer tx.Rollback()
	var id int64
	var version string
	err = tx.QueryRowContext(ctx, `SELECT id, version FROM muclight_rooms WHERE service = ? AND name = ?`,
		room.Domain(), room.Local()).Scan(&id, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete muclight room %s: %w", room, err)
	}
	if version != prevVersion {
		return storage.ErrStale
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM muclight_members WHERE room_id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete muclight room %s: %w", room, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM muclight_rooms WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete muclight room %s: %w", room, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: delete muclight room %s: %w", room, err)
	}
	return nil
}

// MUCLightRoomsOf implements storage.MUCLightStore.
func (s *Store) MUCLightRoomsOf(ctx context.Context, user jid.JID, service string) ([]storage.MUCLightRoomRef, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.name, r.version, r.config FROM muclight_members m
		JOIN muclight_rooms r ON r.id = m.room_id
		WHERE m.domain = ? AND m.username = ? AND r.service = ? ORDER BY r.name`, user.Domain(), user.Local(), service)
	if err != nil {
		return nil, fmt.Errorf("sqlite: muclight rooms of %s: %w", user, err)
	}
	defer rows.Close()
	var out []storage.MUCLightRoomRef
	for rows.Next() {
		var name, version, cfg string
		if err := rows.Scan(&name, &version, &cfg); err != nil {
			return nil, fmt.Errorf("sqlite: muclight rooms of %s: %w", user, err)
		}
		j, err := jid.New(name, service, "")
		if err != nil {
			return nil, fmt.Errorf("sqlite: muclight rooms of %s: stored room %s@%s: %w", user, name, service, err)
		}
		fields, err := decodeConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("sqlite: muclight rooms of %s: %w", user, err)
		}
		out = append(out, storage.MUCLightRoomRef{Room: j, Version: version, Config: fields})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: muclight rooms of %s: %w", user, err)
	}
	return out, nil
}

// CountMUCLightRoomsOf implements storage.MUCLightStore.
func (s *Store) CountMUCLightRoomsOf(ctx context.Context, user jid.JID, service string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM muclight_members m
		JOIN muclight_rooms r ON r.id = m.room_id
		WHERE m.domain = ? AND m.username = ? AND r.service = ?`, user.Domain(), user.Local(), service).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count muclight rooms of %s: %w", user, err)
	}
	return n, nil
}

// MUCLightBlocking implements storage.MUCLightStore.
func (s *Store) MUCLightBlocking(ctx context.Context, user jid.JID, service string) ([]storage.MUCLightBlock, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kind, jid FROM muclight_blocking
		WHERE domain = ? AND username = ? AND service = ? ORDER BY kind = 'user', jid`,
		user.Domain(), user.Local(), service)
	if err != nil {
		return nil, fmt.Errorf("sqlite: muclight blocking of %s: %w", user, err)
	}
	defer rows.Close()
	var out []storage.MUCLightBlock
	for rows.Next() {
		var kind, s string
		if err := rows.Scan(&kind, &s); err != nil {
			return nil, fmt.Errorf("sqlite: muclight blocking of %s: %w", user, err)
		}
		j, err := jid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("sqlite: muclight blocking of %s: stored %q: %w", user, s, err)
		}
		out = append(out, storage.MUCLightBlock{Kind: kind, JID: j})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: muclight blocking of %s: %w", user, err)
	}
	return out, nil
}

// blockersChunk is the most users one MUCLightBlockers query asks about
// (two parameters each, far below SQLite's limit of 32766).
const blockersChunk = 1000

// MUCLightBlockers implements storage.MUCLightStore: one query (per
// thousand users) on the primary key.
func (s *Store) MUCLightBlockers(ctx context.Context, users []jid.JID, room, other jid.JID) ([]jid.JID, error) {
	var out []jid.JID
	for len(users) > 0 {
		chunk := users[:min(len(users), blockersChunk)]
		users = users[len(chunk):]
		args := make([]any, 0, 3+2*len(chunk))
		args = append(args, room.Domain(), room.String(), other.Bare().String())
		var q strings.Builder
		q.WriteString(`SELECT DISTINCT domain, username FROM muclight_blocking
		WHERE service = ? AND (kind = 'room' AND jid = ? OR kind = 'user' AND jid = ?)
		AND (domain, username) IN (VALUES `)
		for i, u := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?)")
			args = append(args, u.Domain(), u.Local())
		}
		q.WriteString(")")
		if err := func() error {
			rows, err := s.r.QueryContext(ctx, q.String(), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var domain, username string
				if err := rows.Scan(&domain, &username); err != nil {
					return err
				}
				j, err := jid.New(username, domain, "")
				if err != nil {
					return fmt.Errorf("stored %q@%q: %w", username, domain, err)
				}
				out = append(out, j)
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("sqlite: muclight blockers of %s: %w", room, err)
		}
	}
	slices.SortFunc(out, jid.JID.Compare)
	return slices.Compact(out), nil
}

// SetMUCLightBlocking implements storage.MUCLightStore.
func (s *Store) SetMUCLightBlocking(ctx context.Context, user jid.JID, service string, deny, allow []storage.MUCLightBlock) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: set muclight blocking of %s: %w", user, err)
	}
	defer tx.Rollback()
	for _, b := range allow {
		if _, err := tx.ExecContext(ctx, `DELETE FROM muclight_blocking WHERE domain = ? AND username = ? AND service = ? AND kind = ? AND jid = ?`,
			user.Domain(), user.Local(), service, b.Kind, b.JID.String()); err != nil {
			return fmt.Errorf("sqlite: set muclight blocking of %s: %w", user, err)
		}
	}
	for _, b := range deny {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO muclight_blocking (domain, username, service, kind, jid) VALUES (?, ?, ?, ?, ?)`,
			user.Domain(), user.Local(), service, b.Kind, b.JID.String()); err != nil {
			return fmt.Errorf("sqlite: set muclight blocking of %s: %w", user, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: set muclight blocking of %s: %w", user, err)
	}
	return nil
}
