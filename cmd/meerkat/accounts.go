package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/server"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// accountAdmin is how the user commands act: through the running server's
// admin API or on the database directly.
type accountAdmin interface {
	add(ctx context.Context, user jid.JID, password string) error
	passwd(ctx context.Context, user jid.JID, password string) error
	remove(ctx context.Context, user jid.JID) error
	list(ctx context.Context, domain string) ([]string, error)
	close()
}

// openAccounts uses the admin API of a server running on the same data
// directory, when its address and token files are there and it answers;
// otherwise the database.
func openAccounts(ctx context.Context, cfg config.Config) (accountAdmin, error) {
	if api, ok := dialAdmin(ctx, cfg.DataDir); ok {
		return api, nil
	}
	store, err := server.OpenStorage(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return dbAccounts{store}, nil
}

type dbAccounts struct{ store storage.Backend }

func (d dbAccounts) add(ctx context.Context, u jid.JID, pw string) error {
	return server.AddUser(ctx, d.store, u, pw)
}

func (d dbAccounts) passwd(ctx context.Context, u jid.JID, pw string) error {
	return server.SetPassword(ctx, d.store, u, pw)
}

func (d dbAccounts) remove(ctx context.Context, u jid.JID) error {
	return server.RemoveUser(ctx, d.store, u)
}

func (d dbAccounts) list(ctx context.Context, domain string) ([]string, error) {
	users, err := d.store.ListAccounts(ctx, domain)
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.String()
	}
	return out, err
}

func (d dbAccounts) close() { d.store.Close() }

// apiAccounts talks to the admin API (internal/server/admin.go).
type apiAccounts struct {
	base, token string
	client      *http.Client
}

func dialAdmin(ctx context.Context, dataDir string) (*apiAccounts, bool) {
	addr, err := os.ReadFile(filepath.Join(dataDir, server.AdminAddrFile))
	if err != nil {
		return nil, false
	}
	token, err := os.ReadFile(filepath.Join(dataDir, server.AdminTokenFile))
	if err != nil {
		return nil, false
	}
	a := &apiAccounts{
		base:   "http://" + strings.TrimSpace(string(addr)),
		token:  strings.TrimSpace(string(token)),
		client: &http.Client{Timeout: 30 * time.Second},
	}
	// A server that crashed leaves the files behind: check it answers.
	if _, err := a.list(ctx, "\x00probe"); err != nil {
		return nil, false
	}
	return a, true
}

func (a *apiAccounts) call(ctx context.Context, method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("admin API: %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := out["error"].(string)
		return nil, errors.New(msg)
	}
	return out, nil
}

func (a *apiAccounts) add(ctx context.Context, u jid.JID, pw string) error {
	_, err := a.call(ctx, http.MethodPost, "/admin/users/"+url.PathEscape(u.String()), map[string]string{"password": pw})
	return err
}

func (a *apiAccounts) passwd(ctx context.Context, u jid.JID, pw string) error {
	_, err := a.call(ctx, http.MethodPut, "/admin/users/"+url.PathEscape(u.String())+"/password", map[string]string{"password": pw})
	return err
}

func (a *apiAccounts) remove(ctx context.Context, u jid.JID) error {
	_, err := a.call(ctx, http.MethodDelete, "/admin/users/"+url.PathEscape(u.String()), nil)
	return err
}

func (a *apiAccounts) list(ctx context.Context, domain string) ([]string, error) {
	out, err := a.call(ctx, http.MethodGet, "/admin/users?domain="+url.QueryEscape(domain), nil)
	if err != nil {
		return nil, err
	}
	raw, _ := out["users"].([]any)
	users := make([]string, 0, len(raw))
	for _, u := range raw {
		if s, ok := u.(string); ok {
			users = append(users, s)
		}
	}
	return users, nil
}

func (a *apiAccounts) close() {}
