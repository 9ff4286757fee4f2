// Package storage holds what all storage backends share: the errors they
// return and the core stores the server itself needs (accounts).
//
// Feature modules define the store interfaces they use in their own
// packages; the backends (storage/sqlite, later storage/postgres)
// implement them, and storagetest runs one conformance suite against every
// backend. Nothing outside the storage packages knows which database is in
// use.
package storage

import (
	"context"
	"errors"

	"github.com/meerkat-xmpp/meerkat/jid"
)

var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists: the record already exists.
	ErrExists = errors.New("storage: already exists")
)

// Accounts stores user accounts. Credentials are opaque to storage (the
// SCRAM secrets serialized by the sasl package); passwords are never stored.
type Accounts interface {
	// CreateAccount adds an account (a bare JID); ErrExists if present.
	CreateAccount(ctx context.Context, user jid.JID, credentials []byte) error
	// AccountCredentials returns the stored credentials; ErrNotFound.
	AccountCredentials(ctx context.Context, user jid.JID) ([]byte, error)
	// SetAccountCredentials replaces the credentials; ErrNotFound.
	SetAccountCredentials(ctx context.Context, user jid.JID, credentials []byte) error
	// RemoveAccount deletes the account and everything stored for it, in
	// one transaction; ErrNotFound.
	RemoveAccount(ctx context.Context, user jid.JID) error
	// ListAccounts lists the accounts of a domain ("" for all), sorted.
	ListAccounts(ctx context.Context, domain string) ([]jid.JID, error)
	// AccountExists reports whether the account exists.
	AccountExists(ctx context.Context, user jid.JID) (bool, error)
}

// Backend is an open storage backend.
type Backend interface {
	Accounts
	// Close flushes and closes the backend.
	Close() error
}
