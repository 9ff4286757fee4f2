// Package meerkattest starts an in-process Meerkat for tests, so that
// stories (package story) run against the real server without installing
// or starting anything: random loopback ports, a temporary data directory,
// a self-signed certificate the clients trust, and a shutdown when the
// test ends.
//
//	func TestChat(t *testing.T) {
//		srv := meerkattest.Start(t, meerkattest.Modules(`
//			[modules.csi]
//			max_queue = 16
//		`))
//		story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
//			alice.Send(story.Chat(bob, "Hi, Bob!"))
//			bob.Expect(story.IsChat("Hi, Bob!"), story.IsFrom(alice))
//		})
//	}
//
// A *Server is a story.Server: it offers every story.Transport (TCP with
// STARTTLS, direct TLS, WebSocket and BOSH over HTTPS), and creates and
// removes accounts directly in its store. One server can serve many
// stories in parallel (t.Parallel()): each story has fresh users.
//
// The server's logs are silent; MEERKAT_TEST_LOG=debug (or info, warn,
// error) attaches them to the test's output.
package meerkattest

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/story"
)

// Server is a running in-process Meerkat.
type Server struct {
	srv     *servertest.Server
	domains []string
	stopped atomic.Bool
}

var _ story.Server = (*Server)(nil)

// An Option changes the configuration of a Server before it starts.
type Option func(*settings)

type settings struct {
	docs    []string // TOML documents, in order
	domains []string
}

// Config sets any part of the server's configuration from a TOML
// document, written as Meerkat's configuration file (`meerkat config
// print` lists every setting with its default):
//
//	meerkattest.Start(t, meerkattest.Config(`
//		[c2s]
//		max_stanza_bytes = 16384
//		[http]
//		origins = ["https://app.example.com"]
//	`))
//
// Documents apply in order, each over the previous ones: a setting keeps
// the last value given, and a [modules.<name>] section replaces an
// earlier section of the same name. The listen addresses and the data
// directory are always the test's own (random loopback ports, a temporary
// directory), whatever the documents say.
func Config(toml string) Option {
	return func(s *settings) { s.docs = append(s.docs, toml) }
}

// Modules configures modules with [modules.<name>] sections, as in the
// configuration file; it is Config, named for what it is mostly used for:
//
//	meerkattest.Start(t, meerkattest.Modules(`
//		[modules.register]
//		enabled = true
//	`))
func Modules(toml string) Option { return Config(toml) }

// Domains sets the domains served (default "localhost"), after the
// Config documents; the first one is the Domain stories create their
// users in.
func Domains(domain string, more ...string) Option {
	return func(s *settings) { s.domains = append([]string{domain}, more...) }
}

// Start starts a server configured by the options, waits until it
// listens, and stops it when the test and its subtests have ended. A
// configuration that is not valid fails the test.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var set settings
	for _, o := range opts {
		o(&set)
	}
	cfg := config.Default()
	for i, doc := range set.docs {
		c, err := config.ParseOver(cfg, doc)
		if err != nil {
			t.Fatalf("meerkattest: configuration document %d: %v", i+1, err)
		}
		cfg = c
	}
	if len(set.domains) > 0 {
		cfg.Domains = set.domains
	}
	srv := servertest.Start(t, func(c *config.Config) {
		// servertest has set the test's addresses and data directory.
		own := *c
		*c = cfg
		c.DataDir = own.DataDir
		c.C2S.Addr, c.C2S.TLSAddr = own.C2S.Addr, own.C2S.TLSAddr
		c.HTTP.Addr, c.HTTP.TLSAddr = own.HTTP.Addr, own.HTTP.TLSAddr
		c.Storage.SQLitePath = "" // in the data directory
	})
	return &Server{srv: srv, domains: cfg.Domains}
}

// Domain implements story.Server: the first domain served.
func (s *Server) Domain() string { return s.domains[0] }

// Domains returns every domain served.
func (s *Server) Domains() []string { return append([]string(nil), s.domains...) }

// Addr implements story.Server: host:port for story.TCP and
// story.DirectTLS, a wss:// URL for story.WebSocket and an https:// URL
// for story.BOSH.
func (s *Server) Addr(t story.Transport) (string, bool) { return s.srv.Addr(t) }

// TLSConfig implements story.Server: it trusts exactly the server's
// self-signed certificate.
func (s *Server) TLSConfig() *tls.Config { return s.srv.TLSConfig() }

// CreateUser implements story.Server: it creates localpart@Domain().
func (s *Server) CreateUser(ctx context.Context, localpart, password string) error {
	if s.stopped.Load() {
		return errors.New("meerkattest: the server is stopped")
	}
	return s.srv.CreateUser(ctx, localpart, password)
}

// RemoveUser implements story.Server: it deletes the account and all its
// data and closes its sessions; removing an account that does not exist
// is not an error, nor is removing one from a stopped server (whose data
// goes with the test's temporary directory).
func (s *Server) RemoveUser(ctx context.Context, localpart string) error {
	if s.stopped.Load() {
		return nil
	}
	return s.srv.RemoveUser(ctx, localpart)
}

// Stop shuts the server down now, as on SIGTERM: every client gets the
// <system-shutdown/> stream error. It waits at most 10 seconds; stopping
// a stopped server does nothing.
func (s *Server) Stop() error {
	s.stopped.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
