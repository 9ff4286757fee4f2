// Package carbons implements Message Carbons (XEP-0280, urn:xmpp:carbons:2):
// a client that enables carbons gets a copy of the messages its account's
// other resources send (<sent/>, §8) and of the messages addressed to the
// account that it did not get itself (<received/>, §7), each wrapped in a
// XEP-0297 <forwarded/>. Which messages are copied follows the rules of
// §6.1 (rules.go).
package carbons

import (
	"context"
	"errors"
	"log/slog"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces of XEP-0280 and the protocols it wraps with.
const (
	// NS is the namespace of XEP-0280 (§3).
	NS = "urn:xmpp:carbons:2"
	// NSRules is the feature that promises the rules of §6.1 (§6.2).
	NSRules = "urn:xmpp:carbons:rules:0"
	// NSForward is XEP-0297 Stanza Forwarding.
	NSForward = stanza.NSForward
)

// Hook priorities: among the protocol handlers (docs/ARCHITECTURE.md), so
// after the filters (blocking, 100): a message the blocking module refuses
// is not copied either. The Offline hook runs before the offline module's
// (0), which stops the chain when it stores the message.
const (
	sendPriority      = 10
	deliveredPriority = 0
	offlinePriority   = 10
)

// Config configures the module.
type Config struct {
	ChatStates bool `toml:"chat_states" comment:"Copy messages that carry only chat states (XEP-0085: typing notifications), as the rules of XEP-0280 §6.1 say. false saves traffic to the user's other devices; urn:xmpp:carbons:rules:0 is then not advertised."`
}

func init() {
	module.Register(module.Factory{
		Name:             "carbons",
		Doc:              "Message Carbons (XEP-0280).",
		EnabledByDefault: true,
		Config:           func() any { return &Config{ChatStates: true} },
		New:              func(cfg any) (module.Module, error) { return &Carbons{cfg: *cfg.(*Config)}, nil },
	})
}

// Carbons is the module.
type Carbons struct {
	cfg  Config
	host module.Host
	log  *slog.Logger
}

var _ module.Module = (*Carbons)(nil)

// enabledKey marks, with Session.SetValue, a session that enabled
// carbons (§4); the mark goes with the session.
type enabledKey struct{}

// Start implements module.Module.
func (c *Carbons) Start(_ context.Context, env *module.Env) error {
	c.host, c.log = env.Host, env.Logger
	// §3: the client asks its own server (the domain) for the feature.
	env.Hooks.ServerFeatures.Add(env.Owner, 0, NS)
	if c.cfg.ChatStates {
		env.Hooks.ServerFeatures.Add(env.Owner, 0, NSRules)
	}
	env.Hooks.UserSend.Add(env.Owner, sendPriority, c.sent)
	env.Hooks.MessageDelivered.Add(env.Owner, deliveredPriority, c.delivered)
	env.Hooks.Offline.Add(env.Owner, offlinePriority, c.offline)
	return errors.Join(
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetSelf, NS, c.toggle),
		// §4.1, §5.1: enabling or disabling for another account is not
		// allowed (the account would otherwise answer service-unavailable).
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetBare, NS, func(context.Context, *module.IQ) (*xmlstream.Element, error) {
			return nil, stanza.NewError(stanza.NotAllowed, "carbons are enabled by the client itself")
		}),
	)
}

// Stop implements module.Module.
func (c *Carbons) Stop() error { return nil }

// toggle handles <enable/> (§4) and <disable/> (§5). Repeating either is
// not an error (§10.1): the answer is a result.
func (c *Carbons) toggle(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if iq.Session == nil {
		// §4.1: "not-allowed if the request is from a client that is not
		// hosted on this server".
		return nil, stanza.NewError(stanza.NotAllowed, "")
	}
	switch iq.Payload().Name {
	case "enable":
		iq.Session.SetValue(enabledKey{}, true)
	case "disable":
		iq.Session.SetValue(enabledKey{}, nil)
	default:
		return nil, stanza.NewError(stanza.BadRequest, "expected <enable/> or <disable/>")
	}
	return nil, nil
}

func enabled(s module.Session) bool {
	on, _ := s.Value(enabledKey{}).(bool)
	return on
}

// sent copies a message a client sends to the account's other
// carbons-enabled resources (§8), whether or not the sender enabled
// carbons itself. Messages to the account itself are copied once they
// are delivered (delivered, selfCopies).
func (c *Carbons) sent(_ context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind != stanza.KindMessage || ev.Session == nil || st.To.IsZero() || st.To.Bare() == ev.User {
		return module.Continue
	}
	if !Eligible(st, Sent, c.cfg.ChatStates) {
		return module.Continue
	}
	var w *xmlstream.Element
	for _, s := range c.host.Sessions(ev.User) {
		// §8: "The sending server SHOULD NOT send a forwarded copy to the
		// sending full JID".
		if s == ev.Session || !enabled(s) {
			continue
		}
		if w == nil {
			w = wrap("sent", ev.User, st)
		}
		deliver(s, w)
	}
	return module.Continue
}

// delivered copies a message delivered to some of the account's sessions
// to its carbons-enabled sessions that did not get it (§7: "to each
// Carbons-enabled resource … that did not receive it under the RFC 6121
// delivery rules").
func (c *Carbons) delivered(ctx context.Context, st *stanza.Stanza, user jid.JID, to []module.Session) {
	if _, again := module.Rerouted(ctx); again {
		return // copied when it was first delivered
	}
	if st.From.Bare() == user && st.From.Resource() != "" {
		c.selfCopies(st, user, to)
		return
	}
	c.copyReceived(st, user, to)
}

// offline copies a message that no session takes under RFC 6121 (the
// account's resources all have a negative priority, or none is available)
// to the carbons-enabled sessions (§7: none of them received it). The
// offline module, after this hook, stores it as usual.
func (c *Carbons) offline(ctx context.Context, ev *module.StanzaEvent) module.Result {
	if _, again := module.Rerouted(ctx); again {
		return module.Continue // copied when it was first delivered
	}
	st := ev.Stanza
	if st.Kind == stanza.KindMessage && !(st.From.Bare() == ev.User && st.From.Resource() != "") {
		c.copyReceived(st, ev.User, nil)
	}
	return module.Continue
}

func (c *Carbons) copyReceived(st *stanza.Stanza, user jid.JID, to []module.Session) {
	if !Eligible(st, Received, c.cfg.ChatStates) {
		return
	}
	var w *xmlstream.Element
	for _, s := range c.host.Sessions(user) {
		if !enabled(s) || got(to, s) {
			continue
		}
		if w == nil {
			w = wrap("received", user, st)
		}
		deliver(s, w)
	}
}

// selfCopies handles a message one of the account's clients sent to the
// account itself (its bare JID, or another of its resources), which the
// sent hook left alone: the carbons-enabled resources that neither sent
// nor received it get one <sent/> copy. A <received/> copy as well would
// be the same message twice, and the sender has it already.
func (c *Carbons) selfCopies(st *stanza.Stanza, user jid.JID, to []module.Session) {
	if !Eligible(st, Sent, c.cfg.ChatStates) {
		return
	}
	var w *xmlstream.Element
	for _, s := range c.host.Sessions(user) {
		if !enabled(s) || got(to, s) || s.JID() == st.From {
			continue
		}
		if w == nil {
			w = wrap("sent", user, st)
		}
		deliver(s, w)
	}
}

func got(to []module.Session, s module.Session) bool {
	for _, o := range to {
		if o == s {
			return true
		}
	}
	return false
}

// wrap builds the copy (§7, §8): a message from the account's bare JID,
// of the original's type, holding <sent/> or <received/> with the
// original in a <forwarded/> (XEP-0297 §3, namespace preserved). The 'to'
// is set per session by deliver. No <delay/> is added: carbons are
// delivered at once, as in the examples of §7 and §8. A message sent
// without 'to' (to the account itself, RFC 6120 §10.3.1) is forwarded
// with its 'to' filled in.
func wrap(dir string, user jid.JID, st *stanza.Stanza) *xmlstream.Element {
	orig := st.El
	if orig.Attr("to") == "" && !st.To.IsZero() {
		orig = orig.ShallowCopy().SetAttr("to", st.To.String())
	}
	w := xmlstream.NewElement("message", stanza.NSClient).SetAttr("from", user.String())
	if st.Type != stanza.MessageNormal {
		// "The wrapping message SHOULD maintain the same 'type'".
		w.SetAttr("type", st.Type)
	}
	return w.AddChild(xmlstream.NewElement(dir, NS).AddChild(
		xmlstream.NewElement("forwarded", NSForward).AddChild(orig)))
}

// deliver sends the copy w to one session, addressed to its full JID
// (§7: "the 'to' attribute MUST be the full JID of the resource receiving
// the copy"). The copies share everything but the attribute list.
func deliver(s module.Session, w *xmlstream.Element) {
	s.Deliver(w.ShallowCopy().SetAttr("to", s.JID().String()))
}
