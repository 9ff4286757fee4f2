package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// The admin API lives on the HTTP listener under /admin/. It lets the
// `meerkat user` commands act through the running server, so that removing
// an account also closes its sessions and tells the modules. Every request
// carries the token the server writes to data_dir/admin.token (readable by
// the server's user only) at start; the address to reach it is in
// data_dir/admin.addr. Both files go away when the server stops.

// Admin file names in the data directory.
const (
	AdminTokenFile = "admin.token"
	AdminAddrFile  = "admin.addr"
)

// startAdmin creates the token and address files.
func (s *Server) startAdmin(httpAddr net.Addr) error {
	var b [32]byte
	rand.Read(b[:])
	s.adminToken = hex.EncodeToString(b[:])
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.cfg.DataDir, AdminTokenFile), []byte(s.adminToken+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	addr := httpAddr.String()
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			// Listening on every interface: the local commands use loopback.
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	if err := os.WriteFile(filepath.Join(s.cfg.DataDir, AdminAddrFile), []byte(addr+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}

// stopAdmin removes the address and token files, if they are still ours.
func (s *Server) stopAdmin() {
	if s.adminToken == "" {
		return
	}
	tokenFile := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	if b, err := os.ReadFile(tokenFile); err == nil && strings.TrimSpace(string(b)) == s.adminToken {
		os.Remove(filepath.Join(s.cfg.DataDir, AdminAddrFile))
		os.Remove(tokenFile)
	}
}

// adminHandler serves /admin/.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/users", s.adminListUsers)
	mux.HandleFunc("POST /admin/users/{jid}", s.adminAddUser)
	mux.HandleFunc("PUT /admin/users/{jid}/password", s.adminSetPassword)
	mux.HandleFunc("DELETE /admin/users/{jid}", s.adminRemoveUser)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		want := "Bearer " + s.adminToken
		if s.adminToken == "" || subtle.ConstantTimeCompare([]byte(auth), []byte(want)) != 1 {
			adminError(w, http.StatusUnauthorized, errors.New("missing or wrong admin token"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func adminError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func adminOK(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// adminPassword reads {"password": "…"} from the request body.
func adminPassword(r *http.Request) (string, error) {
	var body struct {
		Password string `json:"password"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil {
		return "", fmt.Errorf("body: %w", err)
	}
	return body.Password, nil
}

func (s *Server) adminListUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.store.ListAccounts(r.Context(), r.URL.Query().Get("domain"))
	if err != nil {
		adminError(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.String()
	}
	adminOK(w, map[string][]string{"users": out})
}

func (s *Server) adminAddUser(w http.ResponseWriter, r *http.Request) {
	s.adminPasswordOp(w, r, AddUser, "created")
}

func (s *Server) adminSetPassword(w http.ResponseWriter, r *http.Request) {
	s.adminPasswordOp(w, r, SetPassword, "changed")
}

// adminPasswordOp runs an account operation taking the password of the
// request's body, and answers {key: jid}.
func (s *Server) adminPasswordOp(w http.ResponseWriter, r *http.Request, op func(context.Context, storage.Accounts, jid.JID, string) error, key string) {
	j, err := AccountJID(r.PathValue("jid"), s.cfg.Domains)
	if err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	password, err := adminPassword(r)
	if err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	if err := op(r.Context(), s.store, j, password); err != nil {
		adminError(w, adminStatus(err), err)
		return
	}
	adminOK(w, map[string]string{key: j.String()})
}

// adminStatus is the HTTP status of an account operation's error: the
// client's mistakes are 4xx, the server's failures 500.
func adminStatus(err error) int {
	switch {
	case errors.Is(err, storage.ErrExists):
		return http.StatusConflict
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrBadPassword):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func (s *Server) adminRemoveUser(w http.ResponseWriter, r *http.Request) {
	j, err := AccountJID(r.PathValue("jid"), s.cfg.Domains)
	if err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.RemoveUser(r.Context(), j); err != nil {
		adminError(w, adminStatus(err), err)
		return
	}
	adminOK(w, map[string]string{"removed": j.String()})
}
