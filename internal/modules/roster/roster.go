// Package roster implements roster management and presence
// subscriptions, RFC 6121 §2 and §3: roster get, set and remove with
// pushes to interested resources (§2.1.6), roster versioning (§2.6, which
// absorbed XEP-0237), and the subscription state machine of Appendix A
// for both the user's server (outbound) and the contact's server
// (inbound), with pre-approval (§3.4).
//
// Presence broadcast and probes (§4) are the presence module's.
package roster

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"hash/maphash"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces of RFC 6121.
const (
	NS            = stanza.NSRoster      // jabber:iq:roster (§2)
	NSVersioning  = stanza.NSRosterVer   // stream feature of roster versioning (§2.6.1)
	NSPreApproval = stanza.NSPreApproval // stream feature of pre-approval (§3.4)
)

// Config configures the module.
type Config struct {
	MaxItems       int `toml:"max_items" comment:"Most entries a roster holds, pending subscription requests included (0: no limit)."`
	MaxNameLength  int `toml:"max_name_length" comment:"Longest item name, in characters; longer ones get not-acceptable (RFC 6121 §2.3.3)."`
	MaxGroupLength int `toml:"max_group_length" comment:"Longest group name, in characters; longer ones get not-acceptable (RFC 6121 §2.3.3)."`
	MaxGroups      int `toml:"max_groups" comment:"Most groups of one item (0: no limit)."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.MaxItems < 0 {
		errs = append(errs, errors.New("max_items: must not be negative"))
	}
	if c.MaxNameLength <= 0 {
		errs = append(errs, errors.New("max_name_length: must be positive"))
	}
	if c.MaxGroupLength <= 0 {
		errs = append(errs, errors.New("max_group_length: must be positive"))
	}
	if c.MaxGroups < 0 {
		errs = append(errs, errors.New("max_groups: must not be negative"))
	}
	return errs
}

func init() {
	module.Register(module.Factory{
		Name:             "roster",
		Doc:              "Roster management, versioning and presence subscriptions (RFC 6121 §2, §3).",
		EnabledByDefault: true,
		Config: func() any {
			return &Config{MaxItems: 1000, MaxNameLength: 1024, MaxGroupLength: 1024, MaxGroups: 64}
		},
		New: func(cfg any) (module.Module, error) { return &Roster{cfg: *cfg.(*Config)}, nil },
	})
}

// Store is the storage the module uses.
type Store interface {
	Roster(ctx context.Context, user jid.JID) ([]storage.RosterItem, int64, error)
	RosterItem(ctx context.Context, user, contact jid.JID) (storage.RosterItem, error)
	PutRosterItem(ctx context.Context, user jid.JID, item storage.RosterItem) (int64, bool, error)
	DeleteRosterItem(ctx context.Context, user, contact jid.JID) (int64, error)
	RosterChanges(ctx context.Context, user jid.JID, since int64) ([]storage.RosterChange, int64, bool, error)
	RosterSize(ctx context.Context, user jid.JID) (int, error)
	RosterRequests(ctx context.Context, user jid.JID) ([]storage.RosterItem, error)
	ContactsOf(ctx context.Context, contact jid.JID) ([]jid.JID, error)
	AccountExists(ctx context.Context, user jid.JID) (bool, error)
}

// Roster is the module.
type Roster struct {
	cfg   Config
	host  module.Host
	store Store
	hooks *module.Hooks
	log   *slog.Logger

	// locks serialize the changes of one user's roster: read, decide,
	// store and push happen under the user's lock, so that pushes go out
	// in version order (RFC 6121 §2.6.3). A lock is never held while a
	// stanza is routed (routing may come back to another user's roster).
	seed   maphash.Seed
	locks  [256]sync.Mutex
	pushID atomic.Uint64
}

var _ module.Module = (*Roster)(nil)

// interestedKey marks a session that requested the roster: an
// "interested resource" (RFC 6121 §2.1.6), which gets roster pushes.
type interestedKey struct{}

// Start implements module.Module.
func (r *Roster) Start(_ context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("roster: the storage backend has no roster store")
	}
	r.host, r.store, r.hooks, r.log = env.Host, st, env.Hooks, env.Logger
	r.seed = maphash.MakeSeed()
	h, owner := env.Hooks, env.Owner
	forbidden := func(context.Context, *module.IQ) (*xmlstream.Element, error) {
		// §2.3.3, §2.1: only the account itself reads or changes its roster.
		return nil, stanza.NewError(stanza.Forbidden, "")
	}
	if err := errors.Join(
		h.HandleIQ(owner, stanza.IQGet, module.TargetSelf, NS, r.get),
		h.HandleIQ(owner, stanza.IQSet, module.TargetSelf, NS, r.set),
		h.HandleIQ(owner, stanza.IQGet, module.TargetBare, NS, forbidden),
		h.HandleIQ(owner, stanza.IQSet, module.TargetBare, NS, forbidden),
		// Other modules change rosters through it (MUC Light's rooms).
		h.RosterChange.Provide(owner, r.serverChange),
	); err != nil {
		return err
	}
	h.StreamFeatures.Add(owner, 0, func() *xmlstream.Element { return xmlstream.NewElement("ver", NSVersioning) })
	h.StreamFeatures.Add(owner, 0, func() *xmlstream.Element { return xmlstream.NewElement("sub", NSPreApproval) })
	h.UserSend.Add(owner, hookPriority, r.outboundHook)
	h.UserReceive.Add(owner, hookPriority, r.inboundHook)
	h.InitialPresence.Add(owner, hookPriority, r.initialPresence)
	h.UserRemoving.Add(owner, hookPriority, r.userRemoving)
	return nil
}

// hookPriority is that of a protocol handler (docs/ARCHITECTURE.md):
// below blocking, above archiving.
const hookPriority = 50

// Stop implements module.Module.
func (r *Roster) Stop() error { return nil }

// lock takes the lock of a user's roster.
func (r *Roster) lock(user jid.JID) *sync.Mutex {
	m := &r.locks[maphash.String(r.seed, user.String())%uint64(len(r.locks))]
	m.Lock()
	return m
}

func interested(s module.Session) bool {
	v, _ := s.Value(interestedKey{}).(bool)
	return v
}

// itemElement renders a roster item (RFC 6121 §2.1.2).
func itemElement(it storage.RosterItem) *xmlstream.Element {
	el := xmlstream.NewElement("item", NS).SetAttr("jid", it.Contact.String())
	if it.Name != "" {
		el.SetAttr("name", it.Name)
	}
	sub := it.Subscription
	if sub == "" {
		sub = storage.SubNone
	}
	el.SetAttr("subscription", string(sub))
	if it.PendingOut {
		el.SetAttr("ask", "subscribe")
	}
	if it.PreApproved {
		el.SetAttr("approved", "true")
	}
	for _, g := range it.Groups {
		el.AddChild(xmlstream.NewElement("group", NS).AddText(g))
	}
	return el
}

// render renders a roster item of user's roster and runs the RosterItem
// hooks on it (another module's extension children, MUC Light's
// <version/>). It returns what the hooks added, serialized ("" when
// nothing): the roster version covers it (see fingerprint).
func (r *Roster) render(ctx context.Context, user jid.JID, it storage.RosterItem) (*xmlstream.Element, string) {
	el := itemElement(it)
	hooks := r.hooks.RosterItem.Hooks()
	if len(hooks) == 0 {
		return el, ""
	}
	na, nc := len(el.Attrs), len(el.Children)
	for _, h := range hooks {
		h.Fn(ctx, user, el)
	}
	if len(el.Attrs) == na && len(el.Children) == nc {
		return el, ""
	}
	var b []byte
	for _, a := range el.Attrs[na:] {
		b = append(b, a.NS...)
		b = append(b, ' ')
		b = append(b, a.Name...)
		b = append(b, '=')
		b = append(b, a.Value...)
		b = append(b, 0)
	}
	for _, c := range el.Children[nc:] {
		if c.Elem != nil {
			b = c.Elem.AppendXML(b, xmlstream.Scope{})
		} else {
			b = append(b, c.Text...)
		}
	}
	return el, string(b)
}

// fingerprint digests what the RosterItem hooks add to the items of a
// roster ("" when they add nothing), for the roster version: a room's
// version can change without a change of the stored item, and a client
// that cached the roster must not keep the old one (RFC 6121 §2.6: the
// version changes whenever the roster does).
type fingerprint struct {
	h hash.Hash64 // nil until something is added
}

func (f *fingerprint) add(contact jid.JID, extra string) {
	if extra == "" {
		return
	}
	if f.h == nil {
		f.h = fnv.New64a()
	}
	f.h.Write([]byte(contact.String()))
	f.h.Write([]byte{0})
	f.h.Write([]byte(extra))
	f.h.Write([]byte{0})
}

func (f *fingerprint) String() string {
	if f.h == nil {
		return ""
	}
	return fmt.Sprintf("%016x", f.h.Sum64())
}

// formatVersion renders a roster version: the counter of the stored
// roster, then, when hooks add to its items, "." and their fingerprint.
func formatVersion(v int64, fp string) string {
	if fp == "" {
		return versionString(v)
	}
	return versionString(v) + "." + fp
}

// parseVersion reads what formatVersion wrote.
func parseVersion(ver string) (v int64, fp string, ok bool) {
	num, fp, _ := strings.Cut(ver, ".")
	v, err := strconv.ParseInt(num, 10, 64)
	return v, fp, err == nil
}

func removedElement(contact jid.JID) *xmlstream.Element {
	return xmlstream.NewElement("item", NS).SetAttr("jid", contact.String()).SetAttr("subscription", "remove")
}

func versionString(v int64) string { return strconv.FormatInt(v, 10) }

// pushTo sends a roster push (RFC 6121 §2.1.6) of one item at version v
// to one session.
func (r *Roster) pushTo(s module.Session, item *xmlstream.Element, v int64) {
	r.pushVer(s, item, versionString(v))
}

// pushVer sends a roster push with the version ver.
func (r *Roster) pushVer(s module.Session, item *xmlstream.Element, ver string) {
	q := xmlstream.NewElement("query", NS).SetAttr("ver", ver).AddChild(item)
	id := "push" + strconv.FormatUint(r.pushID.Add(1), 36)
	s.Deliver(stanza.NewIQ(stanza.IQSet, id, s.JID(), jid.JID{}, q))
}

// push sends a roster push to every interested resource of user, and to
// also (the resource that made the change) when it is not nil. Called
// with the user's lock held.
func (r *Roster) push(user jid.JID, item *xmlstream.Element, v int64, also module.Session) {
	for _, s := range r.host.Sessions(user) {
		if s == also || interested(s) {
			r.pushTo(s, item, v)
		}
	}
}

// pushItem pushes an entry after a change: a removal when it is hidden
// (it left the roster). The push carries the counter alone: the
// fingerprint of what hooks add would take reading the whole roster, and
// a client that stores a version without one gets the whole roster at
// its next versioned get when hooks add to its items (see get).
func (r *Roster) pushItem(ctx context.Context, user jid.JID, it storage.RosterItem, v int64, also module.Session) {
	if it.Hidden {
		r.push(user, removedElement(it.Contact), v, also)
		return
	}
	it.Version = v
	el, _ := r.render(ctx, user, it)
	r.push(user, el, v, also)
}

// entry loads the (user, contact) entry, nil when there is none.
func (r *Roster) entry(ctx context.Context, user, contact jid.JID) (*storage.RosterItem, error) {
	it, err := r.store.RosterItem(ctx, user, contact)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &it, nil
}

// full reports whether the user's roster cannot take a new entry.
func (r *Roster) full(ctx context.Context, user jid.JID) (bool, error) {
	if r.cfg.MaxItems <= 0 {
		return false, nil
	}
	n, err := r.store.RosterSize(ctx, user)
	return n >= r.cfg.MaxItems, err
}

// errFull is the error for a roster that holds max_items entries: a local
// policy (RFC 6120 §8.3.3.12); RFC 6121 defines no condition for it.
func (r *Roster) errFull() *stanza.Error {
	return stanza.NewError(stanza.PolicyViolation, "the roster holds "+strconv.Itoa(r.cfg.MaxItems)+" entries, the most allowed")
}

// send routes an element built here ('from' set).
func (r *Roster) send(ctx context.Context, el *xmlstream.Element) { r.host.Send(ctx, el) }

// bounce answers st with an error on the server's behalf.
func (r *Roster) bounce(ctx context.Context, st *stanza.Stanza, e *stanza.Error) {
	if st.IsError() || st.From.IsZero() {
		return
	}
	r.send(ctx, stanza.ErrorReply(st.El, e))
}
