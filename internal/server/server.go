// Package server is the composition root: it opens storage, loads or
// generates the certificate, builds the router, the c2s server and the
// enabled modules, listens, and stops everything in order.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/c2s"
	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/router"
	"github.com/meerkat-xmpp/meerkat/internal/sasl"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/internal/storage/sqlite"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"

	_ "github.com/meerkat-xmpp/meerkat/internal/modules/all" // every feature module
)

// Server is a running Meerkat.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	store  storage.Backend
	hooks  *module.Hooks
	router *router.Router
	c2s    *c2s.Server
	tls    *tls.Config

	ctx     context.Context
	cancel  context.CancelFunc
	modules []runningModule

	mu        sync.Mutex
	listeners []net.Listener
	addrs     Addrs
	http      *http.Server
	wg        sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
	adminToken   string
}

type runningModule struct {
	name string
	mod  module.Module
	env  *module.Env
}

// Addrs are the addresses the server listens on (nil when disabled).
type Addrs struct {
	StartTLS, DirectTLS, HTTP, HTTPS net.Addr
}

// New builds a server from a configuration; Start makes it listen.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	mods, err := cfg.DecodeModules()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, hooks: &module.Hooks{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.cancel()
			if s.store != nil {
				s.store.Close()
			}
		}
	}()

	if s.store, err = OpenStorage(ctx, cfg); err != nil {
		return nil, err
	}
	if s.tls, err = loadTLS(cfg, log); err != nil {
		return nil, err
	}
	if err := c2s.RegisterCoreHandlers(s.hooks); err != nil {
		return nil, err
	}
	s.router = router.New(router.Options{
		Domains:            cfg.Domains,
		MaxSessionsPerUser: cfg.C2S.MaxSessionsPerUser,
	}, s.hooks, s.store, log.With("component", "router"))

	auth := map[string]*sasl.Server{}
	for _, d := range cfg.Domains {
		domain := d
		srv, err := sasl.NewServer(sasl.Config{Mechanisms: cfg.C2S.SASLMechanisms}, func(ctx context.Context, user string) (sasl.Credentials, error) {
			return lookupCredentials(ctx, s.store, user, domain)
		})
		if err != nil {
			return nil, err
		}
		auth[d] = srv
	}
	s.c2s, err = c2s.NewServer(c2s.Config{
		TLS:        s.tls,
		RequireTLS: cfg.C2S.RequireTLS,
		Limits: xmlstream.Limits{
			MaxElementBytes: cfg.C2S.MaxStanzaBytes,
			MaxDepth:        cfg.C2S.MaxDepth,
			MaxAttrs:        cfg.C2S.MaxAttributes,
			MaxTextBytes:    cfg.C2S.MaxStanzaBytes,
			MaxAttrBytes:    min(cfg.C2S.MaxStanzaBytes, 16<<10),
		},
		HandshakeTimeout:   cfg.C2S.HandshakeTimeout.Duration,
		IdleTimeout:        cfg.C2S.IdleTimeout.Duration,
		MaxAuthFailures:    cfg.C2S.MaxAuthFailures,
		MaxOutboundBytes:   cfg.C2S.MaxOutboundBytes,
		RateBytesPerSecond: cfg.C2S.RateBytesPerSecond,
		SM: c2s.SMConfig{
			MaxUnacked:       cfg.C2S.SMMaxUnacked,
			AckEvery:         cfg.C2S.SMAckEvery,
			AckInterval:      cfg.C2S.SMAckInterval.Duration,
			ResumeTimeout:    cfg.C2S.SMResumeTimeout.Duration,
			MaxResumeTimeout: cfg.C2S.SMMaxResumeTimeout.Duration,
			RememberEnded:    cfg.C2S.SMRememberEnded.Duration,
			MaxRemembered:    cmp.Or(cfg.C2S.SMMaxRemembered, -1), // 0 in the file: none
			CounterStart:     cfg.C2S.SMCounterStart,
		},
	}, s.router, s.hooks, s.store, auth, log.With("component", "c2s"))
	if err != nil {
		return nil, err
	}

	for _, m := range mods {
		mod, err := m.Factory.New(m.Config)
		if err != nil {
			s.stopModules()
			return nil, fmt.Errorf("module %s: %w", m.Factory.Name, err)
		}
		env := &module.Env{Host: s.router, Hooks: s.hooks, Owner: m.Factory.Name, Store: s.store,
			Accounts: accounts{s}, Logger: log.With("module", m.Factory.Name)}
		if err := mod.Start(s.ctx, env); err != nil {
			s.hooks.RemoveOwner(m.Factory.Name)
			s.stopModules()
			return nil, fmt.Errorf("module %s: %w", m.Factory.Name, err)
		}
		s.modules = append(s.modules, runningModule{name: m.Factory.Name, mod: mod, env: env})
	}
	// What a module needs from another is there only once both started.
	for _, m := range s.modules {
		if d, is := m.mod.(module.Dependent); is {
			if err := d.CheckDependencies(m.env); err != nil {
				s.stopModules()
				return nil, fmt.Errorf("module %s: %w", m.name, err)
			}
		}
	}
	ok = true
	return s, nil
}

// lookupCredentials reads an account's SCRAM secrets for SASL.
func lookupCredentials(ctx context.Context, store storage.Accounts, user, domain string) (sasl.Credentials, error) {
	j, err := jid.New(user, domain, "")
	if err != nil {
		return sasl.Credentials{}, sasl.ErrUnknownUser
	}
	raw, err := store.AccountCredentials(ctx, j)
	if errors.Is(err, storage.ErrNotFound) {
		return sasl.Credentials{}, sasl.ErrUnknownUser
	}
	if err != nil {
		return sasl.Credentials{}, err
	}
	var c sasl.Credentials
	if err := c.UnmarshalText(raw); err != nil {
		return sasl.Credentials{}, fmt.Errorf("credentials of %s: %w", j, err)
	}
	return c, nil
}

// OpenStorage opens the configured backend.
func OpenStorage(ctx context.Context, cfg config.Config) (storage.Backend, error) {
	switch cfg.Storage.Backend {
	case "sqlite":
		st, err := sqlite.Open(ctx, sqlite.Options{Path: cfg.SQLitePath(), Synchronous: cfg.Storage.Synchronous})
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return st, nil
	}
	return nil, fmt.Errorf("storage: unknown backend %q", cfg.Storage.Backend)
}

// Start listens on the configured addresses and serves.
func (s *Server) Start() error {
	raiseFileLimit(s.log)
	listen := func(addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		lc := net.ListenConfig{KeepAlive: 30 * time.Second}
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
		return ln, nil
	}
	starttls, err := listen(s.cfg.C2S.Addr)
	if err != nil {
		return err
	}
	direct, err := listen(s.cfg.C2S.TLSAddr)
	if err != nil {
		s.closeListeners()
		return err
	}
	httpLn, err := listen(s.cfg.HTTP.Addr)
	if err != nil {
		s.closeListeners()
		return err
	}
	httpsLn, err := listen(s.cfg.HTTP.TLSAddr)
	if err != nil {
		s.closeListeners()
		return err
	}
	serve := func(ln net.Listener, directTLS bool) {
		defer s.wg.Done()
		if err := s.c2s.Serve(ln, directTLS); err != nil {
			s.log.Error("c2s listener failed", "addr", ln.Addr().String(), "error", err)
		}
	}
	if starttls != nil {
		s.addrs.StartTLS = starttls.Addr()
		s.wg.Add(1)
		go serve(starttls, false)
	}
	if direct != nil {
		s.addrs.DirectTLS = direct.Addr()
		s.wg.Add(1)
		go serve(direct, true)
	}
	if httpLn != nil || httpsLn != nil {
		s.http = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second,
			// Failed TLS handshakes and the like, in the server's log.
			ErrorLog: slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelDebug)}
	}
	serveHTTP := func(ln net.Listener) {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("HTTP listener failed", "addr", ln.Addr().String(), "error", err)
		}
	}
	if httpLn != nil {
		s.addrs.HTTP = httpLn.Addr()
		if err := s.startAdmin(httpLn.Addr()); err != nil {
			s.closeListeners()
			return err
		}
		s.wg.Add(1)
		go serveHTTP(httpLn)
	}
	if httpsLn != nil {
		s.addrs.HTTPS = httpsLn.Addr()
		conf := s.tls.Clone()
		conf.NextProtos = []string{"http/1.1"} // WebSocket upgrades need HTTP/1.1
		s.wg.Add(1)
		go serveHTTP(tls.NewListener(httpsLn, conf))
	}
	return nil
}

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Meerkat XMPP server")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/admin/", s.adminHandler())
	if s.cfg.HTTP.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	// RFC 7395: XMPP over WebSocket.
	mux.Handle("GET /ws-xmpp", s.c2s.WebSocketHandler(c2s.WebSocketOptions{
		Origins:        s.cfg.HTTP.Origins,
		BehindTLSProxy: s.cfg.HTTP.BehindTLSProxy,
	}))
	// XEP-0124 and XEP-0206: XMPP over BOSH.
	mux.Handle("/http-bind", s.c2s.BOSHHandler(c2s.BOSHOptions{
		MaxWait:        s.cfg.HTTP.BOSHMaxWait.Duration,
		Inactivity:     s.cfg.HTTP.BOSHInactivity.Duration,
		Origins:        s.cfg.HTTP.Origins,
		BehindTLSProxy: s.cfg.HTTP.BehindTLSProxy,
	}))
	// XEP-0156: web clients find the two endpoints above.
	mux.HandleFunc("GET /.well-known/host-meta", s.hostMeta(false))
	mux.HandleFunc("GET /.well-known/host-meta.json", s.hostMeta(true))
	return mux
}

// hostMeta serves the XEP-0156 §3 host-meta document (XRD, or JSON),
// with the URLs of this listener as the client reached it.
func (s *Server) hostMeta(asJSON bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		web, ws := "http", "ws"
		if r.TLS != nil || s.cfg.HTTP.BehindTLSProxy {
			web, ws = "https", "wss"
		}
		links := [][2]string{
			{"urn:xmpp:alt-connections:xbosh", web + "://" + r.Host + "/http-bind"},
			{"urn:xmpp:alt-connections:websocket", ws + "://" + r.Host + "/ws-xmpp"},
		}
		// Web clients read it from other origins.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if asJSON {
			type link struct {
				Rel  string `json:"rel"`
				Href string `json:"href"`
			}
			var doc struct {
				Links []link `json:"links"`
			}
			for _, l := range links {
				doc.Links = append(doc.Links, link{l[0], l[1]})
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(doc)
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml")
		b := []byte("<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
		for _, l := range links {
			b = append(b, "  <Link rel='"...)
			b = append(b, l[0]...)
			b = append(b, "' href='"...)
			b = xmlstream.AppendEscapedAttr(b, l[1])
			b = append(b, "'/>\n"...)
		}
		w.Write(append(b, "</XRD>\n"...))
	}
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		ln.Close()
	}
	s.listeners = nil
}

// Addrs returns the addresses listened on (after Start).
func (s *Server) Addrs() Addrs { return s.addrs }

// Connections returns the number of open client connections (TCP,
// WebSocket and BOSH sessions).
func (s *Server) Connections() int { return s.c2s.Connections() }

// Store returns the storage backend.
func (s *Server) Store() storage.Backend { return s.store }

// Router returns the router (for tests and admin).
func (s *Server) Router() *router.Router { return s.router }

// Hooks returns the hooks (for tests).
func (s *Server) Hooks() *module.Hooks { return s.hooks }

// TLSConfig returns the server's TLS configuration.
func (s *Server) TLSConfig() *tls.Config { return s.tls }

// Shutdown stops the server: it stops accepting, closes every stream with
// <system-shutdown/>, stops the modules and closes storage.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.stopAdmin()
	s.closeListeners()
	err := s.c2s.Shutdown(ctx)
	if s.http != nil {
		if herr := s.http.Shutdown(ctx); !errors.Is(herr, net.ErrClosed) {
			err = errors.Join(err, herr)
		}
	}
	s.wg.Wait()
	s.cancel()
	s.stopModules()
	return errors.Join(err, s.store.Close())
}

func (s *Server) stopModules() {
	for i := len(s.modules) - 1; i >= 0; i-- {
		m := s.modules[i]
		s.hooks.RemoveOwner(m.name)
		if err := m.mod.Stop(); err != nil {
			s.log.Error("stopping module", "module", m.name, "error", err)
		}
	}
	s.modules = nil
}

// reservedFiles are the open files kept for other uses than client
// connections: listeners, the database and its journal, certificates.
const reservedFiles = 64

// raiseFileLimit raises the soft limit of open files to the hard limit
// and logs how many connections that allows.
func raiseFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("could not read the open files limit", "error", err)
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("could not raise the open files limit", "error", err)
		}
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	// RLIM_INFINITY is the largest uint64.
	log.Info("open files limit", "limit", lim.Cur, "connections", max(int64(min(lim.Cur, math.MaxInt64))-reservedFiles, 0))
}
