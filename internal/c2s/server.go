// Package c2s serves client connections (RFC 6120): the listeners, the
// stream negotiation (STARTTLS, SASL, resource binding) and the session of
// a bound client, which reads stanzas, stamps them and hands them to the
// router, and writes what the router delivers to it.
//
// One goroutine reads each connection and handles every stanza it reads to
// completion, routing included. Writing never blocks the goroutine that
// delivers: stanzas are appended to the session's output buffer, and a
// flusher goroutine, started when there is something to write and ending
// when there is not, writes the buffer in as few calls as possible.
package c2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/router"
	"github.com/meerkat-xmpp/meerkat/internal/sasl"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Config holds the client connection settings.
type Config struct {
	// TLS is the server's TLS configuration (certificate included).
	TLS *tls.Config
	// RequireTLS makes STARTTLS mandatory before authentication
	// (RFC 6120 §5.3.1).
	RequireTLS bool
	// Limits bound the XML a client may send (RFC 6120 §13.12).
	Limits xmlstream.Limits
	// HandshakeTimeout bounds the time from accepting a connection to a
	// bound resource.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a bound session that sent nothing for that long
	// (0: never; the ping module usually notices dead clients first).
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
	// MaxAuthFailures is the number of failed SASL attempts after which the
	// stream is closed (RFC 6120 §6.4.5).
	MaxAuthFailures int
	// MaxOutboundBytes bounds the data queued for a client that does not
	// read; beyond it the session is closed with <policy-violation/>.
	// What a resumption sends again (XEP-0198 §5) does not count.
	MaxOutboundBytes int
	// RateBytesPerSecond limits what a client may send (0: no limit); a
	// client above it is read more slowly, as ejabberd's shapers do.
	RateBytesPerSecond int
	// ReadBufferSize is the size of each connection's read buffer.
	ReadBufferSize int
	// CloseGrace is how long the server waits for the client's closing
	// tag after sending its own (RFC 6120 §4.4).
	CloseGrace time.Duration
	// SM configures stream management (XEP-0198).
	SM SMConfig
}

// SMConfig configures stream management (XEP-0198).
type SMConfig struct {
	// MaxUnacked bounds the stanzas kept until the client acknowledges
	// them. When a stanza would go beyond, the session is closed with the
	// stream error <resource-constraint/> (RFC 6120 §4.9.3.17) and the
	// text "too many unacknowledged stanzas"; the queue, and what is sent
	// to the resource afterwards, is rerouted as for any session that ends
	// without resumption (the stanza that overflowed included).
	MaxUnacked int
	// AckEvery makes the server ask for an acknowledgement (<r/>) after
	// that many stanzas…
	AckEvery int
	// AckInterval …or when stanzas have waited that long.
	AckInterval time.Duration
	// ResumeTimeout is how long a session whose connection broke waits to
	// be resumed (XEP-0198 §5); a client may ask for less, or for more up
	// to MaxResumeTimeout.
	ResumeTimeout    time.Duration
	MaxResumeTimeout time.Duration
	// RememberEnded is how long the count ('h') of a resumable session
	// that ended is kept, for the <failed h='…'/> answer to a late
	// resumption (§5), and MaxRemembered how many are kept at most (an
	// hour and 100,000 when zero; negative: none).
	RememberEnded time.Duration
	MaxRemembered int
	// CounterStart is where the stanza counters start instead of 0, for
	// tests of their wrap-around at 2^32 (§4); never set in production.
	CounterStart uint32
}

func (c *Config) setDefaults() {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 3
	}
	if c.MaxOutboundBytes <= 0 {
		c.MaxOutboundBytes = 1 << 20
	}
	if c.ReadBufferSize <= 0 {
		// Small: every connection holds one for its whole life, and TLS
		// hands over at most what it has decrypted anyway (a copy, not a
		// system call, per read).
		c.ReadBufferSize = 1024
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = 2 * time.Second
	}
	if c.SM.MaxUnacked <= 0 {
		c.SM.MaxUnacked = 5000
	}
	if c.SM.AckEvery <= 0 {
		c.SM.AckEvery = 5
	}
	if c.SM.AckInterval <= 0 {
		c.SM.AckInterval = 30 * time.Second
	}
	if c.SM.ResumeTimeout <= 0 {
		c.SM.ResumeTimeout = 5 * time.Minute
	}
	if c.SM.MaxResumeTimeout < c.SM.ResumeTimeout {
		c.SM.MaxResumeTimeout = max(time.Hour, c.SM.ResumeTimeout)
	}
	if c.SM.RememberEnded <= 0 {
		c.SM.RememberEnded = max(time.Hour, c.SM.MaxResumeTimeout)
	}
	if c.SM.MaxRemembered == 0 {
		c.SM.MaxRemembered = 100000
	}
}

// Server accepts client connections and runs their sessions.
type Server struct {
	cfg      Config
	router   *router.Router
	hooks    *module.Hooks
	accounts storage.Accounts
	sasl     map[string]*sasl.Server // per served domain
	log      *slog.Logger
	leaf     *x509.Certificate // for tls-server-end-point channel binding

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*Session]struct{}
	resumable map[string]*Session // by stream management id
	ended     *endedSessions      // counts of resumable sessions that ended
	bosh      boshSessions
	closing   bool
	wg        sync.WaitGroup
}

// NewServer returns a c2s server.
// auth holds the SASL server of each served domain.
func NewServer(cfg Config, r *router.Router, hooks *module.Hooks, accounts storage.Accounts, auth map[string]*sasl.Server, log *slog.Logger) (*Server, error) {
	cfg.setDefaults()
	s := &Server{
		cfg:       cfg,
		router:    r,
		hooks:     hooks,
		accounts:  accounts,
		sasl:      auth,
		log:       log,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*Session]struct{}{},
		resumable: map[string]*Session{},
		ended:     newEndedSessions(cfg.SM.RememberEnded, cfg.SM.MaxRemembered),
	}
	if cfg.TLS != nil && len(cfg.TLS.Certificates) > 0 {
		cert := cfg.TLS.Certificates[0]
		leaf := cert.Leaf
		if leaf == nil && len(cert.Certificate) > 0 {
			var err error
			if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, err
			}
		}
		s.leaf = leaf
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Serve accepts connections on ln until it is closed. With directTLS the
// TLS handshake comes first (XEP-0368); otherwise clients use STARTTLS.
func (s *Server) Serve(ln net.Listener, directTLS bool) error {
	if directTLS && s.cfg.TLS == nil {
		return errors.New("c2s: direct TLS without a TLS configuration")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			delete(s.listeners, ln)
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait and retry.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "error", err, "in", backoff)
				time.Sleep(backoff)
				s.mu.Lock()
				s.listeners[ln] = struct{}{}
				s.mu.Unlock()
				continue
			}
			return err
		}
		backoff = 0
		go s.serveSession(newSession(s, newTCPTransport(conn, directTLS, &s.cfg)))
	}
}

// serveSession runs a session on the calling goroutine, tracked for
// Shutdown.
func (s *Server) serveSession(sess *Session) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sess.tr.close()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	sess.run(s.ctx)
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown stops accepting, closes every stream with <system-shutdown/>
// and waits for the sessions to end, or for ctx to expire.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	sessions := make([]*Session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.Close(stanza.NewStreamError(stanza.StreamSystemShutdown, ""))
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		for _, sess := range sessions {
			sess.mu.Lock()
			tr := sess.tr
			sess.mu.Unlock()
			tr.close()
		}
		return ctx.Err()
	}
}

// Connections returns the number of open client connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
