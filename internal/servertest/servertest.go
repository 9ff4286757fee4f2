// Package servertest starts an in-process Meerkat for tests: random
// loopback ports, a temporary data directory, logs attached to the test.
// A *Server is a story.Server, so stories run against it:
//
//	srv := servertest.Start(t)
//	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) { … })
package servertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/server"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/story"
)

// Server is a running in-process Meerkat.
type Server struct {
	*server.Server
	Config config.Config
	t      testing.TB
}

var _ story.Server = (*Server)(nil)

// Start starts a server configured by Default, changed by the options,
// and stops it when the test ends. MEERKAT_TEST_LOG=debug shows its logs.
func Start(t testing.TB, opts ...func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.C2S.Addr = "127.0.0.1:0"
	cfg.C2S.TLSAddr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.TLSAddr = "127.0.0.1:0"
	for _, o := range opts {
		o(&cfg)
	}
	level := slog.LevelError + 4 // silent
	if v := os.Getenv("MEERKAT_TEST_LOG"); v != "" {
		if l, err := config.ParseLevel(v); err == nil {
			level = l
		}
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("servertest: shutdown: %v", err)
		}
	})
	return &Server{Server: srv, Config: cfg, t: t}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Domain implements story.Server.
func (s *Server) Domain() string { return s.Config.Domains[0] }

// Addr implements story.Server.
func (s *Server) Addr(t story.Transport) (string, bool) {
	a := s.Addrs()
	switch t {
	case story.TCP:
		if a.StartTLS != nil {
			return a.StartTLS.String(), true
		}
	case story.DirectTLS:
		if a.DirectTLS != nil {
			return a.DirectTLS.String(), true
		}
	case story.WebSocket:
		// wss:// on the HTTPS listener, with the c2s certificate.
		if a.HTTPS != nil {
			return "wss://" + a.HTTPS.String() + "/ws-xmpp", true
		}
	case story.BOSH:
		if a.HTTPS != nil {
			return "https://" + a.HTTPS.String() + "/http-bind", true
		}
	}
	return "", false
}

// TLSConfig implements story.Server: it trusts exactly the server's
// (self-signed) certificate.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range s.Server.TLSConfig().Certificates {
		pool.AddCert(c.Leaf)
	}
	return &tls.Config{RootCAs: pool, ServerName: s.Domain()}
}

// CreateUser implements story.Server.
func (s *Server) CreateUser(ctx context.Context, localpart, password string) error {
	j, err := jid.New(localpart, s.Domain(), "")
	if err != nil {
		return err
	}
	return server.AddUser(ctx, s.Store(), j, password)
}

// RemoveUser implements story.Server; removing a missing account is not
// an error.
func (s *Server) RemoveUser(ctx context.Context, localpart string) error {
	j, err := jid.New(localpart, s.Domain(), "")
	if err != nil {
		return err
	}
	if ok, err := s.Store().AccountExists(ctx, j); err != nil || !ok {
		return err
	}
	return s.Server.RemoveUser(ctx, j)
}

// Modules returns an option that sets the [modules.*] sections from a TOML
// document, as a configuration file would:
//
//	servertest.Start(t, servertest.Modules("[modules.ping]\ninterval = \"200ms\""))
func Modules(doc string) func(*config.Config) {
	return func(c *config.Config) {
		parsed, err := config.Parse(doc)
		if err != nil {
			panic("servertest: " + err.Error())
		}
		c.Modules = parsed.Modules
	}
}
