package module

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Session is a client session as modules see it. The c2s package
// implements it; a clustered router may implement it for remote sessions.
type Session interface {
	// JID is the full JID bound to the session.
	JID() jid.JID
	// StreamID is the id of the stream (RFC 6120 §4.7.3).
	StreamID() string
	// Deliver queues a stanza for the client. Stanzas are written in the
	// order they were delivered; Deliver never blocks on the network. It
	// reports false when the session did not take the stanza because it is
	// ending: the caller then delivers it as if the resource were gone.
	Deliver(el *xmlstream.Element) bool
	// Available reports whether the client has sent available presence
	// and not unavailable presence since (RFC 6121 §4.2, §4.5).
	Available() bool
	// Priority is the priority of the client's last available presence
	// (RFC 6121 §4.7.2.3).
	Priority() int
	// Presence is the client's last broadcast available presence, nil
	// when it is not available.
	Presence() *xmlstream.Element
	// LastActivity is when the client last sent something.
	LastActivity() time.Time
	// Close ends the session with a stream error (nil: a clean close).
	Close(err *stanza.StreamError)
	// Value returns what a module stored with SetValue under key.
	Value(key any) any
	// SetValue stores per-session module state; use an unexported key type.
	SetValue(key, value any)
}

// ServiceHandler handles every stanza addressed to a service domain that a
// module registered (muclight.example.com, for instance).
type ServiceHandler func(ctx context.Context, st *stanza.Stanza, from Session)

// Host is the server as modules see it.
type Host interface {
	// Route delivers st as the server delivers a stanza received from its
	// sender; st.From must be set.
	Route(ctx context.Context, st *stanza.Stanza)
	// Send routes an element built by a module (from must be set).
	Send(ctx context.Context, el *xmlstream.Element)
	// IsLocal reports whether domain is served here (virtual hosts).
	IsLocal(domain string) bool
	// Domains lists the served domains.
	Domains() []string
	// Sessions returns the sessions of a local user (bare JID).
	Sessions(bare jid.JID) []Session
	// SessionOf returns the session bound to a full JID, or nil.
	SessionOf(full jid.JID) Session
	// RangeSessions calls fn for every local session until it returns false.
	RangeSessions(fn func(Session) bool)
	// SendIQ sends an IQ get or set from the server (its 'from' set, its
	// 'id' assigned by SendIQ) and calls fn with the answer, or with nil
	// when none comes within timeout (0: a default). fn must not block.
	SendIQ(ctx context.Context, iq *xmlstream.Element, timeout time.Duration, fn func(*stanza.Stanza))
	// RegisterService routes all stanzas for domain to h.
	RegisterService(domain string, h ServiceHandler) error
	// UnregisterService removes a service registered with RegisterService.
	UnregisterService(domain string)
}

// Result tells the caller of a hook whether to go on.
type Result uint8

const (
	Continue Result = iota // let the next handler and the default action run
	Stop                   // the stanza was consumed (delivered, stored, dropped or answered)
)

// Target says to whom an IQ handled by the server was addressed.
type Target uint8

const (
	// TargetHost: to a served domain (RFC 6120 §10.3).
	TargetHost Target = iota
	// TargetSelf: without 'to' or to the sender's own bare JID, handled by
	// the server on behalf of the account (RFC 6120 §10.3.3).
	TargetSelf
	// TargetBare: to another local user's bare JID, answered by the server
	// on that user's behalf (RFC 6121 §8.5.2.1.3, e.g. vCard, last activity).
	TargetBare
	// TargetStream: sent on a stream that is not authenticated yet; only
	// modules that must work before login register these (in-band
	// registration, XEP-0077). The IQ has no Session and no From; the
	// answer goes back on the stream.
	TargetStream
	// TargetRoom: to a group chat room, dispatched by the module serving
	// the room (MUC Light) after it checked that the sender may ask; the
	// IQ's To is the room's JID. The room archive (XEP-0313 §6.1.2) is
	// answered this way.
	TargetRoom
)

func (t Target) String() string {
	switch t {
	case TargetSelf:
		return "self"
	case TargetBare:
		return "bare"
	case TargetStream:
		return "stream"
	case TargetRoom:
		return "room"
	}
	return "host"
}

// IQ is an IQ request that the server handles.
type IQ struct {
	*stanza.Stanza
	// Session is the sender's session when the sender is a local client.
	Session Session
	Target  Target
}

// IQHandler answers an IQ get or set. It returns the payload of the result
// (nil for an empty result) or an error: a *stanza.Error is sent back as
// is, ErrReplied means the handler has already replied, any other error is
// logged and answered with internal-server-error.
type IQHandler func(ctx context.Context, iq *IQ) (*xmlstream.Element, error)

// ErrReplied tells the IQ dispatcher that the handler sent its reply itself.
var ErrReplied = errors.New("module: IQ already replied")

// StanzaEvent is the payload of the stanza hooks.
type StanzaEvent struct {
	Stanza *stanza.Stanza
	// Session is the sending session for UserSend, nil otherwise.
	Session Session
	// User is the local account concerned: the sender for UserSend, the
	// recipient for UserReceive and Offline (a bare JID).
	User jid.JID
}

// StanzaHook handles a stanza event.
type StanzaHook func(ctx context.Context, ev *StanzaEvent) Result

// DeliveredHook is told which sessions of a local account a message was
// handed to (the carbons module copies it to the others).
type DeliveredHook func(ctx context.Context, st *stanza.Stanza, user jid.JID, to []Session)

// OutgoingHook sees every stanza about to be queued for a session (by the
// router or by a module); Stop means the hook took it: it keeps it for
// later (Client State Indication) or drops it. It runs on the delivering
// goroutine, must be quick, and must not call Deliver on the same session
// for the element it took.
type OutgoingHook func(s Session, el *xmlstream.Element) Result

// SessionHook is told about a session that opened or closed.
type SessionHook func(ctx context.Context, s Session)

// UserHook is told about an account (a bare JID), for instance its removal.
type UserHook func(ctx context.Context, user jid.JID)

// RosterItemHook adds to a roster item (RFC 6121 §2.1.2) of user's roster
// as the roster module serializes it, for a roster get or a push: an
// extension child such as MUC Light's <version/>. It must be quick (it
// runs for every item of a roster get), must only add attributes or
// children (never change or remove what is there), and must add the same
// thing for the same state, since the roster version covers what it adds.
type RosterItemHook func(ctx context.Context, user jid.JID, item *xmlstream.Element)

// RosterChange is a change of a user's roster that the server makes on
// its own, not a roster set of the client: MUC Light's room items
// (rooms_in_rosters). The module that provides Hooks.RosterChange makes
// it as it makes its own changes (RFC 6121 §2.1.6: stored with a new
// version, pushed to the user's interested resources).
type RosterChange struct {
	// User is the account whose roster changes (a bare JID).
	User jid.JID
	// Contact is the item's JID (a bare JID).
	Contact jid.JID
	// Remove removes the item; the fields below are then ignored.
	Remove bool
	// Name, Groups and Subscription ("none", "to", "from", "both") replace
	// the item's; what else the roster keeps about the contact (a pending
	// request, a pre-approval) stays.
	Name         string
	Groups       []string
	Subscription string
}

// RosterChangeFunc makes a RosterChange. It reports whether the roster
// changed (an item that already is as asked, or a removal of an item
// that is not there, changes nothing and pushes nothing).
type RosterChangeFunc func(ctx context.Context, ch RosterChange) (changed bool, err error)

// Service is a function that one module provides and others call,
// without importing each other (the roster module's RosterChange). There
// is at most one provider; it is removed with its owner. Reading is
// lock-free.
type Service[F any] struct {
	mu sync.Mutex
	p  atomic.Pointer[provided[F]]
}

type provided[F any] struct {
	owner string
	fn    F
}

// Provide makes fn the service, owned by owner; it fails when another
// owner provides it already.
func (s *Service[F]) Provide(owner string, fn F) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.p.Load(); p != nil {
		return errors.New("module: service already provided by " + p.owner)
	}
	s.p.Store(&provided[F]{owner: owner, fn: fn})
	return nil
}

// Get returns the service; ok is false when no module provides it.
func (s *Service[F]) Get() (fn F, ok bool) {
	if p := s.p.Load(); p != nil {
		return p.fn, true
	}
	return fn, false
}

// Owner returns the provider's owner, "" when there is none.
func (s *Service[F]) Owner() string {
	if p := s.p.Load(); p != nil {
		return p.owner
	}
	return ""
}

// RemoveOwner removes the service if owner provides it.
func (s *Service[F]) RemoveOwner(owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.p.Load(); p != nil && p.owner == owner {
		s.p.Store(nil)
	}
}

// NonzaHandler handles a first-level element that is not a stanza (CSI's
// <active/>, for instance) on an established session.
type NonzaHandler func(ctx context.Context, s Session, el *xmlstream.Element)

// FeatureFunc returns a stream feature to advertise to an authenticated
// client before it binds a resource, or nil.
type FeatureFunc func() *xmlstream.Element

// Identity is a service discovery identity (XEP-0030 §3.1).
type Identity struct {
	Category, Type, Name string
}

// DiscoItem is an item of the server's disco#items (XEP-0030 §4.1): a
// service such as muclight.example.com.
type DiscoItem struct {
	JID, Name, Node string
}

// HookList is an ordered list of handlers: higher priority first, then
// in the order they were added. Reading is lock-free (the per-stanza path
// reads it); adding and removing copy the list.
type HookList[F any] struct {
	mu   sync.Mutex
	list atomic.Pointer[[]Hook[F]]
	seq  int
}

// Hook is one entry of a HookList.
type Hook[F any] struct {
	Owner    string
	Priority int
	Fn       F
	seq      int
}

// Add attaches fn for owner with a priority.
func (l *HookList[F]) Add(owner string, priority int, fn F) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var cur []Hook[F]
	if p := l.list.Load(); p != nil {
		cur = *p
	}
	l.seq++
	next := append(slices.Clip(cur), Hook[F]{Owner: owner, Priority: priority, Fn: fn, seq: l.seq})
	slices.SortStableFunc(next, func(a, b Hook[F]) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return a.seq - b.seq
	})
	l.list.Store(&next)
}

// RemoveOwner detaches every handler of owner.
func (l *HookList[F]) RemoveOwner(owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.list.Load()
	if p == nil {
		return
	}
	next := slices.DeleteFunc(slices.Clone(*p), func(h Hook[F]) bool { return h.Owner == owner })
	l.list.Store(&next)
}

// Hooks returns the current handlers in order; do not modify the slice.
func (l *HookList[F]) Hooks() []Hook[F] {
	if p := l.list.Load(); p != nil {
		return *p
	}
	return nil
}

// Len returns the number of handlers.
func (l *HookList[F]) Len() int { return len(l.Hooks()) }

// RunStanza runs stanza hooks in order until one returns Stop.
func RunStanza(ctx context.Context, l *HookList[StanzaHook], ev *StanzaEvent) Result {
	for _, h := range l.Hooks() {
		if h.Fn(ctx, ev) == Stop {
			return Stop
		}
	}
	return Continue
}

// Hooks holds everything modules attach to. The event names of Prosody
// become fields and map keys here: an IQ handler is found by
// "<type>/<target>/<namespace>", e.g. "get/host/urn:xmpp:ping".
type Hooks struct {
	// UserSend runs for every stanza a local client sends, after 'from'
	// is stamped and before it is routed.
	UserSend HookList[StanzaHook]
	// UserReceive runs once per stanza addressed to a local account (bare
	// or full JID) from someone else, before it is handed to sessions or,
	// for an IQ to the bare JID, before the server answers it for the
	// account.
	UserReceive HookList[StanzaHook]
	// MessageDelivered runs after a message for a local account was handed
	// to one or more of its sessions.
	MessageDelivered HookList[DeliveredHook]
	// Outgoing runs in Session.Deliver for every stanza about to be queued.
	Outgoing HookList[OutgoingHook]
	// Offline runs when a message cannot be delivered to any session of
	// an existing account (RFC 6121 §8.5.2.2); a handler that stores it
	// returns Stop.
	Offline HookList[StanzaHook]
	// ToServer runs for messages and presence addressed to a served domain.
	ToServer HookList[StanzaHook]
	// SessionOpened runs when a session has bound a resource.
	SessionOpened HookList[SessionHook]
	// SessionClosed runs when a bound session ends, cleanly or not.
	SessionClosed HookList[SessionHook]
	// SessionResumed runs when a session continues on a new connection
	// (stream management, XEP-0198 §5), before anything the client sent
	// on it is read: per-connection state resets here (XEP-0352 §5.2: a
	// resumed stream starts active).
	SessionResumed HookList[SessionHook]
	// BeforeAck runs before the server acknowledges what a client sent
	// (XEP-0198 <a/>, and the 'h' of <resumed/> and <failed/>): a module
	// that writes in the background (the archive) waits there until what
	// it has queued so far is durable, so that an acknowledged message
	// survives a crash.
	BeforeAck HookList[SessionHook]
	// RoomMessage runs for a group chat message a room accepted, once,
	// before the room sends a copy to each member; ev.User is the room's
	// JID and ev.Stanza the message as the members will get it (from the
	// room JID with the sender's resource). The room archive stamps its
	// stanza ID here.
	RoomMessage HookList[StanzaHook]
	// RoomDestroyed runs when a room is gone (destroyed, or its last
	// member left), with the room's JID: what is kept for it (its
	// archive) goes too, so that a new room of the same name starts
	// empty.
	RoomDestroyed HookList[UserHook]
	// InitialPresence runs when a session sends its initial presence
	// (RFC 6121 §4.2), after the presence was routed: probes, pending
	// subscription requests and offline messages are sent from here.
	InitialPresence HookList[SessionHook]
	// UserRemoving runs before an account is deleted, while its data is
	// still there (to tell its contacts, for instance); UserRemoved runs
	// after, when its data is gone and its sessions are closed.
	UserRemoving HookList[UserHook]
	UserRemoved  HookList[UserHook]
	// StreamFeatures are offered to authenticated clients.
	StreamFeatures HookList[FeatureFunc]
	// PreAuthFeatures are offered before authentication (in-band
	// registration's <register/>, XEP-0077 §3.1).
	PreAuthFeatures HookList[FeatureFunc]
	// ServerFeatures and ServerIdentities are the disco#info of the
	// served domains (XEP-0030).
	ServerFeatures   HookList[string]
	ServerIdentities HookList[Identity]
	// ServerItems are the disco#items of the served domains.
	ServerItems HookList[DiscoItem]
	// AccountFeatures are the disco#info features of accounts' bare JIDs.
	AccountFeatures HookList[string]
	// RosterItem runs for every <item/> the roster module serializes (in
	// roster results, interim pushes and pushes), so that another module
	// adds what it keeps about the contact without the two importing each
	// other (Prosody's "roster-get" event). What the hooks add is part of
	// the roster version (see the roster module's README).
	RosterItem HookList[RosterItemHook]
	// RosterChange is provided by the roster module: how another module
	// (MUC Light) changes a user's roster, under the roster module's lock
	// and with its pushes.
	RosterChange Service[RosterChangeFunc]

	mu     sync.Mutex
	iqs    atomic.Pointer[map[string]ownedIQ]
	nonzas atomic.Pointer[map[string]ownedNonza]
}

type ownedIQ struct {
	owner string
	fn    IQHandler
}

type ownedNonza struct {
	owner string
	fn    NonzaHandler
}

func iqKey(typ string, target Target, ns string) string {
	return typ + "/" + target.String() + "/" + ns
}

// HandleIQ registers the handler of IQs of type get or set, addressed to
// target, whose payload is in namespace ns. A handler for TargetBare also
// serves TargetSelf unless a TargetSelf handler exists.
func (h *Hooks) HandleIQ(owner, typ string, target Target, ns string, fn IQHandler) error {
	if typ != stanza.IQGet && typ != stanza.IQSet {
		return errors.New("module: IQ handlers are for get or set")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	next := map[string]ownedIQ{}
	if p := h.iqs.Load(); p != nil {
		for k, v := range *p {
			next[k] = v
		}
	}
	key := iqKey(typ, target, ns)
	if prev, dup := next[key]; dup {
		return errors.New("module: " + key + " already handled by " + prev.owner)
	}
	next[key] = ownedIQ{owner: owner, fn: fn}
	h.iqs.Store(&next)
	return nil
}

// IQHandler finds the handler for an IQ.
func (h *Hooks) IQHandler(typ string, target Target, ns string) IQHandler {
	p := h.iqs.Load()
	if p == nil {
		return nil
	}
	if e, ok := (*p)[iqKey(typ, target, ns)]; ok {
		return e.fn
	}
	if target == TargetSelf {
		if e, ok := (*p)[iqKey(typ, TargetBare, ns)]; ok {
			return e.fn
		}
	}
	return nil
}

// HandleNonza registers the handler of a first-level element.
func (h *Hooks) HandleNonza(owner, name, ns string, fn NonzaHandler) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := map[string]ownedNonza{}
	if p := h.nonzas.Load(); p != nil {
		for k, v := range *p {
			next[k] = v
		}
	}
	key := ns + " " + name
	if prev, dup := next[key]; dup {
		return errors.New("module: " + key + " already handled by " + prev.owner)
	}
	next[key] = ownedNonza{owner: owner, fn: fn}
	h.nonzas.Store(&next)
	return nil
}

// NonzaHandler finds the handler of a first-level element.
func (h *Hooks) NonzaHandler(name, ns string) NonzaHandler {
	if p := h.nonzas.Load(); p != nil {
		if e, ok := (*p)[ns+" "+name]; ok {
			return e.fn
		}
	}
	return nil
}

// RemoveOwner detaches everything owner attached.
func (h *Hooks) RemoveOwner(owner string) {
	h.UserSend.RemoveOwner(owner)
	h.UserReceive.RemoveOwner(owner)
	h.Offline.RemoveOwner(owner)
	h.MessageDelivered.RemoveOwner(owner)
	h.Outgoing.RemoveOwner(owner)
	h.ToServer.RemoveOwner(owner)
	h.SessionOpened.RemoveOwner(owner)
	h.SessionClosed.RemoveOwner(owner)
	h.SessionResumed.RemoveOwner(owner)
	h.InitialPresence.RemoveOwner(owner)
	h.BeforeAck.RemoveOwner(owner)
	h.RoomMessage.RemoveOwner(owner)
	h.RoomDestroyed.RemoveOwner(owner)
	h.UserRemoving.RemoveOwner(owner)
	h.UserRemoved.RemoveOwner(owner)
	h.StreamFeatures.RemoveOwner(owner)
	h.PreAuthFeatures.RemoveOwner(owner)
	h.ServerFeatures.RemoveOwner(owner)
	h.ServerIdentities.RemoveOwner(owner)
	h.ServerItems.RemoveOwner(owner)
	h.AccountFeatures.RemoveOwner(owner)
	h.RosterItem.RemoveOwner(owner)
	h.RosterChange.RemoveOwner(owner)
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.iqs.Load(); p != nil {
		next := map[string]ownedIQ{}
		for k, v := range *p {
			if v.owner != owner {
				next[k] = v
			}
		}
		h.iqs.Store(&next)
	}
	if p := h.nonzas.Load(); p != nil {
		next := map[string]ownedNonza{}
		for k, v := range *p {
			if v.owner != owner {
				next[k] = v
			}
		}
		h.nonzas.Store(&next)
	}
}

// Owners lists every owner with something attached, for tests and admin.
func (h *Hooks) Owners() map[string]bool {
	owners := map[string]bool{}
	add := func(o string) { owners[o] = true }
	for _, x := range h.UserSend.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.UserReceive.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.Offline.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.MessageDelivered.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.Outgoing.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.ToServer.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.SessionOpened.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.SessionClosed.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.SessionResumed.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.InitialPresence.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.BeforeAck.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.RoomMessage.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.RoomDestroyed.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.UserRemoving.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.UserRemoved.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.StreamFeatures.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.PreAuthFeatures.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.ServerFeatures.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.ServerIdentities.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.ServerItems.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.AccountFeatures.Hooks() {
		add(x.Owner)
	}
	for _, x := range h.RosterItem.Hooks() {
		add(x.Owner)
	}
	if o := h.RosterChange.Owner(); o != "" {
		add(o)
	}
	if p := h.iqs.Load(); p != nil {
		for _, v := range *p {
			add(v.owner)
		}
	}
	if p := h.nonzas.Load(); p != nil {
		for _, v := range *p {
			add(v.owner)
		}
	}
	return owners
}
