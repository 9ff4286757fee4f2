// Package offline stores the messages sent to users who have no available
// resource and delivers them when the user comes back, following
// XEP-0160 (Best Practices for Handling Offline Messages), with a
// XEP-0203 <delay/> on each, the storage hints of XEP-0334, and without
// standalone chat-state notifications (XEP-0085 §5.8).
//
// Delivery is claim, deliver, delete (storage.OfflineStore): two resources
// coming online at once never get the same message, and a message is
// deleted only after it was handed to a session. A session that becomes
// available gets the stored messages before any live one (gate.go).
package offline

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Feature is the service discovery feature of XEP-0160 §4.
const Feature = "msgoffline"

// Namespaces the module reads.
const (
	NSDelay      = stanza.NSDelay      // XEP-0203
	NSHints      = stanza.NSHints      // XEP-0334
	NSChatStates = stanza.NSChatStates // XEP-0085
	NSEvent      = "jabber:x:event"    // XEP-0022, obsolete; ignored like chat states
)

// Overflow errors (config overflow_error).
const (
	OverflowServiceUnavailable = string(stanza.ServiceUnavailable)
	OverflowResourceConstraint = string(stanza.ResourceConstraint)
)

// staleClaim is how old a claim must be before another session may take
// the messages over: the claimer died between claim and delete (a
// crashed process; in-process failures release their claim at once).
const staleClaim = 5 * time.Minute

// Config configures the module.
type Config struct {
	MaxMessages   int    `toml:"max_messages" comment:"Messages stored per user; when full, senders get overflow_error (0: no limit)."`
	MaxBytes      int    `toml:"max_bytes" comment:"Total size of the messages stored per user, in bytes (0: no limit). All are delivered at once at login, so keep it well below c2s.max_outbound_bytes."`
	OverflowError string `toml:"overflow_error" comment:"Error for the sender when the user's storage is full: service-unavailable (as if there were no offline storage, XEP-0160 §2) or resource-constraint (type wait: try later)."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.MaxMessages < 0 {
		errs = append(errs, errors.New("max_messages: must not be negative"))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, errors.New("max_bytes: must not be negative"))
	}
	if c.OverflowError != OverflowServiceUnavailable && c.OverflowError != OverflowResourceConstraint {
		errs = append(errs, fmt.Errorf("overflow_error: %q is neither %s nor %s", c.OverflowError, OverflowServiceUnavailable, OverflowResourceConstraint))
	}
	return errs
}

func init() {
	module.Register(module.Factory{
		Name:             "offline",
		Doc:              "Offline messages (XEP-0160), delivered with a delay stamp (XEP-0203).",
		EnabledByDefault: true,
		Config: func() any {
			return &Config{MaxMessages: 1000, MaxBytes: 512 << 10, OverflowError: OverflowServiceUnavailable}
		},
		New: func(cfg any) (module.Module, error) { return &Offline{cfg: *cfg.(*Config)}, nil },
	})
}

// Store is the storage the module uses (storage.OfflineStore implements it).
type Store interface {
	PushOffline(ctx context.Context, user jid.JID, msg *storage.OfflineMessage, lim storage.OfflineLimits) error
	ClaimOffline(ctx context.Context, user jid.JID, claim string, staleBefore time.Time) ([]storage.OfflineMessage, error)
	DeleteClaimedOffline(ctx context.Context, user jid.JID, claim string) (int, error)
	DeleteClaimedOfflineThrough(ctx context.Context, user jid.JID, claim string, lastID int64) (int, error)
	ReleaseOffline(ctx context.Context, user jid.JID, claim string) error
	ReleaseAllOfflineClaims(ctx context.Context) error
}

// Offline is the module.
type Offline struct {
	cfg   Config
	store Store
	host  module.Host
	log   *slog.Logger

	claimPrefix string
	claimSeq    atomic.Uint64
	// locks serialize deliveries to one user (by hash), so that a message
	// delivered by storeMessage never overtakes older ones a login is
	// delivering, and order storing with opening a gate (gate.go).
	seed  maphash.Seed
	locks [64]sync.Mutex
}

var _ module.Module = (*Offline)(nil)

// Per-session state, kept with Session.SetValue (and gateKey, gate.go).
type (
	// priorityKey: the priority of the session's last available
	// broadcast presence, to see it become non-negative.
	priorityKey struct{}
)

// Start implements module.Module.
func (o *Offline) Start(ctx context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("offline: the storage backend %T does not store offline messages", env.Store)
	}
	o.store, o.host, o.log = st, env.Host, env.Logger
	var b [6]byte
	rand.Read(b[:])
	o.claimPrefix = hex.EncodeToString(b[:]) + "-"
	o.seed = maphash.MakeSeed()
	// No session exists yet, so a claim left in storage belongs to a
	// process that died while delivering: give those messages back.
	if err := o.store.ReleaseAllOfflineClaims(ctx); err != nil {
		return fmt.Errorf("offline: %w", err)
	}
	env.Hooks.ServerFeatures.Add(env.Owner, 0, Feature)
	env.Hooks.Offline.Add(env.Owner, 0, o.storeMessage)
	env.Hooks.InitialPresence.Add(env.Owner, 0, o.initialPresence)
	// It only watches the priority and never stops the stanza; it runs
	// before any hook that could stop one, since the gate of a session
	// that became eligible stays closed until it has run.
	env.Hooks.UserSend.Add(env.Owner, 1000, o.presenceChange)
	env.Hooks.SessionOpened.Add(env.Owner, 0, o.sessionOpened)
	env.Hooks.SessionClosed.Add(env.Owner, 0, o.sessionClosed)
	// After CSI's (1000), which holds back what can wait for an
	// inactive client and lets messages with a body through.
	env.Hooks.Outgoing.Add(env.Owner, 500, o.outgoing)
	return nil
}

// Stop implements module.Module.
func (o *Offline) Stop() error { return nil }

// storeMessage is the Offline hook: the router found no available
// resource with a non-negative priority (XEP-0160 §2, RFC 6121 §8.5.2.2).
func (o *Offline) storeMessage(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	switch Classify(st) {
	case Drop:
		return module.Stop
	case Refuse:
		return module.Continue // the router answers service-unavailable
	}
	stored := time.Now()
	if first, ok := module.Rerouted(ctx); ok {
		// Unacknowledged by a session that ended (XEP-0198 §4): the
		// <delay/> says when it first came, not when it was rerouted.
		stored = first
	}
	msg := &storage.OfflineMessage{
		From:   st.From,
		Stored: stored,
		Stanza: withoutForgedDelays(st.El, ev.User.Domain()).String(),
	}
	err := o.store.PushOffline(ctx, ev.User, msg, storage.OfflineLimits{MaxMessages: o.cfg.MaxMessages, MaxBytes: o.cfg.MaxBytes})
	switch {
	case errors.Is(err, storage.ErrOfflineFull):
		if o.cfg.OverflowError == OverflowResourceConstraint {
			o.bounce(ctx, st, &stanza.Error{Condition: stanza.ResourceConstraint, Text: "the recipient's offline storage is full"})
			return module.Stop
		}
		// XEP-0160 §2: the queue is full, service-unavailable (which
		// the router sends when no hook took the message).
		return module.Continue
	case errors.Is(err, storage.ErrNotFound):
		return module.Continue // the account was just removed
	case err != nil:
		o.log.Error("storing an offline message", "user", ev.User.String(), "error", err)
		return module.Continue
	}
	// A session may have become eligible and claimed the queue between
	// the router's look at the sessions and this commit: it would not
	// see this message until its next login (gate.go). A drain that
	// claims after this commit takes it; one that claimed before had
	// made its session eligible before, so it is seen here.
	sessions := o.host.Sessions(ev.User)
	for _, s := range sessions {
		if eligible(s) {
			o.deliverLate(ctx, ev.User, sessions)
			break
		}
	}
	return module.Stop
}

// deliverLate delivers what is stored to a session whose gate is open,
// after the drain that opened it.
func (o *Offline) deliverLate(ctx context.Context, user jid.JID, sessions []module.Session) {
	// RFC 6121 §8.5.2.1.1: the most available resource first; one that
	// is ending refuses, and the next one gets them.
	sessions = slices.Clone(sessions)
	slices.SortStableFunc(sessions, func(a, b module.Session) int { return cmp.Compare(b.Priority(), a.Priority()) })
	mu := o.lock(user)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sessions {
		if g := gateOf(s); g != nil && g.open.Load() && eligible(s) && o.deliver(ctx, s, g) {
			return
		}
	}
}

func (o *Offline) bounce(ctx context.Context, st *stanza.Stanza, e *stanza.Error) {
	if st.IsError() || st.From.IsZero() {
		return
	}
	o.host.Send(ctx, stanza.ErrorReply(st.El, e))
}

// initialPresence delivers the stored messages to a session that sent
// initial presence with a non-negative priority (XEP-0160 §2), before
// any live message (gate.go).
func (o *Offline) initialPresence(ctx context.Context, s module.Session) {
	s.SetValue(priorityKey{}, s.Priority())
	if s.Priority() >= 0 {
		o.drain(ctx, s)
	}
}

// presenceChange watches the broadcast presence of sessions already
// available: one whose priority becomes non-negative gets the messages
// stored meanwhile (XEP-0160 §2: "when the recipient next sends
// non-negative available presence").
func (o *Offline) presenceChange(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st, s := ev.Stanza, ev.Session
	if s == nil || st.Kind != stanza.KindPresence || !st.To.IsZero() {
		return module.Continue
	}
	switch st.Type {
	case stanza.PresenceAvailable:
		prev, ok := s.Value(priorityKey{}).(int)
		if !ok {
			return module.Continue // initial presence: initialPresence runs after routing
		}
		now := s.Priority()
		if now != prev {
			// SetValue copies the session's values: not for every
			// presence update, most of which keep the priority.
			s.SetValue(priorityKey{}, now)
		}
		switch {
		case now < 0:
			// RFC 6121 §8.5.2.1.1: no longer eligible.
			closeGate(s)
		case prev < 0:
			o.drain(ctx, s)
		}
	case stanza.PresenceUnavailable:
		s.SetValue(priorityKey{}, nil)
		closeGate(s)
	}
	return module.Continue
}

func (o *Offline) lock(user jid.JID) *sync.Mutex {
	return &o.locks[maphash.String(o.seed, user.String())%uint64(len(o.locks))]
}

// drain runs on the session's goroutine when it became eligible: it
// delivers the stored messages, then what its gate held meanwhile, and
// opens the gate (gate.go).
func (o *Offline) drain(ctx context.Context, s module.Session) {
	g := gateOf(s)
	if g == nil {
		g = &gate{} // a session the module did not see open
	}
	mu := o.lock(s.JID().Bare())
	mu.Lock()
	o.deliver(ctx, s, g)
	failed := o.openGate(s, g)
	mu.Unlock()
	// Routing them may store them: after the lock.
	o.reroute(ctx, s, failed)
}

// deliver claims the user's stored messages, hands them to the session
// in order with a <delay/> (XEP-0203 §2, XEP-0160 §2) and deletes them.
// It reports false when the session refused them (it is ending: they
// stay stored) or they could not be read. The caller holds the user's
// lock.
func (o *Offline) deliver(ctx context.Context, s module.Session, g *gate) bool {
	user := s.JID().Bare()
	defer g.through.Store(nil)
	claim := o.claimPrefix + strconv.FormatUint(o.claimSeq.Add(1), 36)
	msgs, err := o.store.ClaimOffline(ctx, user, claim, time.Now().Add(-staleClaim))
	if err != nil {
		o.log.Error("claiming offline messages", "user", user.String(), "error", err)
		return false
	}
	if len(msgs) == 0 {
		return true
	}
	from := user.Domainpart()
	for i, m := range msgs {
		el, err := parseStored(m.Stanza)
		if err != nil {
			// It can never be delivered: log it and let it be deleted.
			o.log.Error("dropping an unreadable offline message", "user", user.String(), "id", m.ID, "error", err)
			continue
		}
		el.AddChild(Delay(from, m.Stored, "Offline Storage"))
		g.through.Store(el)
		if !s.Deliver(el) {
			// The session is ending: keep the rest for the next login.
			if i > 0 {
				if _, err := o.store.DeleteClaimedOfflineThrough(ctx, user, claim, msgs[i-1].ID); err != nil {
					o.log.Error("deleting delivered offline messages", "user", user.String(), "error", err)
				}
			}
			if err := o.store.ReleaseOffline(ctx, user, claim); err != nil {
				o.log.Error("releasing offline messages", "user", user.String(), "error", err)
			}
			return false
		}
	}
	if _, err := o.store.DeleteClaimedOffline(ctx, user, claim); err != nil {
		// They were delivered: at worst they will be delivered again
		// (the claim goes stale, or is released at the next start).
		o.log.Error("deleting delivered offline messages", "user", user.String(), "error", err)
	}
	return true
}

// Verdict is what becomes of a message that found no available resource.
type Verdict uint8

const (
	// Keep: stored for the user's next login.
	Keep Verdict = iota
	// Drop: silently discarded; it has no content worth keeping (a
	// standalone chat state) and an error would only be noise.
	Drop
	// Refuse: not stored, and the sender gets service-unavailable as
	// without offline storage (RFC 6121 §8.5.2.2.1), so that it knows
	// the message was not delivered.
	Refuse
)

// Classify decides what becomes of a message that found no available
// resource, following XEP-0160 §3 and XEP-0334 §4:
//
//   - only normal and chat messages are stored (groupchat, headline and
//     error never are, §3; the router does not offer them);
//   - a message with content and <no-store/> (XEP-0334 §4.2) is refused,
//     even with <store/> as well: not storing is the safe reading of
//     contradictory hints;
//   - one with <store/> (§4.4) is stored even without content;
//   - <no-permanent-store/> (§4.1) allows offline storage, which is
//     temporary;
//   - otherwise a message is stored when it has content: a body, a
//     subject or any payload other than chat states, XEP-0022 events,
//     delays, hints and a thread, and dropped when it has none (a
//     standalone chat state: XEP-0085 §5.8, "SHOULD NOT store them
//     offline"; the rule of ejabberd's store_empty_body =
//     unless_chat_state).
func Classify(st *stanza.Stanza) Verdict {
	if st.Kind != stanza.KindMessage || st.Type != stanza.MessageNormal && st.Type != stanza.MessageChat {
		return Refuse
	}
	content := hasContent(st.El)
	switch {
	case st.El.Child("no-store", NSHints) != nil:
		if content {
			return Refuse
		}
		return Drop
	case st.El.Child("store", NSHints) != nil:
		return Keep
	case content:
		return Keep
	}
	return Drop
}

func hasContent(el *xmlstream.Element) bool {
	for c := range el.Elements() {
		switch c.NS {
		case NSChatStates, NSHints, NSDelay, NSEvent:
			continue
		case stanza.NSClient:
			if c.Name == "thread" {
				continue
			}
		}
		return true
	}
	return false
}

// withoutForgedDelays returns el without the <delay/> children that claim
// to come from the recipient's server (XEP-0203 §5: the server SHOULD
// discard them); el itself is shared and is not modified.
func withoutForgedDelays(el *xmlstream.Element, domain string) *xmlstream.Element {
	forged := func(c *xmlstream.Element) bool {
		return c != nil && c.Name == "delay" && c.NS == NSDelay && c.Attr("from") == domain
	}
	found := false
	for _, n := range el.Children {
		if forged(n.Elem) {
			found = true
			break
		}
	}
	if !found {
		return el
	}
	c := el.ShallowCopy()
	c.Children = nil
	for _, n := range el.Children {
		if !forged(n.Elem) {
			c.Children = append(c.Children, n)
		}
	}
	return c
}

// Delay builds the XEP-0203 §2 element: the stamp is UTC in the XEP-0082
// DateTime profile (stanza.FormatTime).
func Delay(from jid.JID, stamp time.Time, reason string) *xmlstream.Element {
	d := xmlstream.NewElement("delay", NSDelay).
		SetAttr("from", from.String()).
		SetAttr("stamp", stanza.FormatTime(stamp))
	if reason != "" {
		d.AddText(reason)
	}
	return d
}

// parseStored parses a message stored with Element.String; its size and
// shape were checked when it was received.
func parseStored(s string) (*xmlstream.Element, error) {
	el, err := xmlstream.Parse([]byte(s))
	if err != nil {
		return nil, err
	}
	if el.Name != "message" || el.NS != stanza.NSClient {
		return nil, errors.New("not a stored <message/>")
	}
	return el, nil
}
