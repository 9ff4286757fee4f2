package server_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/server"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/story"
)

// TestCertificateKept: the certificate generated on first start is the
// one used on the next start.
func TestCertificateKept(t *testing.T) {
	data := t.TempDir()
	fingerprint := func() []byte {
		srv := servertest.Start(t, func(c *config.Config) { c.DataDir = data })
		der := srv.Server.TLSConfig().Certificates[0].Leaf.Raw
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		return der
	}
	first, second := fingerprint(), fingerprint()
	if !bytes.Equal(first, second) {
		t.Fatal("a new certificate was generated on the second start")
	}
	if _, err := os.Stat(filepath.Join(data, "tls", "key.pem")); err != nil {
		t.Fatal(err)
	}
}

// TestConfiguredCertificate: cert_file and key_file replace the generated one.
func TestConfiguredCertificate(t *testing.T) {
	other := t.TempDir()
	gen := servertest.Start(t, func(c *config.Config) { c.DataDir = other })
	der := gen.Server.TLSConfig().Certificates[0].Leaf.Raw
	srv := servertest.Start(t, func(c *config.Config) {
		c.TLS.CertFile = filepath.Join(other, "tls", "cert.pem")
		c.TLS.KeyFile = filepath.Join(other, "tls", "key.pem")
	})
	if !bytes.Equal(srv.Server.TLSConfig().Certificates[0].Leaf.Raw, der) {
		t.Fatal("configured certificate not used")
	}
	if _, err := os.Stat(filepath.Join(srv.Config.DataDir, "tls")); err == nil {
		t.Fatal("a certificate was generated although one is configured")
	}
}

func TestBadConfiguration(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.TLS.CertFile = "/nonexistent/cert.pem"
	cfg.TLS.KeyFile = "/nonexistent/key.pem"
	if _, err := server.New(context.Background(), cfg, nil); err == nil {
		t.Fatal("missing certificate accepted")
	}
	cfg = config.Default()
	cfg.Domains = nil
	if _, err := server.New(context.Background(), cfg, nil); err == nil {
		t.Fatal("invalid configuration accepted")
	}
}

// TestPasswordChange: after SetPassword the old password no longer works.
func TestPasswordChange(t *testing.T) {
	srv := servertest.Start(t)
	ctx := context.Background()
	u := jid.MustParse("pat@" + srv.Domain())
	if err := server.AddUser(ctx, srv.Store(), u, "old"); err != nil {
		t.Fatal(err)
	}
	if err := server.SetPassword(ctx, srv.Store(), u, "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := story.Connect(ctx, t, srv, story.Account{Localpart: "pat", Password: "old"}, story.Options{}); err == nil {
		t.Fatal("old password accepted")
	}
	story.MustConnect(t, srv, story.Account{Localpart: "pat", Password: "new"}, story.Options{})
	if err := server.AddUser(ctx, srv.Store(), u, ""); err == nil {
		t.Fatal("empty password accepted")
	}
	if _, err := server.AccountJID("pat@"+srv.Domain()+"/res", srv.Config.Domains); err == nil {
		t.Fatal("full JID accepted as an account")
	}
}

// TestHostMeta: web clients discover the BOSH and WebSocket endpoints
// (XEP-0156 §3), in XRD and JSON, with the scheme they came with.
func TestHostMeta(t *testing.T) {
	srv := servertest.Start(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: srv.TLSConfig()}}
	defer client.CloseIdleConnections()
	get := func(url string) (string, http.Header) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		return string(body), resp.Header
	}
	https := srv.Addrs().HTTPS.String()
	xrd, h := get("https://" + https + "/.well-known/host-meta")
	want := "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n" +
		"  <Link rel='urn:xmpp:alt-connections:xbosh' href='https://" + https + "/http-bind'/>\n" +
		"  <Link rel='urn:xmpp:alt-connections:websocket' href='wss://" + https + "/ws-xmpp'/>\n</XRD>\n"
	if xrd != want {
		t.Errorf("host-meta:\n%s\nwant:\n%s", xrd, want)
	}
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no CORS header: %v", h)
	}
	plain := srv.Addrs().HTTP.String()
	js, _ := get("http://" + plain + "/.well-known/host-meta.json")
	wantJSON := `{"links":[{"rel":"urn:xmpp:alt-connections:xbosh","href":"http://` + plain + `/http-bind"},` +
		`{"rel":"urn:xmpp:alt-connections:websocket","href":"ws://` + plain + `/ws-xmpp"}]}` + "\n"
	if js != wantJSON {
		t.Errorf("host-meta.json:\n%s\nwant:\n%s", js, wantJSON)
	}
}

// TestPasswordsNotStored: the database files (the WAL included) never
// contain a password, neither while the server runs nor after it stopped;
// only SCRAM secrets are stored. The accounts' names are found, so the
// scan does see the data.
func TestPasswordsNotStored(t *testing.T) {
	srv := servertest.Start(t)
	ctx := context.Background()
	const first, second = "Zebra-first-Passw0rd-ñ", "Kiwi-second-Passw0rd-ß"
	u := jid.MustParse("pwscan@" + srv.Domain())
	if err := server.AddUser(ctx, srv.Store(), u, first); err != nil {
		t.Fatal(err)
	}
	// PLAIN hands the server the password itself.
	c := story.MustConnect(t, srv, story.Account{Localpart: u.Local(), Password: first}, story.Options{Mechanism: story.Plain, NoPresence: true})
	c.Close()
	if err := server.SetPassword(ctx, srv.Store(), u, second); err != nil {
		t.Fatal(err)
	}
	for _, mech := range []string{story.Plain, story.ScramSHA256, story.ScramSHA512Plus} {
		c := story.MustConnect(t, srv, story.Account{Localpart: u.Local(), Password: second}, story.Options{Mechanism: mech, NoPresence: true})
		c.Close()
	}

	scan := func(when string, wantWAL bool) {
		t.Helper()
		found := map[string][]string{}
		sawWAL := false
		err := filepath.WalkDir(srv.Config.DataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.HasSuffix(path, "-wal") && len(b) > 0 {
				sawWAL = true
			}
			for _, s := range []string{first, second, u.Local()} {
				if bytes.Contains(b, []byte(s)) {
					found[s] = append(found[s], filepath.Base(path))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{first, second} {
			if len(found[pw]) > 0 {
				t.Errorf("%s: password %q found in %v", when, pw, found[pw])
			}
		}
		if len(found[u.Local()]) == 0 {
			t.Errorf("%s: the account name is in no file: the scan sees nothing", when)
		}
		if wantWAL && !sawWAL {
			t.Errorf("%s: no write-ahead log to scan", when)
		}
	}
	scan("while running", true)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	scan("after shutdown", false)
}

// TestPprof: the profiler is served only when configured.
func TestPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		srv := servertest.Start(t, func(c *config.Config) { c.HTTP.Pprof = on })
		resp, err := http.Get("http://" + srv.Addrs().HTTP.String() + "/debug/pprof/heap?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.StatusCode == http.StatusOK && strings.Contains(string(body), "heap profile"); got != on {
			t.Errorf("pprof = %v: GET /debug/pprof/heap gave %s", on, resp.Status)
		}
	}
}
