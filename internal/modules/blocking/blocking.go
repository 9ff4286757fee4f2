// Package blocking implements the Blocking Command (XEP-0191): a user
// keeps a list of JIDs it does not communicate with, and the server
// enforces it both ways. The list is read on every stanza to or from a
// local user, from an in-memory cache (cache.go).
package blocking

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces of XEP-0191.
const (
	NS       = "urn:xmpp:blocking"
	NSErrors = "urn:xmpp:blocking:errors"
)

// Hook priorities: filtering runs before every protocol handler
// (docs/ARCHITECTURE.md, "Hook priorities"), except for the user's own
// presence, which is dropped after them (as Prosody does): the roster
// module must still see a subscription stanza to a blocked JID (to cancel
// its subscription, say) and routes it itself, and the enforcement on the
// receiving side (inbound) stops it there.
const (
	priority         = 100
	presencePriority = -100
)

// Config configures the module.
type Config struct {
	MaxItems  int `toml:"max_items" comment:"JIDs one user may block (0: no limit); a block command over it gets policy-violation."`
	CacheSize int `toml:"cache_size" comment:"Block lists kept in memory for users without a session (those of connected users always are)."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.MaxItems < 0 {
		errs = append(errs, errors.New("max_items: must not be negative"))
	}
	if c.CacheSize <= 0 {
		errs = append(errs, errors.New("cache_size: must be positive"))
	}
	return errs
}

func init() {
	module.Register(module.Factory{
		Name:             "blocking",
		Doc:              "Blocking Command (XEP-0191).",
		EnabledByDefault: true,
		Config:           func() any { return &Config{MaxItems: 1000, CacheSize: 10000} },
		New:              func(cfg any) (module.Module, error) { return &Blocking{cfg: *cfg.(*Config)}, nil },
	})
}

// Store is the storage the module uses (storage.BlockingStore implements it).
type Store interface {
	BlockList(ctx context.Context, user jid.JID) ([]jid.JID, error)
	BlockJIDs(ctx context.Context, user jid.JID, jids []jid.JID, max int) ([]jid.JID, error)
	UnblockJIDs(ctx context.Context, user jid.JID, jids []jid.JID) ([]jid.JID, error)
	UnblockAll(ctx context.Context, user jid.JID) ([]jid.JID, error)
}

// Subscribers tells who may receive a user's presence: the contacts
// subscribed to it (storage.RosterStore implements it). Without it the
// module sends no presence when a JID is blocked or unblocked.
type Subscribers interface {
	RosterContacts(ctx context.Context, user jid.JID, subs ...storage.Subscription) ([]jid.JID, error)
}

// Blocking is the module.
type Blocking struct {
	cfg   Config
	store Store
	subs  Subscribers // nil without a roster
	host  module.Host
	log   *slog.Logger
	cache *cache

	// locks serialize, per user (by hash), loading a list into the cache
	// and changing it, so that a list loaded before a change is never
	// stored after it.
	seed  maphash.Seed
	locks [64]sync.Mutex

	pushSeq atomic.Uint64
	// exempt holds the unavailable presence the module itself sends to a
	// JID just blocked (§3.3), which the enforcement would drop.
	exempt sync.Map // *xmlstream.Element → struct{}
}

var _ module.Module = (*Blocking)(nil)

// requestedKey marks, with Session.SetValue, a session that retrieved the
// block list: it gets the pushes (§3.3, §3.4, §3.5).
type requestedKey struct{}

// Start implements module.Module.
func (b *Blocking) Start(_ context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("blocking: the storage backend %T does not store block lists", env.Store)
	}
	b.store, b.host, b.log = st, env.Host, env.Logger
	b.subs, _ = env.Store.(Subscribers)
	b.seed = maphash.MakeSeed()
	b.cache = newCache(b.cfg.CacheSize, func(u jid.JID) bool { return len(b.host.Sessions(u)) > 0 })

	// §3.1: the client asks the server (its domain) for the feature.
	env.Hooks.ServerFeatures.Add(env.Owner, 0, NS)
	env.Hooks.UserSend.Add(env.Owner, priority, b.outbound)
	env.Hooks.UserSend.Add(env.Owner, presencePriority, b.outboundPresence)
	env.Hooks.UserReceive.Add(env.Owner, priority, b.inbound)
	env.Hooks.SessionClosed.Add(env.Owner, 0, func(_ context.Context, s module.Session) {
		if user := s.JID().Bare(); len(b.host.Sessions(user)) == 0 {
			b.cache.drop(user)
		}
	})
	env.Hooks.UserRemoved.Add(env.Owner, 0, func(_ context.Context, user jid.JID) { b.cache.drop(user) })
	return errors.Join(
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetSelf, NS, b.get),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetSelf, NS, b.set),
	)
}

// Stop implements module.Module.
func (b *Blocking) Stop() error { return nil }

func (b *Blocking) lockOf(user jid.JID) *sync.Mutex {
	return &b.locks[maphash.String(b.seed, user.String())%uint64(len(b.locks))]
}

// list returns user's block list from the cache, loading it if needed.
func (b *Blocking) list(ctx context.Context, user jid.JID) (*list, error) {
	if l, ok := b.cache.get(user); ok {
		return l, nil
	}
	mu := b.lockOf(user)
	mu.Lock()
	defer mu.Unlock()
	return b.listLocked(ctx, user)
}

func (b *Blocking) listLocked(ctx context.Context, user jid.JID) (*list, error) {
	if l, ok := b.cache.get(user); ok {
		return l, nil
	}
	items, err := b.store.BlockList(ctx, user)
	if err != nil {
		return nil, err
	}
	l := newList(items)
	b.cache.put(user, l)
	return l, nil
}

// get returns the block list (§3.2) and subscribes the session to pushes.
// Under the user's lock, and answered directly: a concurrent change is
// then either in the list returned, or pushed after it.
func (b *Blocking) get(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if p := iq.Payload(); p.Name != "blocklist" {
		return nil, stanza.NewError(stanza.BadRequest, "expected <blocklist/>")
	}
	user := iq.From.Bare()
	mu := b.lockOf(user)
	mu.Lock()
	defer mu.Unlock()
	l, err := b.listLocked(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("blocking: block list of %s: %w", user, err)
	}
	res := itemsElement("blocklist", l.items)
	if iq.Session == nil {
		return res, nil
	}
	iq.Session.SetValue(requestedKey{}, true)
	iq.Session.Deliver(stanza.NewIQ(stanza.IQResult, iq.ID, iq.From, iq.To, res))
	return nil, module.ErrReplied
}

// set handles block (§3.3), unblock (§3.4) and unblock-all (§3.5).
func (b *Blocking) set(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	p := iq.Payload()
	user := iq.From.Bare()
	if p.Name != "block" && p.Name != "unblock" {
		return nil, stanza.NewError(stanza.BadRequest, "expected <block/> or <unblock/>")
	}
	items, err := parseItems(p)
	if err != nil {
		return nil, err
	}
	if p.Name == "block" {
		if len(items) == 0 {
			// §3.3: "If the <block/> element does not contain at least
			// one <item/> child element, the server MUST return a
			// <bad-request/> error."
			return nil, stanza.NewError(stanza.BadRequest, "nothing to block")
		}
		for _, j := range items {
			if j.Bare() == user || j.Local() == "" && j.Domain() == user.Domain() {
				// Blocking oneself or one's own server would cut the
				// account off from its resources or its server.
				return nil, stanza.NewError(stanza.NotAcceptable, "you cannot block yourself or your own server")
			}
		}
	}
	old, next, err := b.change(ctx, iq, p.Name, items)
	if err != nil {
		return nil, err
	}
	// Presence after the lock: routing it runs the hooks, which may need
	// the lock of another user.
	if p.Name == "block" {
		var added []jid.JID
		for _, j := range items {
			if _, was := old.set[j]; !was {
				added = append(added, j)
			}
		}
		b.unavailableTo(ctx, user, added)
	} else {
		var removed []jid.JID
		for _, j := range old.items {
			if _, still := next.set[j]; !still {
				removed = append(removed, j)
			}
		}
		b.presenceTo(ctx, user, removed, next)
	}
	if iq.Session == nil {
		return nil, nil
	}
	return nil, module.ErrReplied
}

// change stores a change under the user's lock, and answers and pushes it
// under the lock too, so that pushes go out in the order of the changes
// and after the answer to a concurrent get.
func (b *Blocking) change(ctx context.Context, iq *module.IQ, action string, items []jid.JID) (old, next *list, err error) {
	user := iq.From.Bare()
	mu := b.lockOf(user)
	mu.Lock()
	defer mu.Unlock()
	old, err = b.listLocked(ctx, user)
	if err != nil {
		return nil, nil, fmt.Errorf("blocking: block list of %s: %w", user, err)
	}
	var now []jid.JID
	switch {
	case action == "block":
		now, err = b.store.BlockJIDs(ctx, user, items, b.cfg.MaxItems)
	case len(items) == 0:
		_, err = b.store.UnblockAll(ctx, user)
	default:
		now, err = b.store.UnblockJIDs(ctx, user, items)
	}
	if errors.Is(err, storage.ErrBlocklistFull) {
		return nil, nil, stanza.NewError(stanza.PolicyViolation, "a block list holds at most "+strconv.Itoa(b.cfg.MaxItems)+" JIDs")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("blocking: %s for %s: %w", action, user, err)
	}
	next = newList(now)
	b.cache.put(user, next)
	// The result first, then the pushes, as in the examples of §3.3.
	if iq.Session != nil {
		iq.Session.Deliver(stanza.NewIQ(stanza.IQResult, iq.ID, iq.From, iq.To, nil))
	}
	b.push(user, itemsElement(action, items))
	return old, next, nil
}

// parseItems reads the <item jid='…'/> children; a missing or invalid
// JID is jid-malformed (RFC 6120 §8.3.3.8).
func parseItems(p *xmlstream.Element) ([]jid.JID, error) {
	var items []jid.JID
	seen := map[jid.JID]bool{}
	for c := range p.ChildrenNamed("item", NS) {
		j, err := jid.Parse(c.Attr("jid"))
		if err != nil {
			return nil, stanza.NewError(stanza.JIDMalformed, "item "+strconv.Quote(c.Attr("jid"))+": not a JID")
		}
		if !seen[j] {
			seen[j] = true
			items = append(items, j)
		}
	}
	return items, nil
}

func itemsElement(name string, items []jid.JID) *xmlstream.Element {
	el := xmlstream.NewElement(name, NS)
	for _, j := range items {
		el.AddChild(xmlstream.NewElement("item", NS).SetAttr("jid", j.String()))
	}
	return el
}

// push sends a change to the user's sessions that retrieved the block
// list (§3.3: "all of the user's resources that have requested the
// blocklist"), the one that made the change included.
func (b *Blocking) push(user jid.JID, payload *xmlstream.Element) {
	for _, s := range b.host.Sessions(user) {
		if requested, _ := s.Value(requestedKey{}).(bool); !requested {
			continue
		}
		id := "block-push-" + strconv.FormatUint(b.pushSeq.Add(1), 36)
		s.Deliver(stanza.NewIQ(stanza.IQSet, id, s.JID(), jid.JID{}, payload))
	}
}

// presenceTargets returns where the user's presence goes among the JIDs
// items: the subscribers (RFC 6121 §4.2.2: subscription from or both)
// that an item matches. A full-JID (or domain/resource) item gives that
// address; a bare JID itself; a domain every subscriber at that domain.
// Targets still blocked by stillBlocked are left out.
func (b *Blocking) presenceTargets(ctx context.Context, user jid.JID, items []jid.JID, stillBlocked *list) []jid.JID {
	if b.subs == nil || len(items) == 0 {
		return nil
	}
	subs, err := b.subs.RosterContacts(ctx, user, storage.SubFrom, storage.SubBoth)
	if err != nil {
		b.log.Error("reading the subscribers", "user", user.String(), "error", err)
		return nil
	}
	var targets []jid.JID
	add := func(t jid.JID) {
		if !slices.Contains(targets, t) && (stillBlocked == nil || !stillBlocked.blocks(t)) {
			targets = append(targets, t)
		}
	}
	for _, it := range items {
		if !it.IsBare() {
			if slices.Contains(subs, it.Bare()) {
				add(it)
			}
			continue
		}
		for _, c := range subs {
			if c == it || it.Local() == "" && c.Domain() == it.Domain() {
				add(c)
			}
		}
	}
	return targets
}

// unavailableTo tells the JIDs just blocked that the user's available
// resources are gone (§3.3: "the user's server MUST send unavailable
// presence information to the JID (but only if the JID is allowed to
// receive presence notifications from the user …)").
func (b *Blocking) unavailableTo(ctx context.Context, user jid.JID, blocked []jid.JID) {
	targets := b.presenceTargets(ctx, user, blocked, nil)
	if len(targets) == 0 {
		return
	}
	for _, s := range b.host.Sessions(user) {
		if !s.Available() {
			continue
		}
		for _, t := range targets {
			p := stanza.NewPresence(stanza.PresenceUnavailable, t, s.JID())
			b.exempt.Store(p, struct{}{})
			b.host.Send(ctx, p)
			b.exempt.Delete(p)
		}
	}
}

// presenceTo sends the current presence of the user's available resources
// to the JIDs just unblocked (§3.4: "the user's server MUST send the
// user's current presence information to the JID (but only if the JID is
// allowed to receive presence notifications from the user …)").
func (b *Blocking) presenceTo(ctx context.Context, user jid.JID, unblocked []jid.JID, now *list) {
	targets := b.presenceTargets(ctx, user, unblocked, now)
	if len(targets) == 0 {
		return
	}
	for _, s := range b.host.Sessions(user) {
		p := s.Presence()
		if !s.Available() || p == nil {
			continue
		}
		for _, t := range targets {
			c := p.ShallowCopy()
			c.SetAttr("to", t.String()).SetAttr("from", s.JID().String())
			b.host.Send(ctx, c)
		}
	}
}

// outbound enforces the block list on the messages and IQs the user's
// clients send (§3.3): one to a blocked JID is not routed and gets
// not-acceptable with <blocked/>; errors and IQ results are dropped
// silently (they answer something and must not be answered).
func (b *Blocking) outbound(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind == stanza.KindPresence || !b.blockedOutbound(ctx, ev) {
		return module.Continue
	}
	if st.IsError() || st.Kind == stanza.KindIQ && st.Type == stanza.IQResult {
		return module.Stop
	}
	ev.Session.Deliver(stanza.ErrorReply(st.El, &stanza.Error{
		Type:      stanza.ErrorCancel, // as in the example of §3.3
		Condition: stanza.NotAcceptable,
		App:       xmlstream.NewElement("blocked", NSErrors),
	}))
	return module.Stop
}

// outboundPresence drops, silently, the presence the user's clients send
// to a blocked JID that the protocol handlers let through (directed
// presence): an error for a presence would confuse clients and tell the
// user nothing (the rule of Prosody).
func (b *Blocking) outboundPresence(ctx context.Context, ev *module.StanzaEvent) module.Result {
	if ev.Stanza.Kind == stanza.KindPresence && b.blockedOutbound(ctx, ev) {
		return module.Stop
	}
	return module.Continue
}

func (b *Blocking) blockedOutbound(ctx context.Context, ev *module.StanzaEvent) bool {
	st := ev.Stanza
	if st.To.IsZero() || ev.Session == nil || st.To.Bare() == ev.User {
		return false
	}
	l, err := b.list(ctx, ev.User)
	if err != nil {
		// Fail open: a storage failure must not stop all traffic.
		b.log.Error("reading the block list", "user", ev.User.String(), "error", err)
		return false
	}
	return l.blocks(st.To)
}

// inbound enforces the block list on what reaches a local user (§3.3):
// nothing from a blocked JID is delivered; presence is dropped without an
// error, messages and IQ requests get service-unavailable as if the user
// were offline, the rest is dropped.
//
// It also stops what the server sends on behalf of a local user to a JID
// that user blocked, which did not go through the UserSend hooks: the
// presence broadcasts, probes and probe answers of the presence module,
// the subscription stanzas the roster module routes.
func (b *Blocking) inbound(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	from := st.From
	if from.IsZero() || from.Bare() == ev.User {
		return module.Continue
	}
	if l, err := b.list(ctx, ev.User); err != nil {
		b.log.Error("reading the block list", "user", ev.User.String(), "error", err)
	} else if l.blocks(from) {
		b.refuse(ctx, st)
		return module.Stop
	}
	if st.IsError() || from.Local() == "" || !b.host.IsLocal(from.Domain()) {
		return module.Continue
	}
	l, err := b.list(ctx, from.Bare())
	if err != nil {
		b.log.Error("reading the block list", "user", from.Bare().String(), "error", err)
		return module.Continue
	}
	if l.blocks(st.To) {
		if _, ok := b.exempt.Load(st.El); !ok {
			return module.Stop
		}
	}
	return module.Continue
}

// refuse answers a stanza from a blocked JID (§3.3).
func (b *Blocking) refuse(ctx context.Context, st *stanza.Stanza) {
	switch st.Kind {
	case stanza.KindMessage:
		// "SHOULD return an error, which SHOULD be service-unavailable":
		// for the types an offline user's server would bounce (RFC 6121
		// §8.5.2); headlines are dropped as they would be.
		if st.Type == stanza.MessageHeadline || st.IsError() {
			return
		}
	case stanza.KindIQ:
		// "IQ stanzas of other types MUST be silently dropped."
		if st.Type != stanza.IQGet && st.Type != stanza.IQSet {
			return
		}
	default:
		return // presence: "MUST NOT respond and MUST NOT return an error"
	}
	b.host.Send(ctx, stanza.ErrorReply(st.El, stanza.NewError(stanza.ServiceUnavailable, "")))
}
