// Package presence implements the exchange of presence information, RFC
// 6121 §4: broadcast of initial, subsequent and unavailable presence to
// the contacts subscribed to the user (§4.2, §4.4, §4.5), presence probes
// sent at initial presence and answered for local accounts (§4.3),
// directed presence and its end (§4.6), and unavailable presence generated
// when a session ends without saying so (§4.5.2).
//
// The router delivers presence addressed to an account (RFC 6121 §8.5)
// and reflects the user's broadcast presence to the user's own resources;
// subscriptions (§3) are the roster module's.
package presence

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func init() {
	module.Register(module.Factory{
		Name:             "presence",
		Doc:              "Presence broadcast, probes and directed presence (RFC 6121 §4).",
		EnabledByDefault: true,
		New:              func(any) (module.Module, error) { return &Presence{}, nil },
	})
}

// Store is the storage the module reads: the rosters.
type Store interface {
	RosterItem(ctx context.Context, user, contact jid.JID) (storage.RosterItem, error)
	RosterContacts(ctx context.Context, user jid.JID, subs ...storage.Subscription) ([]jid.JID, error)
}

// Presence is the module.
type Presence struct {
	host  module.Host
	store Store
	log   *slog.Logger
}

var _ module.Module = (*Presence)(nil)

// hookPriority is that of a protocol handler (docs/ARCHITECTURE.md).
const hookPriority = 50

// Start implements module.Module.
func (p *Presence) Start(_ context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return errors.New("presence: the storage backend has no roster store")
	}
	p.host, p.store, p.log = env.Host, st, env.Logger
	h, owner := env.Hooks, env.Owner
	h.SessionOpened.Add(owner, hookPriority, func(_ context.Context, s module.Session) {
		s.SetValue(stateKey{}, &sessionState{})
	})
	h.UserSend.Add(owner, hookPriority, p.outbound)
	h.UserReceive.Add(owner, hookPriority, p.inbound)
	h.InitialPresence.Add(owner, hookPriority, p.initialPresence)
	h.SessionClosed.Add(owner, hookPriority, p.sessionClosed)
	return nil
}

// Stop implements module.Module.
func (p *Presence) Stop() error { return nil }

// stateKey is the session value holding a *sessionState.
type stateKey struct{}

// sessionState is what the module tracks per session.
type sessionState struct {
	mu sync.Mutex
	// broadcast: the session's available presence went to the contacts
	// (it is in a presence session, §4.2); they are owed unavailable.
	broadcast bool
	// directed are the entities the session sent directed available
	// presence to, and not unavailable since (§4.6.1).
	directed map[jid.JID]bool
}

func stateOf(s module.Session) *sessionState {
	st, _ := s.Value(stateKey{}).(*sessionState)
	return st
}

// subscribers returns the contacts subscribed to user's presence (from,
// both).
func (p *Presence) subscribers(ctx context.Context, user jid.JID) []jid.JID {
	subs, err := p.store.RosterContacts(ctx, user, storage.SubFrom, storage.SubBoth)
	if err != nil {
		p.log.Error("loading subscribers", "user", user.String(), "error", err)
	}
	return subs
}

// sendTo routes a copy of el addressed to 'to'.
func (p *Presence) sendTo(ctx context.Context, el *xmlstream.Element, to jid.JID) {
	c := el.ShallowCopy()
	c.SetAttr("to", to.String())
	p.host.Send(ctx, c)
}

// broadcast sends el to every subscriber of user, and returns them. Local
// subscribers without a session are skipped: presence for an account
// without resources is dropped anyway (RFC 6121 §8.5.2.2.2).
func (p *Presence) broadcast(ctx context.Context, user jid.JID, el *xmlstream.Element) []jid.JID {
	subs := p.subscribers(ctx, user)
	for _, c := range subs {
		if c.Local() != "" && p.host.IsLocal(c.Domain()) && len(p.host.Sessions(c)) == 0 {
			continue
		}
		p.sendTo(ctx, el, c)
	}
	return subs
}

// endDirected sends el (unavailable presence) to the entities of
// directed, except those that got it as subscribers (by bare JID).
func (p *Presence) endDirected(ctx context.Context, el *xmlstream.Element, directed map[jid.JID]bool, subscribers []jid.JID) {
	targets := make([]jid.JID, 0, len(directed))
	for t := range directed {
		if !slices.Contains(subscribers, t.Bare()) {
			targets = append(targets, t)
		}
	}
	slices.SortFunc(targets, jid.JID.Compare)
	for _, t := range targets {
		p.sendTo(ctx, el, t)
	}
}

// outbound handles presence sent by a local client.
func (p *Presence) outbound(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st, s := ev.Stanza, ev.Session
	if st.Kind != stanza.KindPresence || s == nil {
		return module.Continue
	}
	ss := stateOf(s)
	if ss == nil {
		return module.Continue
	}
	user := ev.User
	switch {
	case st.To.IsZero() && st.Type == stanza.PresenceAvailable:
		// §4.2.2, §4.4.2: initial and subsequent presence go to the
		// subscribers (the router sends them to the user's resources).
		ss.mu.Lock()
		ss.broadcast = true
		ss.mu.Unlock()
		p.broadcast(ctx, user, st.El)
	case st.To.IsZero() && st.Type == stanza.PresenceUnavailable:
		// §4.5.2: to the subscribers, and §4.6.1 rule 2 to the entities
		// that got directed presence.
		ss.mu.Lock()
		was, directed := ss.broadcast, ss.directed
		ss.broadcast, ss.directed = false, nil
		ss.mu.Unlock()
		var subs []jid.JID
		if was {
			subs = p.broadcast(ctx, user, st.El)
		}
		p.endDirected(ctx, st.El, directed, subs)
	case !st.To.IsZero() && st.To.Bare() != user &&
		(st.Type == stanza.PresenceAvailable || st.Type == stanza.PresenceUnavailable):
		// §4.6.2: directed presence is routed as is and remembered until
		// directed unavailable presence or the end of the session.
		ss.mu.Lock()
		if st.Type == stanza.PresenceAvailable {
			if ss.directed == nil {
				ss.directed = map[jid.JID]bool{}
			}
			ss.directed[st.To] = true
		} else {
			delete(ss.directed, st.To)
		}
		ss.mu.Unlock()
	}
	return module.Continue
}

// inbound handles presence addressed to a local account.
func (p *Presence) inbound(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind != stanza.KindPresence {
		return module.Continue
	}
	switch st.Type {
	case stanza.PresenceProbe:
		// §4.3.2, §4.6.6: the server answers for the account.
		if !st.From.IsZero() {
			p.answerProbe(ctx, st.To, st.From, st.ID, false)
		}
		return module.Stop
	case stanza.PresenceError:
		// An error about presence the user sent (a subscription request
		// that could not be routed, §3.1.2, for instance) goes to the
		// available resources; it is never answered (RFC 6120 §8.3.1). To
		// a full JID, the router delivers it.
		if st.To.IsBare() {
			for _, s := range p.host.Sessions(ev.User) {
				if s.Available() {
					s.Deliver(st.El)
				}
			}
			return module.Stop
		}
	case stanza.PresenceUnavailable:
		// §4.6.1: an entity that sends unavailable presence leaves the
		// directed presence lists.
		for _, s := range p.host.Sessions(ev.User) {
			if st.To.IsBare() || s.JID() == st.To {
				if ss := stateOf(s); ss != nil {
					ss.mu.Lock()
					delete(ss.directed, st.From)
					ss.mu.Unlock()
				}
			}
		}
	}
	return module.Continue
}

// answerProbe answers a probe of contact (a local account's bare or full
// JID) from prober (§4.3.2): the last presence of each available resource
// when prober is subscribed, unavailable from the bare JID when none is
// available, unsubscribed when prober is not subscribed. A probe of a full
// JID gets the mere availability of that resource; one from an entity the
// resource sent directed presence to is answered the same way (§4.6.6).
// quiet leaves out the unavailable answers (for the server's own probes at
// initial presence, which need no news of contacts that are offline). An
// unavailable or unsubscribed answer mirrors the probe's id (§4.3.2.1).
func (p *Presence) answerProbe(ctx context.Context, contact, prober jid.JID, id string, quiet bool) {
	owner := contact.Bare()
	item, err := p.store.RosterItem(ctx, owner, prober.Bare())
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.log.Error("answering a probe", "contact", contact.String(), "prober", prober.String(), "error", err)
		return
	}
	// An entity is subscribed to its own presence (§4.2.2).
	authorized := err == nil && !item.Hidden && item.Subscription.HasFrom() || prober.Bare() == owner
	withID := func(el *xmlstream.Element) *xmlstream.Element {
		if id != "" {
			el.SetAttr("id", id)
		}
		return el
	}
	if !authorized {
		if !contact.IsBare() {
			if s := p.host.SessionOf(contact); s != nil && s.Available() && sentDirected(s, prober) {
				p.host.Send(ctx, stanza.NewPresence(stanza.PresenceAvailable, prober, contact))
				return
			}
		}
		// Rule 1: the prober is not subscribed.
		p.host.Send(ctx, withID(stanza.NewPresence(stanza.PresenceUnsubscribed, prober.Bare(), owner)))
		return
	}
	if !contact.IsBare() {
		if s := p.host.SessionOf(contact); s != nil && s.Available() {
			p.host.Send(ctx, stanza.NewPresence(stanza.PresenceAvailable, prober, contact))
		} else if !quiet {
			p.host.Send(ctx, withID(stanza.NewPresence(stanza.PresenceUnavailable, prober, contact)))
		}
		return
	}
	sent := false
	for _, s := range p.host.Sessions(owner) {
		if pres := s.Presence(); pres != nil && s.Available() {
			// Rule 4: the full XML of the last broadcast presence, its id
			// kept (§4.3.2.1).
			p.sendTo(ctx, pres, prober)
			sent = true
		}
	}
	if !sent && !quiet {
		// Rule 3.
		p.host.Send(ctx, withID(stanza.NewPresence(stanza.PresenceUnavailable, prober, owner)))
	}
}

// sentDirected reports whether s sent directed presence to prober (or to
// its bare JID) and has not ended it.
func sentDirected(s module.Session, prober jid.JID) bool {
	ss := stateOf(s)
	if ss == nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.directed[prober] || ss.directed[prober.Bare()]
}

// initialPresence probes the contacts the user is subscribed to (to,
// both) when a resource becomes available (§4.2.2, §4.3.1). A local
// contact needs no probe stanza (§4.3.1): the server answers at once, to
// the new resource only, with the presence of the contact's available
// resources.
func (p *Presence) initialPresence(ctx context.Context, s module.Session) {
	user := s.JID().Bare()
	contacts, err := p.store.RosterContacts(ctx, user, storage.SubTo, storage.SubBoth)
	if err != nil {
		p.log.Error("loading contacts to probe", "user", user.String(), "error", err)
		return
	}
	for _, c := range contacts {
		if !p.host.IsLocal(c.Domain()) {
			p.host.Send(ctx, stanza.NewPresence(stanza.PresenceProbe, c, user))
			continue
		}
		if c.Local() == "" || len(p.host.Sessions(c)) == 0 {
			continue
		}
		p.answerProbe(ctx, c, s.JID(), "", true)
	}
}

// sessionClosed ends the presence of a session that is gone (§4.5.2: the
// server MUST NOT depend on receiving unavailable presence): unavailable
// to the subscribers and the user's other available resources if it was
// available, and to the entities it sent directed presence to.
func (p *Presence) sessionClosed(ctx context.Context, s module.Session) {
	ss := stateOf(s)
	if ss == nil {
		return
	}
	ss.mu.Lock()
	was, directed := ss.broadcast || s.Presence() != nil, ss.directed
	ss.broadcast, ss.directed = false, nil
	ss.mu.Unlock()
	if o := p.host.SessionOf(s.JID()); o != nil && o != s && o.Available() {
		// Replaced by a new session with the same full JID (RFC 6120
		// §7.7.2.2), already available: its presence stands.
		return
	}
	user := s.JID().Bare()
	el := stanza.NewPresence(stanza.PresenceUnavailable, jid.JID{}, s.JID())
	var subs []jid.JID
	if was {
		subs = p.broadcast(ctx, user, el)
		for _, o := range p.host.Sessions(user) {
			if o != s && o.Available() {
				o.Deliver(el)
			}
		}
	}
	p.endDirected(ctx, el, directed, subs)
}
