// Package csi implements Client State Indication (XEP-0352,
// urn:xmpp:csi:0): a client tells the server when its user is not looking
// (<inactive/>) and when they are back (<active/>), and while the client
// is inactive the server holds back what can wait — presence updates,
// chat states, receipts and markers — and delivers at once what cannot,
// flushing before it what the same sender queued (classify.go, queue.go).
package csi

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NS is the namespace of XEP-0352 (§4.1).
const NS = "urn:xmpp:csi:0"

// outgoingPriority puts the module's Outgoing hook before any other, so
// that what it holds back is seen by the others (stream management's
// counting, for instance) only when it is really written.
const outgoingPriority = 1000

// Chat-state policies (Config.ChatStates).
const (
	ChatStatesLatest = "latest"
	ChatStatesDrop   = "drop"
)

// Config configures the module.
type Config struct {
	MaxQueue       int      `toml:"max_queue" comment:"Stanzas held back for one inactive client; one more and everything held is delivered at once (as Prosody's mod_csi_simple does)."`
	ChatStates     string   `toml:"chat_states" comment:"Chat-state notifications without a body to an inactive client: \"latest\" keeps the latest per contact (delivered when the client becomes active), \"drop\" discards them (XEP-0352 §3.2)."`
	UrgentPayloads []string `toml:"urgent_payloads" comment:"Namespaces of message payloads delivered at once to an inactive client, besides bodies, subjects, invitations, errors and the <store/> hint: encryption, calls, archive results."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.MaxQueue < 1 {
		errs = append(errs, errors.New("max_queue: must be at least 1"))
	}
	if c.ChatStates != ChatStatesLatest && c.ChatStates != ChatStatesDrop {
		errs = append(errs, errors.New("chat_states: must be \"latest\" or \"drop\""))
	}
	return errs
}

// DefaultUrgentPayloads are the namespaces of Config.UrgentPayloads by
// default.
var DefaultUrgentPayloads = []string{
	"urn:xmpp:eme:0",                 // XEP-0380 explicit encryption
	"eu.siacs.conversations.axolotl", // XEP-0384 OMEMO (legacy)
	"urn:xmpp:omemo:2",               // XEP-0384 OMEMO
	"urn:xmpp:openpgp:0",             // XEP-0373 OpenPGP
	"jabber:x:encrypted",             // XEP-0027 legacy OpenPGP
	"urn:xmpp:jingle-message:0",      // XEP-0353 call invitations
	"urn:xmpp:jingle-message:1",
	// XEP-0313 results: the answer to the client's own query (the IQ
	// result with <fin/> would otherwise overtake them).
	"urn:xmpp:mam:2",
	"urn:xmpp:mam:1",
	// Inbox results and entry changes: the answers to the client's own
	// requests (the IQ result would otherwise overtake them).
	"erlang-solutions.com:xmpp:inbox:0",
	"erlang-solutions.com:xmpp:inbox:0#conversation",
}

func init() {
	module.Register(module.Factory{
		Name:             "csi",
		Doc:              "Client State Indication (XEP-0352): less traffic to inactive clients.",
		EnabledByDefault: true,
		Config: func() any {
			return &Config{MaxQueue: 256, ChatStates: ChatStatesLatest, UrgentPayloads: append([]string(nil), DefaultUrgentPayloads...)}
		},
		New: func(cfg any) (module.Module, error) { return newCSI(*cfg.(*Config)), nil },
	})
}

// CSI is the module.
type CSI struct {
	cfg    Config
	urgent map[string]bool // Config.UrgentPayloads
	log    *slog.Logger
	route  func(context.Context, *stanza.Stanza) // the router's, for held messages of ended sessions
}

var (
	_ module.Module    = (*CSI)(nil)
	_ module.Validator = (*Config)(nil)
)

func newCSI(cfg Config) *CSI {
	c := &CSI{cfg: cfg, urgent: map[string]bool{}, log: slog.New(slog.DiscardHandler)}
	for _, ns := range cfg.UrgentPayloads {
		c.urgent[ns] = true
	}
	return c
}

// stateKey holds a session's *state (Session.SetValue), created at its
// first <inactive/>.
type stateKey struct{}

func stateOf(s module.Session) *state {
	st, _ := s.Value(stateKey{}).(*state)
	return st
}

// Start implements module.Module.
func (c *CSI) Start(_ context.Context, env *module.Env) error {
	c.log = env.Logger
	c.route = env.Host.Route
	// §4.1: the feature is offered after authentication.
	env.Hooks.StreamFeatures.Add(env.Owner, 0, func() *xmlstream.Element { return xmlstream.NewElement("csi", NS) })
	env.Hooks.Outgoing.Add(env.Owner, outgoingPriority, c.outgoing)
	env.Hooks.SessionClosed.Add(env.Owner, 0, c.closed)
	// §5.2: a resumed stream starts active; what was held goes out.
	env.Hooks.SessionResumed.Add(env.Owner, 0, func(ctx context.Context, s module.Session) { c.active(ctx, s, nil) })
	return errors.Join(
		env.Hooks.HandleNonza(env.Owner, "inactive", NS, c.inactive),
		env.Hooks.HandleNonza(env.Owner, "active", NS, c.active),
	)
}

// Stop implements module.Module: the state lives in the sessions, which
// the server closes before it stops the modules.
func (c *CSI) Stop() error { return nil }

// inactive handles <inactive/> (§4.2): there is no reply.
func (c *CSI) inactive(_ context.Context, s module.Session, _ *xmlstream.Element) {
	st := stateOf(s)
	if st == nil {
		// Nonzas are read on the session's one reader goroutine: no
		// other <inactive/> can race to create the state.
		st = newState()
		s.SetValue(stateKey{}, st)
	}
	st.mu.Lock()
	st.inactive = true
	st.mu.Unlock()
}

// active handles <active/> (§4.2): everything held back is delivered, in
// order, before the handler returns — so before the server reads the
// client's next stanza (§5.1, in-order processing).
func (c *CSI) active(_ context.Context, s module.Session, _ *xmlstream.Element) {
	st := stateOf(s)
	if st == nil {
		return
	}
	st.mu.Lock()
	st.inactive = false
	st.releaseAll()
	if st.flushing {
		// Another goroutine is delivering (an urgent stanza came): it
		// delivers what was just released too. Wait for it to finish.
		for st.flushing {
			st.idle.Wait()
		}
		st.mu.Unlock()
		return
	}
	if st.released == 0 {
		st.mu.Unlock()
		return
	}
	st.flushing = true
	st.mu.Unlock()
	st.drain(s)
}

// closed handles a session that ends with stanzas held back: they never
// left the server, so its messages are routed again to the account, as
// stream management does with the ones a client did not acknowledge
// (XEP-0198 §4) — another resource or offline storage gets them
// (receipts, markers, reactions). Presence and chat states, which a
// newer one replaces anyway, end with the session.
func (c *CSI) closed(ctx context.Context, s module.Session) {
	st := stateOf(s)
	if st == nil {
		return
	}
	st.mu.Lock()
	queue := st.queue
	st.closed = true
	st.queue = nil
	clear(st.keys)
	st.held, st.released = 0, 0
	st.mu.Unlock()
	bare := s.JID().Bare()
	n := 0
	for _, e := range queue {
		if e.el == nil || e.el.Name != "message" || strings.HasPrefix(e.key, "c ") {
			continue
		}
		if module.RerouteMessage(ctx, c.route, bare, bare.Domain(), e.el, e.at) {
			n++
		}
	}
	if n > 0 {
		c.log.Debug("session closed with messages held back: routed again", "jid", s.JID().String(), "messages", n)
	}
}

// outgoing is the Outgoing hook: it lets everything through to an active
// session, and decides for an inactive one (classify): what can wait is
// held, what cannot is delivered after what its sender had queued.
func (c *CSI) outgoing(s module.Session, el *xmlstream.Element) module.Result {
	st := stateOf(s)
	if st == nil {
		return module.Continue
	}
	st.mu.Lock()
	if el == st.through {
		// The drain is delivering it.
		st.through = nil
		st.mu.Unlock()
		return module.Continue
	}
	if st.closed || !st.inactive && !st.flushing {
		st.mu.Unlock()
		return module.Continue
	}
	cl := c.classify(el)
	switch {
	case !st.inactive:
		// Active, and a drain is under way: after what it delivers.
		st.appendReleased(el, cl.peer)
	case cl.urgent:
		st.releasePeer(cl.peer)
		if st.released == 0 && !st.flushing {
			// Nothing to deliver first: at once. (During a drain the
			// drain may be delivering this sender's stanzas: after them.)
			st.mu.Unlock()
			return module.Continue
		}
		st.appendReleased(el, cl.peer)
	case cl.chatState && c.cfg.ChatStates == ChatStatesDrop:
		st.mu.Unlock()
		return module.Stop
	default:
		st.hold(el, cl.peer, cl.key)
		if st.held > c.cfg.MaxQueue {
			st.releaseAll() // overflow: everything goes
		}
	}
	if st.flushing || st.released == 0 {
		st.mu.Unlock()
		return module.Stop
	}
	st.flushing = true
	st.mu.Unlock()
	st.drain(s)
	return module.Stop
}
