package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/sasl"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
)

// Account management shared by `meerkat user` and the test server. Only
// SCRAM secrets are stored (RFC 5802 §3), never the password.

// SCRAMIterations is the PBKDF2 iteration count of new credentials.
const SCRAMIterations = 4096

// AccountJID checks that j names an account of a served domain.
func AccountJID(s string, domains []string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, err
	}
	if j.Local() == "" || j.Resource() != "" {
		return jid.JID{}, fmt.Errorf("%s is not an account address (user@domain)", s)
	}
	for _, d := range domains {
		if j.Domain() == d {
			return j, nil
		}
	}
	return jid.JID{}, fmt.Errorf("%s is not a served domain (served: %v)", j.Domain(), domains)
}

// AddUser creates an account with a password.
func AddUser(ctx context.Context, store storage.Accounts, user jid.JID, password string) error {
	creds, err := credentials(password)
	if err != nil {
		return err
	}
	if err := store.CreateAccount(ctx, user, creds); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("%s already exists: %w", user, storage.ErrExists)
		}
		return err
	}
	return nil
}

// SetPassword replaces an account's password.
func SetPassword(ctx context.Context, store storage.Accounts, user jid.JID, password string) error {
	creds, err := credentials(password)
	if err != nil {
		return err
	}
	if err := store.SetAccountCredentials(ctx, user, creds); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%s does not exist: %w", user, storage.ErrNotFound)
		}
		return err
	}
	return nil
}

// RemoveUser deletes an account and its data.
func RemoveUser(ctx context.Context, store storage.Accounts, user jid.JID) error {
	if err := store.RemoveAccount(ctx, user); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%s does not exist: %w", user, storage.ErrNotFound)
		}
		return err
	}
	return nil
}

// ErrBadPassword: a password that cannot be used (empty, or refused by
// the SASLprep profile).
var ErrBadPassword = errors.New("unusable password")

func credentials(password string) ([]byte, error) {
	if password == "" {
		return nil, fmt.Errorf("the password is empty: %w", ErrBadPassword)
	}
	c, err := sasl.NewCredentials(password, SCRAMIterations)
	if err != nil {
		return nil, fmt.Errorf("password: %w (%w)", ErrBadPassword, err)
	}
	return c.MarshalText()
}

// RemoveUser deletes an account and its data, closes its sessions and
// tells the modules (UserRemoving before, UserRemoved after).
func (s *Server) RemoveUser(ctx context.Context, user jid.JID) error {
	if ok, err := s.store.AccountExists(ctx, user); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%s does not exist: %w", user, storage.ErrNotFound)
	}
	for _, h := range s.hooks.UserRemoving.Hooks() {
		h.Fn(ctx, user)
	}
	if err := RemoveUser(ctx, s.store, user); err != nil {
		return err
	}
	for _, sess := range s.router.Sessions(user) {
		sess.Close(stanza.NewStreamError(stanza.StreamNotAuthorized, "account removed"))
	}
	for _, h := range s.hooks.UserRemoved.Hooks() {
		h.Fn(ctx, user)
	}
	return nil
}

// accounts is module.Accounts for the running server.
type accounts struct{ s *Server }

var _ module.Accounts = accounts{}

func (a accounts) Create(ctx context.Context, user jid.JID, password string) error {
	return AddUser(ctx, a.s.store, user, password)
}

func (a accounts) SetPassword(ctx context.Context, user jid.JID, password string) error {
	return SetPassword(ctx, a.s.store, user, password)
}

func (a accounts) Remove(ctx context.Context, user jid.JID) error { return a.s.RemoveUser(ctx, user) }
