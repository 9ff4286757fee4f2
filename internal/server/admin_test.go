package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/server"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
)

func adminCall(t *testing.T, srv *servertest.Server, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	addr, err := os.ReadFile(filepath.Join(srv.Config.DataDir, server.AdminAddrFile))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, "http://"+strings.TrimSpace(string(addr))+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAdminAPI(t *testing.T) {
	srv := servertest.Start(t)
	raw, err := os.ReadFile(filepath.Join(srv.Config.DataDir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(srv.Config.DataDir, server.AdminTokenFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", fi.Mode())
	}
	token := strings.TrimSpace(string(raw))
	d := srv.Domain()
	steps := []struct {
		token, method, path, body string
		status                    int
		key, want                 string
	}{
		{"", "GET", "/admin/users", "", 401, "error", "token"},
		{"wrong", "GET", "/admin/users", "", 401, "error", "token"},
		{token, "POST", "/admin/users/ann@" + d, `{"password":"pw1"}`, 200, "created", "ann@" + d},
		{token, "POST", "/admin/users/ann@" + d, `{"password":"pw1"}`, 409, "error", "already exists"},
		{token, "POST", "/admin/users/ann@elsewhere.org", `{"password":"pw1"}`, 400, "error", "not a served domain"},
		{token, "POST", "/admin/users/bob@" + d, `{}`, 400, "error", "empty"},
		{token, "PUT", "/admin/users/ann@" + d + "/password", `{"password":"pw2"}`, 200, "changed", "ann@" + d},
		{token, "PUT", "/admin/users/nobody@" + d + "/password", `{"password":"x"}`, 404, "error", "does not exist"},
		{token, "DELETE", "/admin/users/nobody@" + d, "", 404, "error", "does not exist"},
	}
	for _, s := range steps {
		status, out := adminCall(t, srv, s.token, s.method, s.path, s.body)
		if status != s.status || !strings.Contains(out[s.key].(string), s.want) {
			t.Errorf("%s %s: %d %v, want %d %s~%q", s.method, s.path, status, out, s.status, s.key, s.want)
		}
	}
	if status, out := adminCall(t, srv, token, "GET", "/admin/users?domain="+d, ""); status != 200 || len(out["users"].([]any)) != 1 {
		t.Fatalf("list: %d %v", status, out)
	}
	// Removing through the API closes the account's sessions.
	ann := story.MustConnect(t, srv, story.Account{Localpart: "ann", Password: "pw2"}, story.Options{})
	if status, out := adminCall(t, srv, token, "DELETE", "/admin/users/ann@"+d, ""); status != 200 {
		t.Fatalf("remove: %d %v", status, out)
	}
	ann.Expect(story.IsStreamError("not-authorized"))
	// The files go away with the server.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	if _, err := os.Stat(filepath.Join(srv.Config.DataDir, server.AdminAddrFile)); err == nil {
		t.Fatal("admin.addr left behind")
	}
}
