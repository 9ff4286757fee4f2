// Package sqlite is the embedded storage backend: SQLite through
// modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with synchronous=NORMAL: a committed
// transaction is in the WAL file when Commit returns, so it survives a
// crash of the server process (not necessarily a power loss; use
// synchronous=FULL via Options.Synchronous for that). Writes go through
// one connection, reads through a small pool, so writers never wait on
// SQLITE_BUSY from each other inside the process; other processes (the
// `meerkat user` commands) wait up to the busy timeout.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options configure the backend.
type Options struct {
	// Path of the database file; its directory is created if needed.
	Path string
	// Synchronous is SQLite's synchronous pragma: NORMAL (default) or FULL.
	Synchronous string
	// ReadConns bounds the reader pool (default 4).
	ReadConns int
}

// Store is the SQLite backend.
type Store struct {
	w, r *sql.DB
}

var _ storage.Backend = (*Store)(nil)

// Open opens (creating if needed) and migrates the database.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("sqlite: no database path")
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	sync := strings.ToUpper(opts.Synchronous)
	if sync == "" {
		sync = "NORMAL"
	}
	if sync != "NORMAL" && sync != "FULL" {
		return nil, fmt.Errorf("sqlite: synchronous must be NORMAL or FULL, not %q", opts.Synchronous)
	}
	dsn := "file:" + opts.Path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(" + sync + ")&_pragma=foreign_keys(1)&_txlock=immediate"
	// The writer keeps 64 MiB of pages: the archive's and the inbox's
	// indexes take writes all over them (one leaf per user), and a page
	// read again from the OS for every batch costs more than the write.
	w, err := sql.Open("sqlite", dsn+"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(10000)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)&_pragma=cache_size(-16384)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	return &Store{w: w, r: r}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// A migration changes the schema. Each feature's file registers its own
// (addMigration in an init function) with a version number taken from the
// list below, so that files can be added without touching each other.
// Migrations apply in version order and each is recorded once applied.
// Never edit one that has shipped: add a new one.
//
//	1 accounts (this file)
//	2 roster and subscriptions (roster.go)
//	3 offline messages (offline.go)
//	4 blocking (blocking.go)
//	5 vCard, private XML storage, last activity (profile.go)
//	30 MUC Light rooms, members, blocking lists (muclight.go)
type migration struct {
	version int
	sql     string
}

var migrations []migration

func addMigration(version int, sql string) {
	migrations = append(migrations, migration{version, sql})
	slices.SortFunc(migrations, func(a, b migration) int { return a.version - b.version })
}

// accountCleanups are statements run, in one transaction, when an account
// is removed; each takes the account's domain and username as its two
// arguments. Feature files add theirs with addAccountCleanup.
var accountCleanups []string

func addAccountCleanup(sql string) { accountCleanups = append(accountCleanups, sql) }

func init() {
	addMigration(1, `CREATE TABLE accounts (
		domain      TEXT NOT NULL,
		username    TEXT NOT NULL,
		credentials BLOB NOT NULL,
		created_at  INTEGER NOT NULL,
		PRIMARY KEY (domain, username)
	) WITHOUT ROWID`)
}

func migrate(ctx context.Context, db *sql.DB) error {
	// Applied migrations are recorded one by one, so a feature's migration
	// applies whenever it is added, whatever its neighbours' numbers.
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer tx.Rollback()
	applied, err := appliedMigrations(ctx, tx)
	if err != nil {
		return err
	}
	known := map[int]bool{}
	for i, m := range migrations {
		if i > 0 && migrations[i-1].version == m.version {
			return fmt.Errorf("sqlite: two migrations numbered %d", m.version)
		}
		known[m.version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("sqlite: the database has migration %d, unknown to this program (a newer version made it)", v)
		}
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", m.version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, time.Now().Unix()); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", m.version, err)
		}
	}
	return tx.Commit()
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func appliedMigrations(ctx context.Context, q querier) (map[int]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlite: migrate: %w", err)
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// Migrations returns the versions of the migrations applied to the database.
func (s *Store) Migrations(ctx context.Context) ([]int, error) {
	applied, err := appliedMigrations(ctx, s.r)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(applied))
	for v := range applied {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(ctx context.Context, user jid.JID, credentials []byte) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO accounts (domain, username, credentials, created_at) VALUES (?, ?, ?, ?)`,
		user.Domain(), user.Local(), credentials, time.Now().Unix())
	if isUnique(err) {
		return storage.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create account %s: %w", user, err)
	}
	return nil
}

// AccountCredentials implements storage.Accounts.
func (s *Store) AccountCredentials(ctx context.Context, user jid.JID) ([]byte, error) {
	var creds []byte
	err := s.r.QueryRowContext(ctx, `SELECT credentials FROM accounts WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&creds)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: credentials of %s: %w", user, err)
	}
	return creds, nil
}

// SetAccountCredentials implements storage.Accounts.
func (s *Store) SetAccountCredentials(ctx context.Context, user jid.JID, credentials []byte) error {
	res, err := s.w.ExecContext(ctx, `UPDATE accounts SET credentials = ? WHERE domain = ? AND username = ?`,
		credentials, user.Domain(), user.Local())
	if err != nil {
		return fmt.Errorf("sqlite: set credentials of %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// RemoveAccount implements storage.Accounts.
func (s *Store) RemoveAccount(ctx context.Context, user jid.JID) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: remove %s: %w", user, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE domain = ? AND username = ?`, user.Domain(), user.Local())
	if err != nil {
		return fmt.Errorf("sqlite: remove %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return storage.ErrNotFound
	}
	for _, q := range accountCleanups {
		if _, err := tx.ExecContext(ctx, q, user.Domain(), user.Local()); err != nil {
			return fmt.Errorf("sqlite: remove %s: %w", user, err)
		}
	}
	return tx.Commit()
}

// ListAccounts implements storage.Accounts.
func (s *Store) ListAccounts(ctx context.Context, domain string) ([]jid.JID, error) {
	q := `SELECT username, domain FROM accounts ORDER BY domain, username`
	args := []any{}
	if domain != "" {
		q = `SELECT username, domain FROM accounts WHERE domain = ? ORDER BY username`
		args = append(args, domain)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list accounts: %w", err)
	}
	defer rows.Close()
	var out []jid.JID
	for rows.Next() {
		var local, dom string
		if err := rows.Scan(&local, &dom); err != nil {
			return nil, fmt.Errorf("sqlite: list accounts: %w", err)
		}
		j, err := jid.New(local, dom, "")
		if err != nil {
			return nil, fmt.Errorf("sqlite: list accounts: stored %s@%s: %w", local, dom, err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// AccountExists implements storage.Accounts.
func (s *Store) AccountExists(ctx context.Context, user jid.JID) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE domain = ? AND username = ?`,
		user.Domain(), user.Local()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: account %s: %w", user, err)
	}
	return true, nil
}
