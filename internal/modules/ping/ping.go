// Package ping implements XMPP Ping (XEP-0199) both ways: it answers
// pings addressed to the server or to the account, and it pings clients
// that have been silent for a while, closing those that do not answer.
package ping

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NS is the namespace of XEP-0199.
const NS = "urn:xmpp:ping"

// Config configures the module.
type Config struct {
	Interval config.Duration `toml:"interval" comment:"Ping clients silent for this long (0s: never)."`
	Timeout  config.Duration `toml:"timeout" comment:"Close sessions that do not answer a ping within this time."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.Interval.Duration < 0 {
		errs = append(errs, errors.New("interval: must not be negative"))
	}
	if c.Timeout.Duration <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errs
}

func init() {
	module.Register(module.Factory{
		Name:             "ping",
		Doc:              "XMPP Ping (XEP-0199), answered and sent to idle clients.",
		EnabledByDefault: true,
		Config: func() any {
			return &Config{Interval: config.Duration{Duration: 2 * time.Minute}, Timeout: config.Duration{Duration: 32 * time.Second}}
		},
		New: func(cfg any) (module.Module, error) { return &Ping{cfg: *cfg.(*Config)}, nil },
	})
}

// Ping is the module.
type Ping struct {
	cfg    Config
	host   module.Host
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	waiting map[module.Session]bool // pinged, answer pending
}

var _ module.Module = (*Ping)(nil)

// Start implements module.Module.
func (p *Ping) Start(ctx context.Context, env *module.Env) error {
	p.host, p.log = env.Host, env.Logger
	p.waiting = map[module.Session]bool{}
	env.Hooks.ServerFeatures.Add(env.Owner, 0, NS)
	env.Hooks.AccountFeatures.Add(env.Owner, 0, NS)
	pong := func(context.Context, *module.IQ) (*xmlstream.Element, error) { return nil, nil }
	if err := errors.Join(
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetHost, NS, pong),
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetSelf, NS, pong),
	); err != nil {
		return err
	}
	env.Hooks.SessionClosed.Add(env.Owner, 0, func(_ context.Context, s module.Session) {
		p.mu.Lock()
		delete(p.waiting, s)
		p.mu.Unlock()
	})
	p.done = make(chan struct{})
	if p.cfg.Interval.Duration <= 0 {
		close(p.done)
		return nil
	}
	ctx, p.cancel = context.WithCancel(ctx)
	go p.loop(ctx)
	return nil
}

// Stop implements module.Module; it ends the pinging goroutine.
func (p *Ping) Stop() error {
	if p.cancel != nil {
		p.cancel()
	}
	<-p.done
	return nil
}

// loop checks the sessions a few times per interval; it ends with ctx.
func (p *Ping) loop(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(max(p.cfg.Interval.Duration/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			p.check(ctx, now)
		}
	}
}

// check pings the sessions silent for longer than the interval.
func (p *Ping) check(ctx context.Context, now time.Time) {
	var idle []module.Session
	p.host.RangeSessions(func(s module.Session) bool {
		if now.Sub(s.LastActivity()) >= p.cfg.Interval.Duration {
			idle = append(idle, s)
		}
		return true
	})
	for _, s := range idle {
		p.mu.Lock()
		if p.waiting[s] {
			p.mu.Unlock()
			continue
		}
		p.waiting[s] = true
		p.mu.Unlock()
		p.ping(ctx, s)
	}
}

// ping sends one ping (XEP-0199 §4.1); any answer, even an error, shows
// the client is alive.
func (p *Ping) ping(ctx context.Context, s module.Session) {
	domain, err := jid.Parse(s.JID().Domain())
	if err != nil {
		return
	}
	iq := stanza.NewIQ(stanza.IQGet, "", s.JID(), domain, xmlstream.NewElement("ping", NS))
	p.host.SendIQ(ctx, iq, p.cfg.Timeout.Duration, func(answer *stanza.Stanza) {
		p.mu.Lock()
		delete(p.waiting, s)
		p.mu.Unlock()
		if answer == nil {
			p.log.Debug("client did not answer a ping", "jid", s.JID().String())
			s.Close(stanza.NewStreamError(stanza.StreamConnectionTimeout, "no answer to ping"))
		}
	})
}
